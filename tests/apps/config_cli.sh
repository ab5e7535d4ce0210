#!/usr/bin/env bash
# `hypha node --config` and `hypha kv --config`: a bad file stops the program before it starts,
# with one line naming file, line and key (exit 2); a good one starts the node, and flags given
# on the command line override the file.
set -euo pipefail
hypha=$1
dir=$(mktemp -d)
trap 'kill "${pid:-}" 2>/dev/null || true; rm -rf "$dir"' EXIT
export ERL_EPMD_PORT=27469
fails=0
check() {  # check WHAT EXPECTED ACTUAL
  if [[ "$2" != "$3" ]]; then echo "FAIL $1: expected [$2], got [$3]"; fails=1; else echo "ok   $1"; fi
}
run() {  # run ARGS...: sets rc and err (stderr)
  set +e
  err=$("$hypha" "$@" 2>&1 >/dev/null)
  rc=$?
  set -e
}

printf '[node]\nname = "cfg@127.0.0.1"\ntick_time = 5\n' >"$dir/unknown.toml"
run node --config "$dir/unknown.toml"
check "unknown key: exit" 2 "$rc"
check "unknown key: line" "hypha: $dir/unknown.toml:3: node.tick_time: unknown key" "$err"

printf '[node]\nname = "cfg@127.0.0.1"\nport = "x"\n' >"$dir/type.toml"
run node --config "$dir/type.toml"
check "wrong type: exit" 2 "$rc"
check "wrong type: line" "hypha: $dir/type.toml:3: node.port: expected an integer of 0..65535, got a string" "$err"

printf '[node]\ncookie = "c"\n' >"$dir/noname.toml"
run node --config "$dir/noname.toml"
check "no name: exit" 2 "$rc"

run node --config "$dir/missing.toml"
check "missing file: exit" 2 "$rc"
check "missing file: line" "hypha: $dir/missing.toml: cannot read the file" "$err"

printf '[node]\nname = "kv@127.0.0.1"\n[kv]\nport = 0\n[routing]\n"a-z" = 3\n' >"$dir/kv.toml"
run kv --config "$dir/kv.toml"
check "kv bad routing: exit" 2 "$rc"
check "kv bad routing: line" "hypha: $dir/kv.toml:6: routing.\"a-z\": expected the owner's node name (a string)" "$err"

printf '[node]\nname = "kv@127.0.0.1"\n[kv]\nport = 0\nbind = "x"\n[routing]\n"a-z" = "kv@127.0.0.1"\n' >"$dir/kv2.toml"
run kv --config "$dir/kv2.toml"
check "kv unknown key: line" "hypha: $dir/kv2.toml:5: kv.bind: unknown key" "$err"

# A good file, with --name and --inbox given over it.
printf '[node]\nname = "fromfile@127.0.0.1"\ncookie = "cfgcookie"\ninbox = ["fileinbox"]\n' >"$dir/good.toml"
"$hypha" node --config "$dir/good.toml" --name fromflag@127.0.0.1 --inbox flaginbox >"$dir/out" 2>&1 &
pid=$!
for _ in $(seq 1 100); do grep -q started "$dir/out" && break; sleep 0.1; done
check "good file: started" "node fromflag@127.0.0.1 started" "$(grep -o 'node [^ ]* started' "$dir/out")"
"$hypha" send fromflag@127.0.0.1 flaginbox hello --cookie cfgcookie
for _ in $(seq 1 100); do grep -q "flaginbox received" "$dir/out" && break; sleep 0.1; done
check "flag inbox replaced the file's" "flaginbox received hello" "$(grep -o 'flaginbox received hello' "$dir/out")"
check "file inbox not started" "undefined" "$("$hypha" rpc fromflag@127.0.0.1 erlang whereis '[fileinbox]' --cookie cfgcookie)"
check "cookie from the file" "pang" "$("$hypha" ping fromflag@127.0.0.1 --cookie wrong || true)"
kill "$pid"; wait "$pid" || true
exit $fails

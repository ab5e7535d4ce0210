#!/usr/bin/env bash
# Runs every attack of issue 12 (bench/attack.py) against a fresh node of each build given, side by
# side in one run, and prints one table row per case and figure.
#
#   bench/attack.sh LABEL=HYPHA_BINARY [LABEL=HYPHA_BINARY ...] [-- CASE ...]
#   e.g. bench/attack.sh before=/tmp/old/build/release/apps/hypha/hypha after=build/release/apps/hypha/hypha
#
# Each node runs at the descriptor soft limit of 1,024 (as in the issue's report), on loopback, with
# its own EPMD port. A node that dies in a case is reported `alive=0`; the next case starts a new one.
set -uo pipefail
cd "$(dirname "$0")/.."
builds=()
while [[ $# -gt 0 && $1 != -- ]]; do builds+=("$1"); shift; done
[[ ${1:-} == -- ]] && shift
cases=("$@")
[[ ${#cases[@]} -gt 0 ]] || cases=(atoms_cold atoms_warm names silent kv frame_claim big_list stalled_name wrong_cookie)
[[ ${#builds[@]} -gt 0 ]] || { echo "usage: $0 LABEL=BINARY ... [-- CASE ...]" >&2; exit 2; }
py=/usr/bin/python3
work=$(mktemp -d)
trap 'rm -rf "$work"; kill $(jobs -p) 2>/dev/null' EXIT
epmd=21200  # below the ephemeral range (32768-60999): the attacks use thousands of client ports
out="$work/figures"

# start_node BINARY CASE LOG: sets pid and port once the node says it started (each node has
# ports of its own: a node killed in the case before may still hold its ports for a moment)
start_node() {
  local bin=$1 case=$2 log=$3 line
  epmd=$((epmd + 7))
  : >"$work/stdout"
  if [[ $case == kv ]]; then
    printf '[node]\nname = "atk@127.0.0.1"\ncookie = "c"\n[kv]\nport = 0\n[routing]\n"a-z" = "atk@127.0.0.1"\n' >"$work/kv.toml"
    (ulimit -n 1024; ERL_EPMD_PORT=$epmd exec "$bin" kv --config "$work/kv.toml") >"$work/stdout" 2>"$log" &
  else
    (ulimit -n 1024; ERL_EPMD_PORT=$epmd exec "$bin" node --name atk@127.0.0.1 --cookie c --port $((epmd + 1))) \
      >"$work/stdout" 2>"$log" &
  fi
  pid=$!
  for _ in $(seq 300); do
    line=$(grep -m1 'started' "$work/stdout" 2>/dev/null) && break
    sleep 0.1
  done
  [[ -n $line ]] || echo "$case: the node did not start: $(tail -2 "$log")" >&2
  if [[ $case == kv ]]; then port=$(sed -n 's/.*kv port \([0-9]*\).*/\1/p' <<<"$line"); else port=$((epmd + 1)); fi
}

for case in "${cases[@]}"; do
  for b in "${builds[@]}"; do
    label=${b%%=*} bin=${b#*=}
    log="$work/$label-$case.log"
    start_node "$bin" "$case" "$log"
    "$py" bench/attack.py "$case" "$pid" "$port" "$epmd" c "$log" 2>"$work/err" | sed "s/^/$label /" >>"$out" ||
      { echo "$label $case: attack.py failed: $(tail -1 "$work/err")" >&2; }
    kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
  done
done

# One row per figure: metric, then each build's value
/usr/bin/python3 - "$out" "${builds[@]%%=*}" <<'EOF'
import sys, collections
rows = collections.OrderedDict()
labels = sys.argv[2:]
for line in open(sys.argv[1]):
    label, rest = line.split(" ", 1)
    f = dict(kv.split("=", 1) for kv in rest.split())
    rows.setdefault((f["metric"], f.get("unit", "")), {})[label] = f["value"]
print("%-32s %-6s " % ("metric", "unit") + " ".join("%12s" % l for l in labels))
for (metric, unit), v in rows.items():
    print("%-32s %-6s " % (metric, unit) + " ".join("%12s" % v.get(l, "-") for l in labels))
EOF

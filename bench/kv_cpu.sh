#!/usr/bin/env bash
# Node CPU per KV request: starts two `hypha kv` nodes (the guide's a-m / n-z table), runs the
# benchmark client against them and prints requests/s and the CPU both nodes used per request
# (user + system, from /proc/PID/stat). ROUNDS rounds, the nodes restarted for each.
# Usage: bench/kv_cpu.sh [ROUNDS] [SECONDS]   (build the release preset first: bench/run.sh does)
# Environment variables given to it reach the nodes, so settings can be compared round by round.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3} secs=${2:-3}
dir=$(mktemp -d)
export ERL_EPMD_PORT=${ERL_EPMD_PORT:-34372}
tag=kvcpu_$$
cleanup() { pkill -9 -f "$dir/" 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
node_cpu() {
  local total=0 f
  for pid in $(pgrep -f "$dir/"); do
    read -r -a f < "/proc/$pid/stat"
    total=$((total + f[13] + f[14]))
  done
  echo "$total"
}
hz=$(getconf CLK_TCK)
for r in $(seq 1 "$rounds"); do
  pids=()
  for n in "${tag}_foo@127.0.0.1:24051" "${tag}_bar@127.0.0.1:24052"; do
    name=${n%:*}
    printf '[node]\nname = "%s"\ncookie = "bench"\n[kv]\nport = %s\n[routing]\n"a-m" = "%s_foo@127.0.0.1"\n"n-z" = "%s_bar@127.0.0.1"\n' \
      "$name" "${n##*:}" "$tag" "$tag" > "$dir/${name%%@*}.toml"
    build/release/apps/hypha/hypha kv --config "$dir/${name%%@*}.toml" > "$dir/${name%%@*}.log" 2>&1 &
    pids+=($!)
  done
  for log in "$dir/${tag}_foo.log" "$dir/${tag}_bar.log"; do
    for _ in $(seq 1 100); do grep -q started "$log" && break; sleep 0.1; done
  done
  c0=$(node_cpu)
  out=$(build/release/bench/kv_client hypha 24051 24052 8 "$secs")
  c1=$(node_cpu)
  rps=$(sed 's/.*value=\([0-9.]*\).*/\1/' <<< "$out")
  awk -v r="$rps" -v c=$((c1 - c0)) -v hz="$hz" -v s="$secs" -v round="$r" \
    'BEGIN { printf "round=%d requests_per_s=%.0f node_cpu_us_per_request=%.1f\n", round, r, c * 1e6 / hz / (r * s) }'
  kill -TERM "${pids[@]}" 2>/dev/null || true  # hypha kv leaves the cluster cleanly on SIGTERM
  wait "${pids[@]}" 2>/dev/null || true
done

#!/bin/bash
# BEAM senders streaming small messages to a BEAM and to a hypha receiver, interleaved:
# messages/s per round and medians, then bytes per TCP segment seen by each receiver (ss -ti)
# during a longer stream. Used to study BEAM to C++ 64 B (docs/benchmarks.md).
# Usage: bench/dist_stream_probe.sh [ROUNDS] [SIZE]   (after bench/run.sh has built the release preset)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-8} size=${2:-64}
export ERL_EPMD_PORT=34480
dir=$(mktemp -d)
cs=probe_c_$$@127.0.0.1 bs=probe_b_$$@127.0.0.1
cleanup() { pkill -9 -f "probe_[bc]_$$" 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
build/release/bench/dist_bench serve "$cs" > "$dir/c.log" 2>&1 &
cpid=$!; disown
escript bench/dist_bench.escript serve "$bs" > "$dir/b.log" 2>&1 & disown
for _ in $(seq 100); do grep -q ready "$dir/c.log" && grep -q ready "$dir/b.log" && break; sleep 0.1; done
for _ in $(seq "$rounds"); do
  escript bench/dist_bench.escript send "$bs" "$size" 200000 beam_to_beam
  escript bench/dist_bench.escript send "$cs" "$size" 200000 beam_to_hypha
done | grep msgs_per | python3 -c '
import collections, statistics, sys
v = collections.defaultdict(list)
for line in sys.stdin:
    f = dict(x.split("=", 1) for x in line.split())
    v[f["side"]].append(float(f["value"]))
for k in sorted(v):
    print(f"{k}: median {statistics.median(v[k]):.0f} msgs/s; rounds", " ".join(f"{x:.0f}" for x in v[k]))
'
bpid=$(pgrep -f "serve $bs" | head -1)
for t in "$bs:$bpid" "$cs:$cpid"; do
  node=${t%:*} pid=${t#*:}
  escript bench/dist_bench.escript send "$node" "$size" 1500000 probe > /dev/null &
  sender=$!
  sleep 2.5
  ss -tinp | grep -A1 "pid=$pid," | grep -oE "bytes_received:[0-9]+ segs_out:[0-9]+ segs_in:[0-9]+" |
    awk -v n="$node" '{split($1,b,":"); split($3,s,":"); if (b[2] > 1000000) printf "%s: %d bytes per segment received (%s %s)\n", n, b[2]/s[2], $2, $3}'
  wait "$sender"
done

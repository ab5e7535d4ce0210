#!/usr/bin/env bash
# Runs each fuzz target of the `fuzz` build for a bounded time (seconds: $1 for the ETF decoder,
# a third of it each for the term parser, the distribution packet parser and io_lib_format, a
# sixth each for the handshake messages, EPMD requests and gossip packets), starting from its regression corpus. New inputs go to a work
# directory under build/; a crash leaves its input in build/fuzz/artifacts/ and fails the run:
# copy that file into fuzz/corpus/<target>/ so it is replayed by every later test run.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
bin=build/fuzz/fuzz
mkdir -p build/fuzz/artifacts
run() {
  local target=$1 secs=$2
  local work=build/fuzz/work/$target
  local log=build/fuzz/$target.log
  mkdir -p "$work"
  echo "fuzz: $target for ${secs}s"
  local rc=0
  "$bin/${target}_fuzz" -max_total_time="$secs" -print_final_stats=1 -max_len=65536 \
    -artifact_prefix=build/fuzz/artifacts/"$target"- "$work" "fuzz/corpus/$target" >"$log" 2>&1 || rc=$?
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added)' "$log" || true
  if [[ $rc -ne 0 ]]; then
    tail -n 40 "$log"
    echo "fuzz: $target FAILED (exit $rc); the input is in build/fuzz/artifacts/ (add it to fuzz/corpus/$target/)"
    return 1
  fi
}
run etf_decode "$seconds"
run term_parse $(( seconds / 3 > 5 ? seconds / 3 : 5 ))
run dist_packet $(( seconds / 3 > 5 ? seconds / 3 : 5 ))
run io_format $(( seconds / 3 > 5 ? seconds / 3 : 5 ))
run handshake $(( seconds / 6 > 5 ? seconds / 6 : 5 ))
run epmd_request $(( seconds / 6 > 5 ? seconds / 6 : 5 ))
run gossip $(( seconds / 6 > 5 ? seconds / 6 : 5 ))
run dns_reply $(( seconds / 6 > 5 ? seconds / 6 : 5 ))

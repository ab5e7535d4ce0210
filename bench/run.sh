#!/usr/bin/env bash
# Benchmark runner: each BEAM side and hypha side on the same work, in the same run, then a ratio
# for every metric, oriented so that above 1 means hypha is better (hypha/BEAM for rates,
# BEAM/hypha for sizes and latencies).
# Usage: bench/run.sh [term|process ...]   (default: all; builds the release preset first)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh >/dev/null
dir=build/bench-data
mkdir -p "$dir"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
benches=("$@")
[[ ${#benches[@]} -eq 0 ]] && benches=(term process)
echo "# hypha benchmarks: $(nproc) cores, $(erl -noshell -eval 'io:format("OTP ~s", [erlang:system_info(otp_release)]), halt().'), $(date -u +%Y-%m-%dT%H:%MZ)"
for b in "${benches[@]}"; do
  case $b in
    term) escript bench/term_bench.escript "$dir" | tee -a "$out"
          build/release/bench/term_bench "$dir" | tee -a "$out" ;;
    process) escript bench/process_bench.escript | tee -a "$out"
             build/release/bench/process_bench | tee -a "$out" ;;
    *) echo "unknown benchmark $b (term, process)" >&2; exit 2 ;;
  esac
done
echo "# ratios (above 1: hypha better)"
awk '
  { for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
    key = f["metric"]; val[f["side"], key] = f["value"]; unit[key] = f["unit"]; if (!(key in seen)) { order[n++] = key; seen[key] = 1 } }
  END { for (i = 0; i < n; i++) { k = order[i]; b = val["beam", k]; h = val["hypha", k];
          if (b > 0 && h > 0) {
            lower_better = (unit[k] == "bytes" || unit[k] == "us");
            printf "ratio metric=%s hypha=%.4g beam=%.4g unit=%s ratio=%.2f\n", k, h, b, unit[k], lower_better ? b / h : h / b } } }
' "$out"

#!/usr/bin/env bash
# Benchmark runner: the BEAM side and the hypha side on the same terms, in the same run, then the
# ratio hypha/BEAM for every metric (above 1 means hypha is faster).
# Usage: bench/run.sh            (builds the release preset first)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh >/dev/null
dir=build/bench-data
mkdir -p "$dir"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "# term benchmark: $(nproc) cores, $(erl -noshell -eval 'io:format("OTP ~s", [erlang:system_info(otp_release)]), halt().'), $(date -u +%Y-%m-%dT%H:%MZ)"
escript bench/term_bench.escript "$dir" | tee -a "$out"
build/release/bench/term_bench "$dir" | tee -a "$out"
echo "# ratios (hypha / beam)"
awk '
  { for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
    key = f["metric"]; val[f["side"], key] = f["value"]; unit[key] = f["unit"]; if (!(key in seen)) { order[n++] = key; seen[key] = 1 } }
  END { for (i = 0; i < n; i++) { k = order[i]; b = val["beam", k]; h = val["hypha", k];
          if (b > 0 && h > 0) printf "ratio metric=%s hypha=%.4g beam=%.4g unit=%s ratio=%.2f\n", k, h, b, unit[k], h / b } }
' "$out"

#!/usr/bin/env bash
# Benchmark runner: each BEAM side and hypha side on the same work, in the same run, then a ratio
# for every metric, oriented so that above 1 means hypha is better (hypha/BEAM for rates,
# BEAM/hypha for sizes and latencies). A metric measured several times counts its best value.
# Usage: bench/run.sh [term|process|dist|otp|kv|cluster|form|registry|supervisor|tasks|cache|apps ...]   (default: all; builds the release preset first)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh >/dev/null
dir=build/bench-data
mkdir -p "$dir"
out=$(mktemp)
benches=("$@")
[[ ${#benches[@]} -eq 0 ]] && benches=(term process dist otp kv cluster form)

# Distribution: a C++ server (serving EPMD, embedded) and a BEAM server; every sender against
# every server. Servers are killed on exit.
# Servers are found by their unique names: an escript's VM is a child of the escript process,
# so killing the pid that started it would leave the VM running.
cleanup() { pkill -9 -f "serve_$$[@.]" 2>/dev/null || true; pkill -9 -f "form_serve_[a-z]*_$$_" 2>/dev/null || true; rm -f "$out"; }
trap cleanup EXIT
# wait_ready LOG [WORD]: until the server's log says WORD (default: ready).
wait_ready() { for _ in $(seq 1 300); do grep -q "${2:-ready}" "$1" && return 0; sleep 0.1; done; echo "server not ready: $1" >&2; exit 1; }
run_dist() {
  export ERL_EPMD_PORT=34369
  local cs=cserve_$$@127.0.0.1 bs=bserve_$$@127.0.0.1
  build/release/bench/dist_bench serve "$cs" > "$dir/cserve.log" 2>&1 &
  wait_ready "$dir/cserve.log"
  escript bench/dist_bench.escript serve "$bs" > "$dir/bserve.log" 2>&1 &
  wait_ready "$dir/bserve.log"
  # Three rounds, interleaved, so a noisy moment does not decide a ratio; the best round counts.
  for round in 1 2 3; do
    for spec in 64:200000 1024:100000 65536:4000; do
      size=${spec%:*} count=${spec#*:}
      escript bench/dist_bench.escript send "$bs" "$size" "$count" beam
      build/release/bench/dist_bench send "$cs" "$size" "$count" hypha
      build/release/bench/dist_bench send "$bs" "$size" "$count" hypha_to_beam
      escript bench/dist_bench.escript send "$cs" "$size" "$count" beam_to_hypha
    done
  done
  # What loopback TCP itself carries (64 KiB messages, 16 per write, no decoding): the ceiling.
  build/release/bench/tcp_ceiling 65536 100000 16
  escript bench/dist_bench.escript pingpong "$bs" 20000 beam
  build/release/bench/dist_bench pingpong "$cs" 20000 hypha
  build/release/bench/dist_bench pingpong "$bs" 20000 hypha_to_beam
  escript bench/dist_bench.escript pingpong "$cs" 20000 beam_to_hypha
  pkill -9 -f "serve_$$[@.]" 2>/dev/null || true
}
# gen_server calls and rpc: a C++ and a BEAM server; every client against every server.
run_otp() {
  export ERL_EPMD_PORT=34369
  local cs=cotp_serve_$$@127.0.0.1 bs=botp_serve_$$@127.0.0.1
  build/release/bench/otp_bench serve "$cs" > "$dir/cotp.log" 2>&1 &
  wait_ready "$dir/cotp.log"
  escript bench/otp_bench.escript serve "$bs" > "$dir/botp.log" 2>&1 &
  wait_ready "$dir/botp.log"
  for round in 1 2; do
    for mode in call rpc task; do
      escript bench/otp_bench.escript "$mode" "$bs" 10000 beam
      build/release/bench/otp_bench "$mode" "$cs" 10000 hypha
      build/release/bench/otp_bench "$mode" "$bs" 10000 hypha_to_beam
      escript bench/otp_bench.escript "$mode" "$cs" 10000 beam_to_hypha
    done
  done
  pkill -9 -f "serve_$$[@.]" 2>/dev/null || true
}
# The KV router: two nodes with the guide's a-m / n-z table, each serving the text protocol; the
# same client load against the C++ pair (hypha kv) and the Elixir pair (the guide's app).
run_kv() {
  export ERL_EPMD_PORT=34369
  local foo=kvfoo_serve_$$@127.0.0.1 bar=kvbar_serve_$$@127.0.0.1
  local efoo=kvefoo_serve_$$@127.0.0.1 ebar=kvebar_serve_$$@127.0.0.1
  for n in "$foo:24041" "$bar:24042"; do
    printf '[node]\nname = "%s"\ncookie = "bench"\n[kv]\nport = %s\n[routing]\n"a-m" = "%s"\n"n-z" = "%s"\n' \
      "${n%:*}" "${n##*:}" "$foo" "$bar" > "$dir/${n%%@*}.toml"
    build/release/apps/hypha/hypha kv --config "$dir/${n%%@*}.toml" > "$dir/${n%%@*}.log" 2>&1 &
  done
  for n in "$efoo:24043" "$ebar:24044"; do
    elixir --name "${n%:*}" --cookie bench bench/kv_bench.exs "${n##*:}" "a-m=$efoo" "n-z=$ebar" > "$dir/${n%%@*}.log" 2>&1 &
  done
  wait_ready "$dir/kvfoo_serve_$$.log" started; wait_ready "$dir/kvbar_serve_$$.log" started
  wait_ready "$dir/kvefoo_serve_$$.log"; wait_ready "$dir/kvebar_serve_$$.log"
  for round in 1 2; do
    build/release/bench/kv_client beam 24043 24044 8 3
    build/release/bench/kv_client hypha 24041 24042 8 3
  done
  pkill -9 -f "serve_$$[@.]" 2>/dev/null || true
}
# Process groups and pub/sub (bench/cluster_bench.cpp and .exs): two (pg) or three (pub/sub) nodes
# per side, the driver being one of them. One side at a time: an idle BEAM keeps its schedulers
# spinning for a while after work, which would take CPU from the other side's run.
run_cluster() {
  export ERL_EPMD_PORT=34369
  local ex="elixir --erl +P4000000 --cookie bench"
  local c1=ccl1_serve_$$@127.0.0.1 c2=ccl2_serve_$$@127.0.0.1 b1=bcl1_serve_$$@127.0.0.1 b2=bcl2_serve_$$@127.0.0.1
  for round in 1 2; do
    for n in "$b1" "$b2"; do $ex --name "$n" bench/cluster_bench.exs serve > "$dir/${n%%@*}.log" 2>&1 & done
    for n in "$b1" "$b2"; do wait_ready "$dir/${n%%@*}.log"; done
    $ex --name "bclpg_serve_$$@127.0.0.1" bench/cluster_bench.exs pg "$b1" beam
    $ex --name "bclps_serve_$$@127.0.0.1" bench/cluster_bench.exs pubsub "$b1" "$b2" beam
    pkill -9 -f "serve_$$[@.]" 2>/dev/null || true
    for n in "$c1" "$c2"; do build/release/bench/cluster_bench serve "$n" > "$dir/${n%%@*}.log" 2>&1 & done
    for n in "$c1" "$c2"; do wait_ready "$dir/${n%%@*}.log"; done
    build/release/bench/cluster_bench pg "$c1" hypha
    build/release/bench/cluster_bench pubsub "$c1" "$c2" hypha
    pkill -9 -f "serve_$$[@.]" 2>/dev/null || true
  done
}
# The cluster registry against OTP's global: a driver and 4 other nodes per side, one side at a time.
run_registry() {
  export ERL_EPMD_PORT=34369
  local ex="elixir --erl +P4000000 --cookie bench"
  for round in 1 2; do
    local bnodes=() hnodes=()
    for i in 1 2 3 4; do bnodes+=("breg${i}_serve_$$@127.0.0.1"); hnodes+=("hreg${i}_serve_$$@127.0.0.1"); done
    for n in "${bnodes[@]}"; do $ex --name "$n" bench/cluster_bench.exs serve > "$dir/${n%%@*}.log" 2>&1 & done
    for n in "${bnodes[@]}"; do wait_ready "$dir/${n%%@*}.log"; done
    $ex --name "bregd_serve_$$@127.0.0.1" bench/cluster_bench.exs registry beam "${bnodes[@]}"
    pkill -9 -f "serve_$$[@.]" 2>/dev/null || true
    for n in "${hnodes[@]}"; do build/release/bench/cluster_bench serve "$n" > "$dir/${n%%@*}.log" 2>&1 & done
    for n in "${hnodes[@]}"; do wait_ready "$dir/${n%%@*}.log"; done
    build/release/bench/cluster_bench registry hypha "${hnodes[@]}"
    pkill -9 -f "serve_$$[@.]" 2>/dev/null || true
  done
}
# Failover after kill -9, 20 rounds per side: hypha_sup against a monitor_nodes + global failover
# on OTP 25 peers (bench/beam_failover.erl; Horde is not packaged in Debian).
run_supervisor() {
  export ERL_EPMD_PORT=34369
  epmd -daemon
  escript bench/sup_failover.escript beam build/release/apps/hypha/hypha "$dir" 20 2>/dev/null | grep '^side='
  escript bench/sup_failover.escript hypha build/release/apps/hypha/hypha "$dir" 20 2>/dev/null | grep '^side='
}
# Unique cluster tasks: start-to-done latency of an empty task and tasks per second (hypha only).
run_tasks() {
  export ERL_EPMD_PORT=34369
  epmd -daemon
  escript bench/tasks_bench.escript build/release/apps/hypha/hypha "$dir" 200 5000 2>/dev/null | grep '^side='
}
# The cluster cache against ets (and ets over rpc) on two nodes, one side at a time.
run_cache() {
  export ERL_EPMD_PORT=34369
  epmd -daemon
  escript bench/cache_bench.escript 2>/dev/null | grep '^side='
  local s=ccache_serve_$$@127.0.0.1
  build/release/bench/cache_bench serve "$s" > "$dir/ccache.log" 2>&1 &
  wait_ready "$dir/ccache.log"
  build/release/bench/cache_bench drive "ccached_serve_$$@127.0.0.1" "$s"
  pkill -9 -f "serve_$$[@.]" 2>/dev/null || true
}
# The apps (issue 15): HTTP requests/s against OTP's inets httpd, dashboard update latency,
# download failover (bench/apps_bench.py).
run_apps() {
  export ERL_EPMD_PORT=34369
  /usr/bin/python3 bench/apps_bench.py build/release "$dir/apps"
}
# Formation: 5 nodes started at once until each is connected to the 4 others, per strategy; the
# time from the launch, the start of each VM included (what a user waits for). Gossip in a
# network namespace of its own (bench/form_gossip.sh).
run_form() {
  export ERL_EPMD_PORT=34369
  epmd -daemon
  local ex="elixir --cookie bench"
  for strategy in static epmd; do
    for round in 1 2; do
      for side in beam hypha; do
        local names=() logs=() start mesh
        for i in 1 2 3 4 5; do names+=("form_serve_${side}_$$_${round}_$i@127.0.0.1"); done
        start=$(date +%s%3N)
        for n in "${names[@]}"; do
          local log="$dir/${n%%@*}.log"; logs+=("$log"); : > "$log"
          if [[ $side == hypha ]]; then build/release/bench/cluster_bench form "$n" "$strategy" "${names[@]}" > "$log" 2>&1 &
          else $ex --name "$n" bench/cluster_bench.exs form "$strategy" "${names[@]}" > "$log" 2>&1 &
          fi
          disown
        done
        for log in "${logs[@]}"; do wait_ready "$log" mesh; done
        mesh=$(cat "${logs[@]}" | awk '$1 == "mesh" && $2 > m { m = $2 } END { print m }')
        echo "side=$side metric=form_${strategy}_5_from_launch value=$((mesh - start)) unit=ms"
        pkill -9 -f "form_serve_${side}_$$_" 2>/dev/null || true
      done
    done
  done
  for round in 1 2; do tests/cluster/in_netns.sh bench/form_gossip.sh "$dir" "$round"; done
}
echo "# hypha benchmarks: $(nproc) cores, $(erl -noshell -eval 'io:format("OTP ~s", [erlang:system_info(otp_release)]), halt().'), $(date -u +%Y-%m-%dT%H:%MZ)"
for b in "${benches[@]}"; do
  case $b in
    term) escript bench/term_bench.escript "$dir" | tee -a "$out"
          build/release/bench/term_bench "$dir" | tee -a "$out" ;;
    process) escript bench/process_bench.escript | tee -a "$out"
             build/release/bench/process_bench | tee -a "$out" ;;
    dist) run_dist | tee -a "$out" ;;
    otp) run_otp | tee -a "$out" ;;
    kv) run_kv | tee -a "$out" ;;
    cluster) run_cluster | tee -a "$out" ;;
    form) run_form | tee -a "$out" ;;
    registry) run_registry | tee -a "$out" ;;
    supervisor) run_supervisor | tee -a "$out" ;;
    tasks) run_tasks | tee -a "$out" ;;
    cache) run_cache | tee -a "$out" ;;
    apps) run_apps | tee -a "$out" ;;
    *) echo "unknown benchmark $b (term, process, dist, otp, kv, cluster, form, registry, supervisor, tasks, cache, apps)" >&2; exit 2 ;;
  esac
done
echo "# ratios against BEAM-to-BEAM (above 1: better than BEAM)"
awk '
  { for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
    key = f["metric"]; side = f["side"]; unit[key] = f["unit"]; v = f["value"] + 0
    lower = (f["unit"] == "bytes" || f["unit"] == "us" || f["unit"] == "ms")
    if (!((side, key) in val) || (lower ? v < val[side, key] : v > val[side, key])) val[side, key] = v
    if (!(key in seen)) { order[n++] = key; seen[key] = 1 }
    if (!(side in sides)) { sidelist[m++] = side; sides[side] = 1 } }
  END { for (i = 0; i < n; i++) { k = order[i]; b = val["beam", k]
          for (j = 0; j < m; j++) { s = sidelist[j]; h = val[s, k]
            if (s == "beam" || !(b > 0) || !(h > 0)) continue
            lower_better = (unit[k] == "bytes" || unit[k] == "us" || unit[k] == "ms")
            printf "ratio metric=%s side=%s value=%.4g beam=%.4g unit=%s ratio=%.2f\n", k, s, h, b, unit[k], lower_better ? b / h : h / b } } }
' "$out"

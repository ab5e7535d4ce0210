#!/usr/bin/env bash
# Formation by gossip, for bench/run.sh form: 5 nodes launched at once until each is connected to
# the 4 others, hypha (format "hypha") and then Elixir nodes running libcluster's Gossip strategy
# (tests/interop/elixir/libcluster_gossip.exs). Run inside a network namespace of its own
# (tests/cluster/in_netns.sh), so that the multicast never leaves the machine.
# Usage: bench/form_gossip.sh DATA_DIR ROUND
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$1 round=$2
export ERL_EPMD_PORT=4369
wait_mesh() { for _ in $(seq 1 300); do grep -q mesh "$1" && return 0; sleep 0.1; done; echo "no mesh: $1" >&2; return 1; }
for side in hypha beam; do
  names=() logs=()
  for i in 1 2 3 4 5; do names+=("fg_${side}_${round}_$i@127.0.0.1"); done
  start=$(date +%s%3N)
  for n in "${names[@]}"; do
    log="$dir/${n%%@*}.log"; logs+=("$log"); : > "$log"
    if [[ $side == hypha ]]; then build/release/bench/cluster_bench form "$n" gossip "${names[@]}" > "$log" 2>&1 &
    else elixir --name "$n" --cookie bench tests/interop/elixir/libcluster_gossip.exs 45892 "" 5000 connect 4 > "$log" 2>&1 &
    fi
    disown
  done
  ok=1
  for log in "${logs[@]}"; do wait_mesh "$log" || ok=0; done
  if [[ $ok == 1 ]]; then
    mesh=$(cat "${logs[@]}" | awk '$1 == "mesh" && $2 > m { m = $2 } END { print m }')
    echo "side=$side metric=form_gossip_5_from_launch value=$((mesh - start)) unit=ms"
  fi
  pkill -9 -f "fg_${side}_${round}_" 2>/dev/null || true
done
epmd -kill >/dev/null 2>&1 || true  # the namespace's own EPMD, started by the Elixir nodes

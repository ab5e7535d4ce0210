#!/usr/bin/env bash
# The demo command of the README: installs what is missing, builds, and runs the demos:
#   1. terms: a real erl encodes, hypha decodes, and back
#   2. a cluster: two C++ nodes and an Erlang node (ping, send, monitors, kill -9, clean leave)
#   3. membership: a mixed cluster forms from a config file; pg and a C++ broadcast reach Elixir
#   4. the KV router: two `hypha kv` nodes, their text servers, and an Elixir node calling in
#   5. cluster services: three nodes run the registry, the distributed supervisor and named tasks; kill -9
#      and SIGTERM move a node's jobs to the others
#   6. hyphad behind nginx: three daemons, the dashboard's address, tasks and a download that go on
#      after kill -9 of their node (DEMO_KEEP=1: the cluster stays up until Enter)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh >/dev/null
hypha="$PWD/build/release/apps/hypha/hypha"
echo "######## terms"
escript demo/terms.escript "$hypha" "$PWD/build/demo"
echo
echo "######## cluster"
# A port mapper of the demo's own, so nothing else on the machine is disturbed.
ERL_EPMD_PORT=${DEMO_EPMD_PORT:-44369} escript demo/cluster.escript "$hypha"
echo
echo "######## membership"
ERL_EPMD_PORT=${DEMO_EPMD_PORT:-44369} escript demo/membership.escript "$hypha" "$PWD/build/demo/membership"
echo
echo "######## KV router"
ERL_EPMD_PORT=${DEMO_EPMD_PORT:-44369} escript demo/kv.escript "$hypha" "$PWD/build/demo/kv"
echo
echo "######## cluster services"
ERL_EPMD_PORT=${DEMO_EPMD_PORT:-44369} escript demo/services.escript "$hypha" "$PWD/build/demo/services"
echo
echo "######## hyphad behind nginx (the dashboard)"
ERL_EPMD_PORT=${DEMO_EPMD_PORT:-44369} /usr/bin/python3 demo/hyphad_cluster.py --bin "$PWD/build/release" \
  --out "$PWD/build/demo/hyphad" ${DEMO_KEEP:+--keep}

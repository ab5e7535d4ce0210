#!/usr/bin/env bash
# The test command of the README (and of CI, through .ci/run): installs what is missing, builds,
# and runs every test.
#   1. release build (g++): unit tests and interop tests against real Erlang (erl, installed by setup)
#   2. fuzz build (clang, ASan+UBSan): the unit tests again under sanitizers, the fuzz regression corpora
#   3. ThreadSanitizer build: the process runtime's, network's and nodes' tests
#   4. the fuzzers themselves for a bounded time (FUZZ_SECONDS, default 60 for the ETF decoder)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
jobs=$(nproc)

echo "== release build and tests (g++)"
cmake --preset release >/dev/null
cmake --build --preset release -j "$jobs"
ctest --preset release -j "$jobs"

echo "== sanitizer build and tests (clang, ASan+UBSan, libFuzzer)"
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "$jobs"
ctest --preset fuzz -j "$jobs"

echo "== ThreadSanitizer build: the runtime's, network's and nodes' tests (clang)"
cmake --preset tsan >/dev/null
cmake --build --preset tsan -j "$jobs" --target base_test process_test net_test node_test otp_test otp_cluster_test router_test cluster_test dns_test registry_test dsup_test tasks_test cache_test
ctest --preset tsan -j "$jobs" -R '^(Runtime|RuntimeTest|ManualClock|Digest|Flags|Epmd|Handshake|Packet|NodeTest|HostilePeer|Heartbeat|Sim|Exports|GenServer|OtpCluster|RouterTest|Supervisor|Tasks|Pg|PubSub|Formation|Gossip|Dns|DnsNet|Hlc|Registry|RegistryState|DistSup|ClusterTasks|TasksFake|ClusterCache|CacheStore)\.'

echo "== fuzzing"
scripts/fuzz.sh "${FUZZ_SECONDS:-60}"
echo "== all tests passed"

#!/usr/bin/env bash
# Runs a command inside a network namespace of its own (only a loopback with multicast and a
# route for 224.0.0.0/4), so that gossip tests never send anything off the machine.
set -euo pipefail
exec unshare -rn sh -c 'ip link set lo up multicast on && ip route add 224.0.0.0/4 dev lo && exec "$@"' sh "$@"

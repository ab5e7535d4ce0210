#!/usr/bin/env bash
# The demo command of the README: installs what is missing, builds, and runs the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh >/dev/null
exec escript demo/terms.escript "$PWD/build/release/apps/hypha/hypha" "$PWD/build/demo"

#!/usr/bin/env bash
# Installs, with apt-get, every Debian package hypha needs to build, test, demo and benchmark.
# Idempotent: when everything is present it prints nothing and exits 0.
# Justification for each package: docs/dependencies.md.
set -euo pipefail

packages=(
  # toolchain
  g++ clang libclang-rt-14-dev cmake ninja-build make pkg-config
  # libraries (see docs/dependencies.md)
  zlib1g-dev libcli11-dev libasio-dev libssl-dev libgtest-dev libgmock-dev libtomlplusplus-dev
  # hyphad's HTTP API: the server library and JSON
  libcpp-httplib-dev nlohmann-json3-dev
  # the download manager's fetches (HTTP and HTTPS, Range, redirects)
  libcurl4-openssl-dev
  # the reference implementation, peer of the interop tests and the benchmarks
  erlang-nox erlang-dev elixir
  # the DNS server the dns formation strategy's tests ask (the binary only, no system service)
  dnsmasq-base
  # the dashboard's browser tests and the demo: nginx in front of three hyphad, headless Chromium
  # driven by selenium (Debian's python3 module: run with /usr/bin/python3)
  nginx-light chromium chromium-driver python3-selenium
  # the packaging test's clean Debian 12 (a minimal bookworm from the Debian mirror, in a chroot)
  mmdebstrap
  # the HTTP load generator of bench/run.sh apps (a C client: the figures are the server's)
  wrk
)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "setup: installing ${missing[*]}" >&2
sudo_cmd=()
[[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
if ! "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/hypha-setup.log 2>&1; then
  "${sudo_cmd[@]}" apt-get update -qq >>/tmp/hypha-setup.log 2>&1
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >>/tmp/hypha-setup.log 2>&1 \
    || { echo "setup: apt-get failed, see /tmp/hypha-setup.log" >&2; tail -20 /tmp/hypha-setup.log >&2; exit 1; }
fi

#!/usr/bin/env bash
# Packaging (docs/packaging.md), from a finished build tree:
#   1. cmake --install into a prefix of its own;
#   2. a separate project finds it with find_package(hypha CONFIG), builds, runs;
#   3. the same program built with pkg-config only;
#   4. CPack makes the two .deb files; their fields are right, and hyphad unpacked from the
#      package runs (a bad config: exit 2; a good one: started, SIGTERM, exit 0);
#   5. on a clean Debian 12 (a minimal bookworm made by mmdebstrap from the Debian mirror, kept
#      as a tarball in BUILD_DIR for the next run, unpacked fresh each time, run in a chroot in a
#      mount namespace of its own): `apt-get install ./hypha.deb ./libhypha-dev.deb` pulls their
#      dependencies from the mirror, the postinst made the user and /etc/hypha/hyphad.toml, the
#      consumer builds there with pkg-config and runs, hyphad runs as the hypha user from the
#      installed config (answers /health, `hypha ping` from the chroot says pong, SIGTERM: 0).
#      Needs root (chroot) and the Debian mirror (HYPHA_DEBIAN_MIRROR, default deb.debian.org).
# Usage: package_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1 src=$2
work=$(mktemp -d)
trap 'kill "${pid:-}" 2>/dev/null || true; [[ -n "${chroot_pid:-}" ]] && kill -9 "$chroot_pid" 2>/dev/null; rm -rf "$work"' EXIT
fails=0
check() {  # check WHAT EXPECTED ACTUAL
  if [[ "$2" != "$3" ]]; then echo "FAIL $1: expected [$2], got [$3]"; fails=1; else echo "ok   $1"; fi
}
port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

cmake --install "$build" --prefix "$work/prefix" >"$work/install.log"
for f in bin/hypha bin/hyphad include/hypha/hypha.hpp lib/libhypha_cluster.a lib/cmake/hypha/hyphaConfig.cmake \
         lib/pkgconfig/hypha.pc lib/systemd/system/hyphad.service share/doc/hypha/examples/hyphad.toml; do
  check "installed $f" yes "$([[ -e $work/prefix/$f ]] && echo yes || echo no)"
done

cmake -S "$src/tests/package/consumer" -B "$work/consumer" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_PREFIX_PATH="$work/prefix" >"$work/consumer.log" 2>&1 || { cat "$work/consumer.log"; exit 1; }
cmake --build "$work/consumer" >>"$work/consumer.log" 2>&1 || { tail -30 "$work/consumer.log"; exit 1; }
check "find_package(hypha CONFIG): the program runs" "consumer: consumer@127.0.0.1 {ok,[1,2]}" \
      "$("$work/consumer/consumer" "$(port)")"

export PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig"
check "pkg-config: version" "0.1.0" "$(pkg-config --modversion hypha)"
# shellcheck disable=SC2046
g++ -O1 -o "$work/consumer_pc" "$src/tests/package/consumer/main.cpp" $(pkg-config --cflags --libs hypha) 2>"$work/pc.log" \
  || { tail -30 "$work/pc.log"; exit 1; }
check "pkg-config: the program runs" "consumer: consumer@127.0.0.1 {ok,[1,2]}" "$("$work/consumer_pc" "$(port)")"

(cd "$work" && cpack --config "$build/CPackConfig.cmake" -B "$work/debs" >"$work/cpack.log" 2>&1) || { cat "$work/cpack.log"; exit 1; }
deb=$(ls "$work"/debs/hypha_*.deb) dev=$(ls "$work"/debs/libhypha-dev_*.deb)
check "hypha.deb: package" hypha "$(dpkg-deb -f "$deb" Package)"
check "libhypha-dev.deb: package" libhypha-dev "$(dpkg-deb -f "$dev" Package)"
depends=$(dpkg-deb -f "$deb" Depends)
for lib in libc6 libssl3 libcurl4 libtomlplusplus3; do
  check "hypha.deb depends on $lib" yes "$([[ $depends == *"$lib"* ]] && echo yes || echo no)"
done
check "hypha.deb: postinst" yes "$(dpkg-deb -I "$deb" postinst >/dev/null 2>&1 && echo yes || echo no)"
contents=$(dpkg-deb -c "$deb") dev_contents=$(dpkg-deb -c "$dev")
for f in ./usr/bin/hyphad ./usr/bin/hypha ./usr/lib/systemd/system/hyphad.service ./usr/share/doc/hypha/examples/hyphad.toml; do
  check "hypha.deb holds $f" yes "$(grep -q " ${f}\$" <<<"$contents" && echo yes || echo no)"
done
for f in ./usr/lib/cmake/hypha/hyphaConfig.cmake ./usr/lib/pkgconfig/hypha.pc ./usr/include/hypha/hypha.hpp ./usr/lib/libhypha_cluster.a; do
  check "libhypha-dev.deb holds $f" yes "$(grep -q " ${f}\$" <<<"$dev_contents" && echo yes || echo no)"
done

dpkg-deb -x "$deb" "$work/root"
hyphad="$work/root/usr/bin/hyphad"
printf '[node]\nname = "pkg@127.0.0.1"\n[http]\nbnid = 1\n' >"$work/bad.toml"
set +e
"$hyphad" --config "$work/bad.toml" >/dev/null 2>&1
check "the packaged hyphad refuses a bad config" 2 "$?"
set -e
# The example config, with a free port each and a cookie: it starts.
sed -e "s/^port = 8080/port = $(port)/" -e 's/^cookie = .*/cookie = "pkg-test"/' \
    -e "s|/var/lib/hypha/downloads|$work/downloads|" -e 's/^name = .*/name = "pkg@127.0.0.1"/' \
    "$work/root/usr/share/doc/hypha/examples/hyphad.toml" >"$work/good.toml"
ERL_EPMD_PORT=$(port) "$hyphad" --config "$work/good.toml" >"$work/out" 2>"$work/err" &
pid=$!
for _ in $(seq 300); do grep -q started "$work/out" && break; sleep 0.1; done
check "the packaged hyphad starts with the example config" yes "$(grep -q 'hyphad pkg@127.0.0.1 started' "$work/out" && echo yes || { cat "$work/err" >&2; echo no; })"
kill -TERM "$pid"
set +e
wait "$pid"
check "SIGTERM: exit 0" 0 "$?"
set -e
pid=

# 5. A clean Debian 12.
[[ $(id -u) -eq 0 ]] || { echo "FAIL clean Debian 12: needs root (chroot)"; exit 1; }
command -v mmdebstrap >/dev/null || { echo "FAIL clean Debian 12: mmdebstrap missing (scripts/setup.sh installs it)"; exit 1; }
mirror=${HYPHA_DEBIAN_MIRROR:-http://deb.debian.org/debian}
base="$build/debian12-base.tar"
if [[ ! -s $base ]]; then
  mmdebstrap --variant=apt --quiet bookworm "${base%.tar}.tmp.tar" "deb $mirror bookworm main" "deb $mirror bookworm-updates main" \
    "deb ${HYPHA_DEBIAN_SECURITY:-http://deb.debian.org/debian-security} bookworm-security main" >"$work/mmdebstrap.log" 2>&1 \
    || { tail -20 "$work/mmdebstrap.log"; echo "FAIL clean Debian 12: mmdebstrap (is $mirror reachable?)"; exit 1; }
  mv "${base%.tar}.tmp.tar" "$base"
fi
root12="$work/debian12"
mkdir -p "$root12"
tar -C "$root12" -xf "$base"
cp "$deb" "$dev" "$root12/tmp/"
cp "$src/tests/package/consumer/main.cpp" "$root12/tmp/consumer.cpp"
cp /etc/resolv.conf "$root12/etc/resolv.conf"
http12=$(port) epmd12=$(port)
cat >"$root12/tmp/inside.sh" <<INSIDE
set -e
export DEBIAN_FRONTEND=noninteractive ERL_EPMD_PORT=$epmd12
apt-get update -qq
apt-get install -y -qq --no-install-recommends /tmp/$(basename "$deb") /tmp/$(basename "$dev") pkg-config >/tmp/apt.log 2>&1 \
  || { tail -20 /tmp/apt.log; exit 1; }
echo "user: \$(getent passwd hypha | cut -d: -f1,6,7)"
echo "config: \$(stat -c '%U:%G %a' /etc/hypha/hyphad.toml)"
g++ -O1 -o /tmp/consumer /tmp/consumer.cpp \$(pkg-config --cflags --libs hypha)
/tmp/consumer $epmd12
# What an admin does: a name, a cookie, a port; then the service's state directory.
sed -i -e 's/^port = 8080/port = $http12/' -e 's/^cookie = .*/cookie = "clean-debian"/' /etc/hypha/hyphad.toml
install -d -o hypha -g hypha /var/lib/hypha
setpriv --reuid=hypha --regid=hypha --init-groups env ERL_EPMD_PORT=$epmd12 /usr/bin/hyphad --config /etc/hypha/hyphad.toml >/tmp/hyphad.out 2>/tmp/hyphad.err &
hpid=\$!
for _ in \$(seq 300); do grep -q started /tmp/hyphad.out && break; sleep 0.1; done
cat /tmp/hyphad.out
echo "ping: \$(hypha ping hypha@127.0.0.1 --cookie clean-debian 2>&1)"
touch /tmp/ready
while [ ! -e /tmp/stop ]; do sleep 0.1; done
kill -TERM \$hpid
set +e
wait \$hpid
echo "hyphad exit: \$?"
INSIDE
unshare --mount --propagation private sh -c "mount -t proc proc '$root12/proc' && mount --bind /dev '$root12/dev' && \
  exec chroot '$root12' sh /tmp/inside.sh" >"$work/inside.out" 2>&1 &
chroot_pid=$!
for _ in $(seq 1800); do [[ -e $root12/tmp/ready ]] || ! kill -0 "$chroot_pid" 2>/dev/null && break; sleep 0.1; done
health=$(/usr/bin/python3 -c "import urllib.request,sys; print(urllib.request.urlopen('http://127.0.0.1:$http12/health', timeout=5).read().decode())" 2>&1 || true)
touch "$root12/tmp/stop"
set +e
wait "$chroot_pid"
rc=$?
set -e
chroot_pid=
out12=$(cat "$work/inside.out")
check "clean Debian 12: install, build, run (exit)" 0 "$rc"
check "clean Debian 12: the postinst's user" "user: hypha:/var/lib/hypha:/usr/sbin/nologin" "$(grep '^user: ' <<<"$out12")"
check "clean Debian 12: the postinst's config" "config: root:hypha 640" "$(grep '^config: ' <<<"$out12")"
check "clean Debian 12: the consumer built with pkg-config runs" "consumer: consumer@127.0.0.1 {ok,[1,2]}" "$(grep '^consumer: ' <<<"$out12")"
check "clean Debian 12: hyphad started as hypha from /etc/hypha/hyphad.toml" yes \
      "$(grep -q 'hyphad hypha@127.0.0.1 started' <<<"$out12" && echo yes || echo no)"
check "clean Debian 12: GET /health" '{"node":"hypha@127.0.0.1","status":"ok"}' "$health"
check "clean Debian 12: hypha ping" "ping: pong" "$(grep '^ping: ' <<<"$out12")"
check "clean Debian 12: SIGTERM: exit 0" "hyphad exit: 0" "$(grep '^hyphad exit: ' <<<"$out12")"
[[ $fails -eq 0 ]] || { echo "--- inside the chroot:"; cat "$work/inside.out"; cat "$root12/tmp/hyphad.err" 2>/dev/null; }
exit $fails

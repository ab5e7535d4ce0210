#!/usr/bin/env bash
# Packaging (docs/packaging.md), from a finished build tree:
#   1. cmake --install into a prefix of its own;
#   2. a separate project finds it with find_package(hypha CONFIG), builds, runs;
#   3. the same program built with pkg-config only;
#   4. CPack makes the two .deb files; their fields are right, and hyphad unpacked from the
#      package runs (a bad config: exit 2; a good one: started, SIGTERM, exit 0).
# Usage: package_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1 src=$2
work=$(mktemp -d)
trap 'kill "${pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
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
exit $fails

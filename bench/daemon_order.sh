#!/usr/bin/env bash
# Regenerates engine/symbol-order.txt and supervisor/symbol-order.txt: the functions
# berthd and berth-supervisor run, which their release links put first in their text
# (berth-link-order; bench/README, "Code layout").
#
# Runs berthd (which starts its own supervisor) under uftrace, every function patched, and
# drives it with the docker CLI as a user starts out: version and info, an image imported,
# images, `run --rm` with no network and on the default bridge, a detached container with
# logs, inspect, ps, stop and rm, networks and volumes listed; then idles and stops it.
# uftrace follows the supervisor through its exec (both are dynamically linked; valgrind
# cannot run them: it has no openat2). Regenerate after changing the daemons or the
# toolchain: symbols of another build only lose their place, the link still succeeds.
# Usage: bench/daemon_order.sh   (after `make build`; needs uftrace and the docker CLI)
set -euo pipefail
cd "$(dirname "$0")/.."
HOST=$(rustc -vV | sed -n 's/^host: //p')
STATIC=target/static/$HOST/release
for tool in uftrace docker nm python3; do
  command -v "$tool" >/dev/null || { echo "daemon_order: $tool is missing (apt-get install uftrace docker.io binutils python3)" >&2; exit 1; }
done
T=$(mktemp -d /tmp/berth-order.XXXXXX)
BERTHD_PID=
cleanup() {
  if [ -n "$BERTHD_PID" ]; then
    docker -H "unix://$T/b.sock" rm -f order-d1 >/dev/null 2>&1 || true
    kill "$BERTHD_PID" 2>/dev/null || true
    wait "$BERTHD_PID" 2>/dev/null || true
  fi
  rm -rf "$T"
}
trap cleanup EXIT
mkdir -p "$T/bin"
cp target/release/berthd target/release/berth-supervisor "$STATIC/berth-shim" "$STATIC/berth-runtime" "$T/bin/"

# A busybox image to import (no registry here).
mkdir -p "$T/rootfs/bin" "$T/rootfs/etc"
cp /bin/busybox "$T/rootfs/bin/"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$T/rootfs/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$T/rootfs/etc/passwd"
printf 'root:x:0:\n' > "$T/rootfs/etc/group"
tar -C "$T/rootfs" -cf "$T/rootfs.tar" .

PATH="$T/bin:$PATH" uftrace record -P . --force --no-libcall --demangle=no -d "$T/trace" \
  "$T/bin/berthd" --data-root "$T/data" --exec-root "$T/exec" -H "unix://$T/b.sock" \
  >"$T/berthd.log" 2>&1 &
BERTHD_PID=$!
D=(timeout 120 docker -H "unix://$T/b.sock")
for _ in $(seq 600); do "${D[@]}" version >/dev/null 2>&1 && break; sleep 0.2; done
"${D[@]}" version >/dev/null || { tail -20 "$T/berthd.log" >&2; exit 1; }
"${D[@]}" info >/dev/null
"${D[@]}" import "$T/rootfs.tar" order-busybox:1 >/dev/null
"${D[@]}" images >/dev/null
"${D[@]}" run --rm --network none order-busybox:1 true
"${D[@]}" run --rm order-busybox:1 sh -c 'echo hello'  >/dev/null
"${D[@]}" run -d --name order-d1 order-busybox:1 sh -c 'echo started; exec sleep 300' >/dev/null
"${D[@]}" logs order-d1 >/dev/null
"${D[@]}" inspect order-d1 >/dev/null
"${D[@]}" ps >/dev/null
"${D[@]}" stop -t 1 order-d1 >/dev/null
"${D[@]}" rm order-d1 >/dev/null
"${D[@]}" network ls >/dev/null
"${D[@]}" volume ls >/dev/null
sleep 5
kill -TERM "$(pgrep -f "^$T/bin/berthd ")"
wait "$BERTHD_PID" 2>/dev/null || true
BERTHD_PID=

# Every function uftrace saw entered, then each binary's share of them.
uftrace report -d "$T/trace" --demangle=no -f call --no-pager 2>/dev/null \
  | awk 'NR > 2 && $2 !~ /^linux:/ {print $2}' | LC_ALL=C sort -u > "$T/functions.txt"
[ -s "$T/functions.txt" ] || { echo "daemon_order: uftrace recorded nothing" >&2; exit 1; }
for pair in engine:berthd supervisor:berth-supervisor; do
  crate=${pair%%:*} binary=${pair#*:}
  nm --defined-only "$T/bin/$binary" | awk '$2 ~ /^[tTwW]$/ {print $3}' | LC_ALL=C sort -u \
    | LC_ALL=C comm -12 - "$T/functions.txt" > "$crate/symbol-order.txt"
  echo "$crate/symbol-order.txt: $(wc -l < "$crate/symbol-order.txt") symbols"
done

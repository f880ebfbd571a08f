#!/usr/bin/env bash
# Archives through berthd, two builds side by side in one run (these machines are
# noisy: compare the ratios): a SIZE_MB file `docker cp`'d into a running container
# and back out, and `docker load` of an image whose layer holds that file. For each:
# the median wall time of RUNS, and berthd's peak RSS during the operation (VmHWM,
# reset before each through /proc/PID/clear_refs). The docker CLI is the client.
#
# Usage: bench/archives.sh BEFORE_BIN_DIR AFTER_BIN_DIR [SIZE_MB [RUNS]]
#   each BIN_DIR holds berthd, berth-supervisor, berth-shim and berth-runtime.
set -euo pipefail
BEFORE=$(cd "$1" && pwd)
AFTER=$(cd "$2" && pwd)
SIZE_MB=${3:-300}
RUNS=${4:-3}
for t in docker busybox python3 tar; do
  command -v "$t" >/dev/null || { echo "missing $t (deploy/install-deps.sh)" >&2; exit 1; }
done
T=$(mktemp -d /tmp/berth-bench-archives.XXXXXX)
export DOCKER_CONFIG="$T/cli"
mkdir -p "$T/cli" && echo '{}' > "$T/cli/config.json"
PID=''
stop() {
  [ -n "$PID" ] || return 0
  timeout 60 docker -H "unix://$T/s.sock" rm -f c >/dev/null 2>&1 || true
  kill "$PID" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.2; done
  kill -9 "$PID" 2>/dev/null || true
  PID=''
}
cleanup() {
  set +e
  stop
  for p in /proc/[0-9]*; do
    case "$(readlink "$p/root" 2>/dev/null)" in "$T"/*) kill -9 "${p#/proc/}" 2>/dev/null;; esac
  done
  grep " $T/" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l
  rm -rf "$T"
}
trap cleanup EXIT

# The payload and a busybox rootfs; the image is the rootfs plus the payload.
mkdir -p "$T/rootfs/bin" "$T/rootfs/tmp" "$T/out"
cp "$(command -v busybox)" "$T/rootfs/bin/busybox"
for a in sh sleep cat; do ln -s busybox "$T/rootfs/bin/$a"; done
head -c "${SIZE_MB}M" /dev/urandom > "$T/big"
tar -C "$T/rootfs" -cf "$T/rootfs.tar" .
cp -r "$T/rootfs" "$T/imgfs" && cp "$T/big" "$T/imgfs/big"
tar -C "$T/imgfs" -cf "$T/img-rootfs.tar" .
rm -rf "$T/imgfs"

now() { date +%s.%N; }
median() { python3 -c 'import sys,statistics;print("%.2f"%statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }
peak_reset() { echo 5 > "/proc/$PID/clear_refs"; }
peak_mb() { awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$PID/status"; }

declare -A RESULT
for side in before after; do
  bin=$BEFORE; [ "$side" = after ] && bin=$AFTER
  rm -rf "$T/data" "$T/exec"
  "$bin/berthd" --data-root "$T/data" --exec-root "$T/exec" -H "unix://$T/s.sock" \
    >"$T/$side.log" 2>&1 &
  PID=$!
  D=(docker -H "unix://$T/s.sock")
  for _ in $(seq 100); do "${D[@]}" version >/dev/null 2>&1 && break; sleep 0.2; done
  "${D[@]}" import "$T/rootfs.tar" bb:bench >/dev/null
  "${D[@]}" import "$T/img-rootfs.tar" big:bench >/dev/null
  "${D[@]}" save -o "$T/img-$side.tar" big:bench
  "${D[@]}" rmi big:bench >/dev/null
  "${D[@]}" run -d --name c --network none bb:bench sleep 1000 >/dev/null
  for op in cp_in cp_out load; do
    times=() peaks=()
    for _ in $(seq "$RUNS"); do
      case $op in
        cp_in) "${D[@]}" exec c rm -f /tmp/big ;;
        cp_out) rm -f "$T/out/big" ;;
        load) "${D[@]}" rmi big:bench >/dev/null 2>&1 || true ;;
      esac
      sync; peak_reset; t0=$(now)
      case $op in
        cp_in) "${D[@]}" cp "$T/big" c:/tmp/big ;;
        cp_out) "${D[@]}" cp c:/tmp/big "$T/out/big" ;;
        load) "${D[@]}" load -q -i "$T/img-before.tar" >/dev/null ;;
      esac
      t1=$(now)
      times+=("$(python3 -c "print($t1-$t0)")") peaks+=("$(peak_mb)")
    done
    RESULT[$side.$op.t]=$(median "${times[@]}")
    RESULT[$side.$op.rss]=$(median "${peaks[@]}")
  done
  cmp -s "$T/big" "$T/out/big" || { echo "$side: cp out differs" >&2; exit 1; }
  stop
done
printf '%-32s %12s %12s %8s   %14s %14s\n' "operation (${SIZE_MB} MB)" before after ratio "peak RSS before" "after"
for op in cp_in cp_out load; do
  b=${RESULT[before.$op.t]} a=${RESULT[after.$op.t]}
  printf '%-32s %11ss %11ss %7sx   %11s MB %11s MB\n' "$op" "$b" "$a" \
    "$(python3 -c "print('%.2f'%($b/$a))")" "${RESULT[before.$op.rss]}" "${RESULT[after.$op.rss]}"
done

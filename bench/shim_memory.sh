#!/usr/bin/env bash
# RSS and PSS per shim with N running containers (default 50): berth-shim (+berth-runtime)
# vs containerd-shim-runc-v2 (+runc), both driven by berth-supervisor in temp dirs; and
# berth-shim writing the container's json-file log itself (as under berthd), measured
# after each container printed 20000 lines (the shim's buffers in use); then berth-shim
# under containerd 1.6 (ctr run -d), as containerd starts and drives it.
# Usage: bench/shim_memory.sh [N] [target/release]
set -euo pipefail
. "$(dirname "$0")/lib/containerd.sh"
N=${1:-50}
BIN=$(cd "${2:-target/release}" && pwd)
T=$(mktemp -d /tmp/berth-bench.XXXXXX)
SV_PID=
CTD_PID=
cleanup() {
  if [ -n "$CTD_PID" ]; then
    for id in $(seq 1 "$N"); do
      timeout 30 ctr --address "$T/ctd/c.sock" task kill -s 9 "ctd-$id" >/dev/null 2>&1 || true
    done
    sleep 1
    for id in $(seq 1 "$N"); do
      timeout 30 ctr --address "$T/ctd/c.sock" task delete "ctd-$id" >/dev/null 2>&1 || true
      timeout 30 ctr --address "$T/ctd/c.sock" container delete "ctd-$id" >/dev/null 2>&1 || true
    done
    stop_containerd "$T/ctd"
  fi
  for id in $(seq 1 "$N"); do
    for rt in berth blog runc; do "$BIN/berth-ctl" -a "$T/s.sock" kill -s 9 "$rt$id" >/dev/null 2>&1 || true; done
  done
  sleep 1
  for id in $(seq 1 "$N"); do
    for rt in berth blog runc; do "$BIN/berth-ctl" -a "$T/s.sock" delete "$rt$id" >/dev/null 2>&1 || true; done
  done
  [ -n "$SV_PID" ] && kill "$SV_PID" 2>/dev/null || true
  rm -rf "$T"
}
trap cleanup EXIT
mkdir -p "$T/b/rootfs/bin"
cp /bin/busybox "$T/b/rootfs/bin/"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$T/b/rootfs/bin/$a"; done
mkdir -p "$T/b/rootfs/"{proc,sys,dev,tmp,etc}
(cd "$T/b" && "$BIN/berth-runtime" spec)
python3 - "$T/b/config.json" <<'PY'
import json, sys
p = sys.argv[1]; c = json.load(open(p))
c["process"]["args"] = ["sleep", "3600"]; c["process"]["terminal"] = False
json.dump(c, open(p, "w"))
PY
# The logged containers print first, then sleep.
mkdir -p "$T/bl" "$T/logs" && cp -a "$T/b/rootfs" "$T/bl/" && cp "$T/b/config.json" "$T/bl/"
python3 - "$T/bl/config.json" <<'PY'
import json, sys
p = sys.argv[1]; c = json.load(open(p))
c["process"]["args"] = ["sh", "-c", "seq 1 20000; exec sleep 3600"]
json.dump(c, open(p, "w"))
PY
"$BIN/berth-supervisor" --root "$T/root" --state "$T/state" --address "$T/s.sock" --log-level warn 2>"$T/sv.log" &
SV_PID=$!
for _ in $(seq 100); do [ -S "$T/s.sock" ] && break; sleep 0.05; done
measure() { # prefix shim-pattern
  local rss=0 pss=0 n=0
  for pid in $(pgrep -f "$2"); do
    grep -q -- "-id $1" "/proc/$pid/cmdline" 2>/dev/null || tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q -- "-id $1" || continue
    r=$(awk '/^Rss:/{print $2}' "/proc/$pid/smaps_rollup"); p=$(awk '/^Pss:/{print $2}' "/proc/$pid/smaps_rollup")
    rss=$((rss + r)); pss=$((pss + p)); n=$((n + 1))
  done
  echo "$1: $n shims, mean RSS $((rss / n)) kB, mean PSS $((pss / n)) kB"
}
for rt in berth blog runc; do
  for id in $(seq 1 "$N"); do
    log=()
    case $rt in
      berth) "$BIN/berth-ctl" -a "$T/s.sock" create --bundle "$T/b" "$rt$id" ;;
      blog) "$BIN/berth-ctl" -a "$T/s.sock" create --bundle "$T/bl" "$rt$id"
            log=(--log-path "$T/logs/$rt$id-json.log") ;;
      runc) "$BIN/berth-ctl" -a "$T/s.sock" create --runtime io.containerd.runc.v2 --runtime-binary /usr/sbin/runc --bundle "$T/b" "$rt$id" ;;
    esac
    "$BIN/berth-ctl" -a "$T/s.sock" start "${log[@]}" "$rt$id" >/dev/null
  done
done
sleep 2
measure berth "berth-shim"
measure blog "berth-shim"
measure runc "containerd-shim-runc-v2"

# Under containerd: its own start of the shim, events and calls.
mkdir -p "$T/ctd/bin"
ln -s "$BIN/berth-shim" "$T/ctd/bin/containerd-shim-berth-v2"
start_containerd "$T/ctd" "$T/ctd/bin"
for id in $(seq 1 "$N"); do
  timeout 60 ctr --address "$T/ctd/c.sock" run -d --runtime io.containerd.berth.v2 \
    --rootfs "$T/b/rootfs" "ctd-$id" sleep 3600 >/dev/null
done
sleep 2
measure_ctd() {
  local rss=0 pss=0 n=0
  for pid in $(pgrep -f berth-shim); do
    tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q -- "-address $T/ctd/c.sock" || continue
    rss=$((rss + $(awk '/^Rss:/{print $2}' "/proc/$pid/smaps_rollup")))
    pss=$((pss + $(awk '/^Pss:/{print $2}' "/proc/$pid/smaps_rollup")))
    n=$((n + 1))
  done
  echo "berth under containerd: $n shims, mean RSS $((rss / n)) kB, mean PSS $((pss / n)) kB"
}
measure_ctd

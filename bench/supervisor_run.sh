#!/usr/bin/env bash
# create+start+wait+delete of busybox `true`: berth-supervisor over gRPC (berth-ctl;
# berth-shim + berth-runtime, and containerd-shim-runc-v2 + runc) vs containerd 1.6's
# `ctr run --rm` with runc, side by side with hyperfine. Everything in temp dirs.
# Usage: bench/supervisor_run.sh [RUNS] [target/release]
set -euo pipefail
. "$(dirname "$0")/lib/containerd.sh"
RUNS=${1:-20}
BIN=$(cd "${2:-target/release}" && pwd)
T=$(mktemp -d /tmp/berth-bench.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; sleep 0.5; umount -l "$T/ctd/root" 2>/dev/null || true; rm -rf "$T"; }
trap cleanup EXIT
mkdir -p "$T/b/rootfs/bin" "$T/ctd"
cp /bin/busybox "$T/b/rootfs/bin/"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$T/b/rootfs/bin/$a"; done
mkdir -p "$T/b/rootfs/"{proc,sys,dev,tmp,etc}
(cd "$T/b" && "$BIN/berth-runtime" spec)
python3 - "$T/b/config.json" <<'PY'
import json, sys
p = sys.argv[1]; c = json.load(open(p))
c["process"]["args"] = ["true"]; c["process"]["terminal"] = False
json.dump(c, open(p, "w"))
PY
"$BIN/berth-supervisor" --root "$T/root" --state "$T/state" --address "$T/s.sock" --log-level warn 2>"$T/sv.log" &
PIDS+=($!)
start_containerd "$T/ctd"
PIDS+=("$CTD_PID")
for _ in $(seq 200); do [ -S "$T/s.sock" ] && break; sleep 0.05; done
CTL="$BIN/berth-ctl -a $T/s.sock"
hyperfine -N --warmup 2 --runs "$RUNS" --export-markdown "$T/result.md" \
  -n "berth-supervisor + berth-shim + berth-runtime" \
  "sh -c 'id=b\$\$; $CTL create --bundle $T/b \$id && $CTL start --wait \$id; $CTL delete \$id'" \
  -n "berth-supervisor + runc-v2 shim + runc" \
  "sh -c 'id=r\$\$; $CTL create --runtime io.containerd.runc.v2 --runtime-binary /usr/sbin/runc --bundle $T/b \$id && $CTL start --wait \$id; $CTL delete \$id'" \
  -n "containerd + ctr run --rm (runc)" \
  "sh -c 'ctr -a $T/ctd/c.sock run --rm --rootfs $T/b/rootfs c\$\$ /bin/true'"
cat "$T/result.md"

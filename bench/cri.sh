#!/bin/bash
# bench/cri.sh [RUNS] [PODS] [BIN]
# berthd's CRI vs containerd 1.6's CRI plugin, side by side, both driven by crictl:
#  1. one pod's life: RunPodSandbox + CreateContainer + StartContainer of busybox
#     `true`, then StopPodSandbox + RemovePodSandbox (hyperfine, RUNS runs each, 20);
#  2. memory with PODS pods (30) each running `sleep`: berthd + berth-supervisor +
#     berth-shims vs containerd + containerd-shim-runc-v2s (RSS and PSS, smaps_rollup;
#     the pods' own processes are not counted).
# Uses the offline CRI kit (KIT, default ../shared/cri-kit): its registry on
# 127.0.0.1:5000 for the busybox image, and start-containerd-cri.sh for containerd
# (bridge cri0, 10.231.7.0/24). berthd gets bridge crib0 and 10.231.8.0/24. Everything
# started here is stopped by PID at the end, pods removed, bridges deleted.
set -euo pipefail
RUNS=${1:-20}
PODS=${2:-30}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$(cd "${3:-$ROOT/target/release}" && pwd)
KIT=${KIT:-$ROOT/../shared/cri-kit}
[ -d "$KIT" ] || KIT=/work/shared/cri-kit
export CRI_DIR=${CRI_DIR:-/tmp/cri}
export REGISTRY_ADDR=${REGISTRY_ADDR:-127.0.0.1:5000}
CRICTL=${CRICTL:-$CRI_DIR/cri-tools/build/bin/linux/amd64/crictl}
export CRICTL
IMAGE=registry.k8s.io/e2e-test-images/busybox:1.29-2
B=$(mktemp -d /tmp/berth-cri-bench.XXXXXX)
SUBNET=10.231.8.0/24 BRIDGE=crib0
BERTH=unix://$B/cri.sock CTRD=unix://$CRI_DIR/containerd.sock
started_reg=0 started_ctrd=0 pid=

cleanup() {
  set +e
  for ep in "$BERTH" "$CTRD"; do
    timeout 300 "$CRICTL" -r "$ep" -i "$ep" --timeout 120s rmp -fa >/dev/null 2>&1
  done
  if [ -n "$pid" ]; then
    kill -TERM "$pid" 2>/dev/null; for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
  fi
  ip link del "$BRIDGE" 2>/dev/null; ip route del unreachable "$SUBNET" metric 4000 2>/dev/null
  [ $started_ctrd = 1 ] && "$KIT/start-containerd-cri.sh" stop >/dev/null
  [ $started_reg = 1 ] && "$KIT/registry.sh" stop "$REGISTRY_ADDR" >/dev/null
  grep -q " $B/" /proc/self/mountinfo && awk -v p="$B/" 'index($5, p) == 1 {print $5}' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l
  rm -rf "$B"
}
trap cleanup EXIT

"$KIT/registry.sh" status "$REGISTRY_ADDR" >/dev/null 2>&1 || started_reg=1
"$KIT/registry.sh" start "$REGISTRY_ADDR" >/dev/null
[ -s "$CRI_DIR/images/pushed.txt" ] || "$KIT/make-images.sh" "$REGISTRY_ADDR" >/dev/null
"$KIT/start-containerd-cri.sh" status >/dev/null 2>&1 || started_ctrd=1
"$KIT/start-containerd-cri.sh" start >/dev/null
mkdir -p "$B/net.d" "$B/ipam"
cat > "$B/net.d/10-bench.conflist" <<EOT
{"cniVersion": "0.4.0", "name": "berth-cri-bench", "plugins": [
  {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "$SUBNET"}]], "dataDir": "$B/ipam"}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}
EOT
ip route add unreachable "$SUBNET" metric 4000 2>/dev/null || true
"$BIN/berthd" --data-root "$B/data" --exec-root "$B/exec" -H "unix://$B/berth.sock" \
  --cri-socket "$B/cri.sock" --cni-conf-dir "$B/net.d" --cni-bin-dir /usr/lib/cni --log-level warn \
  --registry-mirror "registry.k8s.io=http://$REGISTRY_ADDR" > "$B/berthd.log" 2>&1 &
pid=$!
for _ in $(seq 1 200); do [ -S "$B/cri.sock" ] && break; sleep 0.1; done

cat > "$B/pod.json" <<'EOT'
{"metadata": {"name": "bench", "namespace": "bench", "uid": "bench-uid", "attempt": 0}, "linux": {}}
EOT
cat > "$B/true.json" <<EOT
{"metadata": {"name": "true"}, "image": {"image": "$IMAGE"}, "command": ["true"], "linux": {}}
EOT
cat > "$B/cycle.sh" <<'EOT'
#!/bin/sh
# One pod's life through the CRI at $1.
set -e
c() { "$CRICTL" -r "$EP" -i "$EP" "$@"; }
EP=$1 D=$(dirname "$0")
P=$(c runp "$D/pod.json")
C=$(c create "$P" "$D/true.json" "$D/pod.json")
c start "$C" >/dev/null
c stopp "$P" >/dev/null
c rmp "$P" >/dev/null
EOT
chmod +x "$B/cycle.sh"
for ep in "$BERTH" "$CTRD"; do
  "$CRICTL" -r "$ep" -i "$ep" pull "$IMAGE" >/dev/null
  "$B/cycle.sh" "$ep"   # warm: the sandbox image made/pulled, caches filled
done

echo "== RunPodSandbox+CreateContainer+StartContainer of busybox true, then StopPodSandbox+RemovePodSandbox"
hyperfine --style basic --runs "$RUNS" --warmup 2 -N \
  -n berthd "$B/cycle.sh $BERTH" -n containerd "$B/cycle.sh $CTRD" | tee "$B/hyperfine.txt"

kb() { awk "/^$2:/{print \$2}" "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }
sum() { local r=0 p=0; for x in "$@"; do r=$((r + $(kb "$x" Rss))); p=$((p + $(kb "$x" Pss))); done; echo "$r $p"; }
# berthd, its berth-supervisor (a child; pgrep -x cannot match names over 15
# characters, so by its executable), then the shims of this instance.
berth_pids() {
  local p
  echo "$pid"
  for p in $(pgrep -P "$pid"); do
    case $(readlink "/proc/$p/exe" 2>/dev/null) in */berth-supervisor) echo "$p" ;; esac
  done
  berth_shims
}
berth_shims() {
  local p
  for p in $(pgrep -x berth-shim); do tr '\0' ' ' < "/proc/$p/cmdline" | grep -q -- "$B/" && echo "$p"; done
}
ctrd_pids() {
  cat "$CRI_DIR/run/containerd.pid"
  for p in $(pgrep -f containerd-shim-runc-v2); do tr '\0' ' ' < "/proc/$p/cmdline" | grep -q -- "-address $CRI_DIR/containerd.sock" && echo "$p"; done
}
pods() {
  local ep=$1 i
  for i in $(seq 1 "$PODS"); do
    sed "s/\"bench\"/\"mem$i\"/; s/bench-uid/mem-uid-$i/" "$B/pod.json" > "$B/pod$i.json"
    cat > "$B/sleep$i.json" <<EOT
{"metadata": {"name": "sleep"}, "image": {"image": "$IMAGE"}, "command": ["sleep", "3600"], "linux": {}}
EOT
    P=$("$CRICTL" -r "$ep" -i "$ep" runp "$B/pod$i.json")
    C=$("$CRICTL" -r "$ep" -i "$ep" create "$P" "$B/sleep$i.json" "$B/pod$i.json")
    "$CRICTL" -r "$ep" -i "$ep" start "$C" >/dev/null
  done
}
echo "== memory with $PODS pods of one sleep container each (kB; daemons + shims, not the pods)"
pods "$BERTH"; sleep 12   # past berthd's periodic heap trim
read -r br bp < <(sum $(berth_pids))
echo "berthd + $(($(berth_pids | wc -l) - 1 - $(berth_shims | wc -l))) berth-supervisor + $(berth_shims | wc -l) berth-shims: RSS $br kB, PSS $bp kB"
pods "$CTRD"; sleep 12
read -r cr cp < <(sum $(ctrd_pids))
echo "containerd + $(ctrd_pids | tail -n +2 | wc -l) containerd-shim-runc-v2: RSS $cr kB, PSS $cp kB"
python3 -c "print('ratio (containerd / berth): RSS %.1fx, PSS %.1fx' % ($cr/$br, $cp/$bp))"

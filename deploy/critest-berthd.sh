#!/bin/bash
# critest-berthd.sh [critest flags...]
#
# Runs cri-tools' conformance suite (critest, validation mode) against berthd's CRI,
# with the offline kit of ../shared/cri-kit (KIT=DIR): its registry on 127.0.0.1:5000
# serving every image critest pulls, and its run-critest.sh. berthd runs from BIN
# (default target/debug) in a private data/exec root under $CRI_DIR/berth, with:
#   --cri-socket $CRI_DIR/berth/cri.sock
#   --registry-mirror registry.k8s.io=http://127.0.0.1:5000 (and gcr.io): critest's
#       image names come from the local registry (critest's --registry-prefix drops tags)
#   a CNI network of its own: bridge "crib0", host-local 10.231.8.0/24 (containerd's
#       baseline uses cri0 and 10.231.7.0/24), portmap; an "unreachable" route for the
#       subnet keeps host traffic for pod addresses on this machine.
# What it starts (registry, berthd) is stopped by PID at the end; pods are removed
# through the CRI, then the bridge, the route and portmap's rules for this network.
# The last line is run-critest.sh's "N passed, M failed, K skipped".
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
KIT=${KIT:-$ROOT/../shared/cri-kit}
[ -d "$KIT" ] || KIT=/work/shared/cri-kit
export CRI_DIR=${CRI_DIR:-/tmp/cri}
export REGISTRY_ADDR=${REGISTRY_ADDR:-127.0.0.1:5000}
BIN=${BIN:-$ROOT/target/debug}
B=$CRI_DIR/berth
CRICTL=${CRICTL:-$CRI_DIR/cri-tools/build/bin/linux/amd64/crictl}
SUBNET=10.231.8.0/24 BRIDGE=crib0 NET=berth-critest
mkdir -p "$B/net.d" "$B/ipam" "$CRI_DIR/run"

started_reg=0 pid=
cleanup() {
  set +e
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    timeout 120 "$CRICTL" -r "unix://$B/cri.sock" -i "unix://$B/cri.sock" --timeout 60s rmp -fa >/dev/null 2>&1
    kill -TERM "$pid"; for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
  fi
  iptables -t nat -S 2>/dev/null | grep -F "name: \\\"$NET\\\"" | grep '^-A' | while read -r rule; do
    chain=$(echo "$rule" | sed -n 's/.* -j \(CNI-DN-[0-9a-f]*\).*/\1/p')
    eval "iptables -t nat ${rule/-A/-D}" 2>/dev/null
    [ -n "$chain" ] && { iptables -t nat -F "$chain"; iptables -t nat -X "$chain"; } 2>/dev/null
  done
  ip link del "$BRIDGE" 2>/dev/null
  ip route del unreachable "$SUBNET" metric 4000 2>/dev/null
  [ $started_reg = 1 ] && "$KIT/registry.sh" stop "$REGISTRY_ADDR"
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$KIT/registry.sh" status "$REGISTRY_ADDR" >/dev/null 2>&1 || started_reg=1
"$KIT/registry.sh" start "$REGISTRY_ADDR"
[ -s "$CRI_DIR/images/pushed.txt" ] || "$KIT/make-images.sh" "$REGISTRY_ADDR"
if ip link show "$BRIDGE" >/dev/null 2>&1; then echo "bridge $BRIDGE exists already" >&2; exit 1; fi
rm -rf "$B/data" "$B/exec" "$B/ipam"/*
# A socket left by an earlier run would look ready before berthd listens.
rm -f "$B/cri.sock" "$B/berth.sock"
cat > "$B/net.d/10-$NET.conflist" <<EOT
{
  "cniVersion": "0.4.0",
  "name": "$NET",
  "plugins": [
    {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "$SUBNET"}]], "dataDir": "$B/ipam"}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOT
ip route add unreachable "$SUBNET" metric 4000 2>/dev/null || true
"$BIN/berthd" --data-root "$B/data" --exec-root "$B/exec" -H "unix://$B/berth.sock" \
  --cri-socket "$B/cri.sock" --cni-conf-dir "$B/net.d" --cni-bin-dir /usr/lib/cni \
  --registry-mirror "registry.k8s.io=http://$REGISTRY_ADDR" --registry-mirror "gcr.io=http://$REGISTRY_ADDR" \
  > "$B/berthd.log" 2>&1 &
pid=$!
for _ in $(seq 1 200); do [ -S "$B/cri.sock" ] && break; sleep 0.1; done
[ -S "$B/cri.sock" ] || { echo "berthd did not start: see $B/berthd.log" >&2; exit 1; }
rc=0
"$KIT/run-critest.sh" "unix://$B/cri.sock" "$@" > "$B/critest-summary.txt" || rc=$?
cleanup >&2; trap - EXIT
cat "$B/critest-summary.txt"
exit $rc

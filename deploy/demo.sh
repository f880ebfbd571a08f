#!/usr/bin/env bash
# Make a busybox bundle in DIR and run it with berth-runtime: the end-to-end demo.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=${1:-/tmp/berth-demo}
bin=${2:-/usr/local/bin}
runtime="$bin/berth-runtime"
busybox=$(command -v busybox || true)
[ -x /bin/busybox ] && busybox=/bin/busybox
[ -n "$busybox" ] || { echo "demo: busybox missing (apt-get install busybox-static)" >&2; exit 1; }

rm -rf "$dir"
mkdir -p "$dir/rootfs/bin" "$dir/rootfs/"{proc,sys,dev,etc,tmp}
cp "$busybox" "$dir/rootfs/bin/busybox"
for applet in $("$busybox" --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$dir/rootfs/bin/$applet"
done
echo "root:x:0:0:root:/root:/bin/sh" > "$dir/rootfs/etc/passwd"

cd "$dir"
"$runtime" spec
# Non-interactive: no terminal; show a few facts from inside the container.
sed -i 's/"terminal": true/"terminal": false/' config.json
python3 - <<'PY'
import json
c = json.load(open("config.json"))
c["process"]["args"] = ["sh", "-c",
    "echo \"hello from $(hostname): pid $$, uid $(id -u)\"; "
    "echo \"capabilities: $(grep CapEff /proc/self/status | cut -f2)\"; "
    "echo \"root is read-only: $(touch /x 2>/dev/null && echo no || echo yes)\""]
json.dump(c, open("config.json", "w"), indent=2)
PY
echo "+ $runtime --root $dir/state run demo"
"$runtime" --root "$dir/state" run demo

# The CRI's pod network: a default bridge (berth-cni0, 10.89.0.0/16, host-local addresses,
# portmap; berthd runs the loopback plugin for lo itself), written only where no CNI
# configuration exists, as containerd's install does.
cni_dir=/etc/cni/net.d
if ! ls "$cni_dir"/*.conflist "$cni_dir"/*.conf "$cni_dir"/*.json >/dev/null 2>&1; then
  mkdir -p "$cni_dir"
  install -m 0644 "$here/cni/10-berth.conflist" "$cni_dir/10-berth.conflist"
  echo "demo: wrote $cni_dir/10-berth.conflist (the CRI's default pod network)"
fi

# The whole stack: berthd (which starts berth-supervisor, one berth-shim per container,
# berth-runtime) in a private root, driven by the berth CLI. The image is made here, by
# importing the same busybox rootfs, so no registry or network is needed.
berthd_root="$dir/berthd"
mkdir -p "$berthd_root"
export BERTH_HOST="unix://$berthd_root/berth.sock"
"$bin/berthd" --data-root "$berthd_root/data" --exec-root "$berthd_root/exec" \
  -H "$BERTH_HOST" --cri-socket "$berthd_root/cri.sock" >"$berthd_root/berthd.log" 2>&1 &
berthd_pid=$!
stop_berthd() {
  "$bin/berth" rm -f demo-web >/dev/null 2>&1 || true
  kill "$berthd_pid" 2>/dev/null || true
  wait "$berthd_pid" 2>/dev/null || true
}
trap stop_berthd EXIT
for _ in $(seq 100); do [ -S "$berthd_root/berth.sock" ] && break; sleep 0.1; done
[ -S "$berthd_root/berth.sock" ] || { echo "demo: berthd did not start:" >&2; cat "$berthd_root/berthd.log" >&2; exit 1; }

say() { echo "+ berth $*"; "$bin/berth" "$@"; }
tar -C "$dir/rootfs" -cf "$dir/rootfs.tar" .
say import -c 'CMD ["sh"]' "$dir/rootfs.tar" busybox:demo
say images
say run --rm --network none --hostname demo --memory 64m busybox:demo \
  sh -c 'echo "hello from $(hostname) through berthd; memory limit $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max)"'
say run -d --name demo-web --network none busybox:demo sh -c 'while true; do date; sleep 1; done' >/dev/null
sleep 1.5
say ps
say logs --tail 1 demo-web
say exec demo-web ps
say rm -f demo-web
if [ -S "$berthd_root/cri.sock" ]; then
  echo "+ the Kubernetes CRI is served on $berthd_root/cri.sock (crictl -r unix://$berthd_root/cri.sock ...)"
fi

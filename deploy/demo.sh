#!/usr/bin/env bash
# Make a busybox bundle in DIR and run it with berth-runtime: the end-to-end demo.
set -euo pipefail
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

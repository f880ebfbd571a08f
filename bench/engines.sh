#!/usr/bin/env bash
# `podman run --rm` and `docker run --rm` of busybox `true`, with berth-runtime vs with
# runc, side by side in one hyperfine run (these machines are noisy: compare ratios).
# Both engines run in a private temp dir (their own roots, sockets, configs; no network),
# are stopped by pid at the end, and leave nothing behind.
#
# Usage: bench/engines.sh [RUNS]      (BERTH_RUNTIME=path to pick another binary)
set -euo pipefail
RUNS=${1:-30}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BERTH=${BERTH_RUNTIME:-$ROOT/target/release/berth-runtime}
[ -x "$BERTH" ] || { echo "no $BERTH: cargo build --release -p berth-runtime" >&2; exit 1; }
RUNC=$(command -v runc || echo /usr/sbin/runc)
for t in podman dockerd docker hyperfine busybox python3 "$RUNC"; do
  command -v "$t" >/dev/null || { echo "missing $t (deploy/install-deps.sh)" >&2; exit 1; }
done

T=$(mktemp -d /tmp/berth-bench-eng.XXXXXX)
CG="berth-bench-engines-$$"
DOCKERD_PID=
cleanup() {
  set +e
  if [ -n "$DOCKERD_PID" ]; then
    docker -H "unix://$T/docker.sock" ps -aq 2>/dev/null | xargs -r docker -H "unix://$T/docker.sock" rm -f >/dev/null 2>&1
    kill "$DOCKERD_PID" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$DOCKERD_PID" 2>/dev/null
  fi
  "${PODMAN[@]}" rm -a -f -t 0 >/dev/null 2>&1
  # Processes of ours still naming the temp dir (dockerd's containerd, shims, conmon).
  for p in $(grep -l -a "$T" /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3); do
    [ "$p" != $$ ] && kill -9 "$p" 2>/dev/null
  done
  sleep 0.5
  grep " $T" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
  for h in /sys/fs/cgroup/*/; do
    [ -d "$h$CG" ] && find "$h$CG" -depth -type d -exec rmdir {} \; 2>/dev/null
  done
  rm -rf "$T"
}
trap cleanup EXIT

# A busybox rootfs tar for `import`.
mkdir -p "$T/rootfs/bin" "$T/rootfs/"{proc,sys,dev,etc,tmp,run,var/tmp}
cp "$(command -v busybox)" "$T/rootfs/bin/busybox"
for a in $(busybox --list); do [ "$a" = busybox ] || ln -s busybox "$T/rootfs/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$T/rootfs/etc/passwd"
printf 'root:x:0:\n' > "$T/rootfs/etc/group"
tar -C "$T/rootfs" -cf "$T/rootfs.tar" .

# dockerd with both runtimes registered.
echo '{}' > "$T/daemon.json"
dockerd --data-root "$T/data" --exec-root "$T/exec" -H "unix://$T/docker.sock" \
  --pidfile "$T/docker.pid" --config-file "$T/daemon.json" --bridge=none --iptables=false \
  --ip-masq=false --cgroup-parent "/$CG/docker" \
  --add-runtime "berth=$BERTH" --add-runtime "runc-bench=$RUNC" >"$T/dockerd.log" 2>&1 &
DOCKERD_PID=$!
# podman reads DOCKER_CONFIG too (auth), so the file must exist.
export DOCKER_CONFIG="$T/cli"
mkdir -p "$T/cli" && echo "{}" > "$T/cli/config.json"
D="docker -H unix://$T/docker.sock"
for _ in $(seq 300); do $D version >/dev/null 2>&1 && break; sleep 0.2; done
$D version >/dev/null || { tail -20 "$T/dockerd.log" >&2; exit 1; }
$D import "$T/rootfs.tar" bench-busybox:1 >/dev/null

# podman in its own roots; one instance per runtime would only differ in --runtime.
cat > "$T/containers.conf" <<EOF
[engine]
events_logger = "file"
events_logfile_path = "$T/events.log"
tmp_dir = "$T/ptmp"
volume_path = "$T/volumes"
static_dir = "$T/static"
cgroup_manager = "cgroupfs"
EOF
export CONTAINERS_CONF="$T/containers.conf"
PODMAN=(podman --root "$T/proot" --runroot "$T/prunroot" --tmpdir "$T/ptmp" --storage-driver overlay
  --cgroup-manager=cgroupfs --events-backend=file)
"${PODMAN[@]}" import "$T/rootfs.tar" localhost/bench-busybox:1 >/dev/null
P="${PODMAN[*]}"
PFLAGS="--network none --cgroup-parent /$CG/podman --ulimit nofile=20000:20000 --ulimit nproc=1000:1000"
prun() { echo "$P --runtime $1 --runtime-flag root=$T/state-$2 run --rm $PFLAGS localhost/bench-busybox:1 true"; }
drun() { echo "$D run --rm --network none --runtime $1 bench-busybox:1 true"; }

# One run of each first, so that a broken set-up fails loudly rather than as timings.
for c in "$(prun "$BERTH" berth)" "$(prun "$RUNC" runc)" "$(drun berth)" "$(drun runc-bench)"; do
  $c || { echo "failed: $c" >&2; exit 1; }
done

echo "== run --rm busybox true ($RUNS runs each; berth-runtime $BERTH, runc $RUNC)"
hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$T/engines.json" \
  -n "podman+berth-runtime" "$(prun "$BERTH" berth)" \
  -n "podman+runc" "$(prun "$RUNC" runc)" \
  -n "docker+berth-runtime" "$(drun berth)" \
  -n "docker+runc" "$(drun runc-bench)"

python3 - "$T/engines.json" <<'PY'
import json, sys
res = {r["command"]: r["median"] for r in json.load(open(sys.argv[1]))["results"]}
for engine in ["podman", "docker"]:
    b, r = res[f"{engine}+berth-runtime"], res[f"{engine}+runc"]
    print(f"{engine} run --rm: median with berth-runtime {b*1000:.1f} ms, with runc {r*1000:.1f} ms; "
          f"runc/berth {r/b:.2f}x")
PY

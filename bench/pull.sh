#!/usr/bin/env bash
# Pull of a multi-layer image (~200 MB) from a local docker-registry into an empty store:
# berthd vs dockerd, side by side; then `docker load` of the same image saved as a tarball.
# Needs: docker-registry, skopeo, docker.io (dockerd + containerd), a release berthd
# (cargo build --release -p berth-engine). Runs everything on 127.0.0.1 in a temp dir and
# stops every daemon it started, by pid.
#
# Usage: bench/pull.sh [RUNS]   (BERTHD=path/to/berthd to pick another binary)
set -euo pipefail

RUNS=${1:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BERTHD=${BERTHD:-$ROOT/target/release/berthd}
[ -x "$BERTHD" ] || { echo "no berthd at $BERTHD: cargo build --release -p berth-engine" >&2; exit 1; }
for t in docker-registry skopeo dockerd docker; do
    command -v "$t" >/dev/null || { echo "missing $t (apt-get install docker-registry skopeo docker.io)" >&2; exit 1; }
done

T=$(mktemp -d /tmp/berth-bench.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do
        for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$p" 2>/dev/null || true
    done
    # dockerd's overlay mounts must go before the directory can.
    grep " $T/" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    rm -rf "$T"
}
trap cleanup EXIT

wait_sock() { for _ in $(seq 200); do [ -S "$1" ] && return 0; sleep 0.1; done; echo "no socket $1" >&2; exit 1; }
now() { date +%s.%N; }

# --- the image: 5 layers of mixed compressible/incompressible files, ~200 MB unpacked
echo "building the test image..."
L=$T/layout; mkdir -p "$L/blobs/sha256"
diff_ids=(); layers_json=""
for i in 1 2 3 4 5; do
    d=$T/layer$i; mkdir -p "$d/data$i"
    head -c 20M /dev/urandom > "$d/data$i/random.bin"
    # Text compresses like binaries and libraries do, roughly 3:1.
    head -c 15M /dev/urandom | base64 > "$d/data$i/text.txt"
    for f in $(seq 200); do printf 'file %d of layer %d\n' "$f" "$i" > "$d/data$i/small-$f.conf"; done
    tar -C "$d" -cf "$T/l$i.tar" .
    diff_ids+=("sha256:$(sha256sum "$T/l$i.tar" | cut -d' ' -f1)")
    gzip -1 -c "$T/l$i.tar" > "$T/l$i.tar.gz"
    dg=$(sha256sum "$T/l$i.tar.gz" | cut -d' ' -f1)
    mv "$T/l$i.tar.gz" "$L/blobs/sha256/$dg"
    sz=$(stat -c %s "$L/blobs/sha256/$dg")
    layers_json+="${layers_json:+,}{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$dg\",\"size\":$sz}"
    rm -rf "$d" "$T/l$i.tar"
done
ids=$(printf '"%s",' "${diff_ids[@]}"); ids=${ids%,}
printf '{"architecture":"amd64","os":"linux","created":"2024-01-01T00:00:00Z","config":{"Cmd":["/bin/sh"]},"rootfs":{"type":"layers","diff_ids":[%s]}}' "$ids" > "$T/config.json"
cd_=$(sha256sum "$T/config.json" | cut -d' ' -f1); cs=$(stat -c %s "$T/config.json")
mv "$T/config.json" "$L/blobs/sha256/$cd_"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[%s]}' "$cd_" "$cs" "$layers_json" > "$T/manifest.json"
md=$(sha256sum "$T/manifest.json" | cut -d' ' -f1); ms=$(stat -c %s "$T/manifest.json")
mv "$T/manifest.json" "$L/blobs/sha256/$md"
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"big"}}]}' "$md" "$ms" > "$L/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' > "$L/oci-layout"
echo "compressed size: $(du -sh "$L/blobs" | cut -f1)"

# --- registry
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$T/registry.yml" <<YML
version: 0.1
log: {level: warn}
storage: {filesystem: {rootdirectory: $T/registry}}
http: {addr: 127.0.0.1:$PORT}
YML
docker-registry serve "$T/registry.yml" >"$T/registry.log" 2>&1 & PIDS+=($!)
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
skopeo copy --quiet --dest-tls-verify=false "oci:$L:big" "docker://127.0.0.1:$PORT/bench/big:latest"
IMAGE=127.0.0.1:$PORT/bench/big:latest

# --- daemons
"$BERTHD" --data-root "$T/berth" --exec-root "$T/berth-exec" -H "unix://$T/berth.sock" \
    --log-level warn 2>"$T/berthd.log" & PIDS+=($!)
wait_sock "$T/berth.sock"
dockerd --data-root "$T/docker" --exec-root "$T/docker-exec" -H "unix://$T/docker.sock" \
    --pidfile "$T/docker.pid" --bridge=none --iptables=false --ip-masq=false \
    --containerd-namespace berth-bench --containerd-plugins-namespace berth-bench-plugins \
    --insecure-registry "127.0.0.1:$PORT" --storage-driver overlay2 >"$T/dockerd.log" 2>&1 & PIDS+=($!)
wait_sock "$T/docker.sock"
DOCKER_CONFIG=$T/docker-config; export DOCKER_CONFIG; mkdir -p "$DOCKER_CONFIG"
for _ in $(seq 100); do DOCKER_HOST=unix://$T/docker.sock docker version >/dev/null 2>&1 && break; sleep 0.2; done

# time_pull SOCKET: empty the store, drop caches of nothing (same page cache for both), pull.
time_pull() {
    local sock=$1
    DOCKER_HOST=unix://$sock docker rmi -f "$IMAGE" >/dev/null 2>&1 || true
    DOCKER_HOST=unix://$sock docker image prune -a -f >/dev/null 2>&1 || true
    sync
    local t0; t0=$(now)
    DOCKER_HOST=unix://$sock docker pull -q "$IMAGE" >/dev/null
    awk -v a="$(now)" -v b="$t0" 'BEGIN {printf "%.3f\n", a - b}'
}
time_load() {
    local sock=$1 tarball=$2
    DOCKER_HOST=unix://$sock docker rmi -f "$IMAGE" >/dev/null 2>&1 || true
    DOCKER_HOST=unix://$sock docker image prune -a -f >/dev/null 2>&1 || true
    sync
    local t0; t0=$(now)
    DOCKER_HOST=unix://$sock docker load -q -i "$tarball" >/dev/null
    awk -v a="$(now)" -v b="$t0" 'BEGIN {printf "%.3f\n", a - b}'
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "pull of $IMAGE, $RUNS runs each, alternating"
b=(); k=()
for r in $(seq "$RUNS"); do
    b+=("$(time_pull "$T/berth.sock")")
    k+=("$(time_pull "$T/docker.sock")")
    echo "  run $r: berthd ${b[-1]}s  dockerd ${k[-1]}s"
done
bm=$(printf '%s\n' "${b[@]}" | median); km=$(printf '%s\n' "${k[@]}" | median)
printf 'pull median: berthd %.2fs  dockerd %.2fs  ratio dockerd/berthd %.2f\n' "$bm" "$km" "$(awk -v k="$km" -v b="$bm" 'BEGIN {print k / b}')"

# docker load of a tarball that dockerd itself saved (so both read the same file).
DOCKER_HOST=unix://$T/docker.sock docker save -o "$T/big.tar" "$IMAGE"
echo "load of a docker save tarball ($(du -h "$T/big.tar" | cut -f1)), $RUNS runs each"
b=(); k=()
for r in $(seq "$RUNS"); do
    b+=("$(time_load "$T/berth.sock" "$T/big.tar")")
    k+=("$(time_load "$T/docker.sock" "$T/big.tar")")
    echo "  run $r: berthd ${b[-1]}s  dockerd ${k[-1]}s"
done
bm=$(printf '%s\n' "${b[@]}" | median); km=$(printf '%s\n' "${k[@]}" | median)
printf 'load median: berthd %.2fs  dockerd %.2fs  ratio dockerd/berthd %.2f\n' "$bm" "$km" "$(awk -v k="$km" -v b="$bm" 'BEGIN {print k / b}')"

# Interop: real dockerd loads what berthd saves.
DOCKER_HOST=unix://$T/berth.sock docker pull -q "$IMAGE" >/dev/null
DOCKER_HOST=unix://$T/berth.sock docker save -o "$T/from-berth.tar" "$IMAGE"
DOCKER_HOST=unix://$T/docker.sock docker rmi -f "$IMAGE" >/dev/null 2>&1 || true
DOCKER_HOST=unix://$T/docker.sock docker load -i "$T/from-berth.tar"

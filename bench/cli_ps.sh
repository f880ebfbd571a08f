#!/usr/bin/env bash
# The CLI's start-up and one request, as scripts run it in loops: `berth ps` against
# `docker ps` (the docker CLI), both talking to the same berthd, side by side in
# hyperfine (these machines are noisy: compare the ratios). Also `ps -a --format` over
# COUNT stopped containers (the template path) and `version` (no listing).
# berthd runs in a private temp dir (own root, socket, no network), is stopped by pid and
# leaves nothing behind.
#
# Usage: bench/cli_ps.sh [RUNS [COUNT [BIN_DIR]]]
#   BIN_DIR holds berth, berthd, berth-supervisor, berth-shim and berth-runtime
#   (default target/release).
set -euo pipefail
RUNS=${1:-50}
COUNT=${2:-20}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$(cd "${3:-$ROOT/target/release}" && pwd)
for b in berth berthd berth-supervisor berth-shim berth-runtime; do
  [ -x "$BIN/$b" ] || { echo "no $BIN/$b (cargo build --release)" >&2; exit 1; }
done
for t in docker hyperfine timeout; do
  command -v "$t" >/dev/null || { echo "missing $t (deploy/install-deps.sh)" >&2; exit 1; }
done

T=$(mktemp -d /tmp/berth-bench-cli.XXXXXX)
BERTHD_PID=''
export DOCKER_CONFIG="$T/cli"   # both CLIs read it: keep them off ~/.docker
mkdir -p "$T/cli" && echo '{}' > "$T/cli/config.json"
export DOCKER_HOST="unix://$T/berth.sock" BERTH_HOST="unix://$T/berth.sock"
cleanup() {
  set +e
  if [ -n "$BERTHD_PID" ]; then
    timeout 60 "$BIN/berth" ps -aq | xargs -r timeout 120 "$BIN/berth" rm -f >/dev/null 2>&1
    kill "$BERTHD_PID" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$BERTHD_PID" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$BERTHD_PID" 2>/dev/null
  fi
  umount -R "$T/data" 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT

PATH="$BIN:$PATH" "$BIN/berthd" -H "unix://$T/berth.sock" --data-root "$T/data" \
  --exec-root "$T/exec" >"$T/berthd.log" 2>&1 &
BERTHD_PID=$!
for _ in $(seq 100); do [ -S "$T/berth.sock" ] && break; sleep 0.1; done
[ -S "$T/berth.sock" ] || { cat "$T/berthd.log" >&2; exit 1; }

# A small image from busybox, made here (no registry needed); the containers are only
# created (never started): the listing is what is measured.
mkdir -p "$T/img/bin"
cp "$(command -v busybox)" "$T/img/bin/busybox"
ln -s busybox "$T/img/bin/sh"
tar -C "$T/img" -c . | "$BIN/berth" import - bench/bb:1 >/dev/null
for i in $(seq "$COUNT"); do
  "$BIN/berth" create --network none --name "c$i" -l "n=$i" bench/bb:1 /bin/sh >/dev/null
done

hyperfine -N -w 3 -r "$RUNS" \
  -n "berth ps" "$BIN/berth ps" \
  -n "docker ps" "docker ps" \
  -n "berth ps -a --format" "$BIN/berth ps -a --format '{{.Names}} {{.Label \"n\"}}'" \
  -n "docker ps -a --format" "docker ps -a --format '{{.Names}} {{.Label \"n\"}}'" \
  -n "berth version" "$BIN/berth version" \
  -n "docker version" "docker version"

#!/usr/bin/env bash
# `docker build` (classic builder, DOCKER_BUILDKIT=0) against berthd and against dockerd
# (docker.io 20.10), side by side in one run, the same docker CLI as the client of both
# (these machines are noisy: compare the ratios):
#  1. a cold build (--no-cache) of a five-step Dockerfile: COPY of FILES small files,
#     RUN steps that write files, an ENV, in hyperfine;
#  2. a rebuild of the unchanged project, every step from the cache, in hyperfine;
#  3. the memory of each daemon while a 500 MB context is sent: its peak RSS during the
#     upload against its RSS before (a streamed context keeps it flat).
# Each engine runs in a private temp dir (own roots, sockets, no network), is stopped by
# pid and leaves nothing behind.
#
# Usage: bench/build.sh [RUNS [FILES [BIN_DIR]]]
#   BIN_DIR holds berthd, berth-supervisor, berth-shim and berth-runtime (default
#   target/bench-bin, which `make bench` fills; target/release works as well).
set -euo pipefail
RUNS=${1:-5}
FILES=${2:-3000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$(cd "${3:-$ROOT/target/bench-bin}" && pwd)
for b in berthd berth-supervisor berth-shim berth-runtime; do
  [ -x "$BIN/$b" ] || { echo "no $BIN/$b (make build; see the Makefile's bench target)" >&2; exit 1; }
done
for t in dockerd containerd runc docker hyperfine busybox timeout; do
  command -v "$t" >/dev/null || { echo "missing $t (deploy/install-deps.sh)" >&2; exit 1; }
done

T=$(mktemp -d /tmp/berth-bench-build.XXXXXX)
CG="berth-bench-build-$$"
BERTHD_PID='' DOCKERD_PID=''
export DOCKER_CONFIG="$T/cli" DOCKER_BUILDKIT=0
mkdir -p "$T/cli" && echo '{}' > "$T/cli/config.json"
BD=(docker -H "unix://$T/berth.sock")
DD=(docker -H "unix://$T/docker.sock")

stop_engine() {  # PID CLI...: remove every container through the API, then TERM, KILL
  local pid=$1; shift
  [ -n "$pid" ] || return 0
  timeout 60 "$@" ps -aq 2>/dev/null | xargs -r timeout 120 "$@" rm -f >/dev/null 2>&1
  kill "$pid" 2>/dev/null
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  kill -9 "$pid" 2>/dev/null
}
cleanup() {
  set +e
  stop_engine "$BERTHD_PID" "${BD[@]}"
  stop_engine "$DOCKERD_PID" "${DD[@]}"
  for p in /proc/[0-9]*; do
    case "$(readlink "$p/root" 2>/dev/null)" in "$T"/*) kill -9 "${p#/proc/}" 2>/dev/null;; esac
  done
  for p in $(grep -l -a -F "$T" /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3); do
    [ "$p" != $$ ] && [ "$p" != "$BASHPID" ] && kill -9 "$p" 2>/dev/null
  done
  sleep 0.5
  awk -v t="$T/" 'index($5, t) == 1 {print $5}' /proc/self/mountinfo | sort -r |
    xargs -r -n1 umount -l 2>/dev/null
  for h in /sys/fs/cgroup/*/; do
    [ -d "$h$CG" ] && find "$h$CG" -depth -type d -exec rmdir {} \; 2>/dev/null
  done
  rm -rf "$T"
}
trap cleanup EXIT

# A busybox rootfs tar for `import` (no registry here).
mkdir -p "$T/rootfs/bin" "$T/rootfs/"{proc,sys,dev,etc,tmp,run,var/tmp}
cp "$(command -v busybox)" "$T/rootfs/bin/busybox"
for a in $(busybox --list); do [ "$a" = busybox ] || ln -s busybox "$T/rootfs/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$T/rootfs/etc/passwd"
printf 'root:x:0:\n' > "$T/rootfs/etc/group"
tar -C "$T/rootfs" -cf "$T/rootfs.tar" .

wait_api() {  # LOG CLI...
  local log=$1; shift
  for _ in $(seq 300); do "$@" version >/dev/null 2>&1 && return 0; sleep 0.1; done
  tail -20 "$log" >&2; exit 1
}
PATH="$BIN:$PATH" "$BIN/berthd" --data-root "$T/berth-data" --exec-root "$T/berth-exec" \
  -H "unix://$T/berth.sock" --cgroup-parent "/$CG/berthd" >"$T/berthd.log" 2>&1 &
BERTHD_PID=$!
echo '{}' > "$T/daemon.json"
dockerd --data-root "$T/docker-data" --exec-root "$T/docker-exec" -H "unix://$T/docker.sock" \
  --pidfile "$T/docker.pid" --config-file "$T/daemon.json" --bridge=none --iptables=false \
  --ip-masq=false --cgroup-parent "/$CG/docker" >"$T/dockerd.log" 2>&1 &
DOCKERD_PID=$!
wait_api "$T/berthd.log" "${BD[@]}"
wait_api "$T/dockerd.log" "${DD[@]}"
"${BD[@]}" import "$T/rootfs.tar" bench-busybox:1 >/dev/null
"${DD[@]}" import "$T/rootfs.tar" bench-busybox:1 >/dev/null

# The project: FILES small files in 50 directories, five steps after FROM.
P="$T/project"
mkdir -p "$P/files"
for d in $(seq 1 50); do
  mkdir -p "$P/files/d$d"
  for f in $(seq 1 $((FILES / 50))); do echo "file $d/$f" > "$P/files/d$d/f$f.txt"; done
done
cat > "$P/Dockerfile" <<'DOCKERFILE'
FROM bench-busybox:1
COPY files /files
RUN mkdir -p /out && for i in $(seq 1 200); do echo "$i" > /out/f$i; done
RUN cat /files/d1/* > /out/d1.txt
ENV STAGE=built
RUN find /files -type f | wc -l > /out/count
DOCKERFILE

echo "== build: $FILES files, $RUNS runs each (berthd $(date -u +%F))"
"${BD[@]}" build -q -t warm:1 "$P" >/dev/null
"${DD[@]}" build -q -t warm:1 "$P" >/dev/null
[ "$("${BD[@]}" run --rm --network none warm:1 cat /out/count)" = "$FILES" ] || { echo "berthd's image is wrong" >&2; exit 1; }
hyperfine --style basic --runs "$RUNS" --warmup 1 -N \
  --prepare "${BD[*]} rmi -f cold:1" -n "berthd cold build" "${BD[*]} build -q --no-cache -t cold:1 $P" \
  --prepare "${DD[*]} rmi -f cold:1" -n "dockerd cold build" "${DD[*]} build -q --no-cache -t cold:1 $P" \
  --export-markdown "$T/cold.md" 2>&1 | grep -v '^ *$'
hyperfine --style basic --runs $((RUNS * 4)) --warmup 1 -N \
  -n "berthd cached rebuild" "${BD[*]} build -q -t warm:1 $P" \
  -n "dockerd cached rebuild" "${DD[*]} build -q -t warm:1 $P" \
  --export-markdown "$T/warm.md" 2>&1 | grep -v '^ *$'

# Memory while a large context is sent: peak RSS over the upload (VmHWM, reset before).
echo "== memory while a 500 MB context is sent"
L="$T/large"
mkdir -p "$L"
for i in $(seq 1 50); do head -c $((10 * 1024 * 1024)) /dev/urandom > "$L/blob$i"; done
printf 'FROM bench-busybox:1\nCOPY blob1 /blob1\n' > "$L/Dockerfile"
rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
hwm() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }
for e in berthd dockerd; do
  if [ $e = berthd ]; then pid=$BERTHD_PID; cli=("${BD[@]}"); else pid=$DOCKERD_PID; cli=("${DD[@]}"); fi
  sleep 1
  before=$(rss "$pid")
  echo 5 > "/proc/$pid/clear_refs"
  start=$(date +%s.%N)
  "${cli[@]}" build -q -t large:1 "$L" >/dev/null
  end=$(date +%s.%N)
  peak=$(hwm "$pid")
  printf '%-8s RSS before %6.1f MB, peak during the build %6.1f MB (+%.1f MB), %.1f s\n' \
    "$e" "$(echo "$before / 1024" | bc -l)" "$(echo "$peak / 1024" | bc -l)" \
    "$(echo "($peak - $before) / 1024" | bc -l)" "$(echo "$end - $start" | bc -l)"
done

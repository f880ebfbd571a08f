#!/usr/bin/env bash
# shellcheck disable=SC2013 # the files read word by word hold IDs and pids
# berthd against dockerd (docker.io, with its runc) and podman (its default runtime), side
# by side in one run (these machines are noisy: compare the ratios):
#  1. `run --rm --network none busybox true`, in hyperfine;
#  2. COUNT `run -d ... sleep 1000` one after another (as a script would), then one
#     `rm -f` of them all: wall time of each phase;
#  3. memory (RSS and PSS, smaps_rollup) of each engine's processes: idle with an image
#     loaded, with the COUNT containers running (shims included, container processes
#     not: they are the workload), and idle again once they are removed (growth, leaks);
#  4. CPU time (user + system, /proc/PID/stat) the daemons use over IDLE_SECS (60) with
#     IDLE_COUNT (50) idle containers running: what watching them costs at rest.
# The same docker CLI is the client of berthd and of dockerd. Each engine runs in a private
# temp dir (own roots, sockets, no network), is stopped by pid and leaves nothing behind.
#
# Usage: bench/engine_containers.sh [RUNS [COUNT [BIN_DIR]]]
#   BIN_DIR holds berthd, berth-supervisor, berth-shim and berth-runtime (default
#   target/bench-bin, which `make bench` fills; target/release works as well).
#   BENCH_LOGS=DIR keeps berthd's and dockerd's logs there.
set -euo pipefail
RUNS=${1:-20}
COUNT=${2:-100}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$(cd "${3:-$ROOT/target/bench-bin}" && pwd)
for b in berthd berth-supervisor berth-shim berth-runtime; do
  [ -x "$BIN/$b" ] || { echo "no $BIN/$b (make build; see the Makefile's bench target)" >&2; exit 1; }
done
for t in dockerd containerd runc docker podman hyperfine busybox python3 timeout; do
  command -v "$t" >/dev/null || { echo "missing $t (deploy/install-deps.sh)" >&2; exit 1; }
done

T=$(mktemp -d /tmp/berth-bench-ctr.XXXXXX)
CG="berth-bench-ctr-$$"
BERTHD_PID='' DOCKERD_PID=''
# Every engine's containers go under our own cgroup $CG (--cgroup-parent), removed at
# the end.
export DOCKER_CONFIG="$T/cli"   # the CLI (and podman) read it: keep them off ~/.docker
mkdir -p "$T/cli" && echo '{}' > "$T/cli/config.json"
BD=(docker -H "unix://$T/berth.sock")
DD=(docker -H "unix://$T/docker.sock")
PODMAN=(podman --root "$T/proot" --runroot "$T/prunroot" --tmpdir "$T/ptmp"
  --storage-driver overlay --cgroup-manager=cgroupfs --events-backend=file)

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
  [ -n "${BENCH_LOGS:-}" ] && cp "$T"/berthd.log "$T"/dockerd.log "$BENCH_LOGS"/
  stop_engine "$BERTHD_PID" "${BD[@]}"
  stop_engine "$DOCKERD_PID" "${DD[@]}"
  timeout 120 "${PODMAN[@]}" rm -a -f -t 0 >/dev/null 2>&1
  # Anything of ours still alive, by pid: container processes (rooted under $T), then
  # processes naming $T (shims, dockerd's containerd, conmon).
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
# berthd starts its own berth-supervisor, found beside berthd (as the shim and runtime are
# found beside the supervisor); BIN first in PATH in case a lookup falls back to it.
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

# podman, daemonless, in its own roots.
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
"${PODMAN[@]}" import -q "$T/rootfs.tar" localhost/bench-busybox:1 >/dev/null
PRT=$("${PODMAN[@]}" info --format '{{.Host.OCIRuntime.Name}}')

# Each engine's `run` up to the image. podman raises nofile/nproc to the hard maximum,
# which fails without CAP_SYS_RESOURCE here: it gets explicit limits.
BRUN=("${BD[@]}" run --network none bench-busybox:1)
DRUN=("${DD[@]}" run --network none bench-busybox:1)
POPTS=(--network none --cgroup-parent "/$CG/podman" --ulimit nofile=20000:20000
  --ulimit nproc=1000:1000)
# podman's default runtime (crun on Debian) refuses cgroups v1 hybrid mode: runc then.
if ! "${PODMAN[@]}" run --rm "${POPTS[@]}" localhost/bench-busybox:1 true 2>"$T/p.err"; then
  echo "podman with $PRT failed ($(tail -1 "$T/p.err")): podman with runc instead"
  POPTS+=(--runtime runc) && PRT=runc
fi
PRUN=("${PODMAN[@]}" run "${POPTS[@]}" localhost/bench-busybox:1)
with_rm() { local a=("$@"); echo "${a[*]:0:$(($# - 1))} --rm ${a[$(($# - 1))]} true"; }

# Memory of an engine: the daemon's process tree plus its shims (they daemonize away
# from it: found by binary name and by naming $T), without processes in another mount
# namespace (the containers). Prints "RSS_kB PSS_kB processes".
mem() {  # DAEMON_PID (0: none) SHIM_BINARY
  python3 - "$T" "$1" "$2" <<'PY'
import os, sys
T, top, shim = sys.argv[1], int(sys.argv[2]), sys.argv[3]
kids, shims, me = {}, [], os.readlink("/proc/self/ns/mnt")
for p in filter(str.isdigit, os.listdir("/proc")):
    try:
        ppid = int(open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(p))
        if os.path.basename(os.readlink(f"/proc/{p}/exe")) == shim \
                and T in open(f"/proc/{p}/cmdline", "rb").read().decode(errors="replace"):
            shims.append(int(p))
    except OSError:
        pass
seen, todo = set(), ([top] if top else []) + shims
while todo:
    p = todo.pop()
    if p not in seen:
        seen.add(p)
        todo += kids.get(p, [])
rss = pss = n = 0
for p in seen:
    try:
        if os.readlink(f"/proc/{p}/ns/mnt") != me:
            continue
        f = dict(l.split(":", 1) for l in open(f"/proc/{p}/smaps_rollup") if ":" in l[:20])
        rss, pss, n = rss + int(f["Rss"].split()[0]), pss + int(f["Pss"].split()[0]), n + 1
    except (OSError, KeyError, ValueError):
        pass
print(rss, pss, n)
PY
}
sleep 2   # let start-up work settle before the idle figure
echo "mem_idle_berthd $(mem "$BERTHD_PID" berth-shim)" >> "$T/results"
echo "mem_idle_dockerd $(mem "$DOCKERD_PID" containerd-shim-runc-v2)" >> "$T/results"

# One run of each first, so that a broken set-up fails loudly rather than as timings.
START=$(date +%s)
for c in "$(with_rm "${BRUN[@]}")" "$(with_rm "${DRUN[@]}")" "$(with_rm "${PRUN[@]}")"; do
  $c || { echo "failed: $c" >&2; exit 1; }   # unquoted: one word per argument
done

echo "== run --rm --network none busybox true ($RUNS runs each; podman runtime: $PRT)"
hyperfine -N --warmup 5 --runs "$RUNS" --export-json "$T/run.json" \
  -n berthd "$(with_rm "${BRUN[@]}")" -n dockerd "$(with_rm "${DRUN[@]}")" \
  -n podman "$(with_rm "${PRUN[@]}")"
# The IDs berthd made for those runs, for the cgroup clean-up (the ring holds 1024 events).
timeout 30 "${BD[@]}" events --since "$START" --until "$(($(date +%s) + 1))" \
  --filter event=create --format '{{.Actor.ID}}' >> "$T/berth-ids" || true

# COUNT containers per engine, one engine at a time; memory while they run.
now() { date +%s.%N; }
secs() { awk "BEGIN { print $2 - $1 }"; }
many() {  # NAME DAEMON_PID SHIM CLI_ARRAY RUN_ARRAY (array names)
  local name=$1 pid=$2 shim=$3 t0 t1 t2
  local -n cli=$4 run=$5
  local n=$((${#run[@]} - 1))   # the image is the last word of the run command
  echo "== $name: $COUNT x run -d sleep 1000, then rm -f of them all"
  t0=$(now)
  # Named, so that a failed run shows which one.
  for i in $(seq "$COUNT"); do
    timeout 120 "${run[@]:0:n}" -d --name "bench-$i" "${run[n]}" sleep 1000 >> "$T/$name.ids"
  done
  t1=$(now)
  echo "mem_busy_$name $(mem "$pid" "$shim")" >> "$T/results"
  t2=$(now)
  # docker's rm -f kills at once; podman's first waits out a 10 s SIGTERM grace: -t 0.
  local rmx=(-f) && [ "$name" = podman ] && rmx+=(-t 0)
  # shellcheck disable=SC2046 # one ID per word
  timeout 300 "${cli[@]}" rm "${rmx[@]}" $(cat "$T/$name.ids") >/dev/null
  echo "rm_$name $(secs "$t2" "$(now)")" >> "$T/results"
  echo "create_$name $(secs "$t0" "$t1")" >> "$T/results"
  # Idle means settled: Go's scavenger and berthd's heap trim (every 10 s) both return
  # freed memory to the kernel over time.
  sleep 15
  [ "$pid" = 0 ] || echo "mem_after_$name $(mem "$pid" "$shim")" >> "$T/results"
}
many berthd "$BERTHD_PID" berth-shim BD BRUN
many dockerd "$DOCKERD_PID" containerd-shim-runc-v2 DD DRUN
many podman 0 conmon PODMAN PRUN

# CPU time (ms, user + system) of a process and of its children that are daemons (the
# supervisor, dockerd's containerd), not of the containers or shims.
cpu_ms() {  # PID [CHILD_BINARY]
  python3 - "$1" "${2:-}" <<'PY'
import os, sys
top, child = int(sys.argv[1]), sys.argv[2]
hz = os.sysconf("SC_CLK_TCK")
def ticks(p):
    f = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])
pids = [top]
for p in filter(str.isdigit, os.listdir("/proc")):
    try:
        ppid = int(open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[1])
        if child and ppid == top and os.path.basename(os.readlink(f"/proc/{p}/exe")) == child:
            pids.append(int(p))
    except OSError:
        pass
print(" ".join(str(ticks(p) * 1000 // hz) for p in pids))
PY
}
IDLE_COUNT=${IDLE_COUNT:-50} IDLE_SECS=${IDLE_SECS:-60}
idle_cpu() {  # NAME DAEMON_PID CHILD_BINARY CLI_ARRAY RUN_ARRAY
  local name=$1 pid=$2 child=$3 a b
  local -n cli=$4 run=$5
  local n=$((${#run[@]} - 1))
  echo "== $name: CPU over ${IDLE_SECS} s with $IDLE_COUNT idle containers"
  for i in $(seq "$IDLE_COUNT"); do
    timeout 120 "${run[@]:0:n}" -d --name "idle-$i" "${run[n]}" sleep 1000 >> "$T/$name.idle"
  done
  sleep 5
  read -r -a a <<< "$(cpu_ms "$pid" "$child")"
  sleep "$IDLE_SECS"
  read -r -a b <<< "$(cpu_ms "$pid" "$child")"
  echo "cpu_idle_$name $((b[0] - a[0])) $((${b[1]:-0} - ${a[1]:-0}))" >> "$T/results"
  # shellcheck disable=SC2046 # one ID per word
  timeout 300 "${cli[@]}" rm -f $(cat "$T/$name.idle") >/dev/null
}
idle_cpu berthd "$BERTHD_PID" berth-supervisor BD BRUN
idle_cpu dockerd "$DOCKERD_PID" containerd DD DRUN

# Cgroups berthd left behind for containers that no longer exist: a bug if any.
left=0
for id in $(sort -u "$T"/berth-ids "$T"/berthd.ids "$T"/berthd.idle); do
  for h in /sys/fs/cgroup/*/"$CG"/berthd/"$id"; do [ -d "$h" ] && left=$((left + 1)); done
done
echo "berth_cgroups_left $left" >> "$T/results"
warns() { sed 's/\x1b\[[0-9;]*m//g' "$T/berthd.log" | grep -E '^[^ ]+ +(WARN|ERROR) ' || true; }
echo "berthd_log_warnings $(warns | wc -l)" >> "$T/results"

python3 - "$T/run.json" "$T/results" "$RUNS" "$COUNT" "$PRT" <<'PY'
import json, sys
med = {r["command"]: r["median"] * 1000 for r in json.load(open(sys.argv[1]))["results"]}
res = {l.split()[0]: [float(x) for x in l.split()[1:]] for l in open(sys.argv[2])}
runs, count, prt = sys.argv[3], int(sys.argv[4]), sys.argv[5]
b = med["berthd"]
print(f"\n== Summary ({runs} runs, {count} containers; ratios: other/berthd, >1 = berthd better)")
print(f"run --rm true, median:  berthd {b:.1f} ms | dockerd {med['dockerd']:.1f} ms "
      f"({med['dockerd']/b:.2f}x) | podman+{prt} {med['podman']:.1f} ms ({med['podman']/b:.2f}x)")
for ph in ["create", "rm"]:
    f = {e: res[f"{ph}_{e}"][0] for e in ["berthd", "dockerd", "podman"]}
    what = f"{count} x run -d" if ph == "create" else f"rm -f of {count}"
    print(f"{what + ':':<22} berthd {f['berthd']:.2f} s | dockerd {f['dockerd']:.2f} s "
          f"({f['dockerd']/f['berthd']:.2f}x) | podman {f['podman']:.2f} s ({f['podman']/f['berthd']:.2f}x)")
mb = lambda kb: f"{kb/1024:.1f}"
for st, label in [("idle", "idle, image loaded"), ("busy", f"{count} running (+shims)"),
                  ("after", "idle after rm")]:
    (br, bp, bn), (dr, dp, dn) = res[f"mem_{st}_berthd"], res[f"mem_{st}_dockerd"]
    print(f"memory {label}: berthd+supervisor RSS {mb(br)} MB PSS {mb(bp)} MB ({bn:.0f} procs) | "
          f"dockerd+containerd RSS {mb(dr)} MB PSS {mb(dp)} MB ({dn:.0f} procs) | "
          f"ratio RSS {dr/br:.1f}x PSS {dp/bp:.1f}x")
(pr, pp, pn) = res["mem_busy_podman"]
print(f"memory {count} running, podman's conmons: RSS {mb(pr)} MB PSS {mb(pp)} MB ({pn:.0f} procs)")
per = lambda e, i: (res[f"mem_busy_{e}"][i] - res[f"mem_idle_{e}"][i]) / count
print(f"per running container (engine growth + shim): berthd RSS {per('berthd', 0):.0f} kB "
      f"PSS {per('berthd', 1):.0f} kB | dockerd RSS {per('dockerd', 0):.0f} kB PSS {per('dockerd', 1):.0f} kB")
(bc, bs), (dc, ds) = res["cpu_idle_berthd"], res["cpu_idle_dockerd"]
print(f"CPU over the idle minute with the idle containers: berthd {bc:.0f} ms (+ supervisor {bs:.0f} ms) | "
      f"dockerd {dc:.0f} ms (+ containerd {ds:.0f} ms)")
sp = med["dockerd"] / b
print(f"goal 'at least 4x faster than dockerd per run': {'MET' if sp >= 4 else 'NOT MET'} ({sp:.2f}x)")
for i, m in [(0, "RSS"), (1, "PSS")]:
    r = res["mem_idle_dockerd"][i] / res["mem_idle_berthd"][i]
    print(f"goal 'a tenth of dockerd's memory' (idle {m}): {'MET' if r >= 10 else 'NOT MET'} ({r:.1f}x)")
left = int(res["berth_cgroups_left"][0])
warn = int(res.get("berthd_log_warnings", [0])[0])
if left or warn:
    print(f"berthd: {left} container cgroups left behind, {warn} WARN/ERROR lines in its log")
PY
if [ -n "$(warns)" ]; then echo "== berthd log, WARN/ERROR lines (last 10)"; warns | tail -10; fi

#!/usr/bin/env bash
# berth-runtime vs runc vs crun, side by side in one run (these machines are noisy, so
# compare ratios, not absolute times):
#   1. `run` of busybox `true` (whole process, hyperfine)
#   2. the same `run`, 50 ms apart, as an engine starts containers one at a time: on
#      cgroup v1 the first PID written into a cgroup in a while waits out an RCU grace
#      period (the kernel's threadgroup lock), which back-to-back runs share
#   3. `create` + `start` + `delete` of the same container
#   4. `exec` of `true` into a running container, 50 ms apart (as `docker exec` does)
#   5. peak RSS of the runtime process during `run` (/usr/bin/time)
# crun refuses this hybrid cgroup host while cgroup2 is mounted at /sys/fs/cgroup/unified,
# so everything runs in a private mount namespace where it is unmounted (for all three).
#
# Usage: bench/runtime.sh [RUNS]      (BERTH_RUNTIME=path to pick another binary)
set -euo pipefail
RUNS=${1:-100}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
HOST=$(rustc -vV | sed -n 's/^host: //p')
# The static build `make build` makes (what `make install` installs), else the plain one.
BERTH=${BERTH_RUNTIME:-$ROOT/target/static/$HOST/release/berth-runtime}
[ -x "$BERTH" ] || BERTH=$ROOT/target/release/berth-runtime
[ -x "$BERTH" ] || { echo "no berth-runtime build: make build" >&2; exit 1; }
for t in runc crun hyperfine busybox; do
  command -v "$t" >/dev/null || { echo "missing $t (make deps)" >&2; exit 1; }
done

if [ -z "${BERTH_BENCH_INNER:-}" ]; then
  exec unshare -m env BERTH_BENCH_INNER=1 bash -c 'umount /sys/fs/cgroup/unified 2>/dev/null || true; exec "$0" "$@"' "$0" "$@"
fi

T=$(mktemp -d /tmp/berth-bench-runtime.XXXXXX)
trap 'for r in berth runc crun; do for id in bench bench-exec; do "$(command -v $r || echo "$BERTH")" --root "$T/state-$r" delete --force $id >/dev/null 2>&1 || true; done; done; rm -rf "$T"' EXIT
mkdir -p "$T/bundle/rootfs/bin" "$T/bundle/rootfs/"{proc,sys,dev,etc,tmp}
cp "$(command -v busybox)" "$T/bundle/rootfs/bin/busybox"
for a in $(busybox --list); do [ "$a" = busybox ] || ln -s busybox "$T/bundle/rootfs/bin/$a"; done
(cd "$T/bundle" && "$BERTH" spec)
python3 - "$T/bundle/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
json.dump(c, open(sys.argv[1], "w"))
PY

declare -A BIN=([berth]="$BERTH" [runc]="$(command -v runc)" [crun]="$(command -v crun)")
run_cmd() { echo "${BIN[$1]} --root $T/state-$1 run --bundle $T/bundle bench"; }
lifecycle_cmd() {
  local b="${BIN[$1]} --root $T/state-$1"
  echo "$b create --bundle $T/bundle bench && $b start bench && $b delete --force bench"
}

echo "== run of busybox true ($RUNS runs each)"
hyperfine -N --warmup 5 --runs "$RUNS" --export-json "$T/run.json" \
  -n berth-runtime "$(run_cmd berth)" -n runc "$(run_cmd runc)" -n crun "$(run_cmd crun)"

echo "== run of busybox true, 50 ms apart ($((RUNS / 2)) runs each)"
hyperfine -N --warmup 2 --runs $((RUNS / 2)) --prepare "sleep 0.05" --export-json "$T/spaced.json" \
  -n berth-runtime "$(run_cmd berth)" -n runc "$(run_cmd runc)" -n crun "$(run_cmd crun)"

echo "== create + start + delete"
hyperfine --warmup 5 --runs "$RUNS" --export-json "$T/life.json" \
  -n berth-runtime "$(lifecycle_cmd berth)" -n runc "$(lifecycle_cmd runc)" -n crun "$(lifecycle_cmd crun)"

echo "== exec of true into a running container, 50 ms apart ($((RUNS / 2)) runs each)"
mkdir -p "$T/exec-bundle"
python3 - "$T/bundle/config.json" "$T/exec-bundle/config.json" "$T/bundle/rootfs" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["process"]["args"] = ["/bin/sleep", "3600"]
c["root"]["path"] = sys.argv[3]
json.dump(c, open(sys.argv[2], "w"))
PY
for r in berth runc crun; do
  ${BIN[$r]} --root "$T/state-$r" run -d --bundle "$T/exec-bundle" bench-exec </dev/null >/dev/null
done
exec_cmd() { echo "${BIN[$1]} --root $T/state-$1 exec bench-exec /bin/true"; }
hyperfine -N --warmup 2 --runs $((RUNS / 2)) --prepare "sleep 0.05" --export-json "$T/exec.json" \
  -n berth-runtime "$(exec_cmd berth)" -n runc "$(exec_cmd runc)" -n crun "$(exec_cmd crun)"
for r in berth runc crun; do ${BIN[$r]} --root "$T/state-$r" delete --force bench-exec >/dev/null 2>&1; done

echo "== peak RSS of the runtime process during run (KiB, median of 10)"
for r in berth runc crun; do
  for _ in $(seq 10); do /usr/bin/time -f %M $(run_cmd $r) 2>&1 >/dev/null | tail -1; done | sort -n | sed -n 5p | xargs printf "%-6s %s\n" "$r"
done

python3 - "$T/run.json" "$T/spaced.json" "$T/life.json" "$T/exec.json" <<'PY'
import json, sys
for path, what in zip(sys.argv[1:], ["run", "run, 50 ms apart", "create+start+delete", "exec, 50 ms apart"]):
    res = {r["command"]: r["median"] for r in json.load(open(path))["results"]}
    b = res["berth-runtime"]
    print(f"{what}: median berth-runtime {b*1000:.2f} ms; runc/berth {res['runc']/b:.2f}x; crun/berth {res['crun']/b:.2f}x")
PY

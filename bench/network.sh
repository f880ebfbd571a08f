#!/usr/bin/env bash
# shellcheck disable=SC2013
# Networking: berthd against dockerd (docker.io 20.10, runc), side by side in one run
# (these machines are noisy: compare the ratios), with the same docker CLI:
#  1. `run --rm busybox true` on the default bridge (a veth, an address, a route each), in
#     hyperfine; and, for reference, the same with --network none;
#  2. where berthd's network setup time goes: the `network_ms` of its debug log (from the
#     start request to a configured namespace) over the runs of 1;
#  3. COUNT containers on one user-defined network: COUNT `run -d ... sleep` one after
#     another, then one `rm -f` of them all: wall time of each phase.
# Each engine runs in a private temp dir on its own bridge: berthd makes bb$$; dockerd is
# given bd$$, made here (dockerd runs with --iptables=false so that it writes nothing in
# the host's firewall; berthd keeps its rules in its own nftables table, removed when it
# stops). Nothing is sent anywhere: containers only start and stop.
#
# Usage: bench/network.sh [RUNS [COUNT [BIN_DIR]]]
set -euo pipefail
RUNS=${1:-20}
COUNT=${2:-100}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$(cd "${3:-$ROOT/target/bench-bin}" && pwd)
for b in berthd berth-supervisor berth-shim berth-runtime; do
  [ -x "$BIN/$b" ] || { echo "no $BIN/$b (make build; see the Makefile's bench target)" >&2; exit 1; }
done
for t in dockerd containerd runc docker hyperfine busybox timeout ip; do
  command -v "$t" >/dev/null || { echo "missing $t (deploy/install-deps.sh)" >&2; exit 1; }
done
T=$(mktemp -d /tmp/berth-bench-net.XXXXXX)
CG="berth-bench-net-$$"
BB="bb$$" BD_BR="bd$$"
BERTHD_PID='' DOCKERD_PID=''
export DOCKER_CONFIG="$T/cli"
mkdir -p "$T/cli" && echo '{}' > "$T/cli/config.json"
BD=(docker -H "unix://$T/berth.sock")
DD=(docker -H "unix://$T/docker.sock")

stop_engine() {
  local pid=$1; shift
  [ -n "$pid" ] || return 0
  timeout 60 "$@" ps -aq 2>/dev/null | xargs -r timeout 120 "$@" rm -f >/dev/null 2>&1
  timeout 60 "$@" network prune -f >/dev/null 2>&1
  kill "$pid" 2>/dev/null
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  kill -9 "$pid" 2>/dev/null
}
cleanup() {
  set +e
  [ -n "${BENCH_LOGS:-}" ] && cp "$T"/berthd.log "$T"/dockerd.log "$BENCH_LOGS"/
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
  ip link del "$BB" 2>/dev/null; ip link del "$BD_BR" 2>/dev/null
  for h in /sys/fs/cgroup/*/; do
    [ -d "$h$CG" ] && find "$h$CG" -depth -type d -exec rmdir {} \; 2>/dev/null
  done
  rm -rf "$T"
}
trap cleanup EXIT

mkdir -p "$T/rootfs/bin" "$T/rootfs/"{proc,sys,dev,etc,tmp,run,var/tmp}
cp "$(command -v busybox)" "$T/rootfs/bin/busybox"
for a in $(busybox --list); do [ "$a" = busybox ] || ln -s busybox "$T/rootfs/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$T/rootfs/etc/passwd"
printf 'root:x:0:\n' > "$T/rootfs/etc/group"
tar -C "$T/rootfs" -cf "$T/rootfs.tar" .

wait_api() {
  local log=$1; shift
  for _ in $(seq 300); do "$@" version >/dev/null 2>&1 && return 0; sleep 0.1; done
  tail -20 "$log" >&2; exit 1
}
# dockerd's bridge: a /24 that no route covers.
for n in $(seq 200 250); do
  ip route | grep -q "^10\.$n\." || { NET=10.$n; break; }
done
ip link add "$BD_BR" type bridge && ip addr add "$NET.0.1/24" dev "$BD_BR" && ip link set "$BD_BR" up
PATH="$BIN:$PATH" "$BIN/berthd" --data-root "$T/berth-data" --exec-root "$T/berth-exec" \
  -H "unix://$T/berth.sock" --cgroup-parent "/$CG/berthd" --bridge "$BB" \
  --log-level debug >"$T/berthd.log" 2>&1 &
BERTHD_PID=$!
echo '{}' > "$T/daemon.json"
dockerd --data-root "$T/docker-data" --exec-root "$T/docker-exec" -H "unix://$T/docker.sock" \
  --pidfile "$T/docker.pid" --config-file "$T/daemon.json" --bridge="$BD_BR" --iptables=false \
  --ip-masq=false --cgroup-parent "/$CG/docker" >"$T/dockerd.log" 2>&1 &
DOCKERD_PID=$!
wait_api "$T/berthd.log" "${BD[@]}"
wait_api "$T/dockerd.log" "${DD[@]}"
"${BD[@]}" import "$T/rootfs.tar" bench-busybox:1 >/dev/null
"${DD[@]}" import "$T/rootfs.tar" bench-busybox:1 >/dev/null

echo "== run --rm busybox true, default bridge (and --network none for reference)"
hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$T/run.json" \
  -n "berthd bridge" "${BD[*]} run --rm bench-busybox:1 true" \
  -n "dockerd bridge" "${DD[*]} run --rm bench-busybox:1 true" \
  -n "berthd none" "${BD[*]} run --rm --network none bench-busybox:1 true" \
  -n "dockerd none" "${DD[*]} run --rm --network none bench-busybox:1 true"
python3 - "$T/run.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
for net in ("bridge", "none"):
    b, d = r[f"berthd {net}"]["median"], r[f"dockerd {net}"]["median"]
    print(f"{net}: berthd {b*1e3:.1f} ms, dockerd {d*1e3:.1f} ms (median): berthd takes {b/d:.2f}x dockerd's time")
print(f"bridge over none: berthd +{(r['berthd bridge']['median']-r['berthd none']['median'])*1e3:.1f} ms, "
      f"dockerd +{(r['dockerd bridge']['median']-r['dockerd none']['median'])*1e3:.1f} ms")
PY

stats() {  # FIELD LOGFILE [FILTER]: median/min/max of FIELD=ms in berthd's debug log
  { grep -a "${3:-}" "$2" || true; } | grep -o "$1=[0-9.]*" | cut -d= -f2 | sort -n |
    awk -v f="$1" '{a[NR]=$1} END {if (NR) printf "%s: n=%d median %.2f ms, min %.2f, max %.2f\n", f, NR, a[int((NR+1)/2)], a[1], a[NR]}'
}
echo "== berthd's network setup per start (its debug log): all of it (network_ms: from the"
echo "   start request to a configured namespace), of which the namespace, veth, address and"
echo "   route work (namespace_ms)"
stats network_ms "$T/berthd.log"
stats namespace_ms "$T/berthd.log"

echo "== a published port per start: the firewall update, nftables vs iptables"
for i in $(seq "$RUNS"); do "${BD[@]}" run --rm -p 127.0.0.1::80 bench-busybox:1 true >/dev/null; done
stats firewall_ms "$T/berthd.log" nftables
stop_engine "$BERTHD_PID" "${BD[@]}"
PATH="$BIN:$PATH" "$BIN/berthd" --data-root "$T/berth-data" --exec-root "$T/berth-exec" \
  -H "unix://$T/berth.sock" --cgroup-parent "/$CG/berthd" --bridge "$BB" \
  --firewall-backend iptables --log-level debug >"$T/berthd-ipt.log" 2>&1 &
BERTHD_PID=$!
wait_api "$T/berthd-ipt.log" "${BD[@]}"
for i in $(seq "$RUNS"); do "${BD[@]}" run --rm -p 127.0.0.1::80 bench-busybox:1 true >/dev/null; done
stats firewall_ms "$T/berthd-ipt.log" iptables

echo "== $COUNT containers on one user-defined network"
"${BD[@]}" network create benchnet >/dev/null
"${DD[@]}" network create benchnet >/dev/null
for side in berthd dockerd; do
  if [ $side = berthd ]; then C=("${BD[@]}"); else C=("${DD[@]}"); fi
  s=$(date +%s.%N)
  for i in $(seq "$COUNT"); do
    "${C[@]}" run -d --network benchnet --name "n$i" bench-busybox:1 sleep 1000 >/dev/null
  done
  m=$(date +%s.%N)
  "${C[@]}" rm -f $(seq -f "n%g" "$COUNT") >/dev/null
  e=$(date +%s.%N)
  echo "$side: start $COUNT: $(echo "$m - $s" | bc) s; rm -f: $(echo "$e - $m" | bc) s" | tee -a "$T/many.txt"
done

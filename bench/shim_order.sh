#!/usr/bin/env bash
# Regenerates shim/symbol-order.txt: the functions a berth-shim runs, which the release
# link puts first in its text (shim/build.rs; bench/README, "Shim memory").
#
# Runs shim lifecycles under berth-supervisor with the static release shim under
# callgrind (every function executed, by symbol): a container killed while running (with
# state and exec), one that exits by itself (start --wait), and one whose output the shim
# logs; and under containerd (ctr run, exec, kill, delete, run --rm). Adds the string and memory functions the ifuncs of a native shim resolved to on
# this CPU (valgrind's emulated CPU selects others). Regenerate after changing the shim or
# the toolchain: symbols of another build only lose their place, the link still succeeds.
# Usage: bench/shim_order.sh   (after `make build`; needs valgrind and binutils)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib/containerd.sh
HOST=$(rustc -vV | sed -n 's/^host: //p')
STATIC=target/static/$HOST/release
for tool in valgrind readelf nm objdump python3 containerd ctr; do
  command -v "$tool" >/dev/null || { echo "shim_order: $tool is missing (apt-get install valgrind binutils python3)" >&2; exit 1; }
done
T=$(mktemp -d /tmp/berth-order.XXXXXX)
SV_PID=
CTD_PID=
cleanup() {
  if [ -n "$CTD_PID" ]; then
    for id in c1 c2; do timeout 30 ctr --address "$T/ctd/c.sock" task kill -s 9 "$id" >/dev/null 2>&1 || true; done
    sleep 1
    for id in c1 c2; do timeout 30 ctr --address "$T/ctd/c.sock" task delete "$id" >/dev/null 2>&1 || true; done
    stop_containerd "$T/ctd"
  fi
  if [ -n "$SV_PID" ]; then
    for id in s1 t1 l1 n1; do "$T/bin/berth-ctl" -a "$T/s.sock" kill -s 9 "$id" >/dev/null 2>&1 || true; done
    sleep 1
    for id in s1 t1 l1 n1; do "$T/bin/berth-ctl" -a "$T/s.sock" delete "$id" >/dev/null 2>&1 || true; done
    kill "$SV_PID" 2>/dev/null || true
    wait "$SV_PID" 2>/dev/null || true
  fi
  rm -rf "$T"
}
trap cleanup EXIT
mkdir -p "$T/bin" "$T/native" "$T/cg"
cp target/release/berth-supervisor target/release/berth-ctl "$STATIC/berth-runtime" "$T/bin/"
cp "$STATIC/berth-shim" "$T/bin/berth-shim.real"
cp target/release/berth-supervisor target/release/berth-ctl "$STATIC/berth-runtime" "$STATIC/berth-shim" "$T/native/"
cat > "$T/bin/berth-shim" <<EOF
#!/bin/sh
exec valgrind --tool=callgrind --demangle=no --trace-children=yes \
  --trace-children-skip='*berth-runtime*' --callgrind-out-file=$T/cg/out.%p \
  --log-file=$T/cg/valgrind.%p.log $T/bin/berth-shim.real "\$@"
EOF
chmod +x "$T/bin/berth-shim"

# Busybox bundles: sleep, true, and output then sleep.
mkdir -p "$T/rootfs/bin" "$T/rootfs/"{proc,sys,dev,tmp,etc}
cp /bin/busybox "$T/rootfs/bin/"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$T/rootfs/bin/$a"; done
(cd "$T" && "$T/bin/berth-runtime" spec)
bundle() { # name args-json
  mkdir -p "$T/$1" && cp -a "$T/rootfs" "$T/$1/"
  python3 - "$T/config.json" "$T/$1/config.json" "$2" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["process"]["args"] = json.loads(sys.argv[3])
c["process"]["terminal"] = False
json.dump(c, open(sys.argv[2], "w"))
PY
}
bundle sleep '["sleep", "3600"]'
bundle true '["true"]'
bundle log '["sh", "-c", "seq 1 2000; exec sleep 3600"]'

supervise() { # bin-dir
  "$1/berth-supervisor" --root "$T/root" --state "$T/state" --address "$T/s.sock" --log-level warn 2>>"$T/supervisor.log" &
  SV_PID=$!
  for _ in $(seq 100); do [ -S "$T/s.sock" ] && return; sleep 0.05; done
  echo "shim_order: the supervisor did not start" >&2; exit 1
}
unsupervise() {
  kill "$SV_PID"; wait "$SV_PID" 2>/dev/null || true; SV_PID=
  rm -rf "$T/root" "$T/state"
}

supervise "$T/bin"
C=("$T/bin/berth-ctl" -a "$T/s.sock")
"${C[@]}" create --bundle "$T/sleep" s1
"${C[@]}" start s1 >/dev/null
sleep 2
"${C[@]}" state s1 >/dev/null
"${C[@]}" exec --exec-id e1 s1 echo hi >/dev/null
"${C[@]}" kill -s 9 s1
sleep 2
"${C[@]}" delete s1
"${C[@]}" create --bundle "$T/true" t1
"${C[@]}" start --wait t1 >/dev/null
sleep 1
"${C[@]}" delete t1
"${C[@]}" create --bundle "$T/log" l1
"${C[@]}" start --log-path "$T/l1.log" l1 >/dev/null
sleep 4
"${C[@]}" kill -s 9 l1
sleep 2
"${C[@]}" delete l1
unsupervise

# Under containerd 1.6 too (its own start options, event publishing and calls), from a
# rootfs: run, exec, kill, delete; and a container that exits by itself (run --rm).
mkdir -p "$T/ctd/bin"
ln -s "$T/bin/berth-shim" "$T/ctd/bin/containerd-shim-berth-v2"
start_containerd "$T/ctd" "$T/ctd/bin"
CTR=(timeout 60 ctr --address "$T/ctd/c.sock")
"${CTR[@]}" run -d --runtime io.containerd.berth.v2 --rootfs "$T/rootfs" c1 sleep 3600 >/dev/null
sleep 2
"${CTR[@]}" task exec --exec-id e1 c1 echo hi >/dev/null
"${CTR[@]}" task kill -s 9 c1
sleep 2
"${CTR[@]}" task delete c1 >/dev/null
"${CTR[@]}" container delete c1
"${CTR[@]}" run --rm --runtime io.containerd.berth.v2 --rootfs "$T/rootfs" c2 true >/dev/null
stop_containerd "$T/ctd"

# The ifuncs' choices on this CPU, read from a native shim's IRELATIVE slots.
supervise "$T/native"
C=("$T/native/berth-ctl" -a "$T/s.sock")
"${C[@]}" create --bundle "$T/sleep" n1
"${C[@]}" start n1 >/dev/null
sleep 1
shim=$(pgrep -f -- "berth-shim .*-id n1" | head -1)
python3 - "$shim" "$T/native/berth-shim" > "$T/ifuncs.txt" <<'PY'
import subprocess, sys
pid, binary = sys.argv[1], sys.argv[2]
relocs = subprocess.run(["readelf", "-rW", binary], capture_output=True, text=True, check=True).stdout
slots = [int(l.split()[0], 16) for l in relocs.splitlines() if "R_X86_64_IRELATIVE" in l]
symbols = {}
for line in subprocess.run(["nm", "--defined-only", binary], capture_output=True, text=True, check=True).stdout.splitlines():
    fields = line.split()
    if len(fields) == 3 and fields[1] in "tTwWiI":
        symbols.setdefault(int(fields[0], 16), fields[2])
with open(f"/proc/{pid}/mem", "rb") as mem:
    for slot in slots:
        mem.seek(slot)
        target = symbols.get(int.from_bytes(mem.read(8), "little"))
        if target:
            print(target)
PY
"${C[@]}" kill -s 9 n1
sleep 1
"${C[@]}" delete n1
unsupervise

# Every function callgrind saw run (callers and callees; names are given once per file).
# It names glibc's start-up `(below main)` and code without a symbol of its own by address:
# those are looked up in the binary (the symbol that holds the address).
python3 - "$T/bin/berth-shim.real" "$T"/cg/out.* > "$T/functions.txt" <<'PY'
import bisect, re, subprocess, sys
binary, profiles = sys.argv[1], sys.argv[2:]
symbols = []
for line in subprocess.run(["nm", "-nS", "--defined-only", binary], capture_output=True, text=True, check=True).stdout.splitlines():
    fields = line.split()
    if len(fields) == 4 and fields[2] in "tTwWiI":
        symbols.append((int(fields[0], 16), int(fields[1], 16), fields[3]))
starts = [start for start, _, _ in symbols]
def holding(address):
    i = bisect.bisect_right(starts, address) - 1
    # Start-up objects' symbols (crt1, crtbegin) have no size: the nearest one below.
    if i >= 0 and (symbols[i][1] == 0 or address < symbols[i][0] + symbols[i][1]):
        return symbols[i][2]
    return None
# The entry point runs first, before valgrind names anything.
header = subprocess.run(["readelf", "-h", binary], capture_output=True, text=True, check=True).stdout
entry = int(re.search(r"Entry point address:\s+(0x[0-9a-f]+)", header).group(1), 16)
names = {hex(entry)}
for path in profiles:
    ids = {}
    for line in open(path, errors="replace"):
        m = re.match(r"^c?fn=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
        if m:
            if m.group(2):
                ids[m.group(1)] = m.group(2)
            names.add(ids.get(m.group(1), ""))
for name in names:
    name = re.sub(r"'\d+$", "", name)  # callgrind's mark of a recursion level
    if name == "(below main)":
        print("__libc_start_main_impl")
        print("__libc_start_call_main")
    elif name.startswith("0x"):
        symbol = holding(int(name, 16))
        if symbol:
            print(symbol)
    elif name:
        print(name)
PY
[ -s "$T/functions.txt" ] || { echo "shim_order: callgrind recorded nothing" >&2; exit 1; }

# Code valgrind does not see run, taken from the binary's call graph instead (two calls
# deep from these entry points):
# - the child of posix_spawn (how std starts the runtime) runs in the shim's own address
#   space until it execs (CLONE_VM), so the code it runs is mapped into the shim; valgrind
#   turns that clone into a fork and loses the child's profile;
# - glibc's start-up sets up the vDSO's link map, and valgrind gives no vDSO.
objdump -d --no-show-raw-insn "$T/bin/berth-shim.real" | python3 -c '
import re, sys
calls, current = {}, None
for line in sys.stdin:
    m = re.match(r"^[0-9a-f]+ <(.+)>:$", line)
    if m:
        current = m.group(1)
        calls.setdefault(current, set())
        continue
    m = re.search(r"\s(?:call|jmp|j[a-z]+)\s+[0-9a-f]+ <([^>+]+)(?:\+0x[0-9a-f]+)?>", line)
    if m and current and m.group(1) != current:
        calls[current].add(m.group(1))
seen, frontier = set(), {"__spawni_child", "__execvpex", "_dl_new_object", "_dl_add_to_namespace_list", "_dl_setup_hash", "_dl_lookup_symbol_x"}
for _ in range(3):
    seen |= frontier
    frontier = {c for f in frontier for c in calls.get(f, ())} - seen
print("\n".join(sorted(seen)))
' > "$T/unseen.txt"
LC_ALL=C sort -u "$T/functions.txt" "$T/ifuncs.txt" "$T/unseen.txt" > shim/symbol-order.txt
echo "shim/symbol-order.txt: $(wc -l < shim/symbol-order.txt) symbols ($(wc -l < "$T/ifuncs.txt") ifunc choices)"

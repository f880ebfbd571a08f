# Sourced by bench scripts: a private containerd 1.6 in a directory of the script's own
# (root, state, socket and log inside it; no CRI, no debug or metrics listeners).

# start_containerd DIR [PATH_PREFIX]: start it (PATH_PREFIX first in its PATH, where it
# finds shims by name), wait for DIR/c.sock; sets CTD_PID.
start_containerd() {
  local dir=$1 path_prefix=${2:-}
  mkdir -p "$dir"
  cat > "$dir/config.toml" <<TOML
version = 2
root = "$dir/root"
state = "$dir/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "$dir/c.sock"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$dir/opt"
TOML
  PATH="${path_prefix:+$path_prefix:}$PATH" containerd --config "$dir/config.toml" >"$dir/containerd.log" 2>&1 &
  CTD_PID=$!
  for _ in $(seq 200); do [ -S "$dir/c.sock" ] && return 0; sleep 0.05; done
  echo "containerd did not start: $(tail -5 "$dir/containerd.log")" >&2
  return 1
}

# stop_containerd DIR: stop the one start_containerd started and unmount its root.
stop_containerd() {
  if [ -n "${CTD_PID:-}" ]; then
    kill "$CTD_PID" 2>/dev/null || true
    wait "$CTD_PID" 2>/dev/null || true
    CTD_PID=
  fi
  umount -l "$1/root" 2>/dev/null || true
}

#!/usr/bin/env bash
# Builds the fuzz harnesses with libFuzzer's coverage instrumentation on stable Rust
# (the flags cargo-fuzz passes, without its nightly-only sanitizer) and runs each for
# SECONDS from the committed seeds, with a fixed seed. New inputs go to a temp corpus,
# never into the tree; a crash fails the run and names the input that made it.
#   fuzz/run.sh [SECONDS] [TARGET...]     (default: 20 s each, every target)
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-20}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(untar reference manifest body api dockerfile)
fi
export RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
 -Cllvm-args=-sanitizer-coverage-trace-compares"
export CARGO_TARGET_DIR="$PWD/../target/fuzz"
# An explicit --target keeps the flags off build scripts and proc macros, which run
# on the host without libFuzzer (as cargo-fuzz does it).
host=$(rustc -vV | sed -n 's/^host: //p')
cargo build --release --bins --target "$host"
bin="$CARGO_TARGET_DIR/$host/release"
work=$(mktemp -d /tmp/berth-fuzz-run.XXXXXX)
trap 'rm -rf "$work"' EXIT
failed=0
for t in "${targets[@]}"; do
  mkdir -p "$work/$t"
  echo "fuzz: $t for ${secs}s"
  if ! "$bin/$t" "$work/$t" "seeds/$t" -seed=1 -max_total_time="$secs" \
      -max_len=65536 -rss_limit_mb=1024 -timeout=60 -artifact_prefix="$work/$t-" \
      -print_final_stats=1 >"$work/$t.log" 2>&1; then
    tail -40 "$work/$t.log"
    for a in "$work/$t"-*; do
      [ -e "$a" ] || continue
      keep="$PWD/crashes/$t-$(basename "$a")"
      mkdir -p "$PWD/crashes" && cp "$a" "$keep"
      echo "fuzz: $t crashed on $keep (fix it, then move it into seeds/$t/ as a regression seed)"
    done
    failed=1
  else
    grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb" "$work/$t.log" | sed "s/^/fuzz: $t /"
  fi
done
exit $failed

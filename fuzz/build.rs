//! The Dockerfile parser lives on the `build` branch until it is merged: its harness is
//! compiled in (cfg `berth_dockerfile`) only when the engine has it, so this crate
//! builds on either side of that merge.
use std::path::Path;

fn main() {
    let parser =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../engine/src/build/dockerfile/mod.rs");
    println!("cargo::rustc-check-cfg=cfg(berth_dockerfile)");
    // The engine's sources, not the parser's file: a path that does not exist would
    // rerun this script, and rebuild every harness, on each build.
    println!("cargo::rerun-if-changed=../engine/src");
    if parser.exists() {
        println!("cargo::rustc-cfg=berth_dockerfile");
    }
}

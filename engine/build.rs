//! Builds berth-pause (pause/pause.rs), the process that holds a pod sandbox's
//! namespaces, as a static binary that berthd embeds and turns into its internal
//! sandbox image: it must run in a root filesystem that holds nothing else, so it is
//! compiled alone with the C library linked statically and no Rust standard library
//! (a few kB of code on top of glibc's start-up; about 700 kB in all, as the
//! Kubernetes pause binary). Also links berthd with its hot code first (berth-link-order,
//! symbol-order.txt).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    berth_link_order::apply("symbol-order.txt");
    let src = "pause/pause.rs";
    println!("cargo:rerun-if-changed={src}");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let target = std::env::var("TARGET").expect("cargo sets TARGET");
    let bin = out.join("berth-pause");
    let status = Command::new(rustc)
        .args([
            "--edition",
            "2021",
            "--crate-type",
            "bin",
            "--crate-name",
            "berth_pause",
        ])
        .args(["--target", &target])
        .args([
            "-C",
            "panic=abort",
            "-C",
            "opt-level=s",
            "-C",
            "strip=symbols",
        ])
        .args(["-C", "target-feature=+crt-static"])
        // No standard library: the C library (and libgcc for its start-up) are named
        // here, statically, in one group so that their references resolve each other.
        .args([
            "-C",
            "link-arg=-Wl,-Bstatic",
            "-C",
            "link-arg=-Wl,--start-group",
        ])
        .args([
            "-C",
            "link-arg=-lc",
            "-C",
            "link-arg=-lgcc",
            "-C",
            "link-arg=-lgcc_eh",
        ])
        .args(["-C", "link-arg=-Wl,--end-group"])
        .arg("-o")
        .arg(&bin)
        .arg(src)
        .status()
        .expect("running rustc for berth-pause");
    assert!(
        status.success(),
        "building berth-pause (static) failed; libc6-dev is needed"
    );
}

//! Links a release binary with the functions it runs placed first in its text, from a
//! symbol ordering file beside the package's manifest (see bench/README, "Code layout").
//!
//! The kernel maps a binary's pages 64 kB at a time around each page a process touches
//! (fault-around), so code that runs, spread over the whole text, makes nearly all of it
//! resident in every process. Gathered at the start of the text it is a fraction of that.
//! The lists are made by bench/shim_order.sh (the static shim, under callgrind) and
//! bench/daemon_order.sh (berthd and berth-supervisor, under uftrace).

use std::path::Path;

/// From a build script: link this package's binaries with `file` (relative to the
/// manifest) as lld's `--symbol-ordering-file`, for release builds of x86_64 Linux with
/// glibc by a rustc that links them with lld (1.90 and later). Elsewhere nothing changes.
pub fn apply(file: &str) {
    println!("cargo:rerun-if-changed={file}");
    let target = std::env::var("TARGET").unwrap_or_default();
    let release = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    if target != "x86_64-unknown-linux-gnu" || !release || !rustc_links_with_lld() {
        return;
    }
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let order = Path::new(&manifest_dir).join(file);
    println!(
        "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
        order.display()
    );
    // Symbols the list names but this build lacks (another toolchain, changed code) only
    // lose their place.
    println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
}

/// Whether the rustc cargo runs is 1.90 or later, whose default linker for this target
/// is its own lld.
fn rustc_links_with_lld() -> bool {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let Ok(out) = std::process::Command::new(rustc).arg("--version").output() else {
        return false;
    };
    version_at_least(&String::from_utf8_lossy(&out.stdout), (1, 90))
}

/// Whether `rustc --version`'s output names at least `(major, minor)`.
fn version_at_least(version: &str, wanted: (u32, u32)) -> bool {
    let mut numbers = version
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .split(['.', '-'])
        .map(|n| n.parse::<u32>().unwrap_or(0));
    let major = numbers.next().unwrap_or(0);
    let minor = numbers.next().unwrap_or(0);
    (major, minor) >= wanted
}

#[cfg(test)]
mod tests {
    use super::version_at_least;

    #[test]
    fn rustc_versions_are_compared_by_major_and_minor() {
        assert!(version_at_least(
            "rustc 1.95.0 (59807616e 2026-04-14)",
            (1, 90)
        ));
        assert!(version_at_least(
            "rustc 1.90.0-nightly (abc 2025-07-01)",
            (1, 90)
        ));
        assert!(!version_at_least("rustc 1.89.1 (abc 2025-08-07)", (1, 90)));
        assert!(!version_at_least("rustc 1.100", (2, 0)));
        assert!(!version_at_least("", (1, 90)));
    }
}

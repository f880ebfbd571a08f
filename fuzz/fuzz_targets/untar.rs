//! The tar unpacker under each caller's policy (the last byte picks it), into a root
//! with symlinks out and a host file beside it: it must never panic and never change
//! anything outside the root.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    berth_fs::untar::fuzz_contained(data);
});

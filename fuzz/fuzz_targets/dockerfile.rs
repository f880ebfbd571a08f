//! The Dockerfile parser (engine/src/build/dockerfile): the text of a build context's
//! Dockerfile, `--change` instructions, and the variable substitution applied to every
//! instruction's words.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        berth_engine::fuzzing::dockerfile(text);
    }
});

//! Image references as clients name them: parsed, printed and parsed back.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        berth_engine::fuzzing::image_reference(s);
    }
});

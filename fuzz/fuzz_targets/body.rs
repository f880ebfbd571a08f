//! The Engine API request bodies berthd still checks itself (engine/src/api/body.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    berth_engine::fuzzing::request_body(data);
});

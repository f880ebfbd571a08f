//! Manifests, indexes and image configs as registries and loaded archives send them.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    berth_engine::fuzzing::image_manifest(data);
});

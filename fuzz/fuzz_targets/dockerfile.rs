//! The Dockerfile parser (engine/src/build/dockerfile, from the `build` branch): the
//! text of a build context's Dockerfile, `--change` instructions, and the variable
//! substitution applied to every instruction's words. Compiled to a no-op where the
//! engine has no parser yet (fuzz/build.rs); run.sh then skips it.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    #[cfg(berth_dockerfile)]
    if let Ok(text) = std::str::from_utf8(data) {
        use berth_engine::build::dockerfile::{self, shell};
        let _ = dockerfile::parse(text);
        let _ = dockerfile::parse_changes(text);
        let env = shell::env_map(&["A=1".to_string(), "EMPTY=".to_string()]);
        for escape in ['\\', '`'] {
            let _ = shell::Lex::new(escape).word(text, &env);
            let _ = shell::Lex::new(escape).words(text, &env);
        }
    }
    #[cfg(not(berth_dockerfile))]
    let _ = data;
});

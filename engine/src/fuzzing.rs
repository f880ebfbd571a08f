//! Entry points for the fuzz harnesses (`fuzz/`): berthd's parsers of what clients and
//! registries send, each fed raw bytes as an attacker would send them. They must never
//! panic; where a parser's output can be checked against itself, it is.

use crate::images::pull::{config_diff_ids, is_index, parse_manifest, pick_platform, Platform};
use crate::images::reference::Reference;

/// An image reference as a client names it: parsed; one that parses prints as one
/// that parses back to the same reference.
pub fn image_reference(s: &str) {
    for parsed in [Reference::parse(s), Reference::parse_with_default_tag(s)] {
        let Ok(r) = parsed else { continue };
        let printed = r.to_string();
        let again = Reference::parse(&printed)
            .unwrap_or_else(|e| panic!("{s:?} parsed as {printed:?}, which does not parse: {e}"));
        assert_eq!(again, r, "{s:?} does not survive printing as {printed:?}");
        let _ = r.familiar();
        let _ = r.familiar_name();
    }
}

/// A manifest, an index or an image config from a registry or a loaded archive, read
/// by each parser that may be handed it.
pub fn image_manifest(bytes: &[u8]) {
    for media_type in ["", "application/vnd.oci.image.index.v1+json"] {
        let _ = is_index(media_type, bytes);
    }
    let _ = parse_manifest(bytes);
    let _ = pick_platform(bytes, &Platform::host());
    let _ = config_diff_ids(bytes);
}

/// A request body of the endpoints berthd reads, decoded as each of them decodes it
/// (berth-api's typed requests, with dockerd's checks).
pub fn request_body(bytes: &[u8]) {
    use berth_api::container::{ContainerCreateRequest, UpdateConfig};
    use berth_api::exec::{ExecConfig, ExecStartCheck};
    use berth_api::json::decode_body_or_default;
    use berth_api::volume::VolumeCreateOptions;
    let ct = Some("application/json");
    let _ = ContainerCreateRequest::decode(ct, bytes);
    let _ = decode_body_or_default::<UpdateConfig>(ct, bytes);
    let _ = decode_body_or_default::<ExecConfig>(ct, bytes);
    let _ = decode_body_or_default::<ExecStartCheck>(ct, bytes);
    let _ = decode_body_or_default::<VolumeCreateOptions>(ct, bytes);
}

/// A Dockerfile from a build context, the same text as `--change` instructions, and the
/// variable substitution every instruction's words go through (both escape tokens).
pub fn dockerfile(text: &str) {
    use crate::build::dockerfile::{self, shell};
    let _ = dockerfile::parse(text);
    let _ = dockerfile::parse_changes(text);
    let env = shell::env_map(&["A=1".to_string(), "EMPTY=".to_string()]);
    for escape in ['\\', '`'] {
        let lex = shell::Lex::new(escape);
        let _ = lex.word(text, &env);
        let _ = lex.words(text, &env);
    }
}

#[cfg(test)]
mod tests {
    /// The harnesses' entry points on the committed seeds (the fuzz runs start there).
    #[test]
    fn seeds_pass_through_every_entry_point() {
        let seeds = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds");
        for (dir, run) in [
            (
                "reference",
                &(|b: &[u8]| super::image_reference(&String::from_utf8_lossy(b))) as &dyn Fn(&[u8]),
            ),
            ("manifest", &super::image_manifest),
            ("body", &super::request_body),
            (
                "dockerfile",
                &(|b: &[u8]| super::dockerfile(&String::from_utf8_lossy(b))) as &dyn Fn(&[u8]),
            ),
        ] {
            let mut n = 0;
            for e in std::fs::read_dir(seeds.join(dir)).unwrap() {
                run(&std::fs::read(e.unwrap().path()).unwrap());
                n += 1;
            }
            assert!(n > 0, "no seeds in {dir}");
        }
    }
}

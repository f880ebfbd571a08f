//! The options of a task (CreateTaskRequest.options): containerd's
//! `containerd.runc.v1.Options` as containerd sends them, or berth-supervisor's
//! `berth.shim.v1.Options` (proto/berth/shim/v1/options.proto: those runc options,
//! encoded, and the json-file log of the init process). The berth message is decoded by
//! hand (two fields and a three-field sub-message): generated code for it would pull a
//! protobuf code generator into the shim's build for no gain.

use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::{CodedInputStream, Message};
use containerd_shim_protos::shim::oci::Options;

use crate::jsonlog::LogConfig;

/// The type URL berth-supervisor sends.
pub const BERTH_OPTIONS: &str = "berth.shim.v1.Options";

/// What a task was created with.
#[derive(Default)]
pub struct TaskOptions {
    /// Runtime binary, root, systemd cgroups...
    pub runc: Options,
    /// The init's log, when asked for.
    pub log: Option<LogConfig>,
}

/// Read the task's options; unknown types are ignored (as containerd's runc shim does).
pub fn parse(any: Option<&Any>) -> Result<TaskOptions, String> {
    let Some(any) = any else {
        return Ok(TaskOptions::default());
    };
    let url = any.type_url.as_str();
    if url.ends_with("containerd.runc.v1.Options") || url.ends_with("runctypes.RuncOptions") {
        let runc = Options::parse_from_bytes(&any.value).map_err(|e| e.to_string())?;
        return Ok(TaskOptions { runc, log: None });
    }
    if url.ends_with(BERTH_OPTIONS) {
        return parse_berth(&any.value).map_err(|e| format!("{BERTH_OPTIONS}: {e}"));
    }
    Ok(TaskOptions::default())
}

type Fields = Vec<(u32, Field)>;

enum Field {
    Varint(u64),
    Bytes(Vec<u8>),
}

/// The fields of one message: varints and length-delimited values (others skipped).
fn fields(bytes: &[u8]) -> containerd_shim_protos::protobuf::Result<Fields> {
    let mut is = CodedInputStream::from_bytes(bytes);
    let mut out = Vec::new();
    while let Some(tag) = is.read_raw_tag_or_eof()? {
        let (number, wire) = (tag >> 3, tag & 7);
        match wire {
            0 => out.push((number, Field::Varint(is.read_raw_varint64()?))),
            2 => out.push((number, Field::Bytes(is.read_bytes()?))),
            _ => containerd_shim_protos::protobuf::rt::skip_field_for_tag(tag, &mut is)?,
        }
    }
    Ok(out)
}

fn parse_berth(bytes: &[u8]) -> Result<TaskOptions, String> {
    let mut out = TaskOptions::default();
    for (n, f) in fields(bytes).map_err(|e| e.to_string())? {
        match (n, f) {
            (1, Field::Bytes(b)) => {
                out.runc = Options::parse_from_bytes(&b).map_err(|e| e.to_string())?;
            }
            (2, Field::Bytes(b)) => {
                let mut log = LogConfig::default();
                for (n, f) in fields(&b).map_err(|e| e.to_string())? {
                    match (n, f) {
                        (1, Field::Bytes(p)) => {
                            log.path = String::from_utf8(p)
                                .map_err(|_| "log path: not UTF-8".to_string())?
                                .into();
                        }
                        (2, Field::Varint(v)) => log.max_size = v,
                        (3, Field::Varint(v)) => log.max_file = v as u32,
                        _ => {}
                    }
                }
                if !log.path.is_absolute() {
                    return Err(format!("log path {:?}: not absolute", log.path));
                }
                out.log = Some(log);
            }
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use containerd_shim_protos::protobuf::CodedOutputStream;

    fn encode(runc: &Options, log: Option<(&str, u64, u32)>, junk: bool) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut os = CodedOutputStream::vec(&mut out);
            if junk {
                // An unknown fixed32 field (number 9) first: skipped.
                os.write_raw_varint32((9 << 3) | 5).unwrap();
                os.write_raw_little_endian32(7).unwrap();
            }
            os.write_raw_varint32((1 << 3) | 2).unwrap();
            os.write_raw_bytes(&{
                let b = runc.write_to_bytes().unwrap();
                let mut v = Vec::new();
                CodedOutputStream::vec(&mut v)
                    .write_raw_varint32(b.len() as u32)
                    .unwrap();
                v.extend_from_slice(&b);
                v
            })
            .unwrap();
            if let Some((path, size, files)) = log {
                let mut sub = Vec::new();
                {
                    let mut s = CodedOutputStream::vec(&mut sub);
                    s.write_raw_varint32((1 << 3) | 2).unwrap();
                    s.write_raw_varint32(path.len() as u32).unwrap();
                    s.write_raw_bytes(path.as_bytes()).unwrap();
                    s.write_raw_varint32(2 << 3).unwrap();
                    s.write_raw_varint64(size).unwrap();
                    s.write_raw_varint32(3 << 3).unwrap();
                    s.write_raw_varint32(files).unwrap();
                    s.flush().unwrap();
                }
                os.write_raw_varint32((2 << 3) | 2).unwrap();
                os.write_raw_varint32(sub.len() as u32).unwrap();
                os.write_raw_bytes(&sub).unwrap();
            }
            os.flush().unwrap();
        }
        out
    }

    #[test]
    fn berth_options_with_and_without_log() {
        let mut runc = Options::new();
        runc.binary_name = "/usr/bin/crun".into();
        runc.root = "/run/x".into();
        let mut any = Any::new();
        any.type_url = BERTH_OPTIONS.into();
        any.value = encode(&runc, Some(("/var/lib/c/c-json.log", 10 << 20, 3)), true);
        let o = parse(Some(&any)).unwrap();
        assert_eq!(o.runc.binary_name, "/usr/bin/crun");
        assert_eq!(o.runc.root, "/run/x");
        assert_eq!(
            o.log,
            Some(LogConfig {
                path: "/var/lib/c/c-json.log".into(),
                max_size: 10 << 20,
                max_file: 3,
            })
        );
        any.value = encode(&runc, None, false);
        assert!(parse(Some(&any)).unwrap().log.is_none());
        any.value = encode(&runc, Some(("relative.log", 0, 0)), false);
        assert!(parse(Some(&any)).is_err());
        any.value = vec![0x0a, 0x05, 0x01];
        assert!(parse(Some(&any)).is_err());
        // containerd's own type, and none at all.
        let mut c = Any::new();
        c.type_url = "containerd.runc.v1.Options".into();
        c.value = runc.write_to_bytes().unwrap();
        assert_eq!(parse(Some(&c)).unwrap().runc.binary_name, "/usr/bin/crun");
        assert!(parse(None).unwrap().log.is_none());
    }
}

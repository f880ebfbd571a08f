//! `--mount` specs (`HostConfig.Mounts`), and the parsing of every way a container
//! names a mount (Binds `src:dst[:mode]`, Mounts, Tmpfs) into one [`MountSpec`], with
//! the checks and words of dockerd's Linux mount parser (`volume/mounts`) and of its
//! `registerMountPoints` (duplicate destinations). Whether a bind source exists is the
//! engine's to check (it needs the file system): [`MountError::BindSourceDoesNotExist`]
//! has the words.

use crate::json::{Ty, FILE_MODE, I64, STR_MAP};
use crate::path::clean;
use std::collections::BTreeMap;

fn is_false(b: &bool) -> bool {
    !*b
}

go_struct! {
    /// `mount.BindOptions`.
    pub struct BindOptions = "mount.BindOptions" {
        /// Propagation (`rprivate`, `rshared`, ...).
        #[serde(skip_serializing_if = "String::is_empty")]
        propagation: String = "Propagation": Ty::Str,
        /// Bind only the top mount, not submounts.
        #[serde(skip_serializing_if = "is_false")]
        non_recursive: bool = "NonRecursive": Ty::Bool,
        /// Create the host path when missing.
        #[serde(skip_serializing_if = "is_false")]
        create_mountpoint: bool = "CreateMountpoint": Ty::Bool,
    }
}

go_struct! {
    /// `mount.Driver`: a volume driver and its options.
    pub struct Driver = "mount.Driver" {
        /// Driver name.
        #[serde(skip_serializing_if = "String::is_empty")]
        name: String = "Name": Ty::Str,
        /// Driver options.
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        options: BTreeMap<String, String> = "Options": STR_MAP,
    }
}

go_struct! {
    /// `mount.VolumeOptions`.
    pub struct VolumeOptions = "mount.VolumeOptions" {
        /// Do not copy the image's content into a new volume.
        #[serde(skip_serializing_if = "is_false")]
        no_copy: bool = "NoCopy": Ty::Bool,
        /// Labels of a volume made for this mount.
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        labels: BTreeMap<String, String> = "Labels": STR_MAP,
        /// Driver of a volume made for this mount.
        #[serde(skip_serializing_if = "Option::is_none")]
        driver_config: Option<Driver> = "DriverConfig": Ty::Struct(&Driver::SCHEMA),
    }
}

go_struct! {
    /// `mount.TmpfsOptions`.
    pub struct TmpfsOptions = "mount.TmpfsOptions" {
        /// Size in bytes (0: the kernel's default).
        #[serde(skip_serializing_if = "is_zero")]
        size_bytes: i64 = "SizeBytes": I64,
        /// Permission bits (Go's `os.FileMode`).
        #[serde(skip_serializing_if = "is_zero_u32")]
        mode: u32 = "Mode": FILE_MODE,
    }
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

fn is_zero_u32(n: &u32) -> bool {
    *n == 0
}

go_struct! {
    /// `mount.Mount`: one `--mount`.
    pub struct Mount = "mount.Mount" {
        /// bind, volume, tmpfs (npipe and cluster are refused on Linux).
        #[serde(skip_serializing_if = "String::is_empty")]
        kind: String = "Type": Ty::Str,
        /// Host path or volume name (empty: an anonymous volume).
        #[serde(skip_serializing_if = "String::is_empty")]
        source: String = "Source": Ty::Str,
        /// Container path.
        #[serde(skip_serializing_if = "String::is_empty")]
        target: String = "Target": Ty::Str,
        /// Read-only.
        #[serde(skip_serializing_if = "is_false")]
        read_only: bool = "ReadOnly": Ty::Bool,
        /// Ignored on Linux.
        #[serde(skip_serializing_if = "String::is_empty")]
        consistency: String = "Consistency": Ty::Str,
        /// Bind options.
        #[serde(skip_serializing_if = "Option::is_none")]
        bind_options: Option<BindOptions> = "BindOptions": Ty::Struct(&BindOptions::SCHEMA),
        /// Volume options.
        #[serde(skip_serializing_if = "Option::is_none")]
        volume_options: Option<VolumeOptions> = "VolumeOptions": Ty::Struct(&VolumeOptions::SCHEMA),
        /// tmpfs options.
        #[serde(skip_serializing_if = "Option::is_none")]
        tmpfs_options: Option<TmpfsOptions> = "TmpfsOptions": Ty::Struct(&TmpfsOptions::SCHEMA),
        /// Swarm cluster volumes (refused here).
        #[serde(skip_serializing_if = "Option::is_none")]
        cluster_options: Option<serde_json::Value> = "ClusterOptions": Ty::Any,
    }
}

/// A mount's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountKind {
    /// A host path.
    Bind,
    /// A named or anonymous volume.
    Volume,
    /// A tmpfs.
    Tmpfs,
}

impl MountKind {
    /// Docker's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bind => "bind",
            Self::Volume => "volume",
            Self::Tmpfs => "tmpfs",
        }
    }
}

/// Where a mount came from (dockerd refuses some duplicates only between some kinds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountOrigin {
    /// `HostConfig.Binds`.
    Bind,
    /// `HostConfig.Mounts`.
    Mount,
    /// `HostConfig.Tmpfs`.
    Tmpfs,
}

/// One mount, parsed and checked: what the engine makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    /// Kind.
    pub kind: MountKind,
    /// Where it came from.
    pub origin: MountOrigin,
    /// Host path (binds, cleaned), or the volume's name (empty: anonymous).
    pub source: String,
    /// Container path, cleaned.
    pub destination: String,
    /// Writable.
    pub rw: bool,
    /// The mode string as given in a bind spec (inspect's `Mode`).
    pub mode: String,
    /// Propagation of binds (`rprivate` unless given).
    pub propagation: String,
    /// Copy the image's content into a new volume (false with `nocopy`).
    pub copy_data: bool,
    /// Bind only the top mount (binds).
    pub non_recursive: bool,
    /// Create a missing bind source (`-v` binds do; `--mount` only when asked).
    pub create_source: bool,
    /// Volume driver (empty: the default).
    pub driver: String,
    /// Options of a volume made for the mount.
    pub driver_options: BTreeMap<String, String>,
    /// Labels of a volume made for the mount.
    pub labels: BTreeMap<String, String>,
    /// tmpfs mount options (`size=1m,mode=700`, `ro` when read-only).
    pub tmpfs_options: String,
}

/// A mount dockerd refuses, in its words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MountError {
    /// A Binds entry of the wrong shape.
    #[error("invalid volume specification: '{0}'")]
    InvalidSpec(String),
    /// A bind mode dockerd does not know.
    #[error("invalid mode: {0}")]
    InvalidMode(String),
    /// A Binds entry whose mount fails a `--mount` rule.
    #[error("invalid volume specification: '{spec}': {reason}")]
    InvalidSpecBecause {
        /// The entry.
        spec: String,
        /// The rule it broke.
        reason: Box<MountError>,
    },
    /// A `--mount` field that must be set.
    #[error("invalid mount config for type \"{kind}\": field {field} must not be empty")]
    MissingField {
        /// Mount type as given.
        kind: String,
        /// Field.
        field: &'static str,
    },
    /// A `--mount` field that does not go with the type.
    #[error("invalid mount config for type \"{kind}\": field {field} must not be specified")]
    ExtraField {
        /// Mount type as given.
        kind: String,
        /// Field.
        field: &'static str,
    },
    /// `/` as a destination.
    #[error(
        "invalid mount config for type \"{0}\": invalid specification: destination can't be '/'"
    )]
    TargetIsRoot(String),
    /// A relative path.
    #[error("invalid mount config for type \"{kind}\": invalid mount path: '{path}' mount path must be absolute")]
    NotAbsolute {
        /// Mount type as given.
        kind: String,
        /// The path.
        path: String,
    },
    /// A propagation mode dockerd does not know.
    #[error("invalid mount config for type \"bind\": invalid propagation mode: {0}")]
    Propagation(String),
    /// An anonymous volume asked read-only.
    #[error("invalid mount config for type \"volume\": must not set ReadOnly mode when using anonymous volumes")]
    ReadOnlyAnonymous,
    /// A type dockerd does not know.
    #[error("invalid mount config for type \"{0}\": mount type unknown")]
    UnknownType(String),
    /// A bind whose host path is missing (the engine checks).
    #[error("invalid mount config for type \"bind\": bind source path does not exist: {0}")]
    BindSourceDoesNotExist(String),
    /// A tmpfs destination (`HostConfig.Tmpfs`) that is `/`.
    #[error("invalid specification: destination can't be '/'")]
    TmpfsTargetIsRoot,
    /// A tmpfs destination that is relative.
    #[error("invalid mount path: '{0}' mount path must be absolute")]
    TmpfsNotAbsolute(String),
    /// Two mounts on one destination.
    #[error("Duplicate mount point: {0}")]
    Duplicate(String),
}

const PROPAGATIONS: &[&str] = &[
    "private", "rprivate", "slave", "rslave", "shared", "rshared",
];

/// Whether a bind's mode string is one dockerd takes: at most one of each of rw/ro,
/// z/Z, a propagation, nocopy and a consistency.
fn valid_mode(mode: &str) -> bool {
    if mode.is_empty() {
        return true;
    }
    let mut counts = [0u8; 5];
    for o in mode.split(',') {
        let i = match o {
            "rw" | "ro" => 0,
            "z" | "Z" => 1,
            p if PROPAGATIONS.contains(&p) => 2,
            "nocopy" => 3,
            "consistent" | "cached" | "delegated" => 4,
            _ => return false,
        };
        counts[i] += 1;
    }
    counts.iter().all(|&c| c <= 1)
}

fn not_root(p: &str) -> bool {
    clean(&p.replace('\\', "/")) != "/"
}

fn absolute(p: &str) -> bool {
    p.replace('\\', "/").starts_with('/')
}

/// tmpfs options from `TmpfsOptions`, as dockerd writes them (`size=1m`).
pub fn tmpfs_options(opt: Option<&TmpfsOptions>, read_only: bool) -> String {
    let mut raw = Vec::new();
    if read_only {
        raw.push("ro".to_string());
    }
    if let Some(o) = opt {
        if o.mode != 0 {
            raw.push(format!("mode={:o}", o.mode));
        }
        if o.size_bytes != 0 {
            let mut size = o.size_bytes;
            let mut suffix = "";
            for (s, d) in [("g", 1i64 << 30), ("m", 1 << 20), ("k", 1 << 10)] {
                if size % d == 0 {
                    size /= d;
                    suffix = s;
                    break;
                }
            }
            raw.push(format!("size={size}{suffix}"));
        }
    }
    raw.join(",")
}

/// Checks a `--mount` spec and parses it (dockerd's `ParseMountSpec`, without the bind
/// source's existence, which the engine checks).
pub fn parse_mount(m: &Mount) -> Result<MountSpec, MountError> {
    let kind = m.kind.clone();
    if m.target.is_empty() {
        return Err(MountError::MissingField {
            kind,
            field: "Target",
        });
    }
    if !not_root(&m.target) {
        return Err(MountError::TargetIsRoot(kind));
    }
    if !absolute(&m.target) {
        return Err(MountError::NotAbsolute {
            kind,
            path: m.target.replace('\\', "/"),
        });
    }
    let mut spec = MountSpec {
        kind: MountKind::Bind,
        origin: MountOrigin::Mount,
        source: String::new(),
        destination: clean(&m.target.replace('\\', "/")),
        rw: !m.read_only,
        mode: String::new(),
        propagation: String::new(),
        copy_data: true,
        non_recursive: false,
        create_source: false,
        driver: String::new(),
        driver_options: BTreeMap::new(),
        labels: BTreeMap::new(),
        tmpfs_options: String::new(),
    };
    match m.kind.as_str() {
        "bind" => {
            if m.source.is_empty() {
                return Err(MountError::MissingField {
                    kind,
                    field: "Source",
                });
            }
            if let Some(o) = &m.bind_options {
                if !o.propagation.is_empty() && !PROPAGATIONS.contains(&o.propagation.as_str()) {
                    return Err(MountError::Propagation(o.propagation.clone()));
                }
            }
            if m.volume_options.is_some() {
                return Err(MountError::ExtraField {
                    kind,
                    field: "VolumeOptions",
                });
            }
            if !absolute(&m.source) {
                return Err(MountError::NotAbsolute {
                    kind,
                    path: m.source.replace('\\', "/"),
                });
            }
            spec.source = clean(&m.source.replace('\\', "/"));
            let o = m.bind_options.clone().unwrap_or_default();
            spec.propagation = if o.propagation.is_empty() {
                "rprivate".into()
            } else {
                o.propagation
            };
            spec.non_recursive = o.non_recursive;
            spec.create_source = o.create_mountpoint;
        }
        "volume" => {
            if m.bind_options.is_some() {
                return Err(MountError::ExtraField {
                    kind,
                    field: "BindOptions",
                });
            }
            if m.source.is_empty() && m.read_only {
                return Err(MountError::ReadOnlyAnonymous);
            }
            spec.kind = MountKind::Volume;
            spec.source = m.source.clone();
            if let Some(o) = &m.volume_options {
                spec.copy_data = !o.no_copy;
                spec.labels = o.labels.clone();
                if let Some(d) = &o.driver_config {
                    spec.driver = d.name.clone();
                    spec.driver_options = d.options.clone();
                }
            }
        }
        "tmpfs" => {
            if m.bind_options.is_some() {
                return Err(MountError::ExtraField {
                    kind,
                    field: "BindOptions",
                });
            }
            if !m.source.is_empty() {
                return Err(MountError::ExtraField {
                    kind,
                    field: "Source",
                });
            }
            spec.kind = MountKind::Tmpfs;
            spec.tmpfs_options = tmpfs_options(m.tmpfs_options.as_ref(), m.read_only);
        }
        _ => return Err(MountError::UnknownType(kind)),
    }
    Ok(spec)
}

/// Parses a Binds entry (`-v src:dst[:mode]`, `-v dst` for an anonymous volume), as
/// dockerd's `ParseMountRaw`; `volume_driver` is `HostConfig.VolumeDriver`.
pub fn parse_bind(raw: &str, volume_driver: &str) -> Result<MountSpec, MountError> {
    let invalid = || MountError::InvalidSpec(raw.to_string());
    let arr: Vec<&str> = raw.splitn(4, ':').collect();
    if arr[0].is_empty() {
        return Err(invalid());
    }
    let (source, target, mode) = match arr.len() {
        1 => ("", arr[0], ""),
        2 => {
            // `a:ro` is a mode without a destination.
            if valid_mode(arr[1]) {
                return Err(invalid());
            }
            (arr[0], arr[1], "")
        }
        3 => (arr[0], arr[1], arr[2]),
        _ => return Err(invalid()),
    };
    if !valid_mode(mode) {
        return Err(MountError::InvalidMode(mode.to_string()));
    }
    let bind = source.starts_with('/');
    let read_only = mode.split(',').any(|o| o == "ro");
    let mut m = Mount {
        kind: if bind { "bind" } else { "volume" }.into(),
        source: source.into(),
        target: target.into(),
        read_only,
        ..Default::default()
    };
    if !volume_driver.is_empty() && !bind {
        m.volume_options = Some(VolumeOptions {
            driver_config: Some(Driver {
                name: volume_driver.into(),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    if mode.split(',').any(|o| o == "nocopy") {
        m.volume_options
            .get_or_insert_with(Default::default)
            .no_copy = true;
    }
    if let Some(p) = mode.split(',').find(|o| PROPAGATIONS.contains(o)) {
        m.bind_options = Some(BindOptions {
            propagation: p.into(),
            ..Default::default()
        });
    }
    let mut spec = parse_mount(&m).map_err(|e| MountError::InvalidSpecBecause {
        spec: raw.to_string(),
        reason: Box::new(e),
    })?;
    spec.origin = MountOrigin::Bind;
    spec.mode = mode.to_string();
    // `-v /host:/dst` makes a missing host directory, as dockerd does.
    spec.create_source = bind;
    Ok(spec)
}

/// Checks a `HostConfig.Tmpfs` destination.
pub fn check_tmpfs_destination(dest: &str) -> Result<(), MountError> {
    if !not_root(dest) {
        return Err(MountError::TmpfsTargetIsRoot);
    }
    if !absolute(dest) {
        return Err(MountError::TmpfsNotAbsolute(dest.replace('\\', "/")));
    }
    Ok(())
}

/// Every mount a HostConfig asks for, parsed and checked as dockerd registers them:
/// Binds, then Mounts, then Tmpfs; a destination named twice among Binds and Mounts,
/// or by a Bind and a Tmpfs, is `Duplicate mount point: DST`.
pub fn collect(hc: &crate::container::HostConfig) -> Result<Vec<MountSpec>, MountError> {
    let mut out: Vec<MountSpec> = Vec::new();
    for dest in hc.tmpfs.keys() {
        check_tmpfs_destination(dest)?;
    }
    for raw in hc.binds.iter().flatten() {
        let spec = parse_bind(raw, &hc.volume_driver)?;
        let tmpfs_there = hc.tmpfs.contains_key(&spec.destination);
        if tmpfs_there || out.iter().any(|o| o.destination == spec.destination) {
            return Err(MountError::Duplicate(spec.destination));
        }
        out.push(spec);
    }
    for m in &hc.mounts {
        let spec = parse_mount(m)?;
        if out.iter().any(|o| o.destination == spec.destination) {
            return Err(MountError::Duplicate(m.target.clone()));
        }
        out.push(spec);
    }
    for (dest, opts) in &hc.tmpfs {
        out.push(MountSpec {
            kind: MountKind::Tmpfs,
            origin: MountOrigin::Tmpfs,
            source: String::new(),
            destination: clean(dest),
            rw: !opts.split(',').any(|o| o == "ro"),
            mode: String::new(),
            propagation: String::new(),
            copy_data: false,
            non_recursive: false,
            create_source: false,
            driver: String::new(),
            driver_options: BTreeMap::new(),
            labels: BTreeMap::new(),
            tmpfs_options: opts.clone(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::HostConfig;

    fn msg<T: std::fmt::Debug>(r: Result<T, MountError>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn binds_parse_as_dockerd_parses_them() {
        let b = parse_bind("/host//dir/:/dst/./x:ro,rslave", "").unwrap();
        assert_eq!(b.kind, MountKind::Bind);
        assert_eq!(b.source, "/host/dir");
        assert_eq!(b.destination, "/dst/x");
        assert!(!b.rw);
        assert_eq!(b.propagation, "rslave");
        assert_eq!(b.mode, "ro,rslave");
        assert!(b.create_source);
        let v = parse_bind("data:/data:nocopy", "").unwrap();
        assert_eq!(
            (v.kind, v.source.as_str(), v.copy_data),
            (MountKind::Volume, "data", false)
        );
        let anon = parse_bind("/anon", "drv").unwrap();
        assert_eq!((anon.source.as_str(), anon.driver.as_str()), ("", "drv"));
        assert_eq!(msg(parse_bind("", "")), "invalid volume specification: ''");
        assert_eq!(
            msg(parse_bind("a:ro", "")),
            "invalid volume specification: 'a:ro'"
        );
        assert_eq!(
            msg(parse_bind("a:b:c:d", "")),
            "invalid volume specification: 'a:b:c:d'"
        );
        assert_eq!(msg(parse_bind("/a:/b:bogus", "")), "invalid mode: bogus");
        assert_eq!(msg(parse_bind("/a:/b:ro,rw", "")), "invalid mode: ro,rw");
        assert_eq!(
            msg(parse_bind("/a:rel", "")),
            "invalid volume specification: '/a:rel': invalid mount config for type \"bind\": invalid mount path: 'rel' mount path must be absolute"
        );
        assert_eq!(
            msg(parse_bind("/a:/", "")),
            "invalid volume specification: '/a:/': invalid mount config for type \"bind\": invalid specification: destination can't be '/'"
        );
        assert_eq!(
            msg(parse_bind("v:/x/..", "")),
            "invalid volume specification: 'v:/x/..': invalid mount config for type \"volume\": invalid specification: destination can't be '/'"
        );
    }

    #[test]
    fn mounts_follow_dockerds_rules() {
        let m = |kind: &str, src: &str, dst: &str| Mount {
            kind: kind.into(),
            source: src.into(),
            target: dst.into(),
            ..Default::default()
        };
        assert_eq!(
            msg(parse_mount(&m("bind", "/a", ""))),
            "invalid mount config for type \"bind\": field Target must not be empty"
        );
        assert_eq!(
            msg(parse_mount(&m("bind", "", "/x"))),
            "invalid mount config for type \"bind\": field Source must not be empty"
        );
        assert_eq!(
            msg(parse_mount(&m("bind", "rel", "/x"))),
            "invalid mount config for type \"bind\": invalid mount path: 'rel' mount path must be absolute"
        );
        assert_eq!(
            msg(parse_mount(&m("tmpfs", "src", "/x"))),
            "invalid mount config for type \"tmpfs\": field Source must not be specified"
        );
        assert_eq!(
            msg(parse_mount(&m("npipe", "", "/x"))),
            "invalid mount config for type \"npipe\": mount type unknown"
        );
        assert_eq!(
            msg(parse_mount(&m("", "", "/x"))),
            "invalid mount config for type \"\": mount type unknown"
        );
        let mut ro = m("volume", "", "/x");
        ro.read_only = true;
        assert_eq!(
            msg(parse_mount(&ro)),
            "invalid mount config for type \"volume\": must not set ReadOnly mode when using anonymous volumes"
        );
        let mut bad = m("bind", "/a", "/x");
        bad.bind_options = Some(BindOptions {
            propagation: "sideways".into(),
            ..Default::default()
        });
        assert_eq!(
            msg(parse_mount(&bad)),
            "invalid mount config for type \"bind\": invalid propagation mode: sideways"
        );
        let mut t = m("tmpfs", "", "/t/");
        t.read_only = true;
        t.tmpfs_options = Some(TmpfsOptions {
            size_bytes: 3 << 20,
            mode: 0o1777,
        });
        let spec = parse_mount(&t).unwrap();
        assert_eq!(spec.destination, "/t");
        assert_eq!(spec.tmpfs_options, "ro,mode=1777,size=3m");
        assert_eq!(
            MountError::BindSourceDoesNotExist("/nope".into()).to_string(),
            "invalid mount config for type \"bind\": bind source path does not exist: /nope"
        );
    }

    #[test]
    fn duplicates_are_refused_where_dockerd_refuses_them() {
        let hc = |binds: &[&str], mounts: Vec<Mount>, tmpfs: &[&str]| HostConfig {
            binds: Some(binds.iter().map(|s| s.to_string()).collect()),
            mounts,
            tmpfs: tmpfs
                .iter()
                .map(|d| (d.to_string(), String::new()))
                .collect(),
            ..Default::default()
        };
        let vol = |dst: &str| Mount {
            kind: "volume".into(),
            target: dst.into(),
            ..Default::default()
        };
        assert_eq!(
            msg(collect(&hc(&["a:/x", "b:/x/"], vec![], &[]))),
            "Duplicate mount point: /x"
        );
        assert_eq!(
            msg(collect(&hc(&["a:/x"], vec![vol("/x/.")], &[]))),
            "Duplicate mount point: /x/."
        );
        assert_eq!(
            msg(collect(&hc(&["a:/x"], vec![], &["/x"]))),
            "Duplicate mount point: /x"
        );
        assert_eq!(
            msg(collect(&hc(&[], vec![], &["rel"]))),
            "invalid mount path: 'rel' mount path must be absolute"
        );
        assert_eq!(
            msg(collect(&hc(&[], vec![], &["/"]))),
            "invalid specification: destination can't be '/'"
        );
        let all = collect(&hc(&["a:/a"], vec![vol("/b")], &["/c"])).unwrap();
        let dests: Vec<_> = all
            .iter()
            .map(|m| (m.origin, m.destination.as_str()))
            .collect();
        assert_eq!(
            dests,
            [
                (MountOrigin::Bind, "/a"),
                (MountOrigin::Mount, "/b"),
                (MountOrigin::Tmpfs, "/c")
            ]
        );
    }
}

//! The attack suite's archive part (issue 10, "Keep it found"): hostile tar archives
//! against every caller of berth-fs's unpacker — image layers (`docker import`,
//! `docker load`), `docker load`'s own archive, `docker cp` into a container, and
//! `berth cp` into a host directory — each checking that the host is untouched: a
//! sentinel directory outside every root (its files, links and modes), and that nothing
//! half-made is kept. `..` and absolute names, symlinks and writes through them, hard
//! links to host files, a directory replaced by a symlink then written below, device
//! nodes, overlong names, a 10 GB sparse header with little data, and overlayfs's own
//! extended attributes smuggled in.

mod containers_support;

use containers_support::{run_with_timeout, Berthd, COMMAND_TIMEOUT};
use sha2::{Digest as _, Sha256};
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

const IMG: &str = "busybox:test";
const TEN_GB: u64 = 10 << 30;

/// A directory outside every root, with a file, a subdirectory and a valid image
/// config and manifest an archive might try to reach.
struct Sentinel {
    dir: tempfile::TempDir,
}

impl Sentinel {
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("berth-sentinel-")
            .tempdir()
            .unwrap();
        std::fs::write(dir.path().join("secret"), "host secret").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let s = Self { dir };
        s.check_is_pristine();
        s
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn secret(&self) -> String {
        self.path().join("secret").display().to_string()
    }

    /// The sentinel holds what it was made with, and nothing else.
    fn state(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![self.path().to_path_buf()];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).unwrap() {
                let e = e.unwrap();
                let m = std::fs::symlink_metadata(e.path()).unwrap();
                let rel = e
                    .path()
                    .strip_prefix(self.path())
                    .unwrap()
                    .display()
                    .to_string();
                if m.is_dir() {
                    stack.push(e.path());
                }
                let content = if m.is_file() {
                    std::fs::read_to_string(e.path()).unwrap_or_default()
                } else {
                    String::new()
                };
                out.push(format!(
                    "{rel} mode={:o} nlink={} {content}",
                    m.mode(),
                    m.nlink()
                ));
            }
        }
        out.sort();
        out
    }

    fn check_is_pristine(&self) {
        let state = self.state();
        assert_eq!(state.len(), 2, "{state:?}");
        assert!(
            state[0].starts_with("secret mode=100644 nlink=1 host secret"),
            "{state:?}"
        );
        assert!(state[1].starts_with("sub mode=40"), "{state:?}");
    }
}

/// One raw tar entry, its name and link written byte for byte (the tar crate refuses
/// hostile names).
fn raw(name: &str, kind: tar::EntryType, link: &str, data: &[u8]) -> Vec<u8> {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
    h.set_mtime(1_700_000_000);
    h.set_size(data.len() as u64);
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
    if matches!(kind, tar::EntryType::Char | tar::EntryType::Block) {
        h.set_device_major(1).unwrap();
        h.set_device_minor(1).unwrap();
    }
    h.set_cksum();
    let mut out = h.as_bytes().to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

fn file(name: &str, data: &[u8]) -> Vec<u8> {
    raw(name, tar::EntryType::Regular, "", data)
}

fn dir(name: &str) -> Vec<u8> {
    raw(name, tar::EntryType::Directory, "", b"")
}

fn symlink(name: &str, to: &str) -> Vec<u8> {
    raw(name, tar::EntryType::Symlink, to, b"")
}

fn hardlink(name: &str, to: &str) -> Vec<u8> {
    raw(name, tar::EntryType::Link, to, b"")
}

/// A file with PAX extended attributes.
fn with_xattrs(name: &str, attrs: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let recs: Vec<(String, &[u8])> = attrs
        .iter()
        .map(|(k, v)| (format!("SCHILY.xattr.{k}"), *v))
        .collect();
    b.append_pax_extensions(recs.iter().map(|(k, v)| (k.as_str(), *v)))
        .unwrap();
    let mut out = b.into_inner().unwrap();
    // Without the end-of-archive blocks the builder wrote on finishing.
    out.truncate(out.len() - 1024);
    out.extend_from_slice(&file(name, b"x"));
    out
}

/// A GNU sparse entry announcing `real` bytes, with 512 bytes of data at its end.
fn sparse(name: &str, real: u64) -> Vec<u8> {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::GNUSparse);
    h.set_mode(0o644);
    h.set_size(512);
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    let g = h.as_gnu_mut().unwrap();
    let set = |field: &mut [u8], v: u64| {
        field.fill(0);
        let n = field.len();
        field[n - 8..].copy_from_slice(&v.to_be_bytes());
        field[0] |= 0x80;
    };
    set(&mut g.realsize, real);
    set(&mut g.sparse[0].offset, real - 512);
    set(&mut g.sparse[0].numbytes, 512);
    h.set_cksum();
    let mut out = h.as_bytes().to_vec();
    out.extend_from_slice(&[b'd'; 512]);
    out
}

/// A GNU long-name header of `len` bytes (the tar reader keeps it in memory).
fn long_name(len: usize) -> Vec<u8> {
    let mut h = tar::Header::new_gnu();
    h.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
    h.set_entry_type(tar::EntryType::GNULongName);
    h.set_size(len as u64);
    h.set_mode(0o644);
    h.set_cksum();
    let mut out = h.as_bytes().to_vec();
    out.extend(std::iter::repeat_n(b'n', len));
    out.resize(out.len().div_ceil(512) * 512, 0);
    out.extend_from_slice(&file("x", b"x"));
    out
}

fn archive(parts: &[Vec<u8>]) -> Vec<u8> {
    let mut out: Vec<u8> = parts.concat();
    out.extend_from_slice(&[0; 1024]);
    out
}

fn sha256_hex(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// Bytes a file takes on disk.
fn on_disk(p: &Path) -> u64 {
    std::fs::metadata(p).unwrap().blocks() * 512
}

fn images(d: &Berthd) -> usize {
    d.ok(&["images", "-q"]).lines().count()
}

/// The layers of every kind of hostile archive; `Some(words)` when the unpacker must
/// refuse it (in those words), `None` when it unpacks with the hostile part defused.
fn hostile_layers(s: &Sentinel) -> Vec<(&'static str, Vec<u8>, Option<&'static str>)> {
    let out = s.path().display().to_string();
    let secret = s.secret();
    let up_secret = format!("../../../../../../../..{secret}");
    vec![
        (
            "dotdot",
            archive(&[file("../../../../pwned", b"x")]),
            Some("contains .."),
        ),
        (
            "absolute",
            archive(&[file(&format!("{out}/pwned"), b"x")]),
            Some("is absolute"),
        ),
        (
            "write through its own symlink",
            archive(&[symlink("l", &out), file("l/pwned", b"x")]),
            Some("its parent is a symlink"),
        ),
        (
            "directory replaced by a symlink, then written below",
            archive(&[
                dir("d/"),
                file("d/inner", b"x"),
                symlink("d", &out),
                file("d/pwned", b"x"),
            ]),
            Some("its parent is a symlink"),
        ),
        (
            "symlink to a host file, then the same name written",
            archive(&[symlink("s", &secret), file("s", b"overwritten")]),
            None,
        ),
        (
            "hard link to a host file (absolute)",
            archive(&[hardlink("h", &secret)]),
            Some("hardlink target"),
        ),
        (
            "hard link to a host file (climbing)",
            archive(&[hardlink("h", &up_secret)]),
            Some("hardlink target"),
        ),
        (
            "hard link through its own symlink",
            archive(&[symlink("l", &out), hardlink("h", "l/secret")]),
            Some("its parent is a symlink"),
        ),
        (
            "device nodes",
            archive(&[
                dir("dev/"),
                raw("dev/mem", tar::EntryType::Char, "", b""),
                raw("dev/sda", tar::EntryType::Block, "", b""),
            ]),
            None,
        ),
        (
            "overlayfs attributes",
            archive(&[with_xattrs(
                "f",
                &[
                    ("trusted.overlay.redirect", b"/etc"),
                    ("trusted.overlay.opaque", b"y"),
                    ("user.kept", b"v"),
                ],
            )]),
            None,
        ),
        (
            "a component longer than a name",
            archive(&[file(&format!("d/{}", "n".repeat(95)), b"x"), {
                let mut b = tar::Builder::new(Vec::new());
                let mut h = tar::Header::new_gnu();
                h.set_size(1);
                h.set_mode(0o644);
                b.append_data(&mut h, "n".repeat(300), &b"x"[..]).unwrap();
                b.into_inner().unwrap()
            }]),
            Some("File name too long"),
        ),
        (
            "a 4 MiB long-name header",
            archive(&[long_name(4 << 20)]),
            Some("bytes of headers"),
        ),
        (
            "10 GB sparse header",
            archive(&[sparse("big", TEN_GB)]),
            None,
        ),
    ]
}

/// Image layers through `docker import` (the tarball is the layer) and `docker load`
/// (the layer inside a legacy archive): refused with nothing kept, or unpacked with
/// the hostile part defused in the snapshot.
#[test]
fn hostile_layers_stay_in_their_snapshot() {
    let d = Berthd::start();
    let s = Sentinel::new();
    let work = tempfile::tempdir().unwrap();
    let before = images(&d);
    for (what, layer, refused) in hostile_layers(&s) {
        let t = work.path().join("layer.tar");
        std::fs::write(&t, &layer).unwrap();
        let (code, _, err) = d.run(&["import", t.to_str().unwrap(), "evil:1"], None);
        s.check_is_pristine();
        let snapshot = d
            .dir
            .path()
            .join("data/snapshots")
            .join(sha256_hex(&layer))
            .join("fs");
        match refused {
            Some(words) => {
                assert_ne!(code, 0, "{what}: imported");
                assert!(err.contains(words), "{what}: {err}");
                assert!(!snapshot.exists(), "{what}: a snapshot was kept");
                assert_eq!(images(&d), before, "{what}: an image was kept");
            }
            None => {
                assert_eq!(code, 0, "{what}: {err}");
                check_defused(what, &snapshot, &s);
                d.ok(&["rmi", "evil:1"]);
            }
        }
        // The same layer inside a `docker load` archive.
        let config = serde_json::json!({
            "architecture": "amd64", "os": "linux", "config": {},
            "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{}", sha256_hex(&layer))]},
        });
        let config = serde_json::to_vec(&config).unwrap();
        let manifest = serde_json::to_vec(&serde_json::json!([{
            "Config": "config.json", "RepoTags": ["evil:2"], "Layers": ["l/layer.tar"],
        }]))
        .unwrap();
        let outer = archive(&[
            file("config.json", &config),
            dir("l/"),
            file("l/layer.tar", &layer),
            file("manifest.json", &manifest),
        ]);
        let (code, _, err) = d.run(&["load"], Some(&outer));
        s.check_is_pristine();
        match refused {
            Some(words) => {
                assert_ne!(code, 0, "{what}: loaded");
                assert!(err.contains(words), "{what}: {err}");
                assert_eq!(images(&d), before, "{what}: an image was kept");
            }
            None => {
                assert_eq!(code, 0, "{what}: {err}");
                check_defused(what, &snapshot, &s);
                d.ok(&["rmi", "evil:2"]);
            }
        }
    }
}

/// What a layer that unpacks made of its hostile part.
fn check_defused(what: &str, fs: &Path, s: &Sentinel) {
    match what {
        "symlink to a host file, then the same name written" => {
            // The entry replaced the link; the host file is untouched (checked by the
            // caller).
            assert_eq!(
                std::fs::read_to_string(fs.join("s")).unwrap(),
                "overwritten"
            );
            assert_ne!(
                std::fs::metadata(fs.join("s")).unwrap().ino(),
                std::fs::metadata(s.secret()).unwrap().ino()
            );
        }
        "device nodes" => {
            assert!(fs.join("dev").is_dir());
            assert_eq!(
                std::fs::read_dir(fs.join("dev")).unwrap().count(),
                0,
                "a device was made"
            );
        }
        "overlayfs attributes" => {
            for a in ["trusted.overlay.redirect", "trusted.overlay.opaque"] {
                assert_eq!(xattr::get(fs.join("f"), a).unwrap(), None, "{a} set");
            }
            assert_eq!(
                xattr::get(fs.join("f"), "user.kept").unwrap().as_deref(),
                Some(&b"v"[..])
            );
        }
        "10 GB sparse header" => {
            let big = fs.join("big");
            assert_eq!(std::fs::metadata(&big).unwrap().len(), TEN_GB);
            assert!(on_disk(&big) < 1 << 20, "{} bytes on disk", on_disk(&big));
        }
        other => panic!("{other}: no check"),
    }
}

/// `docker load`'s own archive: a file it names is read inside the archive or not at
/// all, whether named with `..`, absolutely, or through a symlink in the archive; the
/// archive's own entries never land outside its directory.
#[test]
fn load_reads_nothing_outside_its_archive() {
    let d = Berthd::start();
    let s = Sentinel::new();
    let before = images(&d);
    // A valid config and layer on the host, which the archive points at.
    let layer = archive(&[file("f", b"x")]);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{}", sha256_hex(&layer))]},
    }))
    .unwrap();
    let host = tempfile::tempdir().unwrap();
    let host_config = host.path().join("config.json");
    let host_layer = host.path().join("layer.tar");
    std::fs::write(&host_config, &config).unwrap();
    std::fs::write(&host_layer, &layer).unwrap();
    let manifest = |config: &str, layer: &str| {
        serde_json::to_vec(&serde_json::json!([{
            "Config": config, "RepoTags": ["evil:3"], "Layers": [layer],
        }]))
        .unwrap()
    };
    let (hc, hl) = (
        host_config.display().to_string(),
        host_layer.display().to_string(),
    );
    let up = |p: &str| format!("../../../../../../../..{p}");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "config named absolutely",
            archive(&[
                file("layer.tar", &layer),
                file("manifest.json", &manifest(&hc, "layer.tar")),
            ]),
            "is missing or outside the archive",
        ),
        (
            "config named with ..",
            archive(&[
                file("layer.tar", &layer),
                file("manifest.json", &manifest(&up(&hc), "layer.tar")),
            ]),
            "is missing or outside the archive",
        ),
        (
            "layer named absolutely",
            archive(&[
                file("config.json", &config),
                file("manifest.json", &manifest("config.json", &hl)),
            ]),
            "is missing or outside the archive",
        ),
        (
            "config through a symlink to the host",
            archive(&[
                symlink("config.json", &hc),
                file("layer.tar", &layer),
                file("manifest.json", &manifest("config.json", "layer.tar")),
            ]),
            "is missing or outside the archive",
        ),
        (
            "layer through a climbing symlink",
            archive(&[
                file("config.json", &config),
                symlink("layer.tar", &up(&hl)),
                file("manifest.json", &manifest("config.json", "layer.tar")),
            ]),
            "is missing or outside the archive",
        ),
        (
            "manifest.json through a symlink to the host",
            archive(&[symlink("manifest.json", &s.secret())]),
            "neither manifest.json nor index.json",
        ),
        (
            "an entry climbing out of the archive",
            archive(&[file("../../../../../../pwned-by-load", b"x")]),
            "is outside of the extraction directory",
        ),
        (
            "a write through its own symlink",
            archive(&[
                symlink("l", &s.path().display().to_string()),
                file("l/pwned", b"x"),
            ]),
            "its parent is a symlink",
        ),
        (
            "a 10 GB file header with little data",
            {
                let mut h = tar::Header::new_gnu();
                h.set_size(TEN_GB);
                h.set_mode(0o644);
                h.as_old_mut().name[..3].copy_from_slice(b"big");
                h.set_cksum();
                let mut a = h.as_bytes().to_vec();
                a.extend_from_slice(&[7; 4096]);
                a
            },
            "unexpected end of archive",
        ),
    ];
    for (what, data, words) in cases {
        let (code, _, err) = d.run(&["load"], Some(&data));
        assert_ne!(code, 0, "{what}: loaded");
        assert!(err.contains(words), "{what}: {err}");
        s.check_is_pristine();
        assert_eq!(images(&d), before, "{what}");
        assert!(!Path::new("/pwned-by-load").exists());
        // Nothing is left of the archive's unpacking.
        let tmp = d.dir.path().join("data/tmp");
        if tmp.exists() {
            assert_eq!(
                std::fs::read_dir(&tmp).unwrap().count(),
                0,
                "{what}: leftovers"
            );
        }
    }
    assert_eq!(std::fs::read(&host_config).unwrap(), config);
}

/// `docker cp` into a container: names, links and hard links resolve inside the
/// container's root (as dockerd resolves them); overlayfs's attributes never reach its
/// upper directory on the host; a sparse file costs what was sent.
#[test]
fn hostile_archives_copied_into_a_container_stay_in_it() {
    let d = Berthd::start();
    let s = Sentinel::new();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "cp-target",
        "--network",
        "none",
        IMG,
        "sleep",
        "1000",
    ]);
    let id = d.inspect("cp-target", "{{.Id}}");
    let upper = d
        .dir
        .path()
        .join("data/containers")
        .join(id.trim())
        .join("upper");
    let out = s.path().display().to_string();
    let cp = |data: &[u8]| d.run(&["cp", "-", "cp-target:/tmp"], Some(data));
    // The sentinel's path exists in the container too, so that a link to it resolves
    // there (as the container would resolve it).
    d.ok(&["exec", "cp-target", "mkdir", "-p", &out]);

    let (code, _, err) = cp(&archive(&[file("../../../../../pwned", b"x")]));
    assert_ne!(code, 0);
    assert!(err.contains("outside of the extraction directory"), "{err}");
    // Absolute names and links resolve in the container: they land in its /tmp or its
    // own tree, never on the host.
    let (code, _, err) = cp(&archive(&[
        file(&format!("{out}/abs"), b"a"),
        symlink("l", &out),
        file("l/via-link", b"b"),
        hardlink("h", &s.secret()),
    ]));
    assert_ne!(
        code, 0,
        "a hard link to a file the container lacks was made"
    );
    assert!(err.contains("hardlink target"), "{err}");
    let seen = d.ok(&[
        "exec",
        "cp-target",
        "sh",
        "-c",
        &format!("cat /tmp{out}/abs {out}/via-link"),
    ]);
    assert_eq!(seen, "ab");
    s.check_is_pristine();

    // overlayfs's attributes are dropped, others kept, in the container's upper dir.
    d.ok(&["exec", "cp-target", "mkdir", "/tmp/x"]);
    let (code, _, err) = d.run(
        &["cp", "-", "cp-target:/tmp/x"],
        Some(&archive(&[with_xattrs(
            "f",
            &[
                ("trusted.overlay.opaque", b"y"),
                ("trusted.overlay.redirect", b"/etc"),
                ("user.kept", b"v"),
            ],
        )])),
    );
    assert_eq!(code, 0, "{err}");
    let f = upper.join("tmp/x/f");
    assert!(f.is_file(), "{}", f.display());
    for a in ["trusted.overlay.opaque", "trusted.overlay.redirect"] {
        assert_eq!(
            xattr::get(&f, a).unwrap(),
            None,
            "{a} reached the upper dir"
        );
    }
    assert_eq!(
        xattr::get(&f, "user.kept").unwrap().as_deref(),
        Some(&b"v"[..])
    );

    // A 10 GB sparse header: the file has its length, and only what was sent is on disk.
    let (code, _, err) = cp(&archive(&[sparse("big", TEN_GB)]));
    assert_eq!(code, 0, "{err}");
    let big = upper.join("tmp/big");
    assert_eq!(std::fs::metadata(&big).unwrap().len(), TEN_GB);
    assert!(on_disk(&big) < 1 << 20, "{} bytes on disk", on_disk(&big));

    // Overlong names: refused, nothing half-made.
    let (code, _, err) = cp(&archive(&[long_name(4 << 20)]));
    assert_ne!(code, 0);
    assert!(err.contains("bytes of headers"), "{err}");
    s.check_is_pristine();
    assert_eq!(d.ok(&["exec", "cp-target", "echo", "alive"]), "alive\n");
}

/// A daemon that answers every archive request of `berth cp` with `tar` (a compromised
/// or hostile berthd: the real one writes no such archive, so this is the only way to
/// hand the CLI one). Serves one request (the GET), then stops.
fn hostile_daemon(socket: &Path, tar: Vec<u8>) -> std::thread::JoinHandle<()> {
    let listener = std::os::unix::net::UnixListener::bind(socket).unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + COMMAND_TIMEOUT;
        let mut served = 0;
        while std::time::Instant::now() < deadline && served < 1 {
            let mut conn = match listener.accept() {
                Ok((c, _)) => c,
                Err(_) => {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                    continue;
                }
            };
            conn.set_nonblocking(false).unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && conn.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let stat = r#"{"name":"d","size":4096,"mode":2147484141,"mtime":"2024-01-01T00:00:00Z","linkTarget":""}"#;
            use base64_lite::encode;
            let is_head = head.starts_with(b"HEAD");
            let body: &[u8] = if is_head { b"" } else { &tar };
            let resp = format!(
                "HTTP/1.1 200 OK\r\nX-Docker-Container-Path-Stat: {}\r\nContent-Type: application/x-tar\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                encode(stat.as_bytes()),
                body.len()
            );
            let _ = conn.write_all(resp.as_bytes());
            let _ = conn.write_all(body);
            served += 1;
        }
    })
}

mod base64_lite {
    /// Standard base64 with padding (the stat header's encoding).
    pub fn encode(data: &[u8]) -> String {
        const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for c in data.chunks(3) {
            let n = (c[0] as u32) << 16
                | (*c.get(1).unwrap_or(&0) as u32) << 8
                | *c.get(2).unwrap_or(&0) as u32;
            for i in 0..4 {
                if i <= c.len() {
                    out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }
}

/// `berth cp CTR:/d DEST` handed hostile archives: the user's directory is the root;
/// nothing is written outside it or through a symlink the archive made; no device,
/// set-id bit or overlayfs attribute is made on the host; a sparse file costs what was
/// sent.
#[test]
fn berth_cp_of_a_hostile_archive_writes_only_in_the_destination() {
    let s = Sentinel::new();
    let out = s.path().display().to_string();
    let work = tempfile::tempdir().unwrap();
    let berth = containers_support::target_dir().join("berth");
    let refused: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "dotdot",
            archive(&[dir("d/"), file("d/../../../../pwned", b"x")]),
            "contains ..",
        ),
        (
            "absolute",
            archive(&[file(&format!("{out}/pwned"), b"x")]),
            "is absolute",
        ),
        (
            "write through its own symlink",
            archive(&[dir("d/"), symlink("d/l", &out), file("d/l/pwned", b"x")]),
            "its parent is a symlink",
        ),
        (
            "hard link to a host file",
            archive(&[dir("d/"), hardlink("d/h", &s.secret())]),
            "hardlink target",
        ),
        (
            "another top",
            archive(&[file("e/pwned", b"x")]),
            "not under the copied path",
        ),
        (
            "overlong headers",
            archive(&[long_name(4 << 20)]),
            "bytes of headers",
        ),
    ];
    let run = |name: &str, tar: Vec<u8>| {
        let sock = work.path().join(format!("{name}.sock"));
        let server = hostile_daemon(&sock, tar);
        let dest = work.path().join(name);
        std::fs::create_dir(&dest).unwrap();
        let mut c = std::process::Command::new(&berth);
        c.env("BERTH_HOST", format!("unix://{}", sock.display()))
            .env_remove("DOCKER_HOST")
            .args(["cp", "evil:/d", dest.to_str().unwrap()]);
        let o = run_with_timeout(c, None, COMMAND_TIMEOUT);
        drop(server);
        (o, dest)
    };
    for (i, (what, tar, words)) in refused.into_iter().enumerate() {
        let (o, dest) = run(&format!("r{i}"), tar);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{what}: copied");
        assert!(err.contains(words), "{what}: {err}");
        s.check_is_pristine();
        assert!(!work.path().join("pwned").exists() && !Path::new("/pwned").exists());
        let _ = dest;
    }
    // Defused: a device and a FIFO are not made, set-id bits and attributes dropped,
    // a sparse file written with holes.
    let mut suid = raw("d/suid", tar::EntryType::Regular, "", b"x");
    {
        let mut h = tar::Header::from_byte_slice(&suid[..512]).clone();
        h.set_mode(0o4755);
        h.set_cksum();
        suid[..512].copy_from_slice(h.as_bytes());
    }
    let tar = archive(&[
        dir("d/"),
        raw("d/mem", tar::EntryType::Char, "", b""),
        raw("d/fifo", tar::EntryType::Fifo, "", b""),
        suid,
        with_xattrs("d/x", &[("trusted.overlay.opaque", b"y")]),
        sparse("d/big", TEN_GB),
    ]);
    let (o, dest) = run("defused", tar);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let got = dest.join("d");
    assert!(!got.join("mem").exists() && !got.join("fifo").exists());
    assert_eq!(
        std::fs::metadata(got.join("suid")).unwrap().mode() & 0o7777,
        0o755
    );
    assert_eq!(
        xattr::get(got.join("x"), "trusted.overlay.opaque").unwrap(),
        None
    );
    assert_eq!(std::fs::metadata(got.join("big")).unwrap().len(), TEN_GB);
    assert!(on_disk(&got.join("big")) < 1 << 20);
    s.check_is_pristine();
    let _: PathBuf = dest;
}

//! `docker cp` of large files in bounded memory (berthd streams both directions, as
//! dockerd does), an archive cut short leaving no truncated file, extended attributes
//! (`security.capability` both ways, any `SCHILY.xattr.*` record restored), and
//! `docker cp -a` giving the container's configured user. Driven by the real docker CLI.

mod containers_support;

use containers_support::{run_with_timeout, Berthd, COMMAND_TIMEOUT};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::Path;

const IMG: &str = "busybox:test";

/// Size of the file copied both ways.
const BIG: usize = 300 << 20;

/// Most berthd's peak memory may grow while copying `BIG` bytes each way.
const MAX_GROWTH_KB: u64 = 100 << 10;

/// berthd's peak resident memory (VmHWM), in kB.
fn peak_rss_kb(d: &Berthd) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", d.pid())).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status")
}

/// Writes `len` pseudo-random bytes (xorshift, not compressible nor all zeros) to
/// `path`; their sha256 in hex.
fn write_generated(path: &Path, len: usize) -> String {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
    let mut h = Sha256::new();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        for c in buf.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            c.copy_from_slice(&x.to_le_bytes()[..c.len()]);
        }
        let n = left.min(buf.len());
        f.write_all(&buf[..n]).expect("write");
        h.update(&buf[..n]);
        left -= n;
    }
    f.flush().expect("flush");
    hex(&h.finalize())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_file(path: &Path) -> String {
    let mut h = Sha256::new();
    let mut f = std::fs::File::open(path).expect("open");
    std::io::copy(&mut f, &mut h).expect("read");
    hex(&h.finalize())
}

fn run_sleeper(d: &Berthd, name: &str, extra: &[&str]) {
    let mut args = vec!["run", "-d", "--name", name, "--network", "none"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[IMG, "sleep", "1000"]);
    d.ok(&args);
}

/// The container's root as the host sees it (it runs).
fn ctr_root(d: &Berthd, name: &str) -> std::path::PathBuf {
    let pid = d.inspect(name, "{{.State.Pid}}");
    Path::new("/proc").join(pid).join("root")
}

#[test]
fn cp_streams_large_files_both_ways_in_bounded_memory() {
    let d = Berthd::start();
    run_sleeper(&d, "big", &[]);
    let src = d.dir.path().join("bigfile");
    let sum = write_generated(&src, BIG);
    let before = peak_rss_kb(&d);
    // Into the container (PUT), then out of it (GET), whole.
    d.ok(&["cp", src.to_str().unwrap(), "big:/tmp/"]);
    let inside = d.ok(&["exec", "big", "sha256sum", "/tmp/bigfile"]);
    assert_eq!(inside.split_whitespace().next(), Some(sum.as_str()));
    let out = d.dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    d.ok(&["cp", "big:/tmp/bigfile", out.to_str().unwrap()]);
    assert_eq!(sha256_file(&out.join("bigfile")), sum);
    // A directory holding it, out through stdout as a tar: the walk streams too.
    d.ok(&[
        "exec",
        "big",
        "sh",
        "-c",
        "mkdir /tmp/tree; mv /tmp/bigfile /tmp/tree/",
    ]);
    let mut cmd = d.cmd(&["cp", "big:/tmp/tree", "-"]);
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .stdin(std::process::Stdio::null());
    let mut child = cmd.spawn().expect("docker cp");
    let mut a = tar::Archive::new(child.stdout.take().expect("stdout"));
    let mut seen = Vec::new();
    for e in a.entries().expect("a tar") {
        let mut e = e.expect("an entry");
        let name = e.path().expect("a path").display().to_string();
        if name == "tree/bigfile" {
            let mut h = Sha256::new();
            std::io::copy(&mut e, &mut h).expect("read entry");
            assert_eq!(hex(&h.finalize()), sum);
        }
        seen.push(name);
    }
    assert!(child.wait().expect("docker cp").success());
    assert_eq!(seen, ["tree/", "tree/bigfile"]);
    let growth = peak_rss_kb(&d).saturating_sub(before);
    eprintln!("berthd's peak memory: {before} kB before, grew by {growth} kB");
    assert!(
        growth < MAX_GROWTH_KB,
        "berthd's peak memory grew by {growth} kB copying {BIG} bytes each way"
    );
}

/// A tar holding one regular file `name` with `data`, its header claiming `size` bytes
/// (more than `data` for an archive cut short), with PAX `records` before it.
fn tar_of(name: &str, data: &[u8], size: u64, records: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    if !records.is_empty() {
        let mut pax = Vec::new();
        for (k, v) in records {
            let rest = k.len() + v.len() + 3;
            let mut len = rest + 1;
            while len != rest + len.to_string().len() {
                len = rest + len.to_string().len();
            }
            pax.extend_from_slice(format!("{len} {k}=").as_bytes());
            pax.extend_from_slice(v);
            pax.push(b'\n');
        }
        let mut h = tar::Header::new_ustar();
        h.set_path(format!("PaxHeaders.0/{name}")).unwrap();
        h.set_entry_type(tar::EntryType::XHeader);
        h.set_size(pax.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(&pax);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    let mut h = tar::Header::new_ustar();
    h.set_path(name).unwrap();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(1_700_000_000);
    h.set_cksum();
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(data);
    if data.len() as u64 == size {
        out.resize(out.len().div_ceil(512) * 512, 0);
        out.extend_from_slice(&[0; 1024]);
    }
    out
}

#[test]
fn cp_cut_short_leaves_no_truncated_file() {
    let d = Berthd::start();
    run_sleeper(&d, "cut", &[]);
    d.ok(&["exec", "cut", "sh", "-c", "echo old > /tmp/keep"]);
    // Headers claim 4 MiB, the body ends after 1 MiB.
    let data = vec![b'x'; 1 << 20];
    for name in ["fresh", "keep"] {
        let tar = tar_of(name, &data, 4 << 20, &[]);
        let (code, out, err) = d.run(&["cp", "-", "cut:/tmp/"], Some(&tar));
        assert_ne!(code, 0, "a truncated archive was accepted: {out}{err}");
    }
    let ls = d.ok(&["exec", "cut", "ls", "-a", "/tmp"]);
    let names: Vec<&str> = ls.split_whitespace().collect();
    assert_eq!(names, [".", "..", "keep"], "{ls}");
    assert_eq!(d.ok(&["exec", "cut", "cat", "/tmp/keep"]), "old\n");
    // A whole one replaces the file.
    let tar = tar_of("keep", b"new\n", 4, &[]);
    let (code, out, err) = d.run(&["cp", "-", "cut:/tmp/"], Some(&tar));
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(d.ok(&["exec", "cut", "cat", "/tmp/keep"]), "new\n");
}

/// A version-2 `security.capability` value: cap_net_bind_service, permitted and
/// effective.
const CAP_NET_BIND: [u8; 20] = [
    0x01, 0x00, 0x00, 0x02, // VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE
    0x00, 0x04, 0x00, 0x00, // permitted (bit 10)
    0x00, 0x00, 0x00, 0x00, // inheritable
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
];

#[test]
fn cp_keeps_extended_attributes() {
    let d = Berthd::start();
    run_sleeper(&d, "xa", &[]);
    let src = d.dir.path().join("capped");
    std::fs::write(&src, "caps\n").unwrap();
    xattr::set(&src, "security.capability", &CAP_NET_BIND).expect("setcap on the host file");
    // In: the CLI archives security.capability, berthd restores it.
    d.ok(&["cp", src.to_str().unwrap(), "xa:/tmp/"]);
    let root = ctr_root(&d, "xa");
    assert_eq!(
        xattr::get(root.join("tmp/capped"), "security.capability").unwrap(),
        Some(CAP_NET_BIND.to_vec())
    );
    // Out: archived as a PAX SCHILY.xattr record...
    let out = run_with_timeout(d.cmd(&["cp", "xa:/tmp/capped", "-"]), None, COMMAND_TIMEOUT);
    assert!(out.status.success());
    let mut a = tar::Archive::new(out.stdout.as_slice());
    let mut e = a.entries().unwrap().next().expect("an entry").unwrap();
    let records: Vec<(String, Vec<u8>)> = e
        .pax_extensions()
        .unwrap()
        .expect("PAX records")
        .flatten()
        .map(|r| (r.key().unwrap().to_string(), r.value_bytes().to_vec()))
        .collect();
    assert_eq!(
        records,
        [(
            "SCHILY.xattr.security.capability".to_string(),
            CAP_NET_BIND.to_vec()
        )]
    );
    // ...which the CLI restores on the host copy.
    let back = d.dir.path().join("back");
    std::fs::create_dir_all(&back).unwrap();
    d.ok(&["cp", "xa:/tmp/capped", back.to_str().unwrap()]);
    assert_eq!(
        xattr::get(back.join("capped"), "security.capability").unwrap(),
        Some(CAP_NET_BIND.to_vec())
    );
    assert_eq!(
        std::fs::read_to_string(back.join("capped")).unwrap(),
        "caps\n"
    );
    // Any SCHILY.xattr record of an archive is restored (user.* too), as dockerd does.
    let tar = tar_of(
        "noted",
        b"n\n",
        2,
        &[
            ("SCHILY.xattr.user.note", b"hello"),
            ("SCHILY.xattr.security.capability", &CAP_NET_BIND),
        ],
    );
    let (code, out, err) = d.run(&["cp", "-", "xa:/tmp/"], Some(&tar));
    assert_eq!(code, 0, "{out}{err}");
    let noted = root.join("tmp/noted");
    assert_eq!(
        xattr::get(&noted, "user.note").unwrap(),
        Some(b"hello".to_vec())
    );
    assert_eq!(
        xattr::get(&noted, "security.capability").unwrap(),
        Some(CAP_NET_BIND.to_vec())
    );
    assert_eq!(std::fs::read_to_string(&noted).unwrap(), "n\n");
}

/// uid and gid of a file in a container, from `ls -ln`.
fn owner(d: &Berthd, ctr: &str, path: &str) -> (String, String) {
    let ls = d.ok(&["exec", ctr, "ls", "-lnd", path]);
    let cols: Vec<&str> = ls.split_whitespace().collect();
    (cols[2].to_string(), cols[3].to_string())
}

#[test]
fn cp_archive_flag_gives_the_configured_user() {
    let d = Berthd::start();
    run_sleeper(&d, "nob", &["--user", "nobody"]);
    run_sleeper(&d, "num", &["--user", "4321:nogroup"]);
    run_sleeper(&d, "none", &[]);
    let src = d.dir.path().join("owned");
    std::fs::write(&src, "o\n").unwrap();
    std::os::unix::fs::chown(&src, Some(1234), Some(1235)).unwrap();
    let s = src.to_str().unwrap();
    let ids = |u: &str, g: &str| (u.to_string(), g.to_string());
    // -a: the container's user, resolved in its passwd and group.
    d.ok(&["cp", "-a", s, "nob:/tmp/"]);
    assert_eq!(owner(&d, "nob", "/tmp/owned"), ids("65534", "65534"));
    d.ok(&["cp", "-a", s, "num:/tmp/"]);
    assert_eq!(owner(&d, "num", "/tmp/owned"), ids("4321", "65534"));
    // -a without a configured user, and no -a: the archive's owner.
    d.ok(&["cp", "-a", s, "none:/tmp/"]);
    assert_eq!(owner(&d, "none", "/tmp/owned"), ids("1234", "1235"));
    d.ok(&["cp", s, "nob:/tmp/plain"]);
    assert_eq!(owner(&d, "nob", "/tmp/plain"), ids("1234", "1235"));
    // A directory and what is in it all get the user.
    let tree = d.dir.path().join("tree");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    std::fs::write(tree.join("sub/f"), "f").unwrap();
    d.ok(&["cp", "-a", tree.to_str().unwrap(), "nob:/tmp/"]);
    for p in ["/tmp/tree", "/tmp/tree/sub", "/tmp/tree/sub/f"] {
        assert_eq!(owner(&d, "nob", p), ids("65534", "65534"), "{p}");
    }
}

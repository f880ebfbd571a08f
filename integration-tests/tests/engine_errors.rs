//! berthd's error paths through the real `docker` CLI: unknown images, bad references,
//! a registry that is down, bad credentials, corrupt blobs and hostile tarballs. Each
//! must give a clear message and leave nothing stored.

mod engine_support;

use engine_support::*;

#[test]
fn unknown_image_bad_reference_registry_down() {
    let mut reg = Registry::start(false);
    let d = Berthd::start();
    let missing = format!("{}/nope/none:v1", reg.host());
    let err = d.docker_err(&["pull", &missing]);
    assert!(err.contains("Error response from daemon"), "{err}");
    assert!(err.contains("not found"), "{err}");

    // The CLI checks references itself, so the daemon's checks are asked directly.
    let r = d.http("POST", "/images/create?fromImage=Bad/Name&tag=latest", None);
    assert_eq!(r.status, 400);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("must be lowercase"),
        "{}",
        r.text()
    );
    let r = d.http("POST", "/images/create?fromImage=a%20b&tag=latest", None);
    assert_eq!(r.status, 400);
    assert!(r.json()["message"]
        .as_str()
        .unwrap()
        .contains("invalid reference format"));
    let r = d.http("POST", "/images/create", None);
    assert_eq!(r.status, 400);
    let r = d.http("POST", "/images/nope/tag?repo=x&tag=y", None);
    assert_eq!(r.status, 404);
    let r = d.http("POST", "/images/nope:1/push", None);
    assert_eq!(r.status, 404);
    assert!(r.text().contains("does not exist locally"), "{}", r.text());

    let err = d.docker_err(&["image", "inspect", "nope"]);
    assert!(err.contains("No such image: nope"), "{err}");
    let err = d.docker_err(&["history", "nope"]);
    assert!(err.contains("No such image: nope"), "{err}");
    let err = d.docker_err(&["tag", "nope", "other:1"]);
    assert!(err.contains("No such image: nope"), "{err}");
    let err = d.docker_err(&["save", "nope"]);
    assert!(err.contains("No such image: nope"), "{err}");

    reg.stop();
    let err = d.docker_err(&["pull", &format!("{}/test/bb:v1", reg.host())]);
    assert!(err.contains("connection refused"), "{err}");
    assert_eq!(d.stored(), (0, 0));
}

#[test]
fn credentials_are_checked_and_not_kept() {
    let reg = Registry::start(true);
    let d = Berthd::start();
    let work = tempfile::tempdir().unwrap();
    let img = standard_image(&work.path().join("layout"), "v1");
    reg.push_layout(&img.layout, "private/bb", "v1", true);
    let name = format!("{}/private/bb:v1", reg.host());

    let err = d.docker_err(&["pull", &name]);
    assert!(err.contains("unauthorized"), "{err}");
    let err = d.docker_err(&["login", "-u", REG_USER, "-p", "wrong", &reg.host()]);
    assert!(err.contains("401 Unauthorized"), "{err}");
    assert_eq!(d.stored(), (0, 0));

    let out = d.docker_ok(&["login", "-u", REG_USER, "-p", REG_PASSWORD, &reg.host()]);
    assert!(out.contains("Login Succeeded"), "{out}");
    // As dockerd, berthd keeps no copy of the password: the client sends it each time.
    assert!(!d.data_root().join("config.json").exists());

    d.docker_ok(&["pull", &name]);
    let other = format!("{}/private/copy:v1", reg.host());
    d.docker_ok(&["tag", &name, &other]);
    let out = d.docker_ok(&["push", &other]);
    assert!(out.contains("Mounted from private/bb"), "{out}");

    // After the client's logout its requests carry no credentials: access has ended.
    d.docker_ok(&["logout", &reg.host()]);
    d.docker_ok(&["rmi", &name, &other]);
    let err = d.docker_err(&["pull", &name]);
    assert!(err.contains("unauthorized"), "{err}");
}

#[test]
fn corrupt_blob_is_rejected_and_nothing_kept() {
    let reg = Registry::start(false);
    let d = Berthd::start();
    let work = tempfile::tempdir().unwrap();
    let img = standard_image(&work.path().join("layout"), "v1");
    reg.push_layout(&img.layout, "test/bb", "v1", false);
    // Serve the busybox layer recompressed: it still unpacks to the right diff ID, but
    // its bytes no longer hash to the digest the manifest names.
    let m = reg.manifest("test/bb", "v1");
    let digest = m["layers"][0]["digest"].as_str().unwrap().to_string();
    let blob = reg.blob_path(&digest);
    let gz = std::fs::read(&blob).expect("layer blob in registry storage");
    let mut plain = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut plain).unwrap();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut enc, &plain).unwrap();
    std::fs::write(&blob, enc.finish().unwrap()).unwrap();

    let err = d.docker_err(&["pull", &format!("{}/test/bb:v1", reg.host())]);
    assert!(
        err.contains(&format!("digest mismatch: expected {digest}")),
        "{err}"
    );
    assert_eq!(d.stored(), (0, 0), "nothing stored after a corrupt pull");
    assert_eq!(d.docker_ok(&["images", "-q"]).trim(), "");
    let leftovers = std::fs::read_dir(d.data_root().join("snapshots/.tmp"))
        .unwrap()
        .count();
    assert_eq!(leftovers, 0);
}

/// A docker-save style archive with one image whose only layer is `layer`.
fn legacy_archive(layer: &[u8], tag: &str) -> Vec<u8> {
    let diff_id = format!("sha256:{}", sha256_hex(layer));
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    });
    let config = serde_json::to_vec(&config).unwrap();
    let manifest = serde_json::json!([{
        "Config": "config.json", "RepoTags": [tag], "Layers": ["layer/layer.tar"],
    }]);
    let manifest = serde_json::to_vec(&manifest).unwrap();
    layer_tar(&[
        Entry::File("config.json", &config, 0o644),
        Entry::Dir("layer/"),
        Entry::File("layer/layer.tar", layer, 0o644),
        Entry::File("manifest.json", &manifest, 0o644),
    ])
}

#[test]
fn hostile_tarballs_are_refused_and_nothing_kept() {
    let reg = Registry::start(false);
    let d = Berthd::start();
    let work = tempfile::tempdir().unwrap();
    let outside = work.path().join("outside");
    std::fs::create_dir(&outside).unwrap();

    // `..` in a layer of a loaded archive.
    let evil = layer_tar(&[Entry::RawFile("../../../../evil-berth", b"x")]);
    let archive = work.path().join("evil.tar");
    std::fs::write(&archive, legacy_archive(&evil, "evil:1")).unwrap();
    let err = d.docker_err(&["load", "-i", archive.to_str().unwrap()]);
    assert!(err.contains("escapes the snapshot"), "{err}");
    assert!(err.contains("contains .."), "{err}");
    assert_eq!(d.stored(), (0, 0));
    assert!(!d.dir.path().join("evil-berth").exists());

    // A symlink to outside, then a file written through it, imported.
    let link_target = outside.display().to_string();
    let through = layer_tar(&[
        Entry::Symlink("link", &link_target),
        Entry::File("link/pwned", b"x", 0o644),
    ]);
    let t = work.path().join("through.tar");
    std::fs::write(&t, &through).unwrap();
    let err = d.docker_err(&["import", t.to_str().unwrap(), "evil:2"]);
    assert!(err.contains("escapes the snapshot"), "{err}");
    assert!(!outside.join("pwned").exists());
    assert_eq!(d.stored(), (0, 0));

    // A hardlink to a host file.
    let hard = layer_tar(&[Entry::Hardlink("passwd", "/etc/passwd")]);
    let t = work.path().join("hard.tar");
    std::fs::write(&t, &hard).unwrap();
    let err = d.docker_err(&["import", t.to_str().unwrap(), "evil:3"]);
    assert!(err.contains("hardlink target"), "{err}");
    assert_eq!(d.stored(), (0, 0));

    // A truncated tarball.
    let mut broken = busybox_layer();
    broken.truncate(broken.len() / 2);
    let t = work.path().join("broken.tar");
    std::fs::write(&t, &broken).unwrap();
    let err = d.docker_err(&["import", t.to_str().unwrap(), "evil:4"]);
    assert!(err.contains("broken layer archive"), "{err}");
    assert_eq!(d.stored(), (0, 0));

    // Not an archive at all.
    let t = work.path().join("junk.tar");
    std::fs::write(&t, b"this is not a tar").unwrap();
    let err = d.docker_err(&["load", "-i", t.to_str().unwrap()]);
    assert!(err.contains("invalid archive"), "{err}");
    assert_eq!(d.stored(), (0, 0));

    // The same escaping layer served by a registry.
    let layout = work.path().join("layout");
    let img = oci_layout(&layout, "v1", &[(evil, Comp::Gzip)], &["/x"]);
    reg.push_layout(&img.layout, "evil/img", "v1", false);
    let err = d.docker_err(&["pull", &format!("{}/evil/img:v1", reg.host())]);
    assert!(err.contains("escapes the snapshot"), "{err}");
    assert_eq!(d.stored(), (0, 0));
    assert!(d.log().contains("pull failed"));
}

#[test]
fn device_nodes_are_skipped() {
    let d = Berthd::start();
    let work = tempfile::tempdir().unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Char);
    h.set_path("dev/kmsg").unwrap();
    h.set_device_major(1).unwrap();
    h.set_device_minor(11).unwrap();
    h.set_mode(0o600);
    h.set_size(0);
    h.set_cksum();
    b.append(&h, std::io::empty()).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_path("ok").unwrap();
    h.set_size(2);
    h.set_mode(0o644);
    h.set_cksum();
    b.append(&h, &b"ok"[..]).unwrap();
    let t = work.path().join("dev.tar");
    std::fs::write(&t, b.into_inner().unwrap()).unwrap();
    d.docker_ok(&["import", t.to_str().unwrap(), "dev:1"]);
    let inspect = d.http("GET", "/images/dev:1/json", None).json();
    let fs = inspect["GraphDriver"]["Data"]["LowerDir"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(std::path::Path::new(&fs).join("ok").is_file());
    assert!(std::fs::symlink_metadata(std::path::Path::new(&fs).join("dev/kmsg")).is_err());
}

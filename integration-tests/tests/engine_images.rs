//! The image half of berthd driven by the real `docker` CLI against Debian's
//! docker-registry on 127.0.0.1: pull, images, inspect, history, tag, push, rmi, save,
//! load, import, prune, multi-arch indexes; checking outputs and what is on disk.

mod engine_support;

use engine_support::*;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

fn short(digest: &str) -> &str {
    &digest[7..19]
}

#[test]
fn pull_inspect_history_tag_push_rmi() {
    let reg = Registry::start(false);
    let d = Berthd::start();
    let work = tempfile::tempdir().unwrap();
    let img = standard_image(&work.path().join("layout"), "v1");
    let manifest_digest = reg.push_layout(&img.layout, "test/bb", "v1", false);
    let name = format!("{}/test/bb:v1", reg.host());

    let out = d.docker_ok(&["pull", &name]);
    assert!(out.contains("v1: Pulling from test/bb"), "{out}");
    assert!(out.contains("Pull complete"), "{out}");
    assert!(
        out.contains(&format!("Digest: {}", manifest_digest)),
        "{out}"
    );
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {name}")),
        "{out}"
    );
    let out = d.docker_ok(&["pull", &name]);
    assert!(out.contains("Already exists"), "{out}");
    assert!(
        out.contains(&format!("Status: Image is up to date for {name}")),
        "{out}"
    );

    let out = d.docker_ok(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]);
    assert_eq!(
        out.trim(),
        format!("{}/test/bb:v1 {}", reg.host(), short(&img.config_digest))
    );
    let out = d.docker_ok(&["images", "--digests", "--format", "{{.Digest}}"]);
    assert_eq!(out.trim(), manifest_digest);

    let out = d.docker_ok(&[
        "image",
        "inspect",
        "--format",
        "{{.Id}} {{len .RootFS.Layers}} {{.Os}}/{{.Architecture}} {{json .Config.Cmd}} {{index .Config.Labels \"berth.test\"}}",
        &name,
    ]);
    assert_eq!(
        out.trim(),
        format!("{} 3 linux/amd64 [\"/bin/sh\"] yes", img.config_digest)
    );
    // Inspect by short ID and by digest reference too.
    d.docker_ok(&["image", "inspect", short(&img.config_digest)]);
    d.docker_ok(&[
        "image",
        "inspect",
        &format!("{}/test/bb@{manifest_digest}", reg.host()),
    ]);

    // Snapshots on disk: one directory per layer, whiteouts in overlayfs form.
    let inspect = d.http("GET", &format!("/images/{name}/json"), None).json();
    let lower: Vec<String> = inspect["GraphDriver"]["Data"]["LowerDir"]
        .as_str()
        .unwrap()
        .split(':')
        .map(String::from)
        .collect();
    assert_eq!(lower.len(), 3);
    let (top, base) = (&lower[0], &lower[2]);
    let bb = std::fs::metadata(format!("{base}/bin/busybox")).unwrap();
    assert_eq!(bb.mode() & 0o777, 0o755);
    assert_eq!(
        std::fs::read_link(format!("{base}/bin/sh"))
            .unwrap()
            .to_str(),
        Some("busybox")
    );
    let wh = std::fs::symlink_metadata(format!("{top}/etc/gone.txt")).unwrap();
    assert!(
        wh.file_type().is_char_device() && wh.rdev() == 0,
        "whiteout"
    );
    assert!(!std::path::Path::new(&format!("{top}/etc/.wh.gone.txt")).exists());
    let opq = xattr::get(format!("{top}/var/cache"), "trusted.overlay.opaque").unwrap();
    assert_eq!(opq.as_deref(), Some(&b"y"[..]), "opaque directory");
    let mid = &lower[1];
    assert_eq!(
        std::fs::read_to_string(format!("{mid}/etc/hello.txt")).unwrap(),
        "hello from berth\n"
    );

    let out = d.docker_ok(&["history", "--format", "{{.CreatedBy}}|{{.ID}}", &name]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[0].starts_with("layer 2|"), "{out}");
    assert!(lines[2].starts_with("layer 0|<missing>"), "{out}");

    // Tag into another repository and push: layers are mounted, not uploaded.
    let other = format!("{}/other/bb:v2", reg.host());
    d.docker_ok(&["tag", &name, &other]);
    let out = d.docker_ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert_eq!(out.lines().count(), 2, "{out}");
    let out = d.docker_ok(&["push", &other]);
    assert!(
        out.contains(&format!(
            "The push refers to repository [{}/other/bb]",
            reg.host()
        )),
        "{out}"
    );
    assert!(out.contains("Mounted from test/bb"), "{out}");
    assert!(
        out.contains(&format!("v2: digest: {manifest_digest} size:")),
        "{out}"
    );
    let out = d.docker_ok(&["push", &other]);
    assert!(out.contains("Layer already exists"), "{out}");

    // rmi of one tag only untags; of the last one deletes and collects everything.
    let out = d.docker_ok(&["rmi", &other]);
    assert!(out.contains(&format!("Untagged: {other}")), "{out}");
    assert!(!out.contains("Deleted"), "{out}");
    let err = d.docker_err(&["rmi", "nope:latest"]);
    assert!(err.contains("No such image: nope:latest"), "{err}");
    let out = d.docker_ok(&["rmi", &name]);
    assert!(
        out.contains(&format!("Deleted: {}", img.config_digest)),
        "{out}"
    );
    assert_eq!(d.stored(), (0, 0), "store empty after rmi");

    // The pushed copy pulls back by digest from the other repository.
    let by_digest = format!("{}/other/bb@{manifest_digest}", reg.host());
    let out = d.docker_ok(&["pull", &by_digest]);
    assert!(out.contains("Pull complete"), "{out}");
    let out = d.docker_ok(&["image", "inspect", "--format", "{{.Id}}", &by_digest]);
    assert_eq!(out.trim(), img.config_digest);
}

#[test]
fn push_to_a_fresh_repository_uploads_and_pulls_back() {
    let reg = Registry::start(false);
    let mut d = Berthd::start();
    let work = tempfile::tempdir().unwrap();
    let rootfs = work.path().join("rootfs.tar");
    std::fs::write(&rootfs, gzip(&busybox_layer())).unwrap();
    let name = format!("{}/fresh/imported:1", reg.host());
    let id = d.docker_ok(&["import", rootfs.to_str().unwrap(), &name]);
    let out = d.docker_ok(&["push", &name]);
    assert!(out.contains("Pushed"), "{out}");
    // A kill -9 loses no image; an orderly restart neither. What a crash can leave
    // (a half-written blob, a half-unpacked layer, a complete but unreferenced blob)
    // is gone after the restart.
    let data = d.data_root();
    std::fs::write(data.join("content/ingest/.tmp-half"), b"partial").unwrap();
    std::fs::create_dir_all(data.join("snapshots/.tmp/unpack-x/fs/etc")).unwrap();
    let orphan = b"an orphan blob";
    let orphan_path = data.join("content/blobs/sha256").join(sha256_hex(orphan));
    std::fs::write(&orphan_path, orphan).unwrap();
    d.crash_and_restart();
    assert!(!orphan_path.exists(), "orphan blob collected");
    assert_eq!(
        std::fs::read_dir(data.join("content/ingest"))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(
        std::fs::read_dir(data.join("snapshots/.tmp"))
            .unwrap()
            .count(),
        0
    );
    let out = d.docker_ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert_eq!(out.trim(), name);
    d.restart();
    d.docker_ok(&["image", "inspect", &name]);

    // `pull -a` (no tag) pulls every tag of the repository.
    let second = format!("{}/fresh/imported:2", reg.host());
    d.docker_ok(&["tag", &name, &second]);
    d.docker_ok(&["push", &second]);
    d.docker_ok(&["rmi", &name, &second]);
    let out = d.docker_ok(&["pull", "-a", &format!("{}/fresh/imported", reg.host())]);
    assert!(out.contains("1: Pulling from fresh/imported"), "{out}");
    let out = d.docker_ok(&["images", "--format", "{{.Tag}}"]);
    let mut tags: Vec<&str> = out.lines().collect();
    tags.sort();
    assert_eq!(tags, ["1", "2"]);
    d.docker_ok(&["rmi", &name, &second]);
    assert_eq!(d.stored(), (0, 0));
    d.docker_ok(&["pull", &name]);
    let out = d.docker_ok(&["image", "inspect", "--format", "{{.Id}}", &name]);
    assert_eq!(out.trim(), id.trim());
}

#[test]
fn save_and_load_round_trip_and_foreign_archives() {
    let reg = Registry::start(false);
    let d = Berthd::start();
    let work = tempfile::tempdir().unwrap();
    // skopeo's docker-archive cannot hold zstd layers: this image has none.
    let img = standard_image_with(&work.path().join("layout"), "v1", Comp::Gzip);
    reg.push_layout(&img.layout, "test/bb", "v1", false);
    let name = format!("{}/test/bb:v1", reg.host());
    d.docker_ok(&["pull", &name]);

    let saved = work.path().join("saved.tar");
    d.docker_ok(&["save", "-o", saved.to_str().unwrap(), &name]);
    let mut names = Vec::new();
    let mut ar = tar::Archive::new(std::fs::File::open(&saved).unwrap());
    for e in ar.entries().unwrap() {
        names.push(e.unwrap().path().unwrap().display().to_string());
    }
    for want in ["manifest.json", "index.json", "oci-layout"] {
        assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
    }
    assert!(names
        .iter()
        .any(|n| n.ends_with(img.config_digest.trim_start_matches("sha256:"))));

    // GET /images/{name}/get is the same archive for one image.
    let r = d.http("GET", &format!("/images/{name}/get"), None);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some("application/x-tar"));
    let mut one = tar::Archive::new(&r.body[..]);
    let files: Vec<String> = one
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert!(files.iter().any(|f| f == "manifest.json"), "{files:?}");
    assert_eq!(
        r.body.len() as u64,
        std::fs::metadata(&saved).unwrap().len()
    );

    d.docker_ok(&["rmi", &name]);
    assert_eq!(d.stored(), (0, 0));
    let out = d.docker_ok(&["load", "-i", saved.to_str().unwrap()]);
    assert!(out.contains(&format!("Loaded image: {name}")), "{out}");
    let out = d.docker_ok(&["image", "inspect", "--format", "{{.Id}}", &name]);
    assert_eq!(out.trim(), img.config_digest);

    // A gzipped archive loads as well.
    d.docker_ok(&["rmi", &name]);
    let gz = work.path().join("saved.tar.gz");
    std::fs::write(&gz, gzip(&std::fs::read(&saved).unwrap())).unwrap();
    let out = d.docker_ok(&["load", "-i", gz.to_str().unwrap()]);
    assert!(out.contains(&format!("Loaded image: {name}")), "{out}");

    // Archives written by another tool: skopeo's docker-archive (legacy manifest.json
    // with uncompressed layers) and oci-archive (OCI layout).
    d.docker_ok(&["rmi", &name]);
    let legacy = work.path().join("legacy.tar");
    reg.skopeo_export(
        "test/bb",
        "v1",
        &format!("docker-archive:{}:legacy/bb:v1", legacy.display()),
    );
    let out = d.docker_ok(&["load", "-i", legacy.to_str().unwrap()]);
    assert!(out.contains("Loaded image: legacy/bb:v1"), "{out}");
    let out = d.docker_ok(&["image", "inspect", "--format", "{{.Id}}", "legacy/bb:v1"]);
    assert_eq!(out.trim(), img.config_digest);

    let oci = work.path().join("oci.tar");
    reg.skopeo_export(
        "test/bb",
        "v1",
        &format!("oci-archive:{}:{}/oci/bb:v3", oci.display(), reg.host()),
    );
    let out = d.docker_ok(&["load", "-i", oci.to_str().unwrap()]);
    assert!(out.contains("Loaded image"), "{out}");

    // save by name to stdout, several images.
    let both = work.path().join("both.tar");
    let f = std::fs::File::create(&both).unwrap();
    let mut cmd = d.docker_cmd(&["save", "legacy/bb:v1", &img.config_digest]);
    cmd.stdout(f);
    let st = cmd.status().unwrap();
    assert!(st.success());
    assert!(std::fs::metadata(&both).unwrap().len() > 1024);
}

#[test]
fn import_changes_and_prune() {
    let d = Berthd::start();
    let work = tempfile::tempdir().unwrap();
    let rootfs = work.path().join("rootfs.tgz");
    std::fs::write(&rootfs, gzip(&busybox_layer())).unwrap();
    let out = d.docker_ok(&[
        "import",
        "-c",
        "CMD [\"/bin/sh\", \"-c\", \"echo hi\"]",
        "-c",
        "ENV GREETING=hello",
        "-m",
        "made by a test",
        rootfs.to_str().unwrap(),
        "imported:v1",
    ]);
    let id = out.trim().to_string();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{out}");
    let out = d.docker_ok(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.Cmd}} {{json .Config.Env}} {{.Comment}}",
        "imported:v1",
    ]);
    assert_eq!(
        out.trim(),
        r#"["/bin/sh","-c","echo hi"] ["GREETING=hello"] made by a test"#
    );
    let out = d.docker_ok(&["history", "--format", "{{.Comment}}", "imported:v1"]);
    assert_eq!(out.trim(), "made by a test");
    let out = d.docker_ok(&[
        "images",
        "--filter",
        "reference=imp*",
        "--format",
        "{{.Repository}}",
    ]);
    assert_eq!(out.trim(), "imported");
    let out = d.docker_ok(&["images", "--filter", "reference=nomatch*", "-q"]);
    assert_eq!(out.trim(), "");

    // A repository name that looks like an ID prefix is still a name: rmi untags it.
    let hexname = id[7..11].to_string();
    d.docker_ok(&["tag", "imported:v1", &hexname]);
    let out = d.docker_ok(&["rmi", &hexname]);
    assert_eq!(out.trim(), format!("Untagged: {hexname}:latest"));
    // By ID, an image in several repositories needs -f.
    d.docker_ok(&["tag", "imported:v1", "another:v1"]);
    let err = d.docker_err(&["rmi", &id[7..19]]);
    assert!(err.contains("must be forced"), "{err}");
    d.docker_ok(&["rmi", "another:v1"]);

    // Re-importing under the same tag leaves the old image dangling.
    let other = work.path().join("other.tar");
    std::fs::write(&other, layer_tar(&[Entry::File("x", b"x", 0o644)])).unwrap();
    d.docker_ok(&["import", other.to_str().unwrap(), "imported:v1"]);
    let out = d.docker_ok(&["images", "--filter", "dangling=true", "-q"]);
    assert_eq!(out.trim(), &id[7..19]);
    let out = d.docker_ok(&["image", "prune", "-f"]);
    assert!(out.contains(&format!("deleted: {id}")), "{out}");
    let out = d.docker_ok(&["images", "-q"]);
    assert_eq!(out.lines().count(), 1);
    // Filters narrow a prune: nothing carries this label, nothing is a day old.
    d.docker_ok(&["image", "prune", "-a", "-f", "--filter", "label=berth.none"]);
    d.docker_ok(&["image", "prune", "-a", "-f", "--filter", "until=24h"]);
    assert_eq!(d.docker_ok(&["images", "-q"]).lines().count(), 1);
    d.docker_ok(&["image", "prune", "-a", "-f"]);
    assert_eq!(d.docker_ok(&["images", "-q"]).trim(), "");
    assert_eq!(d.stored(), (0, 0));
}

#[test]
fn multi_arch_index_picks_platform() {
    let reg = Registry::start(false);
    let d = Berthd::start();
    let work = tempfile::tempdir().unwrap();
    // Two single-platform images, then an index over both, pushed with skopeo --all.
    let amd = standard_image(&work.path().join("amd"), "x");
    let arm_layer = layer_tar(&[Entry::File("arch", b"arm64\n", 0o644)]);
    let arm = oci_layout(
        &work.path().join("arm"),
        "x",
        &[(arm_layer, Comp::Gzip)],
        &["/x"],
    );
    let layout = work.path().join("multi");
    std::fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    for src in [&amd.layout, &arm.layout] {
        for e in std::fs::read_dir(src.join("blobs/sha256")).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), layout.join("blobs/sha256").join(e.file_name())).unwrap();
        }
    }
    // The arm64 config says arm64; rewrite it and its manifest.
    let cfg_path = layout.join("blobs/sha256").join(&arm.config_digest[7..]);
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&cfg_path).unwrap()).unwrap();
    cfg["architecture"] = "arm64".into();
    let cfg_bytes = serde_json::to_vec(&cfg).unwrap();
    let cfg_digest = format!("sha256:{}", sha256_hex(&cfg_bytes));
    std::fs::write(
        layout.join("blobs/sha256").join(&cfg_digest[7..]),
        &cfg_bytes,
    )
    .unwrap();
    let man_path = layout.join("blobs/sha256").join(&arm.manifest_digest[7..]);
    let mut man: serde_json::Value =
        serde_json::from_slice(&std::fs::read(man_path).unwrap()).unwrap();
    man["config"]["digest"] = cfg_digest.clone().into();
    man["config"]["size"] = cfg_bytes.len().into();
    let man_bytes = serde_json::to_vec(&man).unwrap();
    let man_digest = format!("sha256:{}", sha256_hex(&man_bytes));
    std::fs::write(
        layout.join("blobs/sha256").join(&man_digest[7..]),
        &man_bytes,
    )
    .unwrap();
    let amd_size = std::fs::metadata(
        amd.layout
            .join("blobs/sha256")
            .join(&amd.manifest_digest[7..]),
    )
    .unwrap()
    .len();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": man_digest,
             "size": man_bytes.len(), "platform": {"os": "linux", "architecture": "arm64"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": amd.manifest_digest,
             "size": amd_size, "platform": {"os": "linux", "architecture": "amd64"}},
        ],
    });
    let index_bytes = serde_json::to_vec(&index).unwrap();
    let index_digest = format!("sha256:{}", sha256_hex(&index_bytes));
    std::fs::write(
        layout.join("blobs/sha256").join(&index_digest[7..]),
        &index_bytes,
    )
    .unwrap();
    let top = serde_json::json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.index.v1+json", "digest": index_digest,
        "size": index_bytes.len(), "annotations": {"org.opencontainers.image.ref.name": "multi"}}]});
    std::fs::write(layout.join("index.json"), serde_json::to_vec(&top).unwrap()).unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let index_digest = reg.push_layout_with(&layout, "multi/bb", "multi", false, &["--all"]);

    let name = format!("{}/multi/bb:multi", reg.host());
    let out = d.docker_ok(&["pull", &name]);
    assert!(out.contains(&format!("Digest: {index_digest}")), "{out}");
    let out = d.docker_ok(&[
        "image",
        "inspect",
        "--format",
        "{{.Id}} {{.Architecture}}",
        &name,
    ]);
    assert_eq!(out.trim(), format!("{} amd64", amd.config_digest));
    d.docker_ok(&["pull", "--platform", "linux/arm64", &name]);
    let out = d.docker_ok(&[
        "image",
        "inspect",
        "--format",
        "{{.Id}} {{.Architecture}}",
        &name,
    ]);
    assert_eq!(out.trim(), format!("{cfg_digest} arm64"));
    let err = d.docker_err(&["pull", "--platform", "linux/s390x", &name]);
    assert!(
        err.contains("no matching manifest for linux/s390x"),
        "{err}"
    );

    // /distribution/{name}/json lists the platforms.
    let r = d.http("GET", &format!("/distribution/{name}/json"), None);
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(j["Descriptor"]["digest"], index_digest);
    assert_eq!(j["Platforms"].as_array().unwrap().len(), 2);
}

#[test]
fn docker_schema2_manifests_and_concurrent_pulls() {
    let reg = Registry::start(false);
    let d = Berthd::start();
    let work = tempfile::tempdir().unwrap();
    // Docker schema2 holds no zstd layers.
    let img = standard_image_with(&work.path().join("layout"), "v1", Comp::Gzip);
    let digest = reg.push_layout_with(&img.layout, "s2/bb", "v1", false, &["--format", "v2s2"]);
    let m = reg.manifest("s2/bb", "v1");
    assert_eq!(
        m["mediaType"], "application/vnd.docker.distribution.manifest.v2+json",
        "skopeo pushed a Docker schema2 manifest"
    );
    let name = format!("{}/s2/bb:v1", reg.host());

    // The raw stream is Docker's JSON progress messages.
    let r = d.http(
        "POST",
        &format!("/v1.43/images/create?fromImage={}/s2/bb&tag=v1", reg.host()),
        None,
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    let msgs: Vec<serde_json::Value> = r
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let status = |s: &str| msgs.iter().filter(|m| m["status"] == s).count();
    assert_eq!(status("Pulling fs layer"), 3);
    assert_eq!(status("Pull complete"), 3);
    let downloading = msgs
        .iter()
        .find(|m| m["status"] == "Downloading")
        .expect("a Downloading message");
    assert!(downloading["progressDetail"]["current"].as_u64().unwrap() > 0);
    assert!(downloading["progressDetail"]["total"].as_u64().unwrap() > 0);
    assert!(downloading["progress"].as_str().unwrap().starts_with('['));
    assert_eq!(
        msgs.last().unwrap()["status"],
        format!("Status: Downloaded newer image for {name}")
    );
    d.docker_ok(&["rmi", &name]);

    // Two clients pulling the same image at once both succeed and share the layers.
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let cmd = d.docker_cmd(&["pull", &name]);
            std::thread::spawn(move || run_with_timeout(cmd, COMMAND_TIMEOUT))
        })
        .collect();
    for t in threads {
        let out = t.join().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let r = d.http("GET", &format!("/images/{name}/json"), None).json();
    assert_eq!(r["Id"], img.config_digest);
    assert_eq!(
        r["Descriptor"]["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_eq!(
        r["RepoDigests"][0],
        format!("{}/s2/bb@{digest}", reg.host())
    );
    // 3 layers, config and manifest; 3 snapshots.
    assert_eq!(d.stored(), (5, 3));
}

#[test]
fn kill_during_pull_leaves_nothing_half_made() {
    let reg = Registry::start(false);
    let mut d = Berthd::start();
    let work = tempfile::tempdir().unwrap();
    let big = noise(48 << 20, 7);
    let layers = vec![
        (busybox_layer(), Comp::Gzip),
        (
            layer_tar(&[Entry::File("big.bin", &big, 0o644)]),
            Comp::None,
        ),
        (
            layer_tar(&[Entry::File("big2.bin", &big[..16 << 20], 0o644)]),
            Comp::None,
        ),
    ];
    let img = oci_layout(&work.path().join("layout"), "v1", &layers, &["/bin/sh"]);
    reg.push_layout(&img.layout, "crash/bb", "v1", false);
    let name = format!("{}/crash/bb:v1", reg.host());

    let seen = d.http_until(
        "POST",
        &format!("/images/create?fromImage={}/crash/bb&tag=v1", reg.host()),
        "Downloading",
    );
    assert!(seen.contains("Pulling fs layer"), "{seen}");
    d.crash_and_restart();
    // Either the pull finished before the kill and the image is whole, or nothing of it
    // is left: never a half image, blob or snapshot.
    let listed = d.docker_ok(&["images", "-q"]);
    if listed.trim().is_empty() {
        eprintln!("killed mid-pull; store: {:?}", d.stored());
        assert_eq!(d.stored(), (0, 0), "leftovers after a killed pull");
    } else {
        eprintln!("the pull finished before the kill");
        assert_eq!(d.stored(), (5, 3));
    }
    let data = d.data_root();
    assert_eq!(
        std::fs::read_dir(data.join("content/ingest"))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(
        std::fs::read_dir(data.join("snapshots/.tmp"))
            .unwrap()
            .count(),
        0
    );
    d.docker_ok(&["pull", &name]);
    let out = d.docker_ok(&["image", "inspect", "--format", "{{.Id}}", &name]);
    assert_eq!(out.trim(), img.config_digest);
}

#[test]
fn tls_registry_with_a_self_signed_certificate() {
    // Loopback registries are insecure, as in dockerd: HTTPS without certificate checks
    // first, plain HTTP if that fails.
    let reg = Registry::start_tls();
    let d = Berthd::start();
    let work = tempfile::tempdir().unwrap();
    let img = standard_image(&work.path().join("layout"), "v1");
    reg.push_layout(&img.layout, "tls/bb", "v1", false);
    let name = format!("{}/tls/bb:v1", reg.host());
    d.docker_ok(&["pull", &name]);
    let other = format!("{}/tls/copy:v1", reg.host());
    d.docker_ok(&["tag", &name, &other]);
    let out = d.docker_ok(&["push", &other]);
    assert!(out.contains("Mounted from tls/bb"), "{out}");
}

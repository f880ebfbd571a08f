//! Interop with the real dockerd (Debian's docker.io): what berthd saves, dockerd
//! loads, and what dockerd saves (its legacy layout), berthd loads, with the same image
//! IDs on both sides. Skipped when dockerd is not installed.

mod engine_support;

use engine_support::*;
use std::process::Command;

#[test]
fn docker_save_archives_cross_between_berthd_and_dockerd() {
    let Some(dk) = Dockerd::start() else {
        eprintln!("skipping: dockerd is not installed (apt-get install docker.io)");
        return;
    };
    let reg = Registry::start(false);
    let d = Berthd::start();
    let work = tempfile::tempdir().unwrap();
    // dockerd 20.10 reads no zstd layers: gzip and plain only.
    let img = standard_image_with(&work.path().join("layout"), "v1", Comp::Gzip);
    reg.push_layout(&img.layout, "interop/bb", "v1", false);
    let name = format!("{}/interop/bb:v1", reg.host());

    // berthd → dockerd
    d.docker_ok(&["pull", &name]);
    let ours = work.path().join("from-berthd.tar");
    d.docker_ok(&["save", "-o", ours.to_str().unwrap(), &name]);
    let out = dk.docker_ok(&["load", "-i", ours.to_str().unwrap()]);
    assert!(out.contains(&format!("Loaded image: {name}")), "{out}");
    let id = dk.docker_ok(&["image", "inspect", "--format", "{{.Id}}", &name]);
    assert_eq!(id.trim(), img.config_digest);

    // dockerd → berthd
    let theirs = work.path().join("from-dockerd.tar");
    dk.docker_ok(&["tag", &name, "interop/retagged:v2"]);
    dk.docker_ok(&[
        "save",
        "-o",
        theirs.to_str().unwrap(),
        "interop/retagged:v2",
    ]);
    let out = d.docker_ok(&["load", "-i", theirs.to_str().unwrap()]);
    assert!(out.contains("Loaded image: interop/retagged:v2"), "{out}");
    let id = d.docker_ok(&[
        "image",
        "inspect",
        "--format",
        "{{.Id}}",
        "interop/retagged:v2",
    ]);
    assert_eq!(id.trim(), img.config_digest);

    // And dockerd pulls what berthd pushed.
    let pushed = format!("{}/interop/pushed:v3", reg.host());
    d.docker_ok(&["tag", &name, &pushed]);
    d.docker_ok(&["push", &pushed]);
    dk.docker_ok(&["pull", &pushed]);
    let id = dk.docker_ok(&["image", "inspect", "--format", "{{.Id}}", &pushed]);
    assert_eq!(id.trim(), img.config_digest);
}

/// `berth` (the CLI built beside berthd) aimed at `d`; (success, stdout, stderr).
fn berth(d: &Berthd, args: &[&str]) -> (bool, String, String) {
    let mut c = Command::new(berthd_path().with_file_name("berth"));
    c.env("BERTH_HOST", format!("unix://{}", d.socket.display()))
        .env_remove("DOCKER_HOST")
        .env("DOCKER_CONFIG", &d.docker_config)
        .args(args);
    let out = run_with_timeout(c, COMMAND_TIMEOUT);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn image_id(ok_output: String) -> String {
    ok_output.trim().to_string()
}

/// Issue 16's round trip: two images that share a layer are saved into one archive,
/// one of them is removed, and the archive loads back (it failed with "blobs/sha256/…
/// is missing or outside the archive": the shared layer file was taken into the store
/// for the first image and then missing for the second). With the berth and docker
/// CLIs against berthd; dockerd loads the same file; and dockerd's own save of the two
/// (its legacy layout) loads into berthd.
#[test]
fn images_sharing_a_layer_save_and_load_back_after_one_is_removed() {
    let Some(dk) = Dockerd::start() else {
        eprintln!("skipping: dockerd is not installed (apt-get install docker.io)");
        return;
    };
    let reg = Registry::start(false);
    let d = Berthd::start();
    let work = tempfile::tempdir().unwrap();
    let base = busybox_layer();
    let own = |what: &str| layer_tar(&[Entry::File("own.txt", what.as_bytes(), 0o644)]);
    let a = oci_layout(
        &work.path().join("a"),
        "v1",
        &[(base.clone(), Comp::Gzip), (own("a\n"), Comp::Gzip)],
        &["/bin/sh"],
    );
    let b = oci_layout(
        &work.path().join("b"),
        "v1",
        &[(base, Comp::Gzip), (own("b\n"), Comp::Gzip)],
        &["/bin/sh"],
    );
    assert_eq!(a.layer_digests[0], b.layer_digests[0], "the base is shared");
    reg.push_layout(&a.layout, "share/a", "v1", false);
    reg.push_layout(&b.layout, "share/b", "v1", false);
    let (na, nb) = (
        format!("{}/share/a:v1", reg.host()),
        format!("{}/share/b:v1", reg.host()),
    );
    d.docker_ok(&["pull", &na]);
    d.docker_ok(&["pull", &nb]);

    // berth save A B; berth rmi B; berth load: both back, same IDs, B runs.
    let s = work.path().join("s.tar");
    let (ok, _, err) = berth(&d, &["save", "-o", s.to_str().unwrap(), &na, &nb]);
    assert!(ok, "{err}");
    let (ok, _, err) = berth(&d, &["rmi", &nb]);
    assert!(ok, "{err}");
    let (ok, out, err) = berth(&d, &["load", "-i", s.to_str().unwrap()]);
    assert!(ok, "berth load: {err}");
    assert!(out.contains(&format!("Loaded image: {na}")), "{out}");
    assert!(out.contains(&format!("Loaded image: {nb}")), "{out}");
    for (n, img) in [(&na, &a), (&nb, &b)] {
        let id = image_id(d.docker_ok(&["image", "inspect", "--format", "{{.Id}}", n]));
        assert_eq!(id, img.config_digest, "{n}");
    }
    let ran = d.docker_ok(&["run", "--rm", "--network", "none", &nb, "cat", "/own.txt"]);
    assert_eq!(ran, "b\n");

    // The same with the docker CLI, removing the other one, and with both removed.
    d.docker_ok(&["rmi", &na]);
    let out = d.docker_ok(&["load", "-i", s.to_str().unwrap()]);
    assert!(out.contains(&format!("Loaded image: {na}")), "{out}");
    d.docker_ok(&["rmi", &na, &nb]);
    assert_eq!(d.stored(), (0, 0));
    let out = d.docker_ok(&["load", "-i", s.to_str().unwrap()]);
    assert!(out.contains(&format!("Loaded image: {nb}")), "{out}");
    let ran = d.docker_ok(&["run", "--rm", "--network", "none", &na, "cat", "/own.txt"]);
    assert_eq!(ran, "a\n");

    // dockerd loads the file berth saved, with the same IDs.
    dk.docker_ok(&["load", "-i", s.to_str().unwrap()]);
    for (n, img) in [(&na, &a), (&nb, &b)] {
        let id = image_id(dk.docker_ok(&["image", "inspect", "--format", "{{.Id}}", n]));
        assert_eq!(id, img.config_digest, "dockerd: {n}");
    }

    // dockerd's own save of the two (its legacy layout, the shared layer once) loads
    // into berthd after both are gone.
    let theirs = work.path().join("theirs.tar");
    dk.docker_ok(&["save", "-o", theirs.to_str().unwrap(), &na, &nb]);
    d.docker_ok(&["rmi", &na, &nb]);
    let (ok, out, err) = berth(&d, &["load", "-i", theirs.to_str().unwrap()]);
    assert!(ok, "berth load of dockerd's save: {err}");
    assert!(out.contains(&format!("Loaded image: {nb}")), "{out}");
    for (n, img) in [(&na, &a), (&nb, &b)] {
        let id = image_id(d.docker_ok(&["image", "inspect", "--format", "{{.Id}}", n]));
        assert_eq!(id, img.config_digest, "{n}");
    }
}

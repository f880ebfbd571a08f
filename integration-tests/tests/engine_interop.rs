//! Interop with the real dockerd (Debian's docker.io): what berthd saves, dockerd
//! loads, and what dockerd saves (its legacy layout), berthd loads, with the same image
//! IDs on both sides. Skipped when dockerd is not installed.

mod engine_support;

use engine_support::*;

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

//! Attacks on berthd through what an image puts where a volume is mounted (issue 10):
//! the content a new volume is filled with is read inside the image's own file system,
//! never through the host's. An image whose volume path is a symlink to a host
//! directory (absolute, climbing with `..`, in a parent component, in an upper layer
//! over a real directory), a destination written with `..`, an image VOLUME created
//! through the raw API, an image whose `/etc/passwd` points at the host's: none of
//! them shows a host file to the container or copies one into a volume. Also dockerd's
//! rules around it: destinations cleaned, duplicates refused, `nocopy` honoured, an
//! empty named volume filled; and berthd's files are private to root.

mod containers_support;

use containers_support::{busybox_tar, Berthd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A file that only the host has; no container may ever see it.
const SECRET: &str = "host-secret-5a1f";

/// A host directory holding the secret, made world-readable so that only the
/// confinement, not permissions, keeps it from a container.
fn host_dir() -> tempfile::TempDir {
    let d = tempfile::Builder::new()
        .prefix("berth-hostdir-")
        .tempdir()
        .expect("temp dir");
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(d.path().join(SECRET), "do not copy").unwrap();
    d
}

/// One entry of a hostile layer.
enum E<'a> {
    Dir(&'a str),
    File(&'a str, &'a str),
    Link(&'a str, &'a str),
}

fn layer(entries: &[E<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_700_000_000);
        match e {
            E::Dir(p) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, p, std::io::empty()).unwrap();
            }
            E::File(p, data) => {
                h.set_mode(0o644);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, p, data.as_bytes()).unwrap();
            }
            E::Link(p, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, p, target).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(data))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Loads an image of `layers` (base first) tagged `tag`, with `volumes` declared in its
/// config, as a `docker save` archive through `docker load`.
fn load_image(d: &Berthd, tag: &str, layers: &[Vec<u8>], volumes: &[&str]) {
    let diff_ids: Vec<String> = layers
        .iter()
        .map(|l| format!("sha256:{}", sha256_hex(l)))
        .collect();
    let vols: serde_json::Map<String, serde_json::Value> = volumes
        .iter()
        .map(|v| (v.to_string(), serde_json::json!({})))
        .collect();
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "created": "2026-01-01T00:00:00Z",
        "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"], "Volumes": vols},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let config = serde_json::to_vec(&config).unwrap();
    let config_name = format!("{}.json", sha256_hex(&config));
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, name, data).unwrap();
    };
    add(&config_name, &config);
    let mut layer_names = Vec::new();
    for l in layers {
        let name = format!("{}/layer.tar", sha256_hex(l));
        add(&name, l);
        layer_names.push(name);
    }
    let manifest =
        serde_json::json!([{"Config": config_name, "RepoTags": [tag], "Layers": layer_names}]);
    add("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    let archive = d
        .dir
        .path()
        .join(format!("{}.tar", tag.replace([':', '/'], "-")));
    std::fs::write(&archive, b.into_inner().unwrap()).unwrap();
    let out = d.ok(&["load", "-i", archive.to_str().unwrap()]);
    assert!(out.contains(tag), "{out}");
}

/// The files of a volume's data directory, as the host sees them.
fn volume_files(d: &Berthd, name: &str) -> Vec<String> {
    let mountpoint = d.ok(&["volume", "inspect", "-f", "{{.Mountpoint}}", name]);
    let mut names: Vec<String> = std::fs::read_dir(mountpoint.trim())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// `docker run --rm ARGS` that must succeed; its output.
fn run(d: &Berthd, args: &[&str]) -> String {
    let mut all = vec!["run", "--rm", "--network", "none"];
    all.extend_from_slice(args);
    d.ok(&all)
}

/// Layers of an image that tries every symlink route out to `host`: `/data` is a real
/// directory in a lower layer and a symlink to the host directory in the top one;
/// `/rel` climbs there with `..`; `/parent` leads there and the volume goes on
/// `/parent/sub`.
fn hostile_layers(host: &Path) -> Vec<Vec<u8>> {
    let host = host.display().to_string();
    let climb = format!("../../../../../../../../..{host}");
    let with_data = layer(&[E::Dir("data"), E::File("data/image-file", "from the image")]);
    let top = layer(&[
        E::Link("data", &host),
        E::Link("rel", &climb),
        E::Link("parent", &host),
    ]);
    vec![busybox_tar(), with_data, top]
}

#[test]
fn copy_up_never_follows_an_image_symlink_to_the_host() {
    let host = host_dir();
    let d = Berthd::start();
    load_image(&d, "attack/symlinks:1", &hostile_layers(host.path()), &[]);
    for (i, dst) in ["/data", "/rel", "/parent/sub"].iter().enumerate() {
        let vol = format!("attack-vol-{i}");
        let listing = run(
            &d,
            &[
                "-v",
                &format!("{vol}:{dst}"),
                "attack/symlinks:1",
                "ls",
                "-a",
                dst,
            ],
        );
        assert!(
            !listing.contains(SECRET),
            "{dst}: the container listed a host file: {listing}"
        );
        let files = volume_files(&d, &vol);
        assert!(
            !files.iter().any(|f| f == SECRET),
            "{dst}: a host file was copied into the volume: {files:?}"
        );
    }
    // The same with --mount.
    let listing = run(
        &d,
        &[
            "--mount",
            "type=volume,src=attack-mount,dst=/data",
            "attack/symlinks:1",
            "ls",
            "/data",
        ],
    );
    assert!(!listing.contains(SECRET), "{listing}");
    assert!(volume_files(&d, "attack-mount").is_empty());
    // The host directory is as it was.
    let left: Vec<_> = std::fs::read_dir(host.path()).unwrap().flatten().collect();
    assert_eq!(left.len(), 1);
}

#[test]
fn an_image_volume_created_through_the_raw_api_copies_nothing_from_the_host() {
    let host = host_dir();
    let d = Berthd::start();
    load_image(
        &d,
        "attack/declared:1",
        &hostile_layers(host.path()),
        &["/data", "/rel"],
    );
    // As a client that sends only the image and a command (no binds, no Volumes).
    let body = r#"{"Image":"attack/declared:1","Cmd":["ls","-a","/data","/rel"],"HostConfig":{"NetworkMode":"none"}}"#;
    let out = Command::new("curl")
        .args(["-s", "--unix-socket"])
        .arg(&d.socket)
        .args(["-H", "Content-Type: application/json", "-d", body])
        .arg("http://localhost/v1.43/containers/create?name=declared")
        .output()
        .expect("curl");
    let created = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(created.contains("\"Id\""), "create failed: {created}");
    d.ok(&["start", "declared"]);
    d.ok(&["wait", "declared"]);
    let logs = d.ok(&["logs", "declared"]);
    assert!(!logs.contains(SECRET), "{logs}");
    let volumes = d.inspect("declared", "{{range .Mounts}}{{.Name}} {{end}}");
    let volumes: Vec<&str> = volumes.split_whitespace().collect();
    assert_eq!(volumes.len(), 2, "{volumes:?}");
    for v in volumes {
        let files = volume_files(&d, v);
        assert!(!files.iter().any(|f| f == SECRET), "{files:?}");
    }
}

#[test]
fn a_destination_with_dotdot_is_cleaned_inside_the_container() {
    let d = Berthd::start();
    // dockerd cleans `/../../../../etc` to `/etc`: the volume gets the image's /etc.
    let passwd = run(
        &d,
        &[
            "-v",
            "dotdot:/../../../../etc",
            "busybox:test",
            "cat",
            "/etc/passwd",
        ],
    );
    assert!(
        passwd.starts_with("root:x:0:0:root:/root:/bin/sh"),
        "{passwd}"
    );
    assert!(
        passwd.lines().count() == 2,
        "not the image's passwd: {passwd}"
    );
    let files = volume_files(&d, "dotdot");
    assert_eq!(
        files,
        ["group", "passwd"],
        "not the image's /etc: {files:?}"
    );
    // Inspect shows the cleaned destination.
    d.ok(&[
        "create",
        "--name",
        "cleaned",
        "--network",
        "none",
        "-v",
        "cleaned:/x/../data/",
        "busybox:test",
        "true",
    ]);
    assert_eq!(
        d.inspect("cleaned", "{{range .Mounts}}{{.Destination}}{{end}}"),
        "/data"
    );
}

#[test]
fn nocopy_empty_volumes_and_duplicates_as_dockerd() {
    let d = Berthd::start();
    run(&d, &["-v", "nc1:/etc:nocopy", "busybox:test", "true"]);
    assert!(volume_files(&d, "nc1").is_empty(), "nocopy copied");
    run(
        &d,
        &[
            "--mount",
            "type=volume,src=nc2,dst=/etc,volume-nocopy",
            "busybox:test",
            "true",
        ],
    );
    assert!(volume_files(&d, "nc2").is_empty(), "volume-nocopy copied");
    // A named volume made beforehand and still empty is filled, as dockerd fills it.
    d.ok(&["volume", "create", "pre"]);
    run(&d, &["-v", "pre:/etc", "busybox:test", "true"]);
    assert_eq!(volume_files(&d, "pre"), ["group", "passwd"]);
    // One that has content keeps it, untouched.
    run(
        &d,
        &[
            "-v",
            "pre:/etc",
            "busybox:test",
            "sh",
            "-c",
            "rm /etc/group",
        ],
    );
    run(&d, &["-v", "pre:/etc", "busybox:test", "true"]);
    assert_eq!(volume_files(&d, "pre"), ["passwd"]);
    // Twice the same destination, written two ways: refused, nothing created.
    let err = d.err(&[
        "create",
        "--name",
        "dup",
        "--network",
        "none",
        "-v",
        "a1:/data",
        "-v",
        "a2:/data/",
        "busybox:test",
        "true",
    ]);
    assert!(err.contains("Duplicate mount point: /data"), "{err}");
    let (code, _, _) = d.run(&["inspect", "dup"], None);
    assert_ne!(code, 0, "a refused container was stored");
}

/// A user that the host's /etc/passwd has and the test image does not.
fn host_only_user() -> String {
    std::fs::read_to_string("/etc/passwd")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(':').next())
        .find(|u| !u.is_empty() && *u != "root" && *u != "nobody")
        .expect("a host user besides root and nobody")
        .to_string()
}

#[test]
fn account_files_are_read_inside_the_image() {
    let d = Berthd::start();
    let user = host_only_user();
    // The image's /etc/passwd and /etc/group point at the host's.
    let base = busybox_tar();
    let top = layer(&[
        E::Dir("etc"),
        E::Link("etc/passwd", "/etc/passwd"),
        E::Link("etc/group", "../../../../../../etc/group"),
    ]);
    load_image(&d, "attack/passwd:1", &[base, top], &[]);
    let err = d.err(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-u",
        &user,
        "attack/passwd:1",
        "id",
    ]);
    assert!(
        err.contains(&format!("unable to find user {user}")),
        "the host's passwd was read: {err}"
    );
    // Numeric users need no lookup and still run.
    let id = run(&d, &["-u", "1234:1234", "attack/passwd:1", "id", "-u"]);
    assert_eq!(id.trim(), "1234");
}

/// Runs `cat`/`ls` on `path` as the user nobody; whether it succeeded.
fn readable_by_nobody(path: &Path) -> bool {
    use std::os::unix::process::CommandExt;
    let mut c = Command::new("/bin/ls");
    c.arg("-la").arg(path).uid(65534).gid(65534);
    // SAFETY: setgroups is async-signal-safe; the child drops its supplementary groups
    // before exec so that only "others" permissions apply.
    unsafe {
        c.pre_exec(|| {
            if libc::setgroups(0, std::ptr::null()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let listed = c.output().map(|o| o.status.success()).unwrap_or(false);
    let mut c = Command::new("/bin/cat");
    c.arg(path).uid(65534).gid(65534);
    let read = c.output().map(|o| o.status.success()).unwrap_or(false);
    listed || read
}

#[test]
fn data_and_exec_roots_are_private() {
    let d = Berthd::start();
    // The test's own temp dir is 0700: open it up so that only berthd's modes protect.
    std::fs::set_permissions(d.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let id = d
        .ok(&[
            "run",
            "-d",
            "--network",
            "none",
            "-e",
            "SECRET_TOKEN=s3cr3t",
            "busybox:test",
            "sh",
            "-c",
            "echo logged-line; sleep 60",
        ])
        .trim()
        .to_string();
    d.wait_until("the log line", std::time::Duration::from_secs(10), || {
        d.ok(&["logs", &id]).contains("logged-line")
    });
    let data = d.dir.path().join("data");
    let exec = d.dir.path().join("exec");
    let container = data.join("containers").join(&id);
    let mode = |p: &PathBuf| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o710);
    assert_eq!(mode(&exec), 0o700);
    assert_eq!(mode(&container), 0o710);
    assert_eq!(mode(&container.join("config.v2.json")), 0o600);
    assert_eq!(mode(&container.join(format!("{id}-json.log"))), 0o600);
    for p in [
        data.clone(),
        exec.clone(),
        data.join("containers"),
        container.join("config.v2.json"),
        container.join(format!("{id}-json.log")),
    ] {
        assert!(!readable_by_nobody(&p), "nobody can read {}", p.display());
    }
    d.ok(&["rm", "-f", &id]);
}

/// Whether anything is mounted at or below `dir` in the host's mount namespace.
fn host_mounts_under(dir: &Path) -> Vec<String> {
    let d = dir.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(String::from))
        .filter(|p| p.starts_with(&d))
        .collect()
}

#[test]
fn tmpfs_and_bind_destinations_through_image_symlinks_stay_inside() {
    let host = host_dir();
    let other = host_dir();
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("bound-file"), "bound").unwrap();
    let d = Berthd::start();
    let target = host.path().display().to_string();
    let climb = format!("../../../../../../../..{}", other.path().display());
    let top = layer(&[E::Link("tmp-abs", &target), E::Link("bind-rel", &climb)]);
    load_image(&d, "attack/mounts:1", &[busybox_tar(), top], &[]);
    let name = "mounts-attack";
    d.ok(&[
        "run",
        "-d",
        "--name",
        name,
        "--network",
        "none",
        "--tmpfs",
        "/tmp-abs",
        "-v",
        &format!("{}:/bind-rel:ro", src.path().display()),
        "--tmpfs",
        "/../../../x",
        "attack/mounts:1",
        "sleep",
        "60",
    ]);
    // Inside, both mounts are where the symlinks lead within the container's root.
    let seen = d.ok(&[
        "exec",
        name,
        "sh",
        "-c",
        "ls /tmp-abs/ /bind-rel/; grep -c ' /x ' /proc/mounts",
    ]);
    assert!(seen.contains("bound-file"), "{seen}");
    assert!(
        !seen.contains(SECRET),
        "a host directory was mounted over or shown: {seen}"
    );
    assert!(
        seen.trim_end().ends_with('1'),
        "the tmpfs at /x is missing: {seen}"
    );
    // On the host nothing was mounted on the host directories, which are untouched.
    for h in [host.path(), other.path()] {
        assert!(
            host_mounts_under(h).is_empty(),
            "{:?}",
            host_mounts_under(h)
        );
        let left: Vec<_> = std::fs::read_dir(h).unwrap().flatten().collect();
        assert_eq!(left.len(), 1);
    }
    d.ok(&["rm", "-f", name]);
}

//! Where berthd puts containers' cgroups: under `--cgroup-parent` (default `/berth`), or
//! under the container's own `--cgroup-parent`, as dockerd does; a parent that climbs out
//! with `..` is refused.

mod containers_support;

use containers_support::Berthd;
use std::path::Path;

const IMG: &str = "busybox:test";

/// The container's cgroup path in the hierarchy that has `controller`, from /proc.
fn cgroup_of(pid: &str, controller: &str) -> String {
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    cg.lines()
        .find_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctl, p) = (f.next()?, f.next()?, f.next()?);
            let found = if controller.is_empty() {
                ctl.is_empty()
            } else {
                ctl.split(',').any(|c| c == controller)
            };
            found.then(|| p.to_string())
        })
        .unwrap_or_else(|| panic!("no {controller:?} hierarchy in {cg}"))
}

/// Removes, when dropped (so also when an assertion fails), the cgroup directories named
/// `name` directly under each hierarchy's root, deepest first (only ours: the names
/// carry this test's pid).
struct ParentCgroup(String);

impl Drop for ParentCgroup {
    fn drop(&mut self) {
        remove_parent_cgroups(&self.0);
    }
}

fn remove_parent_cgroups(name: &str) {
    for h in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        let top = h.path().join(name);
        if top.is_dir() {
            let mut dirs = vec![top.clone()];
            let mut i = 0;
            while i < dirs.len() {
                for e in std::fs::read_dir(&dirs[i]).into_iter().flatten().flatten() {
                    if e.path().is_dir() {
                        dirs.push(e.path());
                    }
                }
                i += 1;
            }
            for d in dirs.iter().rev() {
                let _ = std::fs::remove_dir(d);
            }
        }
    }
}

#[test]
fn containers_go_under_the_daemons_or_their_own_cgroup_parent() {
    let daemon_parent = format!("berth-test-parent-{}", std::process::id());
    let own_parent = format!("berth-test-own-{}", std::process::id());
    // Declared before berthd: dropped after it, once its containers are gone.
    let _cleanup = (
        ParentCgroup(daemon_parent.clone()),
        ParentCgroup(own_parent.clone()),
    );
    let flag = format!("--cgroup-parent=/{daemon_parent}/");
    {
        let d = Berthd::start_with(&[&flag]);
        let id = d
            .ok(&["run", "-d", "--network", "none", IMG, "sleep", "1000"])
            .trim()
            .to_string();
        let pid = d.inspect(&id, "{{.State.Pid}}");
        assert_eq!(
            cgroup_of(&pid, "pids"),
            format!("/{daemon_parent}/{id}"),
            "the daemon's parent, trailing slash dropped"
        );
        assert!(Path::new(&format!("/sys/fs/cgroup/pids/{daemon_parent}/{id}")).is_dir());

        let id2 = d
            .ok(&[
                "run",
                "-d",
                "--network",
                "none",
                "--cgroup-parent",
                &own_parent,
                IMG,
                "sleep",
                "1000",
            ])
            .trim()
            .to_string();
        let pid2 = d.inspect(&id2, "{{.State.Pid}}");
        assert_eq!(cgroup_of(&pid2, "memory"), format!("/{own_parent}/{id2}"));
        assert_eq!(d.inspect(&id2, "{{.HostConfig.CgroupParent}}"), own_parent);

        // Climbing out of the hierarchy is refused, and nothing runs.
        let (code, _, err) = d.run(
            &[
                "run",
                "--rm",
                "--network",
                "none",
                "--cgroup-parent",
                "../escape",
                IMG,
                "true",
            ],
            None,
        );
        assert_ne!(code, 0);
        assert!(err.contains("invalid cgroup parent"), "{err}");
        assert!(
            !Path::new("/sys/fs/cgroup/pids/escape").exists(),
            "a cgroup was made outside the hierarchy"
        );
        assert_eq!(
            d.ok(&["ps", "-q"]).lines().count(),
            2,
            "only the two containers run"
        );

        d.ok(&["rm", "-f", &id, &id2]);
        assert!(!Path::new(&format!("/sys/fs/cgroup/pids/{daemon_parent}/{id}")).exists());
    }
}

#[test]
fn a_bad_daemon_cgroup_parent_stops_berthd_with_a_clear_error() {
    let berthd = berth_integration_tests::binary("berthd");
    let dir = tempfile::tempdir().unwrap();
    let out = berthd_integration_output(&berthd, dir.path());
    // Had berthd wrongly started, it and its supervisor must not outlive the test.
    containers_support::kill_leftovers(dir.path());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("invalid cgroup parent"), "{err}");
    // Nothing was made: the flag is checked before any state.
    assert!(!dir.path().join("data").exists());
}

fn berthd_integration_output(berthd: &Path, dir: &Path) -> std::process::Output {
    let mut cmd = std::process::Command::new(berthd);
    cmd.arg("--data-root")
        .arg(dir.join("data"))
        .arg("--exec-root")
        .arg(dir.join("exec"))
        .arg("-H")
        .arg(format!("unix://{}", dir.join("b.sock").display()))
        .arg("--cgroup-parent")
        .arg("a/../../b");
    berth_integration_tests::run_piped(cmd, None, std::time::Duration::from_secs(20))
}

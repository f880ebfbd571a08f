//! kill -9 of a task's shim: the supervisor notices (pidfd), kills what is left of the
//! container (its exec'd processes and background children too, a frozen one thawed),
//! runs the runtime's delete, unmounts the rootfs, removes the cgroups, publishes the
//! exits (137, with a reason), and keeps the task stopped until Delete; the same when it
//! restarts and finds a shim dead. Other containers are not touched and report their own
//! exit codes.

mod supervisor_support;

use std::time::Duration;

use berth_proto::tonic::Code;
use supervisor_support::*;

/// Everything of a container that a dead shim could leave behind, seen while it runs:
/// its processes, its cgroup directories, the bundle's mounts.
struct Footprint {
    pids: Vec<u32>,
    cgroups: Vec<std::path::PathBuf>,
    bundle: std::path::PathBuf,
}

impl Footprint {
    fn of(sv: &Supervisor, id: &str, init: u32) -> Self {
        let cgroups = container_cgroups(init);
        assert!(!cgroups.is_empty(), "no cgroup found for {id}");
        // The init and every child it forked (by cgroup: they share it).
        let mut pids = Vec::new();
        assert!(
            wait_until(Duration::from_secs(10), || {
                pids = cgroups.iter().flat_map(|d| cgroup_procs(d)).collect();
                pids.sort();
                pids.dedup();
                pids.len() >= 2
            }),
            "the container's processes did not start: {pids:?}"
        );
        let bundle = sv.bundle(id);
        assert!(!mounts_under(&bundle.join("rootfs")).is_empty());
        Self {
            pids,
            cgroups,
            bundle,
        }
    }

    fn assert_gone(&self) {
        assert!(
            wait_until(Duration::from_secs(10), || self
                .pids
                .iter()
                .all(|p| gone(*p))),
            "processes left: {:?}",
            self.pids.iter().filter(|p| !gone(**p)).collect::<Vec<_>>()
        );
        for d in &self.cgroups {
            assert!(!d.exists(), "cgroup left: {}", d.display());
        }
        assert_eq!(mounts_under(&self.bundle), Vec::<String>::new());
        // Only the stopped task's record is left in the bundle.
        let mut left: Vec<String> = std::fs::read_dir(&self.bundle)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        left.retain(|n| n != "exit-reported");
        assert_eq!(left, ["shim-died"]);
    }
}

fn kill9(pid: i32) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
}

fn wait_until(limit: Duration, f: impl FnMut() -> bool) -> bool {
    berth_integration_tests::wait_until(limit, f)
}

#[test]
fn kill9_of_a_shim_kills_the_container_and_reports_137() {
    let sv = Supervisor::start();
    // A background child, and an exec'd process: all must go.
    sv.create_container(sv.container("victim", "sleep 301 & sleep 300", berth()));
    // A neighbour that exits on its own meanwhile, with its own code.
    sv.create_container(sv.container("neighbour", "sleep 2; exit 3", berth()));
    let mut events = sv.subscribe("victim");
    let init = sv.run_task("victim", "");
    sv.run_task("neighbour", "");
    let mut t = sv.tasks();
    let spec = serde_json::json!({"args": ["sleep", "302"], "cwd": "/", "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}});
    sv.block(t.exec(pb::ExecProcessRequest {
        container_id: "victim".into(),
        exec_id: "e1".into(),
        spec: serde_json::to_vec(&spec).unwrap(),
        ..Default::default()
    }))
    .unwrap();
    let exec_pid = sv
        .block(t.start(pb::StartRequest {
            container_id: "victim".into(),
            exec_id: "e1".into(),
            ..Default::default()
        }))
        .unwrap()
        .into_inner()
        .pid;
    let footprint = Footprint::of(&sv, "victim", init);
    assert!(footprint.pids.contains(&exec_pid));

    // A Wait in flight when the shim dies returns once the supervisor cleaned up.
    let ch = sv.channel();
    let waiter = sv.rt.spawn(async move {
        pb::tasks_client::TasksClient::new(ch)
            .wait(pb::WaitRequest {
                container_id: "victim".into(),
                ..Default::default()
            })
            .await
    });
    // Driven for a moment, so that the Wait is with the shim when it dies.
    sv.block(async { tokio::time::sleep(Duration::from_millis(300)).await });
    assert!(!waiter.is_finished());
    kill9(sv.shim_pid("victim"));

    let w = sv
        .block(waiter)
        .unwrap()
        .expect("wait answers after the shim died")
        .into_inner();
    assert_eq!(w.exit_status, 137);
    assert!(w.exit_reason.contains("shim died"), "{w:?}");
    footprint.assert_gone();

    // The exits: the exec'd process's, then the init's, each 137 with the reason.
    let evs = sv.events_until(&mut events, Duration::from_secs(20), |e| {
        init_exit(e).is_some()
    });
    let exits: Vec<&pb::TaskExit> = evs
        .iter()
        .filter_map(|e| match kind(e) {
            Some(pb::event::Kind::TaskExit(x)) => Some(x),
            _ => None,
        })
        .collect();
    assert_eq!(exits.len(), 2, "{evs:?}");
    assert_eq!(
        (
            exits[0].exec_id.as_str(),
            exits[0].pid,
            exits[0].exit_status
        ),
        ("e1", exec_pid, 137)
    );
    let x = exits[1];
    assert_eq!(
        (x.container_id.as_str(), x.id.as_str(), x.exec_id.as_str()),
        ("victim", "victim", "")
    );
    assert_eq!((x.pid, x.exit_status), (init, 137));
    assert!(x.exited_at.is_some());
    assert!(x.exit_reason.contains("shim died"), "{x:?}");

    // Get, List, Wait agree; what needs a live process is refused clearly.
    let p = sv.get("victim", "").unwrap();
    assert_eq!((p.status, p.exit_status), (pb::Status::Stopped as i32, 137));
    assert_eq!(p.exit_reason, x.exit_reason);
    let e1 = sv.get("victim", "e1").unwrap();
    assert_eq!(
        (e1.status, e1.exit_status),
        (pb::Status::Stopped as i32, 137)
    );
    let list = sv
        .block(t.list(pb::ListTasksRequest::default()))
        .unwrap()
        .into_inner()
        .tasks;
    let listed = list.iter().find(|p| p.container_id == "victim").unwrap();
    assert_eq!(
        (listed.status, listed.exit_status),
        (pb::Status::Stopped as i32, 137)
    );
    let again = sv
        .block(t.wait(pb::WaitRequest {
            container_id: "victim".into(),
            ..Default::default()
        }))
        .unwrap()
        .into_inner();
    assert_eq!(again.exit_status, 137);
    let e = sv
        .block(t.kill(pb::KillRequest {
            container_id: "victim".into(),
            signal: 9,
            ..Default::default()
        }))
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    assert!(e.message().contains("already finished"), "{e:?}");
    let e = sv
        .block(t.pause(pb::PauseTaskRequest {
            container_id: "victim".into(),
            ..Default::default()
        }))
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("shim died"), "{e:?}");
    let pids = sv
        .block(t.list_pids(pb::ListPidsRequest {
            container_id: "victim".into(),
            ..Default::default()
        }))
        .unwrap()
        .into_inner()
        .pids;
    assert!(pids.is_empty(), "{pids:?}");
    // Its record cannot go before its task; Create says the task exists.
    let mut cs = sv.containers();
    let e = sv
        .block(cs.delete(pb::DeleteContainerRequest {
            namespace: String::new(),
            id: "victim".into(),
        }))
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    let e = sv
        .block(t.create(pb::CreateTaskRequest {
            container_id: "victim".into(),
            ..Default::default()
        }))
        .unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists);

    // The neighbour was not touched: it exits with its own code.
    let n = sv
        .block(t.wait(pb::WaitRequest {
            container_id: "neighbour".into(),
            ..Default::default()
        }))
        .unwrap()
        .into_inner();
    assert_eq!((n.exit_status, n.exit_reason.as_str()), (3, ""));

    // Delete removes it (TaskDelete), then the record goes.
    let d = sv
        .block(t.delete(pb::DeleteTaskRequest {
            container_id: "victim".into(),
            ..Default::default()
        }))
        .unwrap()
        .into_inner();
    assert_eq!((d.exit_status, d.pid), (137, init));
    let evs = sv.events_until(&mut events, Duration::from_secs(10), |e| {
        matches!(kind(e), Some(pb::event::Kind::TaskDelete(_)))
    });
    assert!(
        matches!(
            evs.last().and_then(kind),
            Some(pb::event::Kind::TaskDelete(_))
        ),
        "{evs:?}"
    );
    assert_eq!(sv.get("victim", "").unwrap_err().code(), Code::NotFound);
    assert!(!footprint.bundle.exists());
    sv.block(cs.delete(pb::DeleteContainerRequest {
        namespace: String::new(),
        id: "victim".into(),
    }))
    .unwrap();
    assert!(!sv.log().contains("panicked"), "{}", sv.log());
}

#[test]
fn a_frozen_container_is_thawed_and_killed() {
    let sv = Supervisor::start();
    sv.create_container(sv.container("frozen", "sleep 301 & sleep 300", berth()));
    let init = sv.run_task("frozen", "");
    let footprint = Footprint::of(&sv, "frozen", init);
    let mut t = sv.tasks();
    sv.block(t.pause(pb::PauseTaskRequest {
        container_id: "frozen".into(),
        ..Default::default()
    }))
    .unwrap();
    assert_eq!(
        sv.get("frozen", "").unwrap().status,
        pb::Status::Paused as i32
    );
    kill9(sv.shim_pid("frozen"));
    let w = sv
        .block(t.wait(pb::WaitRequest {
            container_id: "frozen".into(),
            ..Default::default()
        }))
        .unwrap()
        .into_inner();
    assert_eq!(w.exit_status, 137);
    footprint.assert_gone();
    sv.block(t.delete(pb::DeleteTaskRequest {
        container_id: "frozen".into(),
        ..Default::default()
    }))
    .unwrap();
}

#[test]
fn containerd_runc_shim_killed_is_cleaned_up_too() {
    let sv = Supervisor::start();
    sv.create_container(sv.container("rv2", "sleep 301 & sleep 300", runc_v2()));
    let init = sv.run_task("rv2", "");
    let footprint = Footprint::of(&sv, "rv2", init);
    kill9(sv.shim_pid("rv2"));
    let mut t = sv.tasks();
    let w = sv
        .block(t.wait(pb::WaitRequest {
            container_id: "rv2".into(),
            ..Default::default()
        }))
        .unwrap()
        .into_inner();
    assert_eq!(w.exit_status, 137);
    assert!(w.exit_reason.contains("shim died"), "{w:?}");
    footprint.assert_gone();
    // runc's own state of the container went with `runc delete --force`.
    let runc_state = sv.dir.path().join("state/runtime/default/rv2");
    assert!(!runc_state.exists(), "{}", runc_state.display());
    sv.block(t.delete(pb::DeleteTaskRequest {
        container_id: "rv2".into(),
        ..Default::default()
    }))
    .unwrap();
}

#[test]
fn supervisor_restart_finds_a_dead_shim_and_keeps_a_stopped_task() {
    let mut sv = Supervisor::start();
    for id in ["lost", "kept", "tomb"] {
        sv.create_container(sv.container(id, "sleep 301 & sleep 300", berth()));
    }
    let lost = sv.run_task("lost", "");
    let kept = sv.run_task("kept", "");
    let tomb = sv.run_task("tomb", "");
    let lost_fp = Footprint::of(&sv, "lost", lost);
    let tomb_fp = Footprint::of(&sv, "tomb", tomb);
    let _ = kept;
    // One shim dies while the supervisor runs: its task is stopped (tombstone).
    kill9(sv.shim_pid("tomb"));
    let mut t = sv.tasks();
    let w = sv
        .block(t.wait(pb::WaitRequest {
            container_id: "tomb".into(),
            ..Default::default()
        }))
        .unwrap()
        .into_inner();
    assert_eq!(w.exit_status, 137);
    tomb_fp.assert_gone();
    // Another dies while the supervisor is down.
    sv.kill9();
    kill9(sv.shim_pid("lost"));
    sv.spawn();

    let p = sv.get("lost", "").unwrap();
    assert_eq!((p.status, p.exit_status), (pb::Status::Stopped as i32, 137));
    assert!(
        p.exit_reason.contains("berth-supervisor restarted"),
        "{p:?}"
    );
    lost_fp.assert_gone();
    let p = sv.get("tomb", "").unwrap();
    assert_eq!((p.status, p.exit_status), (pb::Status::Stopped as i32, 137));
    assert!(p.exit_reason.contains("shim died"), "{p:?}");
    assert_eq!(
        sv.get("kept", "").unwrap().status,
        pb::Status::Running as i32
    );
    let mut t = sv.tasks();
    for id in ["lost", "tomb"] {
        let w = sv
            .block(t.wait(pb::WaitRequest {
                container_id: id.into(),
                ..Default::default()
            }))
            .unwrap()
            .into_inner();
        assert_eq!(w.exit_status, 137, "{id}");
        let d = sv
            .block(t.delete(pb::DeleteTaskRequest {
                container_id: id.into(),
                ..Default::default()
            }))
            .unwrap()
            .into_inner();
        assert_eq!(d.exit_status, 137);
        assert!(!sv.bundle(id).exists());
    }
    // The live one was found again and still answers; its shim is watched.
    kill9(sv.shim_pid("kept"));
    let w = sv
        .block(t.wait(pb::WaitRequest {
            container_id: "kept".into(),
            ..Default::default()
        }))
        .unwrap()
        .into_inner();
    assert_eq!(w.exit_status, 137);
    assert!(w.exit_reason.contains("shim died"), "{w:?}");
}

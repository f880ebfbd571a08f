//! kill -9 of berth-supervisor while containers run and while they exit: on restart it
//! finds every shim again, reports the right states, delivers the exits it missed, and
//! cleans up shims nobody claims.

mod supervisor_support;

use std::time::Duration;

use supervisor_support::*;

fn state(sv: &Supervisor, id: &str) -> pb::Process {
    let mut t = sv.tasks();
    sv.block(t.get(pb::GetRequest {
        container_id: id.into(),
        ..Default::default()
    }))
    .unwrap()
    .into_inner()
    .process
    .unwrap()
}

#[test]
fn restart_finds_shims_and_delivers_missed_exits() {
    let mut sv = Supervisor::start();
    let mut t = sv.tasks();
    for id in ["keeps", "dies"] {
        sv.create_container(sv.container(id, "sleep 300", berth()));
        sv.block(t.create(pb::CreateTaskRequest {
            container_id: id.into(),
            ..Default::default()
        }))
        .unwrap();
        sv.block(t.start(pb::StartRequest {
            container_id: id.into(),
            ..Default::default()
        }))
        .unwrap();
    }
    let dies_pid = state(&sv, "dies").pid;

    // Down while running: both come back running.
    sv.kill9();
    sv.spawn();
    assert_eq!(state(&sv, "keeps").status, pb::Status::Running as i32);
    assert_eq!(state(&sv, "dies").status, pb::Status::Running as i32);

    // Down while one exits: the exit is there after the restart (state, wait, event).
    sv.kill9();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(dies_pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    sv.spawn();
    let p = state(&sv, "dies");
    assert_eq!((p.status, p.exit_status), (pb::Status::Stopped as i32, 137));
    let mut t = sv.tasks();
    let w = sv
        .block(t.wait(pb::WaitRequest {
            container_id: "dies".into(),
            ..Default::default()
        }))
        .unwrap()
        .into_inner();
    assert_eq!(w.exit_status, 137);
    assert!(sv.log().contains("recovered task"), "{}", sv.log());
    // The exit was published once, at recovery, and marked as delivered.
    assert!(sv
        .dir
        .path()
        .join("state/tasks/default/dies/exit-reported")
        .exists());
    assert_eq!(state(&sv, "keeps").status, pb::Status::Running as i32);
}

#[test]
fn restart_cleans_up_shims_nobody_claims() {
    let mut sv = Supervisor::start();
    let mut t = sv.tasks();
    sv.create_container(sv.container("orphan", "sleep 300", berth()));
    sv.block(t.create(pb::CreateTaskRequest {
        container_id: "orphan".into(),
        ..Default::default()
    }))
    .unwrap();
    sv.block(t.start(pb::StartRequest {
        container_id: "orphan".into(),
        ..Default::default()
    }))
    .unwrap();
    let bundle = sv.dir.path().join("state/tasks/default/orphan");
    let shim_pid: i32 = std::fs::read_to_string(bundle.join("shim.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let init_pid = state(&sv, "orphan").pid as i32;
    sv.kill9();
    // Lose the record (as if the supervisor crashed before committing it): nobody claims
    // the shim any more.
    std::fs::remove_file(sv.dir.path().join("root/meta.redb")).unwrap();
    sv.spawn();
    assert!(!bundle.exists(), "the orphan's bundle is still there");
    let gone = |pid: i32| nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_err();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !(gone(shim_pid) && gone(init_pid)) {
        assert!(
            std::time::Instant::now() < deadline,
            "orphan shim {shim_pid} or its container {init_pid} still alive"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

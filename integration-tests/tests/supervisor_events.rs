//! The event stream as a subscriber (berthd) follows it instead of polling: a real OOM
//! kill (TaskOOM before the init's TaskExit, OOMKilled in the state), pause and resume,
//! an exec'd process's exit (exec_id, pid, status, time), and the re-sync a subscriber
//! does after (re)connecting: the state it reads (List, Get) carries every exit,
//! including those that happened while the supervisor was down.

mod supervisor_support;

use std::time::Duration;

use supervisor_support::*;

fn topics(evs: &[pb::Envelope]) -> Vec<&str> {
    evs.iter().map(|e| e.topic.as_str()).collect()
}

fn oom_container(sv: &Supervisor, id: &str) -> pb::Container {
    // Allocates 64 MiB at once under a 16 MiB limit: the OOM killer ends it.
    let mut c = sv.container(id, "dd if=/dev/zero of=/dev/null bs=64M count=1", berth());
    let mut spec: serde_json::Value = serde_json::from_slice(&c.spec).unwrap();
    spec["linux"]["resources"]["memory"] = serde_json::json!({"limit": 16 * 1024 * 1024});
    c.spec = serde_json::to_vec(&spec).unwrap();
    c
}

#[test]
fn oom_kill_is_published_before_the_exit_and_kept_in_the_state() {
    let sv = Supervisor::start();
    sv.create_container(oom_container(&sv, "oom"));
    let mut events = sv.subscribe("oom");
    let pid = sv.run_task("oom", "");
    let evs = sv.events_until(&mut events, Duration::from_secs(30), |e| {
        init_exit(e).is_some()
    });
    let t = topics(&evs);
    let oom_at = t.iter().position(|t| *t == "/tasks/oom");
    let exit_at = t.iter().position(|t| *t == "/tasks/exit");
    assert!(
        matches!((oom_at, exit_at), (Some(o), Some(x)) if o < x),
        "TaskOOM must come before TaskExit: {t:?}\n{}",
        sv.log()
    );
    let x = init_exit(evs.last().unwrap()).unwrap();
    assert_eq!(
        (x.pid, x.exit_status, x.exit_reason.as_str()),
        (pid, 137, "")
    );
    let p = sv.get("oom", "").unwrap();
    assert_eq!((p.exit_status, p.oom_killed), (137, true));
}

#[test]
fn an_oom_kill_while_the_supervisor_is_down_is_in_the_state_after() {
    let mut sv = Supervisor::start();
    let mut c = oom_container(&sv, "late");
    // Waits for a file before it allocates.
    let mut spec: serde_json::Value = serde_json::from_slice(&c.spec).unwrap();
    spec["process"]["args"] = serde_json::json!([
        "sh",
        "-c",
        "while [ ! -e /go ]; do sleep 0.05; done; dd if=/dev/zero of=/dev/null bs=64M count=1"
    ]);
    c.spec = serde_json::to_vec(&spec).unwrap();
    sv.create_container(c);
    sv.run_task("late", "");
    sv.kill9();
    std::fs::write(sv.rootfs.join("go"), b"").unwrap();
    std::thread::sleep(Duration::from_secs(2));
    sv.spawn();
    let _ = std::fs::remove_file(sv.rootfs.join("go"));
    let p = sv.get("late", "").unwrap();
    assert_eq!(p.status, pb::Status::Stopped as i32, "{p:?}");
    assert_eq!((p.exit_status, p.oom_killed), (137, true));
    assert!(p.exited_at.is_some());
}

#[test]
fn pause_resume_and_exec_exits_are_published_in_order() {
    let sv = Supervisor::start();
    sv.create_container(sv.container("ev", "sleep 300", berth()));
    let mut events = sv.subscribe("ev");
    let init = sv.run_task("ev", "");
    let mut t = sv.tasks();
    sv.block(t.pause(pb::PauseTaskRequest {
        container_id: "ev".into(),
        ..Default::default()
    }))
    .unwrap();
    sv.block(t.resume(pb::ResumeTaskRequest {
        container_id: "ev".into(),
        ..Default::default()
    }))
    .unwrap();
    let spec = serde_json::json!({"args": ["sh", "-c", "exit 5"], "cwd": "/", "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}});
    sv.block(t.exec(pb::ExecProcessRequest {
        container_id: "ev".into(),
        exec_id: "x1".into(),
        spec: serde_json::to_vec(&spec).unwrap(),
        ..Default::default()
    }))
    .unwrap();
    let exec_pid = sv
        .block(t.start(pb::StartRequest {
            container_id: "ev".into(),
            exec_id: "x1".into(),
            ..Default::default()
        }))
        .unwrap()
        .into_inner()
        .pid;
    let evs = sv.events_until(
        &mut events,
        Duration::from_secs(20),
        |e| matches!(kind(e), Some(pb::event::Kind::TaskExit(x)) if x.exec_id == "x1"),
    );
    assert_eq!(
        topics(&evs),
        [
            "/tasks/create",
            "/tasks/start",
            "/tasks/paused",
            "/tasks/resumed",
            "/tasks/exec-added",
            "/tasks/exec-started",
            "/tasks/exit"
        ]
    );
    for e in &evs[2..4] {
        match kind(e) {
            Some(pb::event::Kind::TaskPaused(p)) => assert_eq!(p.container_id, "ev"),
            Some(pb::event::Kind::TaskResumed(p)) => assert_eq!(p.container_id, "ev"),
            other => panic!("{other:?}"),
        }
    }
    let Some(pb::event::Kind::TaskExit(x)) = kind(evs.last().unwrap()) else {
        unreachable!()
    };
    assert_eq!(
        (x.container_id.as_str(), x.id.as_str(), x.exec_id.as_str()),
        ("ev", "x1", "x1")
    );
    assert_eq!((x.pid, x.exit_status), (exec_pid, 5));
    assert!(x.exited_at.as_ref().is_some_and(|t| t.seconds > 0));
    // The init's exit, then its delete, end the stream of this task.
    sv.block(t.kill(pb::KillRequest {
        container_id: "ev".into(),
        signal: 9,
        ..Default::default()
    }))
    .unwrap();
    let evs = sv.events_until(&mut events, Duration::from_secs(20), |e| {
        init_exit(e).is_some()
    });
    let x = init_exit(evs.last().unwrap()).unwrap();
    assert_eq!((x.pid, x.exit_status, x.id.as_str()), (init, 137, "ev"));
}

#[test]
fn a_subscriber_resyncs_from_list_and_get() {
    let sv = Supervisor::start();
    sv.create_container(sv.container("before", "exit 7", berth()));
    sv.create_container(sv.container("after", "sleep 1; exit 9", berth()));
    sv.create_container(sv.container("running", "sleep 300", berth()));
    sv.run_task("before", "");
    sv.run_task("running", "");
    let mut t = sv.tasks();
    sv.block(t.wait(pb::WaitRequest {
        container_id: "before".into(),
        ..Default::default()
    }))
    .unwrap();
    // A subscriber connects now: subscribe first, then read the state.
    let mut ev = sv.events();
    let mut stream = sv
        .block(ev.subscribe(pb::SubscribeRequest {
            topics: vec!["/tasks/exit".into()],
            ..Default::default()
        }))
        .unwrap()
        .into_inner();
    sv.run_task("after", "");
    let list = sv
        .block(t.list(pb::ListTasksRequest::default()))
        .unwrap()
        .into_inner()
        .tasks;
    let by_id = |id: &str| list.iter().find(|p| p.container_id == id).unwrap().clone();
    let before = by_id("before");
    assert_eq!(
        (before.status, before.exit_status),
        (pb::Status::Stopped as i32, 7)
    );
    assert!(before.exited_at.is_some());
    assert_eq!(by_id("running").status, pb::Status::Running as i32);
    // What changes after the subscription arrives as an event.
    let evs = sv.events_until(&mut stream, Duration::from_secs(20), |e| {
        init_exit(e).is_some_and(|x| x.container_id == "after")
    });
    let x = init_exit(evs.last().unwrap()).unwrap();
    assert_eq!((x.container_id.as_str(), x.exit_status), ("after", 9));
}

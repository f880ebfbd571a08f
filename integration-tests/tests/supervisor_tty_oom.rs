//! A task with a terminal (resize through the API reaches the program) and a task that
//! exceeds its memory limit (TaskOOM event, killed by SIGKILL).

mod supervisor_support;

use std::time::Duration;

use supervisor_support::*;
use tokio_stream::StreamExt;

#[test]
fn tty_resize_reaches_the_program() {
    let sv = Supervisor::start();
    let script = r#"while [ "$(stty size)" != "30 100" ]; do sleep 0.05; done; echo resized"#;
    sv.create_container(sv.container("tty", script, berth()));
    let out = sv.dir.path().join("tty-out");
    let mut t = sv.tasks();
    sv.block(t.create(pb::CreateTaskRequest {
        container_id: "tty".into(),
        stdout: out.display().to_string(),
        terminal: true,
        ..Default::default()
    }))
    .unwrap();
    sv.block(t.start(pb::StartRequest {
        container_id: "tty".into(),
        ..Default::default()
    }))
    .unwrap();
    sv.block(t.resize_pty(pb::ResizePtyRequest {
        container_id: "tty".into(),
        width: 100,
        height: 30,
        ..Default::default()
    }))
    .unwrap();
    let w = sv
        .block(t.wait(pb::WaitRequest {
            container_id: "tty".into(),
            ..Default::default()
        }))
        .unwrap()
        .into_inner();
    assert_eq!(w.exit_status, 0);
    // The console copier drains after the exit.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        if text.contains("resized\r\n") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "output: {text:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn oom_kill_publishes_task_oom() {
    let sv = Supervisor::start();
    let mut c = sv.container(
        "oom",
        "dd if=/dev/zero of=/dev/null bs=64M count=1",
        berth(),
    );
    let mut spec: serde_json::Value = serde_json::from_slice(&c.spec).unwrap();
    spec["linux"]["resources"]["memory"] = serde_json::json!({"limit": 16 * 1024 * 1024});
    spec["linux"]["cgroupsPath"] =
        serde_json::json!(format!("/berth-test/oom-{}", std::process::id()));
    c.spec = serde_json::to_vec(&spec).unwrap();
    sv.create_container(c);
    let mut ev = sv.events();
    let mut stream = sv
        .block(ev.subscribe(pb::SubscribeRequest {
            topics: vec!["/tasks/oom".into(), "/tasks/exit".into()],
            namespace: String::new(),
            container_id: "oom".into(),
        }))
        .unwrap()
        .into_inner();
    let mut t = sv.tasks();
    sv.block(t.create(pb::CreateTaskRequest {
        container_id: "oom".into(),
        ..Default::default()
    }))
    .unwrap();
    sv.block(t.start(pb::StartRequest {
        container_id: "oom".into(),
        ..Default::default()
    }))
    .unwrap();
    let w = sv
        .block(t.wait(pb::WaitRequest {
            container_id: "oom".into(),
            ..Default::default()
        }))
        .unwrap()
        .into_inner();
    assert_eq!(w.exit_status, 137);
    let topics = sv.block(async {
        let mut v = Vec::new();
        while v.len() < 2 {
            match tokio::time::timeout(Duration::from_secs(10), stream.next()).await {
                Ok(Some(Ok(e))) => v.push(e.topic),
                _ => break,
            }
        }
        v
    });
    assert!(
        topics.contains(&"/tasks/oom".to_string()),
        "{topics:?}\n{}",
        sv.log()
    );
}

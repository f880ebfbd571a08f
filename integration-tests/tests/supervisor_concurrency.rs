//! The supervisor locks per container: a Create held up (here by a createRuntime hook
//! that waits for a file) does not hold up the Create or Delete of another container,
//! while a second Create of the same container waits for the first and then finds the
//! task there.

mod supervisor_support;

use std::path::Path;
use std::time::Duration;

use berth_proto::tonic::Code;
use supervisor_support::*;

/// A container whose runtime `create` blocks in a createRuntime hook until `go` exists
/// (bounded: 30 s), after touching `started`.
fn held_container(sv: &Supervisor, id: &str, started: &Path, go: &Path) -> pb::Container {
    let mut c = sv.container(id, "sleep 300", berth());
    let mut spec: serde_json::Value = serde_json::from_slice(&c.spec).unwrap();
    let script = format!(
        "touch {}; i=0; while [ ! -e {} ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done",
        started.display(),
        go.display()
    );
    spec["hooks"] = serde_json::json!({
        "createRuntime": [{
            "path": "/bin/sh",
            "args": ["sh", "-c", script],
            "env": ["PATH=/usr/bin:/bin"]
        }]
    });
    c.spec = serde_json::to_vec(&spec).unwrap();
    c
}

fn create(
    sv: &Supervisor,
    id: &str,
) -> tokio::task::JoinHandle<Result<u32, berth_proto::tonic::Status>> {
    let ch = sv.channel();
    let id = id.to_string();
    sv.rt.spawn(async move {
        pb::tasks_client::TasksClient::new(ch)
            .create(pb::CreateTaskRequest {
                container_id: id,
                ..Default::default()
            })
            .await
            .map(|r| r.into_inner().pid)
    })
}

fn wait_file<T: std::fmt::Debug>(
    sv: &Supervisor,
    p: &Path,
    create: &mut tokio::task::JoinHandle<T>,
) {
    // Drive the client's runtime while waiting: the create runs on it.
    let appeared = sv.rt.block_on(async {
        for _ in 0..1500 {
            if p.exists() || create.is_finished() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    });
    assert!(
        appeared && p.exists(),
        "{} never appeared: {:?}\n{}",
        p.display(),
        create.is_finished().then(|| sv.block(&mut *create)),
        sv.log()
    );
}

#[test]
fn creates_of_different_containers_run_concurrently() {
    let sv = Supervisor::start();
    let (started, go) = (sv.dir.path().join("started"), sv.dir.path().join("go"));
    sv.create_container(held_container(&sv, "held", &started, &go));
    sv.create_container(sv.container("free", "sleep 300", berth()));
    sv.create_container(sv.container("done", "true", berth()));
    let mut held = create(&sv, "held");
    wait_file(&sv, &started, &mut held);

    // While "held" is in the middle of its create: another container is created,
    // started, and one is created, run and deleted.
    let free = sv.block(create(&sv, "free")).unwrap();
    assert!(free.is_ok(), "{free:?}");
    sv.run_task("done", "");
    let mut t = sv.tasks();
    sv.block(t.wait(pb::WaitRequest {
        container_id: "done".into(),
        ..Default::default()
    }))
    .unwrap();
    sv.block(t.delete(pb::DeleteTaskRequest {
        container_id: "done".into(),
        ..Default::default()
    }))
    .unwrap();
    assert!(
        !held.is_finished(),
        "the held create finished before it was let go"
    );

    std::fs::write(&go, b"").unwrap();
    let pid = sv.block(held).unwrap().expect("held create");
    assert!(pid > 0);
    sv.block(t.start(pb::StartRequest {
        container_id: "held".into(),
        ..Default::default()
    }))
    .unwrap();
    assert_eq!(
        sv.get("held", "").unwrap().status,
        pb::Status::Running as i32
    );
}

#[test]
fn creates_of_one_container_are_serialised() {
    let sv = Supervisor::start();
    let (started, go) = (sv.dir.path().join("started"), sv.dir.path().join("go"));
    sv.create_container(held_container(&sv, "same", &started, &go));
    let mut first = create(&sv, "same");
    wait_file(&sv, &started, &mut first);
    let second = create(&sv, "same");
    // The second waits for the first (it would otherwise start a second shim).
    sv.block(async { tokio::time::sleep(Duration::from_millis(500)).await });
    assert!(!second.is_finished(), "the second create did not wait");
    std::fs::write(&go, b"").unwrap();
    assert!(sv.block(first).unwrap().is_ok());
    let e = sv.block(second).unwrap().unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists, "{e:?}");
    // One shim serves the bundle.
    let bundle = sv.bundle("same");
    let shims = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            std::fs::read_link(e.path().join("cwd")).is_ok_and(|c| c == bundle)
                && std::fs::read(e.path().join("cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains("berth-shim"))
        })
        .count();
    assert_eq!(shims, 1);
}

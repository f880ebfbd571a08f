//! berth-supervisor's gRPC API end to end, with real shims, runtimes and containers:
//! berth-shim + berth-runtime, and containerd-shim-runc-v2 + runc.

mod supervisor_support;

use std::time::Duration;

use berth_proto::tonic::Code;
use supervisor_support::*;
use tokio_stream::StreamExt;

fn topics(
    sv: &Supervisor,
    mut stream: berth_proto::tonic::Streaming<pb::Envelope>,
    n: usize,
) -> Vec<String> {
    sv.block(async {
        let mut out = Vec::new();
        while out.len() < n {
            match tokio::time::timeout(Duration::from_secs(20), stream.next()).await {
                Ok(Some(Ok(e))) => out.push(e.topic),
                _ => break,
            }
        }
        out
    })
}

/// stdin in, stdout/stderr out with exact bytes, exit code, events in order.
fn lifecycle(runtime: pb::Runtime, use_fifos: bool) {
    let sv = Supervisor::start();
    let id = "life";
    sv.create_container(sv.container(id, "cat; printf 'E\\000r' >&2; exit 7", runtime));
    let mut ev = sv.events();
    let stream = sv
        .block(ev.subscribe(pb::SubscribeRequest {
            topics: vec!["/tasks/".into()],
            namespace: "default".into(),
            container_id: id.into(),
        }))
        .unwrap()
        .into_inner();
    let d = sv.dir.path();
    let input: Vec<u8> = b"hello\x00\xff\nworld".to_vec();
    std::fs::write(d.join("in"), &input).unwrap();
    let (out, err, readers) = if use_fifos {
        let r1 = fifo_reader(&d.join("out"));
        let r2 = fifo_reader(&d.join("err"));
        (d.join("out"), d.join("err"), Some((r1, r2)))
    } else {
        (d.join("out"), d.join("err"), None)
    };
    let mut t = sv.tasks();
    let created = sv
        .block(t.create(pb::CreateTaskRequest {
            container_id: id.into(),
            stdin: d.join("in").display().to_string(),
            stdout: out.display().to_string(),
            stderr: err.display().to_string(),
            ..Default::default()
        }))
        .unwrap()
        .into_inner();
    assert!(created.pid > 0);
    let p = sv
        .block(t.get(pb::GetRequest {
            container_id: id.into(),
            ..Default::default()
        }))
        .unwrap()
        .into_inner()
        .process
        .unwrap();
    assert_eq!(p.status, pb::Status::Created as i32);
    sv.block(t.start(pb::StartRequest {
        container_id: id.into(),
        ..Default::default()
    }))
    .unwrap();
    let w = sv
        .block(t.wait(pb::WaitRequest {
            container_id: id.into(),
            ..Default::default()
        }))
        .unwrap()
        .into_inner();
    assert_eq!(w.exit_status, 7);
    assert!(w.exited_at.is_some());
    let (o, e) = match readers {
        Some((r1, r2)) => (r1.join().unwrap(), r2.join().unwrap()),
        None => (std::fs::read(&out).unwrap(), std::fs::read(&err).unwrap()),
    };
    assert_eq!(o, input);
    assert_eq!(e, b"E\0r");
    let p = sv
        .block(t.get(pb::GetRequest {
            container_id: id.into(),
            ..Default::default()
        }))
        .unwrap()
        .into_inner()
        .process
        .unwrap();
    assert_eq!((p.status, p.exit_status), (pb::Status::Stopped as i32, 7));
    let del = sv
        .block(t.delete(pb::DeleteTaskRequest {
            container_id: id.into(),
            ..Default::default()
        }))
        .unwrap()
        .into_inner();
    assert_eq!(del.exit_status, 7);
    assert_eq!(
        topics(&sv, stream, 4),
        [
            "/tasks/create",
            "/tasks/start",
            "/tasks/exit",
            "/tasks/delete"
        ]
    );
    assert!(
        !sv.dir.path().join("state/tasks/default").join(id).exists(),
        "bundle left behind"
    );
    let mut cs = sv.containers();
    sv.block(cs.delete(pb::DeleteContainerRequest {
        namespace: String::new(),
        id: id.into(),
    }))
    .unwrap();
}

#[test]
fn berth_shim_lifecycle_stdio_exit_code_events() {
    lifecycle(berth(), false);
}

#[test]
fn berth_shim_lifecycle_with_fifos() {
    lifecycle(berth(), true);
}

#[test]
fn runc_v2_shim_lifecycle_with_fifos() {
    lifecycle(runc_v2(), true);
}

fn exec_and_kill(runtime: pb::Runtime) {
    let sv = Supervisor::start();
    let id = "ek";
    sv.create_container(sv.container(id, "sleep 100", runtime));
    let mut t = sv.tasks();
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
    let out = sv.dir.path().join("exec-out");
    let reader = fifo_reader(&out);
    // containerd's runc shim needs every stream once one is given.
    let err = sv.dir.path().join("exec-err");
    let err_reader = fifo_reader(&err);
    let spec = serde_json::json!({"args": ["sh", "-c", "echo exec-$((40+2)); exit 3"], "cwd": "/", "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}});
    sv.block(t.exec(pb::ExecProcessRequest {
        container_id: id.into(),
        exec_id: "e1".into(),
        stdout: out.display().to_string(),
        stderr: err.display().to_string(),
        spec: serde_json::to_vec(&spec).unwrap(),
        ..Default::default()
    }))
    .unwrap();
    let dup = sv.block(t.exec(pb::ExecProcessRequest {
        container_id: id.into(),
        exec_id: "e1".into(),
        spec: serde_json::to_vec(&spec).unwrap(),
        ..Default::default()
    }));
    assert_eq!(dup.unwrap_err().code(), Code::AlreadyExists);
    sv.block(t.start(pb::StartRequest {
        container_id: id.into(),
        exec_id: "e1".into(),
        ..Default::default()
    }))
    .unwrap();
    let w = sv
        .block(t.wait(pb::WaitRequest {
            container_id: id.into(),
            exec_id: "e1".into(),
            ..Default::default()
        }))
        .unwrap()
        .into_inner();
    assert_eq!(w.exit_status, 3);
    assert_eq!(reader.join().unwrap(), b"exec-42\n");
    assert_eq!(err_reader.join().unwrap(), b"");
    sv.block(t.delete_process(pb::DeleteProcessRequest {
        container_id: id.into(),
        exec_id: "e1".into(),
        ..Default::default()
    }))
    .unwrap();
    let pids = sv
        .block(t.list_pids(pb::ListPidsRequest {
            container_id: id.into(),
            ..Default::default()
        }))
        .unwrap()
        .into_inner()
        .pids;
    assert!(!pids.is_empty());
    // Deleting a running task is refused and changes nothing.
    let e = sv
        .block(t.delete(pb::DeleteTaskRequest {
            container_id: id.into(),
            ..Default::default()
        }))
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    sv.block(t.kill(pb::KillRequest {
        container_id: id.into(),
        signal: 9,
        ..Default::default()
    }))
    .unwrap();
    let w = sv
        .block(t.wait(pb::WaitRequest {
            container_id: id.into(),
            ..Default::default()
        }))
        .unwrap()
        .into_inner();
    assert_eq!(w.exit_status, 137);
    sv.block(t.delete(pb::DeleteTaskRequest {
        container_id: id.into(),
        ..Default::default()
    }))
    .unwrap();
}

#[test]
fn berth_shim_exec_and_kill() {
    exec_and_kill(berth());
}

#[test]
fn runc_v2_shim_exec_and_kill() {
    exec_and_kill(runc_v2());
}

#[test]
fn bad_input_gets_the_right_code_and_leaves_nothing() {
    let sv = Supervisor::start();
    let mut t = sv.tasks();
    let mut cs = sv.containers();
    let e = sv
        .block(t.create(pb::CreateTaskRequest {
            container_id: "nope".into(),
            ..Default::default()
        }))
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}\n{}", sv.log());
    assert!(e.message().contains("nope"), "{}", e.message());
    let e = sv
        .block(cs.get(pb::GetContainerRequest {
            namespace: String::new(),
            id: "nope".into(),
        }))
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    sv.create_container(sv.container("dup", "true", berth()));
    let e = sv
        .block(cs.create(pb::CreateContainerRequest {
            namespace: String::new(),
            container: Some(sv.container("dup", "true", berth())),
        }))
        .unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists);
    assert!(e.message().contains("dup"));

    let mut bad = sv.container("bad", "true", berth());
    bad.spec = b"{not json".to_vec();
    let e = sv
        .block(cs.create(pb::CreateContainerRequest {
            namespace: String::new(),
            container: Some(bad.clone()),
        }))
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    bad.spec = br#"{"ociVersion":"1.0.2"}"#.to_vec();
    let e = sv
        .block(cs.create(pb::CreateContainerRequest {
            namespace: String::new(),
            container: Some(bad.clone()),
        }))
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    bad.id = "../evil".into();
    let e = sv
        .block(cs.create(pb::CreateContainerRequest {
            namespace: String::new(),
            container: Some(bad),
        }))
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);

    sv.create_container(sv.container(
        "noshim",
        "true",
        pb::Runtime {
            name: "io.containerd.nope.v1".into(),
            ..Default::default()
        },
    ));
    let e = sv
        .block(t.create(pb::CreateTaskRequest {
            container_id: "noshim".into(),
            ..Default::default()
        }))
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(
        e.message().contains("containerd-shim-nope-v1"),
        "{}",
        e.message()
    );

    sv.create_container(sv.container(
        "nort",
        "true",
        pb::Runtime {
            name: "io.containerd.berth.v2".into(),
            binary_name: "/nonexistent/runtime".into(),
            ..Default::default()
        },
    ));
    let e = sv
        .block(t.create(pb::CreateTaskRequest {
            container_id: "nort".into(),
            ..Default::default()
        }))
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(
        e.message().contains("/nonexistent/runtime"),
        "{}",
        e.message()
    );

    // The runtime rejects the process: the shim and bundle are gone afterwards.
    sv.create_container(sv.container("badproc", "true", berth()));
    let mut c = sv.container("badproc", "true", berth());
    let mut s: serde_json::Value = serde_json::from_slice(&c.spec).unwrap();
    s["process"]["args"] = serde_json::json!(["/no/such/program"]);
    c.spec = serde_json::to_vec(&s).unwrap();
    sv.block(cs.update(pb::UpdateContainerRequest {
        namespace: String::new(),
        container: Some(c),
        update_mask: vec!["spec".into()],
    }))
    .unwrap();
    let r = sv.block(t.create(pb::CreateTaskRequest {
        container_id: "badproc".into(),
        ..Default::default()
    }));
    if r.is_ok() {
        // Runtimes that only find out at start: start must fail instead.
        assert!(sv
            .block(t.start(pb::StartRequest {
                container_id: "badproc".into(),
                ..Default::default()
            }))
            .is_err());
    } else {
        let leftovers: Vec<_> = std::fs::read_dir(sv.dir.path().join("state/tasks/default"))
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
    }
    let e = sv
        .block(t.checkpoint(pb::CheckpointTaskRequest::default()))
        .unwrap_err();
    assert_eq!(e.code(), Code::Unimplemented);
}

#[test]
fn version_health_and_namespaces() {
    let sv = Supervisor::start();
    let mut v = pb::version_client::VersionClient::new(sv.channel());
    assert_eq!(
        sv.block(v.version(())).unwrap().into_inner().api,
        "berth.supervisor.v1"
    );
    let mut ns = pb::namespaces_client::NamespacesClient::new(sv.channel());
    sv.block(ns.create(pb::CreateNamespaceRequest {
        namespace: Some(pb::Namespace {
            name: "team-a".into(),
            ..Default::default()
        }),
    }))
    .unwrap();
    let e = sv
        .block(ns.create(pb::CreateNamespaceRequest {
            namespace: Some(pb::Namespace {
                name: "team-a".into(),
                ..Default::default()
            }),
        }))
        .unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists);
    let names: Vec<String> = sv
        .block(ns.list(pb::ListNamespacesRequest {}))
        .unwrap()
        .into_inner()
        .namespaces
        .into_iter()
        .map(|n| n.name)
        .collect();
    assert_eq!(names, ["default", "team-a"]);
    sv.block(ns.delete(pb::DeleteNamespaceRequest {
        name: "team-a".into(),
    }))
    .unwrap();
    let meta = std::fs::metadata(sv.socket()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
}

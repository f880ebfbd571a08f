//! Pause/resume, Update and CloseIO through the supervisor's Tasks API, checked in the
//! kernel (freezer state, cgroup limit files) and on the process's stdio.

mod supervisor_support;

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use supervisor_support::*;

/// The host directory of a process's cgroup for a v1 controller.
fn controller_dir(pid: u32, controller: &str) -> Option<PathBuf> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    text.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, ctl, path) = (parts.next()?, parts.next()?, parts.next()?);
        ctl.split(',').any(|c| c == controller).then(|| {
            PathBuf::from("/sys/fs/cgroup")
                .join(controller)
                .join(path.trim_start_matches('/'))
        })
    })
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_string()
}

#[test]
fn pause_resume_and_update_reach_the_cgroup() {
    let sv = Supervisor::start();
    // Unique, so a crashed earlier run's cgroup can never be reused.
    let id = &format!("ctl-{}", std::process::id());
    sv.create_container(sv.container(id, "sleep 100", berth()));
    let mut t = sv.tasks();
    let pid = sv
        .block(t.create(pb::CreateTaskRequest {
            container_id: id.into(),
            ..Default::default()
        }))
        .unwrap()
        .into_inner()
        .pid;
    sv.block(t.start(pb::StartRequest {
        container_id: id.into(),
        ..Default::default()
    }))
    .unwrap();
    let status = |t: &mut pb::tasks_client::TasksClient<_>| {
        sv.block(t.get(pb::GetRequest {
            container_id: id.into(),
            ..Default::default()
        }))
        .unwrap()
        .into_inner()
        .process
        .unwrap()
        .status
    };

    if let Some(freezer) = controller_dir(pid, "freezer") {
        sv.block(t.pause(pb::PauseTaskRequest {
            container_id: id.into(),
            ..Default::default()
        }))
        .unwrap();
        assert_eq!(status(&mut t), pb::Status::Paused as i32);
        assert_eq!(read(freezer.join("freezer.state")), "FROZEN");
        sv.block(t.resume(pb::ResumeTaskRequest {
            container_id: id.into(),
            ..Default::default()
        }))
        .unwrap();
        assert_eq!(status(&mut t), pb::Status::Running as i32);
        assert_eq!(read(freezer.join("freezer.state")), "THAWED");
    }

    let resources = serde_json::json!({"pids": {"limit": 33}, "memory": {"limit": 50331648}});
    sv.block(t.update(pb::UpdateTaskRequest {
        container_id: id.into(),
        resources: serde_json::to_vec(&resources).unwrap(),
        ..Default::default()
    }))
    .unwrap();
    if let Some(pids) = controller_dir(pid, "pids") {
        assert_eq!(read(pids.join("pids.max")), "33");
    }
    if let Some(memory) = controller_dir(pid, "memory") {
        assert_eq!(read(memory.join("memory.limit_in_bytes")), "50331648");
    }
    // Pausing a paused task is refused and names the state.
    sv.block(t.pause(pb::PauseTaskRequest {
        container_id: id.into(),
        ..Default::default()
    }))
    .unwrap();
    let again = sv
        .block(t.pause(pb::PauseTaskRequest {
            container_id: id.into(),
            ..Default::default()
        }))
        .unwrap_err();
    assert_eq!(
        again.code(),
        berth_proto::tonic::Code::FailedPrecondition,
        "{again:?}"
    );
    sv.cleanup();
}

#[test]
fn close_io_ends_the_processs_stdin() {
    let sv = Supervisor::start();
    let id = &format!("closeio-{}", std::process::id());
    sv.create_container(sv.container(id, "cat; echo done", berth()));
    let d = sv.dir.path();
    let stdin = d.join("in");
    nix::unistd::mkfifo(&stdin, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    // Held open for writing by us: cat sees end of file only through CloseIO.
    let mut writer = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&stdin)
        .unwrap();
    let out = d.join("out");
    let mut t = sv.tasks();
    sv.block(t.create(pb::CreateTaskRequest {
        container_id: id.into(),
        stdin: stdin.display().to_string(),
        stdout: out.display().to_string(),
        stderr: d.join("err").display().to_string(),
        ..Default::default()
    }))
    .unwrap();
    sv.block(t.start(pb::StartRequest {
        container_id: id.into(),
        ..Default::default()
    }))
    .unwrap();
    writer.write_all(b"first line\n").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    sv.block(t.close_io(pb::CloseIoRequest {
        container_id: id.into(),
        stdin: true,
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
    assert_eq!(w.exit_status, 0);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "first line\ndone\n");
    drop(writer);
    sv.cleanup();
}

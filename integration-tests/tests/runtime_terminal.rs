//! `process.terminal`: the pty master arrives on the console socket (SCM_RIGHTS) and the
//! container's stdio is the slave.

mod support;

use std::io::{IoSliceMut, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::time::{Duration, Instant};

use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, UnixAddr};
use serde_json::json;
use support::*;

fn receive_master(listener: &UnixListener) -> (OwnedFd, String) {
    listener.set_nonblocking(false).unwrap();
    let (stream, _) = listener.accept().unwrap();
    let mut buf = [0u8; 256];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<UnixAddr>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::empty(),
    )
    .unwrap();
    let bytes = msg.bytes;
    let mut master = None;
    for cmsg in msg.cmsgs().unwrap() {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            // SAFETY: the kernel just installed this descriptor for us.
            master = Some(unsafe { OwnedFd::from_raw_fd(fds[0]) });
        }
    }
    let name = String::from_utf8_lossy(&buf[..bytes]).into_owned();
    (master.expect("a descriptor on the console socket"), name)
}

/// Read from the master until `needle` shows up or time runs out.
fn read_until(master: &mut std::fs::File, needle: &str) -> String {
    let mut seen = String::new();
    let start = Instant::now();
    let mut buf = [0u8; 1024];
    while start.elapsed() < Duration::from_secs(20) && !seen.contains(needle) {
        match master.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
    seen
}

#[test]
fn the_pty_master_goes_to_the_console_socket() {
    let rt = Runtime::new();
    let mut bundle = Bundle::new(&rt, "tty; stty size; read line; echo got:$line; sleep 1");
    bundle.edit(|c| {
        c["process"]["terminal"] = json!(true);
        c["process"]["consoleSize"] = json!({"height": 30, "width": 100});
    });
    let socket_dir = tempfile::tempdir().unwrap();
    let socket = socket_dir.path().join("console.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let id = unique_id("tty");
    rt.track(&id);
    let receiver = std::thread::spawn(move || receive_master(&listener));
    let out = rt.output(&[
        "create",
        "--bundle",
        bundle.path().to_str().unwrap(),
        "--console-socket",
        socket.to_str().unwrap(),
        &id,
    ]);
    assert_ok(&out, "create");
    let (master, name) = receiver.join().unwrap();
    assert!(
        name.starts_with("/dev/pts/"),
        "payload names the pty: {name:?}"
    );
    assert_ok(&rt.output(&["start", &id]), "start");

    let mut master = std::fs::File::from(master);
    let seen = read_until(&mut master, "30 100");
    assert!(seen.contains("/dev/pts/0"), "tty inside: {seen:?}");
    assert!(seen.contains("30 100"), "console size: {seen:?}");
    master.write_all(b"typed\n").unwrap();
    let seen = read_until(&mut master, "got:typed");
    assert!(
        seen.contains("got:typed"),
        "input through the pty: {seen:?}"
    );
}

#[test]
fn a_terminal_without_a_console_socket_is_refused_for_create() {
    let rt = Runtime::new();
    let mut bundle = Bundle::new(&rt, "true");
    bundle.edit(|c| c["process"]["terminal"] = json!(true));
    let id = unique_id("notty");
    rt.track(&id);
    let out = rt.output(&["create", "--bundle", bundle.path().to_str().unwrap(), &id]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("--console-socket"),
        "{}",
        stderr(&out)
    );
    assert!(!rt.state_dir(&id).exists());
}

//! The shim's one event loop: poll(2) over the listening socket, the client
//! connections, the SIGCHLD self-pipe, the OOM watch and, when the shim logs the init's
//! output, its pipes and FIFOs. Calls are served one at a time; Wait calls are parked and
//! answered when the process exits. Each wake-up handles output first, then OOM, then
//! exits: what a process wrote, and the OOM kill that ended it, are known before its
//! exit is.

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::Duration;

use containerd_shim_protos::protobuf::{Message, MessageField};
use containerd_shim_protos::ttrpc::{Code, Request, Response, Status};

use crate::frame;
use crate::service::{Reply, Shim};

const SERVICES: &[&str] = &["containerd.task.v2.Task", "containerd.task.v3.Task"];

struct Conn {
    stream: UnixStream,
    buf: Vec<u8>,
    token: u64,
}

struct Waiter {
    token: u64,
    stream_id: u32,
    exec_id: String,
}

fn response(status: Option<(Code, String)>, payload: Vec<u8>) -> Vec<u8> {
    let mut st = Status::new();
    if let Some((code, msg)) = status {
        st.code = code.into();
        st.message = msg;
    }
    let mut r = Response::new();
    r.status = MessageField::some(st);
    r.payload = payload;
    r.write_to_bytes().unwrap_or_default()
}

fn pollfd(fd: i32) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}

/// Serve until Shutdown lets the shim go.
pub fn serve(listener: UnixListener, sigchld: OwnedFd, shim: &mut Shim) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let mut sigchld = std::fs::File::from(sigchld);
    let mut conns: Vec<Conn> = Vec::new();
    let mut waiters: Vec<Waiter> = Vec::new();
    let mut next_token = 0u64;
    while !shim.exit {
        let mut fds = vec![pollfd(sigchld.as_raw_fd()), pollfd(listener.as_raw_fd())];
        let oom_fd = shim.oom.as_ref().map(|w| w.efd.as_raw_fd());
        fds.push(pollfd(oom_fd.unwrap_or(-1)));
        fds.extend(conns.iter().map(|c| pollfd(c.stream.as_raw_fd())));
        let interests = shim
            .outputs
            .as_ref()
            .map(|o| o.interests())
            .unwrap_or_default();
        let first_output = fds.len();
        fds.extend(interests.iter().map(|x| libc::pollfd {
            fd: x.fd,
            events: x.events,
            revents: 0,
        }));
        crate::sys::poll(&mut fds, -1)?;

        if let Some(o) = shim.outputs.as_mut() {
            let revents: Vec<i16> = fds[first_output..].iter().map(|p| p.revents).collect();
            o.on_ready(&interests, &revents);
        }
        if fds[2].revents != 0 {
            shim.check_oom();
        }
        if fds[0].revents != 0 {
            let mut b = [0u8; 64];
            while matches!(sigchld.read(&mut b), Ok(n) if n > 0) {}
        }
        // Reap on every wake-up: cheap, and never misses a coalesced SIGCHLD.
        for exec_id in shim.reap() {
            let answer = shim.wait_answer(&exec_id);
            waiters.retain(|w| {
                if w.exec_id != exec_id {
                    return true;
                }
                if let Some(c) = conns.iter_mut().find(|c| c.token == w.token) {
                    let _ = send(&mut c.stream, w.stream_id, response(None, answer.clone()));
                }
                false
            });
        }
        if fds[1].revents != 0 {
            while let Ok((s, _)) = listener.accept() {
                let _ = s.set_nonblocking(false);
                let _ = s.set_write_timeout(Some(Duration::from_secs(10)));
                next_token += 1;
                conns.push(Conn {
                    stream: s,
                    buf: Vec::new(),
                    token: next_token,
                });
            }
        }
        let ready: Vec<bool> = fds[3..first_output]
            .iter()
            .map(|f| f.revents != 0)
            .collect();
        let mut closed = Vec::new();
        for (c, ready) in conns.iter_mut().zip(ready) {
            if !ready {
                continue;
            }
            let mut chunk = [0u8; 16384];
            match c.stream.read(&mut chunk) {
                Ok(0) | Err(_) => {
                    closed.push(c.token);
                    continue;
                }
                Ok(n) => c.buf.extend_from_slice(&chunk[..n]),
            }
            if handle_frames(c, shim, &mut waiters).is_err() {
                closed.push(c.token);
            }
        }
        conns.retain(|c| !closed.contains(&c.token));
        waiters.retain(|w| !closed.contains(&w.token));
    }
    Ok(())
}

fn send(s: &mut UnixStream, sid: u32, body: Vec<u8>) -> io::Result<()> {
    s.write_all(&frame::encode(sid, frame::TYPE_RESPONSE, &body))
}

fn handle_frames(c: &mut Conn, shim: &mut Shim, waiters: &mut Vec<Waiter>) -> io::Result<()> {
    while let Some((sid, ty, end)) = frame::parse(&c.buf)? {
        let payload: Vec<u8> = c.buf[frame::HEADER..end].to_vec();
        c.buf.drain(..end);
        if ty != frame::TYPE_REQUEST {
            continue;
        }
        let req = match Request::parse_from_bytes(&payload) {
            Ok(r) => r,
            Err(e) => {
                send(
                    &mut c.stream,
                    sid,
                    response(Some((Code::INVALID_ARGUMENT, e.to_string())), vec![]),
                )?;
                continue;
            }
        };
        if !SERVICES.contains(&req.service.as_str()) {
            let msg = format!("service {} is not served here", req.service);
            send(
                &mut c.stream,
                sid,
                response(Some((Code::UNIMPLEMENTED, msg)), vec![]),
            )?;
            continue;
        }
        match shim.call(&req.method, &req.payload) {
            Ok(Reply::Now(body)) => send(&mut c.stream, sid, response(None, body))?,
            Ok(Reply::OnExit(exec_id)) => waiters.push(Waiter {
                token: c.token,
                stream_id: sid,
                exec_id,
            }),
            Err(e) => send(&mut c.stream, sid, response(Some((e.code, e.msg)), vec![]))?,
        }
        if shim.exit {
            break;
        }
    }
    Ok(())
}

//! The protocol between the runtime (parent) and the container's init (child), over a
//! SOCK_SEQPACKET socketpair so that each message arrives whole.
//!
//! | step | from    | message         | meaning                                             |
//! |------|---------|-----------------|-----------------------------------------------------|
//! | 1    | parent  | `Proceed(state)`| uid/gid maps are set: the init may build its rootfs |
//! | 2    | parent  | `Proceed`       | the init is in its cgroup (the init waits for this  |
//! |      |         |                 | before cgroup mounts, cgroupns, hooks, or Ready)    |
//! | 3    | child   | `RunHooks`      | mounts are done, pivot_root not yet: run prestart   |
//! |      |         |                 | and createRuntime hooks (only if there are any)     |
//! | 4    | parent  | `Proceed`       | hooks done                                          |
//! | 5    | child   | `Ready`         | set up; init now blocks on the exec FIFO            |
//! | any  | child   | `Failed(msg)`   | set-up failed; init exits                           |
//!
//! End of file from the child at any step means it died; the parent reports that.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};

use crate::error::{Context, Result, RuntimeError};

/// One message of the protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Parent → child: go on to the next step; the first one carries the state JSON that
    /// hooks inside the container receive.
    Proceed(String),
    /// Child → parent: run the runtime-namespace hooks now.
    RunHooks,
    /// Child → parent: the container is created.
    Ready,
    /// Child → parent: set-up failed, with the reason.
    Failed(String),
}

impl Message {
    fn encode(&self) -> Vec<u8> {
        match self {
            Message::Proceed(payload) => {
                let mut out = vec![b'P'];
                out.extend_from_slice(payload.as_bytes());
                out
            }
            Message::RunHooks => vec![b'H'],
            Message::Ready => vec![b'R'],
            Message::Failed(reason) => {
                let mut out = vec![b'F'];
                out.extend_from_slice(reason.as_bytes());
                out
            }
        }
    }

    fn decode(bytes: &[u8]) -> Result<Self> {
        match bytes.split_first() {
            Some((b'P', payload)) => Ok(Message::Proceed(
                String::from_utf8_lossy(payload).into_owned(),
            )),
            Some((b'H', [])) => Ok(Message::RunHooks),
            Some((b'R', [])) => Ok(Message::Ready),
            Some((b'F', reason)) => Ok(Message::Failed(
                String::from_utf8_lossy(reason).into_owned(),
            )),
            _ => Err(RuntimeError::Other(format!("bad sync message {bytes:?}"))),
        }
    }
}

/// One end of the channel.
pub struct Channel {
    fd: OwnedFd,
}

const MAX_MESSAGE: usize = 64 * 1024;

impl Channel {
    /// A connected pair: (parent end, child end).
    pub fn pair() -> Result<(Channel, Channel)> {
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .context("create sync socketpair")?;
        Ok((Channel { fd: a }, Channel { fd: b }))
    }

    /// Send one message.
    pub fn send(&self, message: &Message) -> Result<()> {
        let mut bytes = message.encode();
        bytes.truncate(MAX_MESSAGE);
        // write(2), not send(2): after a seccomp profile is loaded only the most basic
        // calls are sure to be allowed.
        nix::unistd::write(&self.fd, &bytes).context("send sync message")?;
        Ok(())
    }

    /// Receive one message; None when the other end is closed.
    pub fn recv(&self) -> Result<Option<Message>> {
        let mut buf = vec![0u8; MAX_MESSAGE];
        loop {
            match nix::unistd::read(self.fd.as_raw_fd(), &mut buf) {
                Ok(0) => return Ok(None),
                Ok(n) => return Message::decode(&buf[..n]).map(Some),
                Err(nix::Error::EINTR) => continue,
                Err(e) => return Err(e).context("receive sync message"),
            }
        }
    }

    /// The underlying descriptor.
    pub fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_eof_is_none() {
        let (parent, child) = Channel::pair().unwrap();
        for message in [
            Message::Proceed(String::new()),
            Message::Proceed("{}".into()),
            Message::RunHooks,
            Message::Ready,
            Message::Failed("x: y".into()),
        ] {
            child.send(&message).unwrap();
            assert_eq!(parent.recv().unwrap(), Some(message));
        }
        drop(child);
        assert_eq!(parent.recv().unwrap(), None);
    }
}

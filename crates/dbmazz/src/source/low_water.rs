//! The replication socket's receive low-water mark (`SO_RCVLOWAT`, TCP on Linux and BSDs).
//!
//! The walsender flushes after every message; while the client's receive window is open each
//! flush becomes its own TCP segment, and on a local connection the sender's system call also
//! pays for delivering it. A low-water mark lets data pile up in the socket before dbmazz is
//! woken, so it reads (and wakes) once per large chunk instead of once per few messages — the
//! walsender's CPU, which bounds the drain rate, drops with it (docs/benchmarks.md).

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

/// A handle on the socket's low-water mark: a duplicate of the descriptor (socket options
/// belong to the socket, so setting them through the duplicate affects the stream's socket).
#[derive(Debug)]
pub(crate) struct LowWater {
    socket: OwnedFd,
    bytes: usize,
    lowered: bool,
}

impl LowWater {
    /// Sets the mark to `bytes` on `socket` (a duplicate of the stream's descriptor).
    pub(crate) fn set(socket: OwnedFd, bytes: usize) -> io::Result<LowWater> {
        let low_water = LowWater {
            socket,
            bytes,
            lowered: false,
        };
        low_water.apply(bytes)?;
        Ok(low_water)
    }

    /// Drops the mark to one byte: the kernel wakes the reader if anything is queued. For when
    /// waiting longer for a full chunk would only add latency.
    pub(crate) fn lower(&mut self) -> io::Result<()> {
        if !self.lowered {
            self.apply(1)?;
            self.lowered = true;
        }
        Ok(())
    }

    /// Back to the full mark after [`LowWater::lower`].
    pub(crate) fn raise(&mut self) -> io::Result<()> {
        if self.lowered {
            self.apply(self.bytes)?;
            self.lowered = false;
        }
        Ok(())
    }

    fn apply(&self, bytes: usize) -> io::Result<()> {
        set_rcvlowat(
            self.socket.as_fd(),
            i32::try_from(bytes).unwrap_or(i32::MAX),
        )
    }
}

/// `setsockopt(SOL_SOCKET, SO_RCVLOWAT)`: neither socket2, nix nor rustix wraps this option.
#[allow(unsafe_code)]
fn set_rcvlowat(socket: BorrowedFd<'_>, bytes: libc::c_int) -> io::Result<()> {
    // SAFETY: the descriptor is open for the borrow's lifetime, and the option value is a
    // live c_int whose exact size is passed.
    let result = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVLOWAT,
            std::ptr::from_ref(&bytes).cast::<libc::c_void>(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(unsafe_code)]
    fn rcvlowat(socket: &impl AsFd) -> libc::c_int {
        let mut value: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: as in `set_rcvlowat`, with `value`/`len` live and sized.
        let result = unsafe {
            libc::getsockopt(
                socket.as_fd().as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVLOWAT,
                std::ptr::from_mut(&mut value).cast::<libc::c_void>(),
                &mut len,
            )
        };
        assert_eq!(result, 0, "{}", io::Error::last_os_error());
        value
    }

    #[test]
    fn lowering_and_raising_the_mark_reaches_the_socket() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let mut low_water =
            LowWater::set(client.as_fd().try_clone_to_owned().unwrap(), 128 * 1024).unwrap();
        assert_eq!(rcvlowat(&client), 128 * 1024);
        low_water.lower().unwrap();
        assert_eq!(rcvlowat(&client), 1);
        low_water.raise().unwrap();
        assert_eq!(rcvlowat(&client), 128 * 1024);
    }
}

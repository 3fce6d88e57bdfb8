//! What a [`WebSocket`](super::WebSocket) and its [`Sender`](super::Sender)s
//! need of a stream, for TCP and Unix sockets; and what TCP tells of bytes
//! the peer has not acknowledged.

use std::io::{self, Read, Write};
#[cfg(any(target_os = "linux", test))]
use std::net::SocketAddr;
use std::net::{Shutdown, TcpStream};
#[cfg(unix)]
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// A stream that one thread can read while others write to it and shut it
/// down; what [`WebSocket::sender`](crate::WebSocket::sender) needs.
pub trait DuplexStream: Read + Write + Send + Sync + 'static {
    /// Another handle to the same connection.
    fn try_clone(&self) -> io::Result<Self>
    where
        Self: Sized;
    /// Shuts both directions down, so that a blocked reader wakes up.
    fn shutdown(&self) -> io::Result<()>;
    /// How long one write may block. A [`Sender`](crate::Sender) reads it once, when
    /// created, and makes it the bound on each whole frame, however many
    /// writes that takes. Default: `None`, no bound.
    fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(None)
    }
    /// Sets how long one write may block; a [`Sender`](crate::Sender) shortens it to
    /// what is left of a frame's time. Default: does nothing.
    fn set_write_timeout(&self, _timeout: Option<Duration>) -> io::Result<()> {
        Ok(())
    }
    /// Sets how long one read may block; a [`Sender`](crate::Sender) that
    /// sends our close shortens it, so that a server's reader notices a
    /// peer that does not answer in time. Default: does nothing.
    fn set_read_timeout(&self, _timeout: Option<Duration>) -> io::Result<()> {
        Ok(())
    }
    /// Bytes written that the peer has not acknowledged yet, where the
    /// platform tells (TCP on Linux). Keepalive asks it at a late pong, to
    /// tell a peer that is slowly taking what was sent before the ping from
    /// one that is gone. Default: `None`, unknown.
    fn unacked(&self) -> Option<u64> {
        None
    }
}

impl DuplexStream for TcpStream {
    fn try_clone(&self) -> io::Result<Self> {
        TcpStream::try_clone(self)
    }
    fn shutdown(&self) -> io::Result<()> {
        TcpStream::shutdown(self, Shutdown::Both)
    }
    fn write_timeout(&self) -> io::Result<Option<Duration>> {
        TcpStream::write_timeout(self)
    }
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_write_timeout(self, timeout)
    }
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }
    fn unacked(&self) -> Option<u64> {
        tcp_unacked(self)
    }
}

#[cfg(unix)]
impl DuplexStream for UnixStream {
    fn try_clone(&self) -> io::Result<Self> {
        UnixStream::try_clone(self)
    }
    fn shutdown(&self) -> io::Result<()> {
        UnixStream::shutdown(self, Shutdown::Both)
    }
    fn write_timeout(&self) -> io::Result<Option<Duration>> {
        UnixStream::write_timeout(self)
    }
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        UnixStream::set_write_timeout(self, timeout)
    }
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        UnixStream::set_read_timeout(self, timeout)
    }
}

/// Bytes written to `stream` that the peer's TCP has not acknowledged yet:
/// the `tx_queue` of its line in `/proc/net/tcp` (or `tcp6`), found by its
/// two addresses. Linux only; `None` elsewhere or if it cannot be read.
/// Read only at a late keepalive pong, so its cost (a line per socket in
/// the network namespace) does not matter.
pub(crate) fn tcp_unacked(stream: &TcpStream) -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        use std::io::BufRead;
        let (local, peer) = (stream.local_addr().ok()?, stream.peer_addr().ok()?);
        let table = match local {
            SocketAddr::V4(_) => "/proc/net/tcp",
            SocketAddr::V6(_) => "/proc/net/tcp6",
        };
        let mut file = io::BufReader::new(std::fs::File::open(table).ok()?);
        let (local, peer) = (ProcAddr::of(local), ProcAddr::of(peer));
        let mut line = Vec::new();
        while file.read_until(b'\n', &mut line).ok()? > 0 {
            if let Some(queued) = tx_queue(&line, local.text(), peer.text()) {
                return Some(queued);
            }
            line.clear();
        }
        None
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = stream;
        None
    }
}

/// An address as `/proc/net/tcp*` writes it: each 32-bit word of the IP in
/// host byte order, in hex, then `:` and the port.
#[cfg(any(target_os = "linux", test))]
struct ProcAddr {
    text: [u8; 37],
    len: usize,
}

#[cfg(any(target_os = "linux", test))]
impl ProcAddr {
    fn of(addr: SocketAddr) -> ProcAddr {
        let mut out = ProcAddr {
            text: [0; 37],
            len: 0,
        };
        let v6;
        let ip: &[u8] = match addr {
            SocketAddr::V4(a) => &a.ip().octets(),
            SocketAddr::V6(a) => {
                v6 = a.ip().octets();
                &v6
            }
        };
        for w in ip.chunks_exact(4) {
            out.push_hex(u32::from_ne_bytes([w[0], w[1], w[2], w[3]]), 8);
        }
        out.text[out.len] = b':';
        out.len += 1;
        out.push_hex(u32::from(addr.port()), 4);
        out
    }

    /// `value`'s low `digits` hex digits, upper case.
    fn push_hex(&mut self, value: u32, digits: u32) {
        for i in (0..digits).rev() {
            self.text[self.len] = b"0123456789ABCDEF"[(value >> (4 * i) & 15) as usize];
            self.len += 1;
        }
    }

    fn text(&self) -> &[u8] {
        &self.text[..self.len]
    }
}

/// The `tx_queue` of a `/proc/net/tcp*` line, if it is the socket from
/// `local` to `peer`: `sl local rem st tx_queue:rx_queue ...`.
#[cfg(any(target_os = "linux", test))]
fn tx_queue(line: &[u8], local: &[u8], peer: &[u8]) -> Option<u64> {
    let mut fields = line
        .split(u8::is_ascii_whitespace)
        .filter(|f| !f.is_empty())
        .skip(1);
    if fields.next()? != local || fields.next()? != peer {
        return None;
    }
    let queues = fields.nth(1)?;
    let tx = queues.split(|&b| b == b':').next()?;
    if tx.is_empty() || tx.len() > 16 {
        return None;
    }
    tx.iter().try_fold(0u64, |n, &b| {
        Some(n << 4 | u64::from(char::from(b).to_digit(16)?))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_net_tcp_lines_are_matched_by_both_addresses() {
        let local: SocketAddr = "127.0.0.1:8989".parse().unwrap();
        let peer: SocketAddr = "10.77.0.2:51000".parse().unwrap();
        let (l, p) = (ProcAddr::of(local), ProcAddr::of(peer));
        let (l, p) = (l.text(), p.text());
        if cfg!(target_endian = "little") {
            assert_eq!(l, b"0100007F:231D");
        }
        let line = [
            b"   3: ",
            l,
            b" ",
            p,
            b" 01 0003A2F0:00000000 01:00000014 00000000     0        0 4242 2 0 20 4 30 10 -1\n",
        ]
        .concat();
        assert_eq!(tx_queue(&line, l, p), Some(0x3A2F0));
        assert_eq!(tx_queue(&line[..line.len() - 60], l, p), Some(0x3A2F0));
        assert_eq!(tx_queue(&line[..36], l, p), None, "cut before the queues");
        assert_eq!(
            tx_queue(&line, p, l),
            None,
            "the other direction is another socket"
        );
        let v6: SocketAddr = "[::ffff:127.0.0.1]:80".parse().unwrap();
        if cfg!(target_endian = "little") {
            assert_eq!(
                ProcAddr::of(v6).text(),
                b"0000000000000000FFFF00000100007F:0050"
            );
        }
    }

    /// A peer that does not read: its window fills, and what we write past
    /// it stays unacknowledged.
    #[test]
    #[cfg(target_os = "linux")]
    #[cfg_attr(miri, ignore = "sockets")]
    fn unacked_bytes_grow_when_the_peer_stops_reading() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        assert_eq!(tcp_unacked(&server), Some(0));
        server.set_nonblocking(true).unwrap();
        let chunk = vec![0u8; 64 << 10];
        let mut written = 0;
        loop {
            match (&server).write(&chunk) {
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
        }
        // Loopback acknowledges at once what fits the peer's window; the
        // rest waits.
        let unacked = tcp_unacked(&server).expect("our socket is listed");
        assert!(
            unacked > 0 && unacked <= written as u64,
            "{unacked} of {written}"
        );
        drop(client);
    }
}

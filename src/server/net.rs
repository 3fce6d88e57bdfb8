//! The server's connections and listeners, TCP or Unix, behind one type each.
//!
//! A [`Stream`] is a shared handle: one thread reads while others write and
//! the server can shut it down, all without duplicating the file descriptor
//! (ten thousand clients stay ten thousand descriptors).

use crate::blocking::{tcp_unacked, DuplexStream};
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
#[cfg(unix)]
use std::os::fd::{AsRawFd, RawFd};
#[cfg(unix)]
use std::os::unix::net::{UnixListener, UnixStream};
#[cfg(unix)]
use std::path::Path;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Where a connection or listener is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Addr {
    /// A TCP address.
    Tcp(SocketAddr),
    /// A Unix socket path; `None` for the usual unnamed client end.
    Unix(Option<PathBuf>),
}

impl std::fmt::Display for Addr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Addr::Tcp(a) => write!(f, "{a}"),
            Addr::Unix(Some(p)) => write!(f, "unix:{}", p.display()),
            Addr::Unix(None) => f.write_str("unix:(unnamed)"),
        }
    }
}

#[derive(Debug)]
enum Socket {
    Tcp(TcpStream),
    #[cfg(unix)]
    Unix(UnixStream),
}

/// A server-side connection over TCP or a Unix socket.
///
/// Clones are handles to the same connection. Reading or writing one
/// directly, under a WebSocket, breaks the framing: use it for addresses,
/// timeouts and shutdown.
#[derive(Clone, Debug)]
pub struct Stream {
    socket: Arc<Socket>,
    /// Read at accept: once the peer is gone the socket no longer knows it.
    peer: Arc<Addr>,
}

/// Calls `$op` on whichever socket it is, as `&mut &Socket` (`Read` and
/// `Write` are implemented for shared references to both socket types).
macro_rules! on_socket {
    ($self:ident, $s:ident => $op:expr) => {
        match &*$self.socket {
            Socket::Tcp(t) => {
                let $s = &mut &*t;
                $op
            }
            #[cfg(unix)]
            Socket::Unix(u) => {
                let $s = &mut &*u;
                $op
            }
        }
    };
}

impl Stream {
    /// The peer's address, as it was when the connection was accepted.
    pub fn peer_addr(&self) -> &Addr {
        &self.peer
    }

    /// Whether this is a Unix socket connection (local only, so no Host or Origin checks apply).
    pub fn is_unix(&self) -> bool {
        match &*self.socket {
            Socket::Tcp(_) => false,
            #[cfg(unix)]
            Socket::Unix(_) => true,
        }
    }

    /// Sets how long a read may block.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        on_socket!(self, s => s.set_read_timeout(timeout))
    }

    /// Sets how long a write may block.
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        on_socket!(self, s => s.set_write_timeout(timeout))
    }

    /// Shuts down one or both directions.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        on_socket!(self, s => s.shutdown(how))
    }

    #[cfg(all(target_os = "linux", feature = "event-loop"))] // the event loop
    pub(crate) fn set_nonblocking(&self) -> io::Result<()> {
        on_socket!(self, s => s.set_nonblocking(true))
    }

    pub(crate) fn set_nodelay(&self) -> io::Result<()> {
        match &*self.socket {
            Socket::Tcp(t) => t.set_nodelay(true),
            #[cfg(unix)]
            Socket::Unix(_) => Ok(()),
        }
    }
}

#[cfg(unix)]
impl AsRawFd for Stream {
    fn as_raw_fd(&self) -> RawFd {
        on_socket!(self, s => s.as_raw_fd())
    }
}

impl From<TcpStream> for Stream {
    fn from(s: TcpStream) -> Self {
        let peer = match s.peer_addr() {
            Ok(a) => Addr::Tcp(a),
            Err(_) => Addr::Unix(None),
        };
        Stream {
            socket: Arc::new(Socket::Tcp(s)),
            peer: Arc::new(peer),
        }
    }
}

#[cfg(windows)]
impl std::os::windows::io::AsRawSocket for Stream {
    fn as_raw_socket(&self) -> std::os::windows::io::RawSocket {
        on_socket!(self, s => s.as_raw_socket())
    }
}

#[cfg(unix)]
impl From<UnixStream> for Stream {
    fn from(s: UnixStream) -> Self {
        let path = s
            .peer_addr()
            .ok()
            .and_then(|a| a.as_pathname().map(Path::to_path_buf));
        Stream {
            socket: Arc::new(Socket::Unix(s)),
            peer: Arc::new(Addr::Unix(path)),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }
}

/// Shared handles read and write too, as `&TcpStream` does.
impl Read for &Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        on_socket!(self, s => s.read(buf))
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        (&*self).write_vectored(bufs)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for &Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        on_socket!(self, s => s.write(buf))
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        on_socket!(self, s => s.write_vectored(bufs))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl DuplexStream for Stream {
    /// Another handle to the same socket; no new file descriptor.
    fn try_clone(&self) -> io::Result<Self> {
        Ok(self.clone())
    }
    fn shutdown(&self) -> io::Result<()> {
        Stream::shutdown(self, Shutdown::Both)
    }
    fn write_timeout(&self) -> io::Result<Option<Duration>> {
        on_socket!(self, s => s.write_timeout())
    }
    fn unacked(&self) -> Option<u64> {
        match &*self.socket {
            Socket::Tcp(t) => tcp_unacked(t),
            #[cfg(unix)]
            Socket::Unix(_) => None,
        }
    }
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        Stream::set_write_timeout(self, timeout)
    }
}

/// A TCP or Unix listener.
#[derive(Debug)]
pub(crate) enum Listener {
    Tcp(TcpListener),
    #[cfg(unix)]
    Unix(UnixListener, PathBuf),
}

#[cfg(unix)]
impl AsRawFd for Listener {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Listener::Tcp(l) => l.as_raw_fd(),
            Listener::Unix(l, _) => l.as_raw_fd(),
        }
    }
}

impl Listener {
    pub(crate) fn accept(&self) -> io::Result<Stream> {
        Ok(match self {
            Listener::Tcp(l) => l.accept()?.0.into(),
            #[cfg(unix)]
            Listener::Unix(l, _) => l.accept()?.0.into(),
        })
    }

    #[cfg(all(target_os = "linux", feature = "event-loop"))] // the event loop
    pub(crate) fn set_nonblocking(&self) -> io::Result<()> {
        match self {
            Listener::Tcp(l) => l.set_nonblocking(true),
            #[cfg(unix)]
            Listener::Unix(l, _) => l.set_nonblocking(true),
        }
    }

    pub(crate) fn local_addr(&self) -> io::Result<Addr> {
        Ok(match self {
            Listener::Tcp(l) => Addr::Tcp(l.local_addr()?),
            #[cfg(unix)]
            Listener::Unix(_, path) => Addr::Unix(Some(path.clone())),
        })
    }
}

/// Connects to a listener's own address, to wake a thread blocked in `accept`.
pub(crate) fn wake(addr: &Addr) {
    match addr {
        Addr::Tcp(a) => {
            let mut a = *a;
            if a.ip().is_unspecified() {
                let loopback: std::net::IpAddr = match a {
                    SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                    SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
                };
                a.set_ip(loopback);
            }
            let _ = TcpStream::connect_timeout(&a, Duration::from_secs(1));
        }
        #[cfg(unix)]
        Addr::Unix(Some(path)) => {
            let _ = UnixStream::connect(path);
        }
        Addr::Unix(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_display_as_they_are_written() {
        let tcp: SocketAddr = "127.0.0.1:8989".parse().unwrap();
        assert_eq!(Addr::Tcp(tcp).to_string(), "127.0.0.1:8989");
        let path = PathBuf::from("/run/io.sock");
        assert_eq!(Addr::Unix(Some(path)).to_string(), "unix:/run/io.sock");
        assert_eq!(Addr::Unix(None).to_string(), "unix:(unnamed)");
    }

    #[test]
    #[cfg_attr(miri, ignore = "sockets")]
    fn shared_handles_write_to_the_same_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let stream = Stream::from(listener.accept().unwrap().0);
        assert_eq!(stream.peer_addr(), &Addr::Tcp(client.local_addr().unwrap()));
        let (mut a, mut b) = (&stream, &stream.clone());
        a.write_all(b"one ").unwrap();
        assert_eq!(b.write_vectored(&[IoSlice::new(b"two")]).unwrap(), 3);
        a.flush().unwrap();
        stream.shutdown(Shutdown::Write).unwrap();
        let mut got = String::new();
        client.read_to_string(&mut got).unwrap();
        assert_eq!(got, "one two");
    }
}

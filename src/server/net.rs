//! The server's connections and listeners, TCP or Unix, behind one type each.
//!
//! A [`Stream`] is a shared handle: one thread reads while others write and
//! the server can shut it down, all without duplicating the file descriptor
//! (ten thousand clients stay ten thousand descriptors).
//!
//! A TCP stream can carry a stream that [`Server::tls`](super::Server::tls)
//! wrapped around it: then reads and writes go through the wrapper (one at
//! a time, under a lock), and addresses, timeouts and shutdown through the
//! socket.

use crate::blocking::io::is_timeout;
use crate::blocking::{tcp_unacked, DuplexStream};
use std::fmt;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
#[cfg(unix)]
use std::os::fd::{AsRawFd, RawFd};
#[cfg(unix)]
use std::os::unix::net::{UnixListener, UnixStream};
#[cfg(unix)]
use std::path::Path;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

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
    /// The socket and its peer, in one allocation.
    accepted: Arc<Accepted>,
    /// The stream the TLS hook made of the socket, if any: all reads and
    /// writes go through it.
    tls: Option<Arc<dyn Through>>,
}

/// A socket as it was accepted.
#[derive(Debug)]
struct Accepted {
    socket: Socket,
    /// Read at accept: once the peer is gone the socket no longer knows it.
    peer: Addr,
}

/// What a TLS hook returns: any stream over the socket.
pub(crate) trait ReadWrite: Read + Write + Send {}

impl<T: Read + Write + Send> ReadWrite for T {}

/// What a [`Stream`] reads and writes through when the TLS hook wrapped
/// it: a trait object, so that a server without the hook has none of its code.
trait Through: fmt::Debug + Send + Sync {
    /// One read, as a blocking read with the timeout last set would be.
    fn read(&self, stream: &Stream, buf: &mut [u8]) -> io::Result<usize>;
    fn write(&self, buf: &[u8]) -> io::Result<usize>;
    fn write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize>;
    fn flush(&self) -> io::Result<()>;
    /// The timeout each read applies (the socket's own is the wrapper's).
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
}

/// A stream wrapped around a TCP socket (TLS), shared by the connection's
/// reader and its senders.
///
/// A TLS stream reads and writes through one state, so both take its lock.
/// The reader must not sleep holding it, or a [`Sender`](crate::Sender)
/// would wait for the peer to speak: it waits for the socket to become
/// readable without the lock (a one-byte `peek`), then reads under the
/// lock with a short socket timeout ([`LOCKED_READ`]), and goes back to
/// waiting if only part of a record had come. A TLS library keeps what it
/// read across such a timeout, as it must for nonblocking sockets.
struct Wrapped {
    io: Mutex<Box<dyn ReadWrite>>,
    /// The read timeout the caller set, in nanoseconds; `u64::MAX`: none.
    read_timeout: AtomicU64,
    /// The last read filled the caller's buffer: the wrapper may hold more
    /// than the socket shows, so the next read does not wait for the socket.
    more: AtomicBool,
}

impl fmt::Debug for Wrapped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Wrapped")
    }
}

/// The longest the reader holds a wrapped stream's lock waiting for the rest
/// of a record: what a sender may wait behind a peer that sends a record
/// slowly. Past it, the reader waits for the rest without the lock.
const LOCKED_READ: Duration = Duration::from_millis(20);

impl Wrapped {
    fn lock(&self) -> MutexGuard<'_, Box<dyn ReadWrite>> {
        // A panic in the wrapper mid-call poisons the lock; what it left is
        // the wrapper's to judge, and its next call reports it.
        self.io.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn read_timeout(&self) -> Option<Duration> {
        match self.read_timeout.load(Ordering::Relaxed) {
            u64::MAX => None,
            nanos => Some(Duration::from_nanos(nanos)),
        }
    }
}

impl Through for Wrapped {
    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        self.lock().write(buf)
    }

    fn write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.lock().write_vectored(bufs)
    }

    fn flush(&self) -> io::Result<()> {
        self.lock().flush()
    }

    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        if timeout == Some(Duration::ZERO) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot set a 0 duration timeout",
            ));
        }
        let nanos = timeout.map_or(u64::MAX, |t| t.as_nanos().min(u64::MAX as u128 - 1) as u64);
        self.read_timeout.store(nanos, Ordering::Relaxed);
        Ok(())
    }

    /// The socket is waited on without the lock (see [`Wrapped`]).
    fn read(&self, stream: &Stream, buf: &mut [u8]) -> io::Result<usize> {
        let Socket::Tcp(tcp) = &stream.accepted.socket else {
            return Err(io::ErrorKind::Unsupported.into()); // only TCP is wrapped
        };
        let timeout = self.read_timeout();
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            if !self.more.swap(false, Ordering::Relaxed) {
                let left = match deadline {
                    None => None,
                    Some(d) => match d.saturating_duration_since(Instant::now()) {
                        left if left.is_zero() => return Err(io::ErrorKind::TimedOut.into()),
                        left => Some(left),
                    },
                };
                tcp.set_read_timeout(left)?;
                match tcp.peek(&mut [0]) {
                    Ok(_) => {} // bytes, or the end: either way the wrapper reads it
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            }
            tcp.set_read_timeout(Some(LOCKED_READ))?;
            let read = self.lock().read(buf);
            match read {
                Ok(n) => {
                    self.more.store(n > 0 && n == buf.len(), Ordering::Relaxed);
                    return Ok(n);
                }
                // Part of a record: wait for the rest without the lock.
                Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Calls `$op` on whichever socket it is, as `&mut &Socket` (`Read` and
/// `Write` are implemented for shared references to both socket types).
macro_rules! on_socket {
    ($self:ident, $s:ident => $op:expr) => {
        match &$self.accepted.socket {
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
        &self.accepted.peer
    }

    /// Whether this is a Unix socket connection (local only, so no Host or Origin checks apply).
    pub fn is_unix(&self) -> bool {
        match &self.accepted.socket {
            Socket::Tcp(_) => false,
            #[cfg(unix)]
            Socket::Unix(_) => true,
        }
    }

    /// Sets how long a read may block.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        match &self.tls {
            Some(tls) => tls.set_read_timeout(timeout),
            None => on_socket!(self, s => s.set_read_timeout(timeout)),
        }
    }

    /// Whether this is a TCP stream the TLS hook wrapped.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The same socket, its reads and writes through `wrapper` from now on
    /// (TCP only: [`Stream::tcp_handle`] gives the hook its socket).
    pub(crate) fn wrapped(&self, wrapper: Box<dyn ReadWrite>) -> Stream {
        Stream {
            accepted: self.accepted.clone(),
            tls: Some(Arc::new(Wrapped {
                io: Mutex::new(wrapper),
                read_timeout: AtomicU64::new(u64::MAX),
                more: AtomicBool::new(false),
            })),
        }
    }

    /// Another handle to the TCP socket, for a TLS hook to own.
    pub(crate) fn tcp_handle(&self) -> Option<io::Result<TcpStream>> {
        match &self.accepted.socket {
            Socket::Tcp(t) => Some(t.try_clone()),
            #[cfg(unix)]
            Socket::Unix(_) => None,
        }
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
        match &self.accepted.socket {
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
            accepted: Arc::new(Accepted {
                socket: Socket::Tcp(s),
                peer,
            }),
            tls: None,
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
            accepted: Arc::new(Accepted {
                socket: Socket::Unix(s),
                peer: Addr::Unix(path),
            }),
            tls: None,
        }
    }
}

impl Read for Stream {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }
}

/// Shared handles read and write too, as `&TcpStream` does.
impl Read for &Stream {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(tls) = &self.tls {
            return tls.read(self, buf);
        }
        on_socket!(self, s => s.read(buf))
    }
}

impl Write for Stream {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }
    #[inline]
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        (&*self).write_vectored(bufs)
    }
    #[inline]
    fn flush(&mut self) -> io::Result<()> {
        (&*self).flush()
    }
}

impl Write for &Stream {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &self.tls {
            Some(tls) => tls.write(buf),
            None => on_socket!(self, s => s.write(buf)),
        }
    }
    #[inline]
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match &self.tls {
            Some(tls) => tls.write_vectored(bufs),
            None => on_socket!(self, s => s.write_vectored(bufs)),
        }
    }
    /// A wrapper may buffer what it was given (TLS records): this sends it.
    #[inline]
    fn flush(&mut self) -> io::Result<()> {
        match &self.tls {
            Some(tls) => tls.flush(),
            None => Ok(()),
        }
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
        match &self.accepted.socket {
            Socket::Tcp(t) => tcp_unacked(t),
            #[cfg(unix)]
            Socket::Unix(_) => None,
        }
    }
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        Stream::set_write_timeout(self, timeout)
    }
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        Stream::set_read_timeout(self, timeout)
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

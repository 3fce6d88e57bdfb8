//! Peers that stop reading, or read a trickle, over real loopback sockets:
//! the write timeout bounds a whole frame, a frame cut short is never
//! followed by another, a stuck hub member is ended at once, and a peer that
//! is still taking our bytes is not closed by keepalive.
//!
//! Loopback buffers hold megabytes, so the messages here are tens of MiB:
//! enough that a write must wait for the peer.

mod common;

use common::{header, upgraded, xor, MASK, OP_BINARY};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};
use stdws::client::{self, ClientConfig};
use stdws::hub::Hub;
use stdws::{Addr, Config, Error, Keepalive, Limits, Message, Running, Server};

const SECOND: Duration = Duration::from_secs(1);
const BIG: usize = 40 << 20;

/// The two ways a server runs.
#[derive(Clone, Copy, Debug)]
enum Mode {
    Threaded,
    #[cfg(all(target_os = "linux", feature = "event-loop"))]
    EventLoop,
}

const MODES: &[Mode] = &[
    Mode::Threaded,
    #[cfg(all(target_os = "linux", feature = "event-loop"))]
    Mode::EventLoop,
];

fn tcp_addr(running: &Running) -> SocketAddr {
    match running.addr() {
        Addr::Tcp(addr) => *addr,
        other => panic!("not TCP: {other:?}"),
    }
}

/// An echo server in `mode` whose errors arrive on the returned channel, with
/// the time each was reported.
fn echo_server(
    mode: Mode,
    config: Config,
) -> (Running, SocketAddr, mpsc::Receiver<(Instant, String)>) {
    let (tx, errors) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let server = Server::bind("127.0.0.1:0")
        .unwrap()
        .config(Config {
            shutdown_timeout: Duration::from_millis(300),
            ..config
        })
        .on_error(move |_, e| {
            let _ = tx.lock().unwrap().send((Instant::now(), e.to_string()));
        });
    let running = match mode {
        Mode::Threaded => server.spawn(|mut ws| {
            let tx = ws.sender()?;
            while let Some(msg) = ws.recv_ref()? {
                tx.send_ref(msg)?;
            }
            Ok(())
        }),
        #[cfg(all(target_os = "linux", feature = "event-loop"))]
        Mode::EventLoop => {
            server.spawn_event_loop(|_, tx| move |msg: stdws::MessageRef<'_>| tx.send_ref(msg))
        }
    }
    .unwrap();
    let addr = tcp_addr(&running);
    (running, addr, errors)
}

/// Everything until the end of the stream (a reset counts as its end).
fn read_to_end(s: &mut TcpStream, out: &mut Vec<u8>) {
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return,
            Err(e) => panic!("reading to the end: {e} after {} bytes", out.len()),
        }
    }
}

/// A payload no 4-byte close frame can hide in: every byte depends on its place.
fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i % 251) as u8 ^ (i >> 16) as u8)
        .collect()
}

#[test]
fn a_peer_that_stops_reading_is_dropped_within_the_write_timeout_with_no_frame_inside_a_frame() {
    for &mode in MODES {
        let write_timeout = SECOND;
        // Threaded: the whole frame must go within the write timeout (the
        // old code gave each write call a fresh one: three in all). The
        // event loop drops a client whose backlog has not moved for the
        // write timeout, and checks once per timeout period. Both bounds
        // leave the server time to read the message (slow under qemu).
        let limit = match mode {
            Mode::Threaded => write_timeout * 5 / 2,
            #[cfg(all(target_os = "linux", feature = "event-loop"))]
            Mode::EventLoop => write_timeout * 7 / 2,
        };
        let (server, addr, errors) = echo_server(
            mode,
            Config {
                write_timeout: Some(write_timeout),
                keepalive: None,
                limits: Limits {
                    max_message_size: 64 << 20,
                    max_frame_size: 64 << 20,
                    ..Limits::default()
                },
                ..Config::default()
            },
        );
        let mut s = upgraded(addr);
        let payload = pattern(BIG);
        let mut frame = header(0x80 | OP_BINARY, Some(MASK), BIG as u64);
        frame.extend_from_slice(&xor(&payload, MASK));
        s.write_all(&frame).unwrap();
        let sent = Instant::now();
        // Not reading at all until the server gives up, then everything.
        let (at, error) = errors
            .recv_timeout(10 * SECOND)
            .unwrap_or_else(|_| panic!("{mode:?}: no error reported"));
        let mut got = Vec::new();
        read_to_end(&mut s, &mut got);
        let took = at.duration_since(sent);
        assert!(
            took < limit,
            "{mode:?}: dropped {took:?} after the peer stopped reading"
        );
        assert!(
            error.contains("write timeout") || error.contains("stopped reading"),
            "{mode:?}: {error}"
        );
        // The echo, cut short, then the end: nothing written after it.
        let echo_head = header(0x80 | OP_BINARY, None, BIG as u64);
        assert!(
            got.len() < echo_head.len() + BIG,
            "{mode:?}: the whole echo arrived"
        );
        assert_eq!(&got[..echo_head.len()], &echo_head[..], "{mode:?}");
        let body = &got[echo_head.len()..];
        if let Some(at) = body.iter().zip(&payload).position(|(a, b)| a != b) {
            panic!(
                "{mode:?}: byte {at} of {} is not the echo: {:02x?}",
                body.len(),
                &body[at..body.len().min(at + 8)]
            );
        }
        server.shutdown();
    }
}

#[test]
#[cfg_attr(
    windows,
    ignore = "Windows does not wake a thread blocked in send on shutdown(): the member ends at the write timeout"
)]
fn a_hub_member_stuck_mid_frame_is_shut_down_as_soon_as_its_queue_overflows() {
    let hub = Hub::with_limits(4, 4 << 20);
    let members = hub.clone();
    // A write timeout far longer than the test: only the hub can end it.
    let server = Server::bind("127.0.0.1:0")
        .unwrap()
        .config(Config {
            write_timeout: Some(60 * SECOND),
            keepalive: None,
            shutdown_timeout: Duration::from_millis(300),
            ..Config::default()
        })
        .spawn(move |mut ws| {
            let _member = members.join(ws.sender()?)?;
            while ws.recv()?.is_some() {}
            Ok(())
        })
        .unwrap();
    let addr = tcp_addr(&server);
    let mut slow = upgraded(addr); // never reads until the end
    let deadline = Instant::now() + 5 * SECOND;
    while hub.is_empty() {
        assert!(Instant::now() < deadline, "never joined");
        thread::sleep(Duration::from_millis(5));
    }
    let chunk = Message::Binary(pattern(1 << 20));
    let mut sent = 0;
    while hub.broadcast(chunk.clone()) == 1 {
        sent += 1;
        assert!(sent < 500, "the member was never dropped");
        thread::sleep(Duration::from_millis(2));
    }
    let overflowed = Instant::now();
    let handle = server.handle();
    while handle.connections() > 0 {
        assert!(
            overflowed.elapsed() < 2 * SECOND,
            "the stuck member's connection is still open after {:?}",
            overflowed.elapsed()
        );
        thread::sleep(Duration::from_millis(5));
    }
    // What it gets: whole frames, the last maybe cut short, then the end.
    let mut got = Vec::new();
    read_to_end(&mut slow, &mut got);
    let mut rest = &got[..];
    while !rest.is_empty() {
        let head = header(0x80 | OP_BINARY, None, 1 << 20);
        let whole = head.len() + (1 << 20);
        if rest[0] == 0x88 {
            panic!(
                "a close frame after {} bytes: the writer was mid-frame",
                got.len() - rest.len()
            );
        }
        assert_eq!(
            &rest[..head.len().min(rest.len())],
            &head[..head.len().min(rest.len())]
        );
        if rest.len() < whole {
            let body = &rest[head.len().min(rest.len())..];
            assert_eq!(
                body,
                &chunk.as_bytes()[..body.len()],
                "the cut frame is the broadcast"
            );
            break;
        }
        assert_eq!(&rest[head.len()..whole], chunk.as_bytes());
        rest = &rest[whole..];
    }
    server.shutdown();
}

/// Reads at most `chunk` bytes per call, each after a pause: a slow link.
struct Trickle {
    stream: TcpStream,
    chunk: usize,
    pause: Duration,
}

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        thread::sleep(self.pause);
        let n = buf.len().min(self.chunk);
        self.stream.read(&mut buf[..n])
    }
}

impl Write for Trickle {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

#[test]
#[cfg_attr(
    not(target_os = "linux"),
    ignore = "only Linux tells the server what the peer has not acknowledged (/proc/net/tcp): \
              elsewhere a pong behind more buffered data than the keepalive interval drains expires"
)]
fn a_peer_still_taking_our_bytes_is_not_closed_by_keepalive_while_its_pong_waits_behind_them() {
    const COUNT: usize = 24;
    let server = Server::bind("127.0.0.1:0")
        .unwrap()
        .config(Config {
            write_timeout: Some(10 * SECOND),
            // The pong deadline is shorter than the time the buffers' worth
            // of data takes this reader (0.6 to 1.6 s on loopback), the
            // interval longer: see below.
            keepalive: Some(Keepalive {
                interval: 2 * SECOND,
                timeout: Duration::from_millis(300),
            }),
            shutdown_timeout: Duration::from_millis(300),
            ..Config::default()
        })
        .spawn(|mut ws| {
            let tx = ws.sender()?;
            let pusher = thread::spawn(move || -> Result<(), Error> {
                for i in 0..COUNT {
                    let mut msg = pattern(1 << 20);
                    msg[0] = i as u8;
                    tx.send_binary(&msg)?;
                }
                Ok(())
            });
            while ws.recv()?.is_some() {}
            pusher.join().unwrap_or(Ok(()))
        })
        .unwrap();
    let addr = tcp_addr(&server);
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(10 * SECOND)).unwrap();
    let trickle = Trickle {
        stream,
        chunk: 128 << 10,
        pause: Duration::from_millis(20),
    };
    let host = addr.to_string();
    let mut ws = client::handshake(trickle, &host, "/", &ClientConfig::default()).unwrap();
    // The ping waits behind what the buffers hold, longer than the pong
    // deadline; meanwhile the server's writes wait for this reader to take
    // bytes, which is how it knows the reader is alive. Once the last write
    // is taken the buffers drain within the keepalive interval.
    for i in 0..COUNT {
        match ws.recv() {
            Ok(Some(Message::Binary(b))) => {
                assert_eq!(b.len(), 1 << 20);
                assert_eq!(b[0], i as u8, "in order");
                assert_eq!(b[1..], pattern(1 << 20)[1..]);
            }
            other => panic!(
                "message {i}: {other:?}, closed with {:?}",
                ws.peer_close_frame()
            ),
        }
    }
    ws.close(stdws::CloseCode::NORMAL, "").unwrap();
    while ws.recv().unwrap().is_some() {}
    assert_eq!(
        ws.peer_close_frame().unwrap().unwrap().code,
        stdws::CloseCode::NORMAL
    );
    server.shutdown();
}

//! `Server::tls`: the hook that wraps each accepted TCP connection, tested
//! with a toy record layer in place of TLS (each write a record: a 2-byte
//! length, then the bytes XORed, so that nothing reads unwrapped). Real TLS
//! (rustls, Python's ssl, chromium) is tested by tests/tls/ against
//! examples/tls.

#![cfg(not(windows))] // not under Wine (scripts/cross-test): its sockets are emulated, and this pins socket timing

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};
use stdws::client::{self, ClientConfig};
use stdws::{Config, Error, Message, Server};

/// A record layer over a stream: what TLS does to bytes, minus the crypto.
/// Like a TLS library, it keeps a partial record across a read that timed out.
struct Records<S> {
    inner: S,
    /// Received bytes of records not yet complete.
    raw: Vec<u8>,
    /// Decoded bytes not yet read.
    plain: Vec<u8>,
}

const KEY: u8 = 0x5a;

impl<S: Read + Write> Records<S> {
    fn new(inner: S) -> Self {
        Records {
            inner,
            raw: Vec::new(),
            plain: Vec::new(),
        }
    }

    /// Moves every complete record from `raw` to `plain`.
    fn decode(&mut self) {
        while self.raw.len() >= 2 {
            let len = u16::from_be_bytes([self.raw[0], self.raw[1]]) as usize;
            if self.raw.len() < 2 + len {
                return;
            }
            self.plain
                .extend(self.raw[2..2 + len].iter().map(|b| b ^ KEY));
            self.raw.drain(..2 + len);
        }
    }
}

impl<S: Read + Write> Read for Records<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.plain.is_empty() {
            let mut chunk = [0u8; 4096];
            let n = self.inner.read(&mut chunk)?;
            if n == 0 {
                return Ok(0);
            }
            self.raw.extend_from_slice(&chunk[..n]);
            self.decode();
        }
        let n = buf.len().min(self.plain.len());
        buf[..n].copy_from_slice(&self.plain[..n]);
        self.plain.drain(..n);
        Ok(n)
    }
}

impl<S: Read + Write> Write for Records<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(u16::MAX as usize);
        let mut record = (n as u16).to_be_bytes().to_vec();
        record.extend(buf[..n].iter().map(|b| b ^ KEY));
        self.inner.write_all(&record)?;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A server whose hook wraps connections in [`Records`]; `handler` serves them.
fn records_server(
    config: Config,
    handler: impl Fn(stdws::WebSocket<stdws::Stream>) -> Result<(), Error> + Send + Sync + 'static,
) -> (SocketAddr, mpsc::Receiver<String>, stdws::Running) {
    hooked_server(config, |tcp| Ok(Records::new(tcp)), handler)
}

/// A server with `hook`; the errors it reports come out of the receiver.
fn hooked_server<S: Read + Write + Send + 'static>(
    config: Config,
    hook: impl Fn(TcpStream) -> io::Result<S> + Send + Sync + 'static,
    handler: impl Fn(stdws::WebSocket<stdws::Stream>) -> Result<(), Error> + Send + Sync + 'static,
) -> (SocketAddr, mpsc::Receiver<String>, stdws::Running) {
    let (errors, reported) = mpsc::channel();
    let errors = std::sync::Mutex::new(errors);
    let running = Server::bind("127.0.0.1:0")
        .unwrap()
        .config(config)
        .tls(hook)
        .on_error(move |_, e| {
            let _ = errors.lock().unwrap().send(e.to_string());
        })
        .spawn(handler)
        .unwrap();
    let addr = match running.addr() {
        stdws::Addr::Tcp(a) => *a,
        other => panic!("{other}"),
    };
    (addr, reported, running)
}

fn records_client(addr: SocketAddr, path: &str) -> stdws::WebSocket<Records<TcpStream>> {
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    client::handshake(
        Records::new(tcp),
        "localhost",
        path,
        &ClientConfig::default(),
    )
    .unwrap()
}

fn echo(mut ws: stdws::WebSocket<stdws::Stream>) -> Result<(), Error> {
    assert!(ws.get_ref().is_tls());
    while let Some(msg) = ws.recv()? {
        ws.send(msg)?;
    }
    Ok(())
}

#[test]
fn echoes_text_and_binary_through_the_hooks_stream() {
    let (addr, _errors, running) = records_server(Config::default(), echo);
    let mut ws = records_client(addr, "/");
    ws.send(Message::Text("through the hook ✓".into())).unwrap();
    assert_eq!(
        ws.recv().unwrap(),
        Some(Message::Text("through the hook ✓".into()))
    );
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    ws.send(Message::Binary(big.clone())).unwrap();
    assert_eq!(ws.recv().unwrap(), Some(Message::Binary(big)));
    ws.close(stdws::CloseCode::NORMAL, "").unwrap();
    assert_eq!(ws.recv().unwrap(), None);
    assert_eq!(running.shutdown(), 0);
}

#[test]
fn plain_bytes_do_not_reach_a_server_with_a_hook() {
    let config = Config {
        handshake_timeout: Duration::from_millis(500),
        ..Config::default()
    };
    let (addr, _errors, running) = records_server(config, echo);
    // The request unwrapped is read as records: garbage, never a 101.
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    tcp.write_all(common_request().as_bytes()).unwrap();
    let mut got = Vec::new();
    let _ = tcp.read_to_end(&mut got);
    assert!(!got.is_empty(), "the deadline's 408 comes, wrapped");
    assert!(
        !String::from_utf8_lossy(&got).contains("HTTP/1.1"),
        "{got:?}"
    );
    drop(running);
}

fn common_request() -> String {
    "GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
     Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        .into()
}

/// The reader waits for a silent client without holding the stream: what
/// another thread sends goes out meanwhile.
#[test]
fn a_sender_is_not_held_up_by_a_client_that_says_nothing() {
    let (addr, _errors, running) = records_server(Config::default(), |mut ws| {
        let tx = ws.sender()?;
        let pusher = thread::spawn(move || {
            for i in 0..5 {
                thread::sleep(Duration::from_millis(50));
                tx.send_text(&format!("push {i}"))?;
            }
            Ok::<(), Error>(())
        });
        while ws.recv()?.is_some() {}
        pusher.join().unwrap()
    });
    let mut ws = records_client(addr, "/");
    let start = Instant::now();
    for i in 0..5 {
        assert_eq!(ws.recv().unwrap(), Some(Message::Text(format!("push {i}"))));
    }
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "pushes waited for the reader: {:?}",
        start.elapsed()
    );
    ws.close(stdws::CloseCode::NORMAL, "").unwrap();
    assert_eq!(ws.recv().unwrap(), None);
    assert_eq!(running.shutdown(), 0);
}

/// Half a record, then a pause: the reader gives the stream back while it
/// waits for the rest (a sender's message goes out meanwhile), and the
/// record is not lost.
#[test]
fn a_record_cut_in_two_is_read_whole_and_does_not_hold_up_senders() {
    let (addr, _errors, running) = records_server(Config::default(), |mut ws| {
        let tx = ws.sender()?;
        // The first message asks for a push from another thread.
        if let Some(msg) = ws.recv()? {
            let pusher = tx.clone();
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(100));
                pusher.send_text("pushed while the record was cut")
            });
            tx.send(msg)?;
        }
        while let Some(msg) = ws.recv()? {
            tx.send(msg)?;
        }
        Ok(())
    });
    let mut ws = records_client(addr, "/");
    ws.send(Message::Text("push".into())).unwrap();
    assert_eq!(ws.recv().unwrap(), Some(Message::Text("push".into())));
    // A masked text frame by hand, in one record sent in two halves.
    let mut frame = vec![0x81, 0x80 | 5, 1, 2, 3, 4];
    frame.extend(
        b"split"
            .iter()
            .zip([1u8, 2, 3, 4].iter().cycle())
            .map(|(b, k)| b ^ k),
    );
    let mut record = (frame.len() as u16).to_be_bytes().to_vec();
    record.extend(frame.iter().map(|b| b ^ KEY));
    ws.get_mut().inner.write_all(&record[..5]).unwrap();
    // The server's reader is inside the record now; the push still comes.
    assert_eq!(
        ws.recv().unwrap(),
        Some(Message::Text("pushed while the record was cut".into()))
    );
    ws.get_mut().inner.write_all(&record[5..]).unwrap();
    assert_eq!(ws.recv().unwrap(), Some(Message::Text("split".into())));
    drop(ws);
    running.shutdown();
}

#[test]
fn a_failing_hook_ends_that_connection_alone_and_reaches_on_error() {
    let hook = |tcp: TcpStream| {
        let mut first = [0u8; 1];
        tcp.peek(&mut first)?;
        match first[0] {
            b'!' => Err(io::Error::other("no certificate for that name")),
            b'?' => panic!("the hook panicked"),
            _ => Ok(Records::new(tcp)),
        }
    };
    let (addr, reported, running) = hooked_server(Config::default(), hook, echo);
    let mut good = records_client(addr, "/");
    for refused in [b"!", b"?"] {
        let mut tcp = TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        tcp.write_all(refused).unwrap();
        let mut rest = Vec::new();
        let _ = tcp.read_to_end(&mut rest); // closed, with nothing said
        assert!(rest.is_empty(), "{rest:?}");
    }
    let said: Vec<String> = (0..2)
        .map(|_| reported.recv_timeout(Duration::from_secs(5)).unwrap())
        .collect();
    assert!(
        said[0].contains("the TLS hook failed: no certificate for that name"),
        "{said:?}"
    );
    assert!(said[1].contains("a callback panicked"), "{said:?}");
    // The first client never noticed.
    good.send(Message::Text("still here".into())).unwrap();
    assert_eq!(
        good.recv().unwrap(),
        Some(Message::Text("still here".into()))
    );
    drop(good);
    running.shutdown();
}

/// A TLS library reads on its own for as long as bytes trickle in: the
/// handshake deadline still holds, for a hook that shakes hands at once.
#[test]
fn a_client_trickling_its_tls_handshake_is_cut_at_the_handshake_deadline() {
    let config = Config {
        handshake_timeout: Duration::from_millis(600),
        ..Config::default()
    };
    // A "hello" of 64 bytes, read before the hook returns.
    let hook = |mut tcp: TcpStream| {
        let mut hello = [0u8; 64];
        tcp.read_exact(&mut hello)?;
        Ok(Records::new(tcp))
    };
    let (addr, reported, running) = hooked_server(config, hook, echo);
    let mut tcp = TcpStream::connect(addr).unwrap();
    let start = Instant::now();
    let mut cut = None;
    for _ in 0..64 {
        thread::sleep(Duration::from_millis(100));
        if tcp.write_all(b"h").is_err() {
            cut = Some(start.elapsed());
            break;
        }
    }
    // A reset shows on the write after the one the closed socket refused.
    let cut = cut.expect("the trickle was served for 6.4 s, past the 0.6 s deadline");
    assert!(cut >= Duration::from_millis(600), "{cut:?}");
    let said = reported.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(said.contains("request head not received in time"), "{said}");
    // Counted as the refusal it is.
    let refused = running.stats().refused;
    assert_eq!(refused, [(408, 1)].into_iter().collect(), "{refused:?}");
    running.shutdown();
}

#[test]
#[cfg(feature = "event-loop")]
fn the_event_loop_refuses_a_server_with_a_tls_hook_at_once() {
    let server = Server::bind("127.0.0.1:0")
        .unwrap()
        .tls(|tcp| Ok(Records::new(tcp)));
    let e = server
        .run_event_loop(|_, tx| move |msg: stdws::MessageRef<'_>| tx.send_ref(msg))
        .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::Unsupported);
    assert!(e.to_string().contains("Server::run"), "{e}");
}

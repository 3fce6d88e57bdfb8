//! The event-loop server (`Server::spawn_event_loop`) over real loopback
//! sockets: echoes to many clients at once, the protocol's control frames and
//! failure codes, HTTP on the same port, limits and deadlines, senders kept by
//! other threads, callback errors, backpressure, and shutdown.
//!
//! Deadlines in the event loop are checked once a second, so every timing
//! bound here allows a second or two; nothing sleeps to wait for an event.
#![cfg(target_os = "linux")]

mod common;

use common::{close_frame, frame, unmasked_frame, RawClient, FIN, OP_BINARY, OP_CLOSE, OP_CONT};
use common::{raw_exchange, status_of, upgrade_request, OP_PING, OP_PONG, OP_TEXT};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};
use stdws::client::{self, ClientConfig, ConnectError};
use stdws::hub::Hub;
use stdws::proto::extensions::permessage_deflate::DeflateConfig;
use stdws::{
    Accept, Addr, CloseCode, Config, Error, Keepalive, Limits, Message, MessageRef, Request,
    Response, Running, Sender, Server,
};

const SECOND: Duration = Duration::from_secs(1);

/// Two loop threads (so clients are spread over more than one), and a short
/// shutdown wait for clients a test leaves connected.
fn config() -> Config {
    Config {
        event_loop_threads: 2,
        shutdown_timeout: Duration::from_millis(300),
        ..Config::default()
    }
}

fn bind(config: Config) -> Server {
    Server::bind("127.0.0.1:0").unwrap().config(config)
}

fn tcp_addr(running: &Running) -> SocketAddr {
    match running.addr() {
        Addr::Tcp(addr) => *addr,
        other => panic!("not TCP: {other:?}"),
    }
}

/// Each client's messages echoed through its Sender, borrowed in place.
fn echo_factory(_: &Request, tx: Sender) -> impl FnMut(MessageRef<'_>) -> Result<(), Error> {
    move |msg: MessageRef<'_>| tx.send_ref(msg)
}

/// An echo server on the event loop.
fn spawn_echo(server: Server) -> (Running, SocketAddr) {
    let running = server.spawn_event_loop(echo_factory).unwrap();
    let addr = tcp_addr(&running);
    (running, addr)
}

/// An echo server whose factory also hands each client's `Sender` to the test.
fn spawn_handing_out_senders(server: Server) -> (Running, SocketAddr, mpsc::Receiver<Sender>) {
    let (senders_tx, senders_rx) = mpsc::channel::<Sender>();
    let senders_tx = Mutex::new(senders_tx);
    let running = server
        .spawn_event_loop(move |_: &Request, tx: Sender| {
            senders_tx.lock().unwrap().send(tx.clone()).unwrap();
            move |msg: MessageRef<'_>| tx.send_ref(msg)
        })
        .unwrap();
    let addr = tcp_addr(&running);
    (running, addr, senders_rx)
}

fn ws_url(addr: SocketAddr) -> String {
    format!("ws://{addr}/")
}

/// A raw client past a successful handshake (Host is the server's address).
fn raw_open(addr: SocketAddr) -> RawClient {
    let mut c = RawClient::connect(addr);
    c.write(upgrade_request(&addr.to_string(), "").as_bytes());
    let head = c.read_response_head();
    assert_eq!(head.status, 101, "handshake refused:\n{}", head.raw_head);
    c
}

/// Waits up to 5 s for `done`; fails with `what` otherwise.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + 5 * SECOND;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

/// A fresh client gets its echo within a second.
fn assert_echo_within_a_second(addr: SocketAddr) {
    let start = Instant::now();
    let mut ws = client::connect(&ws_url(addr)).unwrap();
    ws.get_ref().set_read_timeout(Some(5 * SECOND)).unwrap();
    ws.send("still here").unwrap();
    assert_eq!(ws.recv().unwrap(), Some(Message::Text("still here".into())));
    assert!(start.elapsed() < SECOND, "echo took {:?}", start.elapsed());
}

/// Threads of this process with exactly this name.
fn threads_named(name: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.trim_end() == name)
        .count()
}

/// An `on_error` hook that records each error's text, and the list it fills.
type ErrorLog = Arc<Mutex<Vec<String>>>;

fn error_log(server: Server) -> (Server, ErrorLog) {
    let log = ErrorLog::default();
    let sink = log.clone();
    let server = server.on_error(move |_, e| sink.lock().unwrap().push(format!("{e:?}")));
    (server, log)
}

// --- echo -------------------------------------------------------------------

/// The messages client `i` sends: text and binary, empty to 1 MiB, so every
/// length encoding (7, 16 and 64 bits) and multi-byte UTF-8 appear.
fn messages(i: usize) -> Vec<Message> {
    // 1 MiB for every fifth client, 100 KiB for the others.
    let big_len = if i.is_multiple_of(5) {
        1 << 20
    } else {
        100 << 10
    };
    let big: Vec<u8> = (0..big_len).map(|k| (k * 7 + i) as u8).collect();
    vec![
        Message::Text(format!("hello from client {i}")),
        Message::Binary(Vec::new()),
        Message::Binary((0..=255u8).cycle().skip(i).take(300).collect()),
        Message::Text("é€𝄞".repeat(5_000 + i)),
        Message::Text(String::new()),
        Message::Binary(big),
        Message::Text(format!("last from client {i}")),
    ]
}

#[test]
fn echoes_text_and_binary_to_many_clients_at_once() {
    const CLIENTS: usize = 50;
    let (server, addr) = spawn_echo(bind(config()));
    let all_connected = Arc::new(Barrier::new(CLIENTS));
    let peak = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let (all_connected, peak, handle) =
                (all_connected.clone(), peak.clone(), server.handle());
            thread::spawn(move || {
                let mut ws = client::connect(&ws_url(addr)).unwrap();
                ws.get_ref().set_read_timeout(Some(20 * SECOND)).unwrap();
                // Every client is connected before any sends.
                all_connected.wait();
                peak.fetch_max(handle.connections(), Ordering::SeqCst);
                let sent = messages(i);
                // Pipelined: a writer thread sends them all while this one reads.
                let tx = ws.sender().unwrap();
                let to_send = sent.clone();
                let writer = thread::spawn(move || {
                    for msg in &to_send {
                        tx.send_ref(msg).unwrap();
                    }
                });
                for (k, expected) in sent.iter().enumerate() {
                    let got = ws.recv().unwrap().expect("an echo, not a close");
                    assert!(
                        got == *expected,
                        "client {i}, message {k}: echo differs ({} bytes, expected {})",
                        got.len(),
                        expected.len()
                    );
                }
                writer.join().unwrap();
                ws.close(CloseCode::NORMAL, "").unwrap();
                assert_eq!(ws.recv().unwrap(), None);
                ws.peer_close_frame().flatten().map(|f| f.code)
            })
        })
        .collect();
    for c in clients {
        assert_eq!(c.join().unwrap(), Some(CloseCode::NORMAL));
    }
    assert_eq!(
        peak.load(Ordering::SeqCst),
        CLIENTS,
        "all were open at once"
    );
    wait_for("every connection to end", || {
        server.handle().connections() == 0
    });
    assert_eq!(server.shutdown(), 0);
}

#[test]
fn runs_the_configured_number_of_loop_threads() {
    let (server, addr) = spawn_echo(bind(Config {
        event_loop_threads: 3,
        thread_name: "t-el-threads".into(),
        ..config()
    }));
    wait_for("three loop threads", || threads_named("t-el-threads") == 3);
    // Clients do not add threads.
    let clients: Vec<_> = (0..10)
        .map(|_| client::connect(&ws_url(addr)).unwrap())
        .collect();
    assert_eq!(threads_named("t-el-threads"), 3);
    drop(clients);
    server.shutdown();
    // Joined, but an emulator (qemu-user) may list a thread a moment longer.
    wait_for("they end with the server", || {
        threads_named("t-el-threads") == 0
    });

    let (server, _) = spawn_echo(bind(Config {
        event_loop_threads: 0,
        thread_name: "t-el-percpu".into(),
        ..config()
    }));
    let cpus = thread::available_parallelism().unwrap().get();
    wait_for("one loop thread per CPU", || {
        threads_named("t-el-percpu") == cpus
    });
    server.shutdown();
}

#[test]
fn frames_that_arrive_with_the_handshake_are_not_lost() {
    let (server, addr) = spawn_echo(bind(config()));
    let mut c = RawClient::connect(addr);
    let mut bytes = upgrade_request(&addr.to_string(), "").into_bytes();
    bytes.extend_from_slice(&frame(FIN | OP_TEXT, b"early bird"));
    bytes.extend_from_slice(&frame(FIN | OP_BINARY, &[1, 2, 3]));
    c.write(&bytes);
    assert_eq!(c.read_response_head().status, 101);
    c.expect_echo(OP_TEXT, b"early bird");
    c.expect_echo(OP_BINARY, &[1, 2, 3]);

    // Half a frame with the head, the rest later.
    let mut c = RawClient::connect(addr);
    let whole = frame(FIN | OP_BINARY, &[7; 300]);
    let mut bytes = upgrade_request(&addr.to_string(), "").into_bytes();
    bytes.extend_from_slice(&whole[..100]);
    c.write(&bytes);
    assert_eq!(c.read_response_head().status, 101);
    thread::sleep(Duration::from_millis(50));
    c.write(&whole[100..]);
    c.expect_echo(OP_BINARY, &[7; 300]);
    server.shutdown();
}

#[test]
fn fragmented_messages_are_reassembled_with_a_ping_between_fragments() {
    let (server, addr) = spawn_echo(bind(config()));
    let mut c = raw_open(addr);
    let mut bytes = frame(OP_TEXT, b"frag");
    bytes.extend_from_slice(&frame(FIN | OP_PING, b"mid"));
    bytes.extend_from_slice(&frame(OP_CONT, b"men"));
    bytes.extend_from_slice(&frame(FIN | OP_CONT, b"ted"));
    c.write(&bytes);
    let pong = c.read_server_frame();
    assert_eq!(
        (pong.opcode, pong.payload.as_slice()),
        (OP_PONG, &b"mid"[..])
    );
    c.expect_echo(OP_TEXT, b"fragmented");
    server.shutdown();
}

#[test]
fn a_frame_written_a_byte_at_a_time_is_echoed() {
    let (server, addr) = spawn_echo(bind(config()));
    let mut c = raw_open(addr);
    let payload: Vec<u8> = (0..200u8).collect();
    c.write_bytewise(&frame(FIN | OP_BINARY, &payload));
    c.expect_echo(OP_BINARY, &payload);
    server.shutdown();
}

// --- control frames and protocol errors ------------------------------------------

#[test]
fn answers_pings_and_echoes_the_close_code() {
    let (server, addr) = spawn_echo(bind(config()));
    let mut c = raw_open(addr);
    c.write(&frame(FIN | OP_PING, b"are you there"));
    let pong = c.read_server_frame();
    assert_eq!(pong.opcode, OP_PONG);
    assert_eq!(pong.payload, b"are you there");
    // An unsolicited pong is ignored; data still echoes after it.
    c.write(&frame(FIN | OP_PONG, b"ignored"));
    c.write(&frame(FIN | OP_TEXT, b"after the pong"));
    c.expect_echo(OP_TEXT, b"after the pong");
    c.write(&close_frame(1000, b"bye"));
    let reason = c.expect_close(1000); // then EOF
    assert_eq!(reason, "");
    drop(c);
    wait_for("the connection to end", || {
        server.handle().connections() == 0
    });
    server.shutdown();
}

#[test]
fn closes_with_1002_on_a_protocol_error_and_other_clients_carry_on() {
    let (server, log) = error_log(bind(config()));
    let (server, addr) = spawn_echo(server);
    let mut bystander = raw_open(addr);
    bystander.assert_echoes(b"before");
    let bad_frames: [(&str, Vec<u8>); 6] = [
        (
            "an RSV1 bit without an extension",
            frame(FIN | 0x40 | OP_TEXT, b"x"),
        ),
        ("an unmasked frame", unmasked_frame(FIN | OP_TEXT, b"x")),
        ("a reserved opcode", frame(FIN | 0x3, b"x")),
        ("a fragmented ping", frame(OP_PING, b"x")),
        (
            "a continuation with nothing to continue",
            frame(FIN | OP_CONT, b"x"),
        ),
        (
            "a close with a one-byte payload",
            frame(FIN | OP_CLOSE, &[3]),
        ),
    ];
    let count = bad_frames.len();
    for (what, bytes) in bad_frames {
        let mut c = raw_open(addr);
        c.assert_echoes(b"fine so far");
        c.write(&bytes);
        let f = c.read_server_frame();
        assert_eq!(f.opcode, OP_CLOSE, "{what}: {f:?}");
        assert_eq!(&f.payload[..2], &1002u16.to_be_bytes(), "{what}: {f:?}");
        c.expect_tcp_closed();
        bystander.assert_echoes(what.as_bytes());
    }
    // Each reached on_error as a protocol error.
    wait_for("the reports", || log.lock().unwrap().len() >= count);
    let log = log.lock().unwrap().clone();
    assert_eq!(log.len(), count, "{log:?}");
    assert!(log.iter().all(|e| e.starts_with("Protocol(")), "{log:?}");
    server.shutdown();
}

#[test]
fn closes_with_1007_on_invalid_utf8_text() {
    let (server, addr) = spawn_echo(bind(config()));
    // In one frame, and split across fragments whose first half is valid.
    let mut split = frame(OP_TEXT, "caf".as_bytes());
    split.extend_from_slice(&frame(FIN | OP_CONT, &[0xc3, 0x28]));
    for bytes in [frame(FIN | OP_TEXT, &[b'o', b'k', 0xff, 0xfe]), split] {
        let mut c = raw_open(addr);
        c.write(&bytes);
        c.expect_close(1007);
    }
    assert_echo_within_a_second(addr);
    server.shutdown();
}

#[test]
fn closes_with_1009_on_a_message_over_max_message_size() {
    let (server, addr) = spawn_echo(bind(Config {
        limits: Limits {
            max_message_size: 1000,
            ..Limits::default()
        },
        ..config()
    }));
    let mut c = raw_open(addr);
    c.assert_echoes(&[5; 1000]);
    c.write(&frame(FIN | OP_BINARY, &[6; 1001]));
    c.expect_close(1009);
    server.shutdown();
}

// --- HTTP on the same port ------------------------------------------------------------

#[test]
fn plain_http_goes_to_on_http_with_its_body() {
    let server = bind(config()).on_http(|req| {
        Response::text(
            200,
            format!(
                "{} {} {}",
                req.method(),
                req.path(),
                String::from_utf8_lossy(req.body())
            ),
        )
    });
    let (server, addr) = spawn_echo(server);
    // Head and body in one write.
    let response = raw_exchange(
        addr,
        b"POST /io/outputs/3 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n\r\nhello",
    );
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(
        response.contains("\r\nContent-Length: 24\r\n"),
        "{response}"
    );
    assert!(
        response.ends_with("\r\n\r\nPOST /io/outputs/3 hello"),
        "{response}"
    );

    // The body in pieces, after the head: the loop waits for all of it.
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(5 * SECOND)).unwrap();
    s.write_all(b"POST /a HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 11\r\n\r\nhel")
        .unwrap();
    thread::sleep(Duration::from_millis(50));
    s.write_all(b"lo w").unwrap();
    thread::sleep(Duration::from_millis(50));
    s.write_all(b"orld").unwrap();
    let mut response = String::new();
    let _ = s.read_to_string(&mut response);
    assert!(
        response.ends_with("\r\n\r\nPOST /a hello world"),
        "{response}"
    );

    // Expect: 100-continue gets its interim response before the body.
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(5 * SECOND)).unwrap();
    s.write_all(
        b"POST /c HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n",
    )
    .unwrap();
    let mut continue_line = [0u8; 25];
    s.read_exact(&mut continue_line).unwrap();
    assert_eq!(&continue_line, b"HTTP/1.1 100 Continue\r\n\r\n");
    s.write_all(b"ok").unwrap();
    let mut rest = String::new();
    let _ = s.read_to_string(&mut rest);
    assert!(rest.ends_with("\r\n\r\nPOST /c ok"), "{rest}");

    // A GET without a body.
    let response = raw_exchange(addr, b"GET /page HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    assert!(response.ends_with("\r\n\r\nGET /page "), "{response}");
    server.shutdown();
}

#[test]
fn requests_without_on_http_get_400() {
    let (server, addr) = spawn_echo(bind(config()));
    let response = raw_exchange(addr, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    assert_eq!(status_of(&response), 400, "{response}");
    let garbage = raw_exchange(addr, &[0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, b'\r', b'\n']);
    assert_eq!(status_of(&garbage), 400, "{garbage}");
    server.shutdown();
}

#[test]
fn a_body_over_max_body_size_gets_413() {
    let server = bind(Config {
        max_body_size: 10,
        ..config()
    })
    .on_http(|req| Response::text(200, format!("{}", req.body().len())));
    let (server, addr) = spawn_echo(server);
    let at_limit = raw_exchange(
        addr,
        b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\n\r\n0123456789",
    );
    assert_eq!(status_of(&at_limit), 200, "{at_limit}");
    assert!(at_limit.ends_with("\r\n\r\n10"), "{at_limit}");
    let over = raw_exchange(
        addr,
        b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 11\r\n\r\n01234567890",
    );
    assert_eq!(status_of(&over), 413, "{over}");
    let chunked = raw_exchange(
        addr,
        b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n",
    );
    assert_eq!(status_of(&chunked), 411, "{chunked}");
    server.shutdown();
}

// --- handshake hooks and checks -------------------------------------------------------

#[test]
fn the_factory_sees_the_request_and_the_chosen_subprotocol() {
    let server = bind(config()).on_upgrade(|req| match req.header("authorization") {
        Some("Bearer secret") => Ok(Accept::with_protocol("bb-io.v2")),
        _ => Err(Response::status(401)),
    });
    let running = server
        .spawn_event_loop(|req: &Request, tx: Sender| {
            let summary = format!(
                "{} {:?} {:?}",
                req.path(),
                req.query(),
                req.header("x-device")
            );
            tx.send_text(&summary).unwrap();
            move |msg: MessageRef<'_>| tx.send_ref(msg)
        })
        .unwrap();
    let addr = tcp_addr(&running);
    let refused = client::connect(&format!("ws://{addr}/io")).unwrap_err();
    assert!(
        matches!(refused, Error::Connect(ConnectError::Refused(401))),
        "{refused}"
    );
    let cfg = ClientConfig {
        protocols: vec!["bb-io.v2".into()],
        headers: vec![
            ("Authorization".into(), "Bearer secret".into()),
            ("X-Device".into(), "bb400".into()),
        ],
        ..ClientConfig::default()
    };
    let mut ws = client::connect_with(&format!("ws://{addr}/io?live=1"), &cfg).unwrap();
    assert_eq!(ws.protocol(), Some("bb-io.v2"));
    let expected = r#"/io Some("live=1") Some("bb400")"#;
    assert_eq!(ws.recv().unwrap(), Some(Message::Text(expected.into())));
    ws.send("and echo").unwrap();
    assert_eq!(ws.recv().unwrap(), Some(Message::Text("and echo".into())));
    running.shutdown();
}

#[test]
fn cross_site_origins_and_rebound_hosts_get_403() {
    let (server, addr) = spawn_echo(bind(config()));
    let host = addr.to_string();
    let evil = raw_exchange(
        addr,
        upgrade_request(&host, "Origin: http://evil.example\r\n").as_bytes(),
    );
    assert_eq!(status_of(&evil), 403, "{evil}");
    let rebound = raw_exchange(addr, upgrade_request("evil.example:8989", "").as_bytes());
    assert_eq!(status_of(&rebound), 403, "{rebound}");
    // The same origin is fine.
    let mut c = RawClient::connect(addr);
    c.write(upgrade_request(&host, &format!("Origin: http://{host}\r\n")).as_bytes());
    assert_eq!(c.read_response_head().status, 101);
    c.assert_echoes(b"same origin");
    server.shutdown();
}

// --- limits and deadlines -------------------------------------------------------------

#[test]
fn over_max_connections_gets_503() {
    let (server, addr) = spawn_echo(bind(Config {
        max_connections: 1,
        ..config()
    }));
    let mut held = client::connect(&ws_url(addr)).unwrap();
    let start = Instant::now();
    let refused = client::connect(&ws_url(addr)).unwrap_err();
    assert!(
        matches!(refused, Error::Connect(ConnectError::Refused(503))),
        "{refused}"
    );
    assert!(start.elapsed() < SECOND, "took {:?}", start.elapsed());
    // The held client is unaffected.
    held.send("held").unwrap();
    assert_eq!(held.recv().unwrap(), Some(Message::Text("held".into())));
    // Its slot frees up when it goes.
    drop(held);
    wait_for("the slot to free", || server.handle().connections() == 0);
    // A connection still in its handshake holds the slot too.
    let silent = TcpStream::connect(addr).unwrap();
    wait_for("the silent connection", || {
        server.handle().connections() == 1
    });
    let refused = client::connect(&ws_url(addr)).unwrap_err();
    assert!(
        matches!(refused, Error::Connect(ConnectError::Refused(503))),
        "{refused}"
    );
    drop(silent);
    wait_for("the slot to free", || server.handle().connections() == 0);
    assert_echo_within_a_second(addr);
    server.shutdown();
}

#[test]
fn a_slow_handshake_gets_408() {
    let (server, addr) = spawn_echo(bind(Config {
        handshake_timeout: Duration::from_millis(300),
        ..config()
    }));
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(5 * SECOND)).unwrap();
    let start = Instant::now();
    s.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: webso")
        .unwrap();
    let mut response = Vec::new();
    let _ = s.read_to_end(&mut response);
    let response = String::from_utf8_lossy(&response);
    assert_eq!(status_of(&response), 408, "{response}");
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(300), "too early: {took:?}");
    assert!(took < 2 * SECOND, "took {took:?}");
    drop(s);
    wait_for("the slot to free", || server.handle().connections() == 0);
    assert_echo_within_a_second(addr);
    server.shutdown();
}

#[test]
fn a_body_that_does_not_arrive_in_time_gets_408() {
    let server = bind(Config {
        handshake_timeout: Duration::from_millis(300),
        ..config()
    })
    .on_http(|_| Response::status(200));
    let (server, addr) = spawn_echo(server);
    let start = Instant::now();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(5 * SECOND)).unwrap();
    s.write_all(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\n\r\n012")
        .unwrap();
    let mut response = Vec::new();
    let _ = s.read_to_end(&mut response);
    let response = String::from_utf8_lossy(&response);
    assert_eq!(status_of(&response), 408, "{response}");
    assert!(start.elapsed() < 2 * SECOND, "took {:?}", start.elapsed());
    server.shutdown();
}

#[test]
fn an_oversized_request_head_gets_431() {
    let (server, addr) = spawn_echo(bind(config()));
    let mut head = upgrade_request(&addr.to_string(), "").into_bytes();
    head.truncate(head.len() - 2);
    head.extend_from_slice(format!("X-Big: {}\r\n\r\n", "b".repeat(20 << 10)).as_bytes());
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(5 * SECOND)).unwrap();
    // The server may answer and close before it has read all of it.
    let _ = s.write_all(&head);
    let (response, _) = read_all(&mut s);
    let response = String::from_utf8_lossy(&response);
    assert_eq!(status_of(&response), 431, "{response}");
    server.shutdown();
}

#[test]
fn a_client_that_dribbles_its_head_still_gets_408() {
    let (server, addr) = spawn_echo(bind(Config {
        handshake_timeout: Duration::from_millis(300),
        ..config()
    }));
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(5 * SECOND)).unwrap();
    let start = Instant::now();
    // One byte every 20 ms: each read succeeds, the head never completes in time.
    let mut dribble = s.try_clone().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let writer = thread::spawn(move || {
        for b in b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
            .iter()
            .chain([b'a'; 200].iter())
        {
            if stopped.load(Ordering::SeqCst) || dribble.write_all(&[*b]).is_err() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
    });
    let mut response = Vec::new();
    let _ = s.read_to_end(&mut response);
    stop.store(true, Ordering::SeqCst);
    let response = String::from_utf8_lossy(&response);
    assert_eq!(status_of(&response), 408, "{response}");
    assert!(start.elapsed() < 2 * SECOND, "took {:?}", start.elapsed());
    writer.join().unwrap();
    server.shutdown();
}

#[test]
fn sends_keepalive_pings_and_drops_silent_clients() {
    let (server, log) = error_log(bind(Config {
        keepalive: Some(Keepalive {
            interval: Duration::from_millis(200),
            timeout: Duration::from_millis(200),
        }),
        ..config()
    }));
    let (server, addr) = spawn_echo(server);
    // Before the handshake: the server's clock starts before we see the 101.
    let start = Instant::now();
    let mut c = raw_open(addr);
    let ping = c.read_server_frame();
    assert_eq!(
        (ping.opcode, ping.payload.len()),
        (OP_PING, 0),
        "a ping: {ping:?}"
    );
    let pinged = start.elapsed();
    c.expect_close(1001); // and then EOF
    let closed = start.elapsed();
    assert!(
        pinged >= Duration::from_millis(200),
        "ping after {pinged:?}"
    );
    assert!(
        closed >= pinged + Duration::from_millis(200),
        "closed after {closed:?}"
    );
    assert!(closed < 4 * SECOND, "closed after {closed:?}");
    drop(c);
    wait_for("the connection to end", || {
        server.handle().connections() == 0
    });
    let log = log.lock().unwrap().clone();
    assert!(log.iter().any(|e| e.contains("NoPong")), "{log:?}");
    server.shutdown();
}

#[test]
fn keepalive_keeps_a_client_that_answers_pings() {
    let (server, addr) = spawn_echo(bind(Config {
        keepalive: Some(Keepalive {
            interval: Duration::from_millis(100),
            timeout: Duration::from_millis(100),
        }),
        ..config()
    }));
    let mut c = raw_open(addr);
    // Two pings, each answered: still connected after the no-pong deadline.
    for _ in 0..2 {
        let ping = c.read_server_frame();
        assert_eq!(ping.opcode, OP_PING, "{ping:?}");
        c.write(&frame(FIN | OP_PONG, &ping.payload));
    }
    c.assert_echoes(b"alive");
    assert_eq!(server.handle().connections(), 1);
    server.shutdown();
}

#[test]
fn read_timeout_closes_a_silent_client_with_1001() {
    let (server, addr) = spawn_echo(bind(Config {
        read_timeout: Some(Duration::from_millis(200)),
        keepalive: None,
        ..config()
    }));
    // Before the handshake: the server starts the clock when it reads the
    // request, which can be before the client has read the 101.
    let start = Instant::now();
    let mut c = raw_open(addr);
    c.expect_close(1001);
    assert!(start.elapsed() >= Duration::from_millis(200));
    assert!(start.elapsed() < 3 * SECOND, "took {:?}", start.elapsed());
    server.shutdown();
}

// --- senders, callbacks -------------------------------------------------------------

#[test]
fn a_sender_kept_by_another_thread_pushes_messages() {
    let (running, addr, senders_rx) = spawn_handing_out_senders(bind(config()));
    let mut ws = client::connect(&ws_url(addr)).unwrap();
    ws.get_ref().set_read_timeout(Some(5 * SECOND)).unwrap();
    let pusher = senders_rx.recv_timeout(5 * SECOND).unwrap();
    // From this thread, while the client is idle: the loop is not involved.
    for i in 0..3 {
        pusher.send(format!("push {i}")).unwrap();
    }
    pusher.send_binary(&[9; 100_000]).unwrap();
    for i in 0..3 {
        assert_eq!(ws.recv().unwrap(), Some(Message::Text(format!("push {i}"))));
    }
    assert_eq!(ws.recv().unwrap(), Some(Message::Binary(vec![9; 100_000])));
    // Echoes and pushes share the connection.
    ws.send("and echo").unwrap();
    assert_eq!(ws.recv().unwrap(), Some(Message::Text("and echo".into())));
    // A close from the pushing thread ends the connection cleanly.
    pusher.close(CloseCode(4000), "done").unwrap();
    assert_eq!(ws.recv().unwrap(), None);
    assert_eq!(
        ws.peer_close_frame().flatten().map(|f| f.code),
        Some(CloseCode(4000))
    );
    drop(ws);
    wait_for("the connection to end", || {
        running.handle().connections() == 0
    });
    assert!(matches!(pusher.send("late"), Err(Error::Closed)));
    running.shutdown();
}

#[test]
fn hub_members_on_the_event_loop_get_every_broadcast_and_leave_when_they_disconnect() {
    // The BB-400's shape: every client joins a hub on connect; the device
    // broadcasts its status; a client that goes away leaves the hub.
    let hub = Hub::new();
    let joined = hub.clone();
    let running = bind(config())
        .spawn_event_loop(move |_: &Request, tx: Sender| {
            let member = joined.join(tx).ok();
            if let Some(member) = &member {
                member.send("joined");
            }
            // The membership lives as long as the client's callback.
            let hub = joined.clone();
            move |msg: MessageRef<'_>| {
                let _ = &member;
                hub.broadcast(msg.to_message());
                Ok(())
            }
        })
        .unwrap();
    let addr = tcp_addr(&running);
    let mut clients: Vec<_> = (0..3)
        .map(|_| {
            let mut ws = client::connect(&ws_url(addr)).unwrap();
            ws.get_ref().set_read_timeout(Some(5 * SECOND)).unwrap();
            assert_eq!(ws.recv().unwrap(), Some(Message::Text("joined".into())));
            ws
        })
        .collect();
    wait_for("three members", || hub.len() == 3);
    hub.broadcast(r#"{"inputs":[1,0,0,0,0,0,0,0]}"#);
    for ws in &mut clients {
        let got = ws.recv().unwrap();
        assert_eq!(
            got,
            Some(Message::Text(r#"{"inputs":[1,0,0,0,0,0,0,0]}"#.into()))
        );
    }
    // A message from one client reaches all of them, through the hub.
    clients[0].send(Message::Binary(vec![8; 300])).unwrap();
    for ws in &mut clients {
        assert_eq!(ws.recv().unwrap(), Some(Message::Binary(vec![8; 300])));
    }
    let gone = clients.pop().unwrap();
    drop(gone);
    wait_for("the member to leave", || hub.len() == 2);
    assert_eq!(hub.broadcast("still two"), 2);
    for ws in &mut clients {
        assert_eq!(ws.recv().unwrap(), Some(Message::Text("still two".into())));
    }
    running.shutdown();
}

#[test]
fn a_sender_can_shut_a_client_down_from_another_thread() {
    let (running, addr, senders_rx) = spawn_handing_out_senders(bind(config()));
    let mut c = raw_open(addr);
    let sender = senders_rx.recv_timeout(5 * SECOND).unwrap();
    c.assert_echoes(b"before");
    sender.shutdown();
    // No close frame: the connection just ends, and its slot frees.
    c.expect_tcp_closed();
    wait_for("the connection to end", || {
        running.handle().connections() == 0
    });
    assert!(sender.send("after").is_err());
    assert_echo_within_a_second(addr);
    running.shutdown();
}

#[test]
fn fed_replies_go_out_without_a_flush() {
    // Each message gets three replies, fed: they leave when the loop next waits.
    let running = bind(config())
        .spawn_event_loop(|_: &Request, tx: Sender| {
            move |msg: MessageRef<'_>| {
                for part in ["a", "b", "c"] {
                    tx.feed(MessageRef::Text(part))?;
                }
                tx.feed(msg)
            }
        })
        .unwrap();
    let addr = tcp_addr(&running);
    let mut c = raw_open(addr);
    c.write(&frame(FIN | OP_TEXT, b"x"));
    for part in [&b"a"[..], b"b", b"c", b"x"] {
        c.expect_echo(OP_TEXT, part);
    }
    running.shutdown();
}

#[test]
fn a_callback_error_closes_with_1011_and_is_reported() {
    let (server, log) = error_log(bind(config()));
    let running = server
        .spawn_event_loop(|_: &Request, tx: Sender| {
            move |msg: MessageRef<'_>| match msg {
                MessageRef::Text("fail") => Err(Error::InvalidInput("the callback gave up")),
                msg => tx.send_ref(msg),
            }
        })
        .unwrap();
    let addr = tcp_addr(&running);
    let mut bystander = raw_open(addr);
    let mut c = raw_open(addr);
    c.assert_echoes(b"fine");
    // The message after the failing one is not delivered.
    let mut bytes = frame(FIN | OP_TEXT, b"fail");
    bytes.extend_from_slice(&frame(FIN | OP_TEXT, b"never echoed"));
    c.write(&bytes);
    c.expect_close(1011);
    wait_for("the error report", || !log.lock().unwrap().is_empty());
    let log = log.lock().unwrap().clone();
    assert_eq!(log.len(), 1, "{log:?}");
    assert!(log[0].contains("the callback gave up"), "{log:?}");
    bystander.assert_echoes(b"unaffected");
    running.shutdown();
}

#[test]
fn a_panicking_callback_closes_its_client_with_1011_and_the_server_goes_on() {
    // One loop thread, so a panic that took the thread down would take every client.
    let (server, log) = error_log(bind(Config {
        event_loop_threads: 1,
        ..config()
    }));
    let running = server
        .spawn_event_loop(|req: &Request, tx: Sender| {
            if req.path() == "/factory-panics" {
                panic!("factory bug (expected by this test)");
            }
            move |msg: MessageRef<'_>| {
                if msg == MessageRef::Text("panic") {
                    panic!("callback bug (expected by this test)");
                }
                tx.send_ref(msg)
            }
        })
        .unwrap();
    let addr = tcp_addr(&running);
    let mut bystander = raw_open(addr);
    let mut c = raw_open(addr);
    c.assert_echoes(b"fine");
    c.write(&frame(FIN | OP_TEXT, b"panic"));
    c.expect_close(1011);
    drop(c);
    bystander.assert_echoes(b"unaffected");
    // A factory that panics: the upgrade went through, then 1011.
    let mut c = RawClient::connect(addr);
    c.write(
        upgrade_request(&addr.to_string(), "")
            .replace("GET / ", "GET /factory-panics ")
            .as_bytes(),
    );
    assert_eq!(c.read_response_head().status, 101);
    c.expect_close(1011);
    bystander.assert_echoes(b"still unaffected");
    assert_echo_within_a_second(addr);
    drop(c);
    wait_for("the two slots to free", || {
        running.handle().connections() == 1
    });
    let log = log.lock().unwrap().clone();
    let panics = log.iter().filter(|e| e.contains("panicked")).count();
    assert_eq!(panics, 2, "both panics reported: {log:?}");
    running.shutdown();
}

#[test]
fn a_panicking_http_hook_ends_only_its_own_request() {
    // As in the threaded server, where the panic ends that connection's thread.
    let server = bind(Config {
        event_loop_threads: 1,
        ..config()
    })
    .on_http(|req| match req.path() {
        "/panic" => panic!("on_http bug (expected by this test)"),
        _ => Response::text(200, "ok"),
    })
    .on_upgrade(|req| match req.path() {
        "/panic" => panic!("on_upgrade bug (expected by this test)"),
        _ => Ok(Accept::default()),
    });
    let (server, addr) = spawn_echo(server);
    let mut bystander = raw_open(addr);
    let start = Instant::now();
    let response = raw_exchange(addr, b"GET /panic HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    assert!(
        start.elapsed() < 3 * SECOND,
        "no end to the panicking request"
    );
    assert_eq!(status_of(&response), 500, "{response}");
    let upgrade = upgrade_request(&addr.to_string(), "").replace("GET / ", "GET /panic ");
    let response = raw_exchange(addr, upgrade.as_bytes());
    assert!(
        start.elapsed() < 6 * SECOND,
        "no end to the panicking upgrade"
    );
    assert_eq!(status_of(&response), 500, "{response}");
    bystander.assert_echoes(b"unaffected");
    let ok = raw_exchange(addr, b"GET /ok HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    assert!(ok.ends_with("\r\n\r\nok"), "{ok}");
    wait_for("their slots to free", || server.handle().connections() == 1);
    server.shutdown();
}

// --- backpressure ---------------------------------------------------------------------

const CHUNK: usize = 64 << 10;

/// A masked binary frame of `CHUNK` bytes whose payload names message `n`.
fn numbered_chunk(n: u32) -> Vec<u8> {
    let mut payload = vec![(n % 251) as u8; CHUNK];
    payload[..4].copy_from_slice(&n.to_be_bytes());
    frame(FIN | OP_BINARY, &payload)
}

/// Writes up to `count` numbered chunks on `s`, counting the complete ones in
/// `done`; stops at the first write error (say, the connection dropped).
fn write_chunks(mut s: TcpStream, count: u32, done: Arc<AtomicUsize>) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        for n in 0..count {
            if s.write_all(&numbered_chunk(n)).is_err() {
                return;
            }
            done.store(n as usize + 1, Ordering::SeqCst);
        }
    })
}

/// Waits until `done` stops moving for `quiet`; returns its value.
fn wait_until_stalled(done: &AtomicUsize, quiet: Duration) -> usize {
    let deadline = Instant::now() + 10 * SECOND;
    let mut last = done.load(Ordering::SeqCst);
    let mut since = Instant::now();
    loop {
        thread::sleep(Duration::from_millis(20));
        let now = done.load(Ordering::SeqCst);
        if now != last {
            (last, since) = (now, Instant::now());
        } else if since.elapsed() >= quiet {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "writes never stalled ({now} chunks)"
        );
    }
}

#[test]
fn a_client_that_does_not_read_does_not_stall_others() {
    // One loop thread: the stalled client and the others share it.
    let (server, addr) = spawn_echo(bind(Config {
        event_loop_threads: 1,
        write_timeout: Some(10 * SECOND),
        ..config()
    }));
    const COUNT: u32 = 512; // 32 MiB: far more than the socket buffers hold
    let mut a = raw_open(addr);
    // Its writes block until it reads; they must not time out meanwhile.
    a.stream.set_write_timeout(Some(30 * SECOND)).unwrap();
    let done = Arc::new(AtomicUsize::new(0));
    let a_writer = write_chunks(a.stream.try_clone().unwrap(), COUNT, done.clone());
    let mut b = raw_open(addr);
    // While A's writes are blocked (the server stopped reading it), B's echoes are prompt.
    let stalled_at = wait_until_stalled(&done, Duration::from_millis(500));
    assert!(stalled_at < COUNT as usize, "A's writes never blocked");
    for i in 0..20u8 {
        let start = Instant::now();
        b.assert_echoes(&[i; 1000]);
        assert!(
            start.elapsed() < Duration::from_millis(500),
            "echo {i} took {:?}",
            start.elapsed()
        );
    }
    assert_eq!(done.load(Ordering::SeqCst), stalled_at, "A stayed blocked");
    assert_eq!(server.handle().connections(), 2);
    // A reads at last: every echo arrives, in order, and its writes complete.
    for n in 0..COUNT {
        let f = a.read_server_frame();
        assert_eq!(f.opcode, OP_BINARY);
        assert_eq!(f.payload.len(), CHUNK);
        assert_eq!(&f.payload[..4], &n.to_be_bytes(), "echo {n} out of order");
        assert!(
            f.payload[4..].iter().all(|&x| x == (n % 251) as u8),
            "echo {n} differs"
        );
    }
    a_writer.join().unwrap();
    assert_eq!(done.load(Ordering::SeqCst), COUNT as usize);
    b.assert_echoes(b"done");
    server.shutdown();
}

#[test]
fn a_sender_on_another_thread_waits_for_a_client_that_does_not_read_then_fails_at_the_write_timeout(
) {
    let write_timeout = Duration::from_millis(500);
    let (running, addr, senders_rx) = spawn_handing_out_senders(bind(Config {
        write_timeout: Some(write_timeout),
        ..config()
    }));
    let mut c = raw_open(addr); // does not read until the end
    let pusher = senders_rx.recv_timeout(5 * SECOND).unwrap();
    let chunk = vec![3u8; 60 << 10];
    let mut sent = 0usize;
    let (error, waited) = loop {
        let start = Instant::now();
        match pusher.send_binary(&chunk) {
            Ok(()) => sent += 1,
            Err(e) => break (e, start.elapsed()),
        }
        assert!(sent < 2000, "120 MB queued for a client that does not read");
    };
    // The last send waited, as a blocking write would, for the write
    // timeout; the ones before it went into the socket and the backlog.
    assert!(
        waited >= write_timeout * 9 / 10 && waited < write_timeout * 4,
        "the failing send took {waited:?}"
    );
    assert!(sent > 4, "failed after only {sent} sends: {error:?}");
    assert!(
        format!("{error}").contains("client stopped reading"),
        "{error} after {sent}"
    );
    assert!(
        pusher.send_binary(b"more").is_err(),
        "nothing more goes out"
    );
    // The connection is dropped: the client reads what the socket buffers held, then the end.
    wait_for("the connection to end", || {
        running.handle().connections() == 0
    });
    let (got, _) = read_all(&mut c.stream);
    assert!(
        got.len() < sent * (chunk.len() + 4),
        "the client got everything"
    );
    running.shutdown();
}

#[test]
fn a_callback_that_sends_more_than_the_cap_to_a_client_that_does_not_read_fails_at_once() {
    // The backlog cap is max_message_size + 512 KiB: about 576 KiB here.
    let (errors_tx, errors) = mpsc::channel();
    let running = bind(Config {
        limits: Limits {
            max_message_size: 64 << 10,
            ..Limits::default()
        },
        ..config()
    })
    .spawn_event_loop(move |_, tx| {
        let errors_tx = errors_tx.clone();
        move |_msg: MessageRef<'_>| {
            // Each message asks for 60 MB: the loop thread must not wait.
            let chunk = vec![3u8; 60 << 10];
            let start = Instant::now();
            for _ in 0..1000 {
                if let Err(e) = tx.send_binary(&chunk) {
                    let _ = errors_tx.send((start.elapsed(), e.to_string()));
                    return Err(e);
                }
            }
            Ok(())
        }
    })
    .unwrap();
    let addr = tcp_addr(&running);
    let mut c = raw_open(addr); // does not read until the end
    c.write(&frame(FIN | OP_TEXT, b"go"));
    let (took, error) = errors.recv_timeout(5 * SECOND).expect("the send failed");
    assert!(took < 2 * SECOND, "sends blocked the loop: {took:?}");
    assert!(error.contains("fell more than"), "{error}");
    wait_for("the connection to end", || {
        running.handle().connections() == 0
    });
    let (got, _) = read_all(&mut c.stream);
    assert!(got.len() < 60 << 20, "the client got everything");
    running.shutdown();
}

#[test]
fn a_client_that_floods_does_not_starve_others() {
    // One loop thread; A pipelines 16 MiB of small messages and reads its echoes.
    let (server, addr) = spawn_echo(bind(Config {
        event_loop_threads: 1,
        ..config()
    }));
    const COUNT: usize = 4096;
    let a = raw_open(addr);
    let mut a_reader = RawClient {
        stream: a.stream.try_clone().unwrap(),
    };
    let mut a_out = a.stream.try_clone().unwrap();
    let flood = frame(FIN | OP_BINARY, &[4; 4096]);
    let writer = thread::spawn(move || {
        for _ in 0..COUNT {
            a_out.write_all(&flood).unwrap();
        }
    });
    let reader = thread::spawn(move || {
        for _ in 0..COUNT {
            a_reader.expect_echo(OP_BINARY, &[4; 4096]);
        }
    });
    let mut b = raw_open(addr);
    let (mut slowest, mut turns) = (Duration::ZERO, 0);
    while !reader.is_finished() {
        let start = Instant::now();
        b.assert_echoes(b"my turn");
        slowest = slowest.max(start.elapsed());
        turns += 1;
    }
    writer.join().unwrap();
    reader.join().unwrap();
    assert!(
        slowest < Duration::from_millis(500),
        "an echo to B took {slowest:?}"
    );
    assert!(turns >= 10, "only {turns} echoes to B during the flood");
    drop(a);
    server.shutdown();
}

#[test]
fn a_client_that_stops_reading_is_dropped_after_write_timeout() {
    let (server, log) = error_log(bind(Config {
        event_loop_threads: 1,
        write_timeout: Some(Duration::from_millis(300)),
        ..config()
    }));
    let (server, addr) = spawn_echo(server);
    let a = raw_open(addr);
    let done = Arc::new(AtomicUsize::new(0));
    let a_writer = write_chunks(a.stream.try_clone().unwrap(), 512, done.clone());
    let mut b = raw_open(addr);
    wait_until_stalled(&done, Duration::from_millis(500));
    // Within the write timeout plus a sweep or two, A is gone and B is not.
    let start = Instant::now();
    wait_for("A to be dropped", || server.handle().connections() == 1);
    assert!(start.elapsed() < 3 * SECOND, "took {:?}", start.elapsed());
    a_writer.join().unwrap(); // its blocked write fails once the server drops it
    assert!(done.load(Ordering::SeqCst) < 512);
    let log = log.lock().unwrap().clone();
    assert!(
        log.iter().any(|e| e.contains("client stopped reading")),
        "{log:?}"
    );
    b.assert_echoes(b"still here");
    drop(a);
    server.shutdown();
}

// --- connections that end -------------------------------------------------------------

#[test]
fn clients_that_hang_up_at_any_point_free_their_slots() {
    let (server, addr) = spawn_echo(bind(config()));
    // Connected, nothing sent.
    drop(TcpStream::connect(addr).unwrap());
    // Half a head.
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: 127").unwrap();
    drop(s);
    // Upgraded, then gone mid-frame.
    let mut c = raw_open(addr);
    c.write(&[0x82, 0xfe, 0x10, 0x00, 1, 2, 3, 4, 9, 9, 9]);
    drop(c);
    // Upgraded, then gone without a close.
    drop(raw_open(addr));
    // A client that closes while the server has echoes queued.
    let mut c = raw_open(addr);
    c.write(&frame(FIN | OP_BINARY, &vec![1; 2 << 20]));
    drop(c);
    wait_for("every slot to free", || server.handle().connections() == 0);
    assert_echo_within_a_second(addr);
    server.shutdown();
}

// --- shutdown -----------------------------------------------------------------------

#[test]
fn shutdown_sends_1001_and_returns_once_clients_close() {
    let (server, addr) = spawn_echo(bind(Config {
        shutdown_timeout: 5 * SECOND,
        ..config()
    }));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let mut ws = client::connect(&ws_url(addr)).unwrap();
            ws.get_ref().set_read_timeout(Some(5 * SECOND)).unwrap();
            ws.send("hi").unwrap();
            assert_eq!(ws.recv().unwrap(), Some(Message::Text("hi".into())));
            // The client answers the close (recv does) and then hangs up.
            thread::spawn(move || {
                while ws.recv()?.is_some() {}
                Ok::<_, Error>(ws.peer_close_frame().flatten().map(|f| f.code))
            })
        })
        .collect();
    wait_for("three connections", || server.handle().connections() == 3);
    let start = Instant::now();
    let stopper = thread::spawn(move || server.shutdown());
    for r in readers {
        assert_eq!(r.join().unwrap().unwrap(), Some(CloseCode::GOING_AWAY));
    }
    assert_eq!(stopper.join().unwrap(), 0, "every client closed cleanly");
    assert!(start.elapsed() < 3 * SECOND, "took {:?}", start.elapsed());
    assert!(TcpStream::connect(addr).is_err(), "no longer listening");
}

#[test]
fn shutdown_counts_clients_that_ignore_the_close() {
    let (server, addr) = spawn_echo(bind(Config {
        shutdown_timeout: Duration::from_millis(200),
        ..config()
    }));
    let mut ignorer = raw_open(addr);
    ignorer.assert_echoes(b"here");
    let handle = server.handle();
    let start = Instant::now();
    assert_eq!(server.shutdown(), 1, "one client ignored the close");
    assert!(start.elapsed() < 3 * SECOND, "took {:?}", start.elapsed());
    assert_eq!(handle.connections(), 0);
    let f = ignorer.read_server_frame();
    assert_eq!(
        (f.opcode, &f.payload[..2]),
        (OP_CLOSE, &1001u16.to_be_bytes()[..])
    );
    ignorer.expect_tcp_closed();
    assert!(TcpStream::connect(addr).is_err(), "no longer listening");
}

#[test]
fn a_shutdown_handle_stops_the_loop_from_another_thread() {
    let server = bind(config());
    let handle = server.shutdown_handle();
    let addr = match server.local_addr() {
        Addr::Tcp(addr) => addr,
        other => panic!("{other:?}"),
    };
    let loop_thread = thread::spawn(move || server.run_event_loop(echo_factory));
    let mut c = raw_open(addr);
    c.assert_echoes(b"up");
    let reader = thread::spawn(move || {
        let f = c.read_server_frame();
        assert_eq!(
            (f.opcode, &f.payload[..2]),
            (OP_CLOSE, &1001u16.to_be_bytes()[..])
        );
        c.write(&close_frame(1001, b""));
        c.expect_tcp_closed();
    });
    assert_eq!(handle.shutdown(), 0);
    reader.join().unwrap();
    loop_thread.join().unwrap().unwrap();
    assert!(TcpStream::connect(addr).is_err(), "no longer listening");
}

// --- closing ----------------------------------------------------------------------

/// Reads until EOF or error; returns the bytes and how it ended.
fn read_all(s: &mut TcpStream) -> (Vec<u8>, String) {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 256 << 10];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (out, "EOF".into()),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => return (out, format!("{e}")),
        }
    }
}

/// The size of the body `request_a_big_body` asks for: more than the socket
/// buffers hold, so most of it waits in the server's backlog.
const BIG_BODY: usize = 8 << 20;

/// A server whose `on_http` answers with `BIG_BODY` bytes, and a connection
/// that has sent it a request and not read yet.
fn request_a_big_body() -> (Running, TcpStream) {
    let server = bind(config())
        .on_http(|_| Response::new(200, "application/octet-stream", vec![b'z'; BIG_BODY]));
    let (server, addr) = spawn_echo(server);
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(5 * SECOND)).unwrap();
    s.write_all(b"GET /big HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    (server, s)
}

fn assert_whole_big_body(s: &mut TcpStream) {
    let (got, end) = read_all(s);
    let text_end = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(
        got.len() - text_end,
        BIG_BODY,
        "body cut short; the read ended with {end}"
    );
}

#[test]
fn a_large_http_response_reaches_a_client_that_pauses_before_reading() {
    let (server, mut s) = request_a_big_body();
    // Well within the write timeout (10 s), longer than the loop's 2 s linger.
    thread::sleep(Duration::from_millis(2500));
    assert_whole_big_body(&mut s);
    server.shutdown();
}

#[test]
fn a_large_http_response_reaches_a_client_that_half_closed_after_its_request() {
    let (server, mut s) = request_a_big_body();
    // The response is queued (most of it in the backlog) before the
    // client's end arrives, and the end arrives before the client reads.
    thread::sleep(Duration::from_millis(200));
    s.shutdown(std::net::Shutdown::Write).unwrap();
    thread::sleep(Duration::from_millis(200));
    assert_whole_big_body(&mut s);
    wait_for("the connection to end", || {
        server.handle().connections() == 0
    });
    server.shutdown();
}

#[test]
fn a_client_that_half_closes_still_gets_its_echoes() {
    let (server, addr) = spawn_echo(bind(config()));
    let mut c = raw_open(addr);
    let mut bytes = frame(FIN | OP_TEXT, b"one");
    bytes.extend_from_slice(&frame(FIN | OP_BINARY, &[2; 70_000]));
    c.write(&bytes);
    c.stream.shutdown(std::net::Shutdown::Write).unwrap();
    c.expect_echo(OP_TEXT, b"one");
    c.expect_echo(OP_BINARY, &[2; 70_000]);
    // No close frame came from the client, so none is owed: just the end.
    c.expect_tcp_closed();
    drop(c);
    wait_for("the connection to end", || {
        server.handle().connections() == 0
    });
    server.shutdown();
}

// --- more of what Server::run does ----------------------------------------------------

#[test]
fn callbacks_can_send_to_clients_on_other_loop_threads() {
    // A chat room: every message goes to every client, whichever thread serves it.
    let room: Arc<Mutex<Vec<Sender>>> = Arc::default();
    let members = room.clone();
    let running = bind(config())
        .spawn_event_loop(move |_: &Request, tx: Sender| {
            members.lock().unwrap().push(tx);
            let room = members.clone();
            move |msg: MessageRef<'_>| {
                for member in room.lock().unwrap().iter() {
                    member.send_ref(msg)?;
                }
                Ok(())
            }
        })
        .unwrap();
    let addr = tcp_addr(&running);
    let mut clients: Vec<_> = (0..6).map(|_| raw_open(addr)).collect();
    wait_for("six members", || room.lock().unwrap().len() == 6);
    for i in 0..clients.len() {
        clients[i].write(&frame(FIN | OP_TEXT, format!("from {i}").as_bytes()));
        // Every client, the sender included, gets it before the next is sent.
        for c in &mut clients {
            c.expect_echo(OP_TEXT, format!("from {i}").as_bytes());
        }
    }
    running.shutdown();
}

#[test]
fn serves_a_unix_socket_without_host_checks() {
    let dir = std::env::temp_dir().join(format!("stdws-el-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("io.sock");
    let running = Server::bind_unix(&path)
        .unwrap()
        .config(config())
        .on_http(|req| Response::json(200, format!("{:?}", req.path())))
        .spawn_event_loop(echo_factory)
        .unwrap();
    let mut ws = client::connect_unix(&path, "/", &ClientConfig::default()).unwrap();
    ws.send(vec![1u8, 2, 3]).unwrap();
    assert_eq!(ws.recv().unwrap(), Some(Message::Binary(vec![1, 2, 3])));
    let mut s = std::os::unix::net::UnixStream::connect(&path).unwrap();
    s.set_read_timeout(Some(5 * SECOND)).unwrap();
    s.write_all(b"GET /io/outputs HTTP/1.1\r\nHost: %2Fvar%2Frun%2Fbb-io.sock\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    assert!(
        response.starts_with("HTTP/1.1 200 OK") && response.ends_with("\"/io/outputs\""),
        "{response}"
    );
    drop((ws, s));
    assert_eq!(running.shutdown(), 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn negotiates_permessage_deflate_when_configured() {
    let (server, addr) = spawn_echo(bind(Config {
        deflate: Some(DeflateConfig::default()),
        ..config()
    }));
    let mut c = RawClient::connect(addr);
    c.write(
        upgrade_request(
            &addr.to_string(),
            "Sec-WebSocket-Extensions: permessage-deflate\r\n",
        )
        .as_bytes(),
    );
    let head = c.read_response_head();
    assert_eq!(head.status, 101);
    assert!(
        head.header("Sec-WebSocket-Extensions")
            .starts_with("permessage-deflate"),
        "{}",
        head.raw_head
    );
    // A compressible message comes back compressed (RSV1) and smaller.
    let text = "the same words again and again, ".repeat(100);
    c.write(&frame(FIN | OP_TEXT, text.as_bytes()));
    let f = c.read_frame();
    assert_eq!((f.opcode, f.rsv), (OP_TEXT, 0b100), "{:02x?}", f.header);
    assert!(
        f.payload.len() < text.len() / 4,
        "{} bytes",
        f.payload.len()
    );
    // The crate's client round-trips through it.
    let cfg = ClientConfig {
        deflate: Some(DeflateConfig::default()),
        ..ClientConfig::default()
    };
    let mut ws = client::connect_with(&ws_url(addr), &cfg).unwrap();
    for _ in 0..3 {
        ws.send(text.as_str()).unwrap();
        assert_eq!(ws.recv().unwrap(), Some(Message::Text(text.clone())));
    }
    server.shutdown();
}

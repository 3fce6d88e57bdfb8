//! The server runtime over real loopback sockets, in both of its modes: a
//! thread per client (`Server::run` / `spawn`) and the event loop
//! (`Server::run_event_loop` / `spawn_event_loop`, Linux only).
//!
//! Every behaviour the two share is written once, as `fn name(mode: Mode)`,
//! and runs as `threaded::name` and `event_loop::name` (see
//! [`in_both_modes!`]): echoes, the protocol's control frames and failure
//! codes, HTTP on the same port, hooks, the Host/Origin policy, limits and
//! deadlines, keepalive, senders kept by other threads, the hub, handler
//! errors and panics, backpressure, connections that end, and shutdown. The
//! shared tests give both modes one handler in the event loop's shape (a
//! factory per client that returns a callback per message); threaded, the
//! client's thread calls it with `ws.request()` and each `ws.recv_ref()`.
//! What only one mode has is at the end, a section per mode.
//!
//! Deadlines in the event loop are checked once a second, so its timing
//! bounds allow a second or two more; nothing sleeps to wait for an event.

mod common;

use common::{close_frame, frame, unmasked_frame, RawClient, FIN, OP_BINARY, OP_CLOSE, OP_CONT};
use common::{raw_exchange, status_of, threads_named, upgrade_request, OP_PING, OP_PONG, OP_TEXT};
use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};
use stdws::client::{self, ClientConfig, ConnectError};
use stdws::hub::{Hub, Membership};
#[cfg(feature = "deflate")]
use stdws::DeflateConfig;
use stdws::{
    Accept, Addr, CloseCode, Config, Error, Keepalive, Limits, Message, MessageRef, Request,
    Response, Running, Sender, Server, Stats, Stream, WebSocket,
};

const SECOND: Duration = Duration::from_secs(1);

// ---------------------------------------------------------------------------
// The harness: one handler, either mode
// ---------------------------------------------------------------------------

/// How a [`Server`] serves its clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// `Server::spawn` / `Server::run`: a thread per client.
    Threaded,
    /// `Server::spawn_event_loop` / `Server::run_event_loop`: a few epoll threads.
    #[cfg(all(target_os = "linux", feature = "event-loop"))]
    EventLoop,
}

impl Mode {
    /// `threaded` or `event_loop`, whichever is this mode's.
    #[cfg_attr(
        not(all(target_os = "linux", feature = "event-loop")),
        allow(unused_variables)
    )]
    fn pick<T>(self, threaded: T, event_loop: T) -> T {
        match self {
            Mode::Threaded => threaded,
            #[cfg(all(target_os = "linux", feature = "event-loop"))]
            Mode::EventLoop => event_loop,
        }
    }

    /// Serves `factory`'s callbacks on a background thread.
    fn serve<F, H>(self, server: Server, factory: F) -> Running
    where
        F: Fn(&Request, Sender) -> H + Send + Sync + 'static,
        H: FnMut(MessageRef<'_>) -> Result<(), Error> + 'static,
    {
        match self {
            Mode::Threaded => server.spawn(per_thread(factory)),
            #[cfg(all(target_os = "linux", feature = "event-loop"))]
            Mode::EventLoop => server.spawn_event_loop(factory),
        }
        .unwrap_or_else(|e| panic!("{self:?}: the server did not start: {e}"))
    }

    /// Serves `factory`'s callbacks on this thread until shut down.
    fn run<F, H>(self, server: Server, factory: F) -> io::Result<()>
    where
        F: Fn(&Request, Sender) -> H + Send + Sync + 'static,
        H: FnMut(MessageRef<'_>) -> Result<(), Error> + 'static,
    {
        match self {
            Mode::Threaded => server.run(per_thread(factory)),
            #[cfg(all(target_os = "linux", feature = "event-loop"))]
            Mode::EventLoop => server.run_event_loop(factory),
        }
    }
}

/// The event loop's factory as a thread-per-client handler: the factory
/// gets the client's request and a `Sender`, then the callback each message.
fn per_thread<F, H>(factory: F) -> impl Fn(WebSocket<Stream>) -> Result<(), Error> + Send + Sync
where
    F: Fn(&Request, Sender) -> H + Send + Sync + 'static,
    H: FnMut(MessageRef<'_>) -> Result<(), Error> + 'static,
{
    move |mut ws: WebSocket<Stream>| {
        let tx = ws.sender()?;
        let request = ws.request().expect("a server's WebSocket has its request");
        let mut on_message = factory(request, tx);
        while let Some(msg) = ws.recv_ref()? {
            on_message(msg)?;
        }
        Ok(())
    }
}

/// Runs each shared test (a `fn name(mode: Mode)` in this file) once per
/// mode, as `threaded::name` and `event_loop::name`, so that a failure names
/// its mode. Attributes before a name (`cfg`, `ignore`) go on both. A shared
/// test missing from the list is dead code, which clippy refuses.
macro_rules! in_both_modes {
    ($($(#[$attr:meta])* $name:ident,)*) => {
        mod threaded {
            $( $(#[$attr])* #[test] fn $name() { super::$name(super::Mode::Threaded) } )*
        }
        #[cfg(all(target_os = "linux", feature = "event-loop"))]
        mod event_loop {
            $( $(#[$attr])* #[test] fn $name() { super::$name(super::Mode::EventLoop) } )*
        }
    };
}

in_both_modes! {
    echoes_text_and_binary_to_many_clients_at_once,
    frames_that_arrive_with_the_handshake_are_not_lost,
    fragmented_messages_are_reassembled_with_a_ping_between_fragments,
    a_frame_written_a_byte_at_a_time_is_echoed,
    answers_pings_and_echoes_the_close_code,
    closes_with_1002_on_a_protocol_error_and_other_clients_carry_on,
    closes_with_1007_on_invalid_utf8_text,
    closes_with_1009_on_a_message_over_max_message_size,
    plain_http_goes_to_on_http_with_its_body,
    requests_without_on_http_get_400,
    a_body_over_max_body_size_gets_413_and_a_chunked_one_411,
    the_handler_sees_the_request_and_on_upgrade_refuses_or_picks_a_subprotocol,
    cross_site_origins_and_rebound_hosts_get_403_for_pages_too,
    listed_hosts_and_origins_are_allowed,
    #[cfg(unix)]
    serves_a_unix_socket_without_host_checks,
    #[cfg(feature = "deflate")]
    negotiates_permessage_deflate_when_configured,
    errors_reach_the_error_hook_not_stderr,
    over_max_connections_gets_503_not_a_hang,
    a_slow_handshake_gets_408,
    a_body_that_does_not_arrive_in_time_gets_408,
    an_oversized_request_head_gets_431,
    a_client_that_dribbles_its_head_still_gets_408,
    sends_keepalive_pings_and_drops_silent_clients,
    keepalive_keeps_a_client_that_answers_pings,
    read_timeout_closes_a_silent_client_with_1001,
    a_client_that_never_answers_our_close_is_dropped_after_the_close_timeout,
    a_sender_kept_by_another_thread_pushes_messages,
    a_sender_can_shut_a_client_down_from_another_thread,
    fed_replies_go_out_without_a_flush,
    callbacks_can_send_to_every_client,
    hub_members_get_every_broadcast_and_leave_when_they_disconnect,
    membership_send_comes_first_then_broadcasts_in_order,
    hub_closes_a_member_that_cannot_keep_up_and_others_keep_receiving,
    a_handler_error_closes_its_client_and_is_reported,
    a_panicking_handler_ends_only_its_own_client,
    a_panicking_http_hook_ends_only_its_own_request,
    a_client_that_does_not_read_does_not_stall_others,
    a_client_that_floods_does_not_starve_others,
    a_client_that_stops_reading_is_dropped_after_write_timeout,
    clients_that_hang_up_at_any_point_free_their_slots,
    survives_garbage_slowloris_floods_and_stalled_readers,
    a_large_http_response_reaches_a_client_that_pauses_before_reading,
    a_large_http_response_reaches_a_client_that_half_closed_after_its_request,
    a_client_that_half_closes_still_gets_its_echoes,
    shutdown_sends_1001_and_returns_once_clients_close,
    #[cfg_attr(
        windows,
        ignore = "Windows does not wake a thread blocked in recv on shutdown(): the forced close waits for the read timeout"
    )]
    shutdown_counts_clients_that_ignore_the_close,
    a_shutdown_handle_stops_the_server_from_another_thread,
    stats_count_connections_and_the_messages_and_bytes_each_way,
    stats_count_refusals_by_status,
    stats_count_closes_sent_and_received_by_code,
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// The thread name of `test`'s server in `mode`: its own, so that a threaded
/// test can count its connection threads (the event loop names its loop
/// threads so). Linux keeps 15 bytes of a thread's name.
fn thread_name(mode: Mode, test: &str) -> String {
    let name = format!("{}-{test}", mode.pick("t", "e"));
    assert!(name.len() <= 15, "thread name {name:?} is over 15 bytes");
    name
}

/// `test`'s config: two loop threads (so clients are spread over more than
/// one), threads named for the test, and a short shutdown wait for clients
/// a test leaves connected.
fn config(mode: Mode, test: &str) -> Config {
    Config {
        event_loop_threads: 2,
        thread_name: thread_name(mode, test),
        shutdown_timeout: Duration::from_millis(100),
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

/// Serves `factory` in `mode`; returns the server and its address.
fn spawn<F, H>(mode: Mode, server: Server, factory: F) -> (Running, SocketAddr)
where
    F: Fn(&Request, Sender) -> H + Send + Sync + 'static,
    H: FnMut(MessageRef<'_>) -> Result<(), Error> + 'static,
{
    let running = mode.serve(server, factory);
    let addr = tcp_addr(&running);
    (running, addr)
}

/// Each client's messages echoed through its Sender, borrowed in place.
fn echo(_: &Request, tx: Sender) -> impl FnMut(MessageRef<'_>) -> Result<(), Error> {
    move |msg: MessageRef<'_>| tx.send_ref(msg)
}

/// An echo server in `mode`.
fn spawn_echo(mode: Mode, server: Server) -> (Running, SocketAddr) {
    spawn(mode, server, echo)
}

/// An echo server whose factory also hands each client's `Sender` to the test.
fn spawn_handing_out_senders(
    mode: Mode,
    server: Server,
) -> (Running, SocketAddr, mpsc::Receiver<Sender>) {
    let (senders_tx, senders_rx) = mpsc::channel::<Sender>();
    let senders_tx = Mutex::new(senders_tx);
    let (running, addr) = spawn(mode, server, move |_: &Request, tx: Sender| {
        senders_tx.lock().unwrap().send(tx.clone()).unwrap();
        move |msg: MessageRef<'_>| tx.send_ref(msg)
    });
    (running, addr, senders_rx)
}

fn ws_url(addr: SocketAddr, path: &str) -> String {
    format!("ws://{addr}{path}")
}

/// A raw client past a successful handshake (Host is the server's address).
fn raw_open(addr: SocketAddr) -> RawClient {
    let mut c = RawClient::connect(addr);
    c.write(upgrade_request(&addr.to_string(), "").as_bytes());
    let head = c.read_response_head();
    assert_eq!(head.status, 101, "handshake refused:\n{}", head.raw_head);
    c
}

/// Waits up to `limit` for `done`; fails with `what` otherwise.
fn wait_within(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

/// Waits up to 5 s for `done`; fails with `what` otherwise.
fn wait_for(what: &str, done: impl FnMut() -> bool) {
    wait_within(5 * SECOND, what, done);
}

/// Threaded: waits until every connection thread of `test`'s server has
/// ended (the event loop's threads stay until shutdown).
fn assert_threads_end(mode: Mode, test: &str) {
    if mode == Mode::Threaded {
        let name = thread_name(mode, test);
        wait_for(&format!("the {name} threads to end"), || {
            threads_named(&name) == 0
        });
    }
}

/// Waits until the server holds no connection and, threaded, every
/// connection thread has ended.
fn assert_freed(mode: Mode, server: &Running, test: &str) {
    wait_for("every connection to end", || {
        server.handle().connections() == 0
    });
    assert_threads_end(mode, test);
}

/// A fresh client gets its echo within a second.
fn assert_echo_within_a_second(addr: SocketAddr) {
    let start = Instant::now();
    let mut ws = client::connect(&ws_url(addr, "/")).unwrap();
    ws.get_ref().set_read_timeout(Some(5 * SECOND)).unwrap();
    ws.send("still here").unwrap();
    assert_eq!(ws.recv().unwrap(), Some(Message::Text("still here".into())));
    assert!(start.elapsed() < SECOND, "echo took {:?}", start.elapsed());
}

/// Sends a request and reads only the response head: an upgraded connection stays open.
fn raw_status(addr: SocketAddr, request: &str) -> u16 {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(5 * SECOND)).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && s.read(&mut byte).unwrap_or(0) == 1 {
        head.push(byte[0]);
    }
    status_of(&String::from_utf8_lossy(&head))
}

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

/// An `on_error` hook that records each error's `Debug` text, and the list it fills.
type ErrorLog = Arc<Mutex<Vec<String>>>;

fn error_log(server: Server) -> (Server, ErrorLog) {
    let log = ErrorLog::default();
    let sink = log.clone();
    let server = server.on_error(move |_, e| sink.lock().unwrap().push(format!("{e:?}")));
    (server, log)
}

// ---------------------------------------------------------------------------
// Both modes: echo
// ---------------------------------------------------------------------------

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

fn echoes_text_and_binary_to_many_clients_at_once(mode: Mode) {
    const CLIENTS: usize = 50;
    let (server, addr) = spawn_echo(mode, bind(config(mode, "many")));
    let all_connected = Arc::new(Barrier::new(CLIENTS));
    let peak = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let (all_connected, peak, handle) =
                (all_connected.clone(), peak.clone(), server.handle());
            thread::spawn(move || {
                let mut ws = client::connect(&ws_url(addr, "/")).unwrap();
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
    assert_freed(mode, &server, "many");
    assert_eq!(server.shutdown(), 0);
}

fn frames_that_arrive_with_the_handshake_are_not_lost(mode: Mode) {
    let (server, addr) = spawn_echo(mode, bind(config(mode, "early")));
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
    drop(c);
    server.shutdown();
}

fn fragmented_messages_are_reassembled_with_a_ping_between_fragments(mode: Mode) {
    let (server, addr) = spawn_echo(mode, bind(config(mode, "frag")));
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
    drop(c);
    server.shutdown();
}

fn a_frame_written_a_byte_at_a_time_is_echoed(mode: Mode) {
    let (server, addr) = spawn_echo(mode, bind(config(mode, "bytewise")));
    let mut c = raw_open(addr);
    let payload: Vec<u8> = (0..200u8).collect();
    c.write_bytewise(&frame(FIN | OP_BINARY, &payload));
    c.expect_echo(OP_BINARY, &payload);
    drop(c);
    server.shutdown();
}

// ---------------------------------------------------------------------------
// Both modes: control frames and protocol errors
// ---------------------------------------------------------------------------

fn answers_pings_and_echoes_the_close_code(mode: Mode) {
    let (server, addr) = spawn_echo(mode, bind(config(mode, "ping")));
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
    assert_freed(mode, &server, "ping");
    server.shutdown();
}

fn closes_with_1002_on_a_protocol_error_and_other_clients_carry_on(mode: Mode) {
    let (server, log) = error_log(bind(config(mode, "1002")));
    let (server, addr) = spawn_echo(mode, server);
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
    drop(bystander);
    server.shutdown();
}

fn closes_with_1007_on_invalid_utf8_text(mode: Mode) {
    let (server, addr) = spawn_echo(mode, bind(config(mode, "1007")));
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

fn closes_with_1009_on_a_message_over_max_message_size(mode: Mode) {
    let (server, addr) = spawn_echo(
        mode,
        bind(Config {
            limits: Limits {
                max_message_size: 1000,
                ..Limits::default()
            },
            ..config(mode, "1009")
        }),
    );
    let mut c = raw_open(addr);
    c.assert_echoes(&[5; 1000]);
    c.write(&frame(FIN | OP_BINARY, &[6; 1001]));
    c.expect_close(1009);
    drop(c);
    server.shutdown();
}

// ---------------------------------------------------------------------------
// Both modes: HTTP on the same port
// ---------------------------------------------------------------------------

fn plain_http_goes_to_on_http_with_its_body(mode: Mode) {
    let server = bind(config(mode, "http")).on_http(|req| match req.path() {
        "/" => Response::html(200, "<h1>device</h1>"),
        "/nope" => Response::status(404),
        path => Response::text(
            200,
            format!(
                "{} {path} {}",
                req.method(),
                String::from_utf8_lossy(req.body())
            ),
        ),
    });
    let (server, addr) = spawn_echo(mode, server);
    // A page, with its length, type and the end of the connection.
    let response = raw_exchange(addr, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    for header in [
        "Content-Length: 15",
        "Connection: close",
        "Content-Type: text/html; charset=utf-8",
    ] {
        assert!(
            response.contains(&format!("\r\n{header}\r\n")),
            "no {header}: {response}"
        );
    }
    assert!(response.ends_with("\r\n\r\n<h1>device</h1>"), "{response}");
    let response = raw_exchange(addr, b"GET /nope HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    assert_eq!(status_of(&response), 404, "{response}");

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

    // The body in pieces, after the head: the server waits for all of it.
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

fn requests_without_on_http_get_400(mode: Mode) {
    let (server, addr) = spawn_echo(mode, bind(config(mode, "nohttp")));
    let response = raw_exchange(addr, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    assert_eq!(status_of(&response), 400, "{response}");
    let garbage = raw_exchange(addr, &[0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, b'\r', b'\n']);
    assert_eq!(status_of(&garbage), 400, "{garbage}");
    server.shutdown();
}

fn a_body_over_max_body_size_gets_413_and_a_chunked_one_411(mode: Mode) {
    let server = bind(Config {
        max_body_size: 10,
        ..config(mode, "body")
    })
    .on_http(|req| Response::text(200, format!("{}", req.body().len())));
    let (server, addr) = spawn_echo(mode, server);
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

// ---------------------------------------------------------------------------
// Both modes: handshake hooks and checks
// ---------------------------------------------------------------------------

fn the_handler_sees_the_request_and_on_upgrade_refuses_or_picks_a_subprotocol(mode: Mode) {
    let server = bind(config(mode, "request")).on_upgrade(|req| {
        if req.header("authorization") != Some("Bearer secret") {
            return Err(Response::status(401));
        }
        let chosen = req.protocols().find(|p| *p == "bb-io.v2");
        Ok(chosen.map_or_else(Accept::default, Accept::with_protocol))
    });
    let (server, addr) = spawn(mode, server, |req: &Request, tx: Sender| {
        let summary = format!(
            "{} {:?} {:?}",
            req.path(),
            req.query(),
            req.header("x-device")
        );
        tx.send_text(&summary).unwrap();
        move |msg: MessageRef<'_>| tx.send_ref(msg)
    });
    let refused = client::connect(&ws_url(addr, "/io")).unwrap_err();
    assert!(
        matches!(refused, Error::Connect(ConnectError::Refused(401))),
        "{refused}"
    );
    let cfg = ClientConfig {
        protocols: vec!["bb-io.v1".into(), "bb-io.v2".into()],
        headers: vec![
            ("Authorization".into(), "Bearer secret".into()),
            ("X-Device".into(), "bb400".into()),
        ],
        ..ClientConfig::default()
    };
    let mut ws = client::connect_with(&ws_url(addr, "/io?live=1"), &cfg).unwrap();
    assert_eq!(ws.protocol(), Some("bb-io.v2"));
    let expected = r#"/io Some("live=1") Some("bb400")"#;
    assert_eq!(ws.recv().unwrap(), Some(Message::Text(expected.into())));
    ws.send("and echo").unwrap();
    assert_eq!(ws.recv().unwrap(), Some(Message::Text("and echo".into())));
    // No offer the hook takes: accepted without a subprotocol.
    let cfg = ClientConfig {
        protocols: vec!["bb-io.v1".into()],
        ..cfg
    };
    let mut other = client::connect_with(&ws_url(addr, "/"), &cfg).unwrap();
    assert_eq!(other.protocol(), None);
    assert_eq!(
        other.recv().unwrap(),
        Some(Message::Text(r#"/ None Some("bb400")"#.into()))
    );
    drop((ws, other));
    server.shutdown();
}

fn cross_site_origins_and_rebound_hosts_get_403_for_pages_too(mode: Mode) {
    let server = bind(config(mode, "origin")).on_http(|_| Response::status(200));
    let (server, addr) = spawn_echo(mode, server);
    let host = addr.to_string();
    let evil = raw_exchange(
        addr,
        upgrade_request(&host, "Origin: http://evil.example\r\n").as_bytes(),
    );
    assert_eq!(status_of(&evil), 403, "{evil}");
    // The attacker's page, its name now resolving to the device, is
    // same-origin with itself; its Host gives it away.
    let rebound = "evil.example:8989";
    for extra in [String::new(), format!("Origin: http://{rebound}\r\n")] {
        let ws = raw_exchange(addr, upgrade_request(rebound, &extra).as_bytes());
        assert_eq!(status_of(&ws), 403, "{extra:?}: {ws}");
    }
    let post =
        format!("POST /io/outputs/0 HTTP/1.1\r\nHost: {rebound}\r\nContent-Length: 1\r\n\r\n1");
    assert_eq!(raw_status(addr, &post), 403, "a page");
    // The same origin is fine, and so is none.
    let mut c = RawClient::connect(addr);
    c.write(upgrade_request(&host, &format!("Origin: http://{host}\r\n")).as_bytes());
    assert_eq!(c.read_response_head().status, 101);
    c.assert_echoes(b"same origin");
    assert_eq!(
        raw_status(addr, &upgrade_request(&host, "")),
        101,
        "no Origin"
    );
    drop(c);
    server.shutdown();
}

fn listed_hosts_and_origins_are_allowed(mode: Mode) {
    let server = bind(Config {
        allowed_hosts: vec!["bb400.local".into()],
        allowed_origins: vec!["http://192.168.1.10:8000".into()],
        ..config(mode, "allow")
    });
    let (server, addr) = spawn_echo(mode, server);
    let by_name = upgrade_request("bb400.local:8989", "");
    assert_eq!(raw_status(addr, &by_name), 101);
    let other_page = upgrade_request(&addr.to_string(), "Origin: http://192.168.1.10:8000\r\n");
    assert_eq!(raw_status(addr, &other_page), 101);
    server.shutdown();
}

#[cfg(unix)]
fn serves_a_unix_socket_without_host_checks(mode: Mode) {
    let dir = std::env::temp_dir().join(format!("stdws-test-{mode:?}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("io.sock");
    let server = Server::bind_unix(&path)
        .unwrap()
        .config(config(mode, "unix"))
        .on_http(|req| Response::json(200, format!("{:?}", req.path())));
    let running = mode.serve(server, echo);
    let mut ws = client::connect_unix(&path, "/", &ClientConfig::default()).unwrap();
    ws.send(vec![1u8, 2, 3]).unwrap();
    assert_eq!(ws.recv().unwrap(), Some(Message::Binary(vec![1, 2, 3])));
    // requests_unixsocket sends the URL-encoded socket path as Host.
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

#[cfg(feature = "deflate")]
fn negotiates_permessage_deflate_when_configured(mode: Mode) {
    let (server, addr) = spawn_echo(
        mode,
        bind(Config {
            deflate: Some(DeflateConfig::default()),
            ..config(mode, "deflate")
        }),
    );
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
    let mut ws = client::connect_with(&ws_url(addr, "/"), &cfg).unwrap();
    for _ in 0..3 {
        ws.send(text.as_str()).unwrap();
        assert_eq!(ws.recv().unwrap(), Some(Message::Text(text.clone())));
    }
    drop((c, ws));
    server.shutdown();
}

fn errors_reach_the_error_hook_not_stderr(mode: Mode) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let server = bind(config(mode, "errhook"))
        .on_error(move |_, e| log.lock().unwrap().push(e.http_status()));
    let (server, addr) = spawn_echo(mode, server);
    raw_exchange(addr, b"GET / HTTP/1.0\r\n\r\n");
    raw_exchange(
        addr,
        upgrade_request("127.0.0.1", "")
            .replace("13", "8")
            .as_bytes(),
    );
    wait_for("two reports", || seen.lock().unwrap().len() >= 2);
    let mut statuses = seen.lock().unwrap().clone();
    statuses.sort();
    assert_eq!(statuses, vec![Some(400), Some(426)]);
    server.shutdown();
}

// ---------------------------------------------------------------------------
// Both modes: limits and deadlines
// ---------------------------------------------------------------------------

fn over_max_connections_gets_503_not_a_hang(mode: Mode) {
    let (server, addr) = spawn_echo(
        mode,
        bind(Config {
            max_connections: 2,
            ..config(mode, "max")
        }),
    );
    let mut held = client::connect(&ws_url(addr, "/")).unwrap();
    let other = client::connect(&ws_url(addr, "/")).unwrap();
    let assert_refused = || {
        let start = Instant::now();
        let refused = client::connect(&ws_url(addr, "/")).unwrap_err();
        assert!(
            matches!(refused, Error::Connect(ConnectError::Refused(503))),
            "{refused}"
        );
        assert!(start.elapsed() < SECOND, "took {:?}", start.elapsed());
    };
    assert_refused();
    // The held clients are unaffected.
    held.send("held").unwrap();
    assert_eq!(held.recv().unwrap(), Some(Message::Text("held".into())));
    // Their slots free up as they go.
    drop((held, other));
    wait_for("the slots to free", || server.handle().connections() == 0);
    // Connections still in their handshake hold slots too.
    let silent = [(); 2].map(|_| TcpStream::connect(addr).unwrap());
    wait_for("the silent connections", || {
        server.handle().connections() == 2
    });
    assert_refused();
    drop(silent);
    assert_freed(mode, &server, "max");
    assert_echo_within_a_second(addr);
    server.shutdown();
}

fn a_slow_handshake_gets_408(mode: Mode) {
    let (server, addr) = spawn_echo(
        mode,
        bind(Config {
            handshake_timeout: Duration::from_millis(300),
            ..config(mode, "slowhead")
        }),
    );
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
    assert_freed(mode, &server, "slowhead");
    assert_echo_within_a_second(addr);
    server.shutdown();
}

fn a_body_that_does_not_arrive_in_time_gets_408(mode: Mode) {
    let server = bind(Config {
        handshake_timeout: Duration::from_millis(300),
        ..config(mode, "slowbody")
    })
    .on_http(|_| Response::status(200));
    let (server, addr) = spawn_echo(mode, server);
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
    drop(s);
    server.shutdown();
}

fn an_oversized_request_head_gets_431(mode: Mode) {
    let (server, addr) = spawn_echo(mode, bind(config(mode, "bighead")));
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
    drop(s);
    server.shutdown();
}

fn a_client_that_dribbles_its_head_still_gets_408(mode: Mode) {
    let (server, addr) = spawn_echo(
        mode,
        bind(Config {
            handshake_timeout: Duration::from_millis(300),
            ..config(mode, "slowloris")
        }),
    );
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
    drop(s);
    // Its connection (threaded: its thread) is freed.
    assert_freed(mode, &server, "slowloris");
    assert_echo_within_a_second(addr);
    server.shutdown();
}

fn sends_keepalive_pings_and_drops_silent_clients(mode: Mode) {
    let (server, log) = error_log(bind(Config {
        keepalive: Some(Keepalive {
            interval: Duration::from_millis(200),
            timeout: Duration::from_millis(200),
        }),
        ..config(mode, "nopong")
    }));
    let (server, addr) = spawn_echo(mode, server);
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
    // The server's clock starts after `start`: a ping after the interval,
    // the close after the interval and the pong timeout.
    assert!(
        pinged >= Duration::from_millis(200),
        "ping after {pinged:?}"
    );
    assert!(
        closed >= Duration::from_millis(400),
        "closed after {closed:?}"
    );
    // And the close a whole pong timeout after the ping, as seen here. Under
    // Wine a ping that reaches the client late shortens the gap.
    assert!(
        cfg!(windows) || closed >= pinged + Duration::from_millis(200),
        "closed after {closed:?}, pinged after {pinged:?}"
    );
    let bound = mode.pick(2 * SECOND, 4 * SECOND);
    assert!(closed < bound, "closed after {closed:?}");
    drop(c);
    assert_freed(mode, &server, "nopong");
    let log = log.lock().unwrap().clone();
    assert!(log.iter().any(|e| e.contains("NoPong")), "{log:?}");
    server.shutdown();
}

fn keepalive_keeps_a_client_that_answers_pings(mode: Mode) {
    let (server, addr) = spawn_echo(
        mode,
        bind(Config {
            keepalive: Some(Keepalive {
                interval: Duration::from_millis(100),
                timeout: Duration::from_millis(100),
            }),
            ..config(mode, "pong")
        }),
    );
    // The crate's client says nothing; its recv() answers the pings.
    let mut ws = client::connect(&ws_url(addr, "/")).unwrap();
    let sender = ws.sender().unwrap();
    let reader = thread::spawn(move || ws.recv());
    // A raw client answers each ping by hand, for several pong timeouts.
    let mut c = raw_open(addr);
    let start = Instant::now();
    let mut pings = 0;
    while pings < 3 || start.elapsed() < Duration::from_millis(600) {
        let ping = c.read_server_frame();
        assert_eq!(ping.opcode, OP_PING, "{ping:?}");
        c.write(&frame(FIN | OP_PONG, &ping.payload));
        pings += 1;
    }
    c.assert_echoes(b"alive");
    assert_eq!(server.handle().connections(), 2, "both still connected");
    sender.send("alive").unwrap();
    assert_eq!(
        reader.join().unwrap().unwrap(),
        Some(Message::Text("alive".into()))
    );
    drop(c);
    server.shutdown();
}

fn read_timeout_closes_a_silent_client_with_1001(mode: Mode) {
    let (server, addr) = spawn_echo(
        mode,
        bind(Config {
            read_timeout: Some(Duration::from_millis(200)),
            keepalive: None,
            ..config(mode, "idle")
        }),
    );
    // Before the handshake: the server starts the clock when it reads the
    // request, which can be before the client has read the 101.
    let start = Instant::now();
    let mut c = raw_open(addr);
    c.expect_close(1001);
    assert_deadline_met(mode, start, Duration::from_millis(200));
    drop(c);
    assert_freed(mode, &server, "idle");
    server.shutdown();
}

/// A deadline of `limit` from `start` was met: not before it, and within
/// the mode's slack (a thread per client: a tick; the event loop: its
/// once-a-second sweep too).
fn assert_deadline_met(mode: Mode, start: Instant, limit: Duration) {
    let took = start.elapsed();
    assert!(took >= limit, "too early: {took:?}");
    let bound = mode.pick(2 * SECOND, 3 * SECOND);
    assert!(took < bound, "took {took:?}");
}

/// Our close sent (here by the callback), a client that neither answers it
/// nor hangs up is dropped once `close_timeout` has passed, keepalive or not.
fn a_client_that_never_answers_our_close_is_dropped_after_the_close_timeout(mode: Mode) {
    let config = Config {
        keepalive: None,
        close_timeout: Some(Duration::from_millis(300)),
        ..config(mode, "noclose")
    };
    let (server, addr) = spawn(mode, bind(config), |_: &Request, tx: Sender| {
        move |_: MessageRef<'_>| tx.close(CloseCode::NORMAL, "bye")
    });
    let mut c = raw_open(addr);
    c.write(&frame(FIN | OP_TEXT, b"close, please"));
    let start = Instant::now();
    // The close comes, then the end of the stream, though the client stays
    // silent and keeps its end open (expect_close waits up to 5 s).
    assert_eq!(c.expect_close(1000), "bye");
    assert_deadline_met(mode, start, Duration::from_millis(300));
    drop(c);
    assert_freed(mode, &server, "noclose");
    server.shutdown();
}

// ---------------------------------------------------------------------------
// Both modes: senders kept by other threads, the hub
// ---------------------------------------------------------------------------

fn a_sender_kept_by_another_thread_pushes_messages(mode: Mode) {
    let (running, addr, senders_rx) = spawn_handing_out_senders(mode, bind(config(mode, "push")));
    let mut ws = client::connect(&ws_url(addr, "/")).unwrap();
    ws.get_ref().set_read_timeout(Some(5 * SECOND)).unwrap();
    let pusher = senders_rx.recv_timeout(5 * SECOND).unwrap();
    // From this thread, while the client is idle and the handler waits for it.
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
    assert_freed(mode, &running, "push");
    assert!(matches!(pusher.send("late"), Err(Error::Closed)));
    running.shutdown();
}

fn a_sender_can_shut_a_client_down_from_another_thread(mode: Mode) {
    let (running, addr, senders_rx) = spawn_handing_out_senders(mode, bind(config(mode, "shut")));
    let mut c = raw_open(addr);
    let sender = senders_rx.recv_timeout(5 * SECOND).unwrap();
    c.assert_echoes(b"before");
    sender.shutdown();
    // No close frame: the connection just ends, and its slot frees.
    c.expect_tcp_closed();
    drop(c);
    assert_freed(mode, &running, "shut");
    assert!(sender.send("after").is_err());
    assert_echo_within_a_second(addr);
    running.shutdown();
}

fn fed_replies_go_out_without_a_flush(mode: Mode) {
    // Each message gets three replies, fed: they leave when the server next
    // waits for the client.
    let (running, addr) = spawn(
        mode,
        bind(config(mode, "feed")),
        |_: &Request, tx: Sender| {
            move |msg: MessageRef<'_>| {
                for part in ["a", "b", "c"] {
                    tx.feed(MessageRef::Text(part))?;
                }
                tx.feed(msg)
            }
        },
    );
    let mut c = raw_open(addr);
    c.write(&frame(FIN | OP_TEXT, b"x"));
    for part in [&b"a"[..], b"b", b"c", b"x"] {
        c.expect_echo(OP_TEXT, part);
    }
    drop(c);
    running.shutdown();
}

fn callbacks_can_send_to_every_client(mode: Mode) {
    // A chat room: every message goes to every client, whichever thread serves it.
    let room: Arc<Mutex<Vec<Sender>>> = Arc::default();
    let members = room.clone();
    let (running, addr) = spawn(mode, bind(config(mode, "room")), move |_: &Request, tx| {
        members.lock().unwrap().push(tx);
        let room = members.clone();
        move |msg: MessageRef<'_>| {
            for member in room.lock().unwrap().iter() {
                member.send_ref(msg)?;
            }
            Ok(())
        }
    });
    let mut clients: Vec<_> = (0..6).map(|_| raw_open(addr)).collect();
    wait_for("six members", || room.lock().unwrap().len() == 6);
    for i in 0..clients.len() {
        clients[i].write(&frame(FIN | OP_TEXT, format!("from {i}").as_bytes()));
        // Every client, the sender included, gets it before the next is sent.
        for c in &mut clients {
            c.expect_echo(OP_TEXT, format!("from {i}").as_bytes());
        }
    }
    drop(clients);
    running.shutdown();
}

fn hub_members_get_every_broadcast_and_leave_when_they_disconnect(mode: Mode) {
    // The BB-400's shape: every client joins a hub on connect; the device
    // broadcasts its status; a client that goes away leaves the hub.
    let hub = Hub::new();
    let (running, addr) = hub_server(mode, "hub", hub.clone(), join_with_greeting);
    let mut clients: Vec<_> = (0..5)
        .map(|_| {
            let mut ws = client::connect(&ws_url(addr, "/")).unwrap();
            ws.get_ref().set_read_timeout(Some(5 * SECOND)).unwrap();
            assert_eq!(ws.recv().unwrap(), Some(Message::Text("joined".into())));
            ws
        })
        .collect();
    // Greeted means joined.
    assert_eq!(hub.len(), 5);
    let status = r#"{"inputs":[1,0,0,0,0,0,0,0]}"#;
    assert_eq!(hub.broadcast(status), 5);
    for ws in &mut clients {
        assert_eq!(ws.recv().unwrap(), Some(Message::Text(status.into())));
    }
    // A message from one client reaches all of them, through the hub.
    clients[0].send(Message::Binary(vec![8; 300])).unwrap();
    for ws in &mut clients {
        assert_eq!(ws.recv().unwrap(), Some(Message::Binary(vec![8; 300])));
    }
    // Members leave when their connection ends.
    drop(clients.pop());
    wait_for("the member to leave", || hub.len() == 4);
    assert_eq!(hub.broadcast("still four"), 4);
    for ws in &mut clients {
        assert_eq!(ws.recv().unwrap(), Some(Message::Text("still four".into())));
    }
    drop(clients);
    running.shutdown();
}

/// Joins `hub` with a "joined" greeting that comes before any broadcast.
fn join_with_greeting(hub: &Hub, tx: Sender) -> Membership {
    hub.join_with(tx, "joined").unwrap()
}

/// Joins `hub`, then greets through the membership.
fn join_then_greet(hub: &Hub, tx: Sender) -> Membership {
    let member = hub.join(tx).unwrap();
    assert!(member.send("joined"));
    member
}

/// A server whose clients join `hub` with `join` and whose messages go to
/// every member; a membership lives as long as its client's callback.
fn hub_server(
    mode: Mode,
    test: &str,
    hub: Hub,
    join: fn(&Hub, Sender) -> Membership,
) -> (Running, SocketAddr) {
    spawn(mode, bind(config(mode, test)), move |_: &Request, tx| {
        let member = join(&hub, tx);
        let hub = hub.clone();
        move |msg: MessageRef<'_>| {
            let _ = &member;
            hub.broadcast(msg.to_message());
            Ok(())
        }
    })
}

fn membership_send_comes_first_then_broadcasts_in_order(mode: Mode) {
    let hub = Hub::new();
    let (server, addr) = hub_server(mode, "order", hub.clone(), join_with_greeting);
    let stop = Arc::new(AtomicBool::new(false));
    let (flag, broadcaster) = (stop.clone(), hub.clone());
    let ticker = thread::spawn(move || {
        let mut i = 0u64;
        while !flag.load(Ordering::SeqCst) {
            broadcaster.broadcast(i.to_string());
            i += 1;
            thread::sleep(Duration::from_micros(200));
        }
    });
    for _ in 0..10 {
        let mut ws = client::connect(&ws_url(addr, "/")).unwrap();
        assert_eq!(ws.recv().unwrap(), Some(Message::Text("joined".into())));
        let mut last = None;
        for _ in 0..20 {
            let n: u64 = ws
                .recv()
                .unwrap()
                .unwrap()
                .as_text()
                .unwrap()
                .parse()
                .unwrap();
            assert!(last.is_none_or(|l| n == l + 1), "{last:?} then {n}");
            last = Some(n);
        }
    }
    stop.store(true, Ordering::SeqCst);
    ticker.join().unwrap();
    server.shutdown();
}

fn hub_closes_a_member_that_cannot_keep_up_and_others_keep_receiving(mode: Mode) {
    // A queue of 2 MiB (8 of these messages): room for a fast reader that a
    // loaded machine holds up for a moment (Wine, with the other tests).
    let hub = Hub::with_limits(16, 2 << 20);
    let (server, addr) = hub_server(mode, "slowhub", hub.clone(), join_then_greet);
    let mut fast = client::connect(&ws_url(addr, "/")).unwrap();
    assert_eq!(fast.recv().unwrap(), Some(Message::Text("joined".into())));
    let slow = raw_open(addr); // never reads again
    wait_for("two members", || hub.len() == 2);
    assert_eq!(server.stats().hub_dropped, 0);
    let big = Message::Binary(vec![1u8; 256 << 10]);
    let fast_reader = thread::spawn(move || {
        let mut n = 0;
        while let Ok(Some(msg)) = fast.recv() {
            if msg.len() == 256 << 10 {
                n += 1;
            }
            if n == 200 {
                break;
            }
        }
        (n, fast)
    });
    let start = Instant::now();
    for _ in 0..200 {
        hub.broadcast(big.clone());
        thread::sleep(Duration::from_millis(4)); // the fast reader keeps up, even unoptimised
    }
    assert!(start.elapsed() < 5 * SECOND, "broadcasts must not block");
    let (received, fast) = fast_reader.join().unwrap();
    assert_eq!(received, 200, "the fast client got everything");
    assert_eq!(hub.len(), 1, "the slow client was dropped");
    assert_eq!(server.stats().hub_dropped, 1, "and counted");
    drop((slow, fast));
    server.shutdown();
}

// ---------------------------------------------------------------------------
// Both modes: handlers that fail or panic
// ---------------------------------------------------------------------------

fn a_handler_error_closes_its_client_and_is_reported(mode: Mode) {
    let (server, log) = error_log(bind(config(mode, "fail")));
    let (running, addr) = spawn(mode, server, |_: &Request, tx: Sender| {
        move |msg: MessageRef<'_>| match msg {
            MessageRef::Text("fail") => Err(Error::InvalidInput("the callback gave up")),
            msg => tx.send_ref(msg),
        }
    });
    let mut bystander = raw_open(addr);
    let mut c = raw_open(addr);
    c.assert_echoes(b"fine");
    // The message after the failing one is not delivered.
    let mut bytes = frame(FIN | OP_TEXT, b"fail");
    bytes.extend_from_slice(&frame(FIN | OP_TEXT, b"never echoed"));
    c.write(&bytes);
    // Both modes close with 1011: the event loop once the callback fails,
    // a connection thread once its handler returns the error.
    c.expect_close(1011);
    wait_for("the error report", || !log.lock().unwrap().is_empty());
    let log = log.lock().unwrap().clone();
    assert_eq!(log.len(), 1, "{log:?}");
    assert!(log[0].contains("the callback gave up"), "{log:?}");
    bystander.assert_echoes(b"unaffected");
    drop((c, bystander));
    running.shutdown();
}

fn a_panicking_handler_ends_only_its_own_client(mode: Mode) {
    // One loop thread, so a panic that took the thread down would take every client.
    let (server, log) = error_log(bind(Config {
        event_loop_threads: 1,
        ..config(mode, "panic")
    }));
    let (running, addr) = spawn(mode, server, |req: &Request, tx: Sender| {
        if req.path() == "/factory-panics" {
            panic!("factory bug (expected by this test)");
        }
        move |msg: MessageRef<'_>| {
            if msg == MessageRef::Text("panic") {
                panic!("callback bug (expected by this test)");
            }
            tx.send_ref(msg)
        }
    });
    let mut bystander = raw_open(addr);
    let mut c = raw_open(addr);
    c.assert_echoes(b"fine");
    c.write(&frame(FIN | OP_TEXT, b"panic"));
    // Either mode catches the panic and closes with 1011.
    c.expect_close(1011);
    drop(c);
    bystander.assert_echoes(b"unaffected");
    // A factory that panics: the upgrade went through, then the end.
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
    // Both slots free (threaded: both threads end); the bystander's stays.
    wait_for("the two slots to free", || {
        running.handle().connections() == 1
    });
    if mode == Mode::Threaded {
        let name = thread_name(mode, "panic");
        wait_for("the two threads to end", || threads_named(&name) == 1);
    }
    // Reported before the slot frees.
    let log = log.lock().unwrap().clone();
    let panics = log.iter().filter(|e| e.contains("panicked")).count();
    assert_eq!(panics, 2, "both panics reported: {log:?}");
    drop(bystander);
    running.shutdown();
}

fn a_panicking_http_hook_ends_only_its_own_request(mode: Mode) {
    let (server, log) = error_log(
        bind(Config {
            event_loop_threads: 1,
            ..config(mode, "hookpanic")
        })
        .on_http(|req| match req.path() {
            "/panic" => panic!("on_http bug (expected by this test)"),
            _ => Response::text(200, "ok"),
        })
        .on_upgrade(|req| match req.path() {
            "/panic" => panic!("on_upgrade bug (expected by this test)"),
            _ => Ok(Accept::default()),
        }),
    );
    let (server, addr) = spawn_echo(mode, server);
    let mut bystander = raw_open(addr);
    // Both modes catch the panic, answer 500 and report it.
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
    let log = log.lock().unwrap().clone();
    let panics = log.iter().filter(|e| e.contains("panicked")).count();
    assert_eq!(panics, 2, "both panics reported: {log:?}");
    drop(bystander);
    server.shutdown();
}

// ---------------------------------------------------------------------------
// Both modes: backpressure
// ---------------------------------------------------------------------------

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

fn a_client_that_does_not_read_does_not_stall_others(mode: Mode) {
    // One loop thread: the stalled client and the others share it.
    let (server, addr) = spawn_echo(
        mode,
        bind(Config {
            event_loop_threads: 1,
            write_timeout: Some(10 * SECOND),
            ..config(mode, "noread")
        }),
    );
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
    drop((a, b));
    server.shutdown();
}

fn a_client_that_floods_does_not_starve_others(mode: Mode) {
    // One loop thread; A pipelines 64 MiB of small messages and reads its
    // echoes: long enough for B to have many turns however fast the loop is.
    let (server, addr) = spawn_echo(
        mode,
        bind(Config {
            event_loop_threads: 1,
            ..config(mode, "flood")
        }),
    );
    const COUNT: usize = 16384;
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
    drop((a, b));
    server.shutdown();
}

fn a_client_that_stops_reading_is_dropped_after_write_timeout(mode: Mode) {
    let (server, log) = error_log(bind(Config {
        event_loop_threads: 1,
        write_timeout: Some(Duration::from_millis(300)),
        ..config(mode, "stopread")
    }));
    let (server, addr) = spawn_echo(mode, server);
    let a = raw_open(addr);
    // 128 MiB: more than the socket buffers can grow to (tcp_rmem allows
    // 32 MiB each way), so A's writes block until the server drops it.
    const COUNT: u32 = 2048;
    let done = Arc::new(AtomicUsize::new(0));
    let a_writer = write_chunks(a.stream.try_clone().unwrap(), COUNT, done.clone());
    let mut b = raw_open(addr);
    wait_until_stalled(&done, Duration::from_millis(500));
    // Within the write timeout plus a sweep or two, A is gone and B is not.
    let start = Instant::now();
    wait_for("A to be dropped", || server.handle().connections() == 1);
    assert!(start.elapsed() < 3 * SECOND, "took {:?}", start.elapsed());
    a_writer.join().unwrap(); // its blocked write fails once the server drops it
    assert!(done.load(Ordering::SeqCst) < COUNT as usize);
    // The event loop says why; a connection thread's write just timed out.
    let log = log.lock().unwrap().clone();
    let reason = mode.pick("TimedOut", "client stopped reading");
    assert!(log.iter().any(|e| e.contains(reason)), "{log:?}");
    b.assert_echoes(b"still here");
    drop((a, b));
    server.shutdown();
}

// ---------------------------------------------------------------------------
// Both modes: connections that end
// ---------------------------------------------------------------------------

fn clients_that_hang_up_at_any_point_free_their_slots(mode: Mode) {
    let (server, addr) = spawn_echo(
        mode,
        bind(Config {
            // Under Wine a connection thread's send to a client that has
            // gone fails only at the write timeout (Linux: at once).
            write_timeout: Some(SECOND),
            ..config(mode, "hangup")
        }),
    );
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
    assert_freed(mode, &server, "hangup");
    assert_echo_within_a_second(addr);
    server.shutdown();
}

fn survives_garbage_slowloris_floods_and_stalled_readers(mode: Mode) {
    let (server, addr) = spawn_echo(
        mode,
        bind(Config {
            max_connections: 20,
            handshake_timeout: Duration::from_millis(300),
            write_timeout: Some(Duration::from_millis(300)),
            ..config(mode, "faults")
        }),
    );
    // Garbage instead of HTTP (no line end at all), and garbage after the upgrade.
    let garbage = raw_exchange(addr, &[0x16, 0x03, 0x01, 0x00, 0xa5, 0x01]);
    assert_eq!(status_of(&garbage), 400, "{garbage}");
    let mut c = raw_open(addr);
    c.write(&[0xff; 64]);
    let f = c.read_server_frame();
    assert_eq!(f.opcode, OP_CLOSE, "{f:?}");
    drop(c);
    // Clients that never read while the server writes to them.
    let stalled: Vec<_> = (0..3)
        .map(|_| {
            let mut s = raw_open(addr).stream;
            s.set_write_timeout(Some(SECOND)).unwrap();
            let mut frame = vec![0x82, 0xff, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0];
            // Masked with key 0: the payload stays zeros. The server echoes and blocks.
            frame.resize(frame.len() + (1 << 20), 0);
            for _ in 0..8 {
                if s.write_all(&frame).is_err() {
                    break;
                }
            }
            s
        })
        .collect();
    // Slowloris: connections that send nothing at all.
    let idle: Vec<_> = (0..5).map(|_| TcpStream::connect(addr).unwrap()).collect();
    // A flood over the limit: the excess gets 503 at once.
    let flood: Vec<_> = (0..40).map(|_| TcpStream::connect(addr)).collect();
    drop(flood);
    // Everything above ends within its timeouts, with the clients still
    // there; nothing leaks.
    wait_within(10 * SECOND, "every connection to end", || {
        server.handle().connections() == 0
    });
    assert_threads_end(mode, "faults");
    drop((idle, stalled));
    assert_echo_within_a_second(addr);
    server.shutdown();
}

/// The size of the body `request_a_big_body` asks for: more than the socket
/// buffers hold, so most of it waits in the server (a connection thread's
/// blocked write, the event loop's backlog).
const BIG_BODY: usize = 8 << 20;

/// A server whose `on_http` answers with `BIG_BODY` bytes, and a connection
/// that has sent it a request and not read yet.
fn request_a_big_body(mode: Mode, test: &str) -> (Running, TcpStream) {
    let server = bind(config(mode, test))
        .on_http(|_| Response::new(200, "application/octet-stream", vec![b'z'; BIG_BODY]));
    let (server, addr) = spawn_echo(mode, server);
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

fn a_large_http_response_reaches_a_client_that_pauses_before_reading(mode: Mode) {
    let (server, mut s) = request_a_big_body(mode, "bigpause");
    // Well within the write timeout (10 s), longer than the 2 s linger.
    thread::sleep(Duration::from_millis(2500));
    assert_whole_big_body(&mut s);
    drop(s);
    server.shutdown();
}

fn a_large_http_response_reaches_a_client_that_half_closed_after_its_request(mode: Mode) {
    let (server, mut s) = request_a_big_body(mode, "bighalf");
    // The response is queued (most of it waiting) before the client's end
    // arrives, and the end arrives before the client reads.
    thread::sleep(Duration::from_millis(200));
    s.shutdown(std::net::Shutdown::Write).unwrap();
    thread::sleep(Duration::from_millis(200));
    assert_whole_big_body(&mut s);
    assert_freed(mode, &server, "bighalf");
    server.shutdown();
}

fn a_client_that_half_closes_still_gets_its_echoes(mode: Mode) {
    let (server, addr) = spawn_echo(mode, bind(config(mode, "halfclose")));
    let mut c = raw_open(addr);
    let mut bytes = frame(FIN | OP_TEXT, b"one");
    bytes.extend_from_slice(&frame(FIN | OP_BINARY, &[2; 70_000]));
    c.write(&bytes);
    c.stream.shutdown(std::net::Shutdown::Write).unwrap();
    c.expect_echo(OP_TEXT, b"one");
    c.expect_echo(OP_BINARY, &[2; 70_000]);
    // No close frame came from the client, so none is owed: the event loop
    // just ends the connection; a connection thread, its handler done,
    // closes as for any return, with 1000.
    match mode {
        Mode::Threaded => {
            c.expect_close(1000);
        }
        #[cfg(all(target_os = "linux", feature = "event-loop"))]
        Mode::EventLoop => c.expect_tcp_closed(),
    }
    drop(c);
    assert_freed(mode, &server, "halfclose");
    server.shutdown();
}

// ---------------------------------------------------------------------------
// Both modes: shutdown
// ---------------------------------------------------------------------------

fn shutdown_sends_1001_and_returns_once_clients_close(mode: Mode) {
    let (server, addr) = spawn_echo(
        mode,
        bind(Config {
            shutdown_timeout: 5 * SECOND,
            ..config(mode, "shutdown")
        }),
    );
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let mut ws = client::connect(&ws_url(addr, "/")).unwrap();
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
    assert_threads_end(mode, "shutdown");
    assert!(TcpStream::connect(addr).is_err(), "no longer listening");
}

fn shutdown_counts_clients_that_ignore_the_close(mode: Mode) {
    let (server, addr) = spawn_echo(
        mode,
        bind(Config {
            shutdown_timeout: Duration::from_millis(200),
            ..config(mode, "force")
        }),
    );
    let mut ignorer = raw_open(addr);
    ignorer.assert_echoes(b"here");
    let handle = server.handle();
    let start = Instant::now();
    assert_eq!(server.shutdown(), 1, "one client ignored the close");
    let bound = mode.pick(2 * SECOND, 3 * SECOND);
    assert!(start.elapsed() < bound, "took {:?}", start.elapsed());
    assert_eq!(handle.connections(), 0);
    assert_threads_end(mode, "force");
    let f = ignorer.read_server_frame();
    assert_eq!(
        (f.opcode, &f.payload[..2]),
        (OP_CLOSE, &1001u16.to_be_bytes()[..])
    );
    ignorer.expect_tcp_closed();
    assert!(TcpStream::connect(addr).is_err(), "no longer listening");
}

fn a_shutdown_handle_stops_the_server_from_another_thread(mode: Mode) {
    let server = bind(config(mode, "handle"));
    let handle = server.shutdown_handle();
    let addr = match server.local_addr() {
        Addr::Tcp(addr) => addr,
        other => panic!("{other:?}"),
    };
    let serving = thread::spawn(move || mode.run(server, echo));
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
    serving.join().unwrap().unwrap();
    assert!(TcpStream::connect(addr).is_err(), "no longer listening");
}

// ---------------------------------------------------------------------------
// Both modes: stats
// ---------------------------------------------------------------------------

/// A map of codes to counts, for comparing with a [`Stats`] field.
fn by_code<const N: usize>(counts: [(u16, u64); N]) -> BTreeMap<u16, u64> {
    counts.into_iter().collect()
}

/// Waits until no connection is open, then takes a snapshot: every
/// connection's closes are counted by then.
fn settled_stats(server: &Running) -> Stats {
    wait_for("every connection to end", || {
        server.handle().connections() == 0
    });
    server.stats()
}

fn stats_count_connections_and_the_messages_and_bytes_each_way(mode: Mode) {
    let server = bind(config(mode, "stats"));
    assert_eq!(server.stats(), Stats::default());
    let (server, addr) = spawn_echo(mode, server);
    let mut clients: Vec<RawClient> = (0..3).map(|_| raw_open(addr)).collect();
    wait_for("three open", || server.stats().connections_open == 3);
    for (i, c) in clients.iter_mut().enumerate() {
        c.write(&frame(FIN | OP_TEXT, b"hello"));
        c.expect_echo(OP_TEXT, b"hello");
        c.assert_echoes(&vec![i as u8; 1000]);
        // Two fragments are one message; pings are not messages.
        let mut fragmented = frame(OP_TEXT, b"ab");
        fragmented.extend_from_slice(&frame(FIN | OP_CONT, b"cd"));
        c.write(&fragmented);
        c.expect_echo(OP_TEXT, b"abcd");
        c.write(&frame(FIN | OP_PING, b"not counted"));
        assert_eq!(c.read_server_frame().opcode, OP_PONG);
    }
    let stats = server.stats();
    assert_eq!((stats.messages_in, stats.messages_out), (9, 9), "{stats:?}");
    let bytes = 3 * (5 + 1000 + 4);
    assert_eq!(
        (stats.bytes_in, stats.bytes_out),
        (bytes, bytes),
        "{stats:?}"
    );
    assert_eq!(stats.connections_open, 3, "{stats:?}");
    for mut c in clients {
        c.write(&close_frame(1000, b"bye"));
        c.expect_close(1000);
    }
    let stats = settled_stats(&server);
    assert_eq!((stats.connections_open, stats.connections_accepted), (0, 3));
    assert_eq!(stats.closes_sent, by_code([(1000, 3)]), "{stats:?}");
    assert_eq!(stats.closes_received, by_code([(1000, 3)]), "{stats:?}");
    assert_eq!((stats.messages_in, stats.messages_out), (9, 9), "{stats:?}");
    assert_eq!(
        (stats.bytes_in, stats.bytes_out),
        (bytes, bytes),
        "{stats:?}"
    );
    assert!(
        stats.refused.is_empty() && stats.hub_dropped == 0,
        "{stats:?}"
    );
    server.shutdown();
}

fn stats_count_refusals_by_status(mode: Mode) {
    let server = bind(Config {
        max_connections: 2,
        max_body_size: 10,
        handshake_timeout: SECOND,
        ..config(mode, "refusals")
    })
    .on_http(|req| match req.path() {
        "/page" => Response::text(200, "a page"),
        "/panic" => panic!("on_http bug (expected by this test)"),
        _ => Response::status(404),
    })
    .on_upgrade(|req| match req.path() {
        "/private" => Err(Response::status(401)),
        _ => Ok(Accept::default()),
    });
    let (server, addr) = spawn_echo(mode, server);
    let host = addr.to_string();
    let upgrade = upgrade_request(&host, "");
    let mut big_head = upgrade.clone().into_bytes();
    big_head.truncate(big_head.len() - 2);
    big_head.extend_from_slice(format!("X-Big: {}\r\n\r\n", "b".repeat(20 << 10)).as_bytes());
    let requests: [(u16, Vec<u8>); 10] = [
        (
            200,
            b"GET /page HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".to_vec(),
        ),
        (
            404,
            b"GET /nothing HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".to_vec(),
        ),
        (400, vec![0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, b'\r', b'\n']),
        (401, upgrade.replace("GET / ", "GET /private ").into_bytes()),
        (
            403,
            upgrade_request(&host, "Origin: http://evil.example\r\n").into_bytes(),
        ),
        (
            413,
            b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 11\r\n\r\n01234567890".to_vec(),
        ),
        (
            411,
            b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
                .to_vec(),
        ),
        (
            426,
            upgrade.replace("Version: 13", "Version: 12").into_bytes(),
        ),
        (431, big_head),
        (
            500,
            b"GET /panic HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".to_vec(),
        ),
    ];
    for (status, request) in &requests {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(5 * SECOND)).unwrap();
        // The server may answer and close before it has read all of it.
        let _ = s.write_all(request);
        let (response, _) = read_all(&mut s);
        let response = String::from_utf8_lossy(&response);
        assert_eq!(status_of(&response), *status, "{response}");
        drop(s); // the server's linger ends with it
        wait_for("its slot to free", || server.handle().connections() == 0);
    }
    // Two silent connections fill the slots: a third gets 503, and they
    // get 408 at the handshake deadline.
    let mut silent = [(); 2].map(|_| TcpStream::connect(addr).unwrap());
    wait_for("the silent connections", || {
        server.handle().connections() == 2
    });
    let busy = raw_exchange(addr, upgrade.as_bytes());
    assert_eq!(status_of(&busy), 503, "{busy}");
    for s in &mut silent {
        s.set_read_timeout(Some(5 * SECOND)).unwrap();
        let (response, _) = read_all(s);
        assert_eq!(status_of(&String::from_utf8_lossy(&response)), 408);
    }
    drop(silent);
    let stats = settled_stats(&server);
    let refused = [400, 401, 403, 411, 413, 426, 431, 500, 503].map(|status| (status, 1));
    let mut expected = by_code(refused);
    expected.insert(408, 2);
    assert_eq!(stats.refused, expected, "{stats:?}");
    assert_eq!(stats.connections_accepted, 13, "{stats:?}");
    assert!(stats.closes_sent.is_empty(), "{stats:?}");
    server.shutdown();
}

fn stats_count_closes_sent_and_received_by_code(mode: Mode) {
    let server = bind(Config {
        limits: Limits {
            max_message_size: 1000,
            ..Limits::default()
        },
        shutdown_timeout: 5 * SECOND,
        ..config(mode, "closes")
    });
    let (server, addr) = spawn(mode, server, |_: &Request, tx: Sender| {
        move |msg: MessageRef<'_>| match msg {
            MessageRef::Text("fail") => Err(Error::InvalidInput("the callback gave up")),
            msg => tx.send_ref(msg),
        }
    });
    let mut c = raw_open(addr);
    c.write(&close_frame(4001, b"app code"));
    c.expect_close(4001);
    let mut c = raw_open(addr);
    c.write(&frame(FIN | OP_CLOSE, b""));
    let echo = c.read_server_frame();
    assert_eq!((echo.opcode, echo.payload.len()), (OP_CLOSE, 0), "{echo:?}");
    let failures: [(u16, Vec<u8>); 4] = [
        (1002, unmasked_frame(FIN | OP_TEXT, b"x")),
        (1007, frame(FIN | OP_TEXT, &[0xff])),
        (1009, frame(FIN | OP_BINARY, &[0; 1001])),
        (1011, frame(FIN | OP_TEXT, b"fail")),
    ];
    for (code, bytes) in failures {
        let mut c = raw_open(addr);
        c.write(&bytes);
        c.expect_close(code);
    }
    // At shutdown, 1001; this client answers it.
    let mut c = raw_open(addr);
    c.assert_echoes(b"still here");
    let answer = thread::spawn(move || {
        let f = c.read_server_frame();
        assert_eq!(f.close_parts().map(|(code, _)| code), Some(1001), "{f:?}");
        c.write(&close_frame(1001, b""));
        c.expect_tcp_closed();
    });
    wait_for("every other connection to end", || {
        server.handle().connections() == 1
    });
    let handle = server.handle();
    assert_eq!(server.shutdown(), 0, "the client answered the close");
    answer.join().unwrap();
    let stats = handle.stats();
    let sent = [1001, 1002, 1005, 1007, 1009, 1011, 4001].map(|code| (code, 1));
    assert_eq!(stats.closes_sent, by_code(sent), "{stats:?}");
    let received = [1001, 1005, 4001].map(|code| (code, 1));
    assert_eq!(stats.closes_received, by_code(received), "{stats:?}");
    assert_eq!(stats.connections_accepted, 7, "{stats:?}");
    assert_eq!(stats.connections_open, 0, "{stats:?}");
}

// ---------------------------------------------------------------------------
// Neither mode: binding where Unix sockets do not exist
// ---------------------------------------------------------------------------

#[test]
#[cfg(not(unix))]
fn unix_sockets_fail_at_bind_with_a_clear_error_off_unix() {
    let err = Server::bind_unix("io.sock")
        .err()
        .expect("no Unix sockets here");
    assert_eq!(err.kind(), std::io::ErrorKind::Unsupported);
    assert!(
        err.to_string().contains("Unix sockets are not available"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------
// Thread per client only: the handler owns its WebSocket and its thread
// ---------------------------------------------------------------------------

mod threaded_only {
    use super::*;

    const MODE: Mode = Mode::Threaded;

    #[test]
    fn the_handler_gets_the_request_and_the_subprotocol_from_its_websocket() {
        let server = bind(config(MODE, "ws")).on_upgrade(|req| {
            let chosen = req.protocols().find(|p| *p == "bb-io.v2");
            Ok(chosen.map_or_else(Accept::default, Accept::with_protocol))
        });
        let running = server
            .spawn(|mut ws| {
                let req = ws.request().unwrap();
                let summary = format!(
                    "{} {:?} {:?} {:?}",
                    req.path(),
                    req.query(),
                    req.header("x-device"),
                    ws.protocol()
                );
                ws.send(summary)?;
                while let Some(msg) = ws.recv()? {
                    ws.send(msg)?;
                }
                Ok(())
            })
            .unwrap();
        let cfg = ClientConfig {
            protocols: vec!["bb-io.v1".into(), "bb-io.v2".into()],
            headers: vec![("X-Device".into(), "bb400".into())],
            ..ClientConfig::default()
        };
        let url = ws_url(tcp_addr(&running), "/io?live=1");
        let mut ws = client::connect_with(&url, &cfg).unwrap();
        assert_eq!(ws.protocol(), Some("bb-io.v2"));
        let expected = r#"/io Some("live=1") Some("bb400") Some("bb-io.v2")"#;
        assert_eq!(ws.recv().unwrap(), Some(Message::Text(expected.into())));
        ws.send("echo").unwrap();
        assert_eq!(ws.recv().unwrap(), Some(Message::Text("echo".into())));
        drop(ws);
        running.shutdown();
    }

    #[test]
    fn a_handler_returning_early_still_closes_with_1000() {
        let running = bind(config(MODE, "early")).spawn(|_ws| Ok(())).unwrap();
        let mut ws = client::connect(&ws_url(tcp_addr(&running), "/")).unwrap();
        assert_eq!(ws.recv().unwrap(), None);
        assert_eq!(
            ws.peer_close_frame().flatten().map(|f| f.code),
            Some(CloseCode::NORMAL)
        );
        drop(ws);
        running.shutdown();
    }

    #[test]
    fn write_timeout_frees_a_handler_thread_whose_client_never_reads() {
        let running = bind(Config {
            write_timeout: Some(Duration::from_millis(300)),
            ..config(MODE, "neverread")
        })
        .spawn(|mut ws| {
            let chunk = vec![7u8; 1 << 20];
            loop {
                ws.send_binary(&chunk)?;
            }
        })
        .unwrap();
        let stalled = raw_open(tcp_addr(&running));
        // The client has a thread of its own, until its send times out.
        assert_eq!(threads_named(&thread_name(MODE, "neverread")), 1);
        assert_threads_end(MODE, "neverread");
        drop(stalled);
        running.shutdown();
    }
}

// ---------------------------------------------------------------------------
// Event loop only: loop threads, and sends that must not block them
// ---------------------------------------------------------------------------

#[cfg(all(target_os = "linux", feature = "event-loop"))]
mod event_loop_only {
    use super::*;

    const MODE: Mode = Mode::EventLoop;

    #[test]
    fn runs_the_configured_number_of_loop_threads() {
        let name = thread_name(MODE, "el-threads");
        let (server, addr) = spawn_echo(
            MODE,
            bind(Config {
                event_loop_threads: 3,
                ..config(MODE, "el-threads")
            }),
        );
        wait_for("three loop threads", || threads_named(&name) == 3);
        // Clients do not add threads.
        let clients: Vec<_> = (0..10)
            .map(|_| client::connect(&ws_url(addr, "/")).unwrap())
            .collect();
        assert_eq!(threads_named(&name), 3);
        drop(clients);
        server.shutdown();
        // Joined, but an emulator (qemu-user) may list a thread a moment longer.
        wait_for("they end with the server", || threads_named(&name) == 0);

        let name = thread_name(MODE, "el-percpu");
        let (server, _) = spawn_echo(
            MODE,
            bind(Config {
                event_loop_threads: 0,
                ..config(MODE, "el-percpu")
            }),
        );
        let cpus = thread::available_parallelism().unwrap().get();
        wait_for("one loop thread per CPU", || threads_named(&name) == cpus);
        server.shutdown();
    }

    #[test]
    fn a_sender_on_another_thread_waits_for_a_client_that_does_not_read_then_fails_at_the_write_timeout(
    ) {
        let write_timeout = Duration::from_millis(500);
        let (running, addr, senders_rx) = spawn_handing_out_senders(
            MODE,
            bind(Config {
                write_timeout: Some(write_timeout),
                ..config(MODE, "senderwait")
            }),
        );
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
        let server = bind(Config {
            limits: Limits {
                max_message_size: 64 << 10,
                ..Limits::default()
            },
            ..config(MODE, "cap")
        });
        let (running, addr) = spawn(MODE, server, move |_: &Request, tx: Sender| {
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
        });
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
}

#[cfg(all(not(target_os = "linux"), feature = "event-loop"))]
mod event_loop_only {
    use stdws::{MessageRef, Request, Sender, Server};

    #[test]
    fn the_event_loop_fails_to_start_with_a_clear_error_off_linux() {
        let server = || Server::bind("127.0.0.1:0").unwrap();
        let on_message = |_: &Request, tx: Sender| move |msg: MessageRef<'_>| tx.send_ref(msg);
        let err = server()
            .spawn_event_loop(on_message)
            .err()
            .expect("no epoll here");
        assert_eq!(err.kind(), std::io::ErrorKind::Unsupported);
        assert!(err.to_string().contains("Server::run"), "{err}");
        let err = server().run_event_loop(on_message).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::Unsupported);
    }
}

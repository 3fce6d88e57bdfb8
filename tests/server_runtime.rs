//! The server runtime over real loopback sockets: HTTP on the same port,
//! hooks, the Host/Origin policy, limits, timeouts, keepalive, senders, the
//! hub, shutdown, the client, and faults that must not hurt other clients.

mod common;

use common::{raw_exchange, status_of, threads_named, upgrade_request, upgraded};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};
use stdws::client::{self, ClientConfig, ConnectError};
use stdws::hub::Hub;
use stdws::{
    Accept, Addr, CloseCode, Config, Error, Keepalive, Message, Response, Running, Server,
};

const SECOND: Duration = Duration::from_secs(1);

/// A config whose connection threads carry `name`, so a test can count them.
/// Clients a test leaves connected are not waited for long at shutdown.
fn config(name: &str) -> Config {
    Config {
        thread_name: name.into(),
        shutdown_timeout: Duration::from_millis(300),
        ..Config::default()
    }
}

fn echo(mut ws: stdws::WebSocket<stdws::Stream>) -> Result<(), Error> {
    while let Some(msg) = ws.recv()? {
        ws.send(msg)?;
    }
    Ok(())
}

fn spawn(
    server: Server,
    handler: fn(stdws::WebSocket<stdws::Stream>) -> Result<(), Error>,
) -> (Running, SocketAddr) {
    let running = server.spawn(handler).unwrap();
    let Addr::Tcp(addr) = running.addr().clone() else {
        panic!("not TCP")
    };
    (running, addr)
}

fn bind(config: Config) -> Server {
    Server::bind("127.0.0.1:0").unwrap().config(config)
}

/// Waits until no thread has this name; fails after 5 s.
fn assert_threads_end(name: &str) {
    let deadline = Instant::now() + 5 * SECOND;
    while threads_named(name) > 0 {
        assert!(
            Instant::now() < deadline,
            "{} {name} threads still running",
            threads_named(name)
        );
        thread::sleep(Duration::from_millis(10));
    }
}

fn ws_url(addr: SocketAddr, path: &str) -> String {
    format!("ws://{addr}{path}")
}

/// A fresh client gets its echo within a second.
fn assert_echo_within_a_second(addr: SocketAddr) {
    let start = Instant::now();
    let mut ws = client::connect(&ws_url(addr, "/")).unwrap();
    ws.get_ref().set_read_timeout(Some(SECOND)).unwrap();
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

// --- requests and hooks -----------------------------------------------------

#[test]
fn handler_sees_path_query_and_headers() {
    let (server, addr) = spawn(bind(config("t-request")), |mut ws| {
        let req = ws.request().unwrap();
        let summary = format!(
            "{} {:?} {:?}",
            req.path(),
            req.query(),
            req.header("x-device")
        );
        ws.send(summary)?;
        echo(ws)
    });
    let cfg = ClientConfig {
        headers: vec![("X-Device".into(), "bb400".into())],
        ..ClientConfig::default()
    };
    let mut ws = client::connect_with(&ws_url(addr, "/io?live=1"), &cfg).unwrap();
    let expected = r#"/io Some("live=1") Some("bb400")"#;
    assert_eq!(ws.recv().unwrap(), Some(Message::Text(expected.into())));
    server.shutdown();
}

#[test]
fn plain_http_reaches_on_http_with_content_length_and_close() {
    let server = bind(config("t-http")).on_http(|req| match req.path() {
        "/" => Response::html(200, "<h1>device</h1>"),
        _ => Response::status(404),
    });
    let (server, addr) = spawn(server, echo);
    let response = raw_exchange(addr, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(
        response.contains("\r\nContent-Length: 15\r\n"),
        "{response}"
    );
    assert!(response.contains("\r\nConnection: close\r\n"), "{response}");
    assert!(
        response.contains("\r\nContent-Type: text/html; charset=utf-8\r\n"),
        "{response}"
    );
    assert!(response.ends_with("\r\n\r\n<h1>device</h1>"), "{response}");
    let response = raw_exchange(addr, b"GET /nope HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    assert_eq!(status_of(&response), 404);
    server.shutdown();
}

#[test]
fn post_bodies_are_read_by_content_length() {
    let server = bind(config("t-post")).on_http(|req| {
        Response::text(
            200,
            format!("{} {}", req.method(), String::from_utf8_lossy(req.body())),
        )
    });
    let (server, addr) = spawn(server, echo);
    let response = raw_exchange(
        addr,
        b"POST /io/outputs/3 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1\r\n\r\n1",
    );
    assert!(response.ends_with("\r\n\r\nPOST 1"), "{response}");

    // A body sent after the server's 100 Continue, in a second write.
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(5 * SECOND)).unwrap();
    s.write_all(
        b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
    )
    .unwrap();
    let mut continue_line = [0u8; 25];
    s.read_exact(&mut continue_line).unwrap();
    assert_eq!(&continue_line, b"HTTP/1.1 100 Continue\r\n\r\n");
    s.write_all(b"hello").unwrap();
    let mut rest = String::new();
    let _ = s.read_to_string(&mut rest);
    assert!(rest.ends_with("\r\n\r\nPOST hello"), "{rest}");
    server.shutdown();
}

#[test]
fn oversized_and_chunked_bodies_are_refused_with_413_and_411() {
    let server = bind(Config {
        max_body_size: 10,
        ..config("t-body")
    })
    .on_http(|_| Response::status(200));
    let (server, addr) = spawn(server, echo);
    let big = raw_exchange(
        addr,
        b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 11\r\n\r\n01234567890",
    );
    assert_eq!(status_of(&big), 413, "{big}");
    let chunked = raw_exchange(
        addr,
        b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n",
    );
    assert_eq!(status_of(&chunked), 411, "{chunked}");
    server.shutdown();
}

#[test]
fn without_on_http_plain_requests_get_400() {
    let (server, addr) = spawn(bind(config("t-nohttp")), echo);
    let response = raw_exchange(addr, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    assert_eq!(status_of(&response), 400, "{response}");
    server.shutdown();
}

#[test]
fn on_upgrade_can_refuse_with_any_status() {
    let server = bind(config("t-refuse")).on_upgrade(|req| match req.header("authorization") {
        Some("Bearer secret") => Ok(Accept::default()),
        _ => Err(Response::status(401)),
    });
    let (server, addr) = spawn(server, echo);
    let refused = client::connect(&ws_url(addr, "/")).unwrap_err();
    assert!(
        matches!(refused, Error::Connect(ConnectError::Refused(401))),
        "{refused}"
    );
    let cfg = ClientConfig {
        headers: vec![("Authorization".into(), "Bearer secret".into())],
        ..ClientConfig::default()
    };
    let mut ws = client::connect_with(&ws_url(addr, "/"), &cfg).unwrap();
    ws.send("in").unwrap();
    assert_eq!(ws.recv().unwrap(), Some(Message::Text("in".into())));
    server.shutdown();
}

#[test]
fn on_upgrade_picks_a_subprotocol_from_the_offer() {
    let server = bind(config("t-proto")).on_upgrade(|req| {
        let chosen = req.protocols().find(|p| *p == "bb-io.v2");
        Ok(chosen.map_or_else(Accept::default, Accept::with_protocol))
    });
    let (server, addr) = spawn(server, |mut ws| {
        let protocol = ws.protocol().unwrap_or("none").to_owned();
        ws.send(protocol)?;
        echo(ws)
    });
    let cfg = ClientConfig {
        protocols: vec!["bb-io.v1".into(), "bb-io.v2".into()],
        ..ClientConfig::default()
    };
    let mut ws = client::connect_with(&ws_url(addr, "/"), &cfg).unwrap();
    assert_eq!(ws.protocol(), Some("bb-io.v2"));
    assert_eq!(ws.recv().unwrap(), Some(Message::Text("bb-io.v2".into())));
    server.shutdown();
}

// --- Host and Origin policy ---------------------------------------------------

#[test]
fn cross_site_upgrade_is_refused_with_403() {
    let (server, addr) = spawn(bind(config("t-origin")), echo);
    let host = addr.to_string();
    let evil = raw_exchange(
        addr,
        upgrade_request(&host, "Origin: http://evil.example\r\n").as_bytes(),
    );
    assert_eq!(status_of(&evil), 403, "{evil}");
    let same = upgrade_request(&host, &format!("Origin: http://{host}\r\n"));
    assert_eq!(raw_status(addr, &same), 101);
    assert_eq!(
        raw_status(addr, &upgrade_request(&host, "")),
        101,
        "no Origin"
    );
    server.shutdown();
}

#[test]
fn dns_rebinding_host_is_refused_with_403_for_pages_too() {
    let server = bind(config("t-host")).on_http(|_| Response::status(200));
    let (server, addr) = spawn(server, echo);
    // The attacker's page, its name now resolving to the device, is same-origin with itself.
    let rebound = "evil.example:8989";
    let ws = raw_exchange(
        addr,
        upgrade_request(rebound, &format!("Origin: http://{rebound}\r\n")).as_bytes(),
    );
    assert_eq!(status_of(&ws), 403, "{ws}");
    let post =
        format!("POST /io/outputs/0 HTTP/1.1\r\nHost: {rebound}\r\nContent-Length: 1\r\n\r\n1");
    assert_eq!(raw_status(addr, &post), 403);
    server.shutdown();
}

#[test]
fn listed_hosts_and_origins_are_allowed() {
    let server = bind(Config {
        allowed_hosts: vec!["bb400.local".into()],
        allowed_origins: vec!["http://192.168.1.10:8000".into()],
        ..config("t-allow")
    });
    let (server, addr) = spawn(server, echo);
    let by_name = upgrade_request("bb400.local:8989", "");
    assert_eq!(raw_status(addr, &by_name), 101);
    let other_page = upgrade_request(&addr.to_string(), "Origin: http://192.168.1.10:8000\r\n");
    assert_eq!(raw_status(addr, &other_page), 101);
    server.shutdown();
}

#[test]
#[cfg(unix)]
fn unix_socket_server_serves_the_same_api_without_host_checks() {
    let dir = std::env::temp_dir().join(format!("stdws-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("io.sock");
    let server = Server::bind_unix(&path)
        .unwrap()
        .config(config("t-unix"))
        .on_http(|req| Response::json(200, format!("{:?}", req.path())));
    let running = server.spawn(echo).unwrap();
    let mut ws = client::connect_unix(&path, "/", &ClientConfig::default()).unwrap();
    ws.send(vec![1u8, 2, 3]).unwrap();
    assert_eq!(ws.recv().unwrap(), Some(Message::Binary(vec![1, 2, 3])));
    // requests_unixsocket sends the URL-encoded socket path as Host.
    let mut s = std::os::unix::net::UnixStream::connect(&path).unwrap();
    s.write_all(b"GET /io/outputs HTTP/1.1\r\nHost: %2Fvar%2Frun%2Fbb-io.sock\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    assert!(
        response.starts_with("HTTP/1.1 200 OK") && response.ends_with("\"/io/outputs\""),
        "{response}"
    );
    drop(ws);
    running.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}

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

#[test]
#[cfg(not(target_os = "linux"))]
fn the_event_loop_fails_to_start_with_a_clear_error_off_linux() {
    let server = || Server::bind("127.0.0.1:0").unwrap();
    let on_message =
        |_: &stdws::Request, tx: stdws::Sender| move |msg: stdws::MessageRef<'_>| tx.send_ref(msg);
    let err = server()
        .spawn_event_loop(on_message)
        .err()
        .expect("no epoll here");
    assert_eq!(err.kind(), std::io::ErrorKind::Unsupported);
    assert!(err.to_string().contains("Server::run"), "{err}");
    let err = server().run_event_loop(on_message).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::Unsupported);
}

// --- limits and timeouts ------------------------------------------------------

#[test]
fn over_max_connections_gets_503_not_a_hang() {
    let (server, addr) = spawn(
        bind(Config {
            max_connections: 2,
            ..config("t-max")
        }),
        echo,
    );
    let a = client::connect(&ws_url(addr, "/")).unwrap();
    let b = client::connect(&ws_url(addr, "/")).unwrap();
    let start = Instant::now();
    let third = client::connect(&ws_url(addr, "/")).unwrap_err();
    assert!(
        matches!(third, Error::Connect(ConnectError::Refused(503))),
        "{third}"
    );
    assert!(start.elapsed() < SECOND);
    drop((a, b));
    // Slots free up as the two clients go.
    let deadline = Instant::now() + 5 * SECOND;
    while server.handle().connections() > 0 {
        assert!(Instant::now() < deadline);
        thread::sleep(Duration::from_millis(10));
    }
    assert_echo_within_a_second(addr);
    server.shutdown();
}

#[test]
fn slowloris_handshake_times_out_with_408_and_frees_the_thread() {
    let (server, addr) = spawn(
        bind(Config {
            handshake_timeout: Duration::from_millis(300),
            ..config("t-slowloris")
        }),
        echo,
    );
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(5 * SECOND)).unwrap();
    let start = Instant::now();
    // One byte every 50 ms: each read succeeds, but the whole head never arrives in time.
    let mut dribble = s.try_clone().unwrap();
    thread::spawn(move || {
        for b in b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaa" {
            if dribble.write_all(&[*b]).is_err() {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
    });
    let mut response = Vec::new();
    let _ = s.read_to_end(&mut response);
    let response = String::from_utf8_lossy(&response);
    assert_eq!(status_of(&response), 408, "{response}");
    assert!(start.elapsed() < 2 * SECOND, "took {:?}", start.elapsed());
    assert_threads_end("t-slowloris");
    assert_echo_within_a_second(addr);
    server.shutdown();
}

#[test]
fn read_timeout_closes_a_silent_client_with_1001() {
    let (server, addr) = spawn(
        bind(Config {
            read_timeout: Some(Duration::from_millis(200)),
            keepalive: None,
            ..config("t-idle")
        }),
        echo,
    );
    // Before the handshake: the server's clock starts before we see the 101.
    let start = Instant::now();
    let mut ws = client::connect(&ws_url(addr, "/")).unwrap();
    ws.get_ref().set_read_timeout(Some(5 * SECOND)).unwrap();
    assert_eq!(ws.recv().unwrap(), None);
    let close = ws.peer_close_frame().unwrap().unwrap();
    assert_eq!(close.code, CloseCode::GOING_AWAY);
    assert!(start.elapsed() >= Duration::from_millis(200) && start.elapsed() < 2 * SECOND);
    assert_threads_end("t-idle");
    server.shutdown();
}

/// Reads one server frame from a raw socket: (opcode, payload).
fn read_frame(s: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut head = [0u8; 2];
    s.read_exact(&mut head).unwrap();
    assert_eq!(head[1] & 0x80, 0, "server frames are not masked");
    let len = match head[1] & 0x7f {
        126 => {
            let mut l = [0u8; 2];
            s.read_exact(&mut l).unwrap();
            u16::from_be_bytes(l) as usize
        }
        127 => {
            let mut l = [0u8; 8];
            s.read_exact(&mut l).unwrap();
            u64::from_be_bytes(l) as usize
        }
        n => n as usize,
    };
    let mut payload = vec![0; len];
    s.read_exact(&mut payload).unwrap();
    (head[0] & 0x0f, payload)
}

#[test]
fn keepalive_pings_a_silent_client_and_closes_when_no_pong_comes() {
    let (server, addr) = spawn(
        bind(Config {
            keepalive: Some(Keepalive {
                interval: Duration::from_millis(100),
                timeout: Duration::from_millis(200),
            }),
            ..config("t-nopong")
        }),
        echo,
    );
    let mut s = upgraded(addr);
    let start = Instant::now();
    assert_eq!(read_frame(&mut s), (0x9, vec![]), "a ping");
    let (opcode, payload) = read_frame(&mut s);
    assert_eq!(opcode, 0x8, "then a close");
    assert_eq!(&payload[..2], &1001u16.to_be_bytes());
    assert!(start.elapsed() < 2 * SECOND);
    assert_threads_end("t-nopong");
    server.shutdown();
}

#[test]
fn keepalive_keeps_a_client_that_answers() {
    let (server, addr) = spawn(
        bind(Config {
            keepalive: Some(Keepalive {
                interval: Duration::from_millis(50),
                timeout: Duration::from_millis(100),
            }),
            ..config("t-pong")
        }),
        echo,
    );
    let mut ws = client::connect(&ws_url(addr, "/")).unwrap();
    let sender = ws.sender().unwrap();
    // The client says nothing for 10 pong timeouts; its recv() answers the pings.
    let reader = thread::spawn(move || ws.recv());
    thread::sleep(Duration::from_millis(1000));
    assert_eq!(server.handle().connections(), 1, "still connected");
    sender.send("alive").unwrap();
    assert_eq!(
        reader.join().unwrap().unwrap(),
        Some(Message::Text("alive".into()))
    );
    server.shutdown();
}

#[test]
fn write_timeout_frees_a_handler_whose_client_never_reads() {
    let (server, addr) = spawn(
        bind(Config {
            write_timeout: Some(Duration::from_millis(300)),
            ..config("t-noread")
        }),
        |mut ws| {
            let chunk = vec![7u8; 1 << 20];
            loop {
                ws.send_binary(&chunk)?;
            }
        },
    );
    let stalled = upgraded(addr);
    assert!(threads_named("t-noread") == 1);
    assert_threads_end("t-noread");
    drop(stalled);
    server.shutdown();
}

// --- sending from other threads -------------------------------------------------

#[test]
fn a_sender_sends_from_another_thread_while_the_handler_reads() {
    let (server, addr) = spawn(bind(config("t-sender")), |mut ws| {
        let sender = ws.sender()?;
        thread::spawn(move || {
            for i in 0..3 {
                sender.send(format!("push {i}")).unwrap();
            }
        });
        echo(ws)
    });
    let mut ws = client::connect(&ws_url(addr, "/")).unwrap();
    for i in 0..3 {
        assert_eq!(ws.recv().unwrap(), Some(Message::Text(format!("push {i}"))));
    }
    ws.send("and echo").unwrap();
    assert_eq!(ws.recv().unwrap(), Some(Message::Text("and echo".into())));
    server.shutdown();
}

/// A hub shared by a test's handler.
fn hub_server(name: &str, hub: Hub) -> (Running, SocketAddr) {
    let joined = Arc::new(AtomicUsize::new(0));
    let server = bind(config(name));
    let running = server
        .spawn(move |mut ws| {
            let _member = hub.join_with(ws.sender()?, "joined")?;
            joined.fetch_add(1, Ordering::SeqCst);
            while ws.recv()?.is_some() {}
            Ok(())
        })
        .unwrap();
    let Addr::Tcp(addr) = running.addr().clone() else {
        panic!()
    };
    (running, addr)
}

#[test]
fn hub_broadcasts_to_every_member() {
    let hub = Hub::new();
    let (server, addr) = hub_server("t-hub", hub.clone());
    let mut clients: Vec<_> = (0..5)
        .map(|_| {
            let mut ws = client::connect(&ws_url(addr, "/")).unwrap();
            assert_eq!(ws.recv().unwrap(), Some(Message::Text("joined".into())));
            ws
        })
        .collect();
    assert_eq!(hub.len(), 5);
    assert_eq!(hub.broadcast(r#"{"outputs":[1,0,0,0,0,0,0,0]}"#), 5);
    for ws in &mut clients {
        assert_eq!(
            ws.recv().unwrap(),
            Some(Message::Text(r#"{"outputs":[1,0,0,0,0,0,0,0]}"#.into()))
        );
    }
    // Members leave when their connection ends.
    drop(clients.pop());
    let deadline = Instant::now() + 5 * SECOND;
    while hub.len() != 4 {
        assert!(Instant::now() < deadline, "hub has {}", hub.len());
        thread::sleep(Duration::from_millis(10));
    }
    server.shutdown();
}

#[test]
fn membership_send_comes_first_then_broadcasts_in_order() {
    let hub = Hub::new();
    let (server, addr) = hub_server("t-order", hub.clone());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
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

#[test]
fn hub_closes_a_member_that_cannot_keep_up_and_others_keep_receiving() {
    let hub = Hub::with_limits(8, 1 << 20);
    let (server, addr) = hub_server("t-slowhub", hub.clone());
    let mut fast = client::connect(&ws_url(addr, "/")).unwrap();
    assert_eq!(fast.recv().unwrap(), Some(Message::Text("joined".into())));
    let slow = upgraded(addr); // never reads again
    let deadline = Instant::now() + 5 * SECOND;
    while hub.len() < 2 {
        assert!(Instant::now() < deadline);
        thread::sleep(Duration::from_millis(10));
    }
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
    drop((slow, fast));
    server.shutdown();
}

// --- shutdown -----------------------------------------------------------------

#[test]
fn graceful_shutdown_sends_1001_to_every_client_and_waits() {
    let (server, addr) = spawn(bind(config("t-shutdown")), echo);
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let mut ws = client::connect(&ws_url(addr, "/")).unwrap();
            thread::spawn(move || {
                while ws.recv()?.is_some() {}
                Ok::<_, Error>(ws.peer_close_frame().flatten().map(|f| f.code))
            })
        })
        .collect();
    let deadline = Instant::now() + 5 * SECOND;
    while server.handle().connections() < 3 {
        assert!(Instant::now() < deadline);
        thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(server.shutdown(), 0, "every client closed cleanly");
    for r in readers {
        assert_eq!(r.join().unwrap().unwrap(), Some(CloseCode::GOING_AWAY));
    }
    assert_threads_end("t-shutdown");
    assert!(TcpStream::connect(addr).is_err(), "no longer listening");
}

#[test]
#[cfg_attr(
    windows,
    ignore = "Windows does not wake a thread blocked in recv on shutdown(): the forced close waits for the read timeout"
)]
fn shutdown_forces_clients_that_ignore_the_close_after_the_deadline() {
    let (server, addr) = spawn(
        bind(Config {
            shutdown_timeout: Duration::from_millis(200),
            ..config("t-force")
        }),
        echo,
    );
    let mut ignorer = upgraded(addr);
    let deadline = Instant::now() + 5 * SECOND;
    while server.handle().connections() < 1 {
        assert!(Instant::now() < deadline);
        thread::sleep(Duration::from_millis(5));
    }
    let start = Instant::now();
    assert_eq!(server.shutdown(), 1, "one client ignored the close");
    assert!(start.elapsed() < 2 * SECOND);
    assert_threads_end("t-force");
    let (opcode, payload) = read_frame(&mut ignorer);
    assert_eq!((opcode, &payload[..2]), (0x8, &1001u16.to_be_bytes()[..]));
}

// --- client ---------------------------------------------------------------------

/// A fake server that answers the upgrade with `response`.
fn fake_server(response: &'static str) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf);
        let _ = s.write_all(response.as_bytes());
        thread::sleep(Duration::from_millis(100));
    });
    addr
}

#[test]
fn client_verifies_sec_websocket_accept() {
    let addr = fake_server(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
    );
    let err = client::connect(&ws_url(addr, "/")).unwrap_err();
    assert!(
        matches!(err, Error::Connect(ConnectError::BadResponse(_))),
        "{err}"
    );
}

#[test]
fn client_refuses_wss_with_a_clear_error() {
    let err = client::connect("wss://127.0.0.1:1/").unwrap_err();
    assert!(err.to_string().contains("TLS"), "{err}");
}

// --- faults ---------------------------------------------------------------------

#[test]
fn errors_reach_the_error_hook_not_stderr() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let server =
        bind(config("t-errhook")).on_error(move |_, e| log.lock().unwrap().push(e.http_status()));
    let (server, addr) = spawn(server, echo);
    raw_exchange(addr, b"GET / HTTP/1.0\r\n\r\n");
    raw_exchange(
        addr,
        upgrade_request("127.0.0.1", "")
            .replace("13", "8")
            .as_bytes(),
    );
    let deadline = Instant::now() + 5 * SECOND;
    while seen.lock().unwrap().len() < 2 {
        assert!(Instant::now() < deadline);
        thread::sleep(Duration::from_millis(5));
    }
    let mut statuses = seen.lock().unwrap().clone();
    statuses.sort();
    assert_eq!(statuses, vec![Some(400), Some(426)]);
    server.shutdown();
}

#[test]
fn handler_returning_early_still_closes_with_1000() {
    let (server, addr) = spawn(bind(config("t-early")), |_ws| Ok(()));
    let mut ws = client::connect(&ws_url(addr, "/")).unwrap();
    assert_eq!(ws.recv().unwrap(), None);
    assert_eq!(
        ws.peer_close_frame().flatten().map(|f| f.code),
        Some(CloseCode::NORMAL)
    );
    server.shutdown();
}

#[test]
fn a_panicking_handler_frees_its_slot_and_the_server_goes_on() {
    let (server, addr) = spawn(bind(config("t-panic")), |mut ws| {
        if ws.recv()? == Some(Message::Text("panic".into())) {
            panic!("handler bug (expected by this test)");
        }
        echo(ws)
    });
    let mut ws = client::connect(&ws_url(addr, "/")).unwrap();
    ws.send("panic").unwrap();
    assert!(ws.recv().is_err() || ws.peer_close_frame().is_none());
    assert_threads_end("t-panic");
    assert_eq!(server.handle().connections(), 0);
    let mut ws = client::connect(&ws_url(addr, "/")).unwrap();
    ws.send("no panic").unwrap(); // first message: not "panic", then echo
    ws.send("echo").unwrap();
    assert_eq!(ws.recv().unwrap(), Some(Message::Text("echo".into())));
    server.shutdown();
}

#[test]
fn survives_disconnects_garbage_slowloris_floods_and_stalled_readers() {
    let name = "t-faults";
    let (server, addr) = spawn(
        bind(Config {
            max_connections: 20,
            handshake_timeout: Duration::from_millis(300),
            write_timeout: Some(Duration::from_millis(300)),
            ..config(name)
        }),
        echo,
    );
    // Abrupt disconnects: mid-handshake and mid-frame.
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: 127").unwrap();
    drop(s);
    let mut s = upgraded(addr);
    s.write_all(&[0x82, 0xfe, 0x10, 0x00, 1, 2, 3, 4, 9, 9, 9])
        .unwrap();
    drop(s);
    // Garbage instead of HTTP, and garbage after the upgrade.
    let garbage = raw_exchange(addr, &[0x16, 0x03, 0x01, 0x00, 0xa5, 0x01]);
    assert_eq!(status_of(&garbage), 400);
    let mut s = upgraded(addr);
    s.write_all(&[0xff; 64]).unwrap();
    let (opcode, _) = read_frame(&mut s);
    assert_eq!(opcode, 0x8);
    drop(s);
    // Clients that never read while the server writes to them.
    let stalled: Vec<_> = (0..3)
        .map(|_| {
            let mut s = upgraded(addr);
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
    // Everything above ends within its timeouts; nothing leaks.
    let deadline = Instant::now() + 10 * SECOND;
    while threads_named(name) > stalled.len() + idle.len() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    assert_threads_end(name);
    assert_eq!(server.handle().connections(), 0);
    drop((idle, stalled));
    assert_echo_within_a_second(addr);
    server.shutdown();
}

//! The io_board example's protocols, driven against the real program: the
//! WebSocket status and output protocol, the REST API over TCP and over a
//! Unix socket, broadcasts between them, and simulated inputs.

mod example_process;
#[path = "../examples/common/json.rs"]
mod json;

#[cfg(unix)]
use example_process::{http_unix, TempDir};
use example_process::{recv_text, Example};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use stdws::client::{self, ClientConfig, ConnectError};
use stdws::{CloseCode, Error, Message};

const ZEROS: &str = r#"{"inputs":[0,0,0,0,0,0,0,0],"outputs":[0,0,0,0,0,0,0,0]}"#;

fn status(inputs: &str, outputs: &str) -> String {
    format!(r#"{{"inputs":{inputs},"outputs":{outputs}}}"#)
}

/// The server modes the WebSocket tests run against: a thread per client,
/// and the event loop (Linux only).
const MODES: &[&[&str]] = &[
    &[],
    #[cfg(all(target_os = "linux", feature = "event-loop"))]
    &["--event-loop"],
];

fn start(args: &[&str]) -> Example {
    let mut all = vec!["--listen", "127.0.0.1:0"];
    all.extend_from_slice(args);
    Example::start("io_board", &all)
}

#[test]
fn a_websocket_client_gets_the_status_on_connect() {
    for mode in MODES {
        let board = start(mode);
        let mut ws = board.connect();
        assert_eq!(recv_text(&mut ws), ZEROS);
    }
}

#[test]
fn an_array_of_eight_sets_all_outputs_and_every_client_sees_it() {
    for mode in MODES {
        let board = start(mode);
        let (mut a, mut b) = (board.connect(), board.connect());
        assert_eq!(recv_text(&mut a), ZEROS);
        assert_eq!(recv_text(&mut b), ZEROS);

        a.send_text("[1,0,1,0,0,0,0,1]").unwrap();
        let expected = status("[0,0,0,0,0,0,0,0]", "[1,0,1,0,0,0,0,1]");
        assert_eq!(recv_text(&mut a), expected);
        assert_eq!(recv_text(&mut b), expected);
        // A client connecting later starts from the new state.
        assert_eq!(recv_text(&mut board.connect()), expected);
    }
}

#[test]
fn invalid_messages_get_an_error_for_the_sender_only_and_change_nothing() {
    for mode in MODES {
        let board = start(mode);
        let (mut sender, mut other) = (board.connect(), board.connect());
        recv_text(&mut sender);
        recv_text(&mut other);

        for bad in [
            "not json",
            "[1,0,1]",
            "[1,0,1,0,0,0,0,1,0]",
            "[0,0,0,0,0,0,0,2]",
            "[0,0,0,0,0,0,0,true]",
            r#"[0,0,0,0,0,0,0,"1"]"#,
            r#"{"outputs":[1,1,1,1,1,1,1,1]}"#,
            "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
        ] {
            sender.send_text(bad).unwrap();
            let reply = recv_text(&mut sender);
            assert!(reply.starts_with(r#"{"error":""#), "{bad}: {reply}");
        }
        sender.send(Message::Binary(vec![1; 8])).unwrap();
        assert!(recv_text(&mut sender).contains("expected a text message"));

        assert_eq!(board.http("GET", "/io", "").body, ZEROS, "state changed");
        // The connection is still open, and the other client got none of the
        // errors: its next message is the status for this valid change.
        sender.send_text("[0,0,0,0,0,0,1,1]").unwrap();
        let expected = status("[0,0,0,0,0,0,0,0]", "[0,0,0,0,0,0,1,1]");
        assert_eq!(recv_text(&mut other), expected);
        assert_eq!(recv_text(&mut sender), expected);
    }
}

#[test]
fn only_real_changes_are_broadcast() {
    for mode in MODES {
        let board = start(mode);
        let mut ws = board.connect();
        recv_text(&mut ws);
        assert_eq!(board.http("POST", "/io/outputs/2", "0").body, "0"); // already 0
        ws.send_text("[0,0,0,0,0,0,0,0]").unwrap(); // already all 0
        assert_eq!(board.http("POST", "/io/outputs/2", "1").body, "1");
        // The first message after the no-op sets is the real change.
        assert_eq!(
            recv_text(&mut ws),
            status("[0,0,0,0,0,0,0,0]", "[0,0,1,0,0,0,0,0]")
        );
    }
}

#[test]
fn rest_routes_read_and_set_the_lines() {
    let board = start(&[]);
    let get = |path: &str| {
        let r = board.http("GET", path, "");
        assert_eq!(r.status, 200, "GET {path}: {}", r.body);
        assert_eq!(r.header("content-type"), Some("application/json"));
        r.body
    };
    assert_eq!(get("/io"), ZEROS);
    assert_eq!(get("/io/outputs"), "[0,0,0,0,0,0,0,0]");
    assert_eq!(get("/io/outputs/7"), "0");

    let set = board.http("POST", "/io/outputs/3", "1");
    assert_eq!((set.status, set.body.as_str()), (200, "1"));
    assert_eq!(get("/io/outputs/3"), "1");
    assert_eq!(get("/io/outputs"), "[0,0,0,1,0,0,0,0]");

    let all = board.http("POST", "/io/outputs", "[1, 1, 0, 0, 1, 1, 0, 0]\n");
    assert_eq!((all.status, all.body.as_str()), (200, "[1,1,0,0,1,1,0,0]"));
    assert_eq!(get("/io/outputs/3"), "0");

    let input = board.http("POST", "/io/inputs/5", "1\n");
    assert_eq!((input.status, input.body.as_str()), (200, "1"));
    assert_eq!(get("/io/inputs/5"), "1");
    assert_eq!(get("/io/inputs"), "[0,0,0,0,0,1,0,0]");
    assert_eq!(get("/io"), status("[0,0,0,0,0,1,0,0]", "[1,1,0,0,1,1,0,0]"));
}

#[test]
fn rest_errors_are_404_400_and_405() {
    let board = start(&[]);
    for path in [
        "/io/outputs/8",
        "/io/outputs/-1",
        "/io/outputs/x",
        "/io/inputs/10",
        "/io/outputs/1/2",
        "/io/relays",
        "/nothing",
    ] {
        assert_eq!(board.http("GET", path, "").status, 404, "GET {path}");
    }
    assert_eq!(board.http("POST", "/io/outputs/8", "1").status, 404);
    for (path, body) in [
        ("/io/outputs/1", "2"),
        ("/io/outputs/1", ""),
        ("/io/outputs/1", "on"),
        ("/io/inputs/1", "[1]"),
        ("/io/outputs", "[1,1]"),
        ("/io/outputs", "[1,1,1,1,1,1,1,7]"),
        ("/io/outputs", r#"{"outputs":[1,1,1,1,1,1,1,1]}"#),
        ("/io/outputs", "1"),
    ] {
        let r = board.http("POST", path, body);
        assert_eq!(r.status, 400, "POST {path} {body:?}");
        assert!(r.body.starts_with(r#"{"error":""#), "{}", r.body);
    }
    for (method, path, allow) in [
        ("DELETE", "/io", "GET"),
        ("POST", "/io", "GET"),
        ("POST", "/io/inputs", "GET"),
        ("PUT", "/io/outputs", "GET, POST"),
        ("PATCH", "/io/outputs/1", "GET, POST"),
        ("POST", "/", "GET"),
    ] {
        let r = board.http(method, path, "1");
        assert_eq!(r.status, 405, "{method} {path}");
        assert_eq!(r.header("allow"), Some(allow), "{method} {path}");
    }
    assert_eq!(board.http("GET", "/io", "").body, ZEROS, "state changed");
}

#[test]
fn changes_over_http_are_broadcast_to_websocket_clients() {
    for mode in MODES {
        let board = start(mode);
        let mut ws = board.connect();
        recv_text(&mut ws);
        board.http("POST", "/io/outputs/0", "1");
        assert_eq!(
            recv_text(&mut ws),
            status("[0,0,0,0,0,0,0,0]", "[1,0,0,0,0,0,0,0]")
        );
        board.http("POST", "/io/inputs/7", "1");
        assert_eq!(
            recv_text(&mut ws),
            status("[0,0,0,0,0,0,0,1]", "[1,0,0,0,0,0,0,0]")
        );
        board.http("POST", "/io/outputs", "[0,1,1,1,1,1,1,1]");
        assert_eq!(
            recv_text(&mut ws),
            status("[0,0,0,0,0,0,0,1]", "[0,1,1,1,1,1,1,1]")
        );
    }
}

#[test]
#[cfg(unix)]
fn the_unix_socket_serves_the_rest_api_on_the_same_state() {
    let dir = TempDir::new("io-board-unix");
    let sock = dir.0.join("bb-io.sock");
    let board = start(&["--unix", sock.to_str().unwrap()]);
    let mut ws = board.connect();
    recv_text(&mut ws);

    let set = http_unix(&sock, "POST", "/io/outputs/6", "1");
    assert_eq!((set.status, set.body.as_str()), (200, "1"));
    let expected = status("[0,0,0,0,0,0,0,0]", "[0,0,0,0,0,0,1,0]");
    assert_eq!(recv_text(&mut ws), expected, "broadcast to the TCP client");
    assert_eq!(board.http("GET", "/io", "").body, expected);
    assert_eq!(http_unix(&sock, "GET", "/io", "").body, expected);
    assert_eq!(http_unix(&sock, "GET", "/io/outputs/6", "").body, "1");
    assert_eq!(http_unix(&sock, "GET", "/io/outputs/9", "").status, 404);
    assert_eq!(http_unix(&sock, "POST", "/io/outputs/1", "x").status, 400);
    assert_eq!(http_unix(&sock, "DELETE", "/io/outputs", "").status, 405);
    // `/stats` there reports the TCP server: its WebSocket client is open.
    let stats = http_unix(&sock, "GET", "/stats", "");
    assert_eq!(stats.status, 200, "{}", stats.body);
    let stats = json::parse(&stats.body).unwrap();
    assert_eq!(number(&stats, "connections_open"), 1, "{stats:?}");

    // The WebSocket protocol works over the Unix socket too.
    let mut local = client::connect_unix(&sock, "/", &ClientConfig::default()).unwrap();
    local
        .get_ref()
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(recv_text(&mut local), expected);
}

#[test]
#[cfg(not(unix))]
fn the_unix_socket_option_fails_with_a_clear_message_off_unix() {
    let out = example_process::command("io_board")
        .args(["--listen", "127.0.0.1:0", "--unix", "bb-io.sock"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Unix sockets are not available"),
        "{stderr}"
    );
}

#[test]
fn simulated_inputs_change_by_themselves() {
    let board = start(&["--simulate-inputs"]);
    let mut ws = board.connect();
    let first = recv_text(&mut ws);
    let started = Instant::now();
    let second = recv_text(&mut ws);
    let third = recv_text(&mut ws);
    assert!(started.elapsed() < Duration::from_secs(4));
    for (before, after) in [(&first, &second), (&second, &third)] {
        let inputs = |s: &str| s.split("\"outputs\"").next().unwrap().to_owned();
        assert_ne!(inputs(before), inputs(after), "{before} -> {after}");
        assert!(
            after.ends_with(r#""outputs":[0,0,0,0,0,0,0,0]}"#),
            "{after}"
        );
    }
}

#[test]
fn the_page_is_served_self_contained() {
    let board = start(&[]);
    let page = board.http("GET", "/", "");
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(page.body.contains("new WebSocket("));
    for external in ["http://", "https://", "src=", "@import", "url("] {
        assert!(
            !page.body.contains(external),
            "the page refers to {external}"
        );
    }
    let links = page.body.matches("href=").count();
    assert_eq!(links, page.body.matches(r#"href="data:,""#).count());
}

#[test]
fn the_websocket_refuses_other_sites_pages() {
    let board = start(&[]);
    let with_origin = |origin: &str| ClientConfig {
        headers: vec![("Origin".into(), origin.into())],
        ..ClientConfig::default()
    };
    // The page's own origin, as a browser sends it from the page at `/`.
    let same = client::connect_with(
        &board.ws_url(),
        &with_origin(&format!("http://{}", board.addr)),
    );
    assert!(same.is_ok(), "{:?}", same.err());
    let other = client::connect_with(&board.ws_url(), &with_origin("http://evil.example"));
    assert!(
        matches!(other, Err(Error::Connect(ConnectError::Refused(403)))),
        "{:?}",
        other.err()
    );
}

#[test]
fn bad_arguments_print_usage_and_exit_2() {
    for args in [&["--bogus"][..], &["--listen"], &["--unix"]] {
        let out = example_process::command("io_board")
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("usage: io_board"));
    }
    let help = example_process::command("io_board")
        .arg("--help")
        .output()
        .unwrap();
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&help.stdout).contains("--simulate-inputs"));
    let taken = example_process::command("io_board")
        .args(["--listen", "256.0.0.1:1"])
        .output()
        .unwrap();
    assert_eq!(taken.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&taken.stderr).contains("cannot listen on 256.0.0.1:1"));
}

/// `GET /stats`, parsed, and how many connections it took.
struct StatsPoll<'a> {
    board: &'a Example,
    requests: u64,
}

impl StatsPoll<'_> {
    fn get(&mut self) -> json::Value {
        self.requests += 1;
        let r = self.board.http("GET", "/stats", "");
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.header("content-type"), Some("application/json"));
        json::parse(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.body))
    }
}

fn number(stats: &json::Value, key: &str) -> i64 {
    stats
        .get(key)
        .and_then(json::Value::as_i64)
        .unwrap_or_else(|| panic!("no number {key:?} in {stats:?}"))
}

/// An object keyed by code, as `(code, count)` pairs.
fn by_code(stats: &json::Value, key: &str) -> Vec<(String, i64)> {
    match stats.get(key) {
        Some(json::Value::Object(members)) => members
            .iter()
            .map(|(k, v)| (k.clone(), v.as_i64().expect("a count")))
            .collect(),
        other => panic!("{key:?} is not an object: {other:?}"),
    }
}

#[test]
fn get_stats_reports_the_servers_counters_as_json() {
    for mode in MODES {
        let board = start(mode);
        let mut poll = StatsPoll {
            board: &board,
            requests: 0,
        };
        let fresh = poll.get();
        assert_eq!(number(&fresh, "messages_in"), 0, "{mode:?}");
        let mut ws = board.connect();
        let mut out = vec![recv_text(&mut ws)];
        let sent = ["[1,0,0,0,0,0,0,0]", "nonsense"];
        for text in sent {
            ws.send_text(text).unwrap();
            out.push(recv_text(&mut ws)); // the broadcast, then the error
        }
        // A request that is not HTTP: refused with 400.
        let mut garbage = TcpStream::connect(board.addr).unwrap();
        garbage.write_all(b"\x16\x03\x01\x00\r\n\r\n").unwrap();
        let mut answer = String::new();
        let _ = garbage.read_to_string(&mut answer);
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        drop(garbage);
        ws.close(CloseCode::NORMAL, "").unwrap();
        while let Ok(Some(_)) = ws.recv() {}
        drop(ws);
        // Closes count as their connections end.
        let deadline = Instant::now() + Duration::from_secs(5);
        let stats = loop {
            let stats = poll.get();
            if number(&stats, "connections_open") == 1 || Instant::now() > deadline {
                break stats;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(
            number(&stats, "connections_open"),
            1,
            "this request: {stats:?}"
        );
        let accepted = 2 + poll.requests as i64; // the WebSocket, the garbage, the polls
        assert_eq!(
            number(&stats, "connections_accepted"),
            accepted,
            "{stats:?}"
        );
        assert_eq!(by_code(&stats, "refused"), [("400".into(), 1)], "{stats:?}");
        let normal = [("1000".to_string(), 1)];
        assert_eq!(by_code(&stats, "closes_sent"), normal, "{stats:?}");
        assert_eq!(by_code(&stats, "closes_received"), normal, "{stats:?}");
        assert_eq!(number(&stats, "messages_in"), 2, "{stats:?}");
        assert_eq!(number(&stats, "messages_out"), 3, "{stats:?}");
        let bytes_in: usize = sent.iter().map(|s| s.len()).sum();
        let bytes_out: usize = out.iter().map(String::len).sum();
        assert_eq!(number(&stats, "bytes_in"), bytes_in as i64, "{stats:?}");
        assert_eq!(number(&stats, "bytes_out"), bytes_out as i64, "{stats:?}");
        assert_eq!(number(&stats, "hub_dropped"), 0, "{stats:?}");
        assert_eq!(board.http("POST", "/stats", "").status, 405);
    }
}

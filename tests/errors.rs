//! What each error says, and the close code or HTTP status that goes with
//! it: every `Error` variant as a real connection produces it, its message
//! checked for the facts a user needs, and `close_code`, `http_status`,
//! `is_disconnect` and `source` checked to agree with what went on the wire.

mod common;

use common::{frame, server_and_raw_client, tcp_pair, TIMEOUT};
use std::error::Error as _;
use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::thread;
use std::time::Duration;
use stdws::client::{self, ConnectError};
use stdws::http::HandshakeError;
use stdws::proto::Expired;
use stdws::proto::{ProtocolError, Role};
use stdws::{CloseCode, Error, Keepalive, Limits, Response, Server, WebSocket};

/// Reads one short frame (masked or not): its first byte and its payload.
fn read_frame(s: &mut impl Read) -> (u8, Vec<u8>) {
    let mut head = [0u8; 2];
    s.read_exact(&mut head).unwrap();
    let len = usize::from(head[1] & 0x7f);
    assert!(len < 126, "a short frame was expected, got {head:02x?}");
    let mut key = [0u8; 4];
    if head[1] & 0x80 != 0 {
        s.read_exact(&mut key).unwrap();
    }
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload).unwrap();
    for (i, b) in payload.iter_mut().enumerate() {
        *b ^= key[i % 4];
    }
    (head[0], payload)
}

/// The code and reason of a close frame's payload.
fn close_of(payload: &[u8]) -> (u16, String) {
    let code = u16::from_be_bytes([payload[0], payload[1]]);
    (code, String::from_utf8(payload[2..].to_vec()).unwrap())
}

fn assert_says(error: &impl std::fmt::Display, facts: &[&str]) {
    let text = error.to_string();
    for fact in facts {
        assert!(text.contains(fact), "{text:?} does not say {fact:?}");
    }
}

#[test]
fn a_refused_handshake_names_the_broken_rule_and_carries_the_status_sent() {
    let (server, mut client) = tcp_pair();
    client
        .write_all(
            b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
        )
        .unwrap();
    let error = WebSocket::accept(server).unwrap_err();
    assert!(
        matches!(&error, Error::Handshake(HandshakeError::UnsupportedVersion(v)) if v == "8"),
        "{error:?}"
    );
    assert_says(
        &error,
        &[
            "handshake refused",
            "\"8\"",
            "only 13 is supported",
            "HTTP 426",
        ],
    );
    assert_eq!(error.http_status(), Some(426));
    assert_eq!(error.close_code(), None, "no WebSocket, so no close code");
    assert!(!error.is_disconnect());
    let source = error.source().expect("the handshake error");
    assert!(source.is::<HandshakeError>());
    // The status the error carries is the one the client got.
    let mut response = String::new();
    client.read_to_string(&mut response).unwrap();
    assert!(
        response.starts_with("HTTP/1.1 426 Upgrade Required\r\n"),
        "{response}"
    );
}

#[test]
fn a_protocol_violation_names_the_rule_and_the_close_code_the_peer_got() {
    let (mut ws, mut client) = server_and_raw_client();
    client.write_all(&[0x81, 0x02, b'h', b'i']).unwrap(); // text, unmasked
    let error = ws.recv().unwrap_err();
    assert!(
        matches!(error, Error::Protocol(ProtocolError::UnmaskedFrame)),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "protocol error: client frame is not masked (close code 1002)"
    );
    assert_eq!(error.close_code(), Some(CloseCode::PROTOCOL_ERROR));
    assert_eq!(error.http_status(), None);
    assert!(!error.is_disconnect(), "a broken peer is worth logging");
    assert!(error.source().unwrap().is::<ProtocolError>());
    let (b0, payload) = read_frame(&mut client);
    assert_eq!(b0, 0x88);
    assert_eq!(
        close_of(&payload),
        (1002, "client frame is not masked (close code 1002)".into())
    );
    assert!(ws.is_closed(), "nothing more is read after a failure");
}

#[test]
fn a_peer_that_hangs_up_without_a_close_frame_is_a_1006_disconnect() {
    let (mut ws, client) = server_and_raw_client();
    drop(client);
    let error = ws.recv().unwrap_err();
    assert!(matches!(error, Error::UnexpectedEof), "{error:?}");
    assert_says(&error, &["without a close frame", "1006"]);
    assert_eq!(error.close_code(), Some(CloseCode(1006)));
    assert!(error.is_disconnect(), "routine for a server");
    assert!(error.source().is_none());
    assert_eq!(io::Error::from(error).kind(), io::ErrorKind::UnexpectedEof);
}

#[test]
fn sending_after_the_close_went_out_is_refused_as_closed() {
    let (mut ws, mut client) = server_and_raw_client();
    ws.close(CloseCode::NORMAL, "bye").unwrap();
    // Closing twice is a no-op, not an error and not a second frame.
    ws.close(CloseCode::GOING_AWAY, "again").unwrap();
    let error = ws.send("late").unwrap_err();
    assert!(matches!(error, Error::Closed), "{error:?}");
    assert_says(&error, &["closing or closed", "nothing more can be sent"]);
    assert_eq!((error.close_code(), error.http_status()), (None, None));
    assert!(!error.is_disconnect());
    assert_eq!(io::Error::from(error).kind(), io::ErrorKind::BrokenPipe);
    // One close frame went out, and nothing after it.
    let (b0, payload) = read_frame(&mut client);
    assert_eq!((b0, close_of(&payload)), (0x88, (1000, "bye".into())));
    assert!(!ws.is_closed(), "still open for receiving the reply");
    client
        .write_all(&frame(0x88, &1000u16.to_be_bytes()))
        .unwrap();
    assert_eq!(ws.recv().unwrap(), None);
    assert!(ws.is_closed());
    let peer = ws.peer_close_frame().expect("the reply arrived");
    assert_eq!(peer.map(|f| f.code), Some(CloseCode::NORMAL));
    drop(ws);
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "sent after the close: {rest:02x?}");
}

#[test]
fn arguments_the_api_refuses_say_which_limit_and_send_nothing() {
    let (mut ws, mut client) = server_and_raw_client();
    let sender = ws.sender().unwrap();
    let too_long = "x".repeat(124);
    let refused = [
        (
            ws.ping(&[0; 126]).unwrap_err(),
            "control frame payload over 125 bytes",
        ),
        (
            sender.ping(&[0; 126]).unwrap_err(),
            "control frame payload over 125 bytes",
        ),
        (
            ws.close(CloseCode(1005), "").unwrap_err(),
            "close code not allowed on the wire",
        ),
        (
            sender.close(CloseCode(999), "").unwrap_err(),
            "close code not allowed on the wire",
        ),
        (
            ws.close(CloseCode::NORMAL, &too_long).unwrap_err(),
            "close reason over 123 bytes",
        ),
    ];
    for (error, why) in refused {
        assert!(matches!(error, Error::InvalidInput(_)), "{error:?}");
        assert_eq!(error.to_string(), format!("invalid input: {why}"));
        assert_eq!((error.close_code(), error.http_status()), (None, None));
        assert_eq!(io::Error::from(error).kind(), io::ErrorKind::InvalidData);
    }
    // The connection is untouched: the first frame the peer sees is the
    // next valid one, and the limits themselves are allowed.
    ws.ping(&[7; 125]).unwrap();
    ws.close(CloseCode(4999), &"y".repeat(123)).unwrap();
    let (b0, payload) = read_frame(&mut client);
    assert_eq!((b0, payload), (0x89, vec![7; 125]));
    let (b0, payload) = read_frame(&mut client);
    assert_eq!((b0, close_of(&payload)), (0x88, (4999, "y".repeat(123))));
}

#[test]
fn silence_past_the_read_timeout_ends_with_1001_and_says_how_long() {
    // A client-side WebSocket, on its own stream (no Sender).
    let (near, mut server) = tcp_pair();
    let mut ws = WebSocket::from_raw(near, Role::Client, Limits::default(), &[]);
    let tick = ws.set_timeouts(Some(Duration::from_millis(200)), None);
    assert_eq!(tick, Some(Duration::from_millis(200)));
    ws.get_mut().set_read_timeout(tick).unwrap();
    let error = ws.recv().unwrap_err();
    assert!(
        matches!(error, Error::TimedOut(Expired::ReadTimeout(d)) if d == Duration::from_millis(200)),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "timed out: peer sent nothing for 200ms (close code 1001)"
    );
    assert_eq!(error.close_code(), Some(CloseCode::GOING_AWAY));
    assert!(!error.is_disconnect());
    assert_eq!(io::Error::from(error).kind(), io::ErrorKind::TimedOut);
    // The peer was told, with the code the error names (masked: a client).
    let (b0, payload) = read_frame(&mut server);
    assert_eq!((b0, close_of(&payload)), (0x88, (1001, "timeout".into())));
}

#[test]
fn an_unanswered_keepalive_ping_ends_with_1001_and_says_how_long_it_waited() {
    let (mut ws, mut client) = server_and_raw_client();
    let keepalive = Keepalive {
        interval: Duration::from_millis(100),
        timeout: Duration::from_millis(300),
    };
    let tick = ws.set_timeouts(None, Some(keepalive));
    ws.get_ref().set_read_timeout(tick).unwrap();
    let error = ws.recv().unwrap_err(); // the client never answers
    assert!(
        matches!(error, Error::TimedOut(Expired::NoPong(d)) if d == keepalive.timeout),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "timed out: no answer to a keepalive ping within 300ms (close code 1001)"
    );
    assert_eq!(error.close_code(), Some(CloseCode::GOING_AWAY));
    let (b0, payload) = read_frame(&mut client);
    assert_eq!((b0, payload), (0x89, vec![]), "the keepalive ping");
    let (b0, payload) = read_frame(&mut client);
    assert_eq!((b0, close_of(&payload)), (0x88, (1001, "timeout".into())));
}

#[test]
fn a_client_refused_by_the_server_gets_the_status_it_was_refused_with() {
    let running = Server::bind("127.0.0.1:0")
        .unwrap()
        .on_upgrade(|_| Err(Response::status(401)))
        .spawn(|_| Ok(()))
        .unwrap();
    let error = client::connect(&format!("ws://{}/", running.addr())).unwrap_err();
    assert!(
        matches!(error, Error::Connect(ConnectError::Refused(401))),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "connect failed: server refused the upgrade with HTTP 401"
    );
    assert!(error.source().unwrap().is::<ConnectError>());
    // http_status is what this end sent; a client sent none.
    assert_eq!((error.http_status(), error.close_code()), (None, None));
    running.shutdown();
}

#[test]
fn urls_the_client_cannot_use_say_what_would_do() {
    let error = client::connect("wss://example.com/").unwrap_err();
    assert!(matches!(
        error,
        Error::Connect(ConnectError::TlsUnsupported)
    ));
    assert_says(
        &error,
        &[
            "wss:// needs TLS",
            "TLS-terminating proxy",
            "client::handshake",
        ],
    );
    let error = client::connect("http://example.com/").unwrap_err();
    assert!(
        matches!(&error, Error::Connect(ConnectError::InvalidUrl(_))),
        "{error:?}"
    );
    assert_says(
        &error,
        &[
            "invalid WebSocket URL",
            "expected ws://",
            "\"http://example.com/\"",
        ],
    );
}

#[test]
fn a_port_nobody_listens_on_is_an_io_error_and_not_a_disconnect() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let error = client::connect(&format!("ws://127.0.0.1:{port}/")).unwrap_err();
    let Error::Io(e) = &error else {
        panic!("{error:?}")
    };
    assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
    assert!(error.to_string().starts_with("I/O error: "), "{error}");
    assert!(
        !error.is_disconnect(),
        "never connected, so never disconnected"
    );
    assert!(error.source().unwrap().is::<io::Error>());
    assert_eq!(
        io::Error::from(error).kind(),
        io::ErrorKind::ConnectionRefused
    );
}

#[test]
fn an_error_hook_can_tell_disconnects_from_faults() {
    use std::sync::{Arc, Mutex};
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let running = Server::bind("127.0.0.1:0")
        .unwrap()
        .on_error(move |_, e| {
            log.lock()
                .unwrap()
                .push((e.is_disconnect(), e.close_code()))
        })
        .spawn(|mut ws| {
            while ws.recv()?.is_some() {}
            Ok(())
        })
        .unwrap();
    let url = format!("ws://{}/", running.addr());
    // One client hangs up without a close frame; one breaks the protocol.
    drop(client::connect(&url).unwrap().into_inner());
    let mut bad = client::connect(&url).unwrap().into_inner();
    bad.write_all(&[0x82, 0x00]).unwrap(); // unmasked
    let deadline = std::time::Instant::now() + TIMEOUT;
    while seen.lock().unwrap().len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "{:?}",
            seen.lock().unwrap()
        );
        thread::sleep(Duration::from_millis(10));
    }
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.contains(&(false, Some(CloseCode::PROTOCOL_ERROR))),
        "the protocol error is a fault: {seen:?}"
    );
    assert!(
        seen.iter().any(|&(disconnect, _)| disconnect),
        "the hang-up is a disconnect: {seen:?}"
    );
    running.shutdown();
}

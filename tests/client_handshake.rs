//! The client's side of the opening handshake against scripted servers:
//! what the request says, and each way a `101` can break RFC 6455 section
//! 4.1 (or RFC 7692) refused with a reason, before any frame is exchanged.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;
use stdws::client::{self, ClientConfig, ConnectError};
use stdws::http::accept_key;
use stdws::{Error, Message};

/// A server for one connection: it reads the request head, answers with
/// `respond(key)` (`key`: the request's `Sec-WebSocket-Key`), echoes one
/// text frame if the client sends one, and hands back the request.
fn scripted_server(
    bind: &str,
    respond: impl Fn(&str) -> String + Send + 'static,
) -> (SocketAddr, mpsc::Receiver<String>) {
    let listener = TcpListener::bind(bind).unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if s.read(&mut byte).unwrap() == 0 {
                return;
            }
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).unwrap();
        let key = head
            .lines()
            .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
            .unwrap()
            .to_owned();
        s.write_all(respond(&key).as_bytes()).unwrap();
        let _ = tx.send(head);
        // Echo one short masked text frame, unmasked.
        let mut frame = [0u8; 6];
        if s.read_exact(&mut frame).is_ok() {
            let len = usize::from(frame[1] & 0x7f);
            let mut payload = vec![0u8; len];
            s.read_exact(&mut payload).unwrap();
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= frame[2 + i % 4];
            }
            let mut out = vec![0x81, len as u8];
            out.extend_from_slice(&payload);
            let _ = s.write_all(&out);
        }
        let _ = s.read(&mut byte); // until the client goes
    });
    (addr, rx)
}

/// A `101` for `key` with `extra` header lines (each ending in CRLF).
fn switching(key: &str, extra: &str) -> String {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n{extra}\r\n",
        accept_key(key)
    )
}

fn refusal_of(addr: SocketAddr, config: &ClientConfig) -> &'static str {
    match client::connect_with(&format!("ws://{addr}/"), config) {
        Err(Error::Connect(ConnectError::BadResponse(why))) => why,
        Err(e) => panic!("refused for another reason: {e}"),
        Ok(_) => panic!("a broken 101 was accepted"),
    }
}

#[test]
fn refuses_a_101_without_upgrade_websocket() {
    let (addr, _) = scripted_server("127.0.0.1:0", |key| {
        switching(key, "").replace("Upgrade: websocket\r\n", "Upgrade: h2c\r\n")
    });
    let why = refusal_of(addr, &ClientConfig::default());
    assert_eq!(why, "no Upgrade: websocket");
    assert_eq!(
        Error::Connect(ConnectError::BadResponse(why)).to_string(),
        "connect failed: invalid handshake response: no Upgrade: websocket"
    );
}

#[test]
fn refuses_a_101_without_connection_upgrade() {
    let (addr, _) = scripted_server("127.0.0.1:0", |key| {
        switching(key, "").replace("Connection: Upgrade\r\n", "Connection: keep-alive\r\n")
    });
    assert_eq!(
        refusal_of(addr, &ClientConfig::default()),
        "no Connection: Upgrade"
    );
}

#[test]
fn refuses_a_101_with_the_wrong_accept_key() {
    // RFC 6455 section 1.3's sample accept: right for the sample key, not
    // for the key this client sent.
    let (addr, _) = scripted_server("127.0.0.1:0", |_| switching("dGhlIHNhbXBsZSBub25jZQ==", ""));
    assert_eq!(
        refusal_of(addr, &ClientConfig::default()),
        "wrong Sec-WebSocket-Accept"
    );
}

#[test]
fn refuses_an_extension_it_did_not_offer() {
    let (addr, _) = scripted_server("127.0.0.1:0", |key| {
        switching(key, "Sec-WebSocket-Extensions: permessage-deflate\r\n")
    });
    // The default config offers no extension.
    assert_eq!(
        refusal_of(addr, &ClientConfig::default()),
        "an extension the client did not offer"
    );
}

#[test]
fn refuses_a_subprotocol_it_did_not_offer() {
    let (addr, request) = scripted_server("127.0.0.1:0", |key| {
        switching(key, "Sec-WebSocket-Protocol: mqtt\r\n")
    });
    let config = ClientConfig {
        protocols: vec!["chat".into(), "superchat".into()],
        ..ClientConfig::default()
    };
    assert_eq!(
        refusal_of(addr, &config),
        "a subprotocol the client did not offer"
    );
    let request = request.recv().unwrap();
    assert!(
        request.contains("\r\nSec-WebSocket-Protocol: chat, superchat\r\n"),
        "{request}"
    );
}

#[test]
fn accepts_a_subprotocol_it_offered_and_says_which() {
    let (addr, _) = scripted_server("127.0.0.1:0", |key| {
        switching(key, "Sec-WebSocket-Protocol: superchat\r\n")
    });
    let config = ClientConfig {
        protocols: vec!["chat".into(), "superchat".into()],
        ..ClientConfig::default()
    };
    let ws = client::connect_with(&format!("ws://{addr}/"), &config).unwrap();
    assert_eq!(ws.protocol(), Some("superchat"));
    assert!(ws.request().is_none(), "a client has no request to show");
}

#[test]
fn connects_without_a_timeout_and_sends_the_target_host_and_extra_headers() {
    let (addr, request) = scripted_server("127.0.0.1:0", |key| switching(key, ""));
    let config = ClientConfig {
        timeout: None,
        headers: vec![("Origin".into(), "http://example.com".into())],
        ..ClientConfig::default()
    };
    let mut ws = client::connect_with(&format!("ws://{addr}/a?b"), &config).unwrap();
    // Once connected, reads wait as long as the application wants.
    assert_eq!(ws.get_ref().read_timeout().unwrap(), None);
    ws.send("hi").unwrap();
    assert_eq!(ws.recv().unwrap(), Some(Message::from("hi")));
    let request = request.recv().unwrap();
    assert!(request.starts_with("GET /a?b HTTP/1.1\r\n"), "{request}");
    assert!(
        request.contains(&format!("\r\nHost: {addr}\r\n")),
        "{request}"
    );
    assert!(
        request.contains("\r\nOrigin: http://example.com\r\n"),
        "{request}"
    );
}

#[test]
fn an_ipv6_host_is_sent_in_brackets() {
    let Ok(probe) = TcpListener::bind("[::1]:0") else {
        eprintln!("skipped: no IPv6 loopback here");
        return;
    };
    drop(probe);
    let (addr, request) = scripted_server("[::1]:0", |key| switching(key, ""));
    let url = format!("ws://[::1]:{}/", addr.port());
    client::connect(&url).unwrap();
    let request = request.recv().unwrap();
    assert!(
        request.contains(&format!("\r\nHost: [::1]:{}\r\n", addr.port())),
        "{request}"
    );
}

//! permessage-deflate over real loopback sockets: negotiation in the
//! handshake, compressed round trips both ways, RSV1 rules, and a
//! decompression bomb refused with 1009 before its memory is spent.

mod common;

use common::{frame, RawClient};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;
use stdws::client::{self, ClientConfig, ConnectError};
use stdws::deflate::{Deflater, Level, WindowBits};
use stdws::proto::extensions::permessage_deflate::DeflateConfig;
use stdws::{Addr, Config, Error, Limits, Message, Running, Server};

fn echo_server(config: Config) -> (Running, SocketAddr) {
    let running = Server::bind("127.0.0.1:0")
        .unwrap()
        .config(Config {
            shutdown_timeout: Duration::from_millis(300),
            ..config
        })
        .spawn(|mut ws| {
            while let Some(msg) = ws.recv()? {
                ws.send(msg)?;
            }
            Ok(())
        })
        .unwrap();
    let Addr::Tcp(addr) = running.addr().clone() else {
        panic!("not TCP")
    };
    (running, addr)
}

fn deflate_on() -> Config {
    Config {
        deflate: Some(DeflateConfig::default()),
        ..Config::default()
    }
}

fn deflate_client() -> ClientConfig {
    ClientConfig {
        deflate: Some(DeflateConfig::default()),
        ..ClientConfig::default()
    }
}

/// Sends a raw upgrade offering `extensions`; returns the client and the response head.
fn raw_upgrade(addr: SocketAddr, extensions: &str) -> (RawClient, String) {
    let mut client = RawClient::connect(addr);
    client.write(format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extensions}\r\n"
    ).as_bytes());
    let head = client.read_response_head().raw_head;
    (client, head)
}

/// Reads one server frame: (first byte, payload).
fn read_frame(client: &mut RawClient) -> (u8, Vec<u8>) {
    let f = client.read_frame();
    (f.header[0], f.payload)
}

fn close_code(payload: &[u8]) -> u16 {
    u16::from_be_bytes([payload[0], payload[1]])
}

#[test]
fn negotiates_permessage_deflate_in_the_101_only_when_configured() {
    let offer = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n";
    let (on, on_addr) = echo_server(deflate_on());
    let (_, head) = raw_upgrade(on_addr, offer);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.contains("\r\nSec-WebSocket-Extensions: permessage-deflate"),
        "{head}"
    );
    let (off, off_addr) = echo_server(Config::default());
    let (_, head) = raw_upgrade(off_addr, offer);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        !head.contains("Sec-WebSocket-Extensions"),
        "off by default: {head}"
    );
    on.shutdown();
    off.shutdown();
}

#[test]
fn round_trips_text_and_binary_compressed_both_ways() {
    let (server, addr) = echo_server(deflate_on());
    let mut ws = client::connect_with(&format!("ws://{addr}/"), &deflate_client()).unwrap();
    let json = r#"{"inputs":[0,1,0,0,1,0,0,0],"outputs":[1,1,0,0,0,0,0,0]}"#.repeat(40);
    let random: Vec<u8> = (0..100_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let messages = [
        Message::Text(json.clone()),
        Message::Text("short".into()),
        Message::Binary(random),
        Message::Binary(vec![0u8; 3 << 20]),
        Message::Text(String::new()),
        Message::Text(json),
    ];
    for msg in messages {
        ws.send(msg.clone()).unwrap();
        assert_eq!(ws.recv().unwrap(), Some(msg));
    }
    server.shutdown();
}

#[test]
fn the_server_really_compresses_what_it_sends() {
    let (server, addr) = echo_server(deflate_on());
    let (mut s, _) = raw_upgrade(
        addr,
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n",
    );
    // Send uncompressed (RSV1 clear is always allowed); the echo comes back compressed.
    let text = "status ".repeat(200);
    s.write(&frame(0x81, text.as_bytes()));
    let (b0, payload) = read_frame(&mut s);
    assert_eq!(b0, 0xc1, "FIN + RSV1 + text");
    assert!(payload.len() < text.len() / 10, "{} bytes", payload.len());
    server.shutdown();
}

#[test]
fn rsv1_on_a_continuation_or_control_frame_fails_with_1002() {
    let (server, addr) = echo_server(deflate_on());
    let offer = "Sec-WebSocket-Extensions: permessage-deflate\r\n";
    let (mut s, _) = raw_upgrade(addr, offer);
    s.write(&frame(0x01, b"a"));
    s.write(&frame(0xc0, b"b")); // RSV1 on a continuation
    let (b0, payload) = read_frame(&mut s);
    assert_eq!((b0, close_code(&payload)), (0x88, 1002));
    let (mut s, _) = raw_upgrade(addr, offer);
    s.write(&frame(0xc9, b"")); // RSV1 on a ping
    let (b0, payload) = read_frame(&mut s);
    assert_eq!((b0, close_code(&payload)), (0x88, 1002));
    server.shutdown();
}

#[test]
fn rsv1_without_negotiation_fails_with_1002() {
    let (server, addr) = echo_server(Config::default());
    let (mut s, _) = raw_upgrade(addr, "Sec-WebSocket-Extensions: permessage-deflate\r\n");
    let mut compressed = Vec::new();
    Deflater::new(Level::Default, WindowBits::MAX).compress_message(b"hello", &mut compressed);
    s.write(&frame(0xc1, &compressed));
    let (b0, payload) = read_frame(&mut s);
    assert_eq!((b0, close_code(&payload)), (0x88, 1002));
    server.shutdown();
}

#[test]
fn a_decompression_bomb_fails_with_1009_before_its_memory_is_spent() {
    let (server, addr) = echo_server(Config {
        limits: Limits {
            max_message_size: 1 << 20,
            ..Limits::default()
        },
        ..deflate_on()
    });
    let (mut s, _) = raw_upgrade(addr, "Sec-WebSocket-Extensions: permessage-deflate\r\n");
    // 64 MiB of zeros compress more than 100:1: a bomb 64 times the limit.
    let mut bomb = Vec::new();
    Deflater::new(Level::Fast, WindowBits::MAX).compress_message(&vec![0u8; 64 << 20], &mut bomb);
    assert!(bomb.len() * 100 < 64 << 20, "{} bytes", bomb.len());
    s.write_lenient(&frame(0xc2, &bomb));
    let (b0, payload) = read_frame(&mut s);
    assert_eq!((b0, close_code(&payload)), (0x88, 1009));
    server.shutdown();
}

#[test]
fn invalid_compressed_data_fails_with_1007() {
    let (server, addr) = echo_server(deflate_on());
    let (mut s, _) = raw_upgrade(addr, "Sec-WebSocket-Extensions: permessage-deflate\r\n");
    // Block type 3 is reserved in DEFLATE.
    s.write(&frame(0xc2, &[0xff, 0xff, 0xff]));
    let (b0, payload) = read_frame(&mut s);
    assert_eq!((b0, close_code(&payload)), (0x88, 1007));
    server.shutdown();
}

#[test]
fn client_refuses_an_extension_answer_it_did_not_ask_for() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 4096];
        let n = s.read(&mut buf).unwrap();
        let request = String::from_utf8_lossy(&buf[..n]).into_owned();
        let key = request
            .lines()
            .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
            .unwrap()
            .trim()
            .to_owned();
        let accept = stdws::http::accept_key(&key);
        let answer = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=16\r\n\r\n"
        );
        s.write_all(answer.as_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(200));
    });
    let err = client::connect_with(&format!("ws://{addr}/"), &deflate_client()).unwrap_err();
    assert!(
        matches!(err, Error::Connect(ConnectError::BadResponse(_))),
        "{err}"
    );
}

//! The device on the host, from byte arrays: what a client's bytes and the
//! clock's ticks make it send.

extern crate std;

use super::{Client, Status};
use alloc::vec::Vec;
use core::time::Duration;
use stdws::Instant;

const UPGRADE: &[u8] = b"GET /ws HTTP/1.1\r\nHost: device\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Version: 13\r\n\r\n";

fn t(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

/// A client frame: FIN, `opcode`, masked with a fixed key.
fn masked(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let key = [0x37, 0xfa, 0x21, 0x3d];
    assert!(payload.len() < 126);
    let mut f = alloc::vec![0x80 | opcode, 0x80 | payload.len() as u8];
    f.extend_from_slice(&key);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    f
}

/// A server frame as it must arrive: FIN, `opcode`, unmasked.
fn plain(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = alloc::vec![0x80 | opcode, payload.len() as u8];
    f.extend_from_slice(payload);
    f
}

/// A client past the 101 (checked), its output cleared.
fn open() -> Client {
    let mut c = Client::new(t(0));
    let mut out = Vec::new();
    // The head in two pieces, as a TCP stack may deliver it.
    assert_eq!(c.receive(&UPGRADE[..20], t(1), &mut out), Status::Open);
    assert!(out.is_empty(), "nothing before the head is complete");
    assert_eq!(c.receive(&UPGRADE[20..], t(2), &mut out), Status::Open);
    let text = std::str::from_utf8(&out).unwrap();
    assert!(
        text.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{text}"
    );
    // RFC 6455 section 1.3's sample key and answer.
    assert!(
        text.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
        "{text}"
    );
    c
}

#[test]
fn upgrades_and_echoes_text_and_binary() {
    let mut c = open();
    let mut out = Vec::new();
    let mut bytes = masked(0x1, b"{\"outputs\":[1,0,1,0,1,0,1,0]}");
    bytes.extend(masked(0x2, &[0, 1, 2, 255]));
    // Frames split anywhere: here, mid-mask.
    assert_eq!(c.receive(&bytes[..4], t(3), &mut out), Status::Open);
    assert_eq!(c.receive(&bytes[4..], t(4), &mut out), Status::Open);
    let mut want = plain(0x1, b"{\"outputs\":[1,0,1,0,1,0,1,0]}");
    want.extend(plain(0x2, &[0, 1, 2, 255]));
    assert_eq!(out, want);
}

#[test]
fn answers_a_ping_and_echoes_the_close_then_ends() {
    let mut c = open();
    let mut out = Vec::new();
    assert_eq!(c.receive(&masked(0x9, b"hb"), t(3), &mut out), Status::Open);
    assert_eq!(out, plain(0xa, b"hb"));
    out.clear();
    let close = masked(0x8, &[0x03, 0xe8, b'o', b'k']);
    assert_eq!(c.receive(&close, t(4), &mut out), Status::Close);
    assert_eq!(
        out,
        plain(0x8, &[0x03, 0xe8]),
        "the close echoed with its code"
    );
}

#[test]
fn an_unmasked_frame_fails_the_connection_with_1002() {
    let mut c = open();
    let mut out = Vec::new();
    assert_eq!(c.receive(&plain(0x1, b"hi"), t(3), &mut out), Status::Close);
    assert_eq!(
        &out[..4],
        &[0x88, out[1], 0x03, 0xea],
        "close 1002: {out:?}"
    );
}

#[test]
fn a_plain_get_gets_its_page_and_the_write_side_shut() {
    let mut c = Client::new(t(0));
    let mut out = Vec::new();
    let status = c.receive(b"GET / HTTP/1.1\r\nHost: device\r\n\r\n", t(1), &mut out);
    assert_eq!(status, Status::ShutdownWrite);
    let text = std::str::from_utf8(&out).unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.ends_with("\r\n\r\na no_std device\n"), "{text}");
    // The client's end after the response: done.
    assert!(
        c.next_deadline().is_some(),
        "lingers until the client ends or a deadline"
    );
}

#[test]
fn a_silent_client_gets_408_at_the_handshake_deadline() {
    let mut c = Client::new(t(0));
    let mut out = Vec::new();
    let deadline = c.next_deadline().expect("a handshake deadline");
    assert_eq!(deadline, t(0) + Duration::from_secs(10));
    assert_eq!(c.tick(t(9_999), &mut out), Status::Open);
    assert!(out.is_empty(), "nothing before the deadline");
    c.tick(deadline, &mut out);
    let text = std::str::from_utf8(&out).unwrap();
    assert!(text.starts_with("HTTP/1.1 408 "), "{text}");
}

#[test]
fn a_silent_peer_is_pinged_then_dropped_with_1001_on_the_device_clock() {
    let mut c = open();
    let mut out = Vec::new();
    let ping_at = c.next_deadline().expect("the keepalive");
    assert_eq!(
        ping_at,
        t(2) + Duration::from_secs(30),
        "30 s after the last bytes"
    );
    assert_eq!(c.tick(ping_at, &mut out), Status::Open);
    assert_eq!(out[0], 0x89, "a ping: {out:?}");
    out.clear();
    let give_up = c.next_deadline().expect("the pong deadline");
    assert_eq!(give_up, ping_at + Duration::from_secs(10));
    c.tick(give_up, &mut out);
    assert_eq!(
        &out[..4],
        &[0x88, out[1], 0x03, 0xe9],
        "close 1001: {out:?}"
    );
}

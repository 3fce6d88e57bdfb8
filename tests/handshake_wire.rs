//! The opening handshake on real loopback sockets: every status the server
//! answers with, byte for byte, and the connection's fate after it.

mod common;

use common::*;
use std::net::{Shutdown, SocketAddr};
use std::time::{Duration, Instant};

/// Sends `request` and returns the complete response; the server must close
/// the connection after it.
fn refused(addr: SocketAddr, request: &[u8]) -> HttpResponse {
    let mut client = RawClient::connect(addr);
    client.write_lenient(request);
    let resp = client.read_response();
    client.expect_tcp_closed();
    resp
}

/// Checks an error response: exact status line, a `Connection: close`,
/// no upgrade headers, and a body that names the status.
fn assert_refused_with(resp: &HttpResponse, status: u16, reason: &str, what: &str) {
    assert_eq!(
        resp.status_line,
        format!("HTTP/1.1 {status} {reason}"),
        "{what}:\n{}",
        resp.raw_head
    );
    assert!(
        resp.header_values("Sec-WebSocket-Accept").is_empty(),
        "{what}: an error response must not carry Sec-WebSocket-Accept"
    );
    assert!(
        resp.header_values("Upgrade").is_empty(),
        "{what}: an error response must not carry Upgrade"
    );
    assert_eq!(
        resp.header("Connection").to_ascii_lowercase(),
        "close",
        "{what}"
    );
    let body = String::from_utf8(resp.body.clone()).expect("body is UTF-8");
    assert!(
        body.contains(&format!("HTTP {status}")),
        "{what}: body {body:?} does not name the status"
    );
}

/// Checks a 101 response for the sample key, header by header.
fn assert_switching_protocols(resp: &HttpResponse) {
    assert_eq!(resp.status_line, "HTTP/1.1 101 Switching Protocols");
    assert_eq!(resp.header("Upgrade").to_ascii_lowercase(), "websocket");
    assert_eq!(resp.header("Connection").to_ascii_lowercase(), "upgrade");
    assert_eq!(resp.header("Sec-WebSocket-Accept"), SAMPLE_ACCEPT);
    // No body framing on a 101: the frame stream starts right after the head.
    assert!(resp.header_values("Content-Length").is_empty());
    assert!(resp.header_values("Transfer-Encoding").is_empty());
}

/// Does the handshake with `request` and checks the connection then echoes.
fn assert_upgrades(addr: SocketAddr, request: &str) {
    let mut client = RawClient::connect(addr);
    client.write(request.as_bytes());
    let resp = client.read_response_head();
    assert_eq!(
        resp.status, 101,
        "request:\n{request}\nresponse:\n{}",
        resp.raw_head
    );
    assert_switching_protocols(&resp);
    client.assert_echoes(b"after the upgrade");
}

#[test]
fn answers_the_rfc_sample_with_the_exact_101_and_accept_key() {
    let addr = start_server();
    let mut client = RawClient::connect(addr);
    client.write(sample_request().as_bytes());
    let resp = client.read_response_head();
    assert_switching_protocols(&resp);
    assert!(
        resp.raw_head
            .contains("\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
        "{}",
        resp.raw_head
    );
    // The server sends nothing after the head until a frame arrives.
    client
        .stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut byte = [0u8];
    let r = std::io::Read::read(&mut client.stream, &mut byte);
    assert!(
        matches!(&r, Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)),
        "unexpected bytes or close after the 101: {r:?}"
    );
    client.stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    client.assert_echoes(b"hello");
}

#[test]
fn accepts_header_names_and_tokens_in_any_case() {
    let addr = start_server();
    let request = "GET /chat HTTP/1.1\r\n\
                   hOsT: server.example.com\r\n\
                   UPGRADE: WebSocket\r\n\
                   connection: UPGRADE\r\n\
                   sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                   SEC-WEBSOCKET-VERSION: 13\r\n\
                   \r\n";
    assert_upgrades(addr, request);
}

#[test]
fn accepts_upgrade_among_several_connection_tokens() {
    let addr = start_server();
    for connection in [
        "keep-alive, Upgrade",
        "Upgrade, keep-alive",
        "keep-alive,upgrade",
    ] {
        let request =
            sample_request().replace("Connection: Upgrade", &format!("Connection: {connection}"));
        assert_upgrades(addr, &request);
    }
}

#[test]
fn refuses_version_other_than_13_with_426_naming_version_13() {
    let addr = start_server();
    for version in ["8", "12", "14", "0", "13, 8"] {
        let request = sample_request().replace(
            "Sec-WebSocket-Version: 13",
            &format!("Sec-WebSocket-Version: {version}"),
        );
        let resp = refused(addr, request.as_bytes());
        let what = format!("version {version}");
        assert_refused_with(&resp, 426, "Upgrade Required", &what);
        assert_eq!(resp.header("Sec-WebSocket-Version"), "13", "{what}");
    }
}

#[test]
fn refuses_each_bad_upgrade_with_400_and_closes() {
    let addr = start_server();
    let sample = sample_request();
    let key_line = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    let cases: Vec<(&str, String)> = vec![
        ("POST", sample.replace("GET /chat", "POST /chat")),
        ("HTTP/1.0", sample.replace("HTTP/1.1", "HTTP/1.0")),
        (
            "missing Host",
            sample.replace("Host: server.example.com\r\n", ""),
        ),
        (
            "missing Upgrade",
            sample.replace("Upgrade: websocket\r\n", ""),
        ),
        (
            "wrong Upgrade",
            sample.replace("Upgrade: websocket", "Upgrade: h2c"),
        ),
        (
            "Connection without upgrade",
            sample.replace("Connection: Upgrade", "Connection: keep-alive"),
        ),
        (
            "missing Connection",
            sample.replace("Connection: Upgrade\r\n", ""),
        ),
        (
            "missing version",
            sample.replace("Sec-WebSocket-Version: 13\r\n", ""),
        ),
        ("key of 5 bytes", sample.replace(SAMPLE_KEY, "c2hvcnQ=")),
        (
            "key of 17 bytes",
            sample.replace(SAMPLE_KEY, "AAAAAAAAAAAAAAAAAAAAAAA="),
        ),
        (
            "key not base64",
            sample.replace(SAMPLE_KEY, "not base64 at all!!!!!=="),
        ),
        ("missing key", sample.replace(key_line, "")),
        (
            "duplicated key",
            sample.replace(key_line, &format!("{key_line}{key_line}")),
        ),
        (
            "body by Content-Length",
            sample.replace("Origin:", "Content-Length: 5\r\nOrigin:"),
        ),
        (
            "body by Transfer-Encoding",
            sample.replace("Origin:", "Transfer-Encoding: chunked\r\nOrigin:"),
        ),
    ];
    for (what, request) in cases {
        assert_ne!(
            request, sample,
            "{what}: the case did not change the request"
        );
        let resp = refused(addr, request.as_bytes());
        assert_refused_with(&resp, 400, "Bad Request", what);
    }
}

#[test]
fn accepts_content_length_zero() {
    let addr = start_server();
    let request = sample_request().replace("Origin:", "Content-Length: 0\r\nOrigin:");
    assert_upgrades(addr, &request);
}

#[test]
fn refuses_malformed_request_heads_with_400() {
    let addr = start_server();
    for (what, request) in [
        ("no version", "GET /\r\nHost: a\r\n\r\n"),
        ("garbage line", "GARBAGE\r\n\r\n"),
        ("header without colon", "GET / HTTP/1.1\r\nHost a\r\n\r\n"),
        ("bare LF", "GET / HTTP/1.1\nHost: a\r\n\r\n"),
        (
            "control character in a value",
            "GET / HTTP/1.1\r\nHost: a\x01b\r\n\r\n",
        ),
    ] {
        let resp = refused(addr, request.as_bytes());
        assert_refused_with(&resp, 400, "Bad Request", what);
    }
}

/// A valid upgrade request padded with one `X-Pad` header to exactly `len` bytes.
fn request_of_len(len: usize) -> String {
    let base = sample_request();
    let overhead = base.len() + "X-Pad: \r\n".len();
    assert!(len > overhead);
    let pad = "a".repeat(len - overhead);
    let request = base.replace("Origin:", &format!("X-Pad: {pad}\r\nOrigin:"));
    assert_eq!(request.len(), len);
    request
}

#[test]
fn accepts_a_head_of_exactly_16_kib() {
    let addr = start_server();
    assert_upgrades(addr, &request_of_len(16 * 1024));
}

#[test]
fn refuses_a_head_over_16_kib_with_431() {
    let addr = start_server();
    for len in [16 * 1024 + 1, 20 * 1024, 64 * 1024] {
        let resp = refused(addr, request_of_len(len).as_bytes());
        assert_refused_with(
            &resp,
            431,
            "Request Header Fields Too Large",
            &format!("head of {len} bytes"),
        );
    }
}

#[test]
fn refuses_a_never_ending_head_with_431_once_it_passes_16_kib() {
    // No CRLF CRLF at all: the server must stop reading at the limit.
    let addr = start_server();
    let mut client = RawClient::connect(addr);
    let mut head = b"GET / HTTP/1.1\r\nX-Endless: ".to_vec();
    head.resize(17 * 1024, b'a');
    client.write_lenient(&head);
    let resp = client.read_response();
    assert_refused_with(
        &resp,
        431,
        "Request Header Fields Too Large",
        "endless head",
    );
    client.expect_tcp_closed();
}

/// A valid upgrade request with `total` header lines, 5 of them required ones.
fn request_with_headers(total: usize) -> String {
    let mut request = String::from(
        "GET /chat HTTP/1.1\r\n\
         Host: server.example.com\r\n\
         Upgrade: websocket\r\n\
         Connection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n",
    );
    for i in 5..total {
        request.push_str(&format!("X-Header-{i}: {i}\r\n"));
    }
    request.push_str("\r\n");
    assert_eq!(request.matches("\r\n").count(), total + 2);
    request
}

#[test]
fn accepts_exactly_64_header_lines() {
    let addr = start_server();
    assert_upgrades(addr, &request_with_headers(64));
}

#[test]
fn refuses_65_header_lines_with_431() {
    let addr = start_server();
    for total in [65, 200] {
        let resp = refused(addr, request_with_headers(total).as_bytes());
        assert_refused_with(
            &resp,
            431,
            "Request Header Fields Too Large",
            &format!("{total} headers"),
        );
    }
}

#[test]
fn header_count_limit_follows_limits_max_headers() {
    let addr = start_server_with_limits(stdws::Limits {
        max_headers: 6,
        ..stdws::Limits::default()
    });
    assert_upgrades(addr, &request_with_headers(6));
    let resp = refused(addr, request_with_headers(7).as_bytes());
    assert_refused_with(&resp, 431, "Request Header Fields Too Large", "7 of 6");
}

#[test]
fn head_size_limit_follows_limits_max_head_size() {
    let addr = start_server_with_limits(stdws::Limits {
        max_head_size: 1000,
        ..stdws::Limits::default()
    });
    assert_upgrades(addr, &request_of_len(1000));
    let resp = refused(addr, request_of_len(1001).as_bytes());
    assert_refused_with(
        &resp,
        431,
        "Request Header Fields Too Large",
        "1001 of 1000",
    );
}

/// Sends bytes that cannot start an HTTP request; the server must answer 400
/// without waiting for more (well within the 5 s read timeout) and close.
fn assert_rejected_at_once(addr: SocketAddr, bytes: &[u8], what: &str) {
    let started = Instant::now();
    let mut client = RawClient::connect(addr);
    client.write_lenient(bytes);
    let resp = client.read_response();
    assert_refused_with(&resp, 400, "Bad Request", what);
    client.expect_tcp_closed();
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(2), "{what}: took {elapsed:?}");
}

#[test]
fn refuses_a_tls_client_hello_with_400_at_once() {
    let addr = start_server();
    // The start of a TLS 1.2 ClientHello record: handshake, version 3.1, length, type 1.
    let mut hello = vec![
        0x16, 0x03, 0x01, 0x00, 0xc8, 0x01, 0x00, 0x00, 0xc4, 0x03, 0x03,
    ];
    hello.extend((0..32u8).map(|i| i.wrapping_mul(37)));
    assert_rejected_at_once(addr, &hello, "TLS ClientHello");
}

#[test]
fn refuses_binary_garbage_with_400_at_once() {
    let addr = start_server();
    assert_rejected_at_once(addr, &[0x00, 0xff, 0x13, 0x37], "binary garbage");
    assert_rejected_at_once(addr, b"\r\n\r\n", "empty line first");
    assert_rejected_at_once(addr, b"get / HTTP/1.1\r\n", "lower-case method");
    // The server is still serving.
    let mut client = RawClient::open(addr);
    client.assert_echoes(b"still here");
}

#[test]
fn a_client_vanishing_mid_handshake_does_not_hurt_the_server() {
    let addr = start_server();
    // Connect and leave without a byte.
    drop(RawClient::connect(addr));
    // Half a request head, then close.
    let mut client = RawClient::connect(addr);
    let request = sample_request();
    client.write(&request.as_bytes()[..request.len() / 2]);
    client.stream.shutdown(Shutdown::Both).unwrap();
    drop(client);
    // Half a head, then just stay silent while another client connects.
    let mut stalled = RawClient::connect(addr);
    stalled.write(&request.as_bytes()[..20]);
    // The whole head but the final CRLF, then close.
    let mut client = RawClient::connect(addr);
    client.write(&request.as_bytes()[..request.len() - 2]);
    drop(client);

    let mut client = RawClient::open(addr);
    client.assert_echoes(b"the server survived");
    drop(stalled);
}

#[test]
fn a_frame_in_the_same_write_as_the_head_is_not_lost() {
    let addr = start_server();
    let mut client = RawClient::connect(addr);
    let mut bytes = sample_request().into_bytes();
    bytes.extend(frame(FIN | OP_TEXT, b"Hello"));
    client.write(&bytes);
    let resp = client.read_response_head();
    assert_switching_protocols(&resp);
    let f = client.read_server_frame();
    assert_eq!(f.header, [0x81, 0x05]);
    assert_eq!(f.payload, b"Hello");
}

#[test]
fn several_frames_in_the_same_write_as_the_head_all_echo_in_order() {
    let addr = start_server();
    let mut client = RawClient::connect(addr);
    let mut bytes = sample_request().into_bytes();
    let payloads: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i; usize::from(i) * 13]).collect();
    for p in &payloads {
        bytes.extend(frame(FIN | OP_BINARY, p));
    }
    bytes.extend(frame(FIN | OP_PING, b"ping in the head write"));
    client.write(&bytes);
    assert_switching_protocols(&client.read_response_head());
    for p in &payloads {
        client.expect_echo(OP_BINARY, p);
    }
    let pong = client.read_server_frame();
    assert_eq!(pong.opcode, OP_PONG);
    assert_eq!(pong.payload, b"ping in the head write");
}

#[test]
fn a_large_frame_in_the_same_write_as_a_large_head_is_not_lost() {
    // A head of ~9 KiB makes the server read past it in one large read, so
    // more than one read buffer (4 KiB by default) of frame bytes arrives
    // together with the head. None of them may be dropped.
    let addr = start_server();
    let mut client = RawClient::connect(addr);
    let mut bytes = request_of_len(9000).into_bytes();
    let payload: Vec<u8> = (0..7000u32).map(|i| (i % 251) as u8).collect();
    bytes.extend(frame(FIN | OP_BINARY, &payload));
    client.write(&bytes);
    assert_switching_protocols(&client.read_response_head());
    client.expect_echo(OP_BINARY, &payload);
}

#[test]
fn many_small_frames_in_the_same_write_as_a_large_head_are_not_lost() {
    let addr = start_server();
    let mut client = RawClient::connect(addr);
    let mut bytes = request_of_len(9000).into_bytes();
    let payloads: Vec<Vec<u8>> = (0..60u32).map(|i| vec![i as u8; 100]).collect();
    for p in &payloads {
        bytes.extend(frame(FIN | OP_BINARY, p));
    }
    assert!(bytes.len() < 16 * 1024);
    client.write(&bytes);
    assert_switching_protocols(&client.read_response_head());
    for p in &payloads {
        client.expect_echo(OP_BINARY, p);
    }
}

#[test]
fn a_request_head_written_one_byte_at_a_time_upgrades() {
    let addr = start_server();
    let mut client = RawClient::connect(addr);
    client.write_bytewise(sample_request().as_bytes());
    assert_switching_protocols(&client.read_response_head());
    client.assert_echoes(b"dribbled");
}

//! `handshake`: arbitrary bytes as an HTTP upgrade request, through
//! `HeadScanner` (fed in pieces), `Request::parse` and `check_upgrade`, as
//! `stdws` runs them on a new connection.
//!
//! A server sees these bytes before it knows anything about the peer, so the
//! handshake must end in exactly one of: a `101` with the right accept key, or
//! an error whose status is 400, 426 or 431; never a panic, and never a head
//! longer than the limit.
//!
//! Input: a config byte (bits 0-2: head size limit, bits 3-5: header count
//! limit, from the tables below; 0 is the default limits), a chunk list, then
//! the request bytes.
//!
//! Checked:
//! * the scanner fed in pieces gives exactly what a one-line oracle says for
//!   the whole input: 400 if the first byte cannot start a method, else the
//!   end of the first `\r\n\r\n` if it ends within the limit, else 431 once
//!   the limit is reached, else "need more"; so a head over the limit is never
//!   accepted and the splits never matter;
//! * `Request::parse` gives 400 or 431 (431 only for too many headers), or a
//!   request whose parts are well formed and which prints back to a head that
//!   parses to the same request;
//! * `check_upgrade` gives 400 or 426 (426 only for a version other than 13),
//!   or the accept key of the request's one `Sec-WebSocket-Key`, for a request
//!   that really is a GET upgrade; the 101 and the error responses are
//!   well-formed HTTP; a key is accepted exactly when it is 16 bytes in
//!   canonical base64, as a bit-by-bit reference decodes and re-encodes it;
//! * the same head read as a response (`ResponseHead::parse`, what a client
//!   does with the server's answer) gives a three-digit status and at most
//!   `max_headers` headers, or an error with status 400 or 431.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stdws::http::{
    accept_key, check_upgrade, response_101, HandshakeError, HeadScanner, Request, ResponseHead,
};
use stdws::Status;
use stdws_fuzz::{chunk_list, Cursor};

const HEAD_LIMITS: [usize; 8] = [16 * 1024, 1, 4, 16, 64, 128, 256, 1024];
const HEADER_LIMITS: [usize; 8] = [64, 0, 1, 2, 4, 8, 16, 100];

/// What scanning the whole input must give, from the definition.
fn scan_oracle(data: &[u8], limit: usize) -> Result<Status<usize>, u16> {
    if data.first().is_some_and(|b| !b.is_ascii_uppercase()) {
        return Err(400);
    }
    match data.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) if i + 4 <= limit => Ok(Status::Complete(i + 4)),
        _ if data.len() >= limit => Err(431),
        _ => Ok(Status::Partial),
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// The request printed back as a head.
fn print(req: &Request) -> Vec<u8> {
    let (major, minor) = req.version();
    let mut out = format!("{} {} HTTP/{major}.{minor}\r\n", req.method(), req.target());
    for (name, value) in req.headers().iter() {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    out.into_bytes()
}

fn check_response(bytes: &[u8], status: u16) {
    let text = String::from_utf8(bytes.to_vec()).expect("responses are UTF-8");
    assert!(text.starts_with(&format!("HTTP/1.1 {status} ")), "{text:?}");
    let (head, body) = text.split_once("\r\n\r\n").expect("head ends");
    assert!(head.contains(&format!("\r\nContent-Length: {}", body.len())));
}

fn check_request(req: &Request, max_headers: usize) {
    assert!(is_token(req.method()));
    assert!(!req.target().is_empty());
    assert!(req.target().bytes().all(|b| (0x21..0x7f).contains(&b)));
    assert!(req.version().0 <= 9 && req.version().1 <= 9);
    assert!(req.headers().iter().count() <= max_headers);
    for (name, value) in req.headers().iter() {
        assert!(is_token(name), "{name:?}");
        assert_eq!(value, value.trim_ascii(), "untrimmed value");
        assert!(!value.bytes().any(|b| b != b'\t' && (b < 0x20 || b == 0x7f)));
    }
    let printed = print(req);
    assert_eq!(Request::parse(&printed, max_headers).as_ref(), Ok(req));
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Reference: `key` decodes to 16 bytes (its 128 bits, the 22nd digit's
/// last 4 bits dropped) whose base64, bit by bit, is `key` again.
fn canonical_16(key: &str) -> bool {
    let digits: Option<Vec<u8>> = key
        .bytes()
        .take(22)
        .map(|c| ALPHABET.iter().position(|&a| a == c).map(|i| i as u8))
        .collect();
    let Some(digits) = digits else { return false };
    if digits.len() < 22 {
        return false;
    }
    let bits: Vec<bool> = digits
        .iter()
        .flat_map(|&d| (0..6).rev().map(move |i| d >> i & 1 == 1))
        .collect();
    let bytes: Vec<u8> = bits[..128]
        .chunks(8)
        .map(|b| b.iter().fold(0, |acc, &bit| acc << 1 | u8::from(bit)))
        .collect();
    let mut bits: Vec<bool> = bytes
        .iter()
        .flat_map(|&b| (0..8).rev().map(move |i| b >> i & 1 == 1))
        .collect();
    bits.resize(132, false);
    let mut encoded: String = bits
        .chunks(6)
        .map(|d| {
            char::from(
                ALPHABET[usize::from(d.iter().fold(0u8, |acc, &bit| acc << 1 | u8::from(bit)))],
            )
        })
        .collect();
    encoded.push_str("==");
    encoded == key
}

fn check_upgrade_result(req: &Request) {
    match check_upgrade(req) {
        Ok(accept) => {
            // Only a real upgrade gets here.
            assert_eq!(req.method(), "GET");
            assert!(req.version() >= (1, 1));
            assert!(req.header("Host").is_some());
            assert!(req.is_websocket_upgrade());
            assert!(req.headers().has_token("Connection", "upgrade"));
            assert_eq!(req.header("Sec-WebSocket-Version"), Some("13"));
            let mut keys = req.headers().get_all("Sec-WebSocket-Key");
            let key = keys.next().expect("a key");
            assert!(keys.next().is_none(), "two keys accepted");
            assert_eq!(key.len(), 24, "a 16-byte key is 24 base64 characters");
            assert!(
                canonical_16(key),
                "a key that is not 16 canonical bytes: {key:?}"
            );
            assert_eq!(accept, accept_key(key));
            assert_eq!(accept.len(), 28);
            let response = String::from_utf8(response_101(&accept, None, None)).unwrap();
            assert!(response.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
            assert!(response.contains(&format!("\r\nSec-WebSocket-Accept: {accept}\r\n")));
            assert!(response.ends_with("\r\n\r\n"));
        }
        Err(e) => {
            let status = e.status();
            assert_eq!(
                status == 426,
                matches!(e, HandshakeError::UnsupportedVersion(_)),
                "{e:?}"
            );
            assert!(matches!(status, 400 | 426), "{e:?} gives {status}");
            if matches!(e, HandshakeError::BadKey) {
                let keys: Vec<&str> = req.headers().get_all("Sec-WebSocket-Key").collect();
                if let [key] = keys[..] {
                    assert!(!canonical_16(key), "a canonical key refused: {key:?}");
                }
            }
            check_response(&e.response().to_bytes(), status);
        }
    }
}

fuzz_target!(|input: &[u8]| {
    let mut c = Cursor::new(input);
    let cfg = c.u8();
    let limit = HEAD_LIMITS[usize::from(cfg & 7)];
    let max_headers = HEADER_LIMITS[usize::from((cfg >> 3) & 7)];
    let chunks = chunk_list(&mut c);
    let data = c.rest();

    // The head arrives in pieces; the scanner sees everything so far each time.
    let mut scanner = HeadScanner::new(limit);
    let mut sizes = chunks.iter().copied().cycle();
    let mut got = 0;
    let scanned = loop {
        got += sizes.next().unwrap_or(usize::MAX).min(data.len() - got);
        match scanner.scan(&data[..got]) {
            Ok(Status::Partial) if got < data.len() => continue,
            other => break other,
        }
    };
    let expected = scan_oracle(data, limit);
    match (&scanned, expected) {
        (Ok(s), Ok(e)) => assert_eq!(*s, e),
        (Err(err), Err(status)) => {
            assert_eq!(err.status(), status, "{err:?}");
            check_response(&err.response().to_bytes(), status);
        }
        _ => panic!("scanner gave {scanned:?}, oracle {expected:?}"),
    }
    let Ok(Status::Complete(len)) = scanned else {
        return;
    };
    assert!(len <= limit, "a head longer than the limit was accepted");

    match ResponseHead::parse(&data[..len], max_headers) {
        Ok(response) => {
            assert!(response.status <= 999);
            assert!(response.headers.iter().count() <= max_headers);
        }
        Err(e) => assert!(matches!(e.status(), 400 | 431), "{e:?}"),
    }

    match Request::parse(&data[..len], max_headers) {
        Ok(req) => {
            check_request(&req, max_headers);
            check_upgrade_result(&req);
        }
        Err(e) => {
            let status = e.status();
            assert_eq!(
                status == 431,
                matches!(e, HandshakeError::TooManyHeaders { .. }),
                "{e:?}"
            );
            assert!(matches!(status, 400 | 431), "{e:?} gives {status}");
            check_response(&e.response().to_bytes(), status);
        }
    }
});

//! `received`: frames that arrive with the opening handshake. A peer may
//! send its first frames in the same packet as its upgrade request (or a
//! server right behind its 101), so the read that completes the HTTP head
//! can carry any part of the frame stream; a driver hands those bytes to its
//! `Connection` in place (`Connection::input`), and `WebSocket::from_raw`
//! starts from them. However the stream is split between that read and the
//! later ones, nothing may change.
//!
//! Input: a `u16` LE split, then the `protocol` target's input (role, small
//! limits, read sizes, raw or structured stream: `stdws_fuzz::protocol_input`).
//!
//! Checked, each against the naive reference decoder reading the whole
//! stream at once (`stdws_fuzz::harness::reference_decode`):
//! * a `Connection` handed the first `split % (len + 1)` bytes in place,
//!   then read the rest in the fuzzed read sizes: exactly the reference's
//!   events and error, with every `protocol` invariant (memory within the
//!   bound: only a frame's tail is kept from the bytes handed over);
//! * `WebSocket` over an in-memory stream, as a server through
//!   `accept_with_limits` (the request head and the frames in one stream; the
//!   read that completes the head brings `split` bytes of frames along, later
//!   reads the fuzzed sizes) and as a client through `from_raw` with the same
//!   split as above: `recv` gives the reference's messages, in order, then
//!   `Ok(None)` after a close, `Error::Protocol` with the reference's error,
//!   or `UnexpectedEof`; and what it wrote after the 101 is, frame for frame,
//!   a pong for every ping (same payload, same order) and then the close
//!   reply: the peer's code echoed, or the error's close frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::io::{self, Read, Write};
use stdws::proto::{Event, Role};
use stdws::{CloseFrame, Error, Limits, Message, WebSocket};
use stdws_fuzz::harness::{drive_with, receiver, reference_decode, Feed, Outcome};
use stdws_fuzz::{protocol_input, Cursor};

/// A client's upgrade request (RFC 6455 section 1.3, trimmed to what a
/// server requires).
const REQUEST: &[u8] = b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\n\
Upgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

/// One end of a connection in memory: reads give `input` in the planned
/// sizes (the first read its own size, if any), writes are kept.
struct Wire<'a> {
    input: &'a [u8],
    first: Option<usize>,
    chunks: &'a [usize],
    next: usize,
    written: Vec<u8>,
}

impl Read for Wire<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let size = self.first.take().unwrap_or_else(|| {
            let size = self.chunks.get(self.next).copied().unwrap_or(usize::MAX);
            self.next = (self.next + 1) % self.chunks.len().max(1);
            size
        });
        let n = size.max(1).min(buf.len()).min(self.input.len());
        buf[..n].copy_from_slice(&self.input[..n]);
        self.input = &self.input[n..];
        Ok(n)
    }
}

impl Write for Wire<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.written.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// How a `WebSocket`'s `recv` loop ended.
#[derive(Debug, PartialEq)]
enum End {
    /// `Ok(None)`: the peer's close frame, answered.
    Closed,
    /// The stream failed the connection.
    Failed(stdws::proto::ProtocolError),
    /// The input ran out without a close frame.
    Eof,
}

/// Receives until the end; the messages and how it ended.
fn recv_all<S: Read + Write>(ws: &mut WebSocket<S>) -> (Vec<Message>, End) {
    let mut messages = Vec::new();
    loop {
        match ws.recv() {
            Ok(Some(m)) => messages.push(m),
            Ok(None) => return (messages, End::Closed),
            Err(Error::Protocol(e)) => return (messages, End::Failed(e)),
            Err(Error::UnexpectedEof) => return (messages, End::Eof),
            Err(e) => panic!("recv failed with {e:?}"),
        }
    }
}

/// Checks one `WebSocket`'s run against the reference: messages, end, and
/// the frames it wrote (`written` starts after any 101).
fn check_websocket(
    role: Role,
    expected: &Outcome,
    messages: &[Message],
    end: &End,
    written: &[u8],
) {
    let want_messages: Vec<&Message> = expected
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) => Some(m),
            _ => None,
        })
        .collect();
    let got_messages: Vec<&Message> = messages.iter().collect();
    assert_eq!(got_messages, want_messages, "{role:?}: messages differ");

    let mut want_frames: Vec<Event> = expected
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Ping(p) => Some(Event::Pong(*p)),
            _ => None,
        })
        .collect();
    let want_end = match (&expected.error, expected.events.last()) {
        (Some(e), _) => {
            want_frames.push(Event::Close(Some(e.close_frame())));
            End::Failed(e.clone())
        }
        (None, Some(Event::Close(frame))) => {
            let echo = frame.as_ref().map(|f| CloseFrame {
                code: f.code,
                reason: String::new(),
            });
            want_frames.push(Event::Close(echo));
            End::Closed
        }
        (None, _) => End::Eof,
    };
    assert_eq!(*end, want_end, "{role:?}: the connection ended differently");

    // Read what it sent as its peer would.
    let peer = match role {
        Role::Server => Role::Client,
        Role::Client => Role::Server,
    };
    let sent = reference_decode(peer, &Limits::default(), written);
    assert_eq!(sent.error, None, "{role:?}: sent an invalid frame stream");
    assert_eq!(sent.events, want_frames, "{role:?}: sent the wrong frames");
}

fuzz_target!(|data: &[u8]| {
    let mut c = Cursor::new(data);
    let split = usize::from(c.u16());
    let input = protocol_input(c.rest());
    let (role, limits, stream, chunks) = (input.role, input.limits, &input.stream, &input.chunks);
    let expected = reference_decode(role, &limits, stream);

    // The sans-IO receiver, handed the first `early` bytes in place.
    let early = split % (stream.len() + 1);
    let (received, rest) = stream.split_at(early);
    let conn = receiver(role, limits);
    let got = drive_with(conn, limits, 0, received, rest, chunks, Feed::ReadBuf);
    assert_eq!(
        got.outcome, expected,
        "with {early} bytes received with the handshake"
    );

    match role {
        Role::Server => {
            // The request head and the frames arrive as one byte stream; the
            // read that completes the head brings `split` bytes past it.
            let mut bytes = REQUEST.to_vec();
            bytes.extend_from_slice(stream);
            let wire = Wire {
                input: &bytes,
                first: Some(REQUEST.len() + split),
                chunks,
                next: 0,
                written: Vec::new(),
            };
            let mut ws = WebSocket::accept_with_limits(wire, limits).expect("a valid upgrade");
            let (messages, end) = recv_all(&mut ws);
            let written = &ws.get_ref().written;
            let head = written
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .expect("a 101 head")
                + 4;
            assert!(written.starts_with(b"HTTP/1.1 101 "), "no 101");
            check_websocket(role, &expected, &messages, &end, &written[head..]);
        }
        Role::Client => {
            let wire = Wire {
                input: &stream[early..],
                first: None,
                chunks,
                next: 0,
                written: Vec::new(),
            };
            let mut ws = WebSocket::from_raw(wire, role, limits, &stream[..early]);
            let (messages, end) = recv_all(&mut ws);
            check_websocket(role, &expected, &messages, &end, &ws.get_ref().written);
        }
    }
});

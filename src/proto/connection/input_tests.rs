//! Bytes in from the caller's buffer ([`Connection::input`]), parsed in
//! place: the same events and replies as `read_buf`/`commit`, however the
//! bytes are split, with only a frame's unparsed tail kept.

use super::*;
use crate::message::MessageRef;

/// Keys that count up: deterministic frames.
struct CountingKeys(u32);
impl MaskKeys for CountingKeys {
    fn mask_key(&mut self) -> [u8; 4] {
        self.0 = self.0.wrapping_add(0x0101_0101);
        self.0.to_be_bytes()
    }
}

fn client() -> Connection {
    Connection::client(Limits::default(), Box::new(CountingKeys(7)))
}

/// Everything `conn` has queued, taken out.
fn drain_output(conn: &mut Connection) -> Vec<u8> {
    let mut bytes = Vec::new();
    while conn.pending_output() > 0 {
        let mut slices = [&[][..]; 8];
        let n = conn.output(&mut slices);
        let chunk = slices[..n].concat();
        conn.advance_output(chunk.len());
        bytes.extend(chunk);
    }
    bytes
}

/// What a server made of a stream: its events, its error, what it queued.
#[derive(Debug, Default, PartialEq)]
struct Outcome {
    events: Vec<Event>,
    error: Option<ProtocolError>,
    replies: Vec<u8>,
}

/// Takes events from `next` until it has no more; false on an error.
fn drain(
    out: &mut Outcome,
    mut next: impl FnMut() -> Result<Option<Event>, ProtocolError>,
) -> bool {
    loop {
        match next() {
            Ok(Some(event)) => out.events.push(event),
            Ok(None) => return true,
            Err(e) => {
                out.error = Some(e);
                return false;
            }
        }
    }
}

/// The stream fed to a fresh server through `read_buf`/`commit`.
fn through_read_buf(limits: Limits, stream: &[u8]) -> Outcome {
    let mut server = Connection::server(limits);
    let mut out = Outcome::default();
    let mut rest = stream;
    while drain(&mut out, || server.next_event()) && !rest.is_empty() && server.wants_read() {
        let buf = server.read_buf();
        let n = buf.len().min(rest.len());
        buf[..n].copy_from_slice(&rest[..n]);
        server.commit(n);
        rest = &rest[n..];
    }
    out.replies = drain_output(&mut server);
    out
}

/// The stream handed to a fresh server in place, in the pieces `cuts` makes
/// (each piece in a buffer of its own, as a loop-wide buffer reused would be).
fn through_input(limits: Limits, stream: &[u8], cuts: &[usize]) -> (Outcome, Connection) {
    let mut server = Connection::server(limits);
    let mut out = Outcome::default();
    let mut from = 0;
    for &to in cuts.iter().chain([&stream.len()]) {
        let mut piece = stream[from..to.max(from)].to_vec();
        from = to.max(from);
        let mut input = server.input(&mut piece);
        if !drain(&mut out, || input.next_event()) {
            break;
        }
    }
    out.replies = drain_output(&mut server);
    (out, server)
}

/// Text, binary, a fragmented message with a ping between its fragments, a
/// frame larger than an idle read buffer (delivered in place), one larger
/// than the configured read buffer, a pong and a close, as a client sends them.
fn mixed_stream() -> Vec<u8> {
    let mut c = client();
    c.send_text("hello €").unwrap();
    c.send_binary(&[1, 2, 3]).unwrap();
    c.send_fragment(OpCode::Text, "frag".as_bytes(), false)
        .unwrap();
    c.ping(b"between").unwrap();
    c.send_fragment(OpCode::Continuation, "ment ✓".as_bytes(), true)
        .unwrap();
    let large: Vec<u8> = (0..4500u32).map(|i| (i % 251) as u8).collect();
    c.send_binary(&large[..2000]).unwrap();
    c.send_binary(&large).unwrap();
    c.send_text("").unwrap();
    c.pong(b"late").unwrap();
    c.close(CloseCode::NORMAL, "bye").unwrap();
    drain_output(&mut c)
}

#[test]
fn a_small_message_is_lent_from_the_callers_buffer_unmasked_there() {
    let mut c = client();
    c.send_text("in place").unwrap();
    let mut buf = drain_output(&mut c);
    let range = buf.as_ptr_range();
    let mut server = Connection::server(Limits::default());
    let mut input = server.input(&mut buf);
    assert_eq!(input.poll(), Ok(Some(Event::Message(()))));
    let Some(MessageRef::Text(text)) = input.message_ref() else {
        panic!("no text message");
    };
    assert_eq!(text, "in place");
    assert!(range.contains(&text.as_ptr()), "not lent from the buffer");
    assert_eq!(input.poll(), Ok(None));
    drop(input);
    assert_eq!(&buf[buf.len() - 8..], b"in place", "unmasked in place");
}

#[test]
fn events_and_replies_are_the_same_for_every_split_as_through_read_buf() {
    let stream = mixed_stream();
    let limits = Limits::default();
    let expected = through_read_buf(limits, &stream);
    assert_eq!(expected.events.len(), 9, "{:?}", expected.events);
    assert!(matches!(
        expected.events.last(),
        Some(Event::Close(Some(_)))
    ));
    assert!(!expected.replies.is_empty(), "a pong and the close echo");
    for cut in 0..=stream.len() {
        let (got, _) = through_input(limits, &stream, &[cut]);
        assert_eq!(got, expected, "split at {cut}");
    }
    for piece in [1, 2, 3, 5, 7, 13, 64, 1000, 4096] {
        let cuts: Vec<usize> = (piece..stream.len()).step_by(piece).collect();
        let (got, _) = through_input(limits, &stream, &cuts);
        assert_eq!(got, expected, "pieces of {piece}");
    }
}

#[test]
fn an_error_arriving_in_place_is_the_same_for_every_split() {
    let mut c = client();
    c.send_text("fine").unwrap();
    c.send_binary(&[9; 300]).unwrap();
    let mut stream = drain_output(&mut c);
    // A text frame with invalid UTF-8 in its middle, then more.
    c.send_binary(b"ok \xff and more").unwrap();
    let mut bad = drain_output(&mut c);
    bad[0] = 0x81;
    stream.extend(bad);
    c.send_text("never seen").unwrap();
    stream.extend(drain_output(&mut c));
    let limits = Limits::default();
    let expected = through_read_buf(limits, &stream);
    assert_eq!(expected.error, Some(ProtocolError::InvalidUtf8));
    for cut in 0..=stream.len() {
        for second in [cut, cut + 1, cut + 5] {
            let (got, _) = through_input(limits, &stream, &[cut, second.min(stream.len())]);
            assert_eq!(got, expected, "split at {cut} and {second}");
        }
    }
}

#[test]
fn a_partial_frame_left_at_the_end_is_kept_and_completed_by_the_next_input() {
    let mut c = client();
    c.send_text("first").unwrap();
    c.send_text("second, cut in two").unwrap();
    let stream = drain_output(&mut c);
    let first = 2 + 4 + 5;
    // A read that ends 3 bytes into the second frame's header, then one
    // that ends inside its payload, then the rest.
    let cuts = [first + 3, first + 6 + 4, stream.len()];
    let mut server = Connection::server(Limits::default());
    let mut seen = Vec::new();
    let mut from = 0;
    for to in cuts {
        let mut piece = stream[from..to].to_vec();
        from = to;
        let mut input = server.input(&mut piece);
        while let Some(event) = input.next_event().unwrap() {
            seen.push(event);
        }
        drop(input);
        // Only the frame's tail is kept: its header, then what of it arrived.
        let held = server.inbound.memory_held();
        assert!(held <= 6 + 18, "{held} bytes held after {to}");
    }
    assert_eq!(
        seen,
        [
            Event::Message(Message::from("first")),
            Event::Message(Message::from("second, cut in two"))
        ]
    );
    assert_eq!(
        server.inbound.memory_held(),
        0,
        "nothing held between frames"
    );
}

#[test]
fn dropping_the_input_before_its_events_are_taken_keeps_every_byte() {
    let stream = mixed_stream();
    let expected = through_read_buf(Limits::default(), &stream);
    let mut server = Connection::server(Limits::default());
    let mut copy = stream.clone();
    let mut input = server.input(&mut copy);
    let mut out = Outcome::default();
    out.events.push(input.next_event().unwrap().unwrap());
    drop(input); // the rest is copied into the connection
    drain(&mut out, || server.next_event());
    out.replies = drain_output(&mut server);
    assert_eq!(out, expected);
}

#[test]
fn an_idle_connection_fed_in_place_holds_no_read_buffer() {
    let mut c = client();
    let mut server = Connection::server(Limits::default());
    let mut buf = vec![0u8; 64 << 10]; // the loop-wide buffer
    for i in 0..100 {
        c.send_text(&format!("echo {i}")).unwrap();
        let bytes = drain_output(&mut c);
        buf[..bytes.len()].copy_from_slice(&bytes);
        let mut input = server.input(&mut buf[..bytes.len()]);
        while let Some(event) = input.poll().unwrap() {
            if let Event::Message(()) = event {
                let msg = input.take_message().unwrap();
                input.connection().send(msg).unwrap();
            }
        }
        drop(input);
        let echoed = drain_output(&mut server);
        c.receive(&echoed);
        assert_eq!(c.next_event(), Ok(Some(text(&format!("echo {i}")))));
    }
    assert_eq!(server.inbound.memory_held(), 0, "a read buffer is held");
    let held = server.memory_held();
    assert!(held <= 64, "an idle connection holds {held} bytes"); // 16: the send queue
}

#[test]
fn an_oversize_header_arriving_in_place_fails_with_1009_before_memory_is_spent() {
    let limits = Limits {
        max_frame_size: 1000,
        ..Limits::default()
    };
    // A header announcing 2^62 bytes, split inside itself.
    let header = [0x82, 0xff, 0x40, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4];
    let mut server = Connection::server(limits);
    let mut start = header[..5].to_vec();
    assert_eq!(server.input(&mut start).poll(), Ok(None));
    let mut rest = header[5..].to_vec();
    let err = server.input(&mut rest).poll().unwrap_err();
    assert_eq!(err.close_code(), CloseCode::TOO_BIG);
    assert_eq!(server.inbound.memory_held(), 0);
    assert_eq!(server.failure(), Some(CloseCode::TOO_BIG));
    assert!(!server.wants_read());
}

fn text(s: &str) -> Event {
    Event::Message(Message::from(s))
}

#[test]
fn a_large_frame_begun_in_place_is_read_straight_into_its_message() {
    // The event loop's way: a loop-wide buffer for `input`, but `read_buf`
    // whenever it offers room in the message, which allocates no read buffer.
    let mut c = client();
    let large: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    c.send_binary(&large).unwrap();
    c.send_text("after").unwrap();
    let stream = drain_output(&mut c);
    let expected = through_read_buf(Limits::default(), &stream);
    let mut server = Connection::server(Limits::default());
    let mut out = Outcome::default();
    let mut buf = vec![0u8; 64 << 10];
    let (mut rest, mut direct) = (&stream[..], 0);
    while !rest.is_empty() {
        if server.reads_into_message() {
            let room = server.read_buf();
            let n = room.len().min(rest.len());
            room[..n].copy_from_slice(&rest[..n]);
            server.commit(n);
            direct += n;
            assert_eq!(
                server.inbound.memory_held() - server.inbound.message_memory(),
                0
            );
            let mut input = server.input(&mut []); // the events of what it holds
            drain(&mut out, || input.next_event());
            rest = &rest[n..];
        } else {
            let n = buf.len().min(rest.len());
            buf[..n].copy_from_slice(&rest[..n]);
            let mut input = server.input(&mut buf[..n]);
            drain(&mut out, || input.next_event());
            rest = &rest[n..];
        }
    }
    out.replies = drain_output(&mut server);
    assert_eq!(out, expected);
    assert!(direct > 200_000, "only {direct} bytes read straight in");
    assert!(!server.reads_into_message(), "between frames");
}

#[test]
fn a_tail_kept_from_a_callers_buffer_leaves_room_to_read_the_rest() {
    // A frame larger than an idle read buffer, begun in a caller's buffer
    // and finished through read_buf/commit (a driver may do both).
    let mut c = client();
    c.send_binary(&[5; 2000]).unwrap();
    let stream = drain_output(&mut c);
    for cut in [100, 511, 513, 700, 1500] {
        let mut server = Connection::server(Limits::default());
        let mut piece = stream[..cut].to_vec();
        assert_eq!(server.input(&mut piece).next_event(), Ok(None), "cut {cut}");
        let mut rest = &stream[cut..];
        while !rest.is_empty() {
            let buf = server.read_buf();
            assert!(!buf.is_empty(), "cut {cut}: no room to read the rest");
            let n = buf.len().min(rest.len());
            buf[..n].copy_from_slice(&rest[..n]);
            server.commit(n);
            rest = &rest[n..];
        }
        assert_eq!(
            server.next_event(),
            Ok(Some(Event::Message(Message::Binary(vec![5; 2000])))),
            "cut {cut}"
        );
    }
}

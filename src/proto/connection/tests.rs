//! A client and a server connection wired together in memory, in virtual
//! time: no sockets, no sleeps (quinn-proto's `Pair` is the model).

use super::*;
#[cfg(feature = "deflate")]
use crate::proto::extensions::permessage_deflate::{negotiate, offer, DeflateConfig};
use crate::proto::timers::Keepalive;

/// Keys that count up: deterministic frames.
struct CountingKeys(u32);
impl MaskKeys for CountingKeys {
    fn mask_key(&mut self) -> [u8; 4] {
        self.0 = self.0.wrapping_add(0x0101_0101);
        self.0.to_be_bytes()
    }
}

const S: Duration = Duration::from_secs(1);

struct Pair {
    client: Connection,
    server: Connection,
    now: Instant,
    /// Bytes each side writes per step; `usize::MAX`: all at once.
    step: usize,
    /// Whether bytes flow to each side (a cut cable when false).
    to_server: bool,
    to_client: bool,
}

/// What one side saw: events, and the error it failed with.
#[derive(Debug, Default, PartialEq)]
struct Seen {
    events: Vec<Event>,
    error: Option<ProtocolError>,
}

impl Pair {
    fn new() -> Pair {
        Pair {
            client: Connection::client(Limits::default(), Box::new(CountingKeys(7))),
            server: Connection::server(Limits::default()),
            now: crate::test_origin(),
            step: usize::MAX,
            to_server: true,
            to_client: true,
        }
    }

    fn with_timeouts(server: Timeouts, client: Timeouts) -> Pair {
        let mut pair = Pair::new();
        pair.server.set_timeouts(server, pair.now);
        pair.client.set_timeouts(client, pair.now);
        pair
    }

    /// A server with a write timeout of `write`, the client with none.
    fn with_write_timeout(write: Duration) -> Pair {
        let server = Timeouts {
            write: Some(write),
            ..Timeouts::default()
        };
        Pair::with_timeouts(server, Timeouts::default())
    }

    /// Moves bytes both ways until neither side has anything to write;
    /// returns what each side saw (client, server).
    fn run(&mut self) -> (Seen, Seen) {
        let (mut client_seen, mut server_seen) = (Seen::default(), Seen::default());
        for _ in 0..1_000_000 {
            drain_events(&mut self.client, &mut client_seen);
            drain_events(&mut self.server, &mut server_seen);
            let (now, step) = (self.now, self.step);
            let a = transfer(
                &mut self.client,
                &mut self.server,
                step,
                self.to_server,
                now,
            );
            let b = transfer(
                &mut self.server,
                &mut self.client,
                step,
                self.to_client,
                now,
            );
            if !a && !b {
                drain_events(&mut self.client, &mut client_seen);
                drain_events(&mut self.server, &mut server_seen);
                return (client_seen, server_seen);
            }
        }
        panic!("the pair never settled");
    }

    /// Time passes for both sides.
    fn advance(&mut self, by: Duration) -> (Option<Expired>, Option<Expired>) {
        self.now += by;
        (
            self.client.handle_timeout(self.now),
            self.server.handle_timeout(self.now),
        )
    }
}

/// A server with a 10 s write timeout and 5000 bytes queued for a client
/// that takes none of them.
fn stalled_server() -> Pair {
    let mut pair = Pair::with_write_timeout(10 * S);
    pair.server.send_binary(&[0; 5000]).unwrap();
    pair.to_client = false;
    pair.run();
    pair
}

fn drain_events(conn: &mut Connection, seen: &mut Seen) {
    loop {
        match conn.next_event() {
            Ok(Some(event)) => seen.events.push(event),
            Ok(None) => return,
            Err(e) => {
                seen.error = Some(e);
                return;
            }
        }
    }
}

/// Writes up to `step` bytes of `from`'s output into `to`; whether any moved.
fn transfer(
    from: &mut Connection,
    to: &mut Connection,
    step: usize,
    flowing: bool,
    now: Instant,
) -> bool {
    if !flowing || from.pending_output() == 0 {
        return false;
    }
    let mut slices = [&[][..]; 8];
    let n = from.output(&mut slices);
    let bytes: Vec<u8> = slices[..n].concat();
    let mut chunk = &bytes[..bytes.len().min(step)];
    let mut moved = 0;
    while !chunk.is_empty() && to.wants_read() {
        let took = to.receive(chunk);
        if took == 0 {
            break; // full until its events are taken
        }
        to.heard(now);
        moved += took;
        chunk = &chunk[took..];
    }
    if !to.wants_read() {
        // The peer reads nothing more: what it did not take is discarded.
        moved = bytes.len().min(step);
    }
    from.advance_output(moved);
    moved > 0
}

fn text(s: &str) -> Event {
    Event::Message(Message::from(s))
}

#[test]
fn messages_cross_both_ways_whole_and_in_any_split() {
    for step in [1, 2, 5, 13, 1000, usize::MAX] {
        let len = if step < 1000 { 3000 } else { 200_000 };
        let big: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let mut pair = Pair::new();
        pair.step = step;
        pair.client.send_text("hello €").unwrap();
        pair.client.send(Message::Binary(big.clone())).unwrap();
        pair.server.send_text("welcome").unwrap();
        pair.server.send_binary(&[1, 2, 3]).unwrap();
        let (client, server) = pair.run();
        assert_eq!(
            server.events,
            [
                text("hello €"),
                Event::Message(Message::Binary(big.clone()))
            ],
            "step {step}"
        );
        assert_eq!(
            client.events,
            [
                text("welcome"),
                Event::Message(Message::Binary(vec![1, 2, 3]))
            ]
        );
    }
}

#[test]
fn a_ping_between_fragments_is_answered_before_the_message_ends() {
    let mut pair = Pair::new();
    pair.client
        .send_fragment(OpCode::Text, b"Hel", false)
        .unwrap();
    pair.client.ping(b"are you there").unwrap();
    pair.client
        .send_fragment(OpCode::Continuation, b"lo", true)
        .unwrap();
    let (client, server) = pair.run();
    assert_eq!(
        server.events,
        [Event::Ping(payload(b"are you there")), text("Hello")]
    );
    assert_eq!(client.events, [Event::Pong(payload(b"are you there"))]);
}

#[test]
fn the_close_handshake_echoes_the_code_and_finishes_both_ends() {
    let mut pair = Pair::new();
    pair.client.close(CloseCode(4000), "done").unwrap();
    assert!(!pair.client.is_finished());
    let (client, server) = pair.run();
    let sent = CloseFrame {
        code: CloseCode(4000),
        reason: "done".into(),
    };
    assert_eq!(server.events, [Event::Close(Some(sent))]);
    assert_eq!(
        client.events,
        [Event::Close(Some(CloseFrame {
            code: CloseCode(4000),
            reason: String::new()
        }))]
    );
    assert!(pair.server.is_finished() && pair.client.is_finished());
    assert_eq!(pair.client.send_text("late"), Err(SendError::Closed));
}

#[test]
fn data_arriving_after_our_close_is_dropped_and_nothing_follows_the_peers_close() {
    let mut pair = Pair::new();
    pair.client.send_text("in flight").unwrap();
    pair.server.close(CloseCode::NORMAL, "").unwrap();
    let (_, server) = pair.run();
    assert_eq!(
        server.events,
        [Event::Close(Some(CloseFrame::new(CloseCode::NORMAL)))],
        "the message that crossed our close is not delivered"
    );
    assert!(!pair.server.wants_read());
}

#[test]
fn a_protocol_error_fails_with_its_code_and_the_peer_sees_it() {
    let mut pair = Pair::new();
    // An unmasked client frame: 1002.
    pair.server.receive(&[0x81, 0x01, b'x']);
    let (client, server) = pair.run();
    assert_eq!(server.error, Some(ProtocolError::UnmaskedFrame));
    assert_eq!(pair.server.failure(), Some(CloseCode::PROTOCOL_ERROR));
    match &client.events[..] {
        [Event::Close(Some(frame))] => assert_eq!(frame.code, CloseCode::PROTOCOL_ERROR),
        other => panic!("{other:?}"),
    }
    assert!(pair.server.is_finished());
}

#[test]
fn invalid_utf8_fails_with_1007_on_both_ends_agreeing() {
    let mut pair = Pair::new();
    pair.client
        .send_fragment(OpCode::Binary, b"", false)
        .unwrap();
    // A text fragment inside a binary message breaks the rules on our side.
    assert!(pair.client.send_text("x").is_err());
    let mut pair = Pair::new();
    let frame = pair
        .client
        .outlet()
        .encode(OpCode::Text, Payload::Borrowed(b"\xff"), true)
        .unwrap();
    pair.client.outlet().queue(frame, 0);
    let (client, server) = pair.run();
    assert_eq!(server.error, Some(ProtocolError::InvalidUtf8));
    assert!(
        matches!(&client.events[..], [Event::Close(Some(f))] if f.code == CloseCode::INVALID_DATA)
    );
}

#[test]
fn keepalive_pings_a_silent_peer_and_a_pong_keeps_it() {
    let ka = Keepalive {
        interval: 30 * S,
        timeout: 5 * S,
    };
    let server = Timeouts {
        keepalive: Some(ka),
        ..Timeouts::default()
    };
    let mut pair = Pair::with_timeouts(server, Timeouts::default());
    assert_eq!(pair.server.tick(), Some(5 * S));
    assert_eq!(pair.advance(29 * S), (None, None));
    assert_eq!(pair.server.pending_output(), 0);
    assert_eq!(pair.advance(S), (None, None));
    assert_eq!(pair.server.pending_output(), 2, "a ping is queued");
    let (client, _) = pair.run();
    assert_eq!(client.events, [Event::Ping(payload(b""))]);
    // The pong came back: heard, so the next ping is 30 s away.
    assert_eq!(pair.advance(10 * S), (None, None));
    assert_eq!(pair.server.poll_timeout(), Some(pair.now + 20 * S));
}

#[test]
fn keepalive_gives_up_on_a_peer_that_does_not_answer_with_1001() {
    let ka = Keepalive {
        interval: 30 * S,
        timeout: 5 * S,
    };
    let server = Timeouts {
        keepalive: Some(ka),
        ..Timeouts::default()
    };
    let mut pair = Pair::with_timeouts(server, Timeouts::default());
    pair.to_server = false; // the client's answers never arrive
    pair.advance(30 * S);
    pair.run();
    assert_eq!(pair.advance(4 * S).1, None);
    assert_eq!(pair.advance(S).1, Some(Expired::NoPong(5 * S)));
    let (client, _) = pair.run();
    assert!(
        matches!(&client.events[..], [Event::Close(Some(f))] if f.code == CloseCode::GOING_AWAY)
    );
    assert!(pair.server.is_finished());
}

#[test]
fn read_timeout_closes_a_silent_peer_and_bytes_reset_it() {
    let server = Timeouts {
        read: Some(10 * S),
        ..Timeouts::default()
    };
    let mut pair = Pair::with_timeouts(server, Timeouts::default());
    pair.advance(9 * S);
    pair.client.send_text("still here").unwrap();
    pair.run();
    assert_eq!(pair.advance(9 * S).1, None, "heard at 9 s");
    assert_eq!(pair.advance(S).1, Some(Expired::ReadTimeout(10 * S)));
    assert_eq!(pair.server.failure(), Some(CloseCode::GOING_AWAY));
}

#[test]
fn a_close_that_is_never_answered_times_out() {
    let client = Timeouts {
        close: Some(3 * S),
        ..Timeouts::default()
    };
    let mut pair = Pair::with_timeouts(Timeouts::default(), client);
    pair.to_client = false;
    pair.client.close(CloseCode::NORMAL, "").unwrap();
    pair.run();
    assert_eq!(pair.advance(S).0, None);
    assert_eq!(pair.advance(2 * S).0, None);
    assert_eq!(pair.advance(S).0, Some(Expired::CloseTimeout(3 * S)));
    assert!(pair.client.is_finished());
}

#[test]
fn output_the_peer_never_takes_breaks_the_connection_at_the_write_timeout() {
    let mut pair = stalled_server();
    assert_eq!(pair.advance(5 * S).1, None);
    // Part of it is taken: the clock starts again.
    pair.server.advance_output(100);
    assert_eq!(pair.advance(6 * S).1, None);
    assert_eq!(pair.advance(9 * S).1, None);
    assert_eq!(pair.advance(S).1, Some(Expired::SendStalled(10 * S)));
    assert!(pair.server.is_finished(), "only shutting TCP down is left");
    assert_eq!(pair.server.pending_output(), 0);
    assert_eq!(pair.server.send_text("x"), Err(SendError::Broken));
}

#[test]
fn a_failure_stays_the_reported_ending_when_a_deadline_passes_after_it() {
    let mut pair = Pair::with_write_timeout(10 * S);
    pair.to_client = false; // the client takes nothing: the close 1002 waits
    pair.server.receive(&[0x81, 0x01, b'x']); // unmasked: 1002
    let (_, server) = pair.run();
    assert_eq!(server.error, Some(ProtocolError::UnmaskedFrame));
    pair.advance(S);
    assert_eq!(pair.advance(10 * S).1, Some(Expired::SendStalled(10 * S)));
    assert!(pair.server.is_finished());
    assert_eq!(pair.server.failure(), Some(CloseCode::PROTOCOL_ERROR));
}

#[test]
fn writes_a_driver_reports_itself_restart_the_write_timeout() {
    let mut pair = stalled_server();
    assert_eq!(pair.advance(5 * S).1, None);
    // A driver whose outlet writes for itself says how far it got.
    pair.server.output_written(100, None);
    assert_eq!(pair.advance(6 * S).1, None);
    pair.server.output_written(100, None); // no further
    assert_eq!(pair.advance(9 * S).1, None);
    assert_eq!(pair.advance(S).1, Some(Expired::SendStalled(10 * S)));
}

#[test]
fn the_write_deadline_runs_from_when_the_outlet_last_wrote_not_from_the_tick() {
    let mut pair = stalled_server();
    assert_eq!(pair.advance(S).1, None);
    // The outlet wrote 100 bytes a moment after the start, and the tick
    // that hears of it comes 4 s later: the deadline is 10 s from the write.
    let wrote_at = pair.now + S / 2;
    pair.now += 4 * S;
    pair.server.output_written(100, Some(wrote_at));
    assert_eq!(pair.server.handle_timeout(pair.now), None);
    assert_eq!(pair.server.poll_timeout(), Some(wrote_at + 10 * S));
    assert_eq!(pair.advance(6 * S).1, None); // 9.5 s after the write
    assert_eq!(pair.advance(S / 2).1, Some(Expired::SendStalled(10 * S)));
}

#[test]
fn a_write_that_fails_part_way_leaves_nothing_more_to_send() {
    let mut pair = Pair::new();
    pair.server.send_binary(&[1; 100]).unwrap();
    pair.server.advance_output(10);
    pair.server.write_failed();
    assert!(pair.server.is_finished());
    assert_eq!(pair.server.ping(b""), Err(SendError::Broken));
}

#[cfg(feature = "deflate")]
#[test]
fn permessage_deflate_compresses_both_ways_when_agreed() {
    let config = DeflateConfig::default();
    let (agreed, _) = negotiate([offer(&config).as_str()], &config).unwrap();
    let mut pair = Pair::new();
    pair.server
        .enable_deflate(PerMessageDeflate::new(Role::Server, &agreed, &config));
    pair.client
        .enable_deflate(PerMessageDeflate::new(Role::Client, &agreed, &config));
    let long = "compressible ".repeat(500);
    pair.client.send_text(&long).unwrap();
    assert!(pair.client.pending_output() < long.len() / 4, "compressed");
    pair.server.send_text(&long).unwrap();
    pair.client.send_text(&long).unwrap();
    let (client, server) = pair.run();
    assert_eq!(server.events, [text(&long), text(&long)]);
    assert_eq!(client.events, [text(&long)]);
}

#[test]
fn is_drained_once_the_last_frame_read_has_been_delivered() {
    let mut pair = Pair::new();
    pair.client.send_text("one").unwrap();
    pair.client.send_text("two").unwrap();
    let mut slices = [&[][..]; 4];
    let n = pair.client.output(&mut slices);
    let bytes: Vec<u8> = slices[..n].concat();
    assert!(pair.server.is_drained(), "nothing read yet");
    assert_eq!(pair.server.receive(&bytes), bytes.len());
    assert!(!pair.server.is_drained(), "two frames to parse");
    assert!(matches!(pair.server.poll(), Ok(Some(Event::Message(())))));
    assert!(
        !pair.server.is_drained(),
        "the second frame is still to parse"
    );
    assert!(matches!(pair.server.poll(), Ok(Some(Event::Message(())))));
    assert!(pair.server.is_drained());
    assert!(matches!(pair.server.poll(), Ok(None)));
}

//! The lifecycle in virtual time: bytes in and out by hand, no sockets, no sleeps.

use super::*;

const GET: &[u8] = b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n";
const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

fn settings() -> Settings {
    Settings {
        max_head_size: 256,
        max_headers: 4,
        max_body_size: 100,
        handshake_timeout: Duration::from_secs(10),
        linger: Duration::from_secs(2),
    }
}

fn secs(t0: Instant, s: u64) -> Instant {
    t0 + Duration::from_secs(s)
}

/// Takes everything queued, as a socket that takes all would.
fn drain(life: &mut Lifecycle) -> String {
    let out = String::from_utf8_lossy(life.output()).into_owned();
    life.advance_output(out.len());
    out
}

fn post(len: usize, extra: &str) -> Vec<u8> {
    format!("POST /form HTTP/1.1\r\nHost: a\r\nContent-Length: {len}\r\n{extra}\r\n").into_bytes()
}

/// A machine past a POST head, with its body being read.
fn reading_body(t0: Instant, head: &[u8]) -> Lifecycle {
    let mut life = Lifecycle::new(settings(), t0);
    assert_eq!(life.receive(head), Ok(head.len()));
    assert!(matches!(life.poll(), Step::Route(r) if r.method() == "POST"));
    assert_eq!(life.read_body(), Ok(()));
    life
}

fn status_of(out: &str) -> &str {
    out.split(' ').nth(1).unwrap_or_default()
}

#[test]
fn a_head_in_one_byte_at_a_time_is_scanned_as_it_comes() {
    let t0 = crate::test_origin();
    let mut life = Lifecycle::new(settings(), t0);
    for &byte in GET {
        assert_eq!(life.poll(), Step::Read);
        let buf = life.read_buf();
        assert!(!buf.is_empty());
        buf[0] = byte;
        assert_eq!(life.commit(1), Ok(()));
    }
    let Step::Route(request) = life.poll() else {
        panic!("{:?}", life.poll())
    };
    assert_eq!((request.method(), request.path()), ("GET", "/x"));
    assert_eq!(request.header("host"), Some("a"));
    assert_eq!(life.poll_timeout(), None, "the driver decides now");
    assert!(life.read_buf().is_empty(), "no bytes wanted while routing");
}

#[test]
fn a_head_over_the_limit_is_refused_with_431() {
    let t0 = crate::test_origin();
    let mut life = Lifecycle::new(settings(), t0);
    let mut head = b"GET / HTTP/1.1\r\nX: ".to_vec();
    head.resize(300, b'a');
    let err = life.receive(&head).unwrap_err();
    assert_eq!(err, HandshakeError::HeadTooLarge { limit: 256 });
    assert_eq!(life.poll(), Step::Write);
    let out = drain(&mut life);
    assert!(out.starts_with("HTTP/1.1 431 "), "{out}");
    assert_eq!(life.poll(), Step::ShutdownWrite);
    // Nothing of the head was held past the limit and its slack.
    assert!(life.read_buf().is_empty());
}

#[test]
fn too_many_headers_are_refused_with_431() {
    let t0 = crate::test_origin();
    let mut life = Lifecycle::new(settings(), t0);
    let head = b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n\r\n";
    let err = life.receive(head).unwrap_err();
    assert_eq!(err, HandshakeError::TooManyHeaders { limit: 4 });
    assert!(drain(&mut life).starts_with("HTTP/1.1 431 "));
}

#[test]
fn a_malformed_head_is_refused_with_400() {
    let t0 = crate::test_origin();
    let mut life = Lifecycle::new(settings(), t0);
    let err = life.receive(b"GET /\r\n\r\n").unwrap_err();
    assert_eq!(err.status(), 400);
    assert!(drain(&mut life).starts_with("HTTP/1.1 400 "));
}

#[test]
fn a_body_with_content_length_arrives_in_pieces() {
    let t0 = crate::test_origin();
    // Four bytes come with the head.
    let mut head = post(10, "");
    head.extend_from_slice(b"0123");
    let mut life = reading_body(t0, &head);
    assert_eq!(life.poll(), Step::Read);
    assert_eq!(life.output(), b"", "no 100 Continue unasked");
    assert_eq!(life.receive(b"45"), Ok(2));
    assert_eq!(life.poll(), Step::Read);
    let buf = life.read_buf();
    assert_eq!(buf.len(), 4, "only the body's remainder is lent");
    buf.copy_from_slice(b"6789");
    assert_eq!(life.commit(4), Ok(()));
    let Step::Answer(request) = life.poll() else {
        panic!("{:?}", life.poll())
    };
    assert_eq!(request.body(), b"0123456789");
    life.respond(&Response::text(201, "made"));
    let out = drain(&mut life);
    assert!(out.starts_with("HTTP/1.1 201 ") && out.ends_with("\r\n\r\nmade"));
}

#[test]
fn bytes_past_the_body_are_not_taken() {
    let t0 = crate::test_origin();
    let mut life = reading_body(t0, &post(3, ""));
    assert_eq!(life.receive(b"abcdef"), Ok(3));
    assert!(matches!(life.poll(), Step::Answer(r) if r.body() == b"abc"));
    // With the head too: the surplus is dropped.
    let mut head = post(2, "");
    head.extend_from_slice(b"xyz");
    let life = reading_body(t0, &head);
    assert!(matches!(life.poll(), Step::Answer(r) if r.body() == b"xy"));
}

#[test]
fn a_body_over_the_limit_is_refused_with_413_before_any_is_read() {
    let t0 = crate::test_origin();
    let mut life = Lifecycle::new(settings(), t0);
    let head = post(101, "Expect: 100-continue\r\n");
    assert_eq!(life.receive(&head), Ok(head.len()));
    assert_eq!(
        life.read_body(),
        Err(HandshakeError::BodyTooLarge { limit: 100 })
    );
    assert_eq!(life.poll(), Step::Write, "no body wanted");
    assert!(life.read_buf().is_empty());
    let out = drain(&mut life);
    assert!(out.starts_with("HTTP/1.1 413 "), "no 100 Continue: {out}");
}

#[test]
fn a_body_without_a_length_is_refused_with_411() {
    let t0 = crate::test_origin();
    let mut life = Lifecycle::new(settings(), t0);
    let head = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(life.receive(head), Ok(head.len()));
    assert_eq!(life.read_body(), Err(HandshakeError::LengthRequired));
    assert_eq!(status_of(&drain(&mut life)), "411");
}

#[test]
fn continue_is_sent_only_while_the_body_has_not_arrived() {
    let t0 = crate::test_origin();
    let expect = "Expect: 100-continue\r\n";
    // Asked for, and none of the body is here: sent first, then the body is read.
    let mut life = reading_body(t0, &post(3, expect));
    assert_eq!(life.poll(), Step::Read);
    assert_eq!(drain(&mut life), "HTTP/1.1 100 Continue\r\n\r\n");
    assert_eq!(life.receive(b"abc"), Ok(3));
    assert!(matches!(life.poll(), Step::Answer(r) if r.body() == b"abc"));
    // Part of it came with the head: still asked.
    let mut head = post(3, expect);
    head.push(b'a');
    let mut life = reading_body(t0, &head);
    assert_eq!(drain(&mut life), "HTTP/1.1 100 Continue\r\n\r\n");
    // All of it came with the head: not sent.
    let mut head = post(3, expect);
    head.extend_from_slice(b"abc");
    let mut life = reading_body(t0, &head);
    assert!(matches!(life.poll(), Step::Answer(r) if r.body() == b"abc"));
    assert_eq!(life.output(), b"");
    life.respond(&Response::text(200, "ok"));
    assert!(drain(&mut life).starts_with("HTTP/1.1 200 "));
    // Not asked for: not sent.
    let life = reading_body(t0, &post(3, ""));
    assert_eq!(life.output(), b"");
}

#[test]
fn the_handshake_deadline_during_the_head_answers_408() {
    let t0 = crate::test_origin();
    let mut life = Lifecycle::new(settings(), t0);
    assert_eq!(life.receive(b"GET / HT"), Ok(8));
    assert_eq!(life.poll_timeout(), Some(secs(t0, 10)));
    assert_eq!(life.handle_timeout(secs(t0, 9)), Ok(()));
    assert_eq!(life.poll(), Step::Read);
    assert_eq!(
        life.handle_timeout(secs(t0, 10)),
        Err(HandshakeError::Timeout)
    );
    assert_eq!(status_of(&drain(&mut life)), "408");
    assert_eq!(life.poll(), Step::ShutdownWrite);
}

#[test]
fn the_handshake_deadline_runs_on_through_the_body() {
    let t0 = crate::test_origin();
    let mut life = Lifecycle::new(settings(), t0);
    assert_eq!(life.receive(b"POST /f HTT"), Ok(11));
    let rest = b"P/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nab";
    assert_eq!(life.receive(rest), Ok(rest.len()));
    assert_eq!(life.read_body(), Ok(()));
    // The deadline is the one set at the start, not a new one for the body.
    assert_eq!(life.poll_timeout(), Some(secs(t0, 10)));
    assert_eq!(
        life.handle_timeout(secs(t0, 11)),
        Err(HandshakeError::Timeout)
    );
    assert_eq!(status_of(&drain(&mut life)), "408");
}

#[test]
fn an_upgrade_hands_back_the_bytes_after_the_head_exactly() {
    let t0 = crate::test_origin();
    let settings = Settings {
        max_headers: 8,
        ..settings()
    };
    let mut life = Lifecycle::new(settings, t0);
    let frames = [0x81, 0x85, 1, 2, 3, 4, b'h' ^ 1, b'e' ^ 2, b'l' ^ 3];
    let mut bytes = UPGRADE.to_vec();
    bytes.extend_from_slice(&frames);
    // In two pieces, the second splitting the head's end.
    let split = UPGRADE.len() - 2;
    assert_eq!(life.receive(&bytes[..split]), Ok(split));
    assert_eq!(life.receive(&bytes[split..]), Ok(bytes.len() - split));
    let Step::Route(request) = life.poll() else {
        panic!("{:?}", life.poll())
    };
    let accept = crate::http::head::check_upgrade(request).unwrap();
    let response = crate::http::head::response_101(&accept, None, None);
    let (request, rest) = life.upgrade(response.clone()).unwrap();
    assert_eq!(request.path(), "/chat");
    assert_eq!(rest, frames);
    // The 101 goes out before the WebSocket is the driver's.
    assert_eq!(life.poll(), Step::Write);
    assert_eq!(life.output(), &response[..]);
    drain(&mut life);
    assert_eq!(life.poll(), Step::Open);
    assert!(life.read_buf().is_empty(), "the WebSocket reads now");
    assert_eq!(life.upgrade(Vec::new()), None, "upgraded once");
    // Its end: the closing phase.
    life.close();
    assert_eq!(life.poll(), Step::ShutdownWrite);
}

#[test]
fn a_machine_made_for_the_closing_phase_lingers_as_a_closed_one() {
    let t0 = crate::test_origin();
    let mut life = Lifecycle::closing(settings());
    assert_eq!(
        (life.poll(), life.output()),
        (Step::ShutdownWrite, &b""[..])
    );
    assert_eq!(life.poll_timeout(), None);
    // No request to answer: decisions change nothing.
    life.respond(&Response::status(500));
    assert_eq!(life.upgrade(Vec::new()), None);
    assert_eq!(life.output(), b"");
    life.write_shut(secs(t0, 1));
    assert_eq!(life.poll(), Step::Read);
    assert_eq!(life.poll_timeout(), Some(secs(t0, 3)));
    assert_eq!(life.receive(b"late"), Ok(4));
    assert_eq!(life.receive_eof(), Ok(()));
    assert_eq!(life.poll(), Step::Finished);
}

#[test]
fn closing_drains_the_output_before_the_write_side_is_shut() {
    let t0 = crate::test_origin();
    let mut life = Lifecycle::new(settings(), t0);
    assert_eq!(life.receive(GET), Ok(GET.len()));
    life.respond(&Response::text(200, "ok"));
    assert_eq!(life.poll(), Step::Write);
    assert_eq!(life.poll_timeout(), None, "no linger before the shutdown");
    life.advance_output(5);
    assert_eq!(life.poll(), Step::Write);
    drain(&mut life);
    assert_eq!(life.poll(), Step::ShutdownWrite);
    // What the client sends now is discarded, until its end.
    life.write_shut(secs(t0, 3));
    assert_eq!(life.poll(), Step::Read);
    assert_eq!(life.poll_timeout(), Some(secs(t0, 5)));
    let buf = life.read_buf();
    assert!(!buf.is_empty());
    let n = buf.len();
    assert_eq!(life.commit(n), Ok(()));
    assert_eq!(life.receive(&[7; 100_000]), Ok(100_000));
    assert_eq!(life.poll(), Step::Read);
    assert_eq!(life.output(), b"", "nothing more is sent");
    assert_eq!(life.receive_eof(), Ok(()));
    assert_eq!(life.poll(), Step::Finished);
    assert!(life.is_finished());
}

#[test]
fn the_linger_ends_at_its_deadline() {
    let t0 = crate::test_origin();
    let mut life = Lifecycle::new(settings(), t0);
    assert_eq!(life.receive(GET), Ok(GET.len()));
    life.respond(&Response::status(404));
    drain(&mut life);
    life.write_shut(secs(t0, 1));
    assert_eq!(life.handle_timeout(secs(t0, 2)), Ok(()));
    assert_eq!(life.poll(), Step::Read);
    assert_eq!(life.handle_timeout(secs(t0, 3)), Ok(()));
    assert_eq!(life.poll(), Step::Finished);
    assert_eq!(life.poll_timeout(), None);
}

#[test]
fn a_client_whose_end_came_first_is_not_lingered_for() {
    let t0 = crate::test_origin();
    let mut life = Lifecycle::new(settings(), t0);
    assert_eq!(life.receive(GET), Ok(GET.len()));
    life.respond(&Response::status(404));
    assert_eq!(life.receive_eof(), Ok(()));
    // Its end is no reason to stop sending.
    assert_eq!(life.poll(), Step::Write);
    drain(&mut life);
    assert_eq!(life.poll(), Step::ShutdownWrite);
    life.write_shut(secs(t0, 1));
    assert_eq!(life.poll(), Step::Finished);
}

#[test]
fn a_request_cut_short_is_an_error_and_gets_no_answer() {
    let t0 = crate::test_origin();
    let mut life = Lifecycle::new(settings(), t0);
    assert_eq!(life.receive(b"GET / HTTP/1.1\r\n"), Ok(16));
    assert_eq!(life.receive_eof(), Err(Truncated));
    assert_eq!(life.poll(), Step::ShutdownWrite);
    life.write_shut(secs(t0, 1));
    assert_eq!(life.poll(), Step::Finished);
    // During a body too.
    let mut life = reading_body(t0, &post(5, ""));
    assert_eq!(life.receive(b"ab"), Ok(2));
    assert_eq!(life.receive_eof(), Err(Truncated));
    assert_eq!(life.output(), b"");
}

#[test]
fn a_partial_write_resumes_where_it_stopped() {
    let t0 = crate::test_origin();
    let mut life = Lifecycle::new(settings(), t0);
    assert_eq!(life.receive(GET), Ok(GET.len()));
    let response = Response::text(200, "a body long enough to take a few writes");
    life.respond(&response);
    let expected = response.to_bytes();
    let mut wire = Vec::new();
    // A socket that takes 7 bytes a write, then none, then the rest.
    for take in [7, 7, 0, 7] {
        let n = take.min(life.output().len());
        wire.extend_from_slice(&life.output()[..n]);
        life.advance_output(n);
        assert_eq!(life.output(), &expected[wire.len()..]);
    }
    while !life.output().is_empty() {
        let n = life.output().len().min(7);
        wire.extend_from_slice(&life.output()[..n]);
        life.advance_output(n);
    }
    assert_eq!(wire, expected);
    assert_eq!(life.poll(), Step::ShutdownWrite);
}

#[test]
fn a_failed_write_gives_up_the_output_and_closes() {
    let t0 = crate::test_origin();
    let mut life = reading_body(t0, &post(3, "Expect: 100-continue\r\n"));
    assert!(!life.output().is_empty());
    life.write_failed();
    assert_eq!(life.output(), b"");
    assert_eq!(life.poll(), Step::ShutdownWrite);
}

#[test]
fn decisions_after_the_answer_change_nothing() {
    let t0 = crate::test_origin();
    let mut life = Lifecycle::new(settings(), t0);
    assert_eq!(life.receive(GET), Ok(GET.len()));
    life.refuse(&HandshakeError::Forbidden("no".into()));
    let out = drain(&mut life);
    assert_eq!(status_of(&out), "403");
    life.respond(&Response::status(500));
    assert_eq!(life.read_body(), Ok(()));
    assert_eq!(life.upgrade(b"HTTP/1.1 101".to_vec()), None);
    assert_eq!(life.output(), b"", "one answer per connection");
    assert_eq!(life.poll(), Step::ShutdownWrite);
}

#[test]
fn a_head_is_read_in_growing_pieces_within_its_bound() {
    let t0 = crate::test_origin();
    let mut life = Lifecycle::new(
        Settings {
            max_head_size: 16 << 10,
            ..settings()
        },
        t0,
    );
    assert_eq!(life.read_buf().len(), 1024);
    assert_eq!(life.commit(0), Ok(()));
    assert_eq!(life.read_buf().len(), 1024, "nothing came: the same room");
    let chunk = [b'G'; 1024];
    let mut lent = Vec::new();
    loop {
        let room = life.read_buf();
        lent.push(room.len());
        let n = room.len().min(chunk.len());
        room[..n].copy_from_slice(&chunk[..n]);
        if life.commit(n).is_err() {
            break;
        }
    }
    assert_eq!(life.poll(), Step::Write, "refused at the limit");
    assert!(lent.iter().all(|&n| n <= 16 << 10));
}

#[test]
fn a_client_that_floods_the_linger_is_cut_off_after_a_mebibyte() {
    let t0 = crate::test_origin();
    let mut life = Lifecycle::new(settings(), t0);
    life.close();
    assert_eq!(life.poll(), Step::ShutdownWrite);
    life.write_shut(t0);
    let mut discarded = 0;
    while life.poll() == Step::Read {
        let n = life.read_buf().len();
        assert_eq!(life.commit(n), Ok(()));
        discarded += n;
    }
    assert_eq!(life.poll(), Step::Finished);
    assert_eq!(discarded, MAX_DISCARD);
}

#[test]
fn a_deadline_too_far_off_to_represent_is_never() {
    let t0 = crate::test_origin();
    let never = Settings {
        handshake_timeout: Duration::MAX,
        linger: Duration::MAX,
        ..settings()
    };
    let mut life = Lifecycle::new(never, t0);
    assert_eq!(life.poll_timeout(), None);
    assert_eq!(life.handle_timeout(secs(t0, 1 << 30)), Ok(()));
    life.close();
    life.write_shut(t0);
    assert_eq!((life.poll(), life.poll_timeout()), (Step::Read, None));
}

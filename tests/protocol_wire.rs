//! RFC 6455 framing rules on real loopback sockets, server side: every close
//! code the server fails a connection with, the TCP close after it, control
//! frames, fragmentation, UTF-8, limits and the exact bytes of every echo.

mod common;

use common::*;
use std::net::SocketAddr;
use stdws::Limits;

/// Opens a connection, writes `bytes`, and expects the server to fail the
/// connection with `code`: a close frame with that code and a non-empty
/// UTF-8 reason, then the TCP close. Returns the reason.
fn fails_with(addr: SocketAddr, bytes: &[u8], code: u16) -> String {
    let mut client = RawClient::open(addr);
    client.write(bytes);
    let reason = client.expect_close(code);
    assert!(
        !reason.is_empty(),
        "a failed connection's close frame should say why"
    );
    reason
}

/// A text of exactly `len` bytes, mixing 1- to 4-byte characters.
fn text_of_len(len: usize) -> String {
    let mut s = String::with_capacity(len);
    for c in "aé€𝄞".chars().cycle() {
        if s.len() + c.len_utf8() > len {
            break;
        }
        s.push(c);
    }
    while s.len() < len {
        s.push('a');
    }
    s
}

/// A binary payload of `len` bytes, every byte value present for long ones.
fn binary_of_len(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + 7) as u8).collect()
}

// ---------------------------------------------------------------------------
// 1002: frame-level protocol errors
// ---------------------------------------------------------------------------

#[test]
fn rejects_unmasked_client_frame_with_1002() {
    let addr = start_server();
    // RFC 6455 5.7: an unmasked "Hello"; a server must fail on it (5.1).
    fails_with(addr, &[0x81, 0x05, b'H', b'e', b'l', b'l', b'o'], 1002);
    fails_with(addr, &unmasked_frame(FIN | OP_PING, b""), 1002);
    fails_with(addr, &unmasked_frame(FIN | OP_CLOSE, &[0x03, 0xe8]), 1002);
}

#[test]
fn rejects_rsv_bits_with_1002() {
    let addr = start_server();
    for rsv in [0x40u8, 0x20, 0x10, 0x70] {
        fails_with(addr, &frame(FIN | rsv | OP_TEXT, b"rsv"), 1002);
        fails_with(addr, &frame(FIN | rsv | OP_PING, b"rsv"), 1002);
    }
}

#[test]
fn rejects_reserved_opcodes_with_1002() {
    let addr = start_server();
    for op in [3u8, 4, 5, 6, 7, 11, 12, 13, 14, 15] {
        let reason = fails_with(addr, &frame(FIN | op, b""), 1002);
        assert!(!reason.is_empty(), "opcode {op}");
        fails_with(addr, &frame(FIN | op, b"payload"), 1002);
        fails_with(addr, &frame(op, b"not final"), 1002);
    }
}

#[test]
fn rejects_fragmented_ping_with_1002() {
    let addr = start_server();
    fails_with(addr, &frame(OP_PING, b"frag"), 1002);
}

#[test]
fn rejects_fragmented_pong_and_close_with_1002() {
    let addr = start_server();
    fails_with(addr, &frame(OP_PONG, b"frag"), 1002);
    fails_with(addr, &frame(OP_CLOSE, &[0x03, 0xe8]), 1002);
}

#[test]
fn rejects_ping_with_126_byte_payload_with_1002() {
    let addr = start_server();
    let bytes = frame(FIN | OP_PING, &[b'p'; 126]);
    assert_eq!(&bytes[..4], &[0x89, 0xfe, 0x00, 0x7e]);
    fails_with(addr, &bytes, 1002);
}

#[test]
fn rejects_control_frames_with_extended_lengths_with_1002() {
    let addr = start_server();
    // A close frame of 126 bytes, and a ping whose 5-byte payload uses the
    // 64-bit length form: control frames must use the 7-bit length.
    fails_with(addr, &frame(FIN | OP_CLOSE, &[0x03; 126]), 1002);
    let mut ping = vec![0x89, 0xff, 0, 0, 0, 0, 0, 0, 0, 5];
    ping.extend_from_slice(&MASK);
    ping.extend(xor(b"hello", MASK));
    fails_with(addr, &ping, 1002);
}

#[test]
fn rejects_continuation_with_nothing_to_continue_with_1002() {
    let addr = start_server();
    fails_with(addr, &frame(FIN | OP_CONT, b"orphan"), 1002);
    fails_with(addr, &frame(OP_CONT, b"orphan"), 1002);
    // Also right after a complete message.
    let mut bytes = frame(FIN | OP_TEXT, b"done");
    bytes.extend(frame(FIN | OP_CONT, b"orphan"));
    let mut client = RawClient::open(addr);
    client.write(&bytes);
    client.expect_echo(OP_TEXT, b"done");
    client.expect_close(1002);
}

#[test]
fn rejects_new_text_frame_inside_fragmented_message_with_1002() {
    let addr = start_server();
    for b0 in [FIN | OP_TEXT, OP_TEXT, FIN | OP_BINARY, OP_BINARY] {
        let mut bytes = frame(OP_TEXT, b"first half");
        bytes.extend(frame(b0, b"a new message"));
        fails_with(addr, &bytes, 1002);
    }
}

#[test]
fn rejects_close_with_1_byte_payload_with_1002() {
    let addr = start_server();
    fails_with(addr, &frame(FIN | OP_CLOSE, &[0x03]), 1002);
}

#[test]
fn rejects_invalid_close_codes_with_1002() {
    let addr = start_server();
    for code in [
        0u16, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535,
    ] {
        let mut client = RawClient::open(addr);
        client.write(&close_frame(code, b""));
        let reason = client.expect_close(1002);
        assert!(!reason.is_empty(), "code {code}");
    }
}

#[test]
fn rejects_64_bit_length_with_top_bit_set_at_once_with_1002() {
    let addr = start_server();
    // Only the header: the server must answer without waiting for (or
    // allocating) a payload.
    let mut bytes = vec![0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0x01];
    bytes.extend_from_slice(&MASK);
    fails_with(addr, &bytes, 1002);
    let mut bytes = vec![0x82, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
    bytes.extend_from_slice(&MASK);
    fails_with(addr, &bytes, 1002);
}

#[test]
fn rejects_garbage_after_the_handshake_with_1002() {
    let addr = start_server();
    // 0x47 is 'G': FIN 0, RSV 0b100, reserved opcode 7.
    fails_with(addr, b"GET / HTTP/1.1\r\n\r\n", 1002);
}

// ---------------------------------------------------------------------------
// Close handshake
// ---------------------------------------------------------------------------

#[test]
fn echoes_valid_close_codes_then_closes_tcp() {
    let addr = start_server();
    let codes = [
        1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999,
        4000, 4999,
    ];
    for code in codes {
        let mut client = RawClient::open(addr);
        client.write(&close_frame(code, b""));
        let f = client.read_server_frame();
        assert_eq!(f.opcode, OP_CLOSE, "code {code}");
        assert_eq!(&f.header, &[0x88, f.payload.len() as u8], "code {code}");
        assert_eq!(f.close_parts().map(|(c, _)| c), Some(code));
        client.expect_tcp_closed();
    }
}

#[test]
fn echoes_close_code_of_a_close_with_a_reason() {
    let addr = start_server();
    let mut client = RawClient::open(addr);
    client.write(&close_frame(1000, "bye κόσμε".as_bytes()));
    let reason = client.expect_close(1000);
    assert!(reason.len() <= 123);
}

#[test]
fn echoes_close_with_a_123_byte_reason() {
    let addr = start_server();
    let mut client = RawClient::open(addr);
    client.write(&close_frame(4000, &[b'r'; 123]));
    client.expect_close(4000);
}

#[test]
fn echoes_empty_close_with_empty_close() {
    let addr = start_server();
    let mut client = RawClient::open(addr);
    client.write(&frame(FIN | OP_CLOSE, b""));
    let f = client.read_server_frame();
    assert_eq!(f.header, [0x88, 0x00]);
    assert!(f.payload.is_empty());
    client.expect_tcp_closed();
}

#[test]
fn ignores_data_after_the_clients_close() {
    let addr = start_server();
    let mut client = RawClient::open(addr);
    let mut bytes = close_frame(1000, b"");
    bytes.extend(frame(FIN | OP_TEXT, b"too late"));
    bytes.extend(frame(FIN | OP_PING, b"too late"));
    client.write(&bytes);
    client.expect_close(1000);
}

#[test]
fn closes_after_a_close_between_fragments() {
    // Control frames may arrive between fragments, close included.
    let addr = start_server();
    let mut client = RawClient::open(addr);
    let mut bytes = frame(OP_TEXT, b"half");
    bytes.extend(close_frame(1001, b""));
    client.write(&bytes);
    client.expect_close(1001);
}

// ---------------------------------------------------------------------------
// 1007: UTF-8
// ---------------------------------------------------------------------------

/// Text payloads that are not UTF-8 (Autobahn 6.x style).
const INVALID_UTF8: &[&[u8]] = &[
    b"\xff",
    b"abc\xfedef",
    b"\xc0\xaf",         // overlong '/'
    b"\xe0\x80\xaf",     // overlong, 3 bytes
    b"\xed\xa0\x80",     // UTF-16 surrogate
    b"\xf4\x90\x80\x80", // above U+10FFFF
    b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
    b"\x80",         // lone continuation byte
    b"text\xe2\x82", // ends inside a character
];

#[test]
fn rejects_invalid_utf8_text_with_1007() {
    let addr = start_server();
    for payload in INVALID_UTF8 {
        let mut client = RawClient::open(addr);
        client.write(&frame(FIN | OP_TEXT, payload));
        let reason = client.expect_close(1007);
        assert!(!reason.is_empty(), "{payload:02x?}");
    }
}

#[test]
fn rejects_invalid_utf8_in_fragmented_text_with_1007() {
    let addr = start_server();
    for payload in INVALID_UTF8 {
        // Split at every position into a first and a final fragment.
        for split in 0..=payload.len() {
            let mut bytes = frame(OP_TEXT, &payload[..split]);
            bytes.extend(frame(FIN | OP_CONT, &payload[split..]));
            let mut client = RawClient::open(addr);
            client.write(&bytes);
            client.expect_close(1007);
        }
    }
}

#[test]
fn rejects_invalid_utf8_in_first_fragment_without_waiting_for_the_rest() {
    let addr = start_server();
    // κόσμε then F4 90: invalid as soon as 0x90 arrives. No further
    // fragment is ever sent; the server must not wait for one.
    fails_with(
        addr,
        &frame(
            OP_TEXT,
            b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80",
        ),
        1007,
    );
    fails_with(addr, &frame(OP_TEXT, b"\xff"), 1007);
    // The invalid sequence straddles two fragments; the third never comes.
    let mut bytes = frame(OP_TEXT, b"ok \xf4");
    bytes.extend(frame(OP_CONT, b"\x90 more"));
    fails_with(addr, &bytes, 1007);
}

#[test]
fn rejects_invalid_utf8_before_the_rest_of_its_frame_arrives() {
    let addr = start_server();
    // A 100-byte final text frame of which only 20 bytes arrive; byte 10 is invalid.
    let mut payload = vec![b'a'; 100];
    payload[10] = 0xff;
    let mut bytes = header(FIN | OP_TEXT, Some(MASK), 100);
    bytes.extend(&xor(&payload, MASK)[..20]);
    fails_with(addr, &bytes, 1007);
}

#[test]
fn rejects_invalid_utf8_in_a_large_unfinished_frame() {
    // A frame larger than the read buffer is read straight into the message;
    // the check must still happen as the bytes arrive.
    let addr = start_server();
    for bad_at in [100usize, 5000, 20_000] {
        let len = 100_000u64;
        let mut payload = text_of_len(len as usize).into_bytes();
        payload[bad_at] = 0xff;
        let mut bytes = header(FIN | OP_TEXT, Some(MASK), len);
        bytes.extend(&xor(&payload, MASK)[..bad_at + 1000]);
        fails_with(addr, &bytes, 1007);
    }
}

#[test]
fn accepts_characters_split_across_fragments() {
    let addr = start_server();
    let text = "€𝄞é".as_bytes();
    let mut client = RawClient::open(addr);
    // One byte per fragment: every character is cut.
    let mut bytes = frame(OP_TEXT, &text[..1]);
    for b in &text[1..text.len() - 1] {
        bytes.extend(frame(OP_CONT, std::slice::from_ref(b)));
    }
    bytes.extend(frame(FIN | OP_CONT, &text[text.len() - 1..]));
    client.write(&bytes);
    let f = client.read_server_frame();
    assert_eq!(f.header, [0x81, text.len() as u8]);
    assert_eq!(f.payload, text);
}

#[test]
fn rejects_invalid_utf8_close_reason_with_1007() {
    let addr = start_server();
    for reason in [&b"\xff"[..], b"bye \xc0\xaf", b"\xe2\x82"] {
        let mut client = RawClient::open(addr);
        client.write(&close_frame(1000, reason));
        client.expect_close(1007);
    }
}

#[test]
fn binary_messages_are_not_checked_for_utf8() {
    let addr = start_server();
    let mut client = RawClient::open(addr);
    client.assert_echoes(b"\xff\xfe\xc0\xaf\xed\xa0\x80");
}

// ---------------------------------------------------------------------------
// 1009: limits
// ---------------------------------------------------------------------------

fn small_limits() -> Limits {
    Limits {
        max_frame_size: 1000,
        max_message_size: 2500,
        max_fragments: 4,
        ..Limits::default()
    }
}

#[test]
fn echoes_a_frame_of_exactly_max_frame_size() {
    let addr = start_server_with_limits(small_limits());
    let mut client = RawClient::open(addr);
    client.assert_echoes(&binary_of_len(1000));
    let text = text_of_len(1000);
    client.write(&frame(FIN | OP_TEXT, text.as_bytes()));
    client.expect_echo(OP_TEXT, text.as_bytes());
}

#[test]
fn rejects_frame_over_max_frame_size_with_1009() {
    let addr = start_server_with_limits(small_limits());
    fails_with(addr, &frame(FIN | OP_BINARY, &binary_of_len(1001)), 1009);
    fails_with(
        addr,
        &frame(FIN | OP_TEXT, text_of_len(1001).as_bytes()),
        1009,
    );
    // Also as a fragment of a message that would fit.
    let mut bytes = frame(OP_BINARY, &binary_of_len(10));
    bytes.extend(frame(FIN | OP_CONT, &binary_of_len(1001)));
    fails_with(addr, &bytes, 1009);
}

#[test]
fn rejects_frame_over_max_frame_size_from_its_header_alone() {
    // The header is enough to know: the server must not wait for the payload.
    let addr = start_server_with_limits(small_limits());
    fails_with(addr, &header(FIN | OP_BINARY, Some(MASK), 1001), 1009);
    // Default limits: a frame of 16 MiB + 1 byte, and one of 2^62 bytes.
    let addr = start_server();
    fails_with(
        addr,
        &header(FIN | OP_BINARY, Some(MASK), 16 * 1024 * 1024 + 1),
        1009,
    );
    fails_with(addr, &header(FIN | OP_BINARY, Some(MASK), 1 << 62), 1009);
}

#[test]
fn echoes_a_message_of_exactly_max_message_size() {
    let addr = start_server_with_limits(small_limits());
    let mut client = RawClient::open(addr);
    let payload = binary_of_len(2500);
    let mut bytes = frame(OP_BINARY, &payload[..1000]);
    bytes.extend(frame(OP_CONT, &payload[1000..2000]));
    bytes.extend(frame(FIN | OP_CONT, &payload[2000..]));
    client.write(&bytes);
    client.expect_echo(OP_BINARY, &payload);
}

#[test]
fn rejects_message_over_max_message_size_with_1009() {
    let addr = start_server_with_limits(small_limits());
    let payload = binary_of_len(2501);
    let mut bytes = frame(OP_BINARY, &payload[..1000]);
    bytes.extend(frame(OP_CONT, &payload[1000..2000]));
    bytes.extend(frame(FIN | OP_CONT, &payload[2000..]));
    fails_with(addr, &bytes, 1009);
    // The header of the fragment that overflows is enough.
    let mut bytes = frame(OP_BINARY, &payload[..1000]);
    bytes.extend(frame(OP_CONT, &payload[1000..2000]));
    bytes.extend(header(FIN | OP_CONT, Some(MASK), 501));
    fails_with(addr, &bytes, 1009);
}

#[test]
fn rejects_message_over_max_fragments_with_1009() {
    let addr = start_server_with_limits(small_limits());
    // Four fragments (empty ones count) are fine.
    let mut client = RawClient::open(addr);
    let mut bytes = frame(OP_TEXT, b"");
    bytes.extend(frame(OP_CONT, b"a"));
    bytes.extend(frame(OP_CONT, b""));
    bytes.extend(frame(FIN | OP_CONT, b"b"));
    client.write(&bytes);
    client.expect_echo(OP_TEXT, b"ab");
    // A fifth fails.
    let mut bytes = frame(OP_TEXT, b"");
    for _ in 0..3 {
        bytes.extend(frame(OP_CONT, b""));
    }
    bytes.extend(frame(FIN | OP_CONT, b""));
    fails_with(addr, &bytes, 1009);
}

// ---------------------------------------------------------------------------
// Ping and pong
// ---------------------------------------------------------------------------

#[test]
fn answers_ping_with_pong_carrying_identical_payload() {
    let addr = start_server();
    let mut client = RawClient::open(addr);
    client.write(&frame(FIN | OP_PING, b""));
    let pong = client.read_server_frame();
    assert_eq!(pong.header, [0x8a, 0x00]);
    assert!(pong.payload.is_empty());

    let payload = binary_of_len(125);
    client.write(&frame(FIN | OP_PING, &payload));
    let pong = client.read_server_frame();
    assert_eq!(pong.header, [0x8a, 0x7d]);
    assert_eq!(pong.payload, payload);

    client.write(&frame(FIN | OP_PING, b"Hello"));
    let pong = client.read_server_frame();
    assert_eq!(pong.header, [0x8a, 0x05]);
    assert_eq!(pong.payload, b"Hello");
}

#[test]
fn answers_ping_between_fragments_then_echoes_the_message() {
    let addr = start_server();
    let mut client = RawClient::open(addr);
    let mut bytes = frame(OP_TEXT, b"Hel");
    bytes.extend(frame(FIN | OP_PING, b"in between"));
    bytes.extend(frame(OP_CONT, b"l"));
    bytes.extend(frame(FIN | OP_PING, &[0x5a; 125]));
    bytes.extend(frame(FIN | OP_CONT, b"o"));
    client.write(&bytes);
    let pong = client.read_server_frame();
    assert_eq!(pong.header, [0x8a, 10]);
    assert_eq!(pong.payload, b"in between");
    let pong = client.read_server_frame();
    assert_eq!(pong.header, [0x8a, 125]);
    assert_eq!(pong.payload, [0x5a; 125]);
    let echo = client.read_server_frame();
    assert_eq!(echo.header, [0x81, 0x05]);
    assert_eq!(echo.payload, b"Hello");
}

#[test]
fn ignores_unsolicited_pongs() {
    let addr = start_server();
    let mut client = RawClient::open(addr);
    let mut bytes = frame(FIN | OP_PONG, b"unsolicited");
    bytes.extend(frame(OP_BINARY, b"ab"));
    bytes.extend(frame(FIN | OP_PONG, b""));
    bytes.extend(frame(FIN | OP_CONT, b"cd"));
    client.write(&bytes);
    // The first thing back is the echo: no reply to either pong.
    let f = client.read_server_frame();
    assert_eq!(f.header, [0x82, 0x04]);
    assert_eq!(f.payload, b"abcd");
}

// ---------------------------------------------------------------------------
// Fragmentation and stream splitting
// ---------------------------------------------------------------------------

#[test]
fn reassembles_fragmented_message() {
    let addr = start_server();
    let mut client = RawClient::open(addr);
    // RFC 6455 5.7: "Hel" + "lo", here masked.
    let mut bytes = frame(OP_TEXT, b"Hel");
    bytes.extend(frame(FIN | OP_CONT, b"lo"));
    client.write(&bytes);
    let f = client.read_server_frame();
    assert_eq!(f.header, [0x81, 0x05]);
    assert_eq!(f.payload, b"Hello");

    // Binary, with empty fragments and a 16-bit-length fragment.
    let payload = binary_of_len(700);
    let mut bytes = frame(OP_BINARY, b"");
    bytes.extend(frame(OP_CONT, &payload[..1]));
    bytes.extend(frame(OP_CONT, &payload[1..600]));
    bytes.extend(frame(OP_CONT, b""));
    bytes.extend(frame(FIN | OP_CONT, &payload[600..]));
    client.write(&bytes);
    let f = client.read_server_frame();
    assert_eq!(f.header, [0x82, 0x7e, 0x02, 0xbc]);
    assert_eq!(f.payload, payload);

    // Fragments in separate writes, with the server waiting between them.
    client.write(&frame(OP_TEXT, b"sep"));
    client.write(&frame(OP_CONT, b"ara"));
    client.write(&frame(FIN | OP_CONT, b"te"));
    client.expect_echo(OP_TEXT, b"separate");

    // An empty fragmented message.
    let mut bytes = frame(OP_TEXT, b"");
    bytes.extend(frame(FIN | OP_CONT, b""));
    client.write(&bytes);
    let f = client.read_server_frame();
    assert_eq!(f.header, [0x81, 0x00]);
}

#[test]
fn echoes_frames_written_one_byte_per_write() {
    let addr = start_server();
    let mut client = RawClient::open(addr);
    let big = binary_of_len(300);
    let mut bytes = frame(OP_TEXT, "Hel€".as_bytes());
    bytes.extend(frame(FIN | OP_PING, b"ping!"));
    bytes.extend(frame(FIN | OP_CONT, "lo 𝄞".as_bytes()));
    bytes.extend(frame(FIN | OP_BINARY, &big));
    bytes.extend(frame(FIN | OP_BINARY, b""));
    bytes.extend(close_frame(1000, b"done"));
    client.write_bytewise(&bytes);
    let pong = client.read_server_frame();
    assert_eq!(
        (pong.opcode, pong.payload.as_slice()),
        (OP_PONG, &b"ping!"[..])
    );
    client.expect_echo(OP_TEXT, "Hel€lo 𝄞".as_bytes());
    client.expect_echo(OP_BINARY, &big);
    client.expect_echo(OP_BINARY, b"");
    client.expect_close(1000);
}

#[test]
fn echoes_a_64k_frame_written_in_odd_sized_pieces() {
    let addr = start_server();
    let mut client = RawClient::open(addr);
    let payload = binary_of_len(70_000);
    let bytes = frame(FIN | OP_BINARY, &payload);
    for piece in bytes.chunks(4093) {
        client.write(piece);
    }
    client.expect_echo(OP_BINARY, &payload);
}

#[test]
fn echoes_many_coalesced_frames_in_order() {
    let addr = start_server();
    let mut client = RawClient::open(addr);
    let mut bytes = Vec::new();
    let mut expected = Vec::new();
    for i in 0..300usize {
        match i % 5 {
            0 => {
                let t = text_of_len(i);
                bytes.extend(frame(FIN | OP_TEXT, t.as_bytes()));
                expected.push((OP_TEXT, t.into_bytes()));
            }
            1 | 2 => {
                let b = binary_of_len(i * 7);
                bytes.extend(frame(FIN | OP_BINARY, &b));
                expected.push((OP_BINARY, b));
            }
            3 => {
                let p = vec![i as u8; i % 126];
                bytes.extend(frame(FIN | OP_PING, &p));
                expected.push((OP_PONG, p));
            }
            _ => {
                let b = binary_of_len(i);
                bytes.extend(frame(OP_BINARY, &b[..i / 2]));
                bytes.extend(frame(FIN | OP_CONT, &b[i / 2..]));
                expected.push((OP_BINARY, b));
            }
        }
    }
    client.write(&bytes);
    for (n, (opcode, payload)) in expected.iter().enumerate() {
        let f = client.read_server_frame();
        assert_eq!(f.opcode, *opcode, "frame {n}");
        assert!(f.payload == *payload, "frame {n}: payload differs");
    }
}

// ---------------------------------------------------------------------------
// Echo sizes and header encodings
// ---------------------------------------------------------------------------

/// The header the server must send for `len` bytes of `opcode`.
fn expected_header(opcode: u8, len: usize) -> Vec<u8> {
    let mut h = vec![0x80 | opcode];
    match len {
        0..=125 => h.push(len as u8),
        126..=0xffff => {
            h.push(0x7e);
            h.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            h.push(0x7f);
            h.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    h
}

fn assert_echo_with_exact_header(client: &mut RawClient, opcode: u8, payload: &[u8]) {
    client.write(&frame(FIN | opcode, payload));
    let f = client.read_server_frame();
    assert_eq!(
        f.header,
        expected_header(opcode, payload.len()),
        "header for {} bytes",
        payload.len()
    );
    assert!(
        f.payload == payload,
        "payload of {} bytes differs",
        payload.len()
    );
}

#[test]
fn echoes_each_length_with_minimal_length_encoding() {
    let addr = start_server();
    let mut client = RawClient::open(addr);
    for len in [0usize, 1, 125, 126, 127, 65535, 65536, 100_000] {
        assert_echo_with_exact_header(&mut client, OP_TEXT, text_of_len(len).as_bytes());
        assert_echo_with_exact_header(&mut client, OP_BINARY, &binary_of_len(len));
    }
    // Spot-check the encodings themselves.
    assert_eq!(expected_header(OP_BINARY, 125), [0x82, 0x7d]);
    assert_eq!(expected_header(OP_BINARY, 126), [0x82, 0x7e, 0x00, 0x7e]);
    assert_eq!(expected_header(OP_TEXT, 65535), [0x81, 0x7e, 0xff, 0xff]);
    assert_eq!(
        expected_header(OP_TEXT, 65536),
        [0x81, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0]
    );
}

#[test]
fn echoes_16_mib_messages_at_the_default_limit() {
    let addr = start_server();
    let mut client = RawClient::open(addr);
    let len = 16 * 1024 * 1024;
    assert_echo_with_exact_header(&mut client, OP_BINARY, &binary_of_len(len));
    assert_echo_with_exact_header(&mut client, OP_TEXT, text_of_len(len).as_bytes());
    assert_eq!(
        expected_header(OP_BINARY, len),
        [0x82, 0x7f, 0, 0, 0, 0, 0x01, 0, 0, 0]
    );
}

#[test]
fn server_frames_are_never_masked() {
    let addr = start_server();
    let mut client = RawClient::open(addr);
    let mut bytes = frame(FIN | OP_TEXT, b"text");
    bytes.extend(frame(FIN | OP_BINARY, &binary_of_len(200)));
    bytes.extend(frame(FIN | OP_BINARY, &binary_of_len(70_000)));
    bytes.extend(frame(FIN | OP_PING, b"ping"));
    bytes.extend(close_frame(1000, b""));
    client.write(&bytes);
    for _ in 0..5 {
        let f = client.read_frame();
        assert_eq!(f.header[1] & 0x80, 0, "mask bit set: {:02x?}", f.header);
        assert!(!f.masked);
    }
    client.expect_tcp_closed();
}

// ---------------------------------------------------------------------------
// Isolation between clients
// ---------------------------------------------------------------------------

#[test]
fn another_client_gets_its_echo_while_one_stalls_mid_frame() {
    let addr = start_server();
    // Stalls inside a frame header.
    let mut stalled_header = RawClient::open(addr);
    stalled_header.write(&[0x82, 0xfe, 0x01]);
    // Stalls inside a payload.
    let payload = binary_of_len(5000);
    let whole = frame(FIN | OP_BINARY, &payload);
    let mut stalled_payload = RawClient::open(addr);
    stalled_payload.write(&whole[..2500]);
    // Stalls inside the handshake.
    let mut stalled_handshake = RawClient::connect(addr);
    stalled_handshake.write(b"GET / HTTP/1.1\r\nHost: a\r\n");

    let mut other = RawClient::open(addr);
    other.assert_echoes(b"not blocked");

    // The stalled ones resume where they stopped.
    stalled_payload.write(&whole[2500..]);
    stalled_payload.expect_echo(OP_BINARY, &payload);
    let rest = [0x00];
    stalled_header.write(&rest);
    stalled_header.write(&MASK);
    stalled_header.write(&[0xaa; 256]);
    stalled_header.expect_echo(OP_BINARY, &xor(&[0xaa; 256], MASK));
    drop(stalled_handshake);
}

#[test]
fn another_client_gets_its_echo_while_one_sends_garbage() {
    let addr = start_server();
    let mut garbage = RawClient::open(addr);
    let junk: Vec<u8> = (0..4096u32).map(|i| (i * 131 + 17) as u8).collect();
    garbage.write_lenient(&junk);
    let mut other = RawClient::open(addr);
    other.assert_echoes(b"unaffected");
    // The garbage client was failed with a close frame and a TCP close.
    let f = garbage.read_server_frame();
    assert_eq!(f.opcode, OP_CLOSE);
    // The first byte, 0x11, has RSV3 set.
    assert_eq!(junk[0], 0x11);
    let (code, reason) = f.close_parts().expect("a close code");
    assert_eq!(code, 1002);
    assert!(std::str::from_utf8(reason).is_ok());
    garbage.expect_tcp_closed();
    other.assert_echoes(b"still unaffected");
}

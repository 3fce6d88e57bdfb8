//! The blocking `WebSocket` and its `Sender`s over real sockets: what each
//! call puts on the wire, when fed frames go out, what happens to frames
//! that arrive after our close, and streams other than `TcpStream`.

mod common;

use common::{frame, server_and_raw_client, tcp_pair, TIMEOUT};
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::time::Duration;
#[cfg(feature = "deflate")]
use stdws::proto::extensions::permessage_deflate::{
    AgreedParams, DeflateConfig, PerMessageDeflate,
};
use stdws::Role;
use stdws::{CloseCode, DuplexStream, Error, Limits, Message, WebSocket};

/// Reads one unmasked frame: its first byte and its payload.
fn read_frame(s: &mut impl Read) -> (u8, Vec<u8>) {
    let mut head = [0u8; 2];
    s.read_exact(&mut head).unwrap();
    assert_eq!(head[1] & 0x80, 0, "a server frame is never masked");
    let len = match head[1] & 0x7f {
        126 => {
            let mut ext = [0u8; 2];
            s.read_exact(&mut ext).unwrap();
            usize::from(u16::from_be_bytes(ext))
        }
        127 => {
            let mut ext = [0u8; 8];
            s.read_exact(&mut ext).unwrap();
            u64::from_be_bytes(ext) as usize
        }
        n => usize::from(n),
    };
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload).unwrap();
    (head[0], payload)
}

/// Whether nothing arrives on `s` within a moment. A correct sender sends
/// nothing however long one waits, so this cannot fail spuriously.
fn nothing_arrives(s: &TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut byte = [0u8; 1];
    let quiet = match s.peek(&mut byte) {
        Err(e) => matches!(
            e.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ),
        Ok(_) => false,
    };
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    quiet
}

#[test]
fn accept_with_default_limits_answers_101_and_keeps_the_request() {
    let (server, mut client) = tcp_pair();
    client
        .write_all(
            b"GET /feed?x=1 HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        .unwrap();
    let ws = WebSocket::accept(server).unwrap();
    let request = ws
        .request()
        .expect("a server-side connection keeps its request");
    assert_eq!((request.path(), request.query()), ("/feed", Some("x=1")));
    assert_eq!(ws.protocol(), None);
    let mut head = [0u8; 12];
    client.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 101");
}

#[test]
fn send_ref_sends_a_borrowed_message_as_its_own_kind() {
    let (mut ws, mut client) = server_and_raw_client();
    ws.send_ref("text").unwrap();
    ws.send_ref(&[1u8, 2][..]).unwrap();
    let owned = Message::from("owned");
    ws.send_ref(&owned).unwrap();
    assert_eq!(read_frame(&mut client), (0x81, b"text".to_vec()));
    assert_eq!(read_frame(&mut client), (0x82, vec![1, 2]));
    assert_eq!(read_frame(&mut client), (0x81, b"owned".to_vec()));
}

#[test]
fn ping_sends_its_payload_and_the_answering_pong_is_not_a_message() {
    let (mut ws, mut client) = server_and_raw_client();
    ws.ping(b"are you there").unwrap();
    assert_eq!(read_frame(&mut client), (0x89, b"are you there".to_vec()));
    client.write_all(&frame(0x8a, b"are you there")).unwrap();
    client.write_all(&frame(0x81, b"yes")).unwrap();
    assert_eq!(ws.recv().unwrap(), Some(Message::from("yes")));
}

#[test]
fn the_stream_can_be_borrowed_and_taken_back() {
    let (mut ws, mut client) = server_and_raw_client();
    ws.get_mut()
        .set_write_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    assert_eq!(
        ws.get_ref().write_timeout().unwrap(),
        Some(Duration::from_secs(3))
    );
    ws.send_text("framed").unwrap();
    let mut stream = ws.into_inner();
    stream.write_all(b"raw").unwrap(); // no framing any more
    assert_eq!(read_frame(&mut client), (0x81, b"framed".to_vec()));
    let mut raw = [0u8; 3];
    client.read_exact(&mut raw).unwrap();
    assert_eq!(&raw, b"raw");
}

#[test]
fn frames_that_arrive_after_our_close_are_read_but_not_answered_or_delivered() {
    let (mut ws, mut client) = server_and_raw_client();
    ws.close(CloseCode::NORMAL, "done").unwrap();
    // The client had these in flight before it saw our close.
    client.write_all(&frame(0x81, b"late text")).unwrap();
    client.write_all(&frame(0x89, b"late ping")).unwrap();
    client
        .write_all(&frame(0x88, &1000u16.to_be_bytes()))
        .unwrap();
    assert_eq!(ws.recv().unwrap(), None, "the text is not delivered");
    drop(ws);
    let (b0, payload) = read_frame(&mut client);
    assert_eq!((b0, &payload[2..]), (0x88, &b"done"[..]));
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "no pong after our close: {rest:02x?}");
}

#[test]
fn fed_messages_wait_for_a_flush_then_go_out_in_order() {
    let (mut ws, mut client) = server_and_raw_client();
    let tx = ws.sender().unwrap();
    tx.feed("one").unwrap();
    tx.feed(&b"two"[..]).unwrap();
    assert!(nothing_arrives(&client), "fed frames went out unflushed");
    tx.flush().unwrap();
    assert_eq!(read_frame(&mut client), (0x81, b"one".to_vec()));
    assert_eq!(read_frame(&mut client), (0x82, b"two".to_vec()));
    // A send goes out at once, after whatever was fed before it.
    tx.feed("three").unwrap();
    tx.send("four").unwrap();
    assert_eq!(read_frame(&mut client), (0x81, b"three".to_vec()));
    assert_eq!(read_frame(&mut client), (0x81, b"four".to_vec()));
    // Nothing fed: a flush writes nothing.
    tx.flush().unwrap();
    ws.send_text("five").unwrap();
    assert_eq!(read_frame(&mut client), (0x81, b"five".to_vec()));
}

#[test]
fn a_reply_fed_to_the_last_message_read_goes_out_before_the_next_recv() {
    let (mut ws, mut client) = server_and_raw_client();
    let tx = ws.sender().unwrap();
    // Two messages in one write: one read brings both.
    let mut both = frame(0x81, b"first");
    both.extend(frame(0x81, b"second"));
    client.write_all(&both).unwrap();
    let msg = ws.recv_ref().unwrap().unwrap();
    tx.feed(msg).unwrap();
    assert!(
        nothing_arrives(&client),
        "a reply with more read waits to leave with the next"
    );
    let msg = ws.recv_ref().unwrap().unwrap();
    tx.feed(msg).unwrap();
    // Nothing more read: no later reply could join it, so it goes now.
    assert_eq!(read_frame(&mut client), (0x81, b"first".to_vec()));
    assert_eq!(read_frame(&mut client), (0x81, b"second".to_vec()));
    // Only the first reply: what else is fed waits for a flush.
    tx.feed("third").unwrap();
    assert!(
        nothing_arrives(&client),
        "a second reply went out unflushed"
    );
    tx.flush().unwrap();
    assert_eq!(read_frame(&mut client), (0x81, b"third".to_vec()));
}

#[test]
fn feeding_past_64_kib_writes_the_queue_without_a_flush() {
    let (mut ws, mut client) = server_and_raw_client();
    let tx = ws.sender().unwrap();
    let chunk = vec![5u8; 8 << 10];
    // Eight 8 KiB frames and their headers pass 64 KiB.
    for _ in 0..8 {
        tx.feed(&chunk[..]).unwrap();
    }
    for i in 0..8 {
        assert_eq!(read_frame(&mut client), (0x82, chunk.clone()), "frame {i}");
    }
    tx.feed(&chunk[..]).unwrap();
    assert!(nothing_arrives(&client), "a short queue waits for a flush");
    // A large frame goes out by itself, after the queue.
    let large = vec![6u8; 20 << 10];
    tx.feed(&large[..]).unwrap();
    assert_eq!(read_frame(&mut client), (0x82, chunk));
    assert_eq!(read_frame(&mut client), (0x82, large));
}

#[test]
fn a_sender_knows_when_the_close_has_gone_out() {
    let (mut ws, mut client) = server_and_raw_client();
    let tx = ws.sender().unwrap();
    assert!(!tx.is_closed());
    assert!(format!("{tx:?}").contains("close_sent: false"), "{tx:?}");
    ws.close(CloseCode::GOING_AWAY, "").unwrap();
    assert!(tx.is_closed());
    assert!(format!("{tx:?}").contains("close_sent: true"), "{tx:?}");
    assert!(matches!(tx.send_text("late"), Err(Error::Closed)));
    // A second close, from either, is a no-op.
    tx.close(CloseCode::NORMAL, "").unwrap();
    assert_eq!(
        read_frame(&mut client),
        (0x88, 1001u16.to_be_bytes().to_vec())
    );
}

#[cfg(feature = "deflate")]
#[test]
fn deflate_enabled_after_a_sender_exists_compresses_what_it_sends() {
    let (server, client) = tcp_pair();
    let config = DeflateConfig::default();
    let agreed = AgreedParams::default();
    let mut ws = WebSocket::from_raw(server, Role::Server, Limits::default(), &[]);
    let tx = ws.sender().unwrap();
    ws.enable_deflate(PerMessageDeflate::new(Role::Server, &agreed, &config));
    let mut peer = WebSocket::from_raw(client, Role::Client, Limits::default(), &[]);
    peer.enable_deflate(PerMessageDeflate::new(Role::Client, &agreed, &config));
    let text = "compressible ".repeat(100);
    tx.send_text(&text).unwrap();
    let mut head = [0u8; 2];
    assert_eq!(peer.get_ref().peek(&mut head).unwrap(), 2);
    assert_eq!(head[0], 0xc1, "FIN, RSV1 (compressed) and text");
    assert!(
        usize::from(head[1]) < 126,
        "{} bytes of text sent uncompressed",
        text.len()
    );
    assert_eq!(peer.recv().unwrap(), Some(Message::Text(text)));
}

/// A stream that, like a TLS stream writing a record at a time, takes at
/// most 16 KiB per write, and reports a write timeout it cannot shorten
/// (the default `set_write_timeout`).
#[derive(Clone)]
struct Records(Arc<TcpStream>);

impl Read for Records {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self.0).read(buf)
    }
}

impl Write for Records {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(16 << 10);
        (&*self.0).write(&buf[..n])
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl DuplexStream for Records {
    fn try_clone(&self) -> io::Result<Self> {
        Ok(self.clone())
    }
    fn shutdown(&self) -> io::Result<()> {
        self.0.shutdown(Shutdown::Both)
    }
    fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(Some(TIMEOUT))
    }
}

#[test]
fn a_stream_that_writes_in_pieces_and_keeps_its_own_timeout_still_sends_whole_frames() {
    let (server, mut client) = tcp_pair();
    let mut ws = WebSocket::from_raw(
        Records(Arc::new(server)),
        Role::Server,
        Limits::default(),
        &[],
    );
    let tx = ws.sender().unwrap();
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let reader = std::thread::spawn(move || {
        let frames = [read_frame(&mut client), read_frame(&mut client)];
        (frames, client)
    });
    tx.send_binary(&big).unwrap();
    tx.send_text("after").unwrap();
    let (frames, client) = reader.join().unwrap();
    assert_eq!(frames, [(0x82, big), (0x81, b"after".to_vec())]);
    // Shutting the sender down ends the connection for the peer.
    tx.shutdown();
    let mut rest = Vec::new();
    (&client).read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
}

#[cfg(unix)]
#[test]
fn over_a_unix_socket_a_frame_the_peer_does_not_take_times_out_and_ends_the_connection() {
    use std::os::unix::net::UnixStream;
    let (server, client) = UnixStream::pair().unwrap();
    let limit = Duration::from_millis(300);
    server.set_write_timeout(Some(limit)).unwrap();
    let mut ws = WebSocket::from_raw(server, Role::Server, Limits::default(), &[]);
    let tx = ws.sender().unwrap();
    // The client reads nothing: 8 MiB cannot fit in the socket buffers.
    let error = tx.send_binary(&vec![0u8; 8 << 20]).unwrap_err();
    let Error::Io(e) = &error else {
        panic!("{error:?}")
    };
    assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    assert!(
        e.to_string().contains("within the write timeout (300ms)"),
        "{e}"
    );
    // Part of a frame is out: nothing can follow, and the stream is shut down.
    assert!(tx.is_closed());
    assert!(matches!(tx.send_text("x"), Err(Error::Closed)));
    client.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut taken = Vec::new();
    (&client).read_to_end(&mut taken).unwrap();
    assert!(
        !taken.is_empty() && taken.len() < 8 << 20,
        "{}",
        taken.len()
    );
    // The reading side sees the end too, rather than waiting for ever.
    assert!(matches!(ws.recv(), Ok(None)));
}

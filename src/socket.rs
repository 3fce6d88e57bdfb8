//! A blocking WebSocket over any `Read + Write` stream.
//!
//! [`WebSocket`] drives the sans-IO [`Protocol`] with a stream: it reads into
//! the protocol's buffer, answers pings and closes as RFC 6455 requires, fails
//! the connection with the right close code, and writes each frame's header
//! and payload with one vectored write.

use crate::frame::{FrameHeader, OpCode, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN};
use crate::handshake::{self, HeadScanner, Request};
use crate::mask::apply_mask;
use crate::protocol::{Event, Protocol, Role};
use crate::random::OsRandom;
use crate::{CloseCode, CloseFrame, Error, Limits, Message, Status};
use std::io::{self, IoSlice, Read, Write};

/// The longest close reason: a control payload of 125 bytes less the 2-byte code.
pub const MAX_CLOSE_REASON: usize = MAX_CONTROL_PAYLOAD - 2;

/// A WebSocket connection over a blocking stream.
///
/// `recv` returns data messages; pings are answered and closes are echoed
/// inside it. After the close handshake `recv` returns `Ok(None)`.
///
/// ```no_run
/// use std::net::TcpListener;
/// use stdws::WebSocket;
/// let listener = TcpListener::bind("127.0.0.1:9001")?;
/// for stream in listener.incoming() {
///     let mut ws = WebSocket::accept(stream?)?;
///     while let Some(msg) = ws.recv()? {
///         ws.send(msg)?;
///     }
/// }
/// # Ok::<(), stdws::Error>(())
/// ```
#[derive(Debug)]
pub struct WebSocket<S> {
    stream: S,
    proto: Protocol,
    /// Whether a close frame has gone out; after it, no data may.
    close_sent: bool,
    /// The peer's close frame, once it arrived (`Some(None)`: it had no code).
    peer_close: Option<Option<CloseFrame>>,
    /// Masking keys, for the client role.
    rng: Option<OsRandom>,
}

/// Reads, retrying when a signal interrupts.
fn read_some<S: Read>(stream: &mut S, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match stream.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Writes `head` then `body`, in one vectored write when the stream takes it.
fn write_all_vectored<S: Write>(
    stream: &mut S,
    mut head: &[u8],
    mut body: &[u8],
) -> io::Result<()> {
    while !head.is_empty() {
        match stream.write_vectored(&[IoSlice::new(head), IoSlice::new(body)]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) if n < head.len() => head = &head[n..],
            Ok(n) => {
                body = &body[n - head.len()..];
                head = &[];
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    stream.write_all(body)?;
    stream.flush()
}

/// Reads an HTTP request head from `stream`.
///
/// Returns the request and the bytes that arrived after its head (the first
/// frames, for an upgrade). Errors carry the HTTP status to answer with; the
/// response is not sent here.
pub fn read_request<S: Read>(stream: &mut S, limits: &Limits) -> Result<(Request, Vec<u8>), Error> {
    let mut scanner = HeadScanner::new(limits.max_head_size);
    let mut buf = Vec::new();
    loop {
        let filled = buf.len();
        // Grow geometrically, but never read far past the limit.
        let want = filled
            .max(1024)
            .min(limits.max_head_size + 1024 - filled.min(limits.max_head_size));
        buf.resize(filled + want, 0);
        let n = read_some(stream, &mut buf[filled..])?;
        buf.truncate(filled + n);
        if n == 0 {
            return Err(Error::UnexpectedEof);
        }
        if let Status::Complete(len) = scanner.scan(&buf)? {
            let request = Request::parse(&buf[..len], limits.max_headers)?;
            buf.drain(..len);
            return Ok((request, buf));
        }
    }
}

impl<S: Read + Write> WebSocket<S> {
    /// Performs the server side of the opening handshake with default limits.
    ///
    /// A bad request is answered with its HTTP status (400, 426 or 431) and
    /// returned as [`Error::Handshake`].
    pub fn accept(stream: S) -> Result<Self, Error> {
        Self::accept_with_limits(stream, Limits::default())
    }

    /// [`WebSocket::accept`] with the given limits.
    pub fn accept_with_limits(mut stream: S, limits: Limits) -> Result<Self, Error> {
        let result = read_request(&mut stream, &limits)
            .and_then(|(req, rest)| Ok((handshake::check_upgrade(&req)?, rest)));
        match result {
            Ok((accept, rest)) => {
                write_all_vectored(&mut stream, &handshake::response_101(&accept, None), &[])?;
                Ok(Self::from_raw(stream, Role::Server, limits, &rest))
            }
            Err(Error::Handshake(e)) => {
                // Best effort: the client may already be gone.
                let _ = write_all_vectored(&mut stream, &e.response(), &[]);
                Err(Error::Handshake(e))
            }
            Err(e) => Err(e),
        }
    }

    /// Wraps a stream whose handshake is done. `received` holds bytes that
    /// were read past the handshake; they are the start of the frame stream.
    pub fn from_raw(stream: S, role: Role, limits: Limits, received: &[u8]) -> Self {
        let mut proto = Protocol::new(role, limits);
        let mut rest = received;
        while !rest.is_empty() {
            // The buffer grows to hold what was already read; nothing is lost.
            let n = proto.feed(rest);
            if n == 0 {
                break;
            }
            rest = &rest[n..];
        }
        WebSocket {
            stream,
            proto,
            close_sent: false,
            peer_close: None,
            rng: (role == Role::Client).then(OsRandom::new),
        }
    }

    /// Receives the next data message; `Ok(None)` once the connection closed cleanly.
    ///
    /// Pings are answered with pongs and a close frame is echoed here. On a
    /// protocol error the connection is failed with the matching close code
    /// (1002, 1007 or 1009) and the error returned.
    pub fn recv(&mut self) -> Result<Option<Message>, Error> {
        loop {
            match self.proto.next_event() {
                Ok(Some(Event::Message(msg))) => {
                    // Data after our close frame is read but not delivered (RFC 6455 1.4).
                    if !self.close_sent {
                        return Ok(Some(msg));
                    }
                }
                Ok(Some(Event::Ping(payload))) => {
                    if !self.close_sent {
                        self.write_frame(OpCode::Pong, &payload)?;
                    }
                }
                Ok(Some(Event::Pong(_))) => {}
                Ok(Some(Event::Close(frame))) => {
                    if !self.close_sent {
                        // Echo the status code, as RFC 6455 5.5.1 suggests.
                        let reply = frame.as_ref().map(|f| CloseFrame::new(f.code));
                        self.send_close(reply.as_ref())?;
                    }
                    self.peer_close = Some(frame);
                    return Ok(None);
                }
                Ok(None) if self.proto.is_closed() => return Ok(None),
                Ok(None) => {
                    let n = read_some(&mut self.stream, self.proto.read_buf())?;
                    if n == 0 {
                        // After our close, the peer may just hang up.
                        return if self.close_sent {
                            Ok(None)
                        } else {
                            Err(Error::UnexpectedEof)
                        };
                    }
                    self.proto.commit(n);
                }
                Err(e) => {
                    if !self.close_sent {
                        // Best effort: the peer may not be listening any more.
                        let _ = self.send_close(Some(&e.close_frame()));
                    }
                    return Err(Error::Protocol(e));
                }
            }
        }
    }

    /// Sends a message.
    ///
    /// A client masks the payload in place (no copy) before sending.
    pub fn send(&mut self, msg: impl Into<Message>) -> Result<(), Error> {
        let msg = msg.into();
        let opcode = match msg {
            Message::Text(_) => OpCode::Text,
            Message::Binary(_) => OpCode::Binary,
        };
        self.check_open()?;
        match self.rng.is_some() {
            true => self.write_masked(opcode, msg.into_bytes()),
            false => self.write_frame(opcode, msg.as_bytes()),
        }
    }

    /// Sends a text message from a borrowed string.
    pub fn send_text(&mut self, text: &str) -> Result<(), Error> {
        self.check_open()?;
        self.write_frame(OpCode::Text, text.as_bytes())
    }

    /// Sends a binary message from a borrowed slice.
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), Error> {
        self.check_open()?;
        self.write_frame(OpCode::Binary, data)
    }

    /// Sends a ping with up to 125 bytes of payload.
    pub fn ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        if payload.len() > MAX_CONTROL_PAYLOAD {
            return Err(Error::InvalidInput("ping payload over 125 bytes"));
        }
        self.check_open()?;
        self.write_frame(OpCode::Ping, payload)
    }

    /// Starts the close handshake; keep calling [`WebSocket::recv`] until it
    /// returns `Ok(None)` to receive the peer's reply. Closing twice is a no-op.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        if !code.is_sendable() {
            return Err(Error::InvalidInput("close code not allowed on the wire"));
        }
        if reason.len() > MAX_CLOSE_REASON {
            return Err(Error::InvalidInput("close reason over 123 bytes"));
        }
        if self.close_sent {
            return Ok(());
        }
        self.send_close(Some(&CloseFrame {
            code,
            reason: reason.to_owned(),
        }))
    }

    /// The peer's close frame, once one arrived; the inner `None` means it had no status code.
    pub fn peer_close_frame(&self) -> Option<Option<&CloseFrame>> {
        self.peer_close.as_ref().map(Option::as_ref)
    }

    /// Whether the connection is closed for receiving: the peer's close arrived or it failed.
    pub fn is_closed(&self) -> bool {
        self.proto.is_closed()
    }

    /// The underlying stream, for timeouts and addresses.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// The underlying stream, mutably. Reading or writing it directly breaks the framing.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// Takes the stream back, for example to shut it down.
    pub fn into_inner(self) -> S {
        self.stream
    }

    fn check_open(&self) -> Result<(), Error> {
        if self.close_sent {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    fn send_close(&mut self, frame: Option<&CloseFrame>) -> Result<(), Error> {
        self.close_sent = true;
        let mut payload = [0u8; MAX_CONTROL_PAYLOAD];
        let len = match frame {
            None => 0,
            Some(f) => {
                payload[..2].copy_from_slice(&f.code.0.to_be_bytes());
                let reason = &f.reason.as_bytes()[..f.reason.len().min(MAX_CLOSE_REASON)];
                payload[2..2 + reason.len()].copy_from_slice(reason);
                2 + reason.len()
            }
        };
        self.write_frame(OpCode::Close, &payload[..len])
    }

    /// Writes one complete frame; a client copies the payload to mask it.
    fn write_frame(&mut self, opcode: OpCode, payload: &[u8]) -> Result<(), Error> {
        if self.rng.is_some() {
            return self.write_masked(opcode, payload.to_vec());
        }
        self.write_header_and(opcode, None, payload)
    }

    /// Masks an owned payload in place and writes it as one frame.
    fn write_masked(&mut self, opcode: OpCode, mut payload: Vec<u8>) -> Result<(), Error> {
        let key = match &mut self.rng {
            Some(rng) => rng.mask_key()?,
            None => return self.write_header_and(opcode, None, &payload),
        };
        apply_mask(&mut payload, key, 0);
        self.write_header_and(opcode, Some(key), &payload)
    }

    fn write_header_and(
        &mut self,
        opcode: OpCode,
        mask: Option<[u8; 4]>,
        payload: &[u8],
    ) -> Result<(), Error> {
        let header = FrameHeader {
            fin: true,
            rsv: 0,
            opcode,
            mask,
            payload_len: payload.len() as u64,
        };
        let mut head = [0u8; MAX_HEADER_LEN];
        let n = header.encode(&mut head);
        write_all_vectored(&mut self.stream, &head[..n], payload)?;
        Ok(())
    }
}

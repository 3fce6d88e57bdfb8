//! One server connection's life without IO: the request head, a body for an
//! HTTP hook, the route or the refusal, the upgrade, the WebSocket (which is
//! the driver's), then the close and the linger. Both server modes drive it.
//!
//! The machine never decides a route: when a head is complete, [`Lifecycle::poll`]
//! hands the [`Request`] to the driver, which answers with
//! [`refuse`](Lifecycle::refuse), [`respond`](Lifecycle::respond),
//! [`read_body`](Lifecycle::read_body) (for an HTTP hook) or
//! [`upgrade`](Lifecycle::upgrade). The driver moves the bytes, whether its
//! sockets block or not:
//!
//! - whatever the step, write [`output`](Lifecycle::output) when it is not
//!   empty (in as many writes as the socket takes, each followed by
//!   [`advance_output`](Lifecycle::advance_output)), before any WebSocket bytes;
//! - [`Step::Read`]: read into [`read_buf`](Lifecycle::read_buf), then
//!   [`commit`](Lifecycle::commit) what came, or [`receive_eof`](Lifecycle::receive_eof)
//!   at the client's end; [`receive`](Lifecycle::receive) copies from a buffer
//!   of the driver's instead;
//! - [`Step::ShutdownWrite`]: shut the socket's write side down, then
//!   [`write_shut`](Lifecycle::write_shut);
//! - [`Step::Open`]: the WebSocket is the driver's; [`close`](Lifecycle::close)
//!   once it has finished, and the closing phase follows (or drop the
//!   machine meanwhile and make [`Lifecycle::closing`] then);
//! - wake at [`poll_timeout`](Lifecycle::poll_timeout) and call
//!   [`handle_timeout`](Lifecycle::handle_timeout); end at [`Step::Finished`].
//!
//! Calls that refuse the request (a head too large, the handshake deadline)
//! queue the response and return the [`HandshakeError`] for the driver to report.
//!
//! ```
//! use stdws::http::serve::{Lifecycle, Settings, Step};
//! use stdws::http::Response;
//! use stdws::Instant;
//!
//! let now = Instant::now(); // a driver passes the time in; the machine never reads it
//! let mut life = Lifecycle::new(Settings::default(), now);
//! life.receive(b"GET /hello HTTP/1.1\r\nHost: a\r\n\r\n")?;
//! let Step::Route(request) = life.poll() else { unreachable!() };
//! let response = Response::text(200, format!("hi from {}", request.path()));
//! life.respond(&response);
//! // What the socket took of it (here: all of it).
//! let written = life.output().len();
//! assert!(life.output().starts_with(b"HTTP/1.1 200 OK\r\n"));
//! life.advance_output(written);
//! assert_eq!(life.poll(), Step::ShutdownWrite);
//! life.write_shut(now); // after shutdown(Write)
//! assert_eq!(life.poll(), Step::Read); // what the client still sends is discarded
//! life.receive(b"late bytes")?;
//! life.receive_eof()?; // its end, or the linger deadline (poll_timeout)
//! assert_eq!(life.poll(), Step::Finished);
//! # Ok::<(), Box<dyn core::error::Error>>(())
//! ```

use super::head::{HandshakeError, HeadScanner, Request, Response};
use crate::instant::Instant;
use crate::limits::Limits;
use crate::status::Status;
use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;

/// How long a closing connection waits for the client's end (RFC 6455 7.1.1).
pub const LINGER: Duration = Duration::from_secs(2);

/// Sent before a body the client waits to be asked for (RFC 9110 10.1.1).
const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";
/// A head is read in pieces of 1 KiB growing to 16 KiB, at most this far
/// past its limit (the first frames may come with it).
const HEAD_SLACK: usize = 1024;
/// A body is zeroed and read in pieces at most this large, not whole at once.
const BODY_PIECE: usize = 64 << 10;
/// Room for what a closing client still sends, which is discarded: inline,
/// so that lingering allocates nothing (the client sends little by then).
const SINK: usize = 128;
/// The most a closing client may make us discard before we stop waiting
/// for its end.
const MAX_DISCARD: usize = 1 << 20;

/// The bounds and deadlines of a [`Lifecycle`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Largest request head in bytes; over it, `431`.
    pub max_head_size: usize,
    /// Most header lines; over it, `431`.
    pub max_headers: usize,
    /// Largest body read for an HTTP hook; over it, `413` before any is read.
    pub max_body_size: usize,
    /// Time from the start to a complete head and body; over it, `408`.
    pub handshake_timeout: Duration,
    /// How long the closing phase waits for the client's end.
    pub linger: Duration,
}

impl Settings {
    /// The head limits of `limits`, with the body limit and handshake timeout given.
    pub fn new(limits: &Limits, max_body_size: usize, handshake_timeout: Duration) -> Self {
        Settings {
            max_head_size: limits.max_head_size,
            max_headers: limits.max_headers,
            max_body_size,
            handshake_timeout,
            linger: LINGER,
        }
    }
}

impl Default for Settings {
    /// [`Limits::default`]'s head limits, 64 KiB bodies, 10 s, [`LINGER`]: the server's defaults.
    fn default() -> Self {
        Settings::new(&Limits::default(), 64 << 10, Duration::from_secs(10))
    }
}

/// What the driver does next; see the [module](self) documentation.
#[derive(Debug, PartialEq, Eq)]
pub enum Step<'a> {
    /// Bytes from the client are wanted (the head, a body, or what a closing
    /// client still sends).
    Read,
    /// Only the output is left to write.
    Write,
    /// The head is complete: answer with `refuse`, `respond`, `read_body` or `upgrade`.
    Route(&'a Request),
    /// The body is complete (in [`Request::body`]): answer with `respond`.
    Answer(&'a Request),
    /// The `101` is out: the WebSocket is the driver's until it calls `close`.
    Open,
    /// Everything is written: shut the write side down, then call `write_shut`.
    ShutdownWrite,
    /// Nothing is left to do: close the socket.
    Finished,
}

/// The client's end came before its request was complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Truncated;

impl fmt::Display for Truncated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the client closed before its request was complete")
    }
}

impl core::error::Error for Truncated {}

/// Where a connection is in its life.
#[derive(Debug)]
enum State {
    /// Reading the request head: `buf[..filled]` has arrived, scanned once.
    Head {
        buf: Vec<u8>,
        filled: usize,
        scanner: HeadScanner,
        deadline: Option<Instant>,
    },
    /// The head is complete; `rest` came after it. The driver decides.
    /// (Deadlines are `None` when too far off to be represented: never.)
    Route {
        request: Request,
        rest: Vec<u8>,
        deadline: Option<Instant>,
    },
    /// Reading `len` bytes of body: `body[..filled]` has arrived.
    Body {
        request: Request,
        body: Vec<u8>,
        filled: usize,
        len: usize,
        deadline: Option<Instant>,
    },
    /// The body is complete; the driver answers.
    Answer {
        request: Request,
    },
    /// The `101` goes out, then the WebSocket is the driver's.
    Upgraded,
    /// The last bytes go out; `peer_done` once the client's end came.
    Sending {
        peer_done: bool,
    },
    /// The write side is shut: what the client sends is discarded until its
    /// end, `until`, or [`MAX_DISCARD`] bytes (`left` to go).
    Lingering {
        until: Option<Instant>,
        left: usize,
        sink: [u8; SINK],
    },
    Finished,
}

/// One server connection from the request head to the end of the linger.
#[derive(Debug)]
pub struct Lifecycle {
    state: State,
    /// Bytes to send; `out[written..]` is still to go.
    out: Vec<u8>,
    written: usize,
    settings: Settings,
}

impl Lifecycle {
    /// A connection accepted at `now`, waiting for its request head.
    pub fn new(settings: Settings, now: Instant) -> Self {
        Lifecycle {
            state: State::Head {
                buf: Vec::new(),
                filled: 0,
                scanner: HeadScanner::new(settings.max_head_size),
                deadline: now.checked_add(settings.handshake_timeout),
            },
            out: Vec::new(),
            written: 0,
            settings,
        }
    }

    /// A connection whose WebSocket has finished, in the closing phase
    /// [`close`](Self::close) begins: for a driver that keeps no lifecycle
    /// while the WebSocket is open (an idle connection then holds none).
    pub fn closing(settings: Settings) -> Self {
        Lifecycle {
            state: State::Sending { peer_done: false },
            out: Vec::new(),
            written: 0,
            settings,
        }
    }

    /// What to do next.
    pub fn poll(&self) -> Step<'_> {
        let pending = !self.output().is_empty();
        match &self.state {
            State::Head { .. } | State::Body { .. } | State::Lingering { .. } => Step::Read,
            State::Route { request, .. } => Step::Route(request),
            State::Answer { request } => Step::Answer(request),
            State::Upgraded | State::Sending { .. } if pending => Step::Write,
            State::Upgraded => Step::Open,
            State::Sending { .. } => Step::ShutdownWrite,
            State::Finished => Step::Finished,
        }
    }

    /// Whether nothing is left to do.
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Finished)
    }

    // ----- bytes in -------------------------------------------------------

    /// Room to read the client's bytes into; then [`commit`](Self::commit).
    /// Empty unless [`poll`](Self::poll) says [`Step::Read`].
    pub fn read_buf(&mut self) -> &mut [u8] {
        match &mut self.state {
            State::Head { buf, filled, .. } => {
                if buf.len() == *filled {
                    let room = (self.settings.max_head_size + HEAD_SLACK).saturating_sub(*filled);
                    let piece = (*filled).clamp(1024, 16 << 10).min(room).max(1);
                    buf.resize(*filled + piece, 0);
                }
                &mut buf[*filled..]
            }
            State::Body {
                body, filled, len, ..
            } => {
                if body.len() == *filled {
                    body.resize((*filled + BODY_PIECE).min(*len), 0);
                }
                &mut body[*filled..]
            }
            State::Lingering { sink, .. } => sink,
            _ => &mut [],
        }
    }

    /// Takes the `n` bytes just read into [`read_buf`](Self::read_buf).
    ///
    /// A refusal (a head too large, too many headers, a malformed head) is
    /// queued as the response and returned for the driver to report.
    pub fn commit(&mut self, n: usize) -> Result<(), HandshakeError> {
        match &mut self.state {
            State::Head {
                buf,
                filled,
                scanner,
                ..
            } => {
                *filled = (*filled + n).min(buf.len());
                let max_headers = self.settings.max_headers;
                let head = scanner
                    .scan(&buf[..*filled])
                    .and_then(|status| match status {
                        Status::Partial => Ok(None),
                        Status::Complete(len) => Request::parse(&buf[..len], max_headers)
                            .map(|request| Some((request, len))),
                    });
                match head {
                    Ok(None) => Ok(()),
                    Ok(Some((request, len))) => {
                        self.head_complete(request, len);
                        Ok(())
                    }
                    Err(e) => self.refused(e),
                }
            }
            State::Body {
                body, filled, len, ..
            } => {
                *filled = (*filled + n).min(body.len());
                if filled == len {
                    self.body_complete();
                }
                Ok(())
            }
            State::Lingering { .. } => {
                self.discard(n);
                Ok(())
            }
            _ => Ok(()), // nothing was lent
        }
    }

    /// Counts `n` bytes discarded while lingering; past the bound, the end.
    fn discard(&mut self, n: usize) {
        if let State::Lingering { left, .. } = &mut self.state {
            match left.checked_sub(n) {
                Some(rest) if rest > 0 => *left = rest,
                _ => self.state = State::Finished,
            }
        }
    }

    /// Copies in bytes the driver read into its own buffer; returns how many
    /// were taken (fewer once no more are wanted: bytes past a body are not).
    pub fn receive(&mut self, mut bytes: &[u8]) -> Result<usize, HandshakeError> {
        if matches!(self.state, State::Lingering { .. }) {
            self.discard(bytes.len());
            return Ok(bytes.len());
        }
        let total = bytes.len();
        while !bytes.is_empty() {
            let room = self.read_buf();
            if room.is_empty() {
                break;
            }
            let n = room.len().min(bytes.len());
            room[..n].copy_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            self.commit(n)?;
        }
        Ok(total - bytes.len())
    }

    /// The client's end of the stream (a read returned 0). Before its request
    /// was complete that is an error to report; nothing is sent back.
    pub fn receive_eof(&mut self) -> Result<(), Truncated> {
        match self.state {
            State::Head { .. } | State::Body { .. } => {
                self.state = State::Sending { peer_done: true };
                Err(Truncated)
            }
            State::Route { .. } | State::Answer { .. } | State::Sending { .. } => {
                self.state = State::Sending { peer_done: true };
                Ok(())
            }
            State::Lingering { .. } => {
                self.state = State::Finished;
                Ok(())
            }
            State::Upgraded | State::Finished => Ok(()), // the WebSocket's, or too late
        }
    }

    /// The head (`len` bytes) is `request`: the driver decides; what came
    /// after it is kept for a body or the WebSocket.
    fn head_complete(&mut self, request: Request, len: usize) {
        self.state = match core::mem::replace(&mut self.state, State::Finished) {
            State::Head {
                mut buf,
                filled,
                deadline,
                ..
            } => {
                buf.truncate(filled);
                State::Route {
                    request,
                    rest: buf.split_off(len),
                    deadline,
                }
            }
            other => other,
        };
    }

    fn body_complete(&mut self) {
        self.state = match core::mem::replace(&mut self.state, State::Finished) {
            State::Body {
                mut request, body, ..
            } => {
                request.set_body(body);
                State::Answer { request }
            }
            other => other,
        };
    }

    // ----- the driver's decisions -----------------------------------------

    /// Refuses the request with `error`'s status, then closes.
    pub fn refuse(&mut self, error: &HandshakeError) {
        self.respond(&error.response());
    }

    /// Answers with `response`, then closes. Does nothing once upgraded or closing.
    pub fn respond(&mut self, response: &Response) {
        if self.is_answerable() {
            self.queue(response.to_bytes());
            self.state = State::Sending { peer_done: false };
        }
    }

    /// Reads the body an HTTP hook is to get (after [`Step::Route`]).
    ///
    /// Refused before any of it is read when it is too large (`413`) or
    /// has no length (`411`); `100 Continue` is sent when the client waits
    /// for it and the body has not all arrived. Then [`Step::Answer`]
    /// comes once the body is complete.
    pub fn read_body(&mut self) -> Result<(), HandshakeError> {
        let State::Route { request, rest, .. } = &self.state else {
            return Ok(());
        };
        let limit = self.settings.max_body_size;
        let len = match request.content_length() {
            Ok(len) if len > limit => return self.refused(HandshakeError::BodyTooLarge { limit }),
            Ok(len) => len,
            Err(e) => return self.refused(e),
        };
        if rest.len() < len && request.headers().has_token("expect", "100-continue") {
            self.queue(CONTINUE.to_vec());
        }
        self.state = match core::mem::replace(&mut self.state, State::Finished) {
            State::Route {
                request,
                mut rest,
                deadline,
            } => {
                rest.truncate(len); // bytes past the body are not read
                State::Body {
                    request,
                    filled: rest.len(),
                    body: rest,
                    len,
                    deadline,
                }
            }
            other => other,
        };
        if matches!(self.state, State::Body { filled, len, .. } if filled == len) {
            self.body_complete();
        }
        Ok(())
    }

    /// Accepts the upgrade (after [`Step::Route`]): `response` is the `101`.
    ///
    /// Returns the request and the bytes that came after its head (the
    /// start of the WebSocket's stream); `None` if no head awaits a decision.
    pub fn upgrade(&mut self, response: Vec<u8>) -> Option<(Request, Vec<u8>)> {
        match core::mem::replace(&mut self.state, State::Upgraded) {
            State::Route { request, rest, .. } => {
                self.queue(response);
                Some((request, rest))
            }
            other => {
                self.state = other;
                None
            }
        }
    }

    /// Ends the connection: what is queued still goes out, then the closing
    /// phase. For the driver once the WebSocket has finished, or when it
    /// gives up on the connection.
    pub fn close(&mut self) {
        if self.is_answerable() || matches!(self.state, State::Upgraded) {
            self.state = State::Sending { peer_done: false };
        }
    }

    /// Whether no response has been chosen yet.
    fn is_answerable(&self) -> bool {
        matches!(
            self.state,
            State::Head { .. } | State::Route { .. } | State::Body { .. } | State::Answer { .. }
        )
    }

    /// Queues the refusal `error` and hands it back.
    fn refused(&mut self, error: HandshakeError) -> Result<(), HandshakeError> {
        self.refuse(&error);
        Err(error)
    }

    // ----- bytes out ------------------------------------------------------

    /// What is still to be written.
    pub fn output(&self) -> &[u8] {
        &self.out[self.written..]
    }

    /// Drops the first `n` bytes of [`output`](Self::output), which were written.
    pub fn advance_output(&mut self, n: usize) {
        self.written = (self.written + n).min(self.out.len());
        if self.written == self.out.len() {
            // Freed, not kept: a 101's buffer would stay for the WebSocket's life.
            self.out = Vec::new();
            self.written = 0;
        }
    }

    /// A write failed: nothing more can be sent, and the closing phase follows.
    pub fn write_failed(&mut self) {
        self.out.clear();
        self.written = 0;
        self.close();
    }

    /// The write side was shut down at `now` (after [`Step::ShutdownWrite`]):
    /// the linger begins, unless the client's end already came.
    pub fn write_shut(&mut self, now: Instant) {
        if let State::Sending { peer_done } = self.state {
            self.state = match peer_done {
                true => State::Finished,
                false => State::Lingering {
                    until: now.checked_add(self.settings.linger),
                    left: MAX_DISCARD,
                    sink: [0; SINK],
                },
            };
        }
    }

    fn queue(&mut self, bytes: Vec<u8>) {
        if self.out.is_empty() {
            self.out = bytes;
            self.written = 0;
        } else {
            self.out.extend_from_slice(&bytes);
        }
    }

    // ----- time -----------------------------------------------------------

    /// The next deadline: the handshake's while the head or body is read,
    /// the linger's while closing.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.state {
            State::Head { deadline, .. } | State::Body { deadline, .. } => *deadline,
            State::Lingering { until, .. } => *until,
            _ => None,
        }
    }

    /// Acts on the deadlines passed by `now`: a head or body not complete by
    /// the handshake deadline is refused with `408` (returned for the driver
    /// to report); a linger past its end is finished.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), HandshakeError> {
        match self.poll_timeout() {
            Some(deadline) if now >= deadline => match self.state {
                State::Lingering { .. } => {
                    self.state = State::Finished;
                    Ok(())
                }
                _ => self.refused(HandshakeError::Timeout),
            },
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests;

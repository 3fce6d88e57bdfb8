//! A thread per client: the accept loop, and each connection's thread
//! from the request head to the linger after the close.

use super::config::Handler;
use super::lifecycle::{route, Refusal, Route};
use super::net::{Listener, Stream};
use super::registry::{deregister, opened, refuse_busy, register, respond, Ctx, State};
use crate::blocking::io::{is_timeout, read_request, write_all_vectored};
use crate::blocking::WebSocket;
use crate::error::Error;
use crate::frame::Role;
use crate::http::{HandshakeError, Request};
use crate::message::CloseCode;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// Accepts until shutdown, each client in a new thread.
pub(crate) fn run(ctx: Arc<Ctx<Box<Handler>>>, listener: Listener) -> io::Result<()> {
    let state = &ctx.state;
    loop {
        let accepted = listener.accept();
        if state.stopping.load(Ordering::Acquire) {
            return Ok(());
        }
        let stream = match accepted {
            Ok(stream) => stream,
            Err(e) => {
                ctx.report(&state.addr, &Error::Io(e));
                // Out of descriptors, say: back off rather than spin.
                thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let Some(id) = register(&ctx, &stream) else {
            refuse_busy(&ctx, stream);
            continue;
        };
        let thread_ctx = ctx.clone();
        let spawned = thread::Builder::new()
            .name(ctx.config.thread_name.clone())
            .stack_size(ctx.config.stack_size)
            .spawn(move || serve(thread_ctx, id, stream));
        if let Err(e) = spawned {
            deregister(state, id);
            ctx.report(&state.addr, &Error::Io(e));
        }
    }
}

/// Frees the connection's slot when its thread ends, however it ends.
struct Slot<'a> {
    state: &'a State,
    id: u64,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        deregister(self.state, self.id);
    }
}

/// A connection thread: serve, report, close.
fn serve(ctx: Arc<Ctx<Box<Handler>>>, id: u64, stream: Stream) {
    let _slot = Slot {
        state: &ctx.state,
        id,
    };
    if let Err(e) = serve_connection(&ctx, id, &stream) {
        ctx.report(stream.peer_addr(), &e);
    }
    linger_close(&stream);
}

/// Closes the way RFC 6455 7.1.1 and HTTP want: half-close, then read what
/// the client still sends until it closes too (briefly), so that our last
/// bytes are not destroyed by a reset.
fn linger_close(stream: &Stream) {
    const LINGER: Duration = Duration::from_secs(2);
    let _ = stream.shutdown(Shutdown::Write);
    let deadline = Instant::now() + LINGER;
    let mut buf = [0u8; 2048];
    let mut reader = stream.clone();
    for _ in 0..512 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match reader.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// Reads with one deadline over all reads: the handshake timeout.
struct DeadlineReader {
    stream: Stream,
    deadline: Instant,
}

impl Read for DeadlineReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        self.stream.set_read_timeout(Some(left))?;
        self.stream.read(buf)
    }
}

/// Sends the refusal for a handshake error and hands the error back.
fn refuse(stream: &Stream, error: HandshakeError) -> Error {
    respond(stream, &error.response());
    Error::Handshake(error)
}

fn serve_connection(ctx: &Ctx<Box<Handler>>, id: u64, stream: &Stream) -> Result<(), Error> {
    let Some(mut ws) = handshake(ctx, stream)? else {
        return Ok(()); // a plain HTTP request or a refusal, answered
    };
    let sender = ws.sender()?;
    opened(&ctx.state, id, &sender);
    let result = (ctx.handler)(ws);
    // A handler that returns without closing still ends the connection cleanly.
    let _ = sender.close(CloseCode::NORMAL, "");
    result
}

/// Reads the request and answers it: `Some` WebSocket once upgraded, `None`
/// once a plain HTTP request or a refusal was answered.
///
/// Not inlined: its temporaries (an extension's state is kilobytes) stay
/// off the stack while the handler runs, which is a page of memory per
/// connection thread.
#[inline(never)]
fn handshake(ctx: &Ctx<Box<Handler>>, stream: &Stream) -> Result<Option<WebSocket<Stream>>, Error> {
    let config = &ctx.config;
    stream.set_nodelay()?;
    stream.set_write_timeout(config.write_timeout)?;
    let mut reader = DeadlineReader {
        stream: stream.clone(),
        deadline: Instant::now() + config.handshake_timeout,
    };
    let (mut request, rest) = match read_request(&mut reader, &config.limits) {
        Ok(parsed) => parsed,
        Err(Error::Handshake(e)) => return Err(refuse(stream, e)),
        Err(Error::Io(e)) if is_timeout(&e) => return Err(refuse(stream, HandshakeError::Timeout)),
        Err(e) => return Err(e),
    };
    let upgrade = match route(ctx, &request, stream.is_unix()) {
        Ok(Route::Upgrade(upgrade)) => upgrade,
        Ok(Route::Http(on_http)) => {
            let body = match read_body(&mut reader, &request, rest, config.max_body_size) {
                Ok(body) => body,
                Err(Error::Handshake(e)) => return Err(refuse(stream, e)),
                Err(Error::Io(e)) if is_timeout(&e) => {
                    return Err(refuse(stream, HandshakeError::Timeout))
                }
                Err(e) => return Err(e),
            };
            request.set_body(body);
            respond(stream, &on_http(&request));
            return Ok(None);
        }
        Err(Refusal::Error(e)) => return Err(refuse(stream, e)),
        Err(Refusal::Hook(response)) => {
            respond(stream, &response);
            return Ok(None);
        }
    };
    write_all_vectored(&mut stream.clone(), &upgrade.response, &[])?;
    let mut ws = WebSocket::from_raw(stream.clone(), Role::Server, config.limits, &rest);
    if let Some(deflate) = upgrade.deflate {
        ws.enable_deflate_boxed(deflate);
    }
    let tick = ws.set_timeouts(config.read_timeout, config.keepalive);
    stream.set_read_timeout(tick)?;
    ws.set_handshake(Some(request), upgrade.protocol);
    Ok(Some(ws))
}

/// Reads a plain request's body: `rest` (bytes that came with the head), then
/// the remainder of `Content-Length`.
fn read_body(
    reader: &mut DeadlineReader,
    request: &Request,
    mut rest: Vec<u8>,
    limit: usize,
) -> Result<Vec<u8>, Error> {
    let len = request.content_length()?;
    if len > limit {
        return Err(HandshakeError::BodyTooLarge { limit }.into());
    }
    if rest.len() < len && request.headers().has_token("expect", "100-continue") {
        reader.stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    let have = rest.len().min(len);
    rest.resize(len, 0);
    reader
        .read_exact(&mut rest[have..])
        .map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => Error::UnexpectedEof,
            _ => Error::Io(e),
        })?;
    Ok(rest)
}

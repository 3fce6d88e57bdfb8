//! A thread per client: the accept loop, and each connection's thread
//! driving its [`Lifecycle`] with blocking reads and writes, the
//! WebSocket in between.

use super::config::Handler;
use super::lifecycle::{guard, route, settings, Refusal, Route, Upgrade};
use super::net::{Listener, Stream};
use super::registry::{deregister, opened, refuse_busy, register, Ctx, State};
use super::tls::Watch;
use crate::blocking::io::{is_timeout, read_some};
use crate::blocking::WebSocket;
use crate::error::Error;
use crate::http::serve::{Lifecycle, Step};
use crate::http::Response;
use crate::message::CloseCode;
use crate::Instant;
use std::io::{self, Write};
use std::net::Shutdown;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

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

/// A connection thread: the lifecycle from the request head to the end of
/// the linger; errors are reported as they end the request or the WebSocket.
fn serve(ctx: Arc<Ctx<Box<Handler>>>, id: u64, stream: Stream) {
    let _slot = Slot {
        state: &ctx.state,
        id,
    };
    let mut life = Lifecycle::new(settings(&ctx.config), Instant::now());
    let (watch, stream) = match &ctx.tls {
        None => (None, stream),
        Some(tls) => {
            let config = &ctx.config;
            match tls.wrap(&stream, config.handshake_timeout, config.max_connections) {
                (watch, Ok(wrapped)) => (Some(watch), wrapped),
                (watch, Err(e)) => {
                    ctx.report(stream.peer_addr(), &watch.explain(e));
                    return;
                }
            }
        }
    };
    let result = serve_connection(&ctx, id, &stream, &mut life, watch.as_ref());
    let result = match &watch {
        Some(watch) => result.map_err(|e| watch.explain(e)),
        None => result,
    };
    // The watch stays to the end: a refusal mid-TLS-handshake cannot be
    // written, and the deadline ends it.
    life.close();
    // The answer goes out before the report, then the linger.
    finish(&mut life, &stream, false);
    if let Err(e) = result {
        ctx.report(stream.peer_addr(), &e);
    }
    finish(&mut life, &stream, true);
}

fn serve_connection(
    ctx: &Ctx<Box<Handler>>,
    id: u64,
    stream: &Stream,
    life: &mut Lifecycle,
    watch: Option<&Watch>,
) -> Result<(), Error> {
    let Some(mut ws) = handshake(ctx, stream, life, watch)? else {
        return Ok(()); // a plain HTTP request or a refusal, answered
    };
    let sender = ws.sender()?;
    opened(&ctx.state, id, &sender);
    // A panic is caught and becomes this client's error, reported as the
    // event loop reports one: the thread still closes, lingers and frees
    // the slot, and no other client notices.
    let result = guard(|| (ctx.handler)(ws)).and_then(|returned| returned);
    // However the handler ends, the connection is closed if it is not yet:
    // with 1011 after an error or a panic, as the event loop does; with
    // 1000 after `Ok`, or after an error that only says the peer went away
    // (a read's end of stream passed on by `?`: the server did not fail).
    // A close already sent (the handler's, or the connection's own on a
    // protocol error or a timeout) makes this a no-op.
    let code = match &result {
        Err(e) if !e.is_disconnect() => CloseCode::INTERNAL_ERROR,
        _ => CloseCode::NORMAL,
    };
    let _ = sender.close(code, "");
    if let Some(code) = sender.close_code() {
        ctx.state.counters.close_sent(code);
    }
    result
}

/// Reads the request and answers it: `Some` WebSocket once upgraded, `None`
/// once a plain HTTP request or a refusal is answered (the answer is left
/// in `life`'s output, for [`finish`]).
///
/// Not inlined: its temporaries (an extension's state is kilobytes) stay
/// off the stack while the handler runs, which is a page of memory per
/// connection thread.
#[inline(never)]
fn handshake(
    ctx: &Ctx<Box<Handler>>,
    stream: &Stream,
    life: &mut Lifecycle,
    watch: Option<&Watch>,
) -> Result<Option<WebSocket<Stream>>, Error> {
    let config = &ctx.config;
    stream.set_nodelay()?;
    stream.set_write_timeout(config.write_timeout)?;
    let mut on_http = None;
    loop {
        write_output(life, stream)?; // `100 Continue`
        match life.poll() {
            Step::Read => read(life, stream)?,
            Step::Route(request) => match guard(|| {
                if let Some(watch) = watch {
                    watch.done(); // the head is complete, TLS and all
                }
                route(ctx, request, stream.is_unix())
            }) {
                Ok(Ok(Route::Http(hook))) => {
                    on_http = Some(hook);
                    life.read_body()?;
                }
                Ok(Ok(Route::Upgrade(upgrade))) => return open(ctx, stream, life, *upgrade),
                Ok(Err(Refusal::Error(e))) => {
                    life.refuse(&e);
                    return Err(e.into());
                }
                Ok(Err(Refusal::Hook(response))) => {
                    ctx.state.counters.refused(response.status_code());
                    life.respond(&response);
                    return Ok(None);
                }
                Err(panicked) => return Err(answer_500(ctx, life, panicked)),
            },
            Step::Answer(request) => {
                let Some(hook) = on_http else {
                    return Ok(None); // only a hook's route reads a body
                };
                match guard(|| hook(request)) {
                    Ok(response) => life.respond(&response),
                    Err(panicked) => return Err(answer_500(ctx, life, panicked)),
                }
                return Ok(None);
            }
            Step::Write | Step::Open | Step::ShutdownWrite | Step::Finished => return Ok(None),
        }
    }
}

/// A hook panicked: the client gets `500`, and the panic is reported.
fn answer_500(ctx: &Ctx<Box<Handler>>, life: &mut Lifecycle, panicked: Error) -> Error {
    life.respond(&Response::status(500));
    ctx.state.counters.refused(500);
    panicked
}

/// Sends the `101` and hands the connection to a [`WebSocket`], with the
/// bytes that came after the head.
fn open(
    ctx: &Ctx<Box<Handler>>,
    stream: &Stream,
    life: &mut Lifecycle,
    upgrade: Upgrade,
) -> Result<Option<WebSocket<Stream>>, Error> {
    let config = &ctx.config;
    let Some((request, rest)) = life.upgrade(upgrade.response) else {
        return Ok(None);
    };
    write_output(life, stream)?;
    let mut ws = WebSocket::server(stream.clone(), config.limits, &rest);
    ws.count_into(ctx.state.counters.clone());
    #[cfg(feature = "deflate")]
    if let Some(deflate) = upgrade.deflate {
        ws.enable_deflate_boxed(deflate);
    }
    let tick = ws.set_server_timeouts(config.read_timeout, config.keepalive, config.close_timeout);
    stream.set_read_timeout(tick)?;
    ws.set_handshake(Some(request), upgrade.protocol);
    Ok(Some(ws))
}

/// The closing phase: the last bytes out and the write side shut down,
/// then (with `linger`) what the client still sends discarded until its end
/// or the linger's (RFC 6455 7.1.1: the server closes first, and its last
/// bytes are not destroyed by a reset). Errors here end it unreported: the
/// exchange is over.
fn finish(life: &mut Lifecycle, stream: &Stream, linger: bool) {
    loop {
        if write_output(life, stream).is_err() {
            life.write_failed();
        }
        match life.poll() {
            Step::ShutdownWrite => {
                let _ = stream.shutdown(Shutdown::Write);
                life.write_shut(Instant::now());
            }
            Step::Read if linger => {
                if read(life, stream).is_err() {
                    return;
                }
            }
            _ => return,
        }
    }
}

/// Writes what `life` has queued, however many writes it takes.
fn write_output(life: &mut Lifecycle, mut stream: &Stream) -> io::Result<()> {
    while !life.output().is_empty() {
        match stream.write(life.output()) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => life.advance_output(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// One read into `life`, waiting no later than its deadline; a refusal
/// (`408` at the deadline, `431`, ...) comes back as the error to report.
fn read(life: &mut Lifecycle, mut stream: &Stream) -> Result<(), Error> {
    if let Some(deadline) = life.poll_timeout() {
        let now = Instant::now();
        let left = deadline.saturating_duration_since(now);
        if left.is_zero() {
            return Ok(life.handle_timeout(now)?);
        }
        stream.set_read_timeout(Some(left))?;
    }
    match read_some(&mut stream, life.read_buf()) {
        Ok(0) => life.receive_eof().map_err(|_| Error::UnexpectedEof),
        Ok(n) => Ok(life.commit(n)?),
        Err(e) if is_timeout(&e) => Ok(life.handle_timeout(Instant::now())?),
        Err(e) => Err(e.into()),
    }
}

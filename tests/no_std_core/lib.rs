//! What a device without an OS does with stdws: its TCP stack hands it
//! bytes and a millisecond tick; it hands back the bytes to send. The HTTP
//! upgrade is [`Lifecycle`], the WebSocket is [`Connection`], and nothing
//! here names a std type: no sockets, no threads, no clock.
//!
//! This one echoes text and binary messages and answers a plain `GET /`
//! with a line of text. It is the README's no_std example.
#![no_std]

extern crate alloc;

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::time::Duration;
use stdws::http::serve::{Lifecycle, Settings, Step};
use stdws::http::{check_upgrade, response_101, Response};
use stdws::proto::{Connection, Event, Keepalive, Timeouts};
use stdws::{Instant, Limits};

/// One client's connection on the device.
pub struct Client {
    state: State,
}

enum State {
    /// Before the upgrade, and an HTTP exchange's closing phase.
    Http(Box<Lifecycle>),
    /// After the 101: the WebSocket.
    Open(Box<Connection>),
}

/// What [`Client::receive`] and [`Client::tick`] report.
#[derive(Debug, PartialEq, Eq)]
pub enum Status {
    /// Keep the TCP connection.
    Open,
    /// Shut the TCP connection's sending side, then keep reading.
    ShutdownWrite,
    /// Close the TCP connection: this client is done.
    Close,
}

impl Client {
    /// A client the TCP stack has just accepted, `now` on the device's clock.
    pub fn new(now: Instant) -> Client {
        Client {
            state: State::Http(Box::new(Lifecycle::new(Settings::default(), now))),
        }
    }

    /// Bytes from the TCP stack; what to send goes into `out`.
    pub fn receive(&mut self, mut bytes: &[u8], now: Instant, out: &mut Vec<u8>) -> Status {
        loop {
            match &mut self.state {
                State::Http(life) => {
                    if !bytes.is_empty() {
                        match life.receive(bytes) {
                            Ok(n) => bytes = &bytes[n..],
                            Err(_) => bytes = &[], // the refusal is queued
                        }
                    }
                    match self.http_step(now, out) {
                        Some(status) if bytes.is_empty() || status != Status::Open => {
                            return status
                        }
                        _ => {}
                    }
                }
                State::Open(conn) => {
                    conn.heard(now);
                    while !bytes.is_empty() {
                        let n = conn.receive(bytes);
                        bytes = &bytes[n..];
                        if n == 0 {
                            break;
                        }
                    }
                    return Self::serve(conn, out);
                }
            }
        }
    }

    /// The device's tick: keepalive pings, the close timeout, the handshake
    /// deadline. Call it at [`Client::next_deadline`].
    pub fn tick(&mut self, now: Instant, out: &mut Vec<u8>) -> Status {
        match &mut self.state {
            State::Http(life) => {
                let _ = life.handle_timeout(now); // a 408 is queued if it was late
                self.http_step(now, out).unwrap_or(Status::Open)
            }
            State::Open(conn) => {
                conn.handle_timeout(now);
                Self::serve(conn, out)
            }
        }
    }

    /// When [`Client::tick`] next has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        match &self.state {
            State::Http(life) => life.poll_timeout(),
            State::Open(conn) => conn.poll_timeout(),
        }
    }

    /// Runs the HTTP lifecycle as far as it goes without more bytes.
    fn http_step(&mut self, now: Instant, out: &mut Vec<u8>) -> Option<Status> {
        let State::Http(life) = &mut self.state else {
            return None;
        };
        loop {
            out.extend_from_slice(life.output());
            life.advance_output(life.output().len());
            match life.poll() {
                Step::Route(request) => match check_upgrade(request) {
                    Ok(accept) if request.path() == "/ws" => {
                        let Some((_request, rest)) =
                            life.upgrade(response_101(&accept, None, None))
                        else {
                            return Some(Status::Close);
                        };
                        out.extend_from_slice(life.output());
                        life.advance_output(life.output().len());
                        let mut conn = Box::new(Connection::server(Limits::default()));
                        conn.set_timeouts(
                            Timeouts {
                                keepalive: Some(Keepalive {
                                    interval: Duration::from_secs(30),
                                    timeout: Duration::from_secs(10),
                                }),
                                close: Some(Duration::from_secs(5)),
                                ..Timeouts::default()
                            },
                            now,
                        );
                        conn.receive(&rest);
                        let status = Self::serve(&mut conn, out);
                        self.state = State::Open(conn);
                        return Some(status);
                    }
                    Ok(_) => life.respond(&Response::text(404, "no WebSocket here\n")),
                    Err(_) if request.path() == "/" => {
                        life.respond(&Response::text(200, "a no_std device\n"))
                    }
                    Err(e) => life.refuse(&e),
                },
                Step::ShutdownWrite => {
                    life.write_shut(now);
                    return Some(Status::ShutdownWrite);
                }
                Step::Finished => return Some(Status::Close),
                _ => return Some(Status::Open),
            }
        }
    }

    /// Echoes what arrived and moves the connection's output into `out`.
    fn serve(conn: &mut Connection, out: &mut Vec<u8>) -> Status {
        loop {
            match conn.next_event() {
                Ok(Some(Event::Message(msg))) => {
                    let _ = conn.send(msg); // fails only after our close
                }
                Ok(Some(_)) => {} // pongs and close echoes are the core's
                Ok(None) | Err(_) => break,
            }
        }
        loop {
            let before = out.len();
            let mut slices = [&[][..]; 4];
            let n = conn.output(&mut slices);
            for s in &slices[..n] {
                out.extend_from_slice(s);
            }
            if out.len() == before {
                break;
            }
            conn.advance_output(out.len() - before);
        }
        if conn.is_finished() {
            Status::Close
        } else {
            Status::Open
        }
    }
}

#[cfg(test)]
mod tests;

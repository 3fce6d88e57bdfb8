//! What a server can be tuned by, and the hooks it calls.

use super::net::{Addr, Stream};
use crate::blocking::WebSocket;
use crate::error::Error;
use crate::http::{Request, Response};
use crate::limits::Limits;
#[cfg(feature = "deflate")]
use crate::proto::extensions::permessage_deflate::DeflateConfig;
use crate::proto::Keepalive;
use std::time::Duration;

/// Everything a [`Server`](crate::Server) can be tuned by; every field has a documented default.
#[derive(Clone, Debug)]
pub struct Config {
    /// Message, frame, fragment and request-head limits. Default: [`Limits::default`].
    pub limits: Limits,
    /// Most connections at once, handshakes included; over it a client gets
    /// `503` and is closed. Default 1024.
    pub max_connections: usize,
    /// Largest plain HTTP request body; over it, `413`. Default 64 KiB.
    pub max_body_size: usize,
    /// Stack size of each connection thread. Default 256 KiB: thousands of
    /// idle clients fit, and only the pages a thread touches use memory.
    pub stack_size: usize,
    /// Time allowed from accept to a complete request head, so that clients
    /// dribbling bytes cannot pin threads; over it, `408`. Default 10 s.
    pub handshake_timeout: Duration,
    /// Longest silence from a client before the connection is closed (1001).
    /// Default `None`: clients that only listen are normal.
    pub read_timeout: Option<Duration>,
    /// Longest a client that reads slowly or not at all may hold up what we
    /// send: a thread per client gives each whole frame this long, however
    /// many writes it takes; the event loop drops a client whose backlog has
    /// not moved for this long. Past it, nothing more is written (a frame
    /// may be cut short) and the connection is shut down. Default 10 s.
    pub write_timeout: Option<Duration>,
    /// Keepalive pings, so dead clients are noticed. Default: a ping after
    /// 30 s of silence, closed if nothing arrives 30 s later.
    pub keepalive: Option<Keepalive>,
    /// How long a client has to answer our close frame (RFC 6455 7.1.1)
    /// before the connection is dropped, keepalive or not. Default 5 s.
    /// A thread per client meets it within 1.5 times it (at its next read;
    /// a read already waiting, as for a close sent from another thread,
    /// notices at its keepalive tick); the event loop within a second more.
    pub close_timeout: Option<Duration>,
    /// How long [`ShutdownHandle::shutdown`](crate::ShutdownHandle::shutdown) waits for clients to finish
    /// their close handshakes. Default 5 s.
    pub shutdown_timeout: Duration,
    /// Origins allowed besides the server's own, such as
    /// `"http://192.168.1.10:8000"`; `"*"` allows any. Default: none.
    pub allowed_origins: Vec<String>,
    /// Host names allowed besides IP addresses and `localhost`, such as
    /// `"bb400.local"`; `"*"` allows any. Default: none.
    pub allowed_hosts: Vec<String>,
    /// Name of connection threads, as `ps` and debuggers show it. Default `"stdws-conn"`.
    pub thread_name: String,
    /// Threads of [`Server::run_event_loop`](crate::Server::run_event_loop); 0: one per CPU. Default 0.
    pub event_loop_threads: usize,
    /// permessage-deflate (RFC 7692), accepted when a client offers it.
    /// Default `None`: off. With it on, a connection holds up to about 295
    /// KiB more at 15-bit windows (35 KiB at 9 bits): see [`crate::deflate`].
    /// Feature `deflate`.
    #[cfg(feature = "deflate")]
    pub deflate: Option<DeflateConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            limits: Limits::default(),
            max_connections: 1024,
            max_body_size: 64 << 10,
            stack_size: 256 << 10,
            handshake_timeout: Duration::from_secs(10),
            read_timeout: None,
            write_timeout: Some(Duration::from_secs(10)),
            keepalive: Some(Keepalive {
                interval: Duration::from_secs(30),
                timeout: Duration::from_secs(30),
            }),
            close_timeout: Some(Duration::from_secs(5)),
            shutdown_timeout: Duration::from_secs(5),
            allowed_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            thread_name: "stdws-conn".into(),
            event_loop_threads: 0,
            #[cfg(feature = "deflate")]
            deflate: None,
        }
    }
}

/// What [`Server::on_upgrade`](crate::Server::on_upgrade) agrees to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Accept {
    /// The subprotocol chosen from [`Request::protocols`], if any.
    pub protocol: Option<String>,
}

impl Accept {
    /// Accepts with a subprotocol.
    pub fn with_protocol(protocol: &str) -> Self {
        Accept {
            protocol: Some(protocol.into()),
        }
    }
}

pub(crate) type Handler = dyn Fn(WebSocket<Stream>) -> Result<(), Error> + Send + Sync;
pub(crate) type UpgradeHook = dyn Fn(&Request) -> Result<Accept, Response> + Send + Sync;
pub(crate) type HttpHook = dyn Fn(&Request) -> Response + Send + Sync;
pub(crate) type ErrorHook = dyn Fn(&Addr, &Error) + Send + Sync;

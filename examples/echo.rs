//! Echo server: every text and binary message comes back unchanged.
//!
//! `cargo run --release --example echo -- [--listen] 127.0.0.1:9001 [--deflate] [--event-loop [--threads N]] [--keepalive SECS]
//! [--write-timeout SECS] [--handshake-timeout SECS]`
//!
//! `GET /` serves a small page that echoes through the browser's WebSocket.
//! `--deflate` accepts permessage-deflate (RFC 7692) from clients that offer
//! it. `--event-loop` serves every client from one thread per CPU
//! (`Server::run_event_loop`) instead of a thread each, or from N threads.
//! `--keepalive SECS` pings a client after SECS of silence and closes it if
//! nothing comes SECS later (default 30; 0 turns keepalive off).
//! `--write-timeout SECS` (default 10) and `--handshake-timeout SECS`
//! (default 10) set those limits; SECS may have decimals. This is
//! also the server the conformance suite and the benchmarks run against, so
//! it accepts up to 50,000 clients.
use std::time::Duration;
use stdws::proto::extensions::permessage_deflate::DeflateConfig;
use stdws::{Config, Keepalive, MessageRef, Response, Server};

const PAGE: &str = include_str!("pages/echo.html");

fn main() -> std::io::Result<()> {
    let mut addr = "127.0.0.1:9001".to_owned();
    let mut deflate = None;
    let mut event_loop = false;
    let mut threads = 0;
    let mut keepalive = Config::default().keepalive;
    let mut write_timeout = Config::default().write_timeout;
    let mut handshake_timeout = Config::default().handshake_timeout;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--threads" => threads = args.next().and_then(|n| n.parse().ok()).unwrap_or(0),
            "--keepalive" => {
                let secs = args.next().and_then(|n| n.parse().ok()).unwrap_or(30);
                keepalive = (secs > 0).then(|| Keepalive {
                    interval: Duration::from_secs(secs),
                    timeout: Duration::from_secs(secs),
                });
            }
            "--write-timeout" => write_timeout = Some(secs(args.next())),
            "--handshake-timeout" => handshake_timeout = secs(args.next()),
            "--deflate" => deflate = Some(DeflateConfig::default()),
            "--event-loop" => event_loop = true,
            "--listen" => {} // the address follows
            flag if flag.starts_with('-') => {
                eprintln!("usage: echo [--listen] [ADDR] [--deflate] [--event-loop [--threads N]] [--keepalive SECS] [--write-timeout SECS] [--handshake-timeout SECS]");
                std::process::exit(2);
            }
            other => addr = other.to_owned(),
        }
    }
    let server = Server::bind(&addr)?
        .config(Config {
            max_connections: 50_000,
            event_loop_threads: threads,
            deflate,
            keepalive,
            write_timeout,
            handshake_timeout,
            ..Config::default()
        })
        .on_http(|req| match req.path() {
            "/" => Response::html(200, PAGE),
            _ => Response::status(404),
        });
    println!("echo: listening on http://{}/", server.local_addr());
    if event_loop {
        // The same echo: each message is borrowed in place and fed; the
        // echoes of one read leave together before the next read.
        return server.run_event_loop(|_request, tx| move |msg: MessageRef<'_>| tx.feed(msg));
    }
    server.run(|mut ws| {
        // Zero-copy echo: each message is borrowed from the connection's
        // buffers and queued on a Sender; the echoes of everything one read
        // brought in leave together, before recv waits for more.
        let tx = ws.sender()?;
        while let Some(msg) = ws.recv_ref()? {
            tx.feed(msg)?;
        }
        Ok(())
    })
}

/// A flag's value in seconds, decimals allowed; exits with the usage on anything else.
fn secs(value: Option<String>) -> Duration {
    match value.and_then(|v| v.parse::<f64>().ok()) {
        Some(s) if s > 0.0 && s.is_finite() => Duration::from_secs_f64(s),
        _ => {
            eprintln!(
                "echo: --write-timeout and --handshake-timeout need a number of seconds over 0"
            );
            std::process::exit(2);
        }
    }
}

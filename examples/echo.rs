//! Echo server: every text and binary message comes back unchanged.
//!
//! `cargo run --release --example echo -- [--listen] 127.0.0.1:9001 [--deflate]`
//!
//! `GET /` serves a small page that echoes through the browser's WebSocket.
//! `--deflate` accepts permessage-deflate (RFC 7692) from clients that offer
//! it. This is also the server the conformance suite and the benchmarks run
//! against, so it accepts up to 50,000 clients.
use stdws::extensions::permessage_deflate::DeflateConfig;
use stdws::{Config, Response, Server};

const PAGE: &str = include_str!("pages/echo.html");

fn main() -> std::io::Result<()> {
    let mut addr = "127.0.0.1:9001".to_owned();
    let mut deflate = None;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--deflate" => deflate = Some(DeflateConfig::default()),
            "--listen" => {} // the address follows
            flag if flag.starts_with('-') => {
                eprintln!("usage: echo [--listen] [ADDR] [--deflate]");
                std::process::exit(2);
            }
            other => addr = other.to_owned(),
        }
    }
    let server = Server::bind(&addr)?
        .config(Config {
            max_connections: 50_000,
            deflate,
            ..Config::default()
        })
        .on_http(|req| match req.path() {
            "/" => Response::html(200, PAGE),
            _ => Response::status(404),
        });
    println!("echo: listening on http://{}/", server.local_addr());
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

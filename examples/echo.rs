//! Echo server: every text and binary message comes back unchanged.
//!
//! `cargo run --release --example echo -- 127.0.0.1:9001`
//!
//! It is also the server the conformance suite and the benchmarks run
//! against, so it accepts up to 50,000 clients.
use stdws::{Config, Server};

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9001".into());
    let server = Server::bind(&addr)?.config(Config {
        max_connections: 50_000,
        ..Config::default()
    });
    eprintln!("echo: listening on {}", server.local_addr());
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

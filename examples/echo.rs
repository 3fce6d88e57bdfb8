//! Echo server: every text and binary message comes back unchanged.
//!
//! `cargo run --release --example echo -- 127.0.0.1:9001`
use std::net::TcpListener;
use stdws::WebSocket;

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9001".into());
    let listener = TcpListener::bind(&addr)?;
    eprintln!("echo: listening on {}", listener.local_addr()?);
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        std::thread::spawn(move || -> Result<(), stdws::Error> {
            stream.set_nodelay(true)?;
            let mut ws = WebSocket::accept(stream)?;
            while let Some(msg) = ws.recv()? {
                ws.send(msg)?;
            }
            Ok(())
        });
    }
    Ok(())
}

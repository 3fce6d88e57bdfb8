//! The README's ten-line threaded server, as it is there.
use stdws::Server;

fn main() -> std::io::Result<()> {
    Server::bind("0.0.0.0:8989")?.run(|mut ws| {
        while let Some(msg) = ws.recv()? {
            ws.send(msg)?;
        }
        Ok(())
    })
}

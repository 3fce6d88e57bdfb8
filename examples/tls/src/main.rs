//! The io_board example and an echo over `https://` and `wss://`, straight
//! from the device: TLS by rustls, through stdws's [`Server::tls`] hook.
//!
//! ```text
//! cargo run --release --manifest-path examples/tls/Cargo.toml -- 127.0.0.1:8443 [--cert C --key K]
//! ```
//!
//! - `GET /` is io_board's admin page, its REST API is on the same port,
//!   and its WebSocket is on any path but `/echo`, which echoes.
//! - Without `--cert` and `--key` (PEM files), it makes a self-signed
//!   certificate for `localhost` and `127.0.0.1` and prints where it put it,
//!   for a client to trust.
//! - `--handshake-timeout SECS`: the time a client has for the TLS
//!   handshake and its request head together (default 10).

#[path = "../../io_board.rs"]
#[allow(dead_code)] // its own main and options
mod io_board;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use stdws::{Config, Error, Server, Stream, WebSocket};

const USAGE: &str = "\
usage: stdws-tls ADDR [--cert CERT.pem --key KEY.pem] [--handshake-timeout SECS]

  ADDR                  where to listen, such as 127.0.0.1:8443 (port 0 picks one)
  --cert, --key         the certificate chain and private key, PEM; without them
                        a self-signed certificate for localhost and 127.0.0.1
                        is made, and its path printed
  --handshake-timeout SECS
                        time allowed for the TLS handshake and the request head
                        (default 10)";

struct Options {
    listen: String,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    handshake_timeout: Duration,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Options>, String> {
    let mut options = Options {
        listen: String::new(),
        cert: None,
        key: None,
        handshake_timeout: Config::default().handshake_timeout,
    };
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| args.next().ok_or(format!("{flag} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--cert" => options.cert = Some(value("--cert")?.into()),
            "--key" => options.key = Some(value("--key")?.into()),
            "--handshake-timeout" => {
                let secs = value("--handshake-timeout")?;
                options.handshake_timeout = match secs.parse::<f64>() {
                    Ok(s) if s > 0.0 && s.is_finite() => Duration::from_secs_f64(s),
                    _ => return Err("--handshake-timeout needs a number of seconds over 0".into()),
                };
            }
            flag if flag.starts_with('-') => return Err(format!("unknown option {flag}")),
            _ if options.listen.is_empty() => options.listen = arg,
            _ => return Err(format!("unexpected argument {arg:?}")),
        }
    }
    if options.listen.is_empty() {
        return Err("the address to listen on is missing".into());
    }
    Ok(Some(options))
}

/// A self-signed certificate for `localhost` and `127.0.0.1`, written to a
/// new directory under the system's temporary one: the paths of the
/// certificate and of its key.
fn self_signed() -> Result<(PathBuf, PathBuf), String> {
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let made = rcgen::generate_simple_self_signed(names)
        .map_err(|e| format!("cannot make a certificate: {e}"))?;
    let dir = std::env::temp_dir().join(format!("stdws-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let write = |path: &Path, pem: String| {
        std::fs::write(path, pem).map_err(|e| format!("{}: {e}", path.display()))
    };
    write(&cert, made.cert.pem())?;
    write(&key, made.signing_key.serialize_pem())?;
    Ok((cert, key))
}

/// rustls' configuration from a PEM certificate chain and key.
fn server_config(cert: &Path, key: &Path) -> Result<ServerConfig, String> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|builder| builder.with_no_client_auth().with_single_cert(chain, key))
        .map_err(|e| format!("TLS configuration: {e}"))?;
    // No TLS 1.3 session tickets: they arrive just as the client sends its
    // request, and Python websockets' sync client, which reads its socket on
    // one thread while it writes on another, then now and then never sends
    // it (1 handshake in 150 under load, measured). Resumption buys a device
    // serving a few clients nothing worth that.
    config.send_tls13_tickets = 0;
    Ok(config)
}

/// `/echo`: every message straight back.
fn echo(mut ws: WebSocket<Stream>) -> Result<(), Error> {
    while let Some(msg) = ws.recv()? {
        ws.send(msg)?;
    }
    Ok(())
}

fn run(options: Options) -> Result<(), String> {
    let (cert, key) = match (options.cert, options.key) {
        (Some(cert), Some(key)) => (cert, key),
        (None, None) => {
            let (cert, key) = self_signed()?;
            println!("stdws-tls: self-signed certificate {}", cert.display());
            (cert, key)
        }
        _ => return Err("--cert and --key go together".into()),
    };
    let tls = Arc::new(server_config(&cert, &key)?);
    let board = Arc::new(io_board::Board::new());
    let server = Server::bind(&options.listen)
        .map_err(|e| format!("cannot listen on {}: {e}", options.listen))?;
    board.report_stats_of(server.shutdown_handle());
    println!(
        "stdws-tls: listening on https://{}/ (wss:// on the same port; /echo echoes)",
        server.local_addr()
    );
    let http = board.clone();
    server
        .config(Config {
            handshake_timeout: options.handshake_timeout,
            ..Config::default()
        })
        .tls(move |tcp| {
            let conn = ServerConnection::new(tls.clone()).map_err(std::io::Error::other)?;
            Ok(StreamOwned::new(conn, tcp))
        })
        .on_http(move |req| http.serve_http(req))
        .on_error(|peer, err| {
            if !err.is_disconnect() {
                eprintln!("stdws-tls: {peer}: {err}");
            }
        })
        .run(move |ws| match ws.request().map(|r| r.path()) {
            Some("/echo") => echo(ws),
            _ => board.serve_client(ws),
        })
        .map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    io_board::cli::main("stdws-tls", USAGE, parse_args, run)
}

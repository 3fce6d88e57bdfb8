//! An IO controller like the Brainboxes BB-400: 8 digital inputs and 8
//! outputs, driven over a WebSocket, a REST API and a web page.
//!
//! ```text
//! cargo run --release --example io_board -- --listen 127.0.0.1:8989 [--unix PATH] [--simulate-inputs]
//! ```
//!
//! - **WebSocket**, any path on the TCP port: on connect the server sends
//!   `{"inputs":[..8..],"outputs":[..8..]}`; a text message holding a JSON
//!   array of eight 0/1 values sets all outputs. Every change of state, from
//!   any source, goes to every client as the same status JSON. An invalid
//!   message gets `{"error":"..."}`, to its sender only.
//! - **REST**, on the TCP port and on the Unix socket `--unix PATH` (the
//!   device uses `/var/run/bb-io.sock`): `GET /io`, `GET /io/outputs`,
//!   `GET /io/outputs/N`, `GET /io/inputs`, `GET /io/inputs/N`;
//!   `POST /io/outputs/N` with body `0` or `1`, `POST /io/outputs` with an
//!   array of 8, `POST /io/inputs/N` (a simulated input). The Unix socket
//!   takes the WebSocket protocol too.
//! - **`GET /`**: the web admin IO page, kept live over the WebSocket.
//! - **`GET /stats`**: the TCP server's [`Stats`] as JSON (on the Unix
//!   socket too): `connections_open`, `connections_accepted`, `refused`
//!   (by HTTP status), `closes_sent` and `closes_received` (by close code),
//!   `messages_in`, `messages_out`, `bytes_in`, `bytes_out`, `hub_dropped`.
//!   The page shows a few of them.
//! - `--simulate-inputs`: the inputs change by themselves every second.
//! - `--keepalive SECS`: a client silent for SECS is pinged, and closed if
//!   nothing comes SECS later (default 30; 0 turns keepalive off).
//! - `--write-timeout SECS`, `--handshake-timeout SECS`: those limits
//!   (default 10 s each; SECS may have decimals).
//! - `--event-loop`: the TCP clients are served by `Server::run_event_loop`
//!   (Linux), one thread per CPU, instead of a thread each.
//!
//! `--listen 127.0.0.1:0` picks a free port; the `listening` line says which.
//!
//! The parts of `stdws` it shows: a handler per client, a [`Hub`] for the
//! broadcasts, [`Server::on_http`] for the page and the REST routes on the
//! same port, and a second server on a Unix socket sharing the same state.

#[path = "common/cli.rs"]
pub(crate) mod cli;
#[path = "common/json.rs"]
mod json;

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::Duration;
use stdws::hub::Hub;
use stdws::{
    Config, Error, Keepalive, Message, MessageRef, Request, Response, Sender, Server,
    ShutdownHandle, Stats, Stream, WebSocket,
};

const PAGE: &str = include_str!("pages/io_board.html");
const LINES: usize = 8;

const USAGE: &str = "\
usage: io_board [--listen ADDR] [--unix PATH] [--simulate-inputs] [--keepalive SECS]
                [--write-timeout SECS] [--handshake-timeout SECS] [--event-loop]

  --listen ADDR       TCP address for the page, the WebSocket and the REST API
                      (default 0.0.0.0:8989, as on the device; port 0 picks one)
  --unix PATH         also serve the REST API on a Unix socket at PATH
                      (the device uses /var/run/bb-io.sock)
  --simulate-inputs   change the inputs by themselves every second
  --event-loop        serve the TCP clients from one thread per CPU (Linux)
                      instead of a thread each
  --keepalive SECS    ping a client silent for SECS, close it if nothing comes
                      SECS later (default 30; 0: no keepalive)
  --write-timeout SECS
                      give up on a write to a client that does not read
                      after SECS (default 10)
  --handshake-timeout SECS
                      time allowed for a request head (default 10)
  -h, --help          print this help";

/// The IO lines: each 0 or 1.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Io {
    inputs: [u8; LINES],
    outputs: [u8; LINES],
}

impl Io {
    /// The status JSON every client receives: `{"inputs":[..],"outputs":[..]}`.
    fn to_json(self) -> String {
        format!(
            r#"{{"inputs":{},"outputs":{}}}"#,
            lines_json(&self.inputs),
            lines_json(&self.outputs)
        )
    }
}

fn lines_json(lines: &[u8; LINES]) -> String {
    let values: Vec<String> = lines.iter().map(u8::to_string).collect();
    format!("[{}]", values.join(","))
}

/// Reads a JSON array of eight 0/1 values.
fn parse_lines(text: &str) -> Result<[u8; LINES], String> {
    let value = json::parse(text)?;
    let items = value.as_array().ok_or_else(|| {
        format!(
            "expected an array of {LINES} values 0 or 1, got {}",
            value.kind()
        )
    })?;
    if items.len() != LINES {
        return Err(format!("expected {LINES} values, got {}", items.len()));
    }
    let mut lines = [0; LINES];
    for (i, item) in items.iter().enumerate() {
        lines[i] = match item.as_f64() {
            Some(0.0) => 0,
            Some(1.0) => 1,
            _ => return Err(format!("value {i} must be 0 or 1")),
        };
    }
    Ok(lines)
}

/// Reads a single line's value: the body `0` or `1`.
fn parse_line(body: &[u8]) -> Result<u8, String> {
    match std::str::from_utf8(body).map(str::trim) {
        Ok("0") => Ok(0),
        Ok("1") => Ok(1),
        _ => Err("the body must be 0 or 1".into()),
    }
}

/// `GET /stats`: the server's counters, with the keys [`Stats`] names.
fn stats_json(stats: &Stats) -> String {
    let by_code = |map: &BTreeMap<u16, u64>| {
        let members: Vec<String> = map.iter().map(|(k, v)| format!(r#""{k}":{v}"#)).collect();
        format!("{{{}}}", members.join(","))
    };
    format!(
        concat!(
            r#"{{"connections_open":{},"connections_accepted":{},"refused":{},"#,
            r#""closes_sent":{},"closes_received":{},"messages_in":{},"messages_out":{},"#,
            r#""bytes_in":{},"bytes_out":{},"hub_dropped":{}}}"#
        ),
        stats.connections_open,
        stats.connections_accepted,
        by_code(&stats.refused),
        by_code(&stats.closes_sent),
        by_code(&stats.closes_received),
        stats.messages_in,
        stats.messages_out,
        stats.bytes_in,
        stats.bytes_out,
        stats.hub_dropped,
    )
}

/// The device: its IO lines, everyone watching them, and the server whose
/// counters `GET /stats` reports.
pub(crate) struct Board {
    io: Mutex<Io>,
    clients: Hub,
    server: OnceLock<ShutdownHandle>,
}

impl Board {
    pub(crate) fn new() -> Self {
        Board {
            io: Mutex::default(),
            clients: Hub::new(),
            server: OnceLock::new(),
        }
    }

    /// `GET /stats` reports `server`'s counters (the first server given).
    pub(crate) fn report_stats_of(&self, server: ShutdownHandle) {
        let _ = self.server.set(server);
    }

    fn lock(&self) -> MutexGuard<'_, Io> {
        self.io.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn io(&self) -> Io {
        *self.lock()
    }

    /// Changes the lines and, if anything changed, tells every client.
    /// Broadcasting under the lock keeps the statuses in order.
    fn update(&self, change: impl FnOnce(&mut Io)) -> Io {
        let mut io = self.lock();
        let before = *io;
        change(&mut io);
        if *io != before {
            self.clients.broadcast(io.to_json());
        }
        *io
    }

    /// One WebSocket client: the status on connect, then output changes in,
    /// broadcasts out.
    pub(crate) fn serve_client(&self, mut ws: WebSocket<Stream>) -> Result<(), Error> {
        let _member = {
            // Join, then queue the first status, under the lock that changes
            // are broadcast under: none is missed or comes before it.
            let io = self.lock();
            self.clients.join_with(ws.sender()?, io.to_json())?
        };
        while let Some(msg) = ws.recv()? {
            let outputs = match &msg {
                Message::Text(text) => parse_lines(text),
                Message::Binary(_) => Err("expected a text message".into()),
            };
            match outputs {
                Ok(outputs) => {
                    self.update(|io| io.outputs = outputs);
                }
                Err(why) => ws.send_text(&error_json(&why))?,
            }
        }
        Ok(())
    }

    /// The same client served by the event loop: joins and queues the first
    /// status on connect, then returns the callback for its messages. The
    /// membership lives in the callback, so it ends with the connection.
    fn event_loop_client(
        self: &Arc<Self>,
        tx: Sender,
    ) -> impl FnMut(MessageRef<'_>) -> Result<(), Error> + use<> {
        let member = {
            let io = self.lock();
            self.clients.join_with(tx.clone(), io.to_json())
        };
        let board = self.clone();
        let mut member = Some(member);
        move |msg: MessageRef<'_>| {
            if let Some(Err(e)) = &member {
                let e = std::io::Error::new(e.kind(), e.to_string());
                member = None;
                return Err(Error::Io(e));
            }
            let outputs = match msg {
                MessageRef::Text(text) => parse_lines(text),
                MessageRef::Binary(_) => Err("expected a text message".into()),
            };
            match outputs {
                Ok(outputs) => {
                    board.update(|io| io.outputs = outputs);
                    Ok(())
                }
                Err(why) => tx.send_text(&error_json(&why)),
            }
        }
    }

    /// The REST API and the page.
    pub(crate) fn serve_http(&self, req: &Request) -> Response {
        let path: Vec<&str> = req.path().split('/').filter(|s| !s.is_empty()).collect();
        match path[..] {
            [] => match req.method() {
                "GET" => Response::html(200, PAGE),
                _ => not_allowed("GET"),
            },
            ["io"] => match req.method() {
                "GET" => Response::json(200, self.io().to_json()),
                _ => not_allowed("GET"),
            },
            ["stats"] => match (req.method(), self.server.get()) {
                ("GET", Some(server)) => Response::json(200, stats_json(&server.stats())),
                ("GET", None) => error(503, "the server is not running yet"),
                _ => not_allowed("GET"),
            },
            ["io", "outputs"] => match req.method() {
                "GET" => Response::json(200, lines_json(&self.io().outputs)),
                "POST" => {
                    let body = String::from_utf8_lossy(req.body());
                    match parse_lines(&body) {
                        Ok(outputs) => {
                            let io = self.update(|io| io.outputs = outputs);
                            Response::json(200, lines_json(&io.outputs))
                        }
                        Err(why) => error(400, &why),
                    }
                }
                _ => not_allowed("GET, POST"),
            },
            ["io", "inputs"] => match req.method() {
                "GET" => Response::json(200, lines_json(&self.io().inputs)),
                _ => not_allowed("GET"),
            },
            ["io", kind @ ("inputs" | "outputs"), n] => {
                let Some(n) = n.parse::<usize>().ok().filter(|&n| n < LINES) else {
                    return error(404, &format!("no line {n:?}: lines are 0 to 7"));
                };
                let inputs = kind == "inputs";
                let value_of = |io: Io| if inputs { io.inputs[n] } else { io.outputs[n] };
                match req.method() {
                    "GET" => Response::json(200, value_of(self.io()).to_string()),
                    "POST" => match parse_line(req.body()) {
                        Ok(value) => {
                            let io = self.update(|io| match inputs {
                                true => io.inputs[n] = value,
                                false => io.outputs[n] = value,
                            });
                            Response::json(200, value_of(io).to_string())
                        }
                        Err(why) => error(400, &why),
                    },
                    _ => not_allowed("GET, POST"),
                }
            }
            _ => error(404, "not found"),
        }
    }
}

fn error_json(why: &str) -> String {
    format!(r#"{{"error":{}}}"#, json::string(why))
}

fn error(status: u16, why: &str) -> Response {
    Response::json(status, error_json(why))
}

fn not_allowed(allow: &str) -> Response {
    error(405, "method not allowed").with_header("Allow", allow)
}

/// Toggles one input a second, walking through them: what a device with
/// something wired to its inputs would see.
fn simulate_inputs(board: &Board) {
    for tick in 0.. {
        thread::sleep(Duration::from_secs(1));
        board.update(|io| io.inputs[tick % LINES] ^= 1);
    }
}

/// Adds the board's routes to a server, TCP or Unix.
fn with_routes(server: Server, board: &Arc<Board>, options: &Options) -> Server {
    let http = board.clone();
    server
        .config(Config {
            keepalive: options.keepalive,
            write_timeout: Some(options.write_timeout),
            handshake_timeout: options.handshake_timeout,
            ..Config::default()
        })
        .on_http(move |req| http.serve_http(req))
        .on_error(|peer, err| {
            if !err.is_disconnect() {
                eprintln!("io_board: {peer}: {err}");
            }
        })
}

struct Options {
    listen: String,
    unix: Option<String>,
    simulate_inputs: bool,
    keepalive: Option<Keepalive>,
    write_timeout: Duration,
    handshake_timeout: Duration,
    event_loop: bool,
}

/// Parses the command line; `Ok(None)` for `--help`.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Options>, String> {
    let mut options = Options {
        listen: "0.0.0.0:8989".into(),
        unix: None,
        simulate_inputs: false,
        keepalive: Config::default().keepalive,
        write_timeout: Duration::from_secs(10),
        handshake_timeout: Config::default().handshake_timeout,
        event_loop: false,
    };
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_owned(), Some(value.to_owned()))
            }
            _ => (arg, None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--listen" => options.listen = value()?,
            "--unix" => options.unix = Some(value()?),
            "--simulate-inputs" => options.simulate_inputs = true,
            "--event-loop" => options.event_loop = true,
            "--keepalive" => {
                let secs: u64 = value()?
                    .parse()
                    .map_err(|_| format!("{flag} needs a number of seconds"))?;
                options.keepalive = (secs > 0).then(|| Keepalive {
                    interval: Duration::from_secs(secs),
                    timeout: Duration::from_secs(secs),
                });
            }
            "--write-timeout" => options.write_timeout = secs(&flag, &value()?)?,
            "--handshake-timeout" => options.handshake_timeout = secs(&flag, &value()?)?,
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Some(options))
}

/// A flag's value in seconds, decimals allowed.
fn secs(flag: &str, value: &str) -> Result<Duration, String> {
    match value.parse::<f64>() {
        Ok(s) if s > 0.0 && s.is_finite() => Ok(Duration::from_secs_f64(s)),
        _ => Err(format!("{flag} needs a number of seconds over 0")),
    }
}

fn run(options: Options) -> Result<(), String> {
    let board = Arc::new(Board::new());
    // The REST API on the Unix socket, served in the background.
    let _unix = match &options.unix {
        Some(path) => {
            let server = Server::bind_unix(path)
                .map_err(|e| format!("cannot listen on unix socket {path}: {e}"))?;
            let client = board.clone();
            let running = with_routes(server, &board, &options)
                .spawn(move |ws| client.serve_client(ws))
                .map_err(|e| e.to_string())?;
            println!("io_board: REST API on unix:{path}");
            Some(running)
        }
        None => None,
    };
    let server = Server::bind(&options.listen)
        .map_err(|e| format!("cannot listen on {}: {e}", options.listen))?;
    board.report_stats_of(server.shutdown_handle());
    println!("io_board: listening on http://{}/", server.local_addr());
    if options.simulate_inputs {
        let board = board.clone();
        thread::spawn(move || simulate_inputs(&board));
    }
    let client = board.clone();
    let server = with_routes(server, &board, &options);
    if options.event_loop {
        return server
            .run_event_loop(move |_request, tx| client.event_loop_client(tx))
            .map_err(|e| e.to_string());
    }
    server
        .run(move |ws| client.serve_client(ws))
        .map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    cli::main("io_board", USAGE, parse_args, run)
}

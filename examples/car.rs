//! The blog's Bluetooth car, driven from a web page over a WebSocket, with a
//! simulated car in place of the Bluetooth one.
//!
//! ```text
//! cargo run --release --example car -- --listen 127.0.0.1:9876
//! ```
//!
//! - **`GET /`**: the control page, a direction pad in SVG, driving the car
//!   over the WebSocket on the same port and showing its motion.
//! - **WebSocket**, any path: commands as in the blog,
//!   `{"command":"stop"|"up"|"down"|"left"|"right"|"raw","duration":secs,"data":int}`.
//!   `duration` is optional (default 0.1 s, at most 60 s); `raw` needs an
//!   integer `data`. After each accepted command every client receives
//!   `{"motion":"<command>","duration":<secs>}` (`raw` adds `"data":N`), and
//!   `{"motion":"stop"}` when the duration runs out. A new command replaces
//!   the motion under way. Anything else gets `{"error":"..."}`, to its
//!   sender only. On connect a client receives the current motion: the last
//!   report, `{"motion":"stop"}` when the car stands still.
//!
//! `--listen 127.0.0.1:0` picks a free port; the `listening` line says which.

#[path = "common/cli.rs"]
mod cli;
#[path = "common/json.rs"]
mod json;

use json::Value;
use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};
use stdws::hub::Hub;
use stdws::{Error, Message, Request, Response, Server, Stream, WebSocket};

const PAGE: &str = include_str!("pages/car.html");

const USAGE: &str = "\
usage: car [--listen ADDR]

  --listen ADDR   TCP address for the page and the WebSocket
                  (default 0.0.0.0:9876, as in the blog; port 0 picks one)
  -h, --help      print this help";

/// How long a command lasts when it does not say.
const DEFAULT_DURATION: f64 = 0.1;
/// The longest a command may last.
const MAX_DURATION: f64 = 60.0;

/// What the car can be told to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Motion {
    Stop,
    Up,
    Down,
    Left,
    Right,
    /// A raw command byte for the car's Bluetooth protocol.
    Raw(i64),
}

impl Motion {
    fn name(self) -> &'static str {
        match self {
            Motion::Stop => "stop",
            Motion::Up => "up",
            Motion::Down => "down",
            Motion::Left => "left",
            Motion::Right => "right",
            Motion::Raw(_) => "raw",
        }
    }
}

/// An accepted command.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Command {
    motion: Motion,
    /// Seconds.
    duration: f64,
}

impl Command {
    /// Reads `{"command":..,"duration":..,"data":..}`.
    fn parse(text: &str) -> Result<Command, String> {
        let msg = json::parse(text)?;
        if !matches!(msg, Value::Object(_)) {
            return Err(format!("expected a command object, got {}", msg.kind()));
        }
        let duration = match msg.get("duration") {
            None | Some(Value::Null) => DEFAULT_DURATION,
            Some(d) => match d.as_f64() {
                Some(d) if (0.0..=MAX_DURATION).contains(&d) => d.abs(), // -0 is 0
                _ => {
                    return Err(format!(
                        "duration must be a number of seconds from 0 to {MAX_DURATION}"
                    ))
                }
            },
        };
        let data = match msg.get("data") {
            None | Some(Value::Null) => None,
            Some(d) => Some(d.as_i64().ok_or("data must be an integer")?),
        };
        let command = msg.get("command").ok_or("missing command")?;
        let motion = match command.as_str().ok_or("command must be a string")? {
            "stop" => Motion::Stop,
            "up" => Motion::Up,
            "down" => Motion::Down,
            "left" => Motion::Left,
            "right" => Motion::Right,
            "raw" => Motion::Raw(data.ok_or("a raw command needs an integer data")?),
            other => {
                return Err(format!(
                    "unknown command {} (expected stop, up, down, left, right or raw)",
                    json::string(other)
                ))
            }
        };
        Ok(Command { motion, duration })
    }

    /// The broadcast: `{"motion":"up","duration":0.5}`, plus `"data"` for raw.
    fn to_json(self) -> String {
        let name = self.motion.name();
        match self.motion {
            Motion::Raw(data) => format!(
                r#"{{"motion":"{name}","duration":{},"data":{data}}}"#,
                self.duration
            ),
            _ => format!(r#"{{"motion":"{name}","duration":{}}}"#, self.duration),
        }
    }
}

/// Stands in for the blog's `BluetoothCar`: says on stdout what the real one
/// would do (ignoring a closed stdout, so that the car never stops driving).
struct SimulatedCar;

impl SimulatedCar {
    fn drive(&self, command: Command) {
        let seconds = command.duration;
        let _ = match command.motion {
            Motion::Raw(data) => writeln!(io::stdout(), "car: raw command {data} for {seconds} s"),
            motion => writeln!(io::stdout(), "car: {} for {seconds} s", motion.name()),
        };
    }

    fn stop(&self) {
        let _ = writeln!(io::stdout(), "car: stop");
    }
}

const STOPPED: &str = r#"{"motion":"stop"}"#;

/// The car, its current motion, and everyone driving or watching it.
struct Car {
    car: SimulatedCar,
    motion: Mutex<Drive>,
    /// Wakes the stopper when a command arrives.
    changed: Condvar,
    clients: Hub,
}

/// The motion under way.
struct Drive {
    /// When it ends; `None` when stopped.
    until: Option<Instant>,
    /// What was last broadcast about it, for clients that connect later.
    report: String,
}

impl Car {
    fn new() -> Self {
        Car {
            car: SimulatedCar,
            motion: Mutex::new(Drive {
                until: None,
                report: STOPPED.into(),
            }),
            changed: Condvar::new(),
            clients: Hub::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Drive> {
        self.motion.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Tells every client, under the lock so that reports stay in order.
    fn report(&self, drive: &mut Drive, report: String) {
        self.clients.broadcast(report.as_str());
        drive.report = report;
    }

    /// Starts a command; it replaces the motion under way.
    fn drive(&self, command: Command) {
        let mut drive = self.lock();
        self.car.drive(command);
        drive.until = Some(Instant::now() + Duration::from_secs_f64(command.duration));
        self.report(&mut drive, command.to_json());
        self.changed.notify_one();
    }

    /// Stops the car when the latest command's time runs out, and sleeps
    /// otherwise. Runs on its own thread for the life of the program.
    fn stopper(&self) {
        let mut drive = self.lock();
        loop {
            drive = match drive.until {
                None => self.changed.wait(drive).unwrap_or_else(|e| e.into_inner()),
                Some(end) => {
                    let now = Instant::now();
                    if now >= end {
                        drive.until = None;
                        self.car.stop();
                        self.report(&mut drive, STOPPED.into());
                        continue;
                    }
                    let wait = self.changed.wait_timeout(drive, end - now);
                    wait.unwrap_or_else(|e| e.into_inner()).0
                }
            }
        }
    }

    /// One WebSocket client: the current motion on connect, then commands
    /// in, motions out.
    fn serve_client(&self, mut ws: WebSocket<Stream>) -> Result<(), Error> {
        let _member = {
            // Join, then queue the current motion, under the lock that
            // reports are broadcast under: none is missed or comes first.
            let drive = self.lock();
            self.clients.join_with(ws.sender()?, drive.report.clone())?
        };
        while let Some(msg) = ws.recv()? {
            let command = match &msg {
                Message::Text(text) => Command::parse(text),
                Message::Binary(_) => Err("expected a text message".into()),
            };
            match command {
                Ok(command) => self.drive(command),
                Err(why) => ws.send_text(&format!(r#"{{"error":{}}}"#, json::string(&why)))?,
            }
        }
        Ok(())
    }
}

/// The control page; the rest of HTTP is not found.
fn serve_http(req: &Request) -> Response {
    match (req.method(), req.path()) {
        ("GET", "/") => Response::html(200, PAGE),
        (_, "/") => Response::status(405).with_header("Allow", "GET"),
        _ => Response::status(404),
    }
}

/// Parses the command line: the listen address, `Ok(None)` for `--help`.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<String>, String> {
    let mut listen = "0.0.0.0:9876".to_owned();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => listen = args.next().ok_or("--listen needs a value")?,
            _ if arg.starts_with("--listen=") => listen = arg["--listen=".len()..].to_owned(),
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Some(listen))
}

fn run(listen: &str) -> Result<(), String> {
    let server = Server::bind(listen).map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    println!("car: listening on http://{}/", server.local_addr());
    let car = Arc::new(Car::new());
    let stopper = car.clone();
    thread::spawn(move || stopper.stopper());
    server
        .on_http(serve_http)
        .on_error(|peer, err| {
            if !err.is_disconnect() {
                eprintln!("car: {peer}: {err}");
            }
        })
        .run(move |ws| car.serve_client(ws))
        .map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    cli::main("car", USAGE, parse_args, |listen| run(&listen))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_as_in_the_blog() {
        let up = Command::parse(r#"{"command":"up"}"#).unwrap();
        assert_eq!(up.to_json(), r#"{"motion":"up","duration":0.1}"#);
        let raw = Command::parse(r#"{"command":"raw","duration":2,"data":34}"#).unwrap();
        assert_eq!(raw.to_json(), r#"{"motion":"raw","duration":2,"data":34}"#);
        let null = Command::parse(r#"{"command":"left","duration":null,"data":null}"#);
        assert_eq!(null.unwrap().duration, DEFAULT_DURATION);
        let zero = Command::parse(r#"{"command":"stop","duration":-0}"#).unwrap();
        assert_eq!(zero.to_json(), r#"{"motion":"stop","duration":0}"#);
    }

    #[test]
    fn bad_commands_say_why() {
        for (text, why) in [
            ("up", "invalid JSON"),
            (r#"["up"]"#, "expected a command object"),
            (r#"{"command":"fly"}"#, "unknown command \"fly\""),
            (r#"{"duration":1}"#, "missing command"),
            (r#"{"command":"up","duration":-1}"#, "duration"),
            (r#"{"command":"up","duration":61}"#, "duration"),
            (r#"{"command":"up","duration":"1"}"#, "duration"),
            (r#"{"command":"raw"}"#, "needs an integer data"),
            (r#"{"command":"raw","data":1.5}"#, "data must be an integer"),
        ] {
            let err = Command::parse(text).unwrap_err();
            assert!(err.contains(why), "{text}: {err}");
        }
    }
}

//! Runs an example binary as a child process and talks to it the way its
//! users do: the crate's own client for WebSockets, plain HTTP/1.1 over TCP
//! or a Unix socket for the REST routes.
//!
//! The binary is the real one: `cargo build --example NAME` with the profile
//! and target directory this test was built with, once per test binary. The
//! build is a no-op when `cargo test` has just built it; with `--all-targets`
//! (which builds examples only as test harnesses) it builds the program.
//!
//! Cross-testing (scripts/cross-test) builds the examples for the target
//! beforehand and sets two variables: `STDWS_EXAMPLES_DIR`, the directory of
//! those binaries, which are then used as they are (no cargo from inside the
//! test: under an emulator it would build for the host); and, when the target
//! needs one, `STDWS_EXAMPLE_RUNNER`, the emulator command that runs them, as
//! in `qemu-aarch64 -L /usr/aarch64-linux-gnu`, split on whitespace.
#![allow(dead_code)] // each test file uses a different subset

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
#[cfg(unix)]
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::Duration;
use stdws::{Message, WebSocket};

/// How long any read in these tests waits before the test fails.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// The example program `name`, ready to run with its arguments: under
/// `STDWS_EXAMPLE_RUNNER` when that is set, else directly.
pub fn command(name: &str) -> Command {
    let binary = binary(name);
    let runner = std::env::var("STDWS_EXAMPLE_RUNNER").unwrap_or_default();
    let mut runner = runner.split_whitespace();
    match runner.next() {
        Some(program) => {
            let mut command = Command::new(program);
            command.args(runner).arg(binary);
            command
        }
        None => Command::new(binary),
    }
}

/// The example program `name`: prebuilt in `STDWS_EXAMPLES_DIR` when that is
/// set, else built fresh for this test run.
pub fn binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let mut built = BUILT.get_or_init(Mutex::default).lock().unwrap();
    if let Some(path) = built.get(name) {
        return path.clone();
    }
    let file = format!("{name}{}", std::env::consts::EXE_SUFFIX);
    if let Some(dir) = std::env::var_os("STDWS_EXAMPLES_DIR") {
        let path = PathBuf::from(dir).join(file);
        assert!(
            path.is_file(),
            "STDWS_EXAMPLES_DIR has no {}: build the examples for this target first",
            path.display()
        );
        built.insert(name.into(), path.clone());
        return path;
    }
    // This test runs as <target>/<profile>/deps/<test>-<hash>.
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let target_dir = profile_dir.parent().expect("target dir");
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => "dev",
        Some(other) => other,
        None => panic!("unexpected test path {}", exe.display()),
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args(["build", "--quiet", "--example", name, "--profile", profile])
        .arg("--manifest-path")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", target_dir)
        .output()
        .expect("run cargo build");
    assert!(
        output.status.success(),
        "cargo build --example {name} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let path = profile_dir.join("examples").join(file);
    assert!(path.exists(), "{} was not built", path.display());
    built.insert(name.into(), path.clone());
    path
}

/// A running example; killed when dropped.
pub struct Example {
    child: Child,
    /// The TCP address from its `listening` line.
    pub addr: SocketAddr,
    /// Lines it printed after the `listening` line.
    stdout: Receiver<String>,
    stderr: Arc<Mutex<String>>,
}

impl Example {
    /// Starts `name` with `args` and waits for its `listening ... http://ADDR/` line.
    pub fn start(name: &str, args: &[&str]) -> Example {
        let mut child = command(name)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        let (tx, stdout) = mpsc::channel();
        let out = BufReader::new(child.stdout.take().unwrap());
        thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err = child.stderr.take().unwrap();
        let collected = stderr.clone();
        thread::spawn(move || {
            let mut buf = [0; 4096];
            while let Ok(n @ 1..) = err.read(&mut buf) {
                collected
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let mut example = Example {
            child,
            addr: "0.0.0.0:0".parse().unwrap(),
            stdout,
            stderr,
        };
        loop {
            let line = example.next_line();
            if line.contains("listening") {
                let addr = line
                    .split("http://")
                    .nth(1)
                    .and_then(|rest| rest.split('/').next())
                    .unwrap_or_else(|| panic!("no http://ADDR/ in {line:?}"));
                example.addr = addr.parse().expect("listening address");
                return example;
            }
        }
    }

    /// The next line the program prints (within [`TIMEOUT`]).
    pub fn next_line(&self) -> String {
        self.stdout.recv_timeout(TIMEOUT).unwrap_or_else(|_| {
            panic!(
                "no line from the example within {TIMEOUT:?}; stderr:\n{}",
                self.stderr.lock().unwrap()
            )
        })
    }

    /// `ws://ADDR/`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/", self.addr)
    }

    /// A WebSocket client on the example's TCP port, as the crate's client connects.
    pub fn connect(&self) -> WebSocket<TcpStream> {
        let ws = stdws::client::connect(&self.ws_url()).expect("connect");
        ws.get_ref().set_read_timeout(Some(TIMEOUT)).unwrap();
        ws
    }

    /// An HTTP request over TCP: (status, headers, body).
    pub fn http(&self, method: &str, path: &str, body: &str) -> HttpResponse {
        let stream = TcpStream::connect(self.addr).expect("connect");
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        http(stream, &self.addr.to_string(), method, path, body)
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            eprintln!("example stderr:\n{}", self.stderr.lock().unwrap());
        }
    }
}

/// The next message, which must be text, within the socket's read timeout.
pub fn recv_text<S: Read + Write>(ws: &mut WebSocket<S>) -> String {
    match ws.recv() {
        Ok(Some(Message::Text(text))) => text,
        other => panic!("expected a text message, got {other:?}"),
    }
}

/// A plain HTTP response.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    /// Header lines as sent, lowercased names: `content-type: text/html`.
    pub headers: Vec<String>,
    pub body: String,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        let prefix = format!("{}:", name.to_ascii_lowercase());
        self.headers
            .iter()
            .find_map(|h| h.strip_prefix(&prefix).map(str::trim))
    }
}

/// One HTTP/1.1 request on `stream`; the server closes after its response.
pub fn http<S: Read + Write>(
    mut stream: S,
    host: &str,
    method: &str,
    path: &str,
    body: &str,
) -> HttpResponse {
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).expect("send request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    let (head, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of head in {response:?}"));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line in {response:?}"));
    let headers = lines
        .map(|l| match l.split_once(':') {
            Some((name, value)) => format!("{}:{value}", name.to_ascii_lowercase()),
            None => l.to_owned(),
        })
        .collect();
    HttpResponse {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// An HTTP request over a Unix socket, as `requests_unixsocket` sends them.
#[cfg(unix)]
pub fn http_unix(path: &Path, method: &str, target: &str, body: &str) -> HttpResponse {
    let stream = UnixStream::connect(path).expect("connect unix socket");
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    http(stream, "localhost", method, target, body)
}

/// A fresh directory for a Unix socket, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("stdws-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

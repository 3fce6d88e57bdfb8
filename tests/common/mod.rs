//! Shared helpers for the wire tests: an in-process echo server on loopback
//! and a raw client that writes and reads exact bytes.
//!
//! The client deliberately does not use the library: it builds masked frames
//! byte by byte and parses the server's frames itself, so the tests pin what
//! actually travels over the socket.
#![allow(dead_code)] // each test file uses a different subset

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;
use stdws::{Limits, WebSocket};

/// How long any test socket waits for a byte before the test fails.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// The RFC 6455 section 1.3 sample key and its accept value.
pub const SAMPLE_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
pub const SAMPLE_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// The masking key of RFC 6455 section 5.7, used for every client frame.
pub const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

pub const OP_CONT: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xa;
/// The FIN bit of the first header byte.
pub const FIN: u8 = 0x80;

// ---------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------

/// A raw client that completed the upgrade, reading with [`TIMEOUT`].
pub fn upgraded(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.write_all(upgrade_request(&addr.to_string(), "").as_bytes())
        .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        s.read_exact(&mut b)
            .expect("the server hung up before its 101");
        head.push(b[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{head:?}");
    s
}

/// Both ends of a loopback TCP connection, each reading with [`TIMEOUT`].
pub fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let near = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (far, _) = listener.accept().unwrap();
    for s in [&near, &far] {
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
    }
    (near, far)
}

/// A server-side WebSocket (handshake skipped) and the raw client end.
pub fn server_and_raw_client() -> (WebSocket<TcpStream>, TcpStream) {
    let (server, client) = tcp_pair();
    (
        WebSocket::from_raw(server, stdws::Role::Server, Limits::default(), &[]),
        client,
    )
}

/// Starts an echo server with default limits; returns its address.
pub fn start_server() -> SocketAddr {
    start_server_with_limits(Limits::default())
}

/// Starts an echo server on 127.0.0.1:0 in a background thread: one thread
/// per client, each running `accept_with_limits` and then echoing every
/// message until the connection ends. Returns the address.
pub fn start_server_with_limits(limits: Limits) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local_addr");
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            thread::spawn(move || -> Result<(), stdws::Error> {
                stream.set_nodelay(true)?;
                let mut ws = WebSocket::accept_with_limits(stream, limits)?;
                while let Some(m) = ws.recv()? {
                    ws.send(m)?;
                }
                Ok(())
            });
        }
    });
    addr
}

// ---------------------------------------------------------------------------
// Handshake requests
// ---------------------------------------------------------------------------

/// The RFC 6455 section 1.3 sample request, with the sample key.
/// An upgrade request with the RFC's sample key, for `host`, plus `extra`
/// header lines (each ending in CRLF).
pub fn upgrade_request(host: &str, extra: &str) -> String {
    format!(
        "GET / HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

/// Sends raw bytes and reads until the server closes (5 s at most);
/// returns everything read.
pub fn raw_exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The status code of an HTTP response's first line; 0 if there is none.
pub fn status_of(response: &str) -> u16 {
    response
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

pub fn sample_request() -> String {
    "GET /chat HTTP/1.1\r\n\
     Host: server.example.com\r\n\
     Upgrade: websocket\r\n\
     Connection: Upgrade\r\n\
     Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
     Origin: http://example.com\r\n\
     Sec-WebSocket-Version: 13\r\n\
     \r\n"
        .to_owned()
}

/// A parsed HTTP response head (and body, for error responses).
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// The status line exactly as sent, without its CRLF.
    pub status_line: String,
    pub status: u16,
    /// Header lines as (name, value), in order, as sent.
    pub headers: Vec<(String, String)>,
    /// The whole head as sent, terminator included.
    pub raw_head: String,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// Every value of a header, by case-insensitive name.
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The single value of a header; panics if it is missing or repeated.
    pub fn header(&self, name: &str) -> &str {
        match self.header_values(name).as_slice() {
            [v] => v,
            other => panic!(
                "expected exactly one {name} header, got {other:?} in\n{}",
                self.raw_head
            ),
        }
    }
}

/// Parses a response head (terminator included).
pub fn parse_response_head(raw: &[u8]) -> HttpResponse {
    let text = std::str::from_utf8(raw).expect("response head is not UTF-8");
    assert!(text.ends_with("\r\n\r\n"), "head not terminated: {text:?}");
    let mut lines = text[..text.len() - 4].split("\r\n");
    let status_line = lines.next().unwrap().to_owned();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap();
    assert_eq!(version, "HTTP/1.1", "status line {status_line:?}");
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status code in {status_line:?}"));
    let headers = lines
        .map(|line| {
            let (name, value) = line
                .split_once(':')
                .unwrap_or_else(|| panic!("header line without colon: {line:?}"));
            assert!(
                !name.is_empty() && !name.contains(' '),
                "bad header name in {line:?}"
            );
            (name.to_owned(), value.trim().to_owned())
        })
        .collect();
    HttpResponse {
        status_line,
        status,
        headers,
        raw_head: text.to_owned(),
        body: Vec::new(),
    }
}

// ---------------------------------------------------------------------------
// Frame encoding (client side, by hand)
// ---------------------------------------------------------------------------

/// A frame header: `b0` (FIN, RSV, opcode) then the length in its minimal
/// encoding, with the mask bit and key if `mask` is given.
pub fn header(b0: u8, mask: Option<[u8; 4]>, len: u64) -> Vec<u8> {
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    let mut out = vec![b0];
    if len <= 125 {
        out.push(mask_bit | len as u8);
    } else if len <= 0xffff {
        out.push(mask_bit | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&len.to_be_bytes());
    }
    if let Some(key) = mask {
        out.extend_from_slice(&key);
    }
    out
}

/// XORs `payload` with `key` (RFC 6455 section 5.3), byte by byte.
pub fn xor(payload: &[u8], key: [u8; 4]) -> Vec<u8> {
    payload
        .iter()
        .enumerate()
        .map(|(i, b)| b ^ key[i % 4])
        .collect()
}

/// A complete client frame, masked with [`MASK`].
pub fn frame(b0: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = header(b0, Some(MASK), payload.len() as u64);
    out.extend_from_slice(&xor(payload, MASK));
    out
}

/// A complete frame without a mask (illegal from a client).
pub fn unmasked_frame(b0: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = header(b0, None, payload.len() as u64);
    out.extend_from_slice(payload);
    out
}

/// A masked close frame with a code and reason.
pub fn close_frame(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason);
    frame(FIN | OP_CLOSE, &payload)
}

// ---------------------------------------------------------------------------
// Server frames, parsed by hand
// ---------------------------------------------------------------------------

/// A frame as the server sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The header bytes exactly as received (2, 4 or 10 bytes, plus a key if masked).
    pub header: Vec<u8>,
    pub fin: bool,
    pub rsv: u8,
    pub opcode: u8,
    pub masked: bool,
    /// The payload as received (not unmasked: a server must not mask).
    pub payload: Vec<u8>,
}

impl Frame {
    /// The close code and reason of a close frame; `None` for an empty close.
    pub fn close_parts(&self) -> Option<(u16, &[u8])> {
        assert_eq!(self.opcode, OP_CLOSE, "not a close frame: {self:?}");
        match self.payload.as_slice() {
            [] => None,
            [hi, lo, reason @ ..] => Some((u16::from_be_bytes([*hi, *lo]), reason)),
            [_] => panic!("close frame with a 1-byte payload"),
        }
    }
}

/// Asserts a server frame header uses the shortest length encoding for its payload.
pub fn assert_minimal_length_encoding(f: &Frame) {
    let len = f.payload.len();
    let b1 = f.header[1] & 0x7f;
    match len {
        0..=125 => {
            assert_eq!(f.header.len(), 2, "7-bit length header for {len}");
            assert_eq!(usize::from(b1), len);
        }
        126..=0xffff => {
            assert_eq!(f.header.len(), 4, "16-bit length header for {len}");
            assert_eq!(b1, 0x7e);
            assert_eq!(&f.header[2..4], &(len as u16).to_be_bytes());
        }
        _ => {
            assert_eq!(f.header.len(), 10, "64-bit length header for {len}");
            assert_eq!(b1, 0x7f);
            assert_eq!(&f.header[2..10], &(len as u64).to_be_bytes());
        }
    }
}

// ---------------------------------------------------------------------------
// The raw client
// ---------------------------------------------------------------------------

fn is_reset(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe
    )
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// A client on a plain `TcpStream`, writing and reading raw bytes.
pub struct RawClient {
    pub stream: TcpStream,
}

impl RawClient {
    /// Connects with TCP_NODELAY and 5 s read and write timeouts.
    pub fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).unwrap();
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(TIMEOUT)).unwrap();
        RawClient { stream }
    }

    /// Connects and completes the handshake with the sample request.
    pub fn open(addr: SocketAddr) -> Self {
        let mut client = Self::connect(addr);
        client.write(sample_request().as_bytes());
        let resp = client.read_response_head();
        assert_eq!(resp.status, 101, "handshake refused:\n{}", resp.raw_head);
        client
    }

    /// Writes all of `bytes`; panics on failure.
    pub fn write(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("write of {} bytes failed: {e}", bytes.len()));
    }

    /// Writes all of `bytes`, tolerating a peer that has already reset or
    /// closed the connection (it may refuse a request before reading all of it).
    pub fn write_lenient(&mut self, bytes: &[u8]) {
        match self.stream.write_all(bytes) {
            Ok(()) => {}
            Err(e) if is_reset(&e) => {}
            Err(e) => panic!("write failed: {e}"),
        }
    }

    /// Writes `bytes` one byte per write call.
    pub fn write_bytewise(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write(std::slice::from_ref(b));
        }
    }

    /// Reads exactly `buf.len()` bytes; panics with `what` on EOF, reset or timeout.
    pub fn read_exact(&mut self, buf: &mut [u8], what: &str) {
        let mut filled = 0;
        while filled < buf.len() {
            match self.stream.read(&mut buf[filled..]) {
                Ok(0) => panic!(
                    "EOF after {filled} of {} bytes while reading {what}",
                    buf.len()
                ),
                Ok(n) => filled += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if is_timeout(&e) => panic!(
                    "timed out after {TIMEOUT:?} with {filled} of {} bytes while reading {what}",
                    buf.len()
                ),
                Err(e) => panic!(
                    "read error after {filled} of {} bytes while reading {what}: {e}",
                    buf.len()
                ),
            }
        }
    }

    /// Reads an HTTP response head byte by byte, so no frame byte after it is consumed.
    pub fn read_response_head(&mut self) -> HttpResponse {
        let mut raw = Vec::new();
        let mut byte = [0u8];
        while !raw.ends_with(b"\r\n\r\n") {
            assert!(raw.len() < 64 * 1024, "response head too long");
            match self.stream.read(&mut byte) {
                Ok(0) => panic!(
                    "EOF before the end of the response head; got {:?}",
                    String::from_utf8_lossy(&raw)
                ),
                Ok(_) => raw.push(byte[0]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if is_timeout(&e) => panic!(
                    "timed out waiting for the response head; got {:?}",
                    String::from_utf8_lossy(&raw)
                ),
                Err(e) => panic!(
                    "read error in the response head: {e}; got {:?}",
                    String::from_utf8_lossy(&raw)
                ),
            }
        }
        parse_response_head(&raw)
    }

    /// Reads a complete error response: the head, then `Content-Length` bytes of body.
    pub fn read_response(&mut self) -> HttpResponse {
        let mut resp = self.read_response_head();
        let len: usize = resp
            .header("Content-Length")
            .parse()
            .expect("numeric Content-Length");
        let mut body = vec![0; len];
        self.read_exact(&mut body, "the response body");
        resp.body = body;
        resp
    }

    /// Reads one frame, raw.
    pub fn read_frame(&mut self) -> Frame {
        let mut head = [0u8; 2];
        self.read_exact(&mut head, "a frame header");
        let mut header = head.to_vec();
        let masked = head[1] & 0x80 != 0;
        let len = match head[1] & 0x7f {
            126 => {
                let mut ext = [0u8; 2];
                self.read_exact(&mut ext, "a 16-bit length");
                header.extend_from_slice(&ext);
                u64::from(u16::from_be_bytes(ext))
            }
            127 => {
                let mut ext = [0u8; 8];
                self.read_exact(&mut ext, "a 64-bit length");
                header.extend_from_slice(&ext);
                u64::from_be_bytes(ext)
            }
            n => u64::from(n),
        };
        if masked {
            let mut key = [0u8; 4];
            self.read_exact(&mut key, "a masking key");
            header.extend_from_slice(&key);
        }
        assert!(len < 1 << 32, "absurd frame length {len} from the server");
        let mut payload = vec![0u8; len as usize];
        self.read_exact(&mut payload, "a frame payload");
        Frame {
            header,
            fin: head[0] & 0x80 != 0,
            rsv: (head[0] >> 4) & 0x7,
            opcode: head[0] & 0x0f,
            masked,
            payload,
        }
    }

    /// Reads one frame and checks it is an unmasked, final, RSV-free frame
    /// with the minimal length encoding.
    pub fn read_server_frame(&mut self) -> Frame {
        let f = self.read_frame();
        assert!(!f.masked, "server frame is masked: {:02x?}", f.header);
        assert!(f.fin, "server frame without FIN: {:02x?}", f.header);
        assert_eq!(f.rsv, 0, "server frame with RSV bits: {:02x?}", f.header);
        assert_minimal_length_encoding(&f);
        f
    }

    /// Reads a data frame and checks it echoes `(opcode, payload)`.
    pub fn expect_echo(&mut self, opcode: u8, payload: &[u8]) {
        let f = self.read_server_frame();
        assert_eq!(
            f.opcode,
            opcode,
            "echo opcode (payload {} bytes)",
            f.payload.len()
        );
        assert_eq!(f.payload.len(), payload.len(), "echo length");
        assert!(f.payload == payload, "echo payload differs");
    }

    /// Reads the server's close frame and checks its code; the reason must be
    /// valid UTF-8 of at most 123 bytes. Then checks the TCP connection closes.
    /// Returns the reason.
    pub fn expect_close(&mut self, code: u16) -> String {
        let f = self.read_server_frame();
        assert_eq!(
            f.opcode, OP_CLOSE,
            "expected a close frame with {code}, got {f:?}"
        );
        assert!(
            f.payload.len() >= 2,
            "expected close code {code}, got payload {:02x?}",
            f.payload
        );
        assert_eq!(
            &f.payload[..2],
            &code.to_be_bytes(),
            "close code bytes: expected {code}, got {} (reason {:?})",
            u16::from_be_bytes([f.payload[0], f.payload[1]]),
            String::from_utf8_lossy(&f.payload[2..])
        );
        let reason = std::str::from_utf8(&f.payload[2..])
            .expect("close reason is not valid UTF-8")
            .to_owned();
        assert!(reason.len() <= 123, "close reason over 123 bytes");
        self.expect_tcp_closed();
        reason
    }

    /// Checks the server closed the TCP connection: a read returns 0 or a
    /// reset, not more bytes and not a timeout.
    pub fn expect_tcp_closed(&mut self) {
        let mut buf = [0u8; 256];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => panic!(
                    "expected the connection to close, got {n} more bytes: {:02x?}",
                    &buf[..n]
                ),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if is_reset(&e) => return,
                Err(e) if is_timeout(&e) => {
                    panic!("the server did not close the connection within {TIMEOUT:?}")
                }
                Err(e) => panic!("unexpected read error waiting for close: {e}"),
            }
        }
    }

    /// Sends a masked binary message and checks it echoes.
    pub fn assert_echoes(&mut self, payload: &[u8]) {
        self.write(&frame(FIN | OP_BINARY, payload));
        self.expect_echo(OP_BINARY, payload);
    }
}

// ---------------------------------------------------------------------------
// Threads
// ---------------------------------------------------------------------------

/// Threads of this process with exactly this name (as `thread::Builder::name`
/// sets it). Linux: from /proc/self/task (under qemu-user too, where that is
/// the emulator's process, which holds the program's threads).
#[cfg(target_os = "linux")]
pub fn threads_named(name: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.trim_end() == name)
        .count()
}

/// Threads of this process with exactly this name (as `thread::Builder::name`
/// sets it). Windows: a Toolhelp snapshot of the threads, and each one's
/// description (Windows 10 1607 and later; Wine 8 has them too).
#[cfg(windows)]
pub fn threads_named(name: &str) -> usize {
    use std::ffi::c_void;
    type Handle = *mut c_void;
    /// THREADENTRY32.
    #[repr(C)]
    struct ThreadEntry {
        size: u32,
        usage: u32,
        thread_id: u32,
        owner_process_id: u32,
        base_priority: i32,
        delta_priority: i32,
        flags: u32,
    }
    #[link(name = "kernel32")]
    extern "system" {
        fn CreateToolhelp32Snapshot(flags: u32, process_id: u32) -> Handle;
        fn Thread32First(snapshot: Handle, entry: *mut ThreadEntry) -> i32;
        fn Thread32Next(snapshot: Handle, entry: *mut ThreadEntry) -> i32;
        fn OpenThread(access: u32, inherit: i32, thread_id: u32) -> Handle;
        fn GetThreadDescription(thread: Handle, description: *mut *mut u16) -> i32;
        fn LocalFree(memory: *mut c_void) -> *mut c_void;
        fn CloseHandle(handle: Handle) -> i32;
    }
    const TH32CS_SNAPTHREAD: u32 = 0x4;
    const THREAD_QUERY_LIMITED_INFORMATION: u32 = 0x0800;
    const INVALID_HANDLE_VALUE: Handle = -1isize as Handle;

    let me = std::process::id();
    let mut count = 0;
    // SAFETY: plain Win32 calls; every handle and the description buffer
    // are released before returning, and the description is read only up to
    // its terminating zero.
    unsafe {
        let snapshot = CreateToolhelp32Snapshot(TH32CS_SNAPTHREAD, 0);
        assert!(
            snapshot != INVALID_HANDLE_VALUE,
            "CreateToolhelp32Snapshot: {}",
            io::Error::last_os_error()
        );
        let mut entry: ThreadEntry = std::mem::zeroed();
        entry.size = std::mem::size_of::<ThreadEntry>() as u32;
        let mut more = Thread32First(snapshot, &mut entry) != 0;
        while more {
            if entry.owner_process_id == me {
                let thread = OpenThread(THREAD_QUERY_LIMITED_INFORMATION, 0, entry.thread_id);
                if !thread.is_null() {
                    let mut text = std::ptr::null_mut();
                    if GetThreadDescription(thread, &mut text) >= 0 && !text.is_null() {
                        let len = (0..).take_while(|&i| *text.add(i) != 0).count();
                        let units = std::slice::from_raw_parts(text, len);
                        if String::from_utf16_lossy(units) == name {
                            count += 1;
                        }
                        LocalFree(text.cast());
                    }
                    CloseHandle(thread);
                }
            }
            more = Thread32Next(snapshot, &mut entry) != 0;
        }
        CloseHandle(snapshot);
    }
    count
}

/// No portable way to list thread names here: tests that count threads fail.
#[cfg(not(any(target_os = "linux", windows)))]
pub fn threads_named(name: &str) -> usize {
    panic!("threads_named({name:?}): no way to list this process's threads on this OS")
}

//! HTTP/1.x heads on both sides of the opening handshake (RFC 6455 section 4):
//! the request head found as it arrives and parsed in one pass, the upgrade
//! rules, the `101`, plain responses and the refusals with their status.

use super::base64;
use crate::status::Status;
use alloc::{borrow::ToOwned, format, string::String, vec, vec::Vec};
use core::fmt;

/// The GUID every `Sec-WebSocket-Accept` is derived with (RFC 6455 section 1.3).
const WEBSOCKET_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Why a request head or an upgrade was refused, and with which HTTP status.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The head did not end within the limit (431).
    HeadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// More header lines than the limit (431).
    TooManyHeaders {
        /// The limit.
        limit: usize,
    },
    /// Not a well-formed HTTP/1.x request head (400).
    Malformed(&'static str),
    /// An upgrade must be a GET (400).
    MethodNotGet,
    /// An upgrade needs HTTP/1.1 or later (400).
    HttpVersionTooOld,
    /// The `Host` header is missing (400).
    MissingHost,
    /// No `Upgrade: websocket` header (400).
    NotWebSocketUpgrade,
    /// `Connection` does not contain the `Upgrade` token (400).
    MissingConnectionUpgrade,
    /// No `Sec-WebSocket-Version` header (400).
    MissingVersion,
    /// A `Sec-WebSocket-Version` other than 13 (426, with `Sec-WebSocket-Version: 13`).
    UnsupportedVersion(String),
    /// `Sec-WebSocket-Key` missing, repeated, or not 16 bytes in base64 (400).
    BadKey,
    /// An upgrade request must not carry a body (400).
    UnexpectedBody,
    /// Refused by the Host or Origin policy (403).
    Forbidden(String),
    /// The head did not arrive within the handshake timeout (408).
    Timeout,
    /// A request body without `Content-Length` (411).
    LengthRequired,
    /// A request body over the limit (413).
    BodyTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The server is at its connection limit (503).
    TooManyConnections {
        /// The limit.
        limit: usize,
    },
}

impl HandshakeError {
    /// The HTTP status to answer with.
    pub fn status(&self) -> u16 {
        match self {
            HandshakeError::HeadTooLarge { .. } | HandshakeError::TooManyHeaders { .. } => 431,
            HandshakeError::UnsupportedVersion(_) => 426,
            HandshakeError::Forbidden(_) => 403,
            HandshakeError::Timeout => 408,
            HandshakeError::LengthRequired => 411,
            HandshakeError::BodyTooLarge { .. } => 413,
            HandshakeError::TooManyConnections { .. } => 503,
            _ => 400,
        }
    }

    /// The response to send before closing the connection.
    pub fn response(&self) -> Response {
        let response = Response::text(self.status(), format!("{self}\n"));
        match self {
            HandshakeError::UnsupportedVersion(_) => {
                response.with_header("Sec-WebSocket-Version", "13")
            }
            _ => response,
        }
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = self.status();
        match self {
            HandshakeError::HeadTooLarge { limit } => {
                write!(f, "request head exceeds {limit} bytes")?
            }
            HandshakeError::TooManyHeaders { limit } => {
                write!(f, "request has more than {limit} header lines")?
            }
            HandshakeError::Malformed(what) => write!(f, "malformed HTTP request: {what}")?,
            HandshakeError::MethodNotGet => f.write_str("a WebSocket upgrade must use GET")?,
            HandshakeError::HttpVersionTooOld => {
                f.write_str("a WebSocket upgrade needs HTTP/1.1 or later")?
            }
            HandshakeError::MissingHost => f.write_str("missing Host header")?,
            HandshakeError::NotWebSocketUpgrade => {
                f.write_str("missing or wrong Upgrade header (expected \"websocket\")")?
            }
            HandshakeError::MissingConnectionUpgrade => {
                f.write_str("Connection header does not contain \"Upgrade\"")?
            }
            HandshakeError::MissingVersion => {
                f.write_str("missing Sec-WebSocket-Version header")?
            }
            HandshakeError::UnsupportedVersion(v) => write!(
                f,
                "unsupported Sec-WebSocket-Version {v:?} (only 13 is supported)"
            )?,
            HandshakeError::BadKey => {
                f.write_str("Sec-WebSocket-Key must appear once and be 16 bytes encoded in base64")?
            }
            HandshakeError::UnexpectedBody => {
                f.write_str("an upgrade request must not have a body")?
            }
            HandshakeError::Forbidden(why) => f.write_str(why)?,
            HandshakeError::Timeout => f.write_str("request head not received in time")?,
            HandshakeError::LengthRequired => {
                f.write_str("request body needs a Content-Length (chunked is not supported)")?
            }
            HandshakeError::BodyTooLarge { limit } => {
                write!(f, "request body exceeds {limit} bytes")?
            }
            HandshakeError::TooManyConnections { limit } => {
                write!(f, "server is at its limit of {limit} connections")?
            }
        }
        write!(f, " (HTTP {status})")
    }
}

impl core::error::Error for HandshakeError {}

/// Finds the end of an HTTP request head (`\r\n\r\n`) as bytes arrive.
///
/// Each call resumes where the last one stopped, so a head dribbled in one
/// byte at a time costs linear time, not quadratic.
///
/// ```
/// use stdws::http::HeadScanner;
/// use stdws::Status;
/// let mut scanner = HeadScanner::new(16 * 1024);
/// let mut buf = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
/// assert_eq!(scanner.scan(&buf).unwrap(), Status::Partial);
/// buf.extend_from_slice(b"\r\nframe bytes");
/// assert_eq!(scanner.scan(&buf).unwrap(), Status::Complete(27));
/// ```
#[derive(Clone, Debug)]
pub struct HeadScanner {
    scanned: usize,
    limit: usize,
}

impl HeadScanner {
    /// A scanner that refuses heads longer than `limit` bytes.
    pub fn new(limit: usize) -> Self {
        HeadScanner { scanned: 0, limit }
    }

    /// Looks for the end of the head in `buf`, which holds every byte received
    /// so far; returns the head's length, terminator included.
    pub fn scan(&mut self, buf: &[u8]) -> Result<Status<usize>, HandshakeError> {
        if let Some(&first) = buf.first() {
            // A request starts with a method token; TLS or garbage fails at once.
            if !first.is_ascii_uppercase() {
                return Err(HandshakeError::Malformed(
                    "request does not start with a method",
                ));
            }
        }
        let end = buf.len().min(self.limit);
        let from = self.scanned.saturating_sub(3);
        if let Some(i) = buf[from.min(end)..end]
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
        {
            return Ok(Status::Complete(from + i + 4));
        }
        self.scanned = end;
        if buf.len() >= self.limit {
            return Err(HandshakeError::HeadTooLarge { limit: self.limit });
        }
        Ok(Status::Partial)
    }
}

/// Header fields of a request or response head, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers {
    fields: Vec<(String, String)>,
}

impl Headers {
    /// Parses header lines (each without its CRLF), allowing at most `max` of them.
    fn parse<'a>(
        lines: impl Iterator<Item = Result<&'a [u8], HandshakeError>>,
        max: usize,
    ) -> Result<Headers, HandshakeError> {
        use HandshakeError::Malformed;
        let mut fields = Vec::new();
        for line in lines {
            let line = line?;
            if fields.len() == max {
                return Err(HandshakeError::TooManyHeaders { limit: max });
            }
            let colon = line
                .iter()
                .position(|&b| b == b':')
                .ok_or(Malformed("header line without a colon"))?;
            let (name, value) = (&line[..colon], &line[colon + 1..]);
            if !is_token(name) {
                return Err(Malformed("invalid header name"));
            }
            let value = value.trim_ascii();
            if value.iter().any(|&b| b != b'\t' && (b < 0x20 || b == 0x7f)) {
                return Err(Malformed("control character in a header value"));
            }
            let value =
                core::str::from_utf8(value).map_err(|_| Malformed("header value is not UTF-8"))?;
            // Tokens are ASCII, so this is lossless.
            let name = String::from_utf8_lossy(name).into_owned();
            fields.push((name, value.to_owned()));
        }
        Ok(Headers { fields })
    }

    /// The first value of a header, by case-insensitive name.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header, by case-insensitive name, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.fields
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The comma-separated elements of every value of a header, trimmed.
    pub fn tokens<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.get_all(name)
            .flat_map(|v| v.split(','))
            .map(str::trim_ascii) // OWS: values hold no other whitespace
            .filter(|t| !t.is_empty())
    }

    /// Whether a comma-separated header contains `token`, ignoring case.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.tokens(name).any(|t| t.eq_ignore_ascii_case(token))
    }

    /// Every header as (name, value), in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }
}

/// Splits a complete head into lines without their CRLF; the first is the
/// start line. Every line must end in CRLF.
fn head_lines(
    head: &[u8],
) -> Result<impl Iterator<Item = Result<&[u8], HandshakeError>>, HandshakeError> {
    use HandshakeError::Malformed;
    // Without the final empty line, every line ends in CRLF.
    let head = head
        .strip_suffix(b"\r\n")
        .ok_or(Malformed("head does not end with an empty line"))?;
    Ok(head.split_inclusive(|&b| b == b'\n').map(|line| {
        line.strip_suffix(b"\r\n")
            .ok_or(Malformed("line not ended by CRLF"))
    }))
}

/// Parses `HTTP/x.y` into (x, y).
fn parse_version(v: &[u8]) -> Result<(u8, u8), HandshakeError> {
    match v {
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            Ok((major - b'0', minor - b'0'))
        }
        _ => Err(HandshakeError::Malformed("invalid HTTP version")),
    }
}

/// A parsed HTTP/1.x request head, and its body once read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    method: String,
    target: String,
    version: (u8, u8),
    headers: Headers,
    body: Vec<u8>,
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

impl Request {
    /// Parses a complete head (as delimited by [`HeadScanner`]), allowing at
    /// most `max_headers` header lines.
    pub fn parse(head: &[u8], max_headers: usize) -> Result<Request, HandshakeError> {
        use HandshakeError::Malformed;
        let mut lines = head_lines(head)?;
        let request_line = lines.next().unwrap_or(Err(Malformed("empty request")))?;
        let mut parts = request_line.split(|&b| b == b' ');
        let (Some(method), Some(target), Some(version), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Malformed("request line is not METHOD TARGET VERSION"));
        };
        if !is_token(method) {
            return Err(Malformed("invalid method"));
        }
        if target.is_empty() || !target.iter().all(|b| (0x21..0x7f).contains(b)) {
            return Err(Malformed("invalid request target"));
        }
        let version = parse_version(version)?;
        let headers = Headers::parse(lines, max_headers)?;
        Ok(Request {
            method: String::from_utf8_lossy(method).into_owned(),
            target: String::from_utf8_lossy(target).into_owned(),
            version,
            headers,
            body: Vec::new(),
        })
    }

    /// The method, such as `GET`.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The request target as sent, such as `/io/outputs?x=1`.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The target without its query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }

    /// The query after `?`, if any.
    pub fn query(&self) -> Option<&str> {
        self.target.split_once('?').map(|(_, q)| q)
    }

    /// HTTP version as (major, minor).
    pub fn version(&self) -> (u8, u8) {
        self.version
    }

    /// The header fields.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }

    /// Whether the request asks for a WebSocket (`Upgrade: websocket`), valid or not.
    pub fn is_websocket_upgrade(&self) -> bool {
        self.headers.has_token("upgrade", "websocket")
    }

    /// The subprotocols the client offers in `Sec-WebSocket-Protocol`, in its order of preference.
    pub fn protocols(&self) -> impl Iterator<Item = &str> {
        self.headers.tokens("sec-websocket-protocol")
    }

    /// The declared body length: `Ok(0)` without `Content-Length`; an error
    /// for chunked or malformed bodies.
    pub fn content_length(&self) -> Result<usize, HandshakeError> {
        if self.headers.get("transfer-encoding").is_some() {
            return Err(HandshakeError::LengthRequired);
        }
        let mut lengths = self.headers.get_all("content-length");
        match (lengths.next(), lengths.next()) {
            (None, _) => Ok(0),
            (Some(v), None) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => v
                .parse()
                .map_err(|_| HandshakeError::Malformed("Content-Length too large")),
            _ => Err(HandshakeError::Malformed("invalid Content-Length")),
        }
    }

    /// The body of a plain HTTP request (empty for upgrades).
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    pub(crate) fn set_body(&mut self, body: Vec<u8>) {
        self.body = body;
    }
}

/// A parsed HTTP/1.x response head, as a client receives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    /// The status code.
    pub status: u16,
    /// The header fields.
    pub headers: Headers,
}

impl ResponseHead {
    /// Parses a complete response head.
    pub fn parse(head: &[u8], max_headers: usize) -> Result<ResponseHead, HandshakeError> {
        use HandshakeError::Malformed;
        let mut lines = head_lines(head)?;
        let status_line = lines.next().unwrap_or(Err(Malformed("empty response")))?;
        let mut parts = status_line.splitn(3, |&b| b == b' ');
        let (Some(version), Some(status)) = (parts.next(), parts.next()) else {
            return Err(Malformed("status line is not VERSION STATUS REASON"));
        };
        parse_version(version)?;
        let status = match status {
            [a, b, c] if [a, b, c].iter().all(|d| d.is_ascii_digit()) => {
                u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0')
            }
            _ => return Err(Malformed("invalid status code")),
        };
        Ok(ResponseHead {
            status,
            headers: Headers::parse(lines, max_headers)?,
        })
    }
}

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`.
///
/// ```
/// assert_eq!(
///     stdws::http::accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
///     "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
/// );
/// ```
pub fn accept_key(key: &str) -> String {
    let mut sha = sha1_smol::Sha1::new();
    sha.update(key.as_bytes());
    sha.update(WEBSOCKET_GUID.as_bytes());
    base64::encode(&sha.digest().bytes())
}

/// Checks a request against RFC 6455 section 4.2.1; returns the `Sec-WebSocket-Accept` value.
pub fn check_upgrade(req: &Request) -> Result<String, HandshakeError> {
    if req.method() != "GET" {
        return Err(HandshakeError::MethodNotGet);
    }
    if req.version() < (1, 1) {
        return Err(HandshakeError::HttpVersionTooOld);
    }
    if req.header("host").is_none() {
        return Err(HandshakeError::MissingHost);
    }
    if !req.is_websocket_upgrade() {
        return Err(HandshakeError::NotWebSocketUpgrade);
    }
    if !req.headers().has_token("connection", "upgrade") {
        return Err(HandshakeError::MissingConnectionUpgrade);
    }
    match req.header("sec-websocket-version") {
        None => return Err(HandshakeError::MissingVersion),
        Some("13") => {}
        Some(other) => return Err(HandshakeError::UnsupportedVersion(other.to_owned())),
    }
    let mut keys = req.headers().get_all("sec-websocket-key");
    let (Some(key), None) = (keys.next(), keys.next()) else {
        return Err(HandshakeError::BadKey);
    };
    if !base64::is_16_bytes(key) {
        return Err(HandshakeError::BadKey);
    }
    let has_body = req.header("transfer-encoding").is_some()
        || req.header("content-length").is_some_and(|v| v != "0");
    if has_body {
        return Err(HandshakeError::UnexpectedBody);
    }
    Ok(accept_key(key))
}

/// The `101 Switching Protocols` response, with an optional chosen
/// subprotocol and agreed extensions (a `Sec-WebSocket-Extensions` value).
pub fn response_101(accept: &str, protocol: Option<&str>, extensions: Option<&str>) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n"
    );
    if let Some(p) = protocol {
        out.push_str(&format!("Sec-WebSocket-Protocol: {p}\r\n"));
    }
    if let Some(e) = extensions {
        out.push_str(&format!("Sec-WebSocket-Extensions: {e}\r\n"));
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// The standard reason phrase for the statuses this crate sends.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        426 => "Upgrade Required",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// A plain HTTP response; the connection closes after it.
///
/// ```
/// use stdws::Response;
/// let bytes = Response::json(200, "[0,1]").to_bytes();
/// assert!(bytes.starts_with(b"HTTP/1.1 200 OK\r\n"));
/// assert!(bytes.ends_with(b"\r\n\r\n[0,1]"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    /// A response with a status, a content type and a body.
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Response {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.into(),
        }
    }

    /// A `text/plain` response.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Self::new(status, "text/plain; charset=utf-8", body.into())
    }

    /// A `text/html` response.
    pub fn html(status: u16, body: impl Into<String>) -> Self {
        Self::new(status, "text/html; charset=utf-8", body.into())
    }

    /// An `application/json` response.
    pub fn json(status: u16, body: impl Into<String>) -> Self {
        Self::new(status, "application/json", body.into())
    }

    /// A `text/plain` response whose body is the status's reason phrase.
    pub fn status(status: u16) -> Self {
        Self::text(status, format!("{}\n", reason_phrase(status)))
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The status code.
    pub fn status_code(&self) -> u16 {
        self.status
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The response as bytes: status line, headers with `Content-Length` and
    /// `Connection: close`, then the body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.status,
            reason_phrase(self.status),
            self.body.len()
        );
        for (name, value) in &self.headers {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        out.push_str("\r\n");
        let mut out = out.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}

/// Why a client could not connect.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectError {
    /// Not a `ws://host[:port][/path]` URL.
    InvalidUrl(String),
    /// `wss://` needs TLS, which this crate leaves to a proxy or the caller.
    TlsUnsupported,
    /// The server answered with this status instead of `101`.
    Refused(u16),
    /// The `101` response breaks RFC 6455 section 4.1.
    BadResponse(&'static str),
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::InvalidUrl(why) => write!(f, "invalid WebSocket URL: {why}"),
            ConnectError::TlsUnsupported => f.write_str(
                "wss:// needs TLS: use a TLS-terminating proxy, or wrap a TLS stream with client::handshake",
            ),
            ConnectError::Refused(status) => write!(f, "server refused the upgrade with HTTP {status}"),
            ConnectError::BadResponse(why) => write!(f, "invalid handshake response: {why}"),
        }
    }
}

impl core::error::Error for ConnectError {}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "GET /chat?room=1 HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Version: 13\r\n\r\n";

    fn request(text: &str) -> Request {
        Request::parse(text.as_bytes(), 64).unwrap()
    }

    fn upgrade(text: &str) -> Result<String, HandshakeError> {
        check_upgrade(&request(text))
    }

    #[test]
    fn accepts_the_rfc_sample_with_the_rfc_accept_key() {
        assert_eq!(upgrade(SAMPLE).unwrap(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        let req = request(SAMPLE);
        assert_eq!((req.path(), req.query()), ("/chat", Some("room=1")));
        assert_eq!(req.header("ORIGIN"), Some("http://example.com"));
    }

    #[test]
    fn header_names_and_tokens_are_case_insensitive() {
        let text = SAMPLE
            .replace("Upgrade: websocket", "uPgRaDe: WebSocket")
            .replace("Connection: Upgrade", "connection: keep-alive, UPGRADE")
            .replace("Sec-WebSocket-Key", "sec-websocket-key");
        assert!(upgrade(&text).is_ok());
    }

    #[test]
    fn connection_token_may_be_in_any_header_line_and_position() {
        let text = SAMPLE.replace(
            "Connection: Upgrade\r\n",
            "Connection: keep-alive\r\nConnection: foo ,upgrade\r\n",
        );
        assert!(upgrade(&text).is_ok());
    }

    #[test]
    fn refuses_each_broken_rule_with_its_status() {
        let cases = [
            (SAMPLE.replace("GET", "POST"), HandshakeError::MethodNotGet),
            (
                SAMPLE.replace("HTTP/1.1", "HTTP/1.0"),
                HandshakeError::HttpVersionTooOld,
            ),
            (
                SAMPLE.replace("Host: server.example.com\r\n", ""),
                HandshakeError::MissingHost,
            ),
            (
                SAMPLE.replace("Upgrade: websocket\r\n", ""),
                HandshakeError::NotWebSocketUpgrade,
            ),
            (
                SAMPLE.replace("Upgrade: websocket", "Upgrade: h2c"),
                HandshakeError::NotWebSocketUpgrade,
            ),
            (
                SAMPLE.replace("Connection: Upgrade", "Connection: close"),
                HandshakeError::MissingConnectionUpgrade,
            ),
            (
                SAMPLE.replace("Sec-WebSocket-Version: 13\r\n", ""),
                HandshakeError::MissingVersion,
            ),
            (
                SAMPLE.replace("Version: 13", "Version: 8"),
                HandshakeError::UnsupportedVersion("8".into()),
            ),
            (
                SAMPLE.replace("dGhlIHNhbXBsZSBub25jZQ==", "c2hvcnQ="),
                HandshakeError::BadKey,
            ),
            (
                SAMPLE.replace("dGhlIHNhbXBsZSBub25jZQ==", "not base64!"),
                HandshakeError::BadKey,
            ),
            (
                SAMPLE.replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", ""),
                HandshakeError::BadKey,
            ),
            (
                SAMPLE.replace(
                    "Origin",
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin",
                ),
                HandshakeError::BadKey,
            ),
            (
                SAMPLE.replace("Origin", "Content-Length: 5\r\nOrigin"),
                HandshakeError::UnexpectedBody,
            ),
        ];
        for (text, expected) in cases {
            let status = expected.status();
            assert_eq!(upgrade(&text), Err(expected), "{text}");
            assert_eq!(
                status,
                if text.contains("Version: 8") {
                    426
                } else {
                    400
                }
            );
        }
    }

    #[test]
    fn later_http_versions_are_accepted() {
        assert!(upgrade(&SAMPLE.replace("HTTP/1.1", "HTTP/1.9")).is_ok());
    }

    #[test]
    fn the_426_response_names_version_13() {
        let err = upgrade(&SAMPLE.replace("Version: 13", "Version: 12")).unwrap_err();
        let text = String::from_utf8(err.response().to_bytes()).unwrap();
        assert!(
            text.starts_with("HTTP/1.1 426 Upgrade Required\r\n"),
            "{text}"
        );
        assert!(text.contains("\r\nSec-WebSocket-Version: 13\r\n"), "{text}");
        // The body says what was sent and what would do.
        assert!(
            text.ends_with(
                "\r\n\r\nunsupported Sec-WebSocket-Version \"12\" (only 13 is supported) (HTTP 426)\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn rejects_malformed_heads_with_400() {
        for text in [
            "GET /\r\n\r\n",
            "GET / HTTP/1.1 extra\r\n\r\n",
            "GET / HTTP/x.1\r\nHost: a\r\n\r\n",
            "GET / HTTP/1.1\r\nHost : a\r\n\r\n",
            "GET / HTTP/1.1\r\nNoColon\r\n\r\n",
            "GET / HTTP/1.1\r\n folded: x\r\n\r\n",
            "GET / HTTP/1.1\nHost: a\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\x01b\r\n\r\n",
            "G(T / HTTP/1.1\r\n\r\n",
            "GET  HTTP/1.1\r\nHost: a\r\n\r\n",
            "GET /\x7f HTTP/1.1\r\nHost: a\r\n\r\n",
        ] {
            let err = Request::parse(text.as_bytes(), 64).unwrap_err();
            assert_eq!(err.status(), 400, "{text:?}: {err}");
        }
    }

    #[test]
    fn too_many_headers_is_431() {
        let mut text = String::from("GET / HTTP/1.1\r\n");
        for i in 0..5 {
            text.push_str(&format!("X-{i}: v\r\n"));
        }
        text.push_str("\r\n");
        assert!(Request::parse(text.as_bytes(), 5).is_ok());
        let err = Request::parse(text.as_bytes(), 4).unwrap_err();
        assert_eq!(err, HandshakeError::TooManyHeaders { limit: 4 });
        assert_eq!(err.status(), 431);
    }

    #[test]
    fn scanner_finds_the_head_end_across_any_split() {
        let bytes = SAMPLE.as_bytes();
        for split in 0..bytes.len() {
            let mut scanner = HeadScanner::new(16 * 1024);
            assert_eq!(scanner.scan(&bytes[..split]).unwrap(), Status::Partial);
            assert_eq!(scanner.scan(bytes).unwrap(), Status::Complete(bytes.len()));
        }
    }

    #[test]
    fn scanner_refuses_heads_over_the_limit_with_431() {
        let mut scanner = HeadScanner::new(64);
        let long = format!("GET /{} HTTP/1.1\r\n", "a".repeat(100));
        let err = scanner.scan(long.as_bytes()).unwrap_err();
        assert_eq!(err.status(), 431);
        // A head of exactly the limit is fine.
        let exact = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(41));
        assert_eq!(exact.len(), 64);
        let mut scanner = HeadScanner::new(64);
        assert_eq!(
            scanner.scan(exact.as_bytes()).unwrap(),
            Status::Complete(64)
        );
    }

    #[test]
    fn scanner_rejects_non_http_bytes_at_once() {
        let mut scanner = HeadScanner::new(16 * 1024);
        assert_eq!(scanner.scan(&[0x16, 0x03, 0x01]).unwrap_err().status(), 400);
    }

    #[test]
    fn error_display_names_the_status() {
        assert_eq!(
            HandshakeError::MissingHost.to_string(),
            "missing Host header (HTTP 400)"
        );
    }

    #[test]
    fn a_request_keeps_its_target_and_headers_as_sent() {
        let req = request(SAMPLE);
        assert_eq!(req.target(), "/chat?room=1");
        let names: Vec<&str> = req.headers().iter().map(|(name, _)| name).collect();
        assert_eq!(
            names,
            [
                "Host",
                "Upgrade",
                "Connection",
                "Sec-WebSocket-Key",
                "Origin",
                "Sec-WebSocket-Protocol",
                "Sec-WebSocket-Version"
            ]
        );
        let (_, protocol) = req.headers().iter().nth(5).unwrap();
        assert_eq!(protocol, "chat, superchat");
        assert_eq!(req.protocols().collect::<Vec<_>>(), ["chat", "superchat"]);
    }

    #[test]
    fn content_length_must_be_one_plain_number() {
        let with = |headers: &str| {
            request(&format!("POST /x HTTP/1.1\r\nHost: a\r\n{headers}\r\n")).content_length()
        };
        assert_eq!(with(""), Ok(0));
        assert_eq!(with("Content-Length: 42\r\n"), Ok(42));
        for bad in [
            "Content-Length: 4x\r\n",
            "Content-Length: -1\r\n",
            "Content-Length:\r\n",
            "Content-Length: 5\r\nContent-Length: 5\r\n",
        ] {
            assert_eq!(
                with(bad),
                Err(HandshakeError::Malformed("invalid Content-Length")),
                "{bad:?}"
            );
        }
        let huge = with("Content-Length: 99999999999999999999999\r\n").unwrap_err();
        assert_eq!(
            (huge.status(), huge.to_string().contains("too large")),
            (400, true)
        );
        let chunked = with("Transfer-Encoding: chunked\r\n").unwrap_err();
        assert_eq!(chunked, HandshakeError::LengthRequired);
        assert_eq!(chunked.status(), 411);
    }

    #[test]
    fn parses_a_response_head_and_refuses_a_broken_status_line() {
        let head = ResponseHead::parse(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
            8,
        )
        .unwrap();
        assert_eq!(head.status, 101);
        assert_eq!(head.headers.get("upgrade"), Some("websocket"));
        // The reason phrase is optional.
        assert_eq!(
            ResponseHead::parse(b"HTTP/1.1 403\r\n\r\n", 8)
                .unwrap()
                .status,
            403
        );
        for (bad, why) in [
            (
                &b"HTTP/1.1\r\n\r\n"[..],
                "status line is not VERSION STATUS REASON",
            ),
            (b"HTTP/1.1 1O1 Switching\r\n\r\n", "invalid status code"),
            (b"HTTP/1.1 1010 Switching\r\n\r\n", "invalid status code"),
            (b"HTTPS/1.1 101 Switching\r\n\r\n", "invalid HTTP version"),
        ] {
            let text = String::from_utf8_lossy(bad);
            let parsed = ResponseHead::parse(bad, 8);
            assert_eq!(parsed, Err(HandshakeError::Malformed(why)), "{text}");
        }
    }

    #[test]
    fn responses_carry_the_standard_reason_phrase() {
        for (status, phrase) in [
            (101, "Switching Protocols"),
            (201, "Created"),
            (204, "No Content"),
            (401, "Unauthorized"),
            (404, "Not Found"),
            (405, "Method Not Allowed"),
            (501, "Not Implemented"),
            (299, "Unknown"),
        ] {
            let response = Response::status(status);
            assert_eq!(response.status_code(), status);
            assert_eq!(response.body(), format!("{phrase}\n").as_bytes());
            let text = String::from_utf8(response.to_bytes()).unwrap();
            let start = format!("HTTP/1.1 {status} {phrase}\r\n");
            assert!(text.starts_with(&start), "{text}");
        }
    }
}

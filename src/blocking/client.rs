//! A blocking client: `connect("ws://host:port/path")`.
//!
//! ```no_run
//! let mut ws = stdws::client::connect("ws://127.0.0.1:9001/")?;
//! ws.send("hello")?;
//! assert_eq!(ws.recv()?.unwrap().as_text(), Some("hello"));
//! ws.close(stdws::CloseCode::NORMAL, "")?;
//! while ws.recv()?.is_some() {}
//! # Ok::<(), stdws::Error>(())
//! ```
//!
//! `wss://` is not built in: terminate TLS in a proxy, or wrap your own TLS
//! stream with [`handshake`].

use super::io::{read_head, write_all_vectored};
use super::websocket::WebSocket;
use crate::blocking::random::OsRandom;
use crate::error::Error;
use crate::frame::Role;
use crate::http::base64;
use crate::http::{accept_key, ResponseHead};
use crate::limits::Limits;
#[cfg(feature = "deflate")]
use crate::proto::extensions::permessage_deflate::{
    accept_response, offer, DeflateConfig, PerMessageDeflate,
};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
#[cfg(unix)]
use std::os::unix::net::UnixStream;
#[cfg(unix)]
use std::path::Path;
use std::time::Duration;

/// How a client connects.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Limits on what the server may send. Default: [`Limits::default`].
    pub limits: Limits,
    /// Subprotocols to offer, in order of preference. Default: none.
    pub protocols: Vec<String>,
    /// Extra request headers, such as `Origin` or `Authorization`. Default: none.
    pub headers: Vec<(String, String)>,
    /// Bound on connecting and on the handshake. Default 10 s.
    pub timeout: Option<Duration>,
    /// Offer permessage-deflate (RFC 7692). Default `None`: not offered.
    /// Feature `deflate`.
    #[cfg(feature = "deflate")]
    pub deflate: Option<DeflateConfig>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            limits: Limits::default(),
            protocols: Vec::new(),
            headers: Vec::new(),
            timeout: Some(Duration::from_secs(10)),
            #[cfg(feature = "deflate")]
            deflate: None,
        }
    }
}

pub use crate::http::ConnectError;

/// The parts of a `ws://` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Url<'a> {
    host: &'a str,
    port: u16,
    /// Path and query, starting with `/`.
    resource: String,
}

fn parse_url(url: &str) -> Result<Url<'_>, ConnectError> {
    let invalid = |why: &str| ConnectError::InvalidUrl(format!("{why}: {url:?}"));
    if url
        .get(..6)
        .is_some_and(|s| s.eq_ignore_ascii_case("wss://"))
    {
        return Err(ConnectError::TlsUnsupported);
    }
    let rest = match url.get(..5) {
        Some(s) if s.eq_ignore_ascii_case("ws://") => &url[5..],
        _ => return Err(invalid("expected ws://")),
    };
    if rest.contains('#') {
        return Err(invalid("fragments are not allowed"));
    }
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, resource) = rest.split_at(split);
    let resource = match resource {
        "" => "/".to_owned(),
        r if r.starts_with('?') => format!("/{r}"),
        r => r.to_owned(),
    };
    if authority.contains('@') {
        return Err(invalid("user info is not supported"));
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (host, after) = v6.split_once(']').ok_or_else(|| invalid("unclosed ["))?;
            (host, after.strip_prefix(':'))
        }
        None => match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    if host.is_empty() {
        return Err(invalid("no host"));
    }
    let port = match port {
        None => 80,
        Some(p) => p.parse().map_err(|_| invalid("bad port"))?,
    };
    Ok(Url {
        host,
        port,
        resource,
    })
}

/// Connects to a `ws://` URL with default settings.
pub fn connect(url: &str) -> Result<WebSocket<TcpStream>, Error> {
    connect_with(url, &ClientConfig::default())
}

/// Connects to a `ws://` URL.
pub fn connect_with(url: &str, config: &ClientConfig) -> Result<WebSocket<TcpStream>, Error> {
    let url = parse_url(url)?;
    let mut last_error = None;
    let mut stream = None;
    for addr in (url.host, url.port).to_socket_addrs()? {
        let attempt = match config.timeout {
            Some(t) => TcpStream::connect_timeout(&addr, t),
            None => TcpStream::connect(addr),
        };
        match attempt {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last_error = Some(e),
        }
    }
    let stream = match (stream, last_error) {
        (Some(s), _) => s,
        (None, Some(e)) => return Err(e.into()),
        (None, None) => {
            return Err(ConnectError::InvalidUrl("host resolves to no address".into()).into())
        }
    };
    stream.set_nodelay(true)?;
    let host = host_header(url.host, url.port);
    stream.set_read_timeout(config.timeout)?;
    stream.set_write_timeout(config.timeout)?;
    let ws = handshake(stream, &host, &url.resource, config)?;
    ws.get_ref().set_read_timeout(None)?;
    ws.get_ref().set_write_timeout(None)?;
    Ok(ws)
}

/// The `Host` header for `host` and `port`: an IPv6 address in brackets,
/// and no port when it is 80, the default for `ws://`.
fn host_header(host: &str, port: u16) -> String {
    match (host.contains(':'), port) {
        (true, 80) => format!("[{host}]"),
        (true, port) => format!("[{host}]:{port}"),
        (false, 80) => host.to_owned(),
        (false, port) => format!("{host}:{port}"),
    }
}

/// Connects over a Unix socket, asking for `resource` (such as `/`). Unix only.
#[cfg(unix)]
pub fn connect_unix(
    path: impl AsRef<Path>,
    resource: &str,
    config: &ClientConfig,
) -> Result<WebSocket<UnixStream>, Error> {
    let stream = UnixStream::connect(path)?;
    stream.set_read_timeout(config.timeout)?;
    stream.set_write_timeout(config.timeout)?;
    let ws = handshake(stream, "localhost", resource, config)?;
    ws.get_ref().set_read_timeout(None)?;
    ws.get_ref().set_write_timeout(None)?;
    Ok(ws)
}

/// Performs the client side of the opening handshake on any stream, such as
/// a TLS stream the caller set up; `host` is the `Host` header's value.
pub fn handshake<S: Read + Write>(
    mut stream: S,
    host: &str,
    resource: &str,
    config: &ClientConfig,
) -> Result<WebSocket<S>, Error> {
    let mut nonce = [0u8; 16];
    OsRandom::new().fill(&mut nonce)?;
    let key = base64::encode(&nonce);
    let mut request = format!(
        "GET {resource} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
    );
    if !config.protocols.is_empty() {
        request.push_str(&format!(
            "Sec-WebSocket-Protocol: {}\r\n",
            config.protocols.join(", ")
        ));
    }
    #[cfg(feature = "deflate")]
    if let Some(deflate) = &config.deflate {
        request.push_str(&format!("Sec-WebSocket-Extensions: {}\r\n", offer(deflate)));
    }
    for (name, value) in &config.headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    write_all_vectored(&mut stream, request.as_bytes(), &[])?;

    let (buf, len) = read_head(&mut stream, &config.limits)?;
    let response = ResponseHead::parse(&buf[..len], config.limits.max_headers)?;
    if response.status != 101 {
        return Err(ConnectError::Refused(response.status).into());
    }
    let headers = &response.headers;
    let bad = |why| Err(Error::Connect(ConnectError::BadResponse(why)));
    if !headers.has_token("upgrade", "websocket") {
        return bad("no Upgrade: websocket");
    }
    if !headers.has_token("connection", "upgrade") {
        return bad("no Connection: Upgrade");
    }
    if headers.get("sec-websocket-accept") != Some(accept_key(&key).as_str()) {
        return bad("wrong Sec-WebSocket-Accept");
    }
    #[cfg(not(feature = "deflate"))]
    if headers.get("sec-websocket-extensions").is_some() {
        return bad("an extension the client did not offer");
    }
    #[cfg(feature = "deflate")]
    let answer = headers.get_all("sec-websocket-extensions");
    #[cfg(feature = "deflate")]
    let agreed = match &config.deflate {
        None if headers.get("sec-websocket-extensions").is_some() => {
            return bad("an extension the client did not offer")
        }
        None => None,
        Some(deflate) => match accept_response(answer, deflate) {
            Ok(agreed) => agreed.map(|a| PerMessageDeflate::new(Role::Client, &a, deflate)),
            Err(_) => return bad("an invalid permessage-deflate answer"),
        },
    };
    let protocol = headers.get("sec-websocket-protocol").map(str::to_owned);
    if let Some(p) = &protocol {
        if !config.protocols.contains(p) {
            return bad("a subprotocol the client did not offer");
        }
    }
    let mut ws = WebSocket::from_raw(stream, Role::Client, config.limits, &buf[len..]);
    ws.set_handshake(None, protocol);
    #[cfg(feature = "deflate")]
    if let Some(deflate) = agreed {
        ws.enable_deflate(deflate);
    }
    Ok(ws)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ws_urls() {
        let url = parse_url("ws://127.0.0.1:9001/chat?room=1").unwrap();
        assert_eq!(
            (url.host, url.port, url.resource.as_str()),
            ("127.0.0.1", 9001, "/chat?room=1")
        );
        let url = parse_url("WS://example.com").unwrap();
        assert_eq!(
            (url.host, url.port, url.resource.as_str()),
            ("example.com", 80, "/")
        );
        let url = parse_url("ws://[::1]:8080?x").unwrap();
        assert_eq!(
            (url.host, url.port, url.resource.as_str()),
            ("::1", 8080, "/?x")
        );
    }

    #[test]
    fn refuses_urls_it_cannot_serve() {
        assert_eq!(
            parse_url("wss://example.com/"),
            Err(ConnectError::TlsUnsupported)
        );
        for bad in [
            "http://x/",
            "ws://",
            "ws://:80/",
            "ws://h:port/",
            "ws://u@h/",
            "ws://h/#f",
        ] {
            assert!(
                matches!(parse_url(bad), Err(ConnectError::InvalidUrl(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_host_header_brackets_ipv6_and_leaves_out_port_80() {
        assert_eq!(host_header("example.com", 80), "example.com");
        assert_eq!(host_header("example.com", 8080), "example.com:8080");
        assert_eq!(host_header("::1", 80), "[::1]");
        assert_eq!(host_header("::1", 9001), "[::1]:9001");
    }

    #[test]
    fn an_invalid_url_error_quotes_the_url_and_says_what_is_wrong() {
        assert_eq!(
            parse_url("ws://h:port/").unwrap_err().to_string(),
            "invalid WebSocket URL: bad port: \"ws://h:port/\""
        );
    }
}

//! What a request gets once its head is complete: the Host and Origin
//! checks, the upgrade rules, the hooks and the extension negotiation;
//! the lifecycle's settings and the guard around user code.
//! Pure: both server modes call it.

use super::config::{Config, HttpHook};
use super::registry::Ctx;
use crate::error::Error;
use crate::http::serve::Settings;
use crate::http::{self, HandshakeError, Request, Response};
#[cfg(feature = "deflate")]
use crate::proto::extensions::permessage_deflate::{negotiate, DeflateConfig, PerMessageDeflate};
use std::io;
use std::net::Ipv4Addr;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;

/// permessage-deflate as the client offered it, if it did, and the answer.
///
/// Not inlined, and boxed: the codec's state is kilobytes, and a caller's
/// stack frame would otherwise reserve (and touch) room for it on every
/// connection, compressed or not.
#[cfg(feature = "deflate")]
#[inline(never)]
fn negotiate_deflate(
    cfg: &DeflateConfig,
    request: &Request,
) -> Option<(Box<PerMessageDeflate>, String)> {
    let offers = request.headers().get_all("sec-websocket-extensions");
    let (agreed, answer) = negotiate(offers, cfg)?;
    Some((
        Box::new(PerMessageDeflate::new(
            crate::frame::Role::Server,
            &agreed,
            cfg,
        )),
        answer,
    ))
}

/// Where a request goes once its head is complete.
pub(crate) enum Route<'a> {
    /// A plain HTTP request, for this hook once its body is read.
    Http(&'a Arc<HttpHook>),
    /// A WebSocket upgrade that was accepted.
    Upgrade(Box<Upgrade>),
}

/// An accepted upgrade: the `101` to send, and what it agreed.
pub(crate) struct Upgrade {
    pub(crate) response: Vec<u8>,
    pub(crate) protocol: Option<String>,
    #[cfg(feature = "deflate")]
    pub(crate) deflate: Option<Box<PerMessageDeflate>>,
}

/// Why a request is turned away.
pub(crate) enum Refusal {
    /// The request broke a rule; answer with its status.
    Error(HandshakeError),
    /// [`Server::on_upgrade`] refused it with this response.
    Hook(Response),
}

/// Decides what a complete request head gets: Host and Origin checks (TCP
/// only), the upgrade rules, the hooks and the extension negotiation.
/// Pure: both the threaded server and the event loop call it.
pub(crate) fn route<'a, H>(
    ctx: &'a Ctx<H>,
    request: &Request,
    is_unix: bool,
) -> Result<Route<'a>, Refusal> {
    let config = &ctx.config;
    if !is_unix {
        check_host_and_origin(config, request).map_err(Refusal::Error)?;
    }
    if !request.is_websocket_upgrade() {
        return match &ctx.on_http {
            Some(on_http) => Ok(Route::Http(on_http)),
            None => Err(Refusal::Error(HandshakeError::NotWebSocketUpgrade)),
        };
    }
    let accept_key = http::check_upgrade(request).map_err(Refusal::Error)?;
    let protocol = match &ctx.on_upgrade {
        None => None,
        Some(hook) => hook(request).map_err(Refusal::Hook)?.protocol,
    };
    #[cfg(feature = "deflate")]
    let deflate = config
        .deflate
        .as_ref()
        .and_then(|cfg| negotiate_deflate(cfg, request));
    #[cfg(feature = "deflate")]
    let answer = deflate.as_ref().map(|(_, answer)| answer.as_str());
    #[cfg(not(feature = "deflate"))]
    let answer = None;
    Ok(Route::Upgrade(Box::new(Upgrade {
        response: http::response_101(&accept_key, protocol.as_deref(), answer),
        protocol,
        #[cfg(feature = "deflate")]
        deflate: deflate.map(|(deflate, _)| deflate),
    })))
}

/// A [`Lifecycle`](crate::http::serve::Lifecycle)'s bounds and deadlines,
/// from the server's configuration.
pub(crate) fn settings(config: &Config) -> Settings {
    Settings::new(
        &config.limits,
        config.max_body_size,
        config.handshake_timeout,
    )
}

/// Runs a user hook or handler; a panic in it becomes an error for its
/// client alone (answered with `500` before the upgrade, a close 1011
/// after it), not the end of the thread that serves it. Inlined: the event
/// loop runs it once per message.
#[inline]
pub(crate) fn guard<T>(f: impl FnOnce() -> T) -> Result<T, Error> {
    panic::catch_unwind(AssertUnwindSafe(f))
        .map_err(|_| Error::Io(io::Error::other("a callback panicked")))
}

/// `host` without a port: `[::1]:80` gives `::1`, `a.b:80` gives `a.b`.
fn host_name(host: &str) -> &str {
    if let Some(v6) = host.strip_prefix('[') {
        return v6.split(']').next().unwrap_or_default();
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

fn host_allowed(allowed: &[String], host: &str) -> bool {
    let name = host_name(host);
    let local = name.eq_ignore_ascii_case("localhost") || ends_with_ignore_case(name, ".localhost");
    is_ip_literal(host, name)
        || local
        || allowed
            .iter()
            .any(|a| a == "*" || a.eq_ignore_ascii_case(name) || a.eq_ignore_ascii_case(host))
}

/// Whether the Host header `host` (its name `name`) is an IP address: IPv4,
/// or IPv6 in brackets (RFC 3986 3.2.2), neither of which DNS can rebind.
/// The brackets' content is checked for IPv6's characters, not parsed: a
/// bracketed host cannot be a DNS name, and the parser is a kilobyte.
fn is_ip_literal(host: &str, name: &str) -> bool {
    match host.strip_prefix('[') {
        Some(_) => {
            name.contains(':')
                && name
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        }
        None => name.parse::<Ipv4Addr>().is_ok(),
    }
}

/// Whether `s` ends with `suffix`, ASCII case aside.
fn ends_with_ignore_case(s: &str, suffix: &str) -> bool {
    let (s, suffix) = (s.as_bytes(), suffix.as_bytes());
    s.len() >= suffix.len() && s[s.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
}

/// Whether `origin` may use this server: listed, or the same host and port as `host`.
fn origin_allowed(allowed: &[String], origin: &str, host: &str) -> bool {
    if allowed
        .iter()
        .any(|a| a == "*" || a.eq_ignore_ascii_case(origin))
    {
        return true;
    }
    // A scheme has no `:` (RFC 3986 3.1); a char pattern is less code.
    let Some((scheme, authority)) = origin
        .split_once(':')
        .and_then(|(scheme, rest)| Some((scheme, rest.strip_prefix("//")?)))
    else {
        return false; // "null" and other opaque origins
    };
    let default_port = if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("ws") {
        ":80"
    } else if scheme.eq_ignore_ascii_case("https") || scheme.eq_ignore_ascii_case("wss") {
        ":443"
    } else {
        return false;
    };
    let authority = authority.trim_end_matches('/');
    let strip = |a| str::strip_suffix(a, default_port).unwrap_or(a);
    strip(authority).eq_ignore_ascii_case(strip(host))
}

fn check_host_and_origin(config: &Config, request: &Request) -> Result<(), HandshakeError> {
    // No Host at all is malformed (400, from the upgrade check) or HTTP/1.0;
    // browsers always send one, so there is nothing to rebind.
    let Some(host) = request.header("host") else {
        return Ok(());
    };
    if !host_allowed(&config.allowed_hosts, host) {
        return Err(HandshakeError::Forbidden(format!(
            "host {host:?} is not allowed (add it to Config::allowed_hosts)"
        )));
    }
    if let Some(origin) = request.header("origin") {
        if !origin_allowed(&config.allowed_origins, origin, host) {
            return Err(HandshakeError::Forbidden(format!(
                "origin {origin:?} is not allowed (add it to Config::allowed_origins)"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn hosts_default_to_ip_addresses_and_localhost() {
        for host in [
            "127.0.0.1:8989",
            "192.168.1.50",
            "[::1]:80",
            "[fe80::1]",
            "[::ffff:10.0.0.1]:8989",
            "localhost:9",
            "car.localhost",
        ] {
            assert!(host_allowed(&[], host), "{host}");
        }
        for host in [
            "evil.example",
            "evil.example:8989",
            "",
            "bb400.local",
            "[evil.example]",
            "[]:80",
            "1.2.3.4.evil.example",
        ] {
            assert!(!host_allowed(&[], host), "{host}");
        }
        assert!(host_allowed(&strings(&["bb400.local"]), "BB400.local:8989"));
        assert!(host_allowed(&strings(&["*"]), "anything"));
    }

    #[test]
    fn origins_default_to_the_same_host_and_port() {
        assert!(origin_allowed(
            &[],
            "http://192.168.1.50:8989",
            "192.168.1.50:8989"
        ));
        assert!(origin_allowed(&[], "http://device", "device:80"));
        assert!(origin_allowed(&[], "https://device:443", "device"));
        assert!(!origin_allowed(
            &[],
            "http://evil.example",
            "192.168.1.50:8989"
        ));
        assert!(!origin_allowed(
            &[],
            "http://192.168.1.50:8000",
            "192.168.1.50:8989"
        ));
        assert!(!origin_allowed(&[], "null", "192.168.1.50:8989"));
        // Only web schemes can be the server's own page.
        assert!(!origin_allowed(
            &[],
            "chrome-extension://192.168.1.50:8989",
            "192.168.1.50:8989"
        ));
        assert!(!origin_allowed(&[], "file://", ""));
        let listed = strings(&["http://192.168.1.10:8000"]);
        assert!(origin_allowed(
            &listed,
            "http://192.168.1.10:8000",
            "192.168.1.50:8989"
        ));
    }
}

//! permessage-deflate (RFC 7692): negotiation, and per-connection compression
//! on [`crate::deflate`].
//!
//! Server side, [`negotiate`] takes the client's `Sec-WebSocket-Extensions`
//! lines and answers the first offer it can honour; client side, [`offer`]
//! makes the header and [`accept_response`] checks the server's answer. Both
//! give the [`AgreedParams`], from which [`PerMessageDeflate::new`] sets up a
//! connection's deflater and inflater.
//!
//! ```
//! use stdws::proto::extensions::permessage_deflate::{
//!     accept_response, negotiate, offer, DeflateConfig, PerMessageDeflate,
//! };
//! use stdws::Role;
//! let config = DeflateConfig::default();
//! let header = offer(&config);
//! assert_eq!(header, "permessage-deflate; client_max_window_bits");
//! let (agreed, answer) = negotiate([header.as_str()], &config).unwrap();
//! assert_eq!(answer, "permessage-deflate");
//! assert_eq!(accept_response([answer.as_str()], &config), Ok(Some(agreed)));
//!
//! let mut server = PerMessageDeflate::new(Role::Server, &agreed, &config);
//! let mut client = PerMessageDeflate::new(Role::Client, &agreed, &config);
//! let message = br#"{"inputs":[0,0,0,0,0,0,0,0],"outputs":[0,0,0,0,0,0,0,0]}"#;
//! let mut wire = Vec::new();
//! assert!(server.compress(message, &mut wire)); // true: send with RSV1 set
//! let mut received = Vec::new();
//! client.decompress(&wire, &mut received, 1 << 20).unwrap();
//! client.finish_message(&mut received, 1 << 20).unwrap();
//! assert_eq!(received, message);
//! ```
//!
//! # Window bits 8
//!
//! zlib cannot compress with a 256-byte window: asked for 8 bits it uses 9
//! (or, since 1.2.9, refuses raw 8-bit windows). So a peer that agreed to 8
//! bits may well send distances up to 512: this side's inflater accepts them
//! (it keeps 512 bytes), while its own deflater does honour 8 bits, with a
//! 256-byte window, when the peer asks for it.

use super::{parse, Extension, ExtensionError};
use crate::deflate::{Deflater, InflateError, Inflater, Level, WindowBits};
use crate::frame::Role;
use alloc::{format, string::String, string::ToString, vec::Vec};

/// The extension's name.
pub const NAME: &str = "permessage-deflate";

/// Compression settings, for either end of a connection. Off unless a
/// `DeflateConfig` is given; [`DeflateConfig::default`] suits most uses.
///
/// "Own" is the direction this end compresses, "peer" the one it inflates.
/// Memory per connection is bounded by the window sizes: see
/// [`crate::deflate`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeflateConfig {
    /// How hard to compress. Default [`Level::Default`].
    pub level: Level,
    /// Messages shorter than this many bytes are sent uncompressed. Default 32.
    pub threshold: usize,
    /// The largest window this end compresses with; the peer may ask for a
    /// smaller one. Default 15 (32 KiB).
    pub max_window_bits: WindowBits,
    /// The largest window the peer may compress with, which is what this
    /// end keeps between messages to inflate them. Below 15, an offer that
    /// cannot be held to it (a client that does not support
    /// `client_max_window_bits`) is declined unless the peer also resets its
    /// context every message. Default 15.
    pub max_peer_window_bits: WindowBits,
    /// Compress every message on its own (`*_no_context_takeover` for this
    /// end): worse ratio, but the peer keeps no window. Default false.
    pub no_context_takeover: bool,
    /// Require the peer to compress every message on its own, so this end
    /// keeps no inflate window. Default false.
    pub peer_no_context_takeover: bool,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        DeflateConfig {
            level: Level::Default,
            threshold: 32,
            max_window_bits: WindowBits::MAX,
            max_peer_window_bits: WindowBits::MAX,
            no_context_takeover: false,
            peer_no_context_takeover: false,
        }
    }
}

/// The parameters both ends agreed to, as the server's answer states them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AgreedParams {
    /// The server compresses every message on its own.
    pub server_no_context_takeover: bool,
    /// The client compresses every message on its own.
    pub client_no_context_takeover: bool,
    /// The server's window, if limited below 15 bits (or stated).
    pub server_max_window_bits: Option<WindowBits>,
    /// The client's window, if limited below 15 bits.
    pub client_max_window_bits: Option<WindowBits>,
}

impl AgreedParams {
    /// The `Sec-WebSocket-Extensions` value that states these parameters.
    pub fn header_value(&self) -> String {
        let mut value = NAME.to_string();
        if self.server_no_context_takeover {
            value.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            value.push_str("; client_no_context_takeover");
        }
        if let Some(bits) = self.server_max_window_bits {
            value.push_str(&format!("; server_max_window_bits={}", bits.get()));
        }
        if let Some(bits) = self.client_max_window_bits {
            value.push_str(&format!("; client_max_window_bits={}", bits.get()));
        }
        value
    }
}

/// The parameters of one permessage-deflate offer or answer.
#[derive(Clone, Copy, Debug, Default)]
struct Params {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<WindowBits>,
    /// Present, with or without a value.
    client_max_window_bits: Option<Option<WindowBits>>,
}

/// A window-bits value: `8` to `15`, no leading zero (RFC 7692 7.1.2).
fn window_bits(value: &str) -> Option<WindowBits> {
    match value.as_bytes() {
        [d @ b'8'..=b'9'] => WindowBits::new(d - b'0'),
        [b'1', d @ b'0'..=b'5'] => WindowBits::new(10 + d - b'0'),
        _ => None,
    }
}

/// Reads and checks the parameters (RFC 7692 section 7.1): each at most
/// once, flags without a value, window bits 8 to 15; in an answer,
/// `client_max_window_bits` needs a value.
fn read_params(extension: &Extension, answer: bool) -> Result<Params, ExtensionError> {
    let mut p = Params::default();
    let mut seen = [false; 4];
    for (name, value) in &extension.params {
        let invalid = |reason| ExtensionError::InvalidParameter {
            name: name.clone(),
            reason,
        };
        let index = match name.to_ascii_lowercase().as_str() {
            "server_no_context_takeover" => 0,
            "client_no_context_takeover" => 1,
            "server_max_window_bits" => 2,
            "client_max_window_bits" => 3,
            _ => return Err(invalid("is not defined for permessage-deflate")),
        };
        if core::mem::replace(&mut seen[index], true) {
            return Err(invalid("appears more than once"));
        }
        let bits = |value: &Option<String>| {
            value
                .as_deref()
                .and_then(window_bits)
                .ok_or_else(|| invalid("must be a number from 8 to 15"))
        };
        match index {
            0 | 1 if value.is_some() => return Err(invalid("takes no value")),
            0 => p.server_no_context_takeover = true,
            1 => p.client_no_context_takeover = true,
            2 => p.server_max_window_bits = Some(bits(value)?),
            _ if value.is_none() && !answer => p.client_max_window_bits = Some(None),
            _ => p.client_max_window_bits = Some(Some(bits(value)?)),
        }
    }
    Ok(p)
}

/// Server side: the parameters to accept a valid offer with, or `None` if
/// this server cannot honour it.
fn accept_offer(offer: &Params, config: &DeflateConfig) -> Option<AgreedParams> {
    // Server to client: the client may limit the server's window.
    let server_bits = match offer.server_max_window_bits {
        Some(asked) => asked.min(config.max_window_bits),
        None => config.max_window_bits,
    };
    let server_max_window_bits = (offer.server_max_window_bits.is_some()
        || server_bits < WindowBits::MAX)
        .then_some(server_bits);
    // Client to server: what this server keeps to inflate.
    let client_no_context_takeover =
        offer.client_no_context_takeover || config.peer_no_context_takeover;
    let client_max_window_bits = match offer.client_max_window_bits {
        // Without the parameter the client's window cannot be limited.
        None if config.max_peer_window_bits < WindowBits::MAX && !client_no_context_takeover => {
            return None
        }
        None => None,
        Some(hint) => {
            let bits = hint
                .unwrap_or(WindowBits::MAX)
                .min(config.max_peer_window_bits);
            (bits < WindowBits::MAX).then_some(bits)
        }
    };
    Some(AgreedParams {
        server_no_context_takeover: offer.server_no_context_takeover || config.no_context_takeover,
        client_no_context_takeover,
        server_max_window_bits,
        client_max_window_bits,
    })
}

/// Server side: answers the client's offers (every `Sec-WebSocket-Extensions`
/// line of the request): the first permessage-deflate offer this server can
/// honour, as the agreed parameters and the header value to answer with.
/// Offers with undefined, repeated or invalid parameters are declined (RFC
/// 7692 section 7.1) and the next is tried; `None` if none fits or the header
/// is malformed: the connection then goes on uncompressed.
///
/// ```
/// use stdws::proto::extensions::permessage_deflate::{negotiate, DeflateConfig};
/// let config = DeflateConfig::default();
/// let offers = [
///     "permessage-deflate; server_max_window_bits=16", // invalid: declined
///     "permessage-deflate; server_max_window_bits=10; client_max_window_bits",
/// ];
/// let (agreed, answer) = negotiate(offers, &config).unwrap();
/// assert_eq!(answer, "permessage-deflate; server_max_window_bits=10");
/// assert_eq!(agreed.server_max_window_bits.map(|b| b.get()), Some(10));
/// ```
pub fn negotiate<'a>(
    offers: impl IntoIterator<Item = &'a str>,
    config: &DeflateConfig,
) -> Option<(AgreedParams, String)> {
    let extensions = parse(offers).ok()?;
    extensions
        .iter()
        .filter(|e| e.name.eq_ignore_ascii_case(NAME))
        .filter_map(|e| read_params(e, false).ok())
        .find_map(|offer| accept_offer(&offer, config))
        .map(|agreed| (agreed, agreed.header_value()))
}

/// Client side: the `Sec-WebSocket-Extensions` value offering
/// permessage-deflate with `config`. It always includes
/// `client_max_window_bits`, so the server may limit the client's window.
pub fn offer(config: &DeflateConfig) -> String {
    let mut value = NAME.to_string();
    if config.max_window_bits < WindowBits::MAX {
        value.push_str(&format!(
            "; client_max_window_bits={}",
            config.max_window_bits.get()
        ));
    } else {
        value.push_str("; client_max_window_bits");
    }
    if config.max_peer_window_bits < WindowBits::MAX {
        value.push_str(&format!(
            "; server_max_window_bits={}",
            config.max_peer_window_bits.get()
        ));
    }
    if config.no_context_takeover {
        value.push_str("; client_no_context_takeover");
    }
    if config.peer_no_context_takeover {
        value.push_str("; server_no_context_takeover");
    }
    value
}

/// Client side: checks the server's answer (every `Sec-WebSocket-Extensions`
/// line of the `101`) against the offer [`offer`] made with `config`.
/// `Ok(None)`: the server declined, the connection is uncompressed. An error
/// means the client must fail the connection (RFC 7692 section 7.1): an
/// extension that was not offered, an undefined, repeated or invalid
/// parameter, a window larger than offered, or no `server_no_context_takeover`
/// when the offer asked for it.
pub fn accept_response<'a>(
    values: impl IntoIterator<Item = &'a str>,
    config: &DeflateConfig,
) -> Result<Option<AgreedParams>, ExtensionError> {
    let extensions = parse(values)?;
    let extension = match extensions.as_slice() {
        [] => return Ok(None),
        [e] if e.name.eq_ignore_ascii_case(NAME) => e,
        [e] => return Err(ExtensionError::Unexpected(e.name.clone())),
        [_, e, ..] => return Err(ExtensionError::Unexpected(e.name.clone())),
    };
    let p = read_params(extension, true)?;
    let limited = config.max_peer_window_bits < WindowBits::MAX;
    match p.server_max_window_bits {
        Some(bits) if limited && bits > config.max_peer_window_bits => {
            return Err(ExtensionError::InvalidParameter {
                name: "server_max_window_bits".into(),
                reason: "is larger than the client offered",
            })
        }
        None if limited => return Err(ExtensionError::MissingParameter("server_max_window_bits")),
        _ => {}
    }
    if config.peer_no_context_takeover && !p.server_no_context_takeover {
        return Err(ExtensionError::MissingParameter(
            "server_no_context_takeover",
        ));
    }
    Ok(Some(AgreedParams {
        server_no_context_takeover: p.server_no_context_takeover,
        client_no_context_takeover: p.client_no_context_takeover,
        server_max_window_bits: p.server_max_window_bits,
        client_max_window_bits: p.client_max_window_bits.flatten(),
    }))
}

/// One connection's compression state: the deflater for messages sent and
/// the inflater for messages received, set up from the agreed parameters.
///
/// Sending: [`PerMessageDeflate::compress`]; if it returns true, send its
/// output as the message's payload with RSV1 set on the first frame.
/// Receiving a message whose first frame had RSV1 set: pass each frame's
/// (unmasked) payload to [`PerMessageDeflate::decompress`] as it arrives,
/// then call [`PerMessageDeflate::finish_message`] after the FIN frame.
/// [`PerMessageDeflate::split`] separates the two directions, for a
/// receiving thread and a sending lock.
#[derive(Clone, Debug)]
pub struct PerMessageDeflate {
    compressor: Compressor,
    decompressor: Decompressor,
}

/// The sending half: compresses outgoing messages, in the order they go out
/// (with context takeover each refers back to the ones before).
#[derive(Clone, Debug)]
pub struct Compressor {
    deflater: Deflater,
    threshold: usize,
    reset: bool,
}

/// The receiving half: inflates incoming compressed messages.
#[derive(Clone, Debug)]
pub struct Decompressor {
    inflater: Inflater,
}

impl PerMessageDeflate {
    /// The state for this end (`role`) of a connection with these parameters.
    pub fn new(role: Role, agreed: &AgreedParams, config: &DeflateConfig) -> Self {
        let (own_nct, own_bits, peer_nct, peer_bits) = match role {
            Role::Server => (
                agreed.server_no_context_takeover,
                agreed.server_max_window_bits,
                agreed.client_no_context_takeover,
                agreed.client_max_window_bits,
            ),
            Role::Client => (
                agreed.client_no_context_takeover,
                agreed.client_max_window_bits,
                agreed.server_no_context_takeover,
                agreed.server_max_window_bits,
            ),
        };
        let own_bits = own_bits
            .unwrap_or(WindowBits::MAX)
            .min(config.max_window_bits);
        // A peer that agreed to 8 bits may use 9: see the module docs.
        let nine = WindowBits::new(9).unwrap_or(WindowBits::MAX);
        let peer_bits = peer_bits.unwrap_or(WindowBits::MAX).max(nine);
        let mut inflater = Inflater::new(peer_bits);
        inflater.set_context_takeover(!peer_nct);
        PerMessageDeflate {
            compressor: Compressor {
                deflater: Deflater::new(config.level, own_bits),
                threshold: config.threshold,
                reset: own_nct || config.no_context_takeover,
            },
            decompressor: Decompressor { inflater },
        }
    }

    /// See [`Compressor::compress`].
    pub fn compress(&mut self, payload: &[u8], out: &mut Vec<u8>) -> bool {
        self.compressor.compress(payload, out)
    }

    /// See [`Decompressor::decompress`].
    pub fn decompress(
        &mut self,
        payload: &[u8],
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), InflateError> {
        self.decompressor.decompress(payload, out, limit)
    }

    /// See [`Decompressor::finish_message`].
    pub fn finish_message(&mut self, out: &mut Vec<u8>, limit: usize) -> Result<(), InflateError> {
        self.decompressor.finish_message(out, limit)
    }

    /// Bytes of memory held for compression on this connection now.
    pub fn memory_held(&self) -> usize {
        self.compressor.memory_held() + self.decompressor.memory_held()
    }

    /// The sending and the receiving halves.
    pub fn split(self) -> (Compressor, Decompressor) {
        (self.compressor, self.decompressor)
    }
}

impl Compressor {
    /// Compresses an outgoing message's payload into `out` (appending) if it
    /// is at least the threshold long; returns whether it did, which is
    /// whether to set RSV1. A message left uncompressed does not touch the
    /// compression context, so the peer's stays in step.
    pub fn compress(&mut self, payload: &[u8], out: &mut Vec<u8>) -> bool {
        if payload.len() < self.threshold {
            return false;
        }
        if self.reset {
            self.deflater.reset();
        }
        self.deflater.compress_message(payload, out);
        true
    }

    /// Bytes of memory held now: nothing until the first compressed message.
    pub fn memory_held(&self) -> usize {
        self.deflater.memory_held()
    }
}

impl Decompressor {
    /// Inflates the next piece of a compressed message's payload into `out`,
    /// which never grows past `limit` bytes: over it,
    /// [`InflateError::OutputLimit`], to fail the connection with 1009. Any
    /// other error means invalid compressed data (1007 is the usual close
    /// code). Errors are final for the connection.
    pub fn decompress(
        &mut self,
        payload: &[u8],
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), InflateError> {
        self.inflater.inflate(payload, out, limit)
    }

    /// Ends a compressed message (after its FIN frame's payload): may still
    /// produce output, so the same limit applies.
    pub fn finish_message(&mut self, out: &mut Vec<u8>, limit: usize) -> Result<(), InflateError> {
        self.inflater.finish_message(out, limit)
    }

    /// Bytes of memory held now: the window once a message has ended with
    /// context takeover, and the decoding tables once a dynamic block came.
    pub fn memory_held(&self) -> usize {
        self.inflater.memory_held()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bits(n: u8) -> WindowBits {
        WindowBits::new(n).unwrap()
    }

    fn answer(offers: &[&str], config: &DeflateConfig) -> Option<String> {
        negotiate(offers.iter().copied(), config).map(|(_, answer)| answer)
    }

    #[test]
    fn accepts_what_browsers_offer() {
        let config = DeflateConfig::default();
        // Chrome and Firefox.
        for offer in [
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate",
        ] {
            assert_eq!(
                answer(&[offer], &config).as_deref(),
                Some("permessage-deflate")
            );
        }
    }

    #[test]
    fn honours_the_window_and_context_parameters_of_an_offer() {
        let config = DeflateConfig::default();
        let cases = [
            (
                "permessage-deflate; server_no_context_takeover",
                "permessage-deflate; server_no_context_takeover",
            ),
            (
                "permessage-deflate; client_no_context_takeover",
                "permessage-deflate; client_no_context_takeover",
            ),
            (
                "permessage-deflate; server_max_window_bits=10",
                "permessage-deflate; server_max_window_bits=10",
            ),
            (
                "permessage-deflate; server_max_window_bits=15",
                "permessage-deflate; server_max_window_bits=15",
            ),
            (
                "permessage-deflate; server_max_window_bits=8",
                "permessage-deflate; server_max_window_bits=8",
            ),
            (
                "permessage-deflate; client_max_window_bits=9",
                "permessage-deflate; client_max_window_bits=9",
            ),
            (
                "PerMessage-Deflate; Client_Max_Window_Bits=\"12\"",
                "permessage-deflate; client_max_window_bits=12",
            ),
        ];
        for (offer, expected) in cases {
            assert_eq!(
                answer(&[offer], &config).as_deref(),
                Some(expected),
                "{offer}"
            );
        }
    }

    #[test]
    fn applies_its_own_limits_to_the_answer() {
        let config = DeflateConfig {
            max_window_bits: bits(11),
            max_peer_window_bits: bits(10),
            no_context_takeover: true,
            peer_no_context_takeover: true,
            ..DeflateConfig::default()
        };
        assert_eq!(
            answer(
                &["permessage-deflate; client_max_window_bits; server_max_window_bits=13"],
                &config
            )
            .as_deref(),
            Some(
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
                 server_max_window_bits=11; client_max_window_bits=10"
            )
        );
        // The client hinted at a smaller window than the server's limit.
        let config = DeflateConfig {
            max_peer_window_bits: bits(10),
            ..DeflateConfig::default()
        };
        assert_eq!(
            answer(&["permessage-deflate; client_max_window_bits=9"], &config).as_deref(),
            Some("permessage-deflate; client_max_window_bits=9")
        );
    }

    #[test]
    fn declines_an_offer_whose_client_window_it_cannot_limit() {
        let config = DeflateConfig {
            max_peer_window_bits: bits(10),
            ..DeflateConfig::default()
        };
        assert_eq!(answer(&["permessage-deflate"], &config), None);
        // The next offer supports the parameter.
        assert_eq!(
            answer(
                &[
                    "permessage-deflate",
                    "permessage-deflate; client_max_window_bits"
                ],
                &config
            )
            .as_deref(),
            Some("permessage-deflate; client_max_window_bits=10")
        );
        // Without context takeover the window is never kept: accepted.
        let config = DeflateConfig {
            peer_no_context_takeover: true,
            ..config
        };
        assert_eq!(
            answer(&["permessage-deflate"], &config).as_deref(),
            Some("permessage-deflate; client_no_context_takeover")
        );
    }

    #[test]
    fn declines_invalid_offers_and_tries_the_next() {
        let config = DeflateConfig::default();
        for bad in [
            "permessage-deflate; foo",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; client_no_context_takeover=\"x\"",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=010",
            "permessage-deflate; server_max_window_bits=1O",
            "permessage-deflate; client_max_window_bits=0",
            "permessage-deflate; client_max_window_bits=15; client_max_window_bits",
        ] {
            assert_eq!(answer(&[bad], &config), None, "{bad}");
            assert_eq!(
                answer(
                    &[bad, "permessage-deflate; server_max_window_bits=9"],
                    &config
                )
                .as_deref(),
                Some("permessage-deflate; server_max_window_bits=9"),
                "{bad}"
            );
        }
    }

    #[test]
    fn ignores_other_extensions_and_a_malformed_header() {
        let config = DeflateConfig::default();
        assert_eq!(
            answer(
                &["x-webkit-deflate-frame", "foo; bar, permessage-deflate"],
                &config
            )
            .as_deref(),
            Some("permessage-deflate")
        );
        assert_eq!(answer(&["x-webkit-deflate-frame"], &config), None);
        assert_eq!(answer(&["permessage-deflate; a=\"b"], &config), None);
        assert_eq!(answer(&[], &config), None);
    }

    #[test]
    fn the_client_offers_what_its_config_says() {
        assert_eq!(
            offer(&DeflateConfig::default()),
            "permessage-deflate; client_max_window_bits"
        );
        let config = DeflateConfig {
            max_window_bits: bits(12),
            max_peer_window_bits: bits(10),
            no_context_takeover: true,
            peer_no_context_takeover: true,
            ..DeflateConfig::default()
        };
        let header = offer(&config);
        assert_eq!(
            header,
            "permessage-deflate; client_max_window_bits=12; server_max_window_bits=10; \
             client_no_context_takeover; server_no_context_takeover"
        );
        // A server with its defaults agrees, and the client accepts the answer.
        let (agreed, answer) = negotiate([header.as_str()], &DeflateConfig::default()).unwrap();
        assert_eq!(
            accept_response([answer.as_str()], &config),
            Ok(Some(agreed))
        );
        assert_eq!(agreed.server_max_window_bits, Some(bits(10)));
        assert_eq!(agreed.client_max_window_bits, Some(bits(12)));
        assert!(agreed.server_no_context_takeover && agreed.client_no_context_takeover);
    }

    #[test]
    fn the_client_accepts_valid_answers() {
        let config = DeflateConfig::default();
        assert_eq!(accept_response([], &config), Ok(None));
        assert_eq!(
            accept_response(
                ["permessage-deflate; server_max_window_bits=9; client_max_window_bits=10; server_no_context_takeover"],
                &config
            ),
            Ok(Some(AgreedParams {
                server_no_context_takeover: true,
                client_no_context_takeover: false,
                server_max_window_bits: Some(bits(9)),
                client_max_window_bits: Some(bits(10)),
            }))
        );
    }

    #[test]
    fn the_client_fails_answers_that_break_rfc_7692() {
        let config = DeflateConfig::default();
        let unexpected = |name: &str| Err(ExtensionError::Unexpected(name.into()));
        assert_eq!(accept_response(["foo"], &config), unexpected("foo"));
        assert_eq!(
            accept_response(["permessage-deflate, permessage-deflate"], &config),
            unexpected("permessage-deflate")
        );
        assert_eq!(
            accept_response(["permessage-deflate", "foo"], &config),
            unexpected("foo")
        );
        for bad in [
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate; client_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; client_no_context_takeover=yes",
            "permessage-deflate; foo",
        ] {
            assert!(
                matches!(
                    accept_response([bad], &config),
                    Err(ExtensionError::InvalidParameter { .. })
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            accept_response(["permessage-deflate; a=\""], &config),
            Err(ExtensionError::Malformed(_))
        ));
        // The offer limited the server's window and asked it to reset.
        let config = DeflateConfig {
            max_peer_window_bits: bits(10),
            peer_no_context_takeover: true,
            ..DeflateConfig::default()
        };
        assert_eq!(
            accept_response(
                ["permessage-deflate; server_no_context_takeover; server_max_window_bits=11"],
                &config
            ),
            Err(ExtensionError::InvalidParameter {
                name: "server_max_window_bits".into(),
                reason: "is larger than the client offered"
            })
        );
        assert_eq!(
            accept_response(["permessage-deflate; server_no_context_takeover"], &config),
            Err(ExtensionError::MissingParameter("server_max_window_bits"))
        );
        assert_eq!(
            accept_response(["permessage-deflate; server_max_window_bits=10"], &config),
            Err(ExtensionError::MissingParameter(
                "server_no_context_takeover"
            ))
        );
        let e = ExtensionError::MissingParameter("server_no_context_takeover");
        assert_eq!(
            e.to_string(),
            "the server's answer lacks the server_no_context_takeover parameter"
        );
    }

    fn pair(
        agreed: &AgreedParams,
        config: &DeflateConfig,
    ) -> (PerMessageDeflate, PerMessageDeflate) {
        (
            PerMessageDeflate::new(Role::Server, agreed, config),
            PerMessageDeflate::new(Role::Client, agreed, config),
        )
    }

    fn send(from: &mut PerMessageDeflate, to: &mut PerMessageDeflate, message: &[u8]) -> usize {
        let mut wire = Vec::new();
        if !from.compress(message, &mut wire) {
            return usize::MAX;
        }
        let mut out = Vec::new();
        for piece in wire.chunks(7) {
            to.decompress(piece, &mut out, 1 << 20).unwrap();
        }
        to.finish_message(&mut out, 1 << 20).unwrap();
        assert_eq!(out, message);
        wire.len()
    }

    #[test]
    fn messages_round_trip_both_ways_with_and_without_context_takeover() {
        let message = br#"{"inputs":[0,1,0,0,1,0,0,0],"outputs":[1,1,0,0,0,0,0,1]}"#;
        let config = DeflateConfig::default();
        let takeover = AgreedParams::default();
        let (mut server, mut client) = pair(&takeover, &config);
        let first = send(&mut server, &mut client, message);
        let second = send(&mut server, &mut client, message);
        assert!(second < first / 3, "{first} {second}");
        assert!(send(&mut client, &mut server, message) < message.len());

        let none = AgreedParams {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            ..AgreedParams::default()
        };
        let (mut server, mut client) = pair(&none, &config);
        for _ in 0..3 {
            assert_eq!(send(&mut server, &mut client, message), first);
            send(&mut client, &mut server, message);
        }
    }

    #[test]
    fn short_messages_go_uncompressed() {
        let config = DeflateConfig {
            threshold: 10,
            ..DeflateConfig::default()
        };
        let (mut server, mut client) = pair(&AgreedParams::default(), &config);
        let mut wire = Vec::new();
        assert!(!server.compress(b"123456789", &mut wire));
        assert!(wire.is_empty());
        assert!(send(&mut server, &mut client, b"1234567890") < usize::MAX);
    }

    #[test]
    fn an_agreed_window_is_respected_both_ways() {
        // The peer inflates with exactly the agreed window: a longer match fails.
        let data: Vec<u8> = (0..600u32)
            .map(|i| (i * 7919 % 256) as u8)
            .collect::<Vec<_>>()
            .repeat(20);
        for n in [9, 10, 12] {
            let agreed = AgreedParams {
                server_max_window_bits: Some(bits(n)),
                client_max_window_bits: Some(bits(n)),
                ..AgreedParams::default()
            };
            let (mut server, mut client) = pair(&agreed, &DeflateConfig::default());
            send(&mut server, &mut client, &data);
            send(&mut client, &mut server, &data);
        }
        // A peer that agreed to 8 bits may send distances up to 512 (zlib).
        let agreed = AgreedParams {
            client_max_window_bits: Some(bits(8)),
            ..AgreedParams::default()
        };
        let mut server = PerMessageDeflate::new(Role::Server, &agreed, &DeflateConfig::default());
        let mut wire = Vec::new();
        Deflater::new(Level::Default, bits(9)).compress_message(&data, &mut wire);
        let mut out = Vec::new();
        server.decompress(&wire, &mut out, 1 << 20).unwrap();
        server.finish_message(&mut out, 1 << 20).unwrap();
        assert_eq!(out, data);
    }

    #[test]
    fn the_halves_work_apart() {
        let config = DeflateConfig::default();
        let (mut send, _) =
            PerMessageDeflate::new(Role::Server, &AgreedParams::default(), &config).split();
        let (_, mut receive) =
            PerMessageDeflate::new(Role::Client, &AgreedParams::default(), &config).split();
        for _ in 0..3 {
            let mut wire = Vec::new();
            assert!(send.compress(&[b'y'; 100], &mut wire));
            let mut out = Vec::new();
            receive.decompress(&wire, &mut out, 100).unwrap();
            receive.finish_message(&mut out, 100).unwrap();
            assert_eq!(out, [b'y'; 100]);
        }
        assert!(send.memory_held() > 200 << 10 && receive.memory_held() < 48 << 10);
    }

    #[test]
    fn memory_is_held_only_once_used() {
        let (mut server, mut client) = pair(&AgreedParams::default(), &DeflateConfig::default());
        assert!(server.memory_held() < 4096);
        send(&mut server, &mut client, &[b'x'; 1000]);
        let held = server.memory_held() + client.memory_held();
        assert!(held > 256 << 10 && held < 300 << 10, "{held}");
    }
}

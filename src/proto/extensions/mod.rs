//! WebSocket extensions (RFC 6455 section 9): the `Sec-WebSocket-Extensions`
//! header, and [`permessage_deflate`] (RFC 7692) built on [`crate::deflate`].
//!
//! [`parse`] reads every line of the header into [`Extension`]s: offers or
//! an answer, comma-separated, each a name with `;`-separated parameters
//! whose values are tokens or quoted strings (RFC 6455 section 9.1).
//!
//! ```
//! use stdws::proto::extensions::parse;
//! let offers = parse([
//!     "permessage-deflate; client_max_window_bits; server_max_window_bits=\"10\"",
//!     "permessage-deflate, x-webkit-deflate-frame",
//! ])
//! .unwrap();
//! assert_eq!(offers.len(), 3);
//! assert_eq!(offers[0].params[1], ("server_max_window_bits".into(), Some("10".into())));
//! assert_eq!(offers[2].to_string(), "x-webkit-deflate-frame");
//! ```
#![forbid(unsafe_code)]

#[cfg(not(feature = "deflate"))]
mod no_deflate;
#[cfg(feature = "deflate")]
pub mod permessage_deflate;

// What the connection's two halves hold for compression: the codec's
// halves, or (without the `deflate` feature) types with no values.
#[cfg(not(feature = "deflate"))]
pub(crate) use no_deflate::{Compressor, Decompressor, InflateError};
#[cfg(feature = "deflate")]
pub(crate) use {
    crate::deflate::InflateError,
    permessage_deflate::{Compressor, Decompressor},
};

use alloc::{string::String, vec::Vec};
use core::fmt;

/// One extension offered or accepted, with its parameters in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extension {
    /// The extension's name, such as `permessage-deflate`.
    pub name: String,
    /// Parameters as (name, value); a quoted value is unquoted.
    pub params: Vec<(String, Option<String>)>,
}

impl fmt::Display for Extension {
    /// The header form: `name; param; param=value`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        for (name, value) in &self.params {
            write!(f, "; {name}")?;
            if let Some(v) = value {
                write!(f, "={v}")?;
            }
        }
        Ok(())
    }
}

/// Why a `Sec-WebSocket-Extensions` header was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExtensionError {
    /// The header does not follow the grammar of RFC 6455 section 9.1.
    Malformed(&'static str),
    /// The server's answer names an extension the client did not offer, or
    /// names one more than once.
    Unexpected(String),
    /// A parameter that is not defined, repeated, or has an invalid value.
    InvalidParameter {
        /// The parameter's name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The server's answer lacks a parameter the client's offer requires.
    MissingParameter(&'static str),
}

impl fmt::Display for ExtensionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExtensionError::Malformed(why) => {
                write!(f, "malformed Sec-WebSocket-Extensions header: {why}")
            }
            ExtensionError::Unexpected(name) => {
                write!(
                    f,
                    "the server accepted extension {name:?}, which was not offered"
                )
            }
            ExtensionError::InvalidParameter { name, reason } => {
                write!(f, "extension parameter {name:?} {reason}")
            }
            ExtensionError::MissingParameter(name) => {
                write!(f, "the server's answer lacks the {name} parameter")
            }
        }
    }
}

impl core::error::Error for ExtensionError {}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A cursor over one header value.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn skip_ows(&mut self) {
        while matches!(self.bytes.get(self.at), Some(b' ' | b'\t')) {
            self.at += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn token(&mut self, what: &'static str) -> Result<String, ExtensionError> {
        let start = self.at;
        while self.peek().is_some_and(is_tchar) {
            self.at += 1;
        }
        if self.at == start {
            return Err(ExtensionError::Malformed(what));
        }
        // Tokens are ASCII.
        Ok(String::from_utf8_lossy(&self.bytes[start..self.at]).into_owned())
    }

    /// A quoted string, unescaped; its content must be a token (RFC 6455 9.1).
    fn quoted(&mut self) -> Result<String, ExtensionError> {
        self.at += 1; // the opening quote
        let mut value = Vec::new();
        loop {
            match self.peek() {
                None => return Err(ExtensionError::Malformed("unterminated quoted string")),
                Some(b'"') => {
                    self.at += 1;
                    break;
                }
                Some(b'\\') => {
                    self.at += 1;
                    match self.peek() {
                        Some(b) => value.push(b),
                        None => {
                            return Err(ExtensionError::Malformed("unterminated quoted string"))
                        }
                    }
                }
                Some(b) => value.push(b),
            }
            self.at += 1;
        }
        if value.is_empty() || !value.iter().all(|&b| is_tchar(b)) {
            return Err(ExtensionError::Malformed(
                "a quoted parameter value that is not a token",
            ));
        }
        Ok(String::from_utf8_lossy(&value).into_owned())
    }
}

/// Parses every value of a `Sec-WebSocket-Extensions` header, in order, into
/// the extensions they list. Empty list elements are skipped, as HTTP's list
/// rule allows; anything else off the grammar is an error.
pub fn parse<'a>(
    values: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<Extension>, ExtensionError> {
    let mut extensions = Vec::new();
    for value in values {
        let mut c = Cursor {
            bytes: value.as_bytes(),
            at: 0,
        };
        loop {
            c.skip_ows();
            match c.peek() {
                None => break,
                Some(b',') => {
                    c.at += 1;
                    continue;
                }
                Some(_) => {}
            }
            let mut extension = Extension {
                name: c.token("expected an extension name")?,
                params: Vec::new(),
            };
            loop {
                c.skip_ows();
                match c.peek() {
                    None => break,
                    Some(b',') => {
                        c.at += 1;
                        break;
                    }
                    Some(b';') => c.at += 1,
                    Some(_) => {
                        return Err(ExtensionError::Malformed(
                            "expected ';' or ',' after an extension or parameter",
                        ))
                    }
                }
                c.skip_ows();
                let name = c.token("expected a parameter name")?;
                c.skip_ows();
                let value = if c.peek() == Some(b'=') {
                    c.at += 1;
                    c.skip_ows();
                    Some(if c.peek() == Some(b'"') {
                        c.quoted()?
                    } else {
                        c.token("expected a parameter value")?
                    })
                } else {
                    None
                };
                extension.params.push((name, value));
            }
            extensions.push(extension);
        }
    }
    Ok(extensions)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(name: &str, params: &[(&str, Option<&str>)]) -> Extension {
        Extension {
            name: name.into(),
            params: params
                .iter()
                .map(|(n, v)| (n.to_string(), v.map(str::to_string)))
                .collect(),
        }
    }

    #[test]
    fn parses_offers_parameters_and_whitespace() {
        let parsed = parse([
            "permessage-deflate;client_max_window_bits ; server_max_window_bits = 10",
            " foo , bar; baz=\"qu\\x\"",
        ])
        .unwrap();
        assert_eq!(
            parsed,
            vec![
                ext(
                    "permessage-deflate",
                    &[
                        ("client_max_window_bits", None),
                        ("server_max_window_bits", Some("10"))
                    ]
                ),
                ext("foo", &[]),
                ext("bar", &[("baz", Some("qux"))]),
            ]
        );
    }

    #[test]
    fn skips_empty_list_elements() {
        assert_eq!(
            parse([", a ,, b,", "", "  "]).unwrap(),
            vec![ext("a", &[]), ext("b", &[])]
        );
    }

    #[test]
    fn refuses_what_is_off_the_grammar() {
        for bad in [
            "a;",
            "a; =1",
            "a b",
            "a; b=",
            "a; b=\"1",
            "a; b=\"\"",
            "a; b=\"1 2\"",
            "a; b=1 2",
            "a; b=(1)",
            ";a",
            "a;; b",
            "\"a\"",
            "a; b=\"1\\",
        ] {
            assert!(
                matches!(parse([bad]), Err(ExtensionError::Malformed(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn prints_back_in_header_form() {
        let parsed =
            parse(["permessage-deflate ;server_no_context_takeover;client_max_window_bits=\"9\""])
                .unwrap();
        assert_eq!(
            parsed[0].to_string(),
            "permessage-deflate; server_no_context_takeover; client_max_window_bits=9"
        );
    }

    #[cfg(feature = "deflate")]
    #[test]
    fn errors_say_what_is_wrong_with_the_header() {
        use permessage_deflate::{accept_response, DeflateConfig};
        let says = |e: ExtensionError, facts: &[&str]| {
            let text = e.to_string();
            for fact in facts {
                assert!(text.contains(fact), "{text:?} lacks {fact:?}");
            }
        };
        says(
            parse(["a; b=\"1\\"]).unwrap_err(),
            &[
                "malformed Sec-WebSocket-Extensions",
                "unterminated quoted string",
            ],
        );
        let config = DeflateConfig::default();
        says(
            accept_response(["x-webkit-deflate-frame"], &config).unwrap_err(),
            &["\"x-webkit-deflate-frame\"", "not offered"],
        );
        says(
            accept_response(["permessage-deflate; server_max_window_bits=7"], &config).unwrap_err(),
            &["\"server_max_window_bits\""],
        );
        let limited = DeflateConfig {
            max_peer_window_bits: crate::deflate::WindowBits::new(10).unwrap(),
            ..DeflateConfig::default()
        };
        says(
            accept_response(["permessage-deflate"], &limited).unwrap_err(),
            &["answer lacks", "server_max_window_bits"],
        );
    }
}

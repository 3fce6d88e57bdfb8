//! The two uses the handshake has for base64 (RFC 4648 section 4, with
//! padding): encoding a key or an accept value, and checking that a
//! `Sec-WebSocket-Key` is 16 bytes encoded. Small enough to own.

use alloc::string::String;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// `bytes` in base64, padded with `=` to a multiple of 4 characters.
pub(crate) fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Whether `key` is exactly 16 bytes in canonical base64: 22 characters of
/// the alphabet, the last of them with its 4 unused bits zero, then `==`.
pub(crate) fn is_16_bytes(key: &str) -> bool {
    let Some((data, b"==")) = key.as_bytes().split_last_chunk::<2>() else {
        return false;
    };
    data.len() == 22
        && data.iter().enumerate().all(|(i, &c)| match value(c) {
            Some(v) => i < 21 || v & 0xF == 0,
            None => false,
        })
}

/// A base64 character's 6 bits.
fn value(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_rfc_4648_test_vectors() {
        let vectors = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(encode(plain.as_bytes()), encoded, "{plain:?}");
        }
    }

    #[test]
    fn encodes_every_byte_value_in_place() {
        let all: Vec<u8> = (0..=255).collect();
        let encoded = encode(&all);
        assert_eq!(encoded.len(), 344);
        assert!(encoded.starts_with("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIj"));
        assert!(encoded.ends_with("+fr7/P3+/w=="));
    }

    #[test]
    fn accepts_only_canonical_16_byte_keys() {
        assert!(is_16_bytes("dGhlIHNhbXBsZSBub25jZQ=="));
        for key in [0u8, 1, 0x7f, 0xff] {
            assert!(is_16_bytes(&encode(&[key; 16])), "{key}");
        }
        for bad in [
            "",
            "dGhlIHNhbXBsZSBub25jZQ=",      // short padding
            "dGhlIHNhbXBsZSBub25jZQ",       // none
            "dGhlIHNhbXBsZSBub25jZR==",     // trailing bits set
            "dGhlIHNhbXBsZSBub25j!Q==",     // not the alphabet
            "dGhlIHNhbXBsZSBub25jZQ==AAAA", // longer
            "dGhlIHNhbXBsZSBub25jZm8=",     // 17 bytes
            "dGhlIHNhbXBsZSBub25jZQ=A",
        ] {
            assert!(!is_16_bytes(bad), "{bad:?}");
        }
    }
}

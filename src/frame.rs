//! Frame headers (RFC 6455 section 5.2): parse from bytes, encode to bytes.
//!
//! Pure functions over byte slices. The parser checks what a header alone can
//! break: reserved opcodes, control frames that are long or fragmented, and a
//! 64-bit length with its top bit set. What depends on the connection (masking
//! direction, RSV bits an extension allows, sizes) is the protocol's business.

use crate::status::Status;
use core::fmt;

/// The longest header: 2 bytes, 8 bytes of extended length, 4 bytes of mask.
pub const MAX_HEADER_LEN: usize = 14;

/// The largest payload a control frame may carry.
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// Which end of the connection this is; it decides which way masking goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Receives masked frames, sends unmasked ones.
    Server,
    /// Receives unmasked frames, sends masked ones.
    Client,
}

/// A frame's opcode; reserved values are rejected by [`parse`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpCode {
    /// Continues a fragmented message.
    Continuation,
    /// The first frame of a text message.
    Text,
    /// The first frame of a binary message.
    Binary,
    /// Close handshake.
    Close,
    /// Ping; the peer answers with a pong carrying the same payload.
    Ping,
    /// Pong.
    Pong,
}

impl OpCode {
    /// Decodes the four opcode bits; reserved values give `None`.
    pub fn from_bits(bits: u8) -> Option<OpCode> {
        Some(match bits {
            0 => OpCode::Continuation,
            1 => OpCode::Text,
            2 => OpCode::Binary,
            8 => OpCode::Close,
            9 => OpCode::Ping,
            10 => OpCode::Pong,
            _ => return None,
        })
    }

    /// The four opcode bits.
    pub fn bits(self) -> u8 {
        match self {
            OpCode::Continuation => 0,
            OpCode::Text => 1,
            OpCode::Binary => 2,
            OpCode::Close => 8,
            OpCode::Ping => 9,
            OpCode::Pong => 10,
        }
    }

    /// Close, ping and pong: at most 125 bytes, never fragmented, allowed between fragments.
    pub fn is_control(self) -> bool {
        self.bits() & 0x8 != 0
    }
}

/// A parsed frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// Last frame of its message.
    pub fin: bool,
    /// RSV1, RSV2, RSV3 as the low three bits (RSV1 = 0b100).
    pub rsv: u8,
    /// What the frame carries.
    pub opcode: OpCode,
    /// The masking key; client-to-server frames must have one.
    pub mask: Option<[u8; 4]>,
    /// Payload length in bytes.
    pub payload_len: u64,
}

/// Why a frame header is invalid; every case fails the connection with 1002.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// Opcodes 3-7 and 11-15 are reserved.
    ReservedOpcode(u8),
    /// A control frame with a payload over 125 bytes.
    ControlFrameTooLong(u64),
    /// A control frame without FIN.
    FragmentedControlFrame,
    /// A 64-bit length with its most significant bit set.
    LengthOverflow,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::ReservedOpcode(op) => write!(f, "reserved opcode {op:#x}"),
            FrameError::ControlFrameTooLong(n) => {
                write!(
                    f,
                    "control frame payload of {n} bytes (at most 125 allowed)"
                )
            }
            FrameError::FragmentedControlFrame => f.write_str("fragmented control frame"),
            FrameError::LengthOverflow => f.write_str("64-bit payload length has its top bit set"),
        }
    }
}

impl core::error::Error for FrameError {}

/// Parses a frame header from the start of `buf`.
///
/// Returns the header and its length in bytes, [`Status::Partial`] if `buf`
/// holds only part of it, or an error as soon as the bytes seen so far are invalid.
///
/// ```
/// use stdws::frame::{parse, OpCode};
/// use stdws::Status;
/// // RFC 6455 5.7: a single-frame unmasked text message "Hello".
/// let bytes = [0x81, 0x05, b'H', b'e', b'l', b'l', b'o'];
/// let Status::Complete((header, len)) = parse(&bytes).unwrap() else { panic!() };
/// assert_eq!((header.opcode, header.payload_len, len), (OpCode::Text, 5, 2));
/// assert_eq!(parse(&bytes[..1]).unwrap(), Status::Partial);
/// ```
pub fn parse(buf: &[u8]) -> Result<Status<(FrameHeader, usize)>, FrameError> {
    let Some(&b0) = buf.first() else {
        return Ok(Status::Partial);
    };
    let opcode = OpCode::from_bits(b0 & 0x0f).ok_or(FrameError::ReservedOpcode(b0 & 0x0f))?;
    let fin = b0 & 0x80 != 0;
    if opcode.is_control() && !fin {
        return Err(FrameError::FragmentedControlFrame);
    }
    let Some(&b1) = buf.get(1) else {
        return Ok(Status::Partial);
    };
    let masked = b1 & 0x80 != 0;
    let (len_bytes, short_len) = match b1 & 0x7f {
        126 => (2, None),
        127 => (8, None),
        n => (0, Some(u64::from(n))),
    };
    if opcode.is_control() && short_len.is_none_or(|n| n > MAX_CONTROL_PAYLOAD as u64) {
        // The exact length is not known yet; report the smallest it can be.
        return Err(FrameError::ControlFrameTooLong(short_len.unwrap_or(126)));
    }
    let header_len = 2 + len_bytes + if masked { 4 } else { 0 };
    if buf.len() < header_len {
        return Ok(Status::Partial);
    }
    let payload_len = match short_len {
        Some(n) => n,
        None => {
            let mut be = [0u8; 8];
            be[8 - len_bytes..].copy_from_slice(&buf[2..2 + len_bytes]);
            u64::from_be_bytes(be)
        }
    };
    if payload_len >> 63 != 0 {
        return Err(FrameError::LengthOverflow);
    }
    let mask = masked.then(|| {
        let k = &buf[2 + len_bytes..header_len];
        [k[0], k[1], k[2], k[3]]
    });
    let header = FrameHeader {
        fin,
        rsv: (b0 >> 4) & 0x7,
        opcode,
        mask,
        payload_len,
    };
    Ok(Status::Complete((header, header_len)))
}

impl FrameHeader {
    /// Writes the header with the shortest length encoding; returns its length.
    ///
    /// ```
    /// use stdws::frame::{FrameHeader, OpCode, MAX_HEADER_LEN};
    /// let header = FrameHeader { fin: true, rsv: 0, opcode: OpCode::Binary, mask: None, payload_len: 256 };
    /// let mut out = [0u8; MAX_HEADER_LEN];
    /// let n = header.encode(&mut out);
    /// assert_eq!(&out[..n], &[0x82, 0x7e, 0x01, 0x00]); // RFC 6455 5.7
    /// ```
    #[inline]
    pub fn encode(&self, out: &mut [u8; MAX_HEADER_LEN]) -> usize {
        out[0] = (u8::from(self.fin) << 7) | ((self.rsv & 0x7) << 4) | self.opcode.bits();
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let mut n = match self.payload_len {
            len @ 0..=125 => {
                out[1] = mask_bit | len as u8;
                2
            }
            len @ 126..=0xffff => {
                out[1] = mask_bit | 126;
                out[2..4].copy_from_slice(&(len as u16).to_be_bytes());
                4
            }
            len => {
                out[1] = mask_bit | 127;
                out[2..10].copy_from_slice(&len.to_be_bytes());
                10
            }
        };
        if let Some(key) = self.mask {
            out[n..n + 4].copy_from_slice(&key);
            n += 4;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(bytes: &[u8]) -> (FrameHeader, usize) {
        match parse(bytes).unwrap() {
            Status::Complete(h) => h,
            Status::Partial => panic!("partial: {bytes:?}"),
        }
    }

    fn roundtrip(bytes: &[u8]) {
        let (header, len) = complete(bytes);
        let mut out = [0; MAX_HEADER_LEN];
        let n = header.encode(&mut out);
        assert_eq!(&out[..n], &bytes[..len]);
    }

    #[test]
    fn parses_rfc_unmasked_hello() {
        let (h, n) = complete(&[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        assert_eq!(n, 2);
        assert_eq!(
            h,
            FrameHeader {
                fin: true,
                rsv: 0,
                opcode: OpCode::Text,
                mask: None,
                payload_len: 5
            }
        );
        roundtrip(&[0x81, 0x05]);
    }

    #[test]
    fn parses_rfc_masked_hello() {
        let (h, n) = complete(&[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f]);
        assert_eq!(n, 6);
        assert_eq!(h.mask, Some([0x37, 0xfa, 0x21, 0x3d]));
        assert_eq!(h.payload_len, 5);
        roundtrip(&[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d]);
    }

    #[test]
    fn parses_rfc_fragmented_hel_lo() {
        let (first, _) = complete(&[0x01, 0x03, 0x48, 0x65, 0x6c]);
        assert!(!first.fin);
        assert_eq!(first.opcode, OpCode::Text);
        let (second, _) = complete(&[0x80, 0x02, 0x6c, 0x6f]);
        assert!(second.fin);
        assert_eq!(second.opcode, OpCode::Continuation);
    }

    #[test]
    fn parses_rfc_ping_and_masked_pong() {
        let (ping, _) = complete(&[0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        assert_eq!((ping.opcode, ping.payload_len), (OpCode::Ping, 5));
        let (pong, n) = complete(&[0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d]);
        assert_eq!(
            (pong.opcode, pong.mask.is_some(), n),
            (OpCode::Pong, true, 6)
        );
    }

    #[test]
    fn parses_rfc_256_byte_and_64k_binary_headers() {
        let (h, n) = complete(&[0x82, 0x7e, 0x01, 0x00]);
        assert_eq!((h.payload_len, n), (256, 4));
        roundtrip(&[0x82, 0x7e, 0x01, 0x00]);
        let long = [0x82, 0x7f, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00];
        let (h, n) = complete(&long);
        assert_eq!((h.payload_len, n), (65536, 10));
        roundtrip(&long);
    }

    #[test]
    fn every_prefix_of_a_header_is_partial() {
        let full = [0x82, 0xff, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00, 1, 2, 3, 4];
        for i in 0..full.len() {
            assert_eq!(parse(&full[..i]), Ok(Status::Partial), "prefix {i}");
        }
        assert_eq!(complete(&full).1, 14);
    }

    #[test]
    fn rejects_reserved_opcodes_from_the_first_byte() {
        for op in [3u8, 4, 5, 6, 7, 11, 12, 13, 14, 15] {
            assert_eq!(parse(&[0x80 | op]), Err(FrameError::ReservedOpcode(op)));
        }
    }

    #[test]
    fn rejects_fragmented_control_frames() {
        assert_eq!(parse(&[0x09]), Err(FrameError::FragmentedControlFrame));
        assert_eq!(
            parse(&[0x08, 0x00]),
            Err(FrameError::FragmentedControlFrame)
        );
    }

    #[test]
    fn rejects_control_frames_over_125_bytes() {
        assert_eq!(parse(&[0x89, 0x7d]).map(|_| ()), Ok(()));
        assert_eq!(
            parse(&[0x89, 0x7e]),
            Err(FrameError::ControlFrameTooLong(126))
        );
        assert_eq!(
            parse(&[0x88, 0xff]),
            Err(FrameError::ControlFrameTooLong(126))
        );
    }

    #[test]
    fn rejects_a_64_bit_length_with_the_top_bit_set() {
        let bytes = [0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 1];
        assert_eq!(parse(&bytes), Err(FrameError::LengthOverflow));
        let max = [0x82, 0x7f, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(complete(&max).0.payload_len, i64::MAX as u64);
    }

    #[test]
    fn keeps_rsv_bits_for_the_protocol_to_judge() {
        assert_eq!(complete(&[0xc1, 0x00]).0.rsv, 0b100);
        assert_eq!(complete(&[0x92, 0x00]).0.rsv, 0b001);
        roundtrip(&[0xf2, 0x00]);
    }

    #[test]
    fn accepts_non_minimal_lengths_and_encodes_minimally() {
        let (h, n) = complete(&[0x82, 0x7e, 0x00, 0x05]);
        assert_eq!((h.payload_len, n), (5, 4));
        let mut out = [0; MAX_HEADER_LEN];
        assert_eq!(h.encode(&mut out), 2);
    }
}

//! Incremental UTF-8 validation for text messages that arrive in pieces.
//!
//! A text message may be split across frames and reads at any byte, even inside
//! a character. [`Utf8Validator`] keeps the at most three bytes of an unfinished
//! character between pieces and fails as soon as a byte makes the text invalid,
//! not when the message ends (RFC 6455 section 8.1, Autobahn cases 6.4.x).

use core::fmt;

/// Where text stopped being valid UTF-8.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Utf8Error {
    /// Offset of the first byte of the invalid sequence, counted from the start
    /// of the text; equal to `core::str::Utf8Error::valid_up_to` over the whole text.
    pub valid_up_to: usize,
}

impl fmt::Display for Utf8Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid UTF-8 after {} valid bytes", self.valid_up_to)
    }
}

impl core::error::Error for Utf8Error {}

/// Validates text fed to it in arbitrary pieces.
///
/// ```
/// use stdws::utf8::Utf8Validator;
/// let mut v = Utf8Validator::new();
/// let euro = "€".as_bytes(); // three bytes
/// v.feed(&euro[..1]).unwrap();
/// v.feed(&euro[1..]).unwrap();
/// v.finish().unwrap();
///
/// let mut v = Utf8Validator::new();
/// assert!(v.feed(&[0xce, 0xba, 0xf4, 0x90]).is_err()); // fails before the text ends
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Utf8Validator {
    /// Bytes validated and complete so far.
    valid: usize,
    /// The start of a character whose remaining bytes have not arrived.
    pending: [u8; 4],
    pending_len: u8,
}

impl Utf8Validator {
    /// A validator at the start of a text.
    pub fn new() -> Self {
        Self::default()
    }

    /// Validates the next piece of the text.
    ///
    /// An unfinished character at the end of `bytes` is fine; a byte that cannot
    /// continue valid UTF-8 is an error at once.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<(), Utf8Error> {
        while self.pending_len > 0 {
            let Some((&b, rest)) = bytes.split_first() else {
                return Ok(());
            };
            bytes = rest;
            let len = usize::from(self.pending_len);
            self.pending[len] = b;
            self.pending_len += 1;
            match core::str::from_utf8(&self.pending[..=len]) {
                Ok(_) => {
                    self.valid += len + 1;
                    self.pending_len = 0;
                }
                Err(e) if e.error_len().is_some() => return Err(self.error_at(0)),
                Err(_) => {} // still a valid prefix: wait for the next byte
            }
        }
        match core::str::from_utf8(bytes) {
            Ok(_) => {
                self.valid += bytes.len();
                Ok(())
            }
            Err(e) if e.error_len().is_some() => Err(self.error_at(e.valid_up_to())),
            Err(e) => {
                // `error_len() == None`: the tail is a valid prefix of a character.
                let tail = &bytes[e.valid_up_to()..];
                self.valid += e.valid_up_to();
                self.pending[..tail.len()].copy_from_slice(tail);
                self.pending_len = tail.len() as u8; // at most 3: a character's start
                Ok(())
            }
        }
    }

    /// Checks that the text did not end inside a character.
    pub fn finish(&self) -> Result<(), Utf8Error> {
        if self.pending_len == 0 {
            Ok(())
        } else {
            Err(self.error_at(0))
        }
    }

    /// Whether the bytes so far end inside a character.
    pub fn is_incomplete(&self) -> bool {
        self.pending_len > 0
    }

    fn error_at(&self, offset: usize) -> Utf8Error {
        Utf8Error {
            valid_up_to: self.valid + offset,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_split(data: &[u8], splits: &[usize]) -> Result<(), Utf8Error> {
        let mut v = Utf8Validator::new();
        let mut last = 0;
        for &s in splits {
            v.feed(&data[last..s])?;
            last = s;
        }
        v.feed(&data[last..])?;
        v.finish()
    }

    #[test]
    fn accepts_valid_text_split_at_every_byte() {
        let text = "Hello-µ@ßöäüàá-UTF-8!! κόσμε 𝄞 €".as_bytes();
        for i in 0..=text.len() {
            for j in i..=text.len() {
                assert_eq!(feed_split(text, &[i, j]), Ok(()), "split {i} {j}");
            }
        }
    }

    #[test]
    fn reports_the_same_position_as_std_for_every_split() {
        let cases: &[&[u8]] = &[
            b"abc\xffdef",
            b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
            b"ok\xf4\x90\x80\x80",
            b"\xe0\x80\xaf",
            b"ab\xf0\x9f\x98",
            b"\xc0\xaf",
            b"text\xe2\x82",
        ];
        for data in cases {
            let expected = core::str::from_utf8(data).unwrap_err().valid_up_to();
            for i in 0..=data.len() {
                let got = feed_split(data, &[i]).unwrap_err();
                assert_eq!(got.valid_up_to, expected, "{data:?} split at {i}");
            }
        }
    }

    #[test]
    fn fails_fast_on_a_byte_that_cannot_continue() {
        // 0xf4 0x90 is above U+10FFFF: invalid before the character could finish.
        let mut v = Utf8Validator::new();
        v.feed(b"\xce\xba\xf4").unwrap();
        assert_eq!(v.feed(b"\x90").unwrap_err().valid_up_to, 2);
    }

    #[test]
    fn an_unfinished_character_is_only_an_error_at_the_end() {
        let mut v = Utf8Validator::new();
        v.feed(b"a\xe2\x82").unwrap();
        assert!(v.is_incomplete());
        assert_eq!(v.finish().unwrap_err().valid_up_to, 1);
        v.feed(b"\xac").unwrap();
        assert_eq!(v.finish(), Ok(()));
    }

    #[test]
    fn the_error_says_how_much_of_the_text_was_valid() {
        let e = feed_split(b"abc\xff", &[]).unwrap_err();
        assert_eq!(e.to_string(), "invalid UTF-8 after 3 valid bytes");
    }
}

//! The size of an LZ77 window, as RFC 7692 negotiates it.

/// The base-2 logarithm of an LZ77 window size: 8 to 15 (256 bytes to
/// 32 KiB), as RFC 7692's `*_max_window_bits` parameters allow.
///
/// ```
/// use stdws::deflate::WindowBits;
/// assert_eq!(WindowBits::new(10).map(WindowBits::size), Some(1024));
/// assert_eq!(WindowBits::new(16), None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WindowBits(u8);

impl WindowBits {
    /// 8 bits: a 256-byte window.
    pub const MIN: WindowBits = WindowBits(8);
    /// 15 bits: a 32 KiB window, DEFLATE's largest.
    pub const MAX: WindowBits = WindowBits(15);

    /// The window of `bits` bits, if 8 to 15.
    pub const fn new(bits: u8) -> Option<WindowBits> {
        if bits >= 8 && bits <= 15 {
            Some(WindowBits(bits))
        } else {
            None
        }
    }

    /// The number of bits.
    pub const fn get(self) -> u8 {
        self.0
    }

    /// The window size in bytes.
    pub const fn size(self) -> usize {
        1 << self.0
    }
}

impl Default for WindowBits {
    /// [`WindowBits::MAX`].
    fn default() -> Self {
        WindowBits::MAX
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_bits_are_8_to_15_and_default_to_the_largest() {
        assert_eq!(WindowBits::new(7), None);
        assert_eq!(WindowBits::new(16), None);
        assert_eq!(WindowBits::new(8), Some(WindowBits::MIN));
        assert_eq!(WindowBits::new(15), Some(WindowBits::MAX));
        assert_eq!(WindowBits::default(), WindowBits::MAX);
        assert_eq!(WindowBits::default().size(), 32 << 10);
    }
}

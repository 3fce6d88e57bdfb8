//! The inflater's history between messages: a ring of the last bytes it
//! produced, so that a message may refer back into the ones before it
//! (context takeover, RFC 7692 section 7.2.3.2).

use alloc::{vec, vec::Vec};

/// The last `size` bytes output (fewer at first), allocated on first use.
#[derive(Clone, Debug)]
pub(crate) struct Window {
    buf: Vec<u8>,
    /// Where the next byte goes.
    end: usize,
    /// How many bytes are valid, at most `size`.
    len: usize,
    size: usize,
}

impl Window {
    pub(crate) fn new(size: usize) -> Self {
        Window {
            buf: Vec::new(),
            end: 0,
            len: 0,
            size,
        }
    }

    /// Bytes of history available.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Bytes allocated.
    pub(crate) fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Forgets the history (keeps the allocation).
    pub(crate) fn clear(&mut self) {
        self.end = 0;
        self.len = 0;
    }

    /// Appends output, keeping only the last `size` bytes.
    pub(crate) fn push(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        if self.buf.is_empty() {
            self.buf = vec![0; self.size];
        }
        let data = &data[data.len().saturating_sub(self.size)..];
        let first = data.len().min(self.size - self.end);
        self.buf[self.end..self.end + first].copy_from_slice(&data[..first]);
        self.buf[..data.len() - first].copy_from_slice(&data[first..]);
        self.end = (self.end + data.len()) % self.size;
        self.len = (self.len + data.len()).min(self.size);
    }

    /// Fills `dst` with the history starting `back` bytes before its end;
    /// needs `dst.len() <= back <= self.len()`.
    pub(crate) fn copy_to(&self, back: usize, dst: &mut [u8]) {
        debug_assert!(dst.len() <= back && back <= self.len);
        let start = (self.end + self.size - back) % self.size;
        let first = dst.len().min(self.size - start);
        let (a, b) = dst.split_at_mut(first);
        a.copy_from_slice(&self.buf[start..start + first]);
        b.copy_from_slice(&self.buf[..b.len()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(w: &Window) -> Vec<u8> {
        let mut out = vec![0; w.len()];
        w.copy_to(w.len(), &mut out);
        out
    }

    #[test]
    fn keeps_the_last_size_bytes_across_wraps() {
        let mut w = Window::new(8);
        w.push(b"abc");
        assert_eq!(history(&w), b"abc");
        w.push(b"defgh");
        assert_eq!(history(&w), b"abcdefgh");
        w.push(b"ij");
        assert_eq!(history(&w), b"cdefghij");
        w.push(b"0123456789");
        assert_eq!(history(&w), b"23456789");
        let mut two = [0; 2];
        w.copy_to(3, &mut two);
        assert_eq!(&two, b"78");
        w.clear();
        assert_eq!(w.len(), 0);
    }
}

//! A decompression bomb: compressed input that would inflate to gigabytes
//! fails with the output limit (close code 1009) after spending at most the
//! limit, not the gigabytes.
//!
//! The bomb is a dynamic block whose codes make a (length 258, distance 1)
//! match two zero bits: every zero byte after its header inflates to 1032
//! bytes, DEFLATE's highest ratio. 4 MiB of zeros would inflate to 4 GiB.
//!
//! One test in this file, so that the process's peak memory is its alone.

use stdws::deflate::{InflateError, Inflater, WindowBits};
use stdws::proto::extensions::permessage_deflate::{
    AgreedParams, DeflateConfig, PerMessageDeflate,
};
use stdws::Role;

#[derive(Default)]
struct Bits {
    bytes: Vec<u8>,
    n: usize,
}

impl Bits {
    fn bit(&mut self, b: bool) {
        if self.n.is_multiple_of(8) {
            self.bytes.push(0);
        }
        if b {
            *self.bytes.last_mut().unwrap() |= 1 << (self.n % 8);
        }
        self.n += 1;
    }
    /// A number, least significant bit first.
    fn put(&mut self, value: u32, count: u32) -> &mut Self {
        (0..count).for_each(|i| self.bit((value >> i) & 1 == 1));
        self
    }
    /// A Huffman code, most significant bit first.
    fn code(&mut self, code: u32, len: u32) -> &mut Self {
        (0..len).rev().for_each(|i| self.bit((code >> i) & 1 == 1));
        self
    }
}

/// The bomb's head: a dynamic block header, then the literal 'a'. What
/// follows is zero bytes, four (258, 1) matches each.
fn bomb_head() -> Vec<u8> {
    let mut b = Bits::default();
    // Not final, dynamic; HLIT 286, HDIST 2, HCLEN 18.
    b.put(0b100, 3).put(29, 5).put(1, 5).put(14, 4);
    // Code-length code: 18 -> "0", 1 -> "10", 2 -> "11", in the RFC's order
    // 16 17 18 0 8 7 9 6 10 5 11 4 12 3 13 2 14 1.
    for len in [0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 2] {
        b.put(len, 3);
    }
    let zeros = |b: &mut Bits, n: u32| {
        b.code(0, 1).put(n - 11, 7);
    };
    let (one, two) = ((0b10, 2), (0b11, 2));
    zeros(&mut b, 97); // literals 0..=96
    b.code(two.0, two.1); // 'a': 2 bits
    zeros(&mut b, 138);
    zeros(&mut b, 20); // 98..=255
    b.code(two.0, two.1); // end of block: 2 bits
    zeros(&mut b, 28); // 257..=284
    b.code(one.0, one.1); // 285 (length 258): 1 bit
    b.code(one.0, one.1).code(one.0, one.1); // distances 0 and 1: 1 bit each
                                             // Literal/length code: 285 -> "0", 'a' -> "10", end -> "11"; distance 0 -> "0".
    b.code(0b10, 2);
    b.bytes
}

/// The process's peak resident memory, from /proc: Linux only (elsewhere
/// the memory the inflater holds is still checked).
#[cfg(target_os = "linux")]
fn peak_rss() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: usize = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib << 10
}

#[test]
fn a_bomb_fails_at_the_limit_with_memory_near_the_limit() {
    let limit = 16 << 20;
    let zeros = vec![0u8; 64 << 10];
    #[cfg(target_os = "linux")]
    let before = peak_rss();

    // Fed 64 KiB at a time, as frames might bring it; 4 MiB would make 4 GiB.
    let mut inflater = Inflater::new(WindowBits::MAX);
    let mut out = Vec::new();
    inflater.inflate(&bomb_head(), &mut out, limit).unwrap();
    let mut fed = 0;
    let err = loop {
        match inflater.inflate(&zeros, &mut out, limit) {
            Ok(()) => fed += zeros.len(),
            Err(e) => break e,
        }
        assert!(fed < 4 << 20, "no error after {fed} bytes");
    };
    assert_eq!(err, InflateError::OutputLimit { limit });
    assert!(err.is_limit(), "maps to close code 1009");
    // Stopped within the first 64 KiB of zeros (16 MiB / 1032 = 16 KiB).
    assert_eq!(fed, 0);
    assert!(out.len() <= limit && out.capacity() <= limit);
    assert!(out[1..].iter().all(|&b| b == b'a'));
    assert!(
        inflater.memory_held() < 16 << 10,
        "{}",
        inflater.memory_held()
    );
    #[cfg(target_os = "linux")]
    {
        let grew = peak_rss().saturating_sub(before);
        assert!(
            grew <= limit + (4 << 20),
            "peak memory grew by {grew} bytes"
        );
    }
    drop(out);

    // Byte by byte with a small limit: same result, in linear time.
    let limit = 1 << 20;
    let mut inflater = Inflater::new(WindowBits::MAX);
    let mut out = Vec::new();
    let head = bomb_head();
    let started = std::time::Instant::now();
    let err = head
        .iter()
        .chain(std::iter::repeat_n(&0u8, 1 << 20))
        .find_map(|b| {
            inflater
                .inflate(std::slice::from_ref(b), &mut out, limit)
                .err()
        })
        .unwrap();
    assert_eq!(err, InflateError::OutputLimit { limit });
    assert!(out.capacity() <= limit);
    assert!(started.elapsed().as_secs() < 5);

    // Through permessage-deflate, as a server receives it.
    let mut server = PerMessageDeflate::new(
        Role::Server,
        &AgreedParams::default(),
        &DeflateConfig::default(),
    );
    let mut message = Vec::new();
    server
        .decompress(&bomb_head(), &mut message, limit)
        .unwrap();
    let err = server.decompress(&zeros, &mut message, limit).unwrap_err();
    assert!(err.is_limit());
    assert!(message.len() <= limit);
    // The error is final: the connection fails with 1009.
    assert!(server.decompress(&[], &mut message, limit).is_err());
}

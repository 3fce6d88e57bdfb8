//! Unpredictable bytes for client masking keys and handshake nonces, on
//! every platform std supports, from std alone.
//!
//! RFC 6455 section 10.3 asks that masking keys be unpredictable to whoever
//! chooses the payload (a script in a page, in the browser case), so that
//! it cannot make masked bytes look like a request to a proxy in between;
//! section 4.1 asks the same of the handshake nonce. Neither needs
//! secrecy beyond that.
//!
//! The source here is a pseudorandom function under a secret key:
//! - The key: one `RandomState` for the whole process. std seeds it from the
//!   operating system's CSPRNG (`getrandom` on Linux, `ProcessPrng` on
//!   Windows, `arc4random`/`getentropy` on macOS and the BSDs): 128 secret bits.
//! - The function: the SipHash it keys (std's `DefaultHasher`, SipHash-1-3
//!   today). SipHash was designed as a PRF: without the key its outputs cannot
//!   be told apart from random ones, nor predicted from earlier outputs.
//! - The inputs: every block this process draws hashes a different 128-bit
//!   input (a source number and a block number), so one key never sees the
//!   same input twice and every output is fresh.
//!
//! That is as unpredictable as RFC 6455 asks, without a system call per
//! key, a file to open (`/dev/urandom` does not exist on Windows), a new
//! dependency or `unsafe`.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// The process's secret key: `None` if the operating system had no randomness.
fn key() -> Option<&'static RandomState> {
    static KEY: OnceLock<Option<RandomState>> = OnceLock::new();
    KEY.get_or_init(|| {
        // std panics if the OS cannot give it random keys; make that an error.
        std::panic::catch_unwind(RandomState::new).ok()
    })
    .as_ref()
}

/// Numbers each source, so that no two draw the same inputs.
static SOURCES: AtomicU64 = AtomicU64::new(0);

/// Unpredictable bytes, eight at a time from a keyed PRF (see the module
/// docs), so that a masking key per frame costs a hash and no system call.
#[derive(Debug)]
pub struct OsRandom {
    source: u64,
    block: u64,
    pool: [u8; 8],
    used: usize,
}

impl OsRandom {
    /// A source of its own; nothing is drawn until it is used.
    pub fn new() -> Self {
        OsRandom {
            source: SOURCES.fetch_add(1, Ordering::Relaxed),
            block: 0,
            pool: [0; 8],
            used: 8,
        }
    }

    /// Fills `out` with unpredictable bytes. Fails only if the operating
    /// system could not seed the key.
    pub fn fill(&mut self, out: &mut [u8]) -> io::Result<()> {
        for byte in out {
            if self.used == self.pool.len() {
                self.refill()?;
            }
            *byte = self.pool[self.used];
            self.used += 1;
        }
        Ok(())
    }

    /// A fresh masking key.
    pub fn mask_key(&mut self) -> io::Result<[u8; 4]> {
        let mut key = [0; 4];
        self.fill(&mut key)?;
        Ok(key)
    }

    fn refill(&mut self) -> io::Result<()> {
        let key = key().ok_or_else(|| {
            io::Error::other("the operating system gave no randomness for masking keys")
        })?;
        let mut hasher = key.build_hasher();
        hasher.write_u64(self.source);
        hasher.write_u64(self.block);
        self.block += 1;
        self.pool = hasher.finish().to_le_bytes();
        self.used = 0;
        Ok(())
    }
}

impl Default for OsRandom {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn keys_differ_within_and_across_sources() {
        let mut a = OsRandom::new();
        let mut b = OsRandom::new();
        let keys: Vec<[u8; 4]> = (0..200)
            .flat_map(|_| [a.mask_key().unwrap(), b.mask_key().unwrap()])
            .collect();
        let distinct: HashSet<_> = keys.iter().collect();
        // 400 keys of 32 random bits: a collision is a one-in-50,000 event.
        assert!(distinct.len() >= 399, "{} distinct", distinct.len());
    }

    #[test]
    fn bytes_are_balanced_and_a_fill_spans_blocks() {
        let mut rng = OsRandom::new();
        let mut big = vec![0u8; 1 << 16];
        rng.fill(&mut big[..3]).unwrap(); // leaves the pool part used
        rng.fill(&mut big).unwrap();
        let ones: u32 = big.iter().map(|b| b.count_ones()).sum();
        let bits = big.len() as f64 * 8.0;
        // Half the bits set, within 6 standard deviations (sqrt(bits)/2 each).
        let off = (f64::from(ones) - bits / 2.0).abs();
        assert!(off < 6.0 * bits.sqrt() / 2.0, "{ones} of {bits} bits set");
        let mut counts = [0u32; 256];
        for &b in &big {
            counts[usize::from(b)] += 1;
        }
        // Every byte value shows up (256 expected of each).
        assert!(counts.iter().all(|&c| c > 128), "{counts:?}");
    }

    #[test]
    fn default_sources_are_independent() {
        let (mut a, mut b) = (OsRandom::default(), OsRandom::default());
        let draw = |r: &mut OsRandom| {
            let mut bytes = [0u8; 16];
            r.fill(&mut bytes).unwrap();
            bytes
        };
        assert_ne!(draw(&mut a), draw(&mut b));
    }
}

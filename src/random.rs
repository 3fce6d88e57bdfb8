//! Randomness from the operating system, for client masking keys and
//! handshake nonces (RFC 6455 section 10.3 wants them unpredictable).

use std::fs::File;
use std::io::{self, Read};

/// Random bytes from `/dev/urandom`, fetched a block at a time so that a
/// masking key per frame costs no system call most of the time.
#[derive(Debug)]
pub struct OsRandom {
    pool: [u8; 256],
    used: usize,
}

impl OsRandom {
    /// A source that fills its pool on first use.
    pub fn new() -> Self {
        OsRandom {
            pool: [0; 256],
            used: 256,
        }
    }

    /// Fills `out` with random bytes.
    pub fn fill(&mut self, out: &mut [u8]) -> io::Result<()> {
        for chunk in out.chunks_mut(self.pool.len()) {
            if self.pool.len() - self.used < chunk.len() {
                File::open("/dev/urandom")?.read_exact(&mut self.pool)?;
                self.used = 0;
            }
            chunk.copy_from_slice(&self.pool[self.used..self.used + chunk.len()]);
            self.used += chunk.len();
        }
        Ok(())
    }

    /// A fresh masking key.
    pub fn mask_key(&mut self) -> io::Result<[u8; 4]> {
        let mut key = [0; 4];
        self.fill(&mut key)?;
        Ok(key)
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

    #[test]
    fn keys_differ_and_cover_the_pool_refill() {
        let mut rng = OsRandom::new();
        let keys: Vec<[u8; 4]> = (0..200).map(|_| rng.mask_key().unwrap()).collect();
        let distinct: std::collections::HashSet<_> = keys.iter().collect();
        // 200 keys of 32 random bits: a collision is a one-in-200,000 event.
        assert!(distinct.len() >= 199, "{} distinct", distinct.len());
        let mut big = [0u8; 1000];
        rng.fill(&mut big).unwrap();
        assert!(big.iter().any(|&b| b != 0));
    }
}

//! What the connection names of permessage-deflate when the `deflate`
//! feature is off: types with no values, so that the one code path compiles
//! unchanged and the compiler drops every branch that would use them.

use alloc::vec::Vec;

/// Never exists: there is no compression to enable.
#[derive(Clone, Debug)]
pub enum Compressor {}

/// Never exists: there is no decompression to enable.
#[derive(Clone, Debug)]
pub enum Decompressor {}

/// Never happens: nothing is inflated.
#[derive(Debug)]
pub enum InflateError {}

impl Compressor {
    pub fn compress(&mut self, _payload: &[u8], _out: &mut Vec<u8>) -> bool {
        match *self {}
    }

    pub fn memory_held(&self) -> usize {
        match *self {}
    }
}

impl Decompressor {
    pub fn decompress(
        &mut self,
        _compressed: &[u8],
        _out: &mut Vec<u8>,
        _limit: usize,
    ) -> Result<(), InflateError> {
        match *self {}
    }

    pub fn finish_message(
        &mut self,
        _out: &mut Vec<u8>,
        _limit: usize,
    ) -> Result<(), InflateError> {
        match *self {}
    }

    pub fn memory_held(&self) -> usize {
        match *self {}
    }
}

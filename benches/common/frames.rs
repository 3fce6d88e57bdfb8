//! In-memory client traffic for decode benchmarks: masked frames as a
//! browser sends them, and a stream that reads them and discards writes.
//! Each benchmark that includes this uses part of it.
#![allow(dead_code)]

use std::io::{self, Read, Write};
use stdws::frame::{FrameHeader, OpCode, MAX_HEADER_LEN};

/// `count` masked binary messages of `size` bytes, back to back.
pub fn client_messages(size: usize, count: usize) -> Vec<u8> {
    let key = [0x37, 0xfa, 0x21, 0x3d];
    let mut payload: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    stdws::mask::apply_mask(&mut payload, key, 0);
    let header = FrameHeader {
        fin: true,
        rsv: 0,
        opcode: OpCode::Binary,
        mask: Some(key),
        payload_len: size as u64,
    };
    let mut head = [0u8; MAX_HEADER_LEN];
    let n = header.encode(&mut head);
    let mut out = Vec::with_capacity((n + size) * count);
    for _ in 0..count {
        out.extend_from_slice(&head[..n]);
        out.extend_from_slice(&payload);
    }
    out
}

/// Reads from a byte slice; writes vanish (pongs and closes are not measured).
pub struct Replay<'a> {
    pub data: &'a [u8],
}

impl Read for Replay<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.data.read(buf)
    }
}

impl Write for Replay<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Reads `data` over and over, from frame boundary to frame boundary: a
/// connection that stays open, for decoding in a steady state.
pub struct Cycle<'a> {
    pub data: &'a [u8],
    pub at: usize,
}

impl Read for Cycle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.at == self.data.len() {
            self.at = 0;
        }
        let n = (&self.data[self.at..]).read(buf)?;
        self.at += n;
        Ok(n)
    }
}

impl Write for Cycle<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A server-side WebSocket on `data` replayed for ever: `recv_ref` it
/// `count` times per sample; its buffers are as a busy connection's.
pub fn stdws_steady(data: &[u8]) -> stdws::WebSocket<Cycle<'_>> {
    use stdws::Role;
    let cycle = Cycle { data, at: 0 };
    stdws::WebSocket::from_raw(cycle, Role::Server, stdws::Limits::default(), &[])
}

fn server(data: &[u8]) -> stdws::WebSocket<Replay<'_>> {
    use stdws::Role;
    stdws::WebSocket::from_raw(Replay { data }, Role::Server, stdws::Limits::default(), &[])
}

/// Decodes every message with `WebSocket::recv` (owned messages); returns the count.
pub fn stdws_decode(data: &[u8]) -> usize {
    let mut ws = server(data);
    let mut n = 0;
    while let Ok(Some(msg)) = ws.recv() {
        std::hint::black_box(&msg);
        n += 1;
    }
    n
}

/// Decodes every message with `WebSocket::recv_ref` (borrowed, no copy); returns the count.
pub fn stdws_decode_ref(data: &[u8]) -> usize {
    let mut ws = server(data);
    let mut n = 0;
    while let Ok(Some(msg)) = ws.recv_ref() {
        std::hint::black_box(msg);
        n += 1;
    }
    n
}

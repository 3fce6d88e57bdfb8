//! Blocking reads and writes the drivers share: an HTTP head read once,
//! a frame's header and payload in one vectored write.

use crate::error::Error;
use crate::http::HeadScanner;
use crate::http::Request;
use crate::limits::Limits;
use crate::status::Status;
use std::io::{self, IoSlice, Read, Write};

pub(crate) fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Reads, retrying when a signal interrupts. Inlined: once per message.
#[inline]
pub(crate) fn read_some<S: Read>(stream: &mut S, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match stream.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Writes `head` then `body`, in one vectored write when the stream takes it.
pub(crate) fn write_all_vectored<S: Write + ?Sized>(
    stream: &mut S,
    mut head: &[u8],
    mut body: &[u8],
) -> io::Result<()> {
    if body.is_empty() {
        stream.write_all(head)?;
        return stream.flush();
    }
    while !head.is_empty() {
        match stream.write_vectored(&[IoSlice::new(head), IoSlice::new(body)]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) if n < head.len() => head = &head[n..],
            Ok(n) => {
                body = &body[n - head.len()..];
                head = &[];
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    stream.write_all(body)?;
    stream.flush()
}

/// Reads an HTTP head (request or response) from `stream`, looking at each
/// byte once; returns everything read and the head's length. Bytes after
/// the head (the first frames) are kept, not lost.
pub(crate) fn read_head<S: Read>(
    stream: &mut S,
    limits: &Limits,
) -> Result<(Vec<u8>, usize), Error> {
    let mut scanner = HeadScanner::new(limits.max_head_size);
    let mut buf = Vec::new();
    loop {
        let filled = buf.len();
        // Grow geometrically, reading at most 1 KiB past the limit.
        let room = (limits.max_head_size + 1024).saturating_sub(filled).max(1);
        buf.resize(filled + filled.max(1024).min(room), 0);
        let n = read_some(stream, &mut buf[filled..])?;
        buf.truncate(filled + n);
        if n == 0 {
            return Err(Error::UnexpectedEof);
        }
        if let Status::Complete(len) = scanner.scan(&buf)? {
            return Ok((buf, len));
        }
    }
}

/// Reads an HTTP request head from `stream`.
///
/// Returns the request and the bytes that arrived after its head (the first
/// frames, for an upgrade). Errors carry the HTTP status to answer with; the
/// response is not sent here.
pub fn read_request<S: Read>(stream: &mut S, limits: &Limits) -> Result<(Request, Vec<u8>), Error> {
    let (mut buf, len) = read_head(stream, limits)?;
    let request = Request::parse(&buf[..len], limits.max_headers)?;
    buf.drain(..len);
    Ok((request, buf))
}

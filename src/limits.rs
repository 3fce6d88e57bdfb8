//! Size limits, each checked before the memory it guards is spent.

/// Bounds on what a peer can make a connection hold.
///
/// A connection holds at most `max_message_size` bytes of message plus its
/// read buffer (at most 64 KiB, or `read_buffer_size` if larger); everything
/// else it keeps is a few hundred bytes.
///
/// ```
/// let limits = stdws::Limits { max_message_size: 64 * 1024, ..stdws::Limits::default() };
/// assert_eq!(limits.max_frame_size, 16 << 20);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest message after reassembly, in bytes; over it the connection
    /// closes with 1009. Default 16 MiB.
    pub max_message_size: usize,
    /// Largest payload of a single frame; over it, 1009. Default 16 MiB.
    pub max_frame_size: usize,
    /// Most frames one message may be split into, empty ones included; over it,
    /// 1009. Bounds the work a stream of empty fragments can cause.
    /// Default 131,072 (Autobahn case 9.3.1 sends 4 MiB in more than 65,536
    /// fragments of 64 bytes).
    pub max_fragments: usize,
    /// Largest HTTP request head, in bytes; over it, `431`. Default 16 KiB.
    pub max_head_size: usize,
    /// Most header lines in a request head; over it, `431`. Default 64.
    pub max_headers: usize,
    /// Where large payloads start. Default 4 KiB. Payloads this large or
    /// larger are read straight into their message; smaller single-frame
    /// messages are unmasked and delivered in place from the read buffer.
    /// That buffer starts at 512 bytes (or this size, if smaller), takes
    /// this size when a read fills it, doubles while reads keep filling it
    /// (pipelined traffic), up to 64 KiB (or this size, if larger), and goes
    /// back to 512 bytes when the connection is idle.
    pub read_buffer_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: 16 << 20,
            max_frame_size: 16 << 20,
            max_fragments: 1 << 17,
            max_head_size: 16 << 10,
            max_headers: 64,
            read_buffer_size: 4 << 10,
        }
    }
}

//! The `pair` property: a client and a server [`Connection`] wired together
//! in memory, in virtual time, driven by operations read from the fuzz
//! input, against a model of what each end must see.
//!
//! Uses only `std`, `stdws` and its sibling modules (`super::Cursor`,
//! `super::harness`), so `tests/fuzz_regressions.rs` can include the fuzz
//! crate's `src/` with `#[path]` and replay inputs on stable.
//!
//! # Input
//!
//! ```text
//! flags u8      bit 0: offer permessage-deflate (two config bytes per side
//!                      follow, client then server: see deflate_config)
//!               bit 1: the client's limits follow (else the defaults)
//!               bit 2: the server's limits follow
//!               bit 3: the client's timeouts follow (else none are set)
//!               bit 4: the server's timeouts follow
//!               bit 5: receivers are told heard(now) after each read (else
//!                      handle_timeout notices the bytes itself)
//!               bit 6: the final close is the server's (else the client's)
//! key seed      u64 LE: the client's masking keys (SplitMix64)
//! [deflate]     2 + 2 bytes
//! [limits]      per side: max_message_size u16, max_frame_size u16,
//!               max_fragments u8, read_buffer_size u8 (0: 4096)
//! [timeouts]    per side, 5 bytes: read, keepalive interval, keepalive
//!               timeout, close, write; each 0: none, 1: zero, n: n x 10 ms
//!               (keepalive is on when its interval is set; an unset
//!               timeout then means 50 ms)
//! ops           until the input ends (at most MAX_OPS): op u8, bit 0 the
//!               side it is about (0 client, 1 server), (op >> 1) % 16 says
//!               what (see Pair::op, which documents each one's bytes)
//! ```
//!
//! After the operations both directions are drained, the side named by flag
//! bit 6 closes (if it still can), and everything is drained again.
//!
//! # Oracle
//!
//! Each side keeps an *inbox*: what it must receive, in order, as its
//! peer's sends, reactions and failures queue frames. It is checked event
//! by event, so any reordering, loss, duplication, corruption or invention
//! fails at once:
//!
//! * every message sent successfully (the send said `Ok`) arrives once, in
//!   order, byte-identical and of the same kind, unless the receiver had
//!   sent its own close first (RFC 6455 1.4: then it is dropped, and only
//!   then) or the sender's stream broke (`write_failed`, a write deadline);
//!   each send's result (`Ok`, `Closed`, `Broken`, `InvalidInput`) is the one
//!   the state predicts, and a refused send queues nothing;
//! * pings arrive as pings with their payload, and each is answered by a
//!   pong with that payload (unless the receiver has closed), as are
//!   keepalive pings; pongs arrive as sent;
//! * the close handshake: the peer's close arrives with its code and
//!   reason, is echoed with its code, and, when the handshake completes, both
//!   ends agree on the code the initiator sent;
//! * no `ProtocolError` between two `stdws` ends, except where a receiver's
//!   limits are tighter than a message sent to it: then exactly the error
//!   the frame that crosses them must cause (`FrameTooBig` on the wire
//!   payload, `MessageTooBig` on the message, inflated if compressed,
//!   `TooManyFragments`), with close code 1009, the frames before it all
//!   delivered and the peer seeing that 1009 close;
//! * what each end queues is exactly what the model says (a pong, an echo,
//!   a close 1009 or 1001, a keepalive ping, of the right size), its frame
//!   headers use the minimal length form, the mask bit is set on the
//!   client's frames only and RSV1 on compressed ones only;
//! * the state accessors agree with the model after every operation:
//!   `close_sent`, `wants_read`, `failure`, `peer_close_frame`,
//!   `is_finished`, `pending_output`, `tick`;
//! * `handle_timeout` does nothing before `poll_timeout()` (unless a write
//!   or close deadline or the keepalive interval is zero: those act the
//!   moment they start), and an expiry is final (until a later failure);
//! * the reader can always make progress: after taking every event there
//!   is room to read; `output()` gives bytes whenever some are pending;
//! * `memory_held()` stays within the limits' bound (the read buffer's
//!   maximum, `max_message_size`, the inflater's and deflater's documented
//!   state) plus twice the send queue's high-water mark since it last
//!   emptied plus the 64 KiB the queue may keep;
//! * at the end, after draining, nothing is pending, every inbox is empty
//!   (but for the cases above), and unless a stream broke both ends are
//!   `is_finished()`.

use super::harness::{read_buffer_bound, sendable_code, truncate_str, INFLATE_MEMORY};
use super::{Cursor, MAX_PATTERN_PAYLOAD, MAX_STREAM_PAYLOAD};
use std::collections::VecDeque;
use std::time::Duration;
use stdws::deflate::{Level, WindowBits};
use stdws::frame::{OpCode, MAX_CONTROL_PAYLOAD};
use stdws::proto::extensions::permessage_deflate::{
    accept_response, negotiate, offer, DeflateConfig, PerMessageDeflate,
};
use stdws::proto::{
    Connection, Event, Expired, Keepalive, MaskKeys, Payload, ProtocolError, SendError, Timeouts,
};
use stdws::Instant;
use stdws::{CloseCode, CloseFrame, Limits, Message, MessageRef, Role};

/// Most operations read from one input.
pub const MAX_OPS: usize = 512;

/// What a deflater may hold: `stdws::deflate`'s table gives 256 KiB at 15
/// window bits; its own test allows 2 KiB more, and the struct.
const DEFLATER_MEMORY: usize = (256 << 10) + 4096;

/// What the send queue may keep after it empties (`KEEP_QUEUE` in
/// `src/proto/outbound.rs`).
const QUEUE_KEPT: usize = 64 << 10;

/// Checks a bug this target found, since fixed (`tests/fuzz_regressions.rs`,
/// `output_gives_bytes_to_a_one_slice_array`): `output()` with a one-slice
/// array gave nothing while an owned payload was queued. With it, transfers
/// use any number of slices from one up.
pub const CHECK_ONE_SLICE_OUTPUT: bool = true;

/// Checks a bug found while writing this target, since fixed
/// (`the_send_queue_does_not_keep_written_bytes`): the send queue kept every
/// byte written since it was last empty. With it, the queue's part of the
/// memory bound is four times its high-water mark (it keeps at most about
/// as many written bytes as wait, in a buffer that may be twice that);
/// without it, twice what was queued since the queue was last empty.
pub const CHECK_QUEUE_MEMORY: bool = true;

/// The client's masking keys: SplitMix64 from a seed in the input.
pub struct SplitMixKeys(pub u64);

impl MaskKeys for SplitMixKeys {
    fn mask_key(&mut self) -> [u8; 4] {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z as u32).to_le_bytes()
    }
}

/// What one run did, for tests that check a handcrafted input reached
/// what it was written for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Data messages delivered to the client, then to the server.
    pub messages: [usize; 2],
    /// Pings each side received (and, unless closing, answered).
    pub pings: [usize; 2],
    /// Pongs each side received.
    pub pongs: [usize; 2],
    /// The close frame each side received, if one arrived.
    pub got_close: [Option<Option<CloseFrame>>; 2],
    /// The error each side failed with, if it did.
    pub failed: [Option<ProtocolError>; 2],
    /// Each side's expiry, if a deadline passed.
    pub expired: [Option<Expired>; 2],
    /// Whether permessage-deflate was negotiated.
    pub deflate: bool,
    /// Keepalive pings sent by each side.
    pub keepalive_pings: [usize; 2],
    /// Messages dropped because they arrived after the receiver's close.
    pub dropped: [usize; 2],
    /// Both ends `is_finished()` at the end.
    pub finished: [bool; 2],
}

/// Drives a client and a server from `data` (see the module docs) and
/// panics on any violation of the oracle.
pub fn check_pair(data: &[u8]) -> Summary {
    let mut c = Cursor::new(data);
    let mut pair = Pair::new(&mut c);
    let mut ops = 0;
    while !c.is_empty() && ops < MAX_OPS {
        pair.op(&mut c);
        pair.check();
        ops += 1;
    }
    pair.finish();
    pair.summary
}

// ---------------------------------------------------------------------------
// Input pieces.
// ---------------------------------------------------------------------------

/// Characters text is made of: every UTF-8 length, the ends of each range.
const CHARS: [char; 16] = [
    'é',
    'ß',
    '€',
    '✓',
    'κ',
    'ό',
    '😀',
    '𝄞',
    '\u{7ff}',
    '\u{800}',
    '\u{ffff}',
    '\u{10000}',
    '\u{10ffff}',
    '\u{fffd}',
    'ñ',
    '中',
];

/// Text from bytes: ASCII as is, anything else a multi-byte character.
fn text_from(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| {
            if b < 0x80 {
                char::from(b)
            } else {
                CHARS[usize::from(b & 15)]
            }
        })
        .collect()
}

/// A duration from one input byte: 0 none, 1 zero, n: n x 10 ms.
fn duration(b: u8) -> Option<Duration> {
    match b {
        0 => None,
        1 => Some(Duration::ZERO),
        n => Some(Duration::from_millis(u64::from(n) * 10)),
    }
}

fn timeouts(c: &mut Cursor) -> Timeouts {
    let read = duration(c.u8());
    let interval = duration(c.u8());
    let timeout = duration(c.u8());
    let close = duration(c.u8());
    let write = duration(c.u8());
    Timeouts {
        read,
        keepalive: interval.map(|interval| Keepalive {
            interval,
            timeout: timeout.unwrap_or(Duration::from_millis(50)),
        }),
        close,
        write,
    }
}

fn limits(c: &mut Cursor) -> Limits {
    Limits {
        max_message_size: usize::from(c.u16()),
        max_frame_size: usize::from(c.u16()),
        max_fragments: usize::from(c.u8()),
        read_buffer_size: match c.u8() {
            0 => Limits::default().read_buffer_size,
            n => usize::from(n),
        },
        ..Limits::default()
    }
}

/// A `DeflateConfig` from two bytes: `a` bits 0-1 level (fast, default,
/// best, default), bits 2-4 own window bits - 8, bit 5 no context
/// takeover, bit 6 peer no context takeover, bit 7 threshold from `b`
/// (`b >> 3` x 8 bytes, else 32); `b` bits 0-2 peer window bits - 8.
fn deflate_config(c: &mut Cursor) -> DeflateConfig {
    let (a, b) = (c.u8(), c.u8());
    let bits = |n: u8| WindowBits::new(8 + (n & 7)).expect("8 to 15");
    DeflateConfig {
        level: [Level::Fast, Level::Default, Level::Best, Level::Default][usize::from(a & 3)],
        threshold: if a & 0x80 != 0 {
            usize::from(b >> 3) * 8
        } else {
            32
        },
        max_window_bits: bits(a >> 2),
        max_peer_window_bits: bits(b),
        no_context_takeover: a & 0x20 != 0,
        peer_no_context_takeover: a & 0x40 != 0,
    }
}

/// Whether two send results are the same kind (the message of an
/// `InvalidInput` aside).
fn same_result(a: &Result<(), SendError>, b: &Result<(), SendError>) -> bool {
    match (a, b) {
        (Ok(()), Ok(())) => true,
        (Err(SendError::InvalidInput(_)), Err(SendError::InvalidInput(_))) => true,
        (Err(x), Err(y)) => x == y,
        _ => false,
    }
}

// ---------------------------------------------------------------------------
// The model.
// ---------------------------------------------------------------------------

/// What a side must receive next.
#[derive(Clone, PartialEq, Eq)]
enum Expect {
    Message(Message),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<CloseFrame>),
    /// The frame that crosses the receiver's limits: it fails with this.
    Fail(ProtocolError),
}

impl std::fmt::Debug for Expect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expect::Message(m) => write!(f, "{}", brief(m)),
            Expect::Ping(p) => write!(f, "Ping({p:?})"),
            Expect::Pong(p) => write!(f, "Pong({p:?})"),
            Expect::Close(c) => write!(f, "Close({c:?})"),
            Expect::Fail(e) => write!(f, "Fail({e:?})"),
        }
    }
}

/// A message, short enough for a panic message.
fn brief(m: &Message) -> String {
    let (kind, bytes) = match m {
        Message::Text(t) => ("Text", t.as_bytes()),
        Message::Binary(b) => ("Binary", &b[..]),
    };
    let head = &bytes[..bytes.len().min(24)];
    format!("{kind}({} bytes: {head:02x?}...)", bytes.len())
}

/// How a connection ended, as `Connection` keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Running,
    Failed(CloseCode),
    Expired(Expired),
}

/// A message being sent in fragments.
struct Fragmenting {
    text: bool,
    /// The whole message; fragments are consecutive pieces of it.
    plan: Vec<u8>,
    sent: usize,
}

/// The receiver's view of the message whose frames are arriving, to find
/// the frame that crosses its limits.
#[derive(Clone, Copy)]
struct Assembling {
    size: u64,
    frames: usize,
}

struct Side {
    name: &'static str,
    conn: Connection,
    /// Header bytes a masking key adds to this side's frames.
    mask: usize,
    /// Limits on what this side receives.
    limits: Limits,
    timeouts: Timeouts,
    /// Whole messages this long or longer go out compressed.
    compress_from: Option<usize>,
    /// This side inflates what it receives.
    inflating: bool,
    /// Our close frame is queued (the connection's own or a reaction).
    closed: bool,
    /// A write failed: nothing more goes out.
    broken: bool,
    end: End,
    /// The first failure's or expiry's code: what `failure()` reports.
    first_failure: Option<CloseCode>,
    /// Nothing more is read: the peer's close arrived or we failed.
    in_closed: bool,
    got_close: Option<Option<CloseFrame>>,
    sent_close: Option<Option<CloseFrame>>,
    /// Our close went out before the peer's arrived.
    initiated: bool,
    fragment: Option<Fragmenting>,
    /// What this side must receive, in order.
    inbox: VecDeque<Expect>,
    /// A `Fail` is in the inbox: later frames do not matter.
    doomed: bool,
    /// The peer's stream broke: the inbox may never be emptied.
    truncated: bool,
    assembling: Option<Assembling>,
    /// The model's count of bytes waiting in this side's output.
    pending: usize,
    /// The output's high-water mark, and what was queued, since it was
    /// last empty.
    peak: usize,
    queued_since_empty: usize,
    /// Bytes written, through `advance_output` and directly.
    written: u64,
}

impl Side {
    fn new(name: &'static str, conn: Connection, limits: Limits) -> Side {
        let mask = if conn.role() == Role::Client { 4 } else { 0 };
        Side {
            name,
            conn,
            mask,
            limits,
            timeouts: Timeouts::default(),
            compress_from: None,
            inflating: false,
            closed: false,
            broken: false,
            end: End::Running,
            first_failure: None,
            in_closed: false,
            got_close: None,
            sent_close: None,
            initiated: false,
            fragment: None,
            inbox: VecDeque::new(),
            doomed: false,
            truncated: false,
            assembling: None,
            pending: 0,
            peak: 0,
            queued_since_empty: 0,
            written: 0,
        }
    }

    /// What sending a frame must give, from the sender's state and the
    /// frame (`Outbound::encode`'s rules).
    fn predict(&self, opcode: OpCode, fin: bool, len: usize) -> Result<(), SendError> {
        const INVALID: Result<(), SendError> = Err(SendError::InvalidInput(""));
        if self.broken {
            return Err(SendError::Broken);
        }
        if self.closed {
            return Err(SendError::Closed);
        }
        let invalid = match opcode {
            _ if opcode.is_control() => !fin || len > MAX_CONTROL_PAYLOAD,
            OpCode::Continuation => self.fragment.is_none(),
            _ => self.fragment.is_some(),
        };
        if invalid {
            return INVALID;
        }
        Ok(())
    }

    /// The size of a control frame with `payload` bytes from this side.
    fn control_len(&self, payload: usize) -> usize {
        2 + self.mask + payload
    }

    /// A frame of `delta` bytes was queued: its payload length, checking
    /// that the header used the minimal length form.
    fn wire_len(&self, delta: usize) -> usize {
        let d = delta
            .checked_sub(2 + self.mask)
            .unwrap_or_else(|| panic!("{}: a {delta}-byte frame", self.name));
        // d is the extended length (none, 2 or 8 bytes) plus the payload.
        if d <= 125 {
            d
        } else if (128..=65537).contains(&d) {
            d - 2
        } else if d >= 65544 {
            d - 8
        } else {
            panic!(
                "{}: a {delta}-byte frame cannot have a minimal header",
                self.name
            )
        }
    }

    /// `delta` bytes were queued.
    fn queued(&mut self, delta: usize) {
        self.pending += delta;
        self.queued_since_empty += delta;
        self.peak = self.peak.max(self.pending);
        let got = self.conn.pending_output();
        assert_eq!(
            got, self.pending,
            "{}: {got} bytes pending, the model says {}",
            self.name, self.pending
        );
    }

    /// `n` bytes of the output were written (or dropped unread).
    fn took(&mut self, n: usize) {
        self.pending -= n;
        self.written += n as u64;
        if self.pending == 0 {
            self.peak = 0;
            self.queued_since_empty = 0;
        }
    }

    /// The output was thrown away: a write failed.
    fn cleared(&mut self) {
        self.pending = 0;
        self.peak = 0;
        self.queued_since_empty = 0;
    }

    /// Our close frame carrying `frame` was queued in `delta` bytes; the
    /// peer must receive it.
    fn queued_close(&mut self, peer: &mut Side, frame: Option<CloseFrame>, delta: usize) {
        let payload = frame.as_ref().map_or(0, |f| 2 + f.reason.len());
        assert_eq!(
            delta,
            self.control_len(payload),
            "{}: close {frame:?} queued as {delta} bytes",
            self.name
        );
        self.queued(delta);
        self.closed = true;
        self.initiated = self.got_close.is_none();
        self.sent_close = Some(frame.clone());
        peer.inbox.push_back(Expect::Close(frame));
    }

    /// The peer queued a data frame for us: what we must make of it. `wire`
    /// is its payload on the wire, `plain` before compression.
    fn expect_data(
        &mut self,
        first: bool,
        fin: bool,
        wire: usize,
        plain: usize,
        compressed: bool,
        message: impl FnOnce() -> Message,
    ) {
        if self.doomed {
            return;
        }
        let l = self.limits;
        let fail = if wire > l.max_frame_size {
            Some(ProtocolError::FrameTooBig {
                size: wire as u64,
                limit: l.max_frame_size,
            })
        } else {
            let mut m = match (first, self.assembling) {
                (true, _) => Assembling { size: 0, frames: 1 },
                (false, Some(m)) => m,
                (false, None) => panic!("{}: a continuation the model lost", self.name),
            };
            let size = m.size + wire as u64;
            if !compressed && size > l.max_message_size as u64 {
                Some(ProtocolError::MessageTooBig {
                    size,
                    limit: l.max_message_size,
                })
            } else if !first && m.frames + 1 > l.max_fragments {
                Some(ProtocolError::TooManyFragments {
                    limit: l.max_fragments,
                })
            } else if compressed && plain > l.max_message_size {
                // The inflater stops at the limit.
                Some(ProtocolError::MessageTooBig {
                    size: l.max_message_size as u64 + 1,
                    limit: l.max_message_size,
                })
            } else {
                if !first {
                    m.frames += 1;
                }
                m.size = size;
                self.assembling = (!fin).then_some(m);
                if fin {
                    self.inbox.push_back(Expect::Message(message()));
                }
                None
            }
        };
        if let Some(e) = fail {
            self.inbox.push_back(Expect::Fail(e));
            self.doomed = true;
        }
    }

    /// The memory this side may hold.
    fn memory_bound(&self) -> usize {
        let inflate = if self.inflating { INFLATE_MEMORY } else { 0 };
        let deflate = if self.compress_from.is_some() {
            DEFLATER_MEMORY
        } else {
            0
        };
        let queue = if CHECK_QUEUE_MEMORY {
            self.peak
        } else {
            self.queued_since_empty
        };
        self.limits.max_message_size
            + read_buffer_bound(&self.limits)
            + inflate
            + deflate
            + QUEUE_KEPT
            + 4 * queue
    }

    /// The connection's accessors agree with the model.
    fn check(&self) {
        let c = &self.conn;
        let name = self.name;
        let pending = c.pending_output();
        assert_eq!(pending, self.pending, "{name}: pending_output");
        assert_eq!(
            c.close_sent(),
            self.closed || self.broken,
            "{name}: close_sent"
        );
        assert_eq!(c.wants_read(), !self.in_closed, "{name}: wants_read");
        assert_eq!(c.failure(), self.first_failure, "{name}: failure");
        assert_eq!(
            c.peer_close_frame(),
            self.got_close.as_ref().map(Option::as_ref),
            "{name}: peer_close_frame"
        );
        if self.broken {
            assert_eq!(pending, 0, "{name}: output left after a failed write");
        }
        let done = self.end != End::Running || (self.got_close.is_some() && self.closed);
        let finished = self.broken || (done && pending == 0);
        assert_eq!(c.is_finished(), finished, "{name}: is_finished");
        let t = self.timeouts;
        let timed =
            t.read.is_some() || t.keepalive.is_some() || t.close.is_some() || t.write.is_some();
        assert_eq!(c.tick().is_some(), timed, "{name}: tick");
        let (held, bound) = (c.memory_held(), self.memory_bound());
        assert!(held <= bound, "{name}: memory_held {held} > bound {bound}");
    }
}

// ---------------------------------------------------------------------------
// The pair.
// ---------------------------------------------------------------------------

struct Pair {
    /// The client, then the server.
    sides: [Side; 2],
    now: Instant,
    /// Receivers are told `heard(now)` after each read.
    tell_heard: bool,
    /// Which side closes at the end.
    final_closer: usize,
    /// Payload bytes the remaining sends may use.
    budget: usize,
    summary: Summary,
}

/// Both sides, `i`'s first.
fn two(sides: &mut [Side; 2], i: usize) -> (&mut Side, &mut Side) {
    let (a, b) = sides.split_at_mut(1);
    if i == 0 {
        (&mut a[0], &mut b[0])
    } else {
        (&mut b[0], &mut a[0])
    }
}

/// How a transfer moves bytes.
#[derive(Clone, Copy)]
struct Moves {
    /// Most bytes moved; `usize::MAX`: all.
    limit: usize,
    /// Slices asked of `output`.
    slices: usize,
    /// Through `read_buf` and `commit` rather than `receive`.
    read_buf: bool,
    /// Most bytes per `commit`.
    commit_cap: usize,
    /// Take every event afterwards.
    drain: bool,
}

const ALL: Moves = Moves {
    limit: usize::MAX,
    slices: 8,
    read_buf: false,
    commit_cap: usize::MAX,
    drain: true,
};

impl Pair {
    fn new(c: &mut Cursor) -> Pair {
        let flags = c.u8();
        let seed = c.u64();
        let deflate = (flags & 1 != 0).then(|| (deflate_config(c), deflate_config(c)));
        let client_limits = if flags & 2 != 0 {
            limits(c)
        } else {
            Limits::default()
        };
        let server_limits = if flags & 4 != 0 {
            limits(c)
        } else {
            Limits::default()
        };
        let client_timeouts = (flags & 8 != 0).then(|| timeouts(c));
        let server_timeouts = (flags & 16 != 0).then(|| timeouts(c));
        // Virtual time, from a second past the origin (so that it can step back).
        let now = Instant::from_duration(Duration::from_secs(1));
        let client = Connection::client(client_limits, Box::new(SplitMixKeys(seed)));
        let server = Connection::server(server_limits);
        let mut sides = [
            Side::new("client", client, client_limits),
            Side::new("server", server, server_limits),
        ];
        for (side, t) in sides.iter_mut().zip([client_timeouts, server_timeouts]) {
            if let Some(t) = t {
                side.conn.set_timeouts(t, now);
                side.timeouts = t;
            }
        }
        let mut summary = Summary::default();
        if let Some((client_config, server_config)) = deflate {
            let offered = offer(&client_config);
            if let Some((agreed, answer)) = negotiate([offered.as_str()], &server_config) {
                assert_eq!(
                    accept_response([answer.as_str()], &client_config),
                    Ok(Some(agreed)),
                    "the client refuses the answer to its own offer {offered:?}: {answer:?}"
                );
                let configs = [(Role::Client, client_config), (Role::Server, server_config)];
                for (side, (role, config)) in sides.iter_mut().zip(configs) {
                    side.conn
                        .enable_deflate(PerMessageDeflate::new(role, &agreed, &config));
                    side.compress_from = Some(config.threshold);
                    side.inflating = true;
                }
                summary.deflate = true;
            }
        }
        Pair {
            sides,
            now,
            tell_heard: flags & 32 != 0,
            final_closer: usize::from(flags & 64 != 0),
            budget: MAX_STREAM_PAYLOAD,
            summary,
        }
    }

    /// A message payload: `pattern`: u16 length (mod 10,000) and a pattern
    /// (u8 length mod 8, +1) repeated, else u8 length and bytes; text is
    /// made of those bytes by [`text_from`] (then cut to the length at a
    /// character boundary). Cut to the remaining budget.
    fn payload(&mut self, c: &mut Cursor, text: bool, pattern: bool) -> Vec<u8> {
        let (n, unit) = if pattern {
            let n = usize::from(c.u16()) % MAX_PATTERN_PAYLOAD;
            let len = usize::from(c.u8() % 8) + 1;
            (n, c.bytes(len).to_vec())
        } else {
            let n = usize::from(c.u8());
            (usize::MAX, c.bytes(n).to_vec())
        };
        let unit = if unit.is_empty() { vec![b'x'] } else { unit };
        let bytes = if text {
            let unit = text_from(&unit);
            let s = if n == usize::MAX {
                unit
            } else {
                unit.repeat(n / unit.len() + 1)
            };
            truncate_str(&s, n.min(self.budget)).into_bytes()
        } else if n == usize::MAX {
            unit[..unit.len().min(self.budget)].to_vec()
        } else {
            unit.iter()
                .copied()
                .cycle()
                .take(n.min(self.budget))
                .collect()
        };
        self.budget -= bytes.len();
        bytes
    }

    /// One operation; its bytes follow the op byte.
    fn op(&mut self, c: &mut Cursor) {
        let op = c.u8();
        let i = usize::from(op & 1);
        match (op >> 1) % 16 {
            // A whole message. sub u8: bits 0-1 the call (send(Message),
            // send_ref, send_text/send_binary, send_fragment with fin), bit 2
            // text, bit 3 pattern payload; the payload.
            0 | 1 => {
                let sub = c.u8();
                let text = sub & 4 != 0;
                let data = self.payload(c, text, sub & 8 != 0);
                self.send_whole(i, sub & 3, text, data);
            }
            // The first fragment of a message. sub u8: bit 2 text, bit 3
            // pattern; the payload; u16: the first fragment's length (mod
            // the message's + 1).
            2 => {
                let sub = c.u8();
                let text = sub & 4 != 0;
                let data = self.payload(c, text, sub & 8 != 0);
                let split = usize::from(c.u16()) % (data.len() + 1);
                self.start_fragments(i, text, data, split);
            }
            // The next fragment. sub u8: bit 0 the last (the rest of the
            // message), bit 1 a control opcode instead (refused); u16: its
            // length (mod what is left + 1).
            3 => {
                let sub = c.u8();
                let k = usize::from(c.u16());
                self.next_fragment(i, sub & 1 != 0, sub & 2 != 0, k);
            }
            // A ping, a pong: u8 length (mod 127: 126 is refused), bytes.
            4 | 5 => {
                let n = usize::from(c.u8() % 127);
                let payload = c.bytes(n).to_vec();
                self.send_control(i, (op >> 1) % 16 == 4, &payload);
            }
            // A close. u16: the code (0xffff: no code, sent through the
            // outlet; 0xfffe: 1005, refused; else a sendable code); u8
            // length (mod 125: 124 is refused) and bytes for the reason.
            6 => {
                let sel = c.u16();
                let n = usize::from(c.u8() % 125);
                let reason = truncate_str(&text_from(c.bytes(n)), n);
                self.close(i, sel, &reason);
            }
            // Move bytes from side i to the other. u16: how many (0: all);
            // u8: bits 0-2 slices - 1, bit 3 read_buf/commit, bit 4 take
            // the events after, bits 5-7 the most bytes per commit.
            7..=9 => {
                let moves = self.moves(c);
                self.transfer(i, moves);
            }
            // Take events. u8: bits 0-1 how (next_event, poll +
            // message_ref, poll + message_ref + take_message, poll +
            // take_message), bits 2-7 how many (0: all).
            10 => {
                let sub = c.u8();
                let max = match sub >> 2 {
                    0 => usize::MAX,
                    n => usize::from(n),
                };
                self.take_events(i, sub & 3, max);
            }
            // Time passes. u8 mode, u16 amount: mode bits 0-1: + amount
            // ms, to side i's poll_timeout (bit 7: less 1 ns) + amount % 4
            // ms, + (amount % 4) ticks of side i, + amount % 64 s; bits
            // 2-3: handle_timeout on both sides, side i, the other, none;
            // bit 4: handle_timeout_with, `amount` bytes unacknowledged (mod
            // what the side wrote + 1).
            11 => {
                let mode = c.u8();
                let amount = c.u16();
                self.time(i, mode, amount);
            }
            // A frame side i writes itself: Outbound::encode through the
            // outlet, `w` bytes written directly to the peer (if nothing
            // is queued), the rest queued. sub u8: bits 0-1 text, binary,
            // ping, pong; bit 2 pattern; bit 3 owned payload; the payload;
            // u16 w (mod the frame's length + 1).
            12 => {
                let sub = c.u8();
                let (opcode, data) = match sub & 3 {
                    0 => (OpCode::Text, self.payload(c, true, sub & 4 != 0)),
                    1 => (OpCode::Binary, self.payload(c, false, sub & 4 != 0)),
                    k => {
                        let n = usize::from(c.u8() % 127);
                        let op = [OpCode::Ping, OpCode::Pong][usize::from(k & 1)];
                        (op, c.bytes(n).to_vec())
                    }
                };
                let w = usize::from(c.u16());
                self.direct(i, opcode, data, sub & 8 != 0, w);
            }
            // u8: 0xa5: side i's write fails; odd: side i shrinks.
            13 => match c.u8() {
                0xa5 => self.write_failed(i),
                b if b & 1 != 0 => self.sides[i].conn.shrink(),
                _ => {}
            },
            // Everything moves both ways until nothing is left to move.
            14 => self.settle(),
            // One step both ways, moves as for 7.
            _ => {
                let moves = self.moves(c);
                self.transfer(i, moves);
                self.transfer(1 - i, moves);
            }
        }
    }

    fn moves(&self, c: &mut Cursor) -> Moves {
        let limit = match c.u16() {
            0 => usize::MAX,
            n => usize::from(n),
        };
        let o = c.u8();
        let mut slices = usize::from(o & 7) + 1;
        if !CHECK_ONE_SLICE_OUTPUT {
            slices = slices.max(2);
        }
        Moves {
            limit,
            slices,
            read_buf: o & 8 != 0,
            commit_cap: [usize::MAX, 1, 2, 3, 7, 16, 100, 1000][usize::from(o >> 5)],
            drain: o & 16 != 0,
        }
    }

    // ---- sends -----------------------------------------------------------

    /// Checks a send's result against the prediction; on a refusal nothing
    /// may have been queued.
    fn sent(
        &self,
        i: usize,
        what: &str,
        got: &Result<(), SendError>,
        want: &Result<(), SendError>,
    ) {
        let s = &self.sides[i];
        assert!(
            same_result(got, want),
            "{}: {what} gave {got:?}, the state says {want:?}",
            s.name
        );
        if got.is_err() {
            assert_eq!(
                s.conn.pending_output(),
                s.pending,
                "{}: a refused {what} queued bytes",
                s.name
            );
        }
    }

    /// Side i queued a data frame, `pending_output` was `before`.
    #[allow(clippy::too_many_arguments)]
    fn queued_data(
        &mut self,
        i: usize,
        before: usize,
        first: bool,
        fin: bool,
        text: bool,
        chunk_len: usize,
        message: impl FnOnce() -> Vec<u8>,
    ) {
        let (a, b) = two(&mut self.sides, i);
        let delta = a.conn.pending_output() - before;
        let wire = a.wire_len(delta);
        let compressed = first && fin && a.compress_from.is_some_and(|t| chunk_len >= t);
        if !compressed {
            assert_eq!(wire, chunk_len, "{}: data frame payload length", a.name);
        }
        a.queued(delta);
        b.expect_data(first, fin, wire, chunk_len, compressed, || {
            let bytes = message();
            if text {
                Message::Text(String::from_utf8(bytes).expect("the model's text is UTF-8"))
            } else {
                Message::Binary(bytes)
            }
        });
    }

    fn send_whole(&mut self, i: usize, api: u8, text: bool, data: Vec<u8>) {
        let opcode = if text { OpCode::Text } else { OpCode::Binary };
        let a = &mut self.sides[i];
        let want = a.predict(opcode, true, data.len());
        let before = a.conn.pending_output();
        let s = || std::str::from_utf8(&data).expect("the model's text is UTF-8");
        let got = match (api, text) {
            (0, true) => a.conn.send(Message::Text(s().to_owned())),
            (0, false) => a.conn.send(Message::Binary(data.clone())),
            (1, true) => a.conn.send_ref(MessageRef::Text(s())),
            (1, false) => a.conn.send_ref(MessageRef::Binary(&data)),
            (2, true) => a.conn.send_text(s()),
            (2, false) => a.conn.send_binary(&data),
            _ => a.conn.send_fragment(opcode, &data, true),
        };
        self.sent(i, "a whole message", &got, &want);
        if got.is_ok() {
            let len = data.len();
            self.queued_data(i, before, true, true, text, len, || data);
        }
    }

    fn start_fragments(&mut self, i: usize, text: bool, data: Vec<u8>, split: usize) {
        let opcode = if text { OpCode::Text } else { OpCode::Binary };
        let a = &mut self.sides[i];
        let want = a.predict(opcode, false, split);
        let before = a.conn.pending_output();
        let got = a.conn.send_fragment(opcode, &data[..split], false);
        self.sent(i, "a first fragment", &got, &want);
        if got.is_ok() {
            self.queued_data(i, before, true, false, text, split, Vec::new);
            self.sides[i].fragment = Some(Fragmenting {
                text,
                plan: data,
                sent: split,
            });
        }
    }

    fn next_fragment(&mut self, i: usize, fin: bool, control: bool, k: usize) {
        let a = &mut self.sides[i];
        let before = a.conn.pending_output();
        if control {
            let got = a.conn.send_fragment(OpCode::Ping, b"", fin);
            let want = Err(SendError::InvalidInput(""));
            return self.sent(i, "a control fragment", &got, &want);
        }
        let (start, end, text) = match &a.fragment {
            Some(f) => {
                let left = f.plan.len() - f.sent;
                let n = if fin { left } else { k % (left + 1) };
                (f.sent, f.sent + n, f.text)
            }
            None => (0, 0, false),
        };
        let want = a.predict(OpCode::Continuation, fin, end - start);
        let chunk = a.fragment.as_ref().map_or(&[][..], |f| &f.plan[start..end]);
        let got = a.conn.send_fragment(OpCode::Continuation, chunk, fin);
        self.sent(i, "a continuation", &got, &want);
        if got.is_ok() {
            let f = self.sides[i].fragment.take().expect("predicted Ok");
            let plan = f.plan.clone();
            self.queued_data(i, before, false, fin, text, end - start, || plan);
            if !fin {
                self.sides[i].fragment = Some(Fragmenting { sent: end, ..f });
            }
        }
    }

    fn send_control(&mut self, i: usize, ping: bool, payload: &[u8]) {
        let (a, b) = two(&mut self.sides, i);
        let opcode = if ping { OpCode::Ping } else { OpCode::Pong };
        let want = a.predict(opcode, true, payload.len());
        let before = a.conn.pending_output();
        let got = if ping {
            a.conn.ping(payload)
        } else {
            a.conn.pong(payload)
        };
        if got.is_ok() {
            let delta = a.conn.pending_output() - before;
            assert_eq!(
                delta,
                a.control_len(payload.len()),
                "{}: {opcode:?} size",
                a.name
            );
            a.queued(delta);
            b.inbox.push_back(if ping {
                Expect::Ping(payload.to_vec())
            } else {
                Expect::Pong(payload.to_vec())
            });
        }
        self.sent(i, "a ping or pong", &got, &want);
    }

    fn close(&mut self, i: usize, sel: u16, reason: &str) {
        let (a, b) = two(&mut self.sides, i);
        let before = a.conn.pending_output();
        let (got, want, frame) = if sel == 0xffff {
            let want = a.predict(OpCode::Close, true, 0);
            let got = a
                .conn
                .outlet()
                .send(OpCode::Close, Payload::Borrowed(&[]), true);
            (got, want, None)
        } else {
            let code = if sel == 0xfffe {
                CloseCode(1005)
            } else {
                sendable_code(sel)
            };
            let want = if !code.is_sendable() || reason.len() > 123 {
                Err(SendError::InvalidInput(""))
            } else if a.broken {
                Err(SendError::Broken)
            } else {
                Ok(())
            };
            let got = a.conn.close(code, reason);
            let frame = CloseFrame {
                code,
                reason: reason.to_owned(),
            };
            (got, want, Some(frame))
        };
        let delta = a.conn.pending_output() - before;
        if got.is_ok() && !a.closed {
            a.queued_close(b, frame, delta);
        } else {
            assert_eq!(
                delta, 0,
                "{}: a close that changed nothing queued bytes",
                a.name
            );
        }
        self.sent(i, "a close", &got, &want);
    }

    /// A frame side i encodes and writes itself.
    fn direct(&mut self, i: usize, opcode: OpCode, data: Vec<u8>, owned: bool, w: usize) {
        let (a, b) = two(&mut self.sides, i);
        let want = a.predict(opcode, true, data.len());
        let payload = if owned {
            Payload::Owned(data.clone())
        } else {
            Payload::Borrowed(&data)
        };
        let got = a.conn.outlet().encode(opcode, payload, true);
        let frame = match got {
            Ok(frame) => frame,
            Err(e) => return self.sent(i, "an encode", &Err(e), &want),
        };
        assert!(
            want.is_ok(),
            "{}: encode gave a frame, the state says {want:?}",
            a.name
        );
        let head = frame.head();
        let full = [head, frame.body()].concat();
        assert_eq!(frame.len(), full.len());
        assert_eq!(
            a.wire_len(full.len()),
            frame.body().len(),
            "{}: header",
            a.name
        );
        assert_eq!(head[1] & 0x80 != 0, a.mask > 0, "{}: mask bit", a.name);
        let whole = !opcode.is_control();
        let compressed = whole && a.compress_from.is_some_and(|t| data.len() >= t);
        assert_eq!(head[0] & 0x40 != 0, compressed, "{}: RSV1", a.name);
        if whole {
            assert_eq!(
                head[0] & 0x8f,
                0x80 | opcode.bits(),
                "{}: first byte",
                a.name
            );
        }
        // The model first: the direct bytes may make events at once.
        if whole {
            let text = opcode == OpCode::Text;
            let (wire, plain) = (frame.body().len(), data.len());
            b.expect_data(true, true, wire, plain, compressed, || {
                if text {
                    Message::Text(String::from_utf8(data.clone()).expect("UTF-8"))
                } else {
                    Message::Binary(data.clone())
                }
            });
        } else {
            b.inbox.push_back(if opcode == OpCode::Ping {
                Expect::Ping(data.clone())
            } else {
                Expect::Pong(data.clone())
            });
        }
        let written = if a.pending == 0 {
            w % (full.len() + 1)
        } else {
            0
        };
        let now = self.now;
        if written > 0 {
            self.deliver(1 - i, &full[..written], ALL);
        }
        let a = &mut self.sides[i];
        a.conn.outlet().queue(frame, written);
        a.written += written as u64;
        a.conn.wrote(a.written, false, now);
        a.queued(full.len() - written);
    }

    fn write_failed(&mut self, i: usize) {
        let (a, b) = two(&mut self.sides, i);
        a.conn.write_failed();
        b.truncated |= a.pending > 0;
        a.broken = true;
        a.cleared();
    }

    // ---- bytes between the two -------------------------------------------

    /// Gives `bytes` to side `to`, taking its events when it is full;
    /// returns how many it took (all of them once it reads nothing more:
    /// those are dropped).
    fn deliver(&mut self, to: usize, bytes: &[u8], moves: Moves) -> usize {
        let mut moved = 0;
        while moved < bytes.len() && self.sides[to].conn.wants_read() {
            let mut took = self.put(to, &bytes[moved..], moves);
            if took == 0 {
                self.take_events(to, 0, usize::MAX);
                if !self.sides[to].conn.wants_read() {
                    break;
                }
                took = self.put(to, &bytes[moved..], moves);
                let s = &mut self.sides[to];
                assert!(
                    took > 0,
                    "{}: no room to read after taking every event",
                    s.name
                );
            }
            moved += took;
            if self.tell_heard {
                let now = self.now;
                self.sides[to].conn.heard(now);
            }
        }
        if self.sides[to].conn.wants_read() {
            moved
        } else {
            bytes.len()
        }
    }

    /// One read into side `to`.
    fn put(&mut self, to: usize, bytes: &[u8], moves: Moves) -> usize {
        let conn = &mut self.sides[to].conn;
        let bytes = &bytes[..bytes.len().min(moves.commit_cap)];
        if moves.read_buf {
            let buf = conn.read_buf();
            let n = buf.len().min(bytes.len());
            buf[..n].copy_from_slice(&bytes[..n]);
            conn.commit(n);
            n
        } else {
            conn.receive(bytes)
        }
    }

    /// Moves up to `moves.limit` bytes of side `from`'s output to the
    /// other side; whether any moved.
    fn transfer(&mut self, from: usize, moves: Moves) -> bool {
        let to = 1 - from;
        let a = &self.sides[from];
        let pending = a.conn.pending_output();
        if pending == 0 {
            return false;
        }
        let bytes = {
            let mut slices = vec![&[][..]; moves.slices];
            let n = a.conn.output(&mut slices);
            assert!(n <= moves.slices);
            let total: usize = slices[..n].iter().map(|s| s.len()).sum();
            assert!(
                total <= pending,
                "{}: output has more than is pending",
                a.name
            );
            assert!(
                total > 0,
                "{}: output() in {} slices gave nothing with {pending} bytes pending",
                a.name,
                moves.slices
            );
            let mut bytes = Vec::new();
            for s in &slices[..n] {
                let room = moves.limit.saturating_sub(bytes.len());
                bytes.extend_from_slice(&s[..s.len().min(room)]);
            }
            bytes
        };
        let moved = self.deliver(to, &bytes, moves);
        let a = &mut self.sides[from];
        a.conn.advance_output(moved);
        a.took(moved);
        if moves.drain {
            self.take_events(to, 0, usize::MAX);
        }
        moved > 0
    }

    /// Moves everything both ways, taking every event, until nothing moves.
    fn settle(&mut self) {
        for _ in 0..10_000 {
            self.take_events(0, 0, usize::MAX);
            self.take_events(1, 0, usize::MAX);
            let a = self.transfer(0, ALL);
            let b = self.transfer(1, ALL);
            if !a && !b {
                for s in &self.sides {
                    assert_eq!(s.conn.pending_output(), 0, "{}: output left", s.name);
                }
                return;
            }
        }
        panic!("the pair never settled");
    }

    // ---- events ----------------------------------------------------------

    /// Takes up to `max` events from side `i` and checks each against its
    /// inbox. `api`: 0 next_event, 1 poll + message_ref, 2 poll +
    /// message_ref + take_message, 3 poll + take_message.
    fn take_events(&mut self, i: usize, api: u8, max: usize) {
        for _ in 0..max {
            let b = &mut self.sides[i];
            if b.closed || b.broken {
                // Data that arrives after our close is dropped.
                let before = b.inbox.len();
                b.inbox.retain(|e| !matches!(e, Expect::Message(_)));
                self.summary.dropped[i] += before - b.inbox.len();
            }
            let before = b.conn.pending_output();
            let event = match api {
                0 => b.conn.next_event(),
                _ => match b.conn.poll() {
                    Ok(Some(Event::Message(()))) => {
                        let lent = b.conn.message_ref().map(|m| m.to_message());
                        let lent = lent.unwrap_or_else(|| panic!("{}: no message_ref", b.name));
                        if api >= 2 {
                            let taken = b.conn.take_message();
                            assert_eq!(taken.as_ref(), Some(&lent), "{}: take_message", b.name);
                            assert!(
                                b.conn.message_ref().is_none(),
                                "{}: lent after take",
                                b.name
                            );
                        }
                        Ok(Some(Event::Message(lent)))
                    }
                    Ok(Some(other)) => {
                        assert!(b.conn.message_ref().is_none(), "{}: message_ref", b.name);
                        Ok(Some(match other {
                            Event::Ping(p) => Event::Ping(p),
                            Event::Pong(p) => Event::Pong(p),
                            Event::Close(f) => Event::Close(f),
                            Event::Message(()) => unreachable!(),
                        }))
                    }
                    Ok(None) => Ok(None),
                    Err(e) => Err(e),
                },
            };
            let delta = b.conn.pending_output() - before;
            match event {
                Ok(None) => {
                    assert_eq!(delta, 0, "{}: queued bytes without an event", b.name);
                    return;
                }
                Ok(Some(event)) => self.on_event(i, event, delta),
                Err(e) => return self.on_error(i, e, delta),
            }
        }
    }

    fn on_event(&mut self, i: usize, event: Event, delta: usize) {
        let (b, a) = two(&mut self.sides, i);
        let Some(want) = b.inbox.pop_front() else {
            panic!("{}: {event:?} arrived, but nothing more was sent", b.name);
        };
        let answer = !b.closed && !b.broken;
        match (event, want) {
            (Event::Message(m), Expect::Message(w)) => {
                assert!(m == w, "{}: got {}, sent {}", b.name, brief(&m), brief(&w));
                assert_eq!(delta, 0, "{}: a message queued bytes", b.name);
                self.summary.messages[i] += 1;
            }
            (Event::Ping(p), Expect::Ping(w)) => {
                assert_eq!(&p[..], &w[..], "{}: ping payload", b.name);
                if answer {
                    assert_eq!(delta, b.control_len(w.len()), "{}: the pong", b.name);
                    b.queued(delta);
                    a.inbox.push_back(Expect::Pong(w));
                } else {
                    assert_eq!(delta, 0, "{}: a pong while closing", b.name);
                }
                self.summary.pings[i] += 1;
            }
            (Event::Pong(p), Expect::Pong(w)) => {
                assert_eq!(&p[..], &w[..], "{}: pong payload", b.name);
                assert_eq!(delta, 0, "{}: a pong queued bytes", b.name);
                self.summary.pongs[i] += 1;
            }
            (Event::Close(f), Expect::Close(w)) => {
                assert_eq!(f, w, "{}: the close frame", b.name);
                b.got_close = Some(f.clone());
                b.in_closed = true;
                if answer {
                    // The echo carries the code, not the reason.
                    let echo = f.map(|f| CloseFrame::new(f.code));
                    b.queued_close(a, echo, delta);
                } else {
                    assert_eq!(delta, 0, "{}: echoed a close after its own", b.name);
                }
                self.summary.got_close[i] = b.got_close.clone();
            }
            (event, want) => panic!("{}: got {event:?}, expected {want:?}", b.name),
        }
    }

    fn on_error(&mut self, i: usize, e: ProtocolError, delta: usize) {
        let (b, a) = two(&mut self.sides, i);
        match b.inbox.pop_front() {
            Some(Expect::Fail(w)) if w == e => {}
            want => panic!(
                "{}: {e:?} between two stdws ends; expected {want:?}",
                b.name
            ),
        }
        assert_eq!(e.close_code(), CloseCode::TOO_BIG, "{}: {e:?}", b.name);
        b.end = End::Failed(e.close_code());
        b.first_failure.get_or_insert(e.close_code());
        b.in_closed = true;
        if !b.closed && !b.broken {
            b.queued_close(a, Some(e.close_frame()), delta);
        } else {
            assert_eq!(delta, 0, "{}: a second close", b.name);
        }
        self.summary.failed[i] = Some(e);
    }

    // ---- time --------------------------------------------------------------

    fn time(&mut self, i: usize, mode: u8, amount: u16) {
        let unacked = (mode & 0x10 != 0).then_some(amount);
        let ms = |n: u64| Duration::from_millis(n);
        let s = &self.sides[i].conn;
        let target = match mode & 3 {
            0 => self.now + ms(u64::from(amount)),
            1 => match s.poll_timeout() {
                Some(t) if mode & 0x80 != 0 => t.checked_sub(Duration::from_nanos(1)).unwrap_or(t),
                Some(t) => t + ms(u64::from(amount % 4)),
                None => self.now,
            },
            2 => self.now + s.tick().unwrap_or_default() * u32::from(amount % 4),
            _ => self.now + Duration::from_secs(u64::from(amount % 64)),
        };
        self.now = self.now.max(target);
        match (mode >> 2) & 3 {
            0 => {
                self.timeout(0, unacked);
                self.timeout(1, unacked);
            }
            1 => self.timeout(i, unacked),
            2 => self.timeout(1 - i, unacked),
            _ => {}
        }
    }

    /// `handle_timeout(now)` on side `i`.
    /// `handle_timeout(now)` on side `i`, or `handle_timeout_with` where
    /// the driver says how many written bytes are unacknowledged: `unacked`
    /// of them, mod what was written + 1.
    fn timeout(&mut self, i: usize, unacked: Option<u16>) {
        let now = self.now;
        let (a, b) = two(&mut self.sides, i);
        let before = a.conn.pending_output();
        let deadline = a.conn.poll_timeout();
        // Zero write and close deadlines expire the moment they start, and a
        // zero keepalive interval pings the moment the peer is heard from
        // (or takes our bytes): none of those can be foreseen.
        let t = a.timeouts;
        let interval = t.keepalive.map(|k| k.interval);
        let zero = [t.write, t.close, interval].contains(&Some(Duration::ZERO));
        let early = !zero && !matches!(a.end, End::Expired(_)) && deadline.is_none_or(|d| now < d);
        let got = match unacked {
            None => a.conn.handle_timeout(now),
            Some(n) => {
                let n = u64::from(n) % (a.written + 1);
                a.conn.handle_timeout_with(now, || Some(n))
            }
        };
        let after = a.conn.pending_output();
        if early {
            assert!(
                got.is_none() && after == before,
                "{}: handle_timeout acted ({got:?}) before poll_timeout {:?}",
                a.name,
                deadline.map(|d| d - now)
            );
        }
        match (got, a.end) {
            (None, End::Expired(w)) => panic!("{}: expired with {w:?}, then not", a.name),
            (Some(why), End::Expired(w)) => {
                assert_eq!(why, w, "{}: the expiry changed", a.name);
                assert_eq!(after, before, "{}: a second expiry queued bytes", a.name);
            }
            (None, _) if after > before => {
                // A keepalive ping.
                assert!(!a.closed && !a.broken, "{}: a ping after our close", a.name);
                assert_eq!(
                    after - before,
                    a.control_len(0),
                    "{}: keepalive ping",
                    a.name
                );
                a.queued(after - before);
                b.inbox.push_back(Expect::Ping(Vec::new()));
                self.summary.keepalive_pings[i] += 1;
            }
            (None, _) => assert_eq!(after, before, "{}: bytes queued", a.name),
            (Some(why), _) => {
                a.end = End::Expired(why);
                a.first_failure.get_or_insert(CloseCode::GOING_AWAY);
                self.summary.expired[i] = Some(why);
                match why {
                    Expired::SendStalled(_) => {
                        assert!(before > 0, "{}: stalled with nothing to send", a.name);
                        assert_eq!(after, 0, "{}: stalled output kept", a.name);
                        b.truncated = true;
                        a.broken = true;
                        a.cleared();
                    }
                    _ if !a.closed && !a.broken => {
                        let frame = CloseFrame {
                            code: CloseCode::GOING_AWAY,
                            reason: "timeout".into(),
                        };
                        a.queued_close(b, Some(frame), after - before);
                    }
                    _ => assert_eq!(after, before, "{}: a second close", a.name),
                }
            }
        }
    }

    // ---- checks --------------------------------------------------------------

    fn check(&self) {
        for s in &self.sides {
            s.check();
        }
    }

    /// After a settle: every inbox is empty, but for what was dropped after
    /// the receiver's close, or lost with a broken stream or after a failure.
    fn check_delivered(&mut self) {
        for (i, s) in self.sides.iter_mut().enumerate() {
            if s.closed || s.broken {
                let before = s.inbox.len();
                s.inbox.retain(|e| !matches!(e, Expect::Message(_)));
                self.summary.dropped[i] += before - s.inbox.len();
            }
            if !s.truncated && self.summary.failed[i].is_none() {
                assert!(
                    s.inbox.is_empty(),
                    "{}: never received {:?} (and {} more)",
                    s.name,
                    s.inbox.front(),
                    s.inbox.len().saturating_sub(1)
                );
            }
        }
    }

    fn finish(&mut self) {
        self.settle();
        self.check();
        self.check_delivered();
        let i = self.final_closer;
        self.close(i, 0, "done"); // sendable_code(0): 1000
        self.settle();
        self.check();
        self.check_delivered();
        let broken = self.sides.iter().any(|s| s.broken);
        for (i, s) in self.sides.iter().enumerate() {
            self.summary.finished[i] = s.conn.is_finished();
            if !broken {
                assert!(s.conn.is_finished(), "{}: not finished at the end", s.name);
            }
        }
        let [c, s] = &self.sides;
        if !broken && c.end == End::Running && s.end == End::Running {
            // A clean close handshake: each side's close arrived as sent,
            // and the initiator got its own code back.
            for (x, y) in [(c, s), (s, c)] {
                let sent = x.sent_close.clone().expect("both closed");
                assert_eq!(y.got_close.as_ref(), Some(&sent), "{}'s close", x.name);
                if x.initiated && !y.initiated {
                    let echo = sent.map(|f| CloseFrame::new(f.code));
                    assert_eq!(x.got_close, Some(echo), "{}: the echo", x.name);
                }
            }
        }
    }
}

//! `pair`: a client and a server `Connection` driven against each other in
//! memory and in virtual time by a sequence of operations from the input:
//! every kind of send from either side (text with multi-byte characters,
//! binary, fragmented messages with controls between the fragments, pings,
//! pongs, closes with a code and reason, frames the driver encodes and
//! writes itself), the bytes between them moved in arbitrary pieces
//! (`output` in any number of slices, `receive` or `read_buf` + `commit`),
//! jumps in time against fuzzed read, keepalive, close and write deadlines,
//! failed writes, optionally permessage-deflate negotiated with fuzzed
//! parameters on both sides, and optionally tight limits.
//!
//! Checked, against a model of what each end must receive (see
//! `stdws_fuzz::pair` for the input format and the full list): every
//! message sent arrives exactly once, in order, unchanged, unless dropped
//! after the receiver's own close or lost with a broken stream; pings are
//! answered by pongs with their payload; the close handshake echoes the
//! initiator's code and finishes both ends; no `ProtocolError` between two
//! `stdws` ends but the 1009 a tight limit must cause, at exactly the frame
//! that crosses it; every byte each end queues is accounted for; the state
//! accessors, `poll_timeout` and `memory_held` keep their promises.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stdws_fuzz::pair::check_pair;

fuzz_target!(|data: &[u8]| {
    check_pair(data);
});

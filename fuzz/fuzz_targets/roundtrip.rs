//! `roundtrip`: messages encoded as a well-behaved peer sends them come out of
//! a receiving `Connection` unchanged and in order.
//!
//! The sender is `stdws`'s own, as a `Connection` sends: `Outbound::encode`
//! for each frame (header and body written out directly), a close with a
//! code through `Outbound::close` and the send queue (`output`, `advance`);
//! a client's `Outbound` masking with arbitrary keys for a server receiver,
//! a server's, unmasked, for a client receiver. Messages are text or binary, fragmented at arbitrary points (also
//! inside a UTF-8 character, also into empty fragments), with pings and pongs
//! between fragments and between messages, optionally ending in a close frame
//! with a code and reason. The receiver uses the default limits or limits
//! exactly as tight as the largest message, frame and fragment count (the
//! boundary must be accepted), a fuzzed read buffer size, and reads in fuzzed
//! sizes. Format: `stdws_fuzz::roundtrip_input`.
//!
//! Checked: the events are exactly the messages, pings, pongs and close that
//! were sent, in order, with no error; plus everything `check_protocol`
//! checks (invariants, agreement with the reference decoder).
#![no_main]

use libfuzzer_sys::fuzz_target;
use stdws_fuzz::harness::check_roundtrip;
use stdws_fuzz::{key_stream, roundtrip_input};

fuzz_target!(|data: &[u8]| {
    let input = roundtrip_input(data);
    let mut keys = key_stream(input.key_seed);
    check_roundtrip(
        input.receiver,
        input.limits,
        &input.items,
        &mut keys,
        &input.chunks,
    );
});

//! `protocol_deflate`: the sans-IO receiver (a `Connection`) with permessage-deflate
//! negotiated (RSV1 marks compressed messages), fed an arbitrary byte stream
//! in arbitrary read sizes; the input format is `protocol`'s.
//!
//! Checked (see `stdws_fuzz::harness::drive_protocol`):
//! * every `protocol` invariant: no panic, progress, UTF-8 text, close codes
//!   1002/1007/1009, closed forever after a close or error;
//! * `message_memory()` within `max_message_size` however far a message would
//!   inflate (the limit applies to the inflated size, as it grows), and
//!   `memory_held()` within that plus the read buffer and the inflater's window;
//! * the outcome (events and error) is the same for the fuzzed read sizes as
//!   for one big read, and for the same sizes handed over in place
//!   (`Connection::input`): inflating is independent of how the bytes arrive.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stdws::proto::extensions::permessage_deflate::{
    AgreedParams, DeflateConfig, PerMessageDeflate,
};
use stdws_fuzz::harness::{drive_protocol, drive_with, receiver, Feed, INFLATE_MEMORY};
use stdws_fuzz::protocol_input;

fuzz_target!(|data: &[u8]| {
    let input = protocol_input(data);
    let deflating = || {
        let mut conn = receiver(input.role, input.limits);
        let agreed = AgreedParams::default();
        conn.enable_deflate(PerMessageDeflate::new(
            input.role,
            &agreed,
            &DeflateConfig::default(),
        ));
        conn
    };
    let chunked = drive_protocol(
        deflating(),
        input.limits,
        INFLATE_MEMORY,
        &input.stream,
        &input.chunks,
    );
    let whole = drive_protocol(
        deflating(),
        input.limits,
        INFLATE_MEMORY,
        &input.stream,
        &[],
    );
    assert_eq!(
        chunked, whole,
        "the outcome depends on how the bytes arrive"
    );
    let in_place = drive_with(
        deflating(),
        input.limits,
        INFLATE_MEMORY,
        &[],
        &input.stream,
        &input.chunks,
        Feed::InPlace,
    );
    assert_eq!(
        in_place.outcome, chunked,
        "the outcome depends on whether the bytes are lent"
    );
});

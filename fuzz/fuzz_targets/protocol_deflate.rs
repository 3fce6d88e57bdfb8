//! `protocol_deflate`: the sans-IO `Protocol` with permessage-deflate
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
//!   for one big read: inflating is independent of how the bytes arrive.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stdws::proto::extensions::permessage_deflate::{
    AgreedParams, DeflateConfig, PerMessageDeflate,
};
use stdws::proto::Protocol;
use stdws_fuzz::harness::{drive_protocol, INFLATE_MEMORY};
use stdws_fuzz::protocol_input;

fuzz_target!(|data: &[u8]| {
    let input = protocol_input(data);
    let deflating = || {
        let mut proto = Protocol::new(input.role, input.limits);
        let agreed = AgreedParams::default();
        let (_, inflate) =
            PerMessageDeflate::new(input.role, &agreed, &DeflateConfig::default()).split();
        proto.enable_deflate(inflate);
        proto
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
});

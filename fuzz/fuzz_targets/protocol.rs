//! `protocol`: the sans-IO receiver, a `Connection` (either role, small
//! arbitrary limits), fed an arbitrary byte stream in arbitrary read sizes.
//!
//! The input is either raw wire bytes or a structured list of frames with
//! fuzzed fields (any FIN/RSV/opcode byte, masked correctly, wrongly or not
//! at all, minimal, over-long or lying lengths) mixed with raw noise; the
//! format is documented at `stdws_fuzz::protocol_input`.
//!
//! Checked (see `stdws_fuzz::harness`):
//! * no panic, and a reader can always make progress;
//! * `message_memory()` never exceeds `max_message_size`, and `memory_held()`
//!   never exceeds that plus the read buffer's documented maximum (the
//!   configured size, at least a 14-byte header, or `READ_BUFFER_MAX` when
//!   grown under pipelined reads);
//! * every text message is valid UTF-8; every error's close code is 1002, 1007
//!   or 1009;
//! * after an `Event::Close` or an error, `next_event` gives `Ok(None)` and
//!   `read_buf()` is empty, forever;
//! * the events and the error are exactly those of the naive whole-stream
//!   reference decoder, for the fuzzed read sizes and for one big read: the
//!   incremental machinery (buffers, direct reads into messages, fail-fast
//!   UTF-8) changes nothing observable;
//! * the same chunks handed over in place (`Connection::input`, parsed in
//!   the caller's buffer, only a frame's tail kept), or in place and read in
//!   turn, give exactly the events, error and replies (pongs, close frames)
//!   of `read_buf`/`commit`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stdws_fuzz::harness::check_protocol;
use stdws_fuzz::protocol_input;

fuzz_target!(|data: &[u8]| {
    let input = protocol_input(data);
    check_protocol(input.role, input.limits, &input.stream, &input.chunks);
});

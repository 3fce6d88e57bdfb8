//! `utf8`: `Utf8Validator` fed in arbitrary pieces against
//! `std::str::from_utf8` on the whole input.
//!
//! Text messages arrive in frames and reads split anywhere, even inside a
//! character, and RFC 6455 wants invalid text to fail the connection as soon
//! as it is seen. So the validator must agree with std whatever the splits,
//! and fail exactly when the first impossible byte arrives.
//!
//! Input: a split count (u8 mod 16), that many u16 split points (mod
//! length + 1), then the text.
//!
//! Checked:
//! * Ok iff std says Ok; on error, the same `valid_up_to`;
//! * fail fast: an invalid sequence (std's `error_len()` is `Some`) is
//!   reported by the `feed` whose piece holds the first byte that makes the
//!   text impossible, never earlier and never later; a text that is only cut
//!   off inside a character passes every `feed` and fails at `finish`;
//! * `is_incomplete()` after the last piece says whether the text ends inside
//!   a character.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stdws::utf8::Utf8Validator;
use stdws_fuzz::Cursor;

fn definitely_invalid(bytes: &[u8]) -> bool {
    matches!(std::str::from_utf8(bytes), Err(e) if e.error_len().is_some())
}

fuzz_target!(|input: &[u8]| {
    let mut c = Cursor::new(input);
    let n = c.u8() % 16;
    let raw: Vec<u16> = (0..n).map(|_| c.u16()).collect();
    let data = c.rest();
    let mut bounds: Vec<usize> = raw
        .iter()
        .map(|&s| usize::from(s) % (data.len() + 1))
        .collect();
    bounds.sort_unstable();
    bounds.push(data.len());

    let expected = std::str::from_utf8(data);
    // The length of the shortest prefix that no continuation can make valid.
    let decided_at = match expected {
        Err(e) if e.error_len().is_some() => Some(
            (e.valid_up_to() + 1..=data.len())
                .find(|&l| definitely_invalid(&data[..l]))
                .expect("std found an invalid sequence"),
        ),
        _ => None,
    };

    let mut v = Utf8Validator::new();
    let mut start = 0;
    for &end in &bounds {
        match v.feed(&data[start..end]) {
            Ok(()) => {
                if let Some(l) = decided_at {
                    assert!(
                        l > end,
                        "piece {start}..{end} holds invalid byte {} but passed",
                        l - 1
                    );
                }
            }
            Err(err) => {
                let l = decided_at.expect("feed failed on text std accepts or only cuts off");
                assert!(
                    start < l && l <= end,
                    "error in piece {start}..{end}, decided at {l}"
                );
                assert_eq!(err.valid_up_to, expected.unwrap_err().valid_up_to());
                return;
            }
        }
        start = end;
    }
    assert!(decided_at.is_none());
    assert_eq!(v.is_incomplete(), expected.is_err());
    match (v.finish(), expected) {
        (Ok(()), Ok(_)) => {}
        (Err(got), Err(want)) => assert_eq!(got.valid_up_to, want.valid_up_to()),
        (got, want) => panic!("finish gave {got:?}, std {want:?}"),
    }
});

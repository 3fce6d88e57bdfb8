//! Interoperability with real zlib, both ways, for the raw DEFLATE codec.
//!
//! zlib → stdws: the `Inflater` inflates streams made by zlib: committed
//! vectors (`tests/data/deflate/gen.py`), split at every byte, and streams
//! made at test time by `tests/data/deflate/zlib_helper.py` (Python's
//! `zlib`) from text, JSON, binary, random and repetitive inputs of 0 bytes
//! to 16 MiB, at zlib levels 0 to 9, every strategy, window bits 9 to 15,
//! with context takeover over several messages.
//!
//! stdws → zlib: zlib's `decompressobj(-bits)` inflates what the `Deflater`
//! made, at each level, with and without context takeover, at window bits 8
//! to 15.
//!
//! Needs `python3` with its `zlib` module: without it these tests fail, they
//! do not pass silently.

mod deflate_corpus;

use deflate_corpus::{json_message, Rng, KINDS};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use stdws::deflate::{Deflater, InflateError, Inflater, Level, WindowBits};

const LIMIT: usize = 32 << 20;
const LEVELS: [Level; 3] = [Level::Fast, Level::Default, Level::Best];

fn bits(n: u8) -> WindowBits {
    WindowBits::new(n).unwrap()
}

/// A scratch directory for one test, removed when dropped.
struct Scratch {
    dir: PathBuf,
    manifest: String,
}

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("stdws-deflate-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Scratch {
            dir,
            manifest: String::new(),
        }
    }

    fn write(&self, name: &str, data: &[u8]) -> String {
        fs::write(self.dir.join(name), data).unwrap();
        name.to_string()
    }

    fn read(&self, name: &str) -> Vec<u8> {
        fs::read(self.dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    /// zlib compresses these files (one message each) into `FILE.z`.
    fn compress(&mut self, level: u32, wbits: u8, strategy: u32, takeover: bool, files: &[String]) {
        self.manifest += &format!(
            "compress {level} {wbits} {strategy} {} {}\n",
            u8::from(takeover),
            files.join(" ")
        );
    }

    /// zlib inflates these files (one message each) into `FILE.out`.
    fn decompress(&mut self, wbits: u8, takeover: bool, files: &[String]) {
        self.manifest += &format!(
            "decompress {wbits} {} {}\n",
            u8::from(takeover),
            files.join(" ")
        );
    }

    /// Runs the commands so far through Python's zlib.
    fn run_zlib(&mut self) {
        let manifest = self.dir.join("manifest");
        fs::write(&manifest, std::mem::take(&mut self.manifest)).unwrap();
        let helper =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/deflate/zlib_helper.py");
        let output = Command::new("python3")
            .arg(&helper)
            .arg(&manifest)
            .output()
            .unwrap_or_else(|e| {
                panic!("the zlib interop tests need python3 (with its zlib module) on PATH: {e}")
            });
        assert!(
            output.status.success() && output.stdout.starts_with(b"ok"),
            "zlib_helper.py failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Inflates one message fed in random pieces (seeded), up to `max_piece` bytes.
fn inflate_pieces(
    inflater: &mut Inflater,
    data: &[u8],
    rng: &mut Rng,
    max_piece: usize,
) -> Result<Vec<u8>, InflateError> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let n = (1 + rng.below(max_piece)).min(rest.len());
        inflater.inflate(&rest[..n], &mut out, LIMIT)?;
        rest = &rest[n..];
    }
    inflater.finish_message(&mut out, LIMIT)?;
    Ok(out)
}

fn hex(s: &str) -> Vec<u8> {
    if s == "-" {
        return Vec::new();
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// A committed vector: a name, window bits, and (input, compressed) messages.
struct Vector {
    name: String,
    wbits: u8,
    messages: Vec<(Vec<u8>, Vec<u8>)>,
}

/// The committed vectors.
fn committed_vectors() -> Vec<Vector> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/deflate/zlib_vectors.txt");
    let mut vectors: Vec<Vector> = Vec::new();
    for line in fs::read_to_string(path).unwrap().lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.as_slice() {
            ["vector", name, wbits] => vectors.push(Vector {
                name: name.to_string(),
                wbits: wbits.parse().unwrap(),
                messages: Vec::new(),
            }),
            ["message", input, compressed] => vectors
                .last_mut()
                .unwrap()
                .messages
                .push((hex(input), hex(compressed))),
            _ => assert!(line.starts_with('#'), "{line}"),
        }
    }
    assert!(vectors.len() >= 20);
    vectors
}

#[test]
fn inflates_committed_zlib_vectors_split_at_every_byte() {
    for Vector {
        name,
        wbits,
        messages,
    } in committed_vectors()
    {
        // Whole, then every message split in two at every byte.
        let mut inflater = Inflater::new(bits(wbits));
        let mut split = Inflater::new(bits(wbits));
        for (i, (input, compressed)) in messages.iter().enumerate() {
            let mut out = Vec::new();
            inflater.inflate(compressed, &mut out, LIMIT).unwrap();
            inflater.finish_message(&mut out, LIMIT).unwrap();
            assert_eq!(&out, input, "{name} #{i}");
            for at in 0..=compressed.len() {
                let mut fresh = Inflater::new(bits(wbits));
                // Replay the earlier messages for the history.
                for (_, earlier) in &messages[..i] {
                    let mut o = Vec::new();
                    fresh.inflate(earlier, &mut o, LIMIT).unwrap();
                    fresh.finish_message(&mut o, LIMIT).unwrap();
                }
                let (a, b) = compressed.split_at(at);
                let mut out = Vec::new();
                fresh.inflate(a, &mut out, LIMIT).unwrap();
                fresh.inflate(b, &mut out, LIMIT).unwrap();
                fresh.finish_message(&mut out, LIMIT).unwrap();
                assert_eq!(&out, input, "{name} #{i} split at {at}");
            }
            // And byte by byte.
            let mut out = Vec::new();
            for byte in compressed.chunks(1) {
                split.inflate(byte, &mut out, LIMIT).unwrap();
            }
            split.finish_message(&mut out, LIMIT).unwrap();
            assert_eq!(&out, input, "{name} #{i} byte by byte");
        }
    }
}

#[test]
fn our_deflater_reads_back_the_committed_inputs() {
    for Vector {
        name,
        wbits,
        messages,
    } in committed_vectors()
    {
        for level in LEVELS {
            let mut deflater = Deflater::new(level, bits(wbits));
            let mut inflater = Inflater::new(bits(wbits));
            for (input, zlib) in &messages {
                let mut ours = Vec::new();
                deflater.compress_message(input, &mut ours);
                let mut out = Vec::new();
                inflater.inflate(&ours, &mut out, LIMIT).unwrap();
                inflater.finish_message(&mut out, LIMIT).unwrap();
                assert_eq!(&out, input, "{name} {level:?}");
                // Never much larger than zlib's level-6-or-so output.
                assert!(
                    ours.len() <= zlib.len() * 11 / 10 + 16 || level == Level::Fast,
                    "{name} {level:?}: {} vs {}",
                    ours.len(),
                    zlib.len()
                );
            }
        }
    }
}

/// (name, data) for every kind at these sizes.
fn inputs(sizes: &[usize]) -> Vec<(String, Vec<u8>)> {
    let mut all = Vec::new();
    for &size in sizes {
        for (i, (kind, make)) in KINDS.iter().enumerate() {
            all.push((
                format!("{kind}-{size}"),
                make(size as u64 * 31 + i as u64, size),
            ));
        }
    }
    all
}

#[test]
fn inflates_what_zlib_makes_at_every_level_and_strategy() {
    let mut s = Scratch::new("from-zlib");
    // level, strategy (0 default, 1 filtered, 2 Huffman only, 3 RLE, 4 fixed)
    let configs = [
        (0, 0),
        (1, 0),
        (6, 0),
        (9, 0),
        (6, 1),
        (6, 2),
        (6, 3),
        (6, 4),
    ];
    let mut cases = Vec::new();
    for (name, data) in inputs(&[0, 1, 100, 1000, 64 << 10, 1 << 20]) {
        let file = s.write(&name, &data);
        let big = data.len() > 64 << 10;
        for &(level, strategy) in &configs {
            if big && strategy != 0 {
                continue;
            }
            let copy = s.write(&format!("{name}-l{level}-s{strategy}"), &data);
            s.compress(level, 15, strategy, false, std::slice::from_ref(&copy));
            cases.push((copy, file.clone()));
        }
    }
    s.run_zlib();
    let mut rng = Rng::new(1);
    for (compressed, original) in cases {
        let data = s.read(&format!("{compressed}.z"));
        let expected = s.read(&original);
        let mut inflater = Inflater::new(WindowBits::MAX);
        let max_piece = [1, 7, 100, 5000, 1 << 20][rng.below(5)];
        let out = inflate_pieces(&mut inflater, &data, &mut rng, max_piece).unwrap();
        assert!(out == expected, "{compressed}: output differs");
    }
}

/// Messages that refer back to each other across the window's edge.
fn sequence(seed: u64, window: usize) -> Vec<Vec<u8>> {
    let mut rng = Rng::new(seed);
    let mut messages: Vec<Vec<u8>> = (0..6)
        .map(|i| json_message(&mut rng, i).into_bytes())
        .collect();
    messages.push(KINDS[0].1(seed, window / 2 + 100));
    messages.push(KINDS[3].1(seed, window.saturating_sub(300).max(100)));
    messages.push(messages[6].clone()); // just beyond the window, partly
    messages.push(KINDS[4].1(seed, 3 * window));
    messages.push(messages[0].clone());
    messages.push(Vec::new());
    messages.push(KINDS[1].1(seed, 2 * window));
    messages
}

#[test]
fn inflates_zlib_streams_at_every_window_size_over_many_messages() {
    let mut s = Scratch::new("from-zlib-windows");
    let mut cases = Vec::new();
    for wbits in 9..=15u8 {
        for level in [1, 6, 9] {
            let messages = sequence(u64::from(wbits) * 10 + level, 1 << wbits);
            let files: Vec<String> = messages
                .iter()
                .enumerate()
                .map(|(i, m)| s.write(&format!("w{wbits}-l{level}-{i}"), m))
                .collect();
            s.compress(level as u32, wbits, 0, true, &files);
            cases.push((wbits, files, messages));
        }
    }
    s.run_zlib();
    let mut rng = Rng::new(2);
    for (wbits, files, messages) in cases {
        // The inflater refuses any distance over 2^wbits: zlib stays within.
        let mut inflater = Inflater::new(bits(wbits));
        for (file, message) in files.iter().zip(&messages) {
            let data = s.read(&format!("{file}.z"));
            let out = inflate_pieces(&mut inflater, &data, &mut rng, 64).unwrap();
            assert!(&out == message, "{file}");
        }
    }
}

#[test]
fn zlib_inflates_what_we_make_at_every_level() {
    let mut s = Scratch::new("to-zlib");
    let mut cases = Vec::new();
    for (name, data) in inputs(&[0, 1, 100, 1000, 64 << 10, 1 << 20]) {
        for level in LEVELS {
            let mut out = Vec::new();
            Deflater::new(level, WindowBits::MAX).compress_message(&data, &mut out);
            let file = s.write(&format!("{name}-{level:?}"), &out);
            s.decompress(15, false, std::slice::from_ref(&file));
            cases.push((file, data.clone()));
        }
    }
    s.run_zlib();
    for (file, data) in cases {
        assert!(s.read(&format!("{file}.out")) == data, "{file}");
    }
}

#[test]
fn zlib_inflates_our_message_sequences_at_every_window_size() {
    let mut s = Scratch::new("to-zlib-windows");
    let mut cases = Vec::new();
    for wbits in 8..=15u8 {
        for level in LEVELS {
            for takeover in [true, false] {
                let messages = sequence(u64::from(wbits) + level as u64, 1 << wbits);
                let mut deflater = Deflater::new(level, bits(wbits));
                let files: Vec<String> = messages
                    .iter()
                    .enumerate()
                    .map(|(i, m)| {
                        if !takeover {
                            deflater.reset();
                        }
                        let mut out = Vec::new();
                        deflater.compress_message(m, &mut out);
                        s.write(&format!("w{wbits}-{level:?}-{takeover}-{i}"), &out)
                    })
                    .collect();
                // Without takeover, a fresh zlib inflater per message proves
                // each message stands alone.
                s.decompress(wbits, takeover, &files);
                cases.push((files, messages));
            }
        }
    }
    s.run_zlib();
    for (files, messages) in cases {
        for (file, message) in files.iter().zip(&messages) {
            assert!(&s.read(&format!("{file}.out")) == message, "{file}");
        }
    }
}

#[test]
fn sixteen_mib_messages_round_trip_both_ways() {
    let mut s = Scratch::new("16mib");
    let size = 16 << 20;
    let mut cases = Vec::new();
    for (i, (kind, make)) in KINDS.iter().enumerate() {
        let data = make(99 + i as u64, size);
        let original = s.write(kind, &data);
        s.compress(6, 15, 0, false, std::slice::from_ref(&original));
        let level = LEVELS[i % 3];
        let mut ours = Vec::new();
        Deflater::new(level, WindowBits::MAX).compress_message(&data, &mut ours);
        let file = s.write(&format!("{kind}-ours"), &ours);
        s.decompress(15, false, std::slice::from_ref(&file));
        cases.push((original, file, data));
    }
    s.run_zlib();
    let mut rng = Rng::new(3);
    for (original, ours, data) in cases {
        let zlib = s.read(&format!("{original}.z"));
        let out = inflate_pieces(
            &mut Inflater::new(WindowBits::MAX),
            &zlib,
            &mut rng,
            1 << 16,
        )
        .unwrap();
        assert!(out == data, "{original}: stdws inflating zlib");
        assert!(
            s.read(&format!("{ours}.out")) == data,
            "{ours}: zlib inflating stdws"
        );
    }
}

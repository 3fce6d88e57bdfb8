//! permessage-deflate codec: compression ratio and throughput at each level,
//! on a text corpus and a JSON corpus, as one large message and as a stream
//! of small status messages (with and without context takeover), and
//! zlib's figures for the same data when `python3` is there.
//!
//! `cargo bench --bench deflate [-- --quick]`. Std only; each figure is the
//! median of 7 samples of at least 100 ms (3 of 20 ms with `--quick`).
//!
//! Lines: `bench=deflate/CORPUS/LEVEL size=BYTES ratio=R deflate_mb_per_s=D
//! inflate_mb_per_s=I` (ratio = compressed / original; MB/s of original bytes).

#[path = "../tests/deflate_corpus/mod.rs"]
mod deflate_corpus;
#[path = "common/harness.rs"]
mod harness;

use harness::Harness;
use std::hint::black_box;
use stdws::deflate::{Deflater, Inflater, Level, WindowBits};

const LEVELS: [Level; 3] = [Level::Fast, Level::Default, Level::Best];

/// Units per second (the median sample).
fn rate(t: &Harness, units: f64, f: impl FnMut()) -> f64 {
    t.rate(units, f).0
}

/// One large message.
fn bench_message(t: &Harness, name: &str, data: &[u8]) {
    for level in LEVELS {
        let mut compressed = Vec::new();
        let deflate = rate(t, data.len() as f64, || {
            let mut d = Deflater::new(level, WindowBits::MAX);
            compressed.clear();
            d.compress_message(black_box(data), &mut compressed);
        });
        let mut out = Vec::with_capacity(data.len());
        let mut inflater = Inflater::new(WindowBits::MAX);
        let inflate = rate(t, data.len() as f64, || {
            inflater.reset();
            out.clear();
            inflater
                .inflate(black_box(&compressed), &mut out, usize::MAX)
                .unwrap();
            inflater.finish_message(&mut out, usize::MAX).unwrap();
        });
        assert_eq!(out, data);
        println!(
            "bench=deflate/{name}/{level:?} size={} ratio={:.3} deflate_mb_per_s={:.1} inflate_mb_per_s={:.1}",
            data.len(),
            compressed.len() as f64 / data.len() as f64,
            deflate / 1e6,
            inflate / 1e6
        );
    }
}

/// A stream of small messages, compressed one by one as a WebSocket sends them.
fn bench_messages(t: &Harness, messages: &[Vec<u8>], takeover: bool) {
    let total: usize = messages.iter().map(Vec::len).sum();
    let name = if takeover { "takeover" } else { "no-takeover" };
    for level in LEVELS {
        let mut compressed: Vec<Vec<u8>> = vec![Vec::new(); messages.len()];
        let deflate = rate(t, total as f64, || {
            let mut d = Deflater::new(level, WindowBits::MAX);
            for (m, out) in messages.iter().zip(compressed.iter_mut()) {
                if !takeover {
                    d.reset();
                }
                out.clear();
                d.compress_message(black_box(m), out);
            }
        });
        let mut out = Vec::with_capacity(4096);
        let inflate = rate(t, total as f64, || {
            let mut inflater = Inflater::new(WindowBits::MAX);
            inflater.set_context_takeover(takeover);
            for c in &compressed {
                out.clear();
                inflater.inflate(black_box(c), &mut out, 1 << 20).unwrap();
                inflater.finish_message(&mut out, 1 << 20).unwrap();
            }
        });
        let size: usize = compressed.iter().map(Vec::len).sum();
        let per_message = total as f64 / messages.len() as f64;
        println!(
            "bench=deflate/json-messages-{name}/{level:?} messages={} mean_size={per_message:.0} ratio={:.3} deflate_mb_per_s={:.1} inflate_mb_per_s={:.1} deflate_us_per_message={:.2} inflate_us_per_message={:.2}",
            messages.len(),
            size as f64 / total as f64,
            deflate / 1e6,
            inflate / 1e6,
            per_message / deflate * 1e6,
            per_message / inflate * 1e6,
        );
    }
}

/// The same figures from zlib (through Python, so its MB/s include a little
/// interpreter overhead); skipped if `python3` is missing.
fn bench_zlib(corpora: &[(&str, Vec<u8>)], messages: &[Vec<u8>], quick: bool) {
    let dir = std::env::temp_dir().join(format!("stdws-deflate-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, data) in corpora {
        std::fs::write(dir.join(name), data).unwrap();
    }
    let joined: Vec<u8> = messages
        .iter()
        .flat_map(|m| m.iter().copied().chain([b'\n']))
        .collect();
    std::fs::write(dir.join("messages"), joined).unwrap();
    let script = r#"
import sys, time, zlib, os
d, quick = sys.argv[1], sys.argv[2] == "1"
t_min = 0.04 if quick else 0.2
def rate(f, units):
    n, t = 0, time.perf_counter()
    while time.perf_counter() - t < t_min:
        f(); n += 1
    return units * n / (time.perf_counter() - t)
for name in sys.argv[3:]:
    data = open(os.path.join(d, name), "rb").read()
    for level in (1, 6, 9):
        z = None
        def deflate():
            global z
            c = zlib.compressobj(level, zlib.DEFLATED, -15)
            z = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
        dr = rate(deflate, len(data))
        ir = rate(lambda: zlib.decompressobj(-15).decompress(z), len(data))
        print("bench=zlib/%s/level%d size=%d ratio=%.3f deflate_mb_per_s=%.1f inflate_mb_per_s=%.1f" % (name, level, len(data), (len(z) - 4) / len(data), dr / 1e6, ir / 1e6))
msgs = open(os.path.join(d, "messages"), "rb").read().split(b"\n")[:-1]
total = sum(map(len, msgs))
for level in (1, 6, 9):
    c = zlib.compressobj(level, zlib.DEFLATED, -15)
    size = sum(len(c.compress(m) + c.flush(zlib.Z_SYNC_FLUSH)) - 4 for m in msgs)
    print("bench=zlib/json-messages-takeover/level%d messages=%d ratio=%.3f" % (level, len(msgs), size / total))
"#;
    let names: Vec<&str> = corpora.iter().map(|(n, _)| *n).collect();
    let result = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&dir)
        .arg(if quick { "1" } else { "0" })
        .args(&names)
        .output();
    match result {
        Ok(out) if out.status.success() => print!("{}", String::from_utf8_lossy(&out.stdout)),
        Ok(out) => eprintln!(
            "zlib comparison failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => eprintln!("zlib comparison skipped (no python3: {e})"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let t = Harness::from_args();
    let size = 1 << 20;
    let corpora = [
        ("text", deflate_corpus::text(1, size)),
        ("json", deflate_corpus::json(2, size)),
    ];
    for (name, data) in &corpora {
        bench_message(&t, name, data);
    }
    let mut rng = deflate_corpus::Rng::new(3);
    let messages: Vec<Vec<u8>> = (0..2000)
        .map(|i| deflate_corpus::json_message(&mut rng, i).into_bytes())
        .collect();
    bench_messages(&t, &messages, true);
    bench_messages(&t, &messages, false);
    bench_zlib(&corpora, &messages, quick);
}

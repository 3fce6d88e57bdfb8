//! A long decode loop to profile: `cargo bench --bench profile_decode -- SIZE SECONDS`
//! under `perf record -e cpu-clock` or `valgrind --tool=callgrind`.

#[path = "common/frames.rs"]
mod frames;

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let size: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(64);
    let seconds: f64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(3.0);
    let count = (1 << 20) / size.max(1) + 1;
    let data = frames::client_messages(size, count);
    let start = std::time::Instant::now();
    let mut total = 0usize;
    while start.elapsed().as_secs_f64() < seconds {
        total += frames::stdws_decode_ref(&data);
    }
    let rate = total as f64 / start.elapsed().as_secs_f64();
    println!(
        "size={size} msgs_per_s={rate:.0} gb_per_s={:.3}",
        rate * size as f64 / 1e9
    );
}

//! A tiny timing harness, std only: each case runs in samples of at least
//! `min_sample` (so timer resolution does not matter), and reports the
//! median sample with the min..max spread. Shared by `micro.rs` and the
//! comparison crate in `bench-compare/`.
#![allow(dead_code)]

use std::hint::black_box;
use std::time::{Duration, Instant};

/// How long and how often to sample.
pub struct Harness {
    pub samples: usize,
    pub min_sample: Duration,
}

impl Harness {
    /// `--quick` (in the arguments) takes 3 samples of 20 ms; otherwise 7 of 100 ms.
    pub fn from_args() -> Self {
        if std::env::args().any(|a| a == "--quick") {
            Harness {
                samples: 3,
                min_sample: Duration::from_millis(20),
            }
        } else {
            Harness {
                samples: 7,
                min_sample: Duration::from_millis(100),
            }
        }
    }

    /// Times `f`, which processes `units` units (bytes or messages) per call;
    /// returns (median, min, max) units per second.
    pub fn rate(&self, units: f64, mut f: impl FnMut()) -> (f64, f64, f64) {
        // Calibrate: how many calls fill a sample.
        let mut calls = 1u64;
        loop {
            let start = Instant::now();
            for _ in 0..calls {
                f();
            }
            if start.elapsed() >= self.min_sample / 4 {
                break;
            }
            calls *= 2;
        }
        let calls = calls * 4;
        let mut rates: Vec<f64> = (0..self.samples)
            .map(|_| {
                let start = Instant::now();
                for _ in 0..calls {
                    f();
                }
                units * calls as f64 / start.elapsed().as_secs_f64()
            })
            .collect();
        rates.sort_by(f64::total_cmp);
        (rates[rates.len() / 2], rates[0], rates[rates.len() - 1])
    }

    /// Prints one line: `bench=NAME size=N gb_per_s=MEDIAN (MIN..MAX)`.
    pub fn bytes(&self, name: &str, size: usize, f: impl FnMut()) -> f64 {
        let (m, lo, hi) = self.rate(size as f64, f);
        println!(
            "bench={name} size={size} gb_per_s={:.3} ({:.3}..{:.3})",
            m / 1e9,
            lo / 1e9,
            hi / 1e9
        );
        m
    }

    /// Prints one line: `bench=NAME size=N msgs_per_s=MEDIAN (MIN..MAX)`.
    /// How fast `a` is beside `b` (both doing the same units of work per
    /// call): samples of each alternate, so that a machine whose speed
    /// drifts between samples slows both alike; (median, min, max) of the
    /// ratios of their rates, over 3 × the usual samples.
    pub fn ratio(&self, mut a: impl FnMut(), mut b: impl FnMut()) -> (f64, f64, f64) {
        let calls = |f: &mut dyn FnMut()| {
            let mut calls = 1u64;
            loop {
                let start = Instant::now();
                for _ in 0..calls {
                    f();
                }
                if start.elapsed() >= self.min_sample / 4 {
                    return calls * 4;
                }
                calls *= 2;
            }
        };
        let (calls_a, calls_b) = (calls(&mut a), calls(&mut b));
        let time = |f: &mut dyn FnMut(), calls: u64| {
            let start = Instant::now();
            for _ in 0..calls {
                f();
            }
            calls as f64 / start.elapsed().as_secs_f64()
        };
        let mut ratios: Vec<f64> = (0..3 * self.samples)
            .map(|_| time(&mut a, calls_a) / time(&mut b, calls_b))
            .collect();
        ratios.sort_by(f64::total_cmp);
        (
            ratios[ratios.len() / 2],
            ratios[0],
            ratios[ratios.len() - 1],
        )
    }

    pub fn messages(&self, name: &str, size: usize, messages: usize, f: impl FnMut()) -> f64 {
        let (m, lo, hi) = self.rate(messages as f64, f);
        println!("bench={name} size={size} msgs_per_s={m:.0} ({lo:.0}..{hi:.0})");
        m
    }
}

/// Keeps a value alive so the optimiser cannot drop the work producing it.
pub fn keep<T>(v: T) -> T {
    black_box(v)
}

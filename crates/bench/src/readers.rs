//! `info` readers: tasks that look up stored blobs' metadata in a loop and log every call's
//! latency with its start time, so a run yields percentiles per phase and a timeline.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cid::Cid;
use rand::{rngs::StdRng, Rng, SeedableRng};
use serde::Serialize;
use tokio::task::JoinHandle;

use super::engines::Engine;
use super::figures::{histogram, record, Latency};

/// One `info` call.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// When it was asked, µs since the run's origin.
    pub at_us: u64,
    /// How long until the answer, µs.
    pub latency_us: u64,
}

/// Latency of the `info` calls started within one slice of a run.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct TimelinePoint {
    /// Start of the slice, ms since the run's origin.
    pub t_ms: f64,
    /// Calls started in the slice.
    pub count: u64,
    /// Median, µs.
    pub p50_us: u64,
    /// 99th percentile, µs.
    pub p99_us: u64,
    /// Slowest, µs.
    pub max_us: u64,
}

/// Running readers; [`Readers::stop`] collects their logs.
pub struct Readers {
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<(Vec<Sample>, u64)>>,
}

/// Every call of every reader of a run.
#[derive(Debug, Default)]
pub struct ReadLog {
    /// Calls, ordered by start time.
    pub samples: Vec<Sample>,
    /// Calls that failed or did not find a blob that is stored.
    pub errors: u64,
}

impl Readers {
    /// Starts `n` readers looking up random `targets`, each pausing `interval` between calls.
    pub fn start<E: Engine>(
        engine: &Arc<E>,
        n: usize,
        targets: Arc<Vec<Cid>>,
        interval: Duration,
        origin: Instant,
    ) -> Readers {
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..n)
            .map(|i| {
                let (engine, targets, stop) = (engine.clone(), targets.clone(), stop.clone());
                tokio::spawn(read_loop(engine, targets, stop, i as u64, interval, origin))
            })
            .collect();
        Readers { stop, tasks }
    }

    /// Stops the readers and merges their logs.
    ///
    /// # Errors
    /// A reader task panicked.
    pub async fn stop(self) -> anyhow::Result<ReadLog> {
        self.stop.store(true, Ordering::Relaxed);
        let mut log = ReadLog::default();
        for task in self.tasks {
            let (samples, errors) = task.await?;
            log.samples.extend(samples);
            log.errors += errors;
        }
        log.samples.sort_by_key(|s| s.at_us);
        Ok(log)
    }
}

async fn read_loop<E: Engine>(
    engine: Arc<E>,
    targets: Arc<Vec<Cid>>,
    stop: Arc<AtomicBool>,
    seed: u64,
    interval: Duration,
    origin: Instant,
) -> (Vec<Sample>, u64) {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
    let (mut samples, mut errors) = (Vec::with_capacity(8192), 0);
    while !stop.load(Ordering::Relaxed) {
        let cid = targets[rng.gen_range(0..targets.len())];
        let asked = Instant::now();
        let found = engine.info(cid).await;
        samples.push(Sample {
            at_us: micros(asked.duration_since(origin)),
            latency_us: micros(asked.elapsed()),
        });
        if !matches!(found, Ok(true)) {
            errors += 1;
        }
        if interval.is_zero() {
            tokio::task::yield_now().await;
        } else {
            tokio::time::sleep(interval).await;
        }
    }
    (samples, errors)
}

impl ReadLog {
    /// Percentiles of the calls started in `[from_us, to_us)`.
    pub fn latency_between(&self, from_us: u64, to_us: u64) -> Latency {
        Latency::of_samples(
            self.samples
                .iter()
                .filter(|s| s.at_us >= from_us && s.at_us < to_us)
                .map(|s| s.latency_us),
        )
    }

    /// Percentiles per slice of `bucket`, from the origin to the last call.
    pub fn timeline(&self, bucket: Duration) -> Vec<TimelinePoint> {
        let bucket_us = micros(bucket).max(1);
        let mut points = Vec::new();
        let mut rest = &self.samples[..];
        while let Some(first) = rest.first() {
            let start = first.at_us / bucket_us * bucket_us;
            let n = rest
                .iter()
                .take_while(|s| s.at_us < start + bucket_us)
                .count();
            let mut h = histogram();
            for s in &rest[..n] {
                record(&mut h, s.latency_us);
            }
            let l = Latency::of(&h);
            points.push(TimelinePoint {
                t_ms: start as f64 / 1000.0,
                count: l.count,
                p50_us: l.p50,
                p99_us: l.p99,
                max_us: l.max,
            });
            rest = &rest[n..];
        }
        points
    }
}

fn micros(d: Duration) -> u64 {
    d.as_micros().min(u64::MAX as u128) as u64
}

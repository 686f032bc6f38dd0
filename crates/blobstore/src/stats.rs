//! Cheap observability: atomics for counters, HDR histograms for latencies, recorded by the
//! lane once per request and by the pools once per read. `Store::stats` takes a snapshot.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use parking_lot::Mutex;
use serde::Serialize;

use crate::config::Priority;
use crate::error::Error;

/// Distinct sources tracked by name; later ones are counted under `(other)` so a daemon
/// naming a source per peer cannot grow stats without bound.
const MAX_SOURCES: usize = 1024;
const OTHER_SOURCE: &str = "(other)";

/// Percentiles of one latency or size distribution.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq)]
pub struct Percentiles {
    /// Samples recorded.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Largest sample.
    pub max: u64,
}

impl Percentiles {
    fn of(h: &Histogram<u64>) -> Self {
        Percentiles {
            count: h.len(),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            max: h.max(),
        }
    }
}

/// Counters and latencies of one priority class or one source.
#[derive(Clone, Debug, Default, Serialize)]
pub struct GroupStats {
    /// Class or source name.
    pub name: String,
    /// Requests committed and acknowledged.
    pub acks: u64,
    /// Blobs written by acknowledged requests.
    pub blobs: u64,
    /// Blob bytes written by acknowledged requests.
    pub bytes: u64,
    /// Requests that failed (their own error or a failed commit).
    pub errors: u64,
    /// Requests dropped by their caller before the lane reached them.
    pub cancelled: u64,
    /// App writes replaced by a newer write with the same coalesce key.
    pub coalesced: u64,
    /// Time from admission to the lane starting the request, µs.
    pub queue_wait_us: Percentiles,
    /// Batches committed between a request's admission (its entry into the lane's
    /// scheduler, once its class's queue had room) and the batch that committed it, that
    /// batch not counted: what the scheduler's promises are about (e.g. an interactive
    /// request waits for the batch in progress and at most one owed to a lower class).
    /// Counted by the lane, so it does not depend on how fast callers or the machine are.
    pub queue_wait_batches: Percentiles,
    /// Time the request itself held the write lock, µs.
    pub hold_us: Percentiles,
    /// Requests queued now (classes only).
    pub queued_requests: u64,
    /// Bytes queued now (classes only).
    pub queued_bytes: u64,
}

/// Wait for a connection in one read pool.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PoolStats {
    /// `info` or `data`.
    pub name: String,
    /// Connections in the pool.
    pub size: usize,
    /// Reads served.
    pub reads: u64,
    /// Time waiting for a connection, µs.
    pub wait_us: Percentiles,
    /// Time from asking to having the answer, µs.
    pub latency_us: Percentiles,
}

/// WAL size and checkpoint outcomes.
#[derive(Clone, Debug, Default, Serialize)]
pub struct WalStats {
    /// Size of the `-wal` file at the last check, bytes.
    pub bytes: u64,
    /// Largest size seen, bytes.
    pub peak_bytes: u64,
    /// Size that triggers a TRUNCATE checkpoint.
    pub cap_bytes: u64,
    /// PASSIVE checkpoints run alongside the lane.
    pub passive: u64,
    /// PASSIVE checkpoints finished with the lane paused, so the WAL rewinds.
    pub rewind: u64,
    /// TRUNCATE checkpoints run.
    pub truncate: u64,
    /// TRUNCATE checkpoints that could not finish within their wait (a reader stayed).
    pub truncate_incomplete: u64,
    /// Batches the lane held because the WAL was over the cap, until a TRUNCATE ran.
    pub lane_waits: u64,
    /// Checkpoints that returned an error.
    pub failures: u64,
}

/// A snapshot of the store's counters. `Display` prints a human summary; serde gives JSON.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Stats {
    /// Time since `Store::open`, ms.
    pub uptime_ms: u64,
    /// Blobs written (including already-stored ones, see `dedup_hits`).
    pub blobs_written: u64,
    /// Blob bytes written.
    pub bytes_written: u64,
    /// Puts of CIDs that were already stored (written once, acked each time).
    pub dedup_hits: u64,
    /// Transactions committed by the lane.
    pub batches: u64,
    /// Requests acknowledged after commit.
    pub requests_acked: u64,
    /// Requests that failed.
    pub requests_failed: u64,
    /// Requests cancelled by their caller before they ran.
    pub requests_cancelled: u64,
    /// App writes coalesced away.
    pub coalesced: u64,
    /// SQLITE_BUSY / SQLITE_LOCKED errors seen anywhere. By construction this stays 0.
    pub sqlite_busy: u64,
    /// All SQLite errors seen.
    pub storage_errors: u64,
    /// Panics caught on the writer lane (in write closures, staged ops or the lane itself);
    /// each failed its request or batch and the lane carried on.
    pub lane_panics: u64,
    /// Batches rolled back because a write ended or restarted the lane's transaction.
    pub transactions_ended: u64,
    /// App reads ended by the reader transaction limit ([`Error::ReadExpired`](crate::Error::ReadExpired)).
    pub reads_expired: u64,
    /// Writes that failed because the disk (or `max_page_count`) was full.
    pub disk_full: u64,
    /// Share of wall time the lane held the write lock (0..1).
    pub lane_utilisation: f64,
    /// Blobs per batch.
    pub batch_blobs: Percentiles,
    /// Write lock hold time per batch, µs.
    pub batch_hold_us: Percentiles,
    /// Time `COMMIT` took per batch (WAL write and fsync), µs.
    pub commit_us: Percentiles,
    /// Per priority class (empty when detailed stats are off).
    pub classes: Vec<GroupStats>,
    /// Per source, most bytes first (empty when detailed stats are off).
    pub sources: Vec<GroupStats>,
    /// Blobs (CIDs) deleted by `delete`, garbage collection or repair since open.
    pub blobs_freed: u64,
    /// Bytes of blob data deleted since open.
    pub bytes_freed: u64,
    /// Read pools.
    pub pools: Vec<PoolStats>,
    /// WAL and checkpoints.
    pub wal: WalStats,
}

/// Everything the lane and pools record into.
pub(crate) struct StatsCollector {
    started: Instant,
    detailed: bool,
    blobs: AtomicU64,
    bytes: AtomicU64,
    dedup: AtomicU64,
    batches: AtomicU64,
    acked: AtomicU64,
    failed: AtomicU64,
    cancelled: AtomicU64,
    coalesced: AtomicU64,
    busy: AtomicU64,
    storage_errors: AtomicU64,
    pub(crate) lane_panics: AtomicU64,
    pub(crate) transactions_ended: AtomicU64,
    pub(crate) reads_expired: AtomicU64,
    disk_full: AtomicU64,
    hold_ns: AtomicU64,
    freed: [AtomicU64; 2],
    lane: Mutex<LaneHistograms>,
    groups: Mutex<Groups>,
    pub(crate) pools: [PoolRecorder; 2],
    pub(crate) wal: WalRecorder,
}

struct LaneHistograms {
    batch_blobs: Histogram<u64>,
    batch_hold_us: Histogram<u64>,
    commit_us: Histogram<u64>,
}

struct Groups {
    classes: [GroupRecorder; 3],
    sources: HashMap<Arc<str>, GroupRecorder>,
}

struct GroupRecorder {
    totals: GroupStats,
    queue_wait_us: Histogram<u64>,
    queue_wait_batches: Histogram<u64>,
    hold_us: Histogram<u64>,
}

/// Recorder of one read pool.
pub(crate) struct PoolRecorder {
    name: &'static str,
    size: AtomicU64,
    hists: Mutex<(Histogram<u64>, Histogram<u64>)>,
}

/// WAL figures written by the checkpointer.
#[derive(Default)]
pub(crate) struct WalRecorder {
    pub bytes: AtomicU64,
    pub peak: AtomicU64,
    pub cap: AtomicU64,
    pub passive: AtomicU64,
    pub rewind: AtomicU64,
    pub truncate: AtomicU64,
    pub truncate_incomplete: AtomicU64,
    pub lane_waits: AtomicU64,
    pub failures: AtomicU64,
}

/// What the lane measured for one acknowledged request.
pub(crate) struct RequestOutcome {
    pub queue_wait: Duration,
    pub hold: Duration,
    pub dedup: usize,
    /// Batches committed between its admission and its own batch.
    pub batches_waited: u64,
}

/// Histograms of values from 1 to one hour in µs; larger values saturate at the top.
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds and precision")
}

fn micros(d: Duration) -> u64 {
    d.as_micros().min(u64::MAX as u128) as u64
}

impl GroupRecorder {
    fn new(name: &str) -> Self {
        GroupRecorder {
            totals: GroupStats {
                name: name.to_string(),
                ..Default::default()
            },
            queue_wait_us: histogram(),
            queue_wait_batches: histogram(),
            hold_us: histogram(),
        }
    }

    fn snapshot(&self) -> GroupStats {
        GroupStats {
            queue_wait_us: Percentiles::of(&self.queue_wait_us),
            queue_wait_batches: Percentiles::of(&self.queue_wait_batches),
            hold_us: Percentiles::of(&self.hold_us),
            ..self.totals.clone()
        }
    }
}

impl PoolRecorder {
    fn new(name: &'static str) -> Self {
        PoolRecorder {
            name,
            size: AtomicU64::new(0),
            hists: Mutex::new((histogram(), histogram())),
        }
    }

    pub fn set_size(&self, size: usize) {
        self.size.store(size as u64, Relaxed);
    }

    /// Records one read: time waiting for a connection and total latency.
    pub fn record(&self, wait: Duration, latency: Duration) {
        let mut h = self.hists.lock();
        h.0.saturating_record(micros(wait));
        h.1.saturating_record(micros(latency));
    }

    fn snapshot(&self) -> PoolStats {
        let h = self.hists.lock();
        PoolStats {
            name: self.name.to_string(),
            size: self.size.load(Relaxed) as usize,
            reads: h.1.len(),
            wait_us: Percentiles::of(&h.0),
            latency_us: Percentiles::of(&h.1),
        }
    }
}

impl StatsCollector {
    pub fn new(detailed: bool) -> Self {
        StatsCollector {
            started: Instant::now(),
            detailed,
            blobs: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            dedup: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            cancelled: AtomicU64::new(0),
            coalesced: AtomicU64::new(0),
            busy: AtomicU64::new(0),
            storage_errors: AtomicU64::new(0),
            lane_panics: AtomicU64::new(0),
            transactions_ended: AtomicU64::new(0),
            reads_expired: AtomicU64::new(0),
            disk_full: AtomicU64::new(0),
            hold_ns: AtomicU64::new(0),
            freed: [AtomicU64::new(0), AtomicU64::new(0)],
            lane: Mutex::new(LaneHistograms {
                batch_blobs: histogram(),
                batch_hold_us: histogram(),
                commit_us: histogram(),
            }),
            groups: Mutex::new(Groups {
                classes: Priority::ALL.map(|p| GroupRecorder::new(p.name())),
                sources: HashMap::new(),
            }),
            pools: [PoolRecorder::new("info"), PoolRecorder::new("data")],
            wal: WalRecorder::default(),
        }
    }

    /// Counts deleted blobs and bytes (see `Store::write_deleting`).
    pub fn record_freed(&self, blobs: u64, bytes: u64) {
        self.freed[0].fetch_add(blobs, Relaxed);
        self.freed[1].fetch_add(bytes, Relaxed);
    }

    /// Counts SQLite errors, and SQLITE_BUSY among them.
    pub fn record_error(&self, err: &Error) {
        match err {
            Error::Storage { .. } => {
                self.storage_errors.fetch_add(1, Relaxed);
                if err.is_busy() {
                    self.busy.fetch_add(1, Relaxed);
                }
            }
            Error::DiskFull { .. } => {
                self.storage_errors.fetch_add(1, Relaxed);
                self.disk_full.fetch_add(1, Relaxed);
            }
            _ => {}
        }
    }

    /// Records a committed batch.
    pub fn record_batch(
        &self,
        requests: usize,
        blobs: usize,
        bytes: usize,
        hold: Duration,
        commit: Duration,
    ) {
        self.batches.fetch_add(1, Relaxed);
        self.acked.fetch_add(requests as u64, Relaxed);
        self.blobs.fetch_add(blobs as u64, Relaxed);
        self.bytes.fetch_add(bytes as u64, Relaxed);
        self.hold_ns.fetch_add(hold.as_nanos() as u64, Relaxed);
        let mut lane = self.lane.lock();
        lane.batch_blobs.saturating_record(blobs as u64);
        lane.batch_hold_us.saturating_record(micros(hold));
        lane.commit_us.saturating_record(micros(commit));
    }

    /// Records one acknowledged request of a committed batch: its class and source, and the
    /// blobs and bytes it carried.
    pub fn record_request(
        &self,
        (class, source): (Priority, &Arc<str>),
        (blobs, bytes): (usize, usize),
        outcome: &RequestOutcome,
    ) {
        self.dedup.fetch_add(outcome.dedup as u64, Relaxed);
        self.with_groups(class, source, |g| {
            g.totals.acks += 1;
            g.totals.blobs += blobs as u64;
            g.totals.bytes += bytes as u64;
            g.queue_wait_us
                .saturating_record(micros(outcome.queue_wait));
            g.queue_wait_batches
                .saturating_record(outcome.batches_waited);
            g.hold_us.saturating_record(micros(outcome.hold));
        });
    }

    pub fn record_failed(&self, class: Priority, source: &Arc<str>) {
        self.failed.fetch_add(1, Relaxed);
        self.with_groups(class, source, |g| g.totals.errors += 1);
    }

    pub fn record_cancelled(&self, class: Priority, source: &Arc<str>) {
        self.cancelled.fetch_add(1, Relaxed);
        self.with_groups(class, source, |g| g.totals.cancelled += 1);
    }

    pub fn record_coalesced(&self, class: Priority, source: &Arc<str>) {
        self.coalesced.fetch_add(1, Relaxed);
        self.with_groups(class, source, |g| g.totals.coalesced += 1);
    }

    /// Applies `f` to the class's and the source's recorders (detailed stats only).
    fn with_groups(&self, class: Priority, source: &Arc<str>, f: impl Fn(&mut GroupRecorder)) {
        if !self.detailed {
            return;
        }
        let mut groups = self.groups.lock();
        f(&mut groups.classes[class.index()]);
        let key = if groups.sources.contains_key(source) || groups.sources.len() < MAX_SOURCES {
            source.clone()
        } else {
            Arc::from(OTHER_SOURCE)
        };
        f(groups
            .sources
            .entry(key)
            .or_insert_with(|| GroupRecorder::new(source)));
    }

    /// Takes a snapshot; `queued` is the lane's current queue per class.
    pub fn snapshot(&self, queued: [(usize, usize); 3]) -> Stats {
        let uptime = self.started.elapsed();
        let lane = self.lane.lock();
        let (mut classes, mut sources) = (Vec::new(), Vec::new());
        if self.detailed {
            let groups = self.groups.lock();
            classes = groups.classes.iter().map(GroupRecorder::snapshot).collect();
            for (c, (requests, bytes)) in classes.iter_mut().zip(queued) {
                c.queued_requests = requests as u64;
                c.queued_bytes = bytes as u64;
            }
            sources = groups
                .sources
                .values()
                .map(GroupRecorder::snapshot)
                .collect();
            sources.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.name.cmp(&b.name)));
        }
        let w = &self.wal;
        Stats {
            uptime_ms: uptime.as_millis() as u64,
            blobs_written: self.blobs.load(Relaxed),
            bytes_written: self.bytes.load(Relaxed),
            dedup_hits: self.dedup.load(Relaxed),
            batches: self.batches.load(Relaxed),
            requests_acked: self.acked.load(Relaxed),
            requests_failed: self.failed.load(Relaxed),
            requests_cancelled: self.cancelled.load(Relaxed),
            coalesced: self.coalesced.load(Relaxed),
            sqlite_busy: self.busy.load(Relaxed),
            storage_errors: self.storage_errors.load(Relaxed),
            lane_panics: self.lane_panics.load(Relaxed),
            transactions_ended: self.transactions_ended.load(Relaxed),
            reads_expired: self.reads_expired.load(Relaxed),
            disk_full: self.disk_full.load(Relaxed),
            lane_utilisation: self.hold_ns.load(Relaxed) as f64 / uptime.as_nanos().max(1) as f64,
            batch_blobs: Percentiles::of(&lane.batch_blobs),
            batch_hold_us: Percentiles::of(&lane.batch_hold_us),
            commit_us: Percentiles::of(&lane.commit_us),
            classes,
            sources,
            blobs_freed: self.freed[0].load(Relaxed),
            bytes_freed: self.freed[1].load(Relaxed),
            pools: self.pools.iter().map(PoolRecorder::snapshot).collect(),
            wal: WalStats {
                bytes: w.bytes.load(Relaxed),
                peak_bytes: w.peak.load(Relaxed),
                cap_bytes: w.cap.load(Relaxed),
                passive: w.passive.load(Relaxed),
                rewind: w.rewind.load(Relaxed),
                truncate: w.truncate.load(Relaxed),
                truncate_incomplete: w.truncate_incomplete.load(Relaxed),
                lane_waits: w.lane_waits.load(Relaxed),
                failures: w.failures.load(Relaxed),
            },
        }
    }
}

impl fmt::Display for Percentiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "p50 {} p90 {} p99 {} max {} (n={})",
            self.p50, self.p90, self.p99, self.max, self.count
        )
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "uptime          {:.1} s", self.uptime_ms as f64 / 1000.0)?;
        writeln!(
            f,
            "blobs written   {} ({} bytes, {} already stored)",
            self.blobs_written, self.bytes_written, self.dedup_hits
        )?;
        writeln!(
            f,
            "requests        {} acked, {} failed, {} cancelled, {} coalesced",
            self.requests_acked, self.requests_failed, self.requests_cancelled, self.coalesced
        )?;
        writeln!(
            f,
            "batches         {} (lane busy {:.1}%)",
            self.batches,
            self.lane_utilisation * 100.0
        )?;
        writeln!(f, "batch blobs     {}", self.batch_blobs)?;
        writeln!(f, "batch hold µs   {}", self.batch_hold_us)?;
        writeln!(f, "commit µs       {}", self.commit_us)?;
        writeln!(f, "SQLITE_BUSY     {}", self.sqlite_busy)?;
        writeln!(
            f,
            "storage errors  {} ({} disk full); lane panics {}, transactions ended {}",
            self.storage_errors, self.disk_full, self.lane_panics, self.transactions_ended
        )?;
        writeln!(f, "reads expired   {}", self.reads_expired)?;
        writeln!(
            f,
            "freed           {} blobs, {} bytes",
            self.blobs_freed, self.bytes_freed
        )?;
        writeln!(f, "wal             {} bytes (peak {}, cap {}); checkpoints {} passive, {} rewind, {} truncate, {} incomplete, {} failed; lane waited {}",
            self.wal.bytes, self.wal.peak_bytes, self.wal.cap_bytes, self.wal.passive,
            self.wal.rewind, self.wal.truncate, self.wal.truncate_incomplete, self.wal.failures,
            self.wal.lane_waits)?;
        for p in &self.pools {
            writeln!(
                f,
                "pool {:<10} {} conns, {} reads, wait µs {}, latency µs {}",
                p.name, p.size, p.reads, p.wait_us, p.latency_us
            )?;
        }
        for c in &self.classes {
            writeln!(
                f,
                "class {:<11} {} acks, {} blobs, {} errors, queued {}; queue wait µs {}; batches waited {}",
                c.name, c.acks, c.blobs, c.errors, c.queued_requests, c.queue_wait_us,
                c.queue_wait_batches
            )?;
        }
        for s in self.sources.iter().take(10) {
            writeln!(
                f,
                "source {:<20} {} acks, {} blobs, {} bytes; queue wait µs {}",
                s.name, s.acks, s.blobs, s.bytes, s.queue_wait_us
            )?;
        }
        Ok(())
    }
}

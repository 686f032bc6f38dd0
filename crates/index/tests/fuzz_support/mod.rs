//! Shared by the proptest fuzz targets (`fuzz_car`, `fuzz_extract`): the case count, a
//! runner that persists failures next to the test, a poller for futures that never wait,
//! and a meter of peak heap use built on `stats_alloc`.

#![allow(dead_code)] // Each test binary uses a different part of this module.

use std::alloc::System;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use proptest::test_runner::{Config, FileFailurePersistence, TestRunner};
use stats_alloc::{Region, Stats, StatsAlloc};

/// Cases per property: `PROPTEST_CASES` if set, else `default`.
pub fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A runner that replays the seeds in `<test>.proptest-regressions` (next to `source_file`)
/// before novel cases, and saves new failures there.
pub fn runner(source_file: &'static str, cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        source_file: Some(source_file),
        ..Config::default()
    })
}

/// Runs a future that never waits (its reader is in memory) to completion in one poll.
pub fn ready<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("an in-memory read returned Pending"),
    }
}

/// Heap bytes live according to `s`. (`stats_alloc` counts a realloc's growth in
/// `bytes_allocated` and its shrinking in `bytes_deallocated`.)
fn live(s: &Stats) -> isize {
    s.bytes_allocated as isize - s.bytes_deallocated as isize
}

/// An upper bound on the peak heap use of a sequence of calls: for each call, the bytes
/// live before it plus every byte it allocated or grew (frees within the call are not
/// credited, so a transient allocation counts in full).
///
/// The allocation counter is process-wide: run metered code on one thread at a time (the
/// fuzz targets run all their properties inside one `#[test]`).
pub struct Meter {
    region: Region<'static, System>,
    peak: isize,
}

impl Meter {
    pub fn new(alloc: &'static StatsAlloc<System>) -> Self {
        Meter {
            region: Region::new(alloc),
            peak: 0,
        }
    }

    /// Runs `f`, raising the peak by what it allocated.
    pub fn step<T>(&mut self, f: impl FnOnce() -> T) -> T {
        let before = self.region.change();
        let out = f();
        let after = self.region.change();
        let grown = (after.bytes_allocated - before.bytes_allocated) as isize;
        self.peak = self.peak.max(live(&before) + grown);
        out
    }

    /// The bound on peak heap use so far, in bytes.
    pub fn peak(&self) -> usize {
        self.peak.max(0) as usize
    }
}

/// The bytes of an unsigned varint.
pub fn varint(n: u64) -> Vec<u8> {
    let mut buf = unsigned_varint::encode::u64_buffer();
    unsigned_varint::encode::u64(n, &mut buf).to_vec()
}

//! The writer lane: fair, bounded admission (priorities, per-source fairness, deadlines,
//! app writes, coalescing, batch closing), its faults, the closures it runs, and the WAL
//! bound it keeps beside long readers and concurrent callers.

#[path = "../common/mod.rs"]
mod common;
mod support;

mod app_writes;
mod batches;
mod bounds;
mod concurrency;
mod connection_guard;
mod fairness;
mod lane_faults;
mod long_reader;
mod wal_bound;

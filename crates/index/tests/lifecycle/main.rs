//! The blob lifecycle: opening and schema versions, pins, temp pins, collection (sweeps,
//! races with puts and pins, automatic collection), concurrency, and a model check of the
//! whole against a reference.

#[path = "../common/mod.rs"]
mod common;

mod auto_gc;
mod gc_races;
mod lifecycle;
mod lifecycle_concurrent;
mod lifecycle_model;
mod lifecycle_sweep;
mod open;

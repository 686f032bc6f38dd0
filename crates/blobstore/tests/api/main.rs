//! The store's API: puts, gets, info and has over every interesting size and codec, bad
//! input refused with a specific error, and the read pools serving beside the lane.

#[path = "../common/mod.rs"]
mod common;

mod read_pools;
mod store;

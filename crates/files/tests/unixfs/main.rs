//! UnixFS files: add from paths and readers with the CIDs the reference importers compute
//! (every fixture and profile), and reading back: cat, ranges, ls, paths, missing blocks.

#[path = "../common/mod.rs"]
mod common;

mod add_path;
mod fixtures;
mod read;

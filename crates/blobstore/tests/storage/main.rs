//! What the file on disk promises: acknowledged blobs survive a killed writer, a full disk
//! fails writes cleanly and recovers, foreign and older files are refused or migrated,
//! verification finds damage, an unlocked read-only reader notices a writer.

#[path = "../common/mod.rs"]
mod common;

mod crash;
mod disk_full;
mod durability;
mod foreign;
mod read_only_immutable;
mod schema_v2;
mod verify;

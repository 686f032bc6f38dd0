//! Lifecycle commands: pins, delete, garbage collection, backup and `verify --repair`.
//!
//! `pins` and `backup` read: they open the store read-only (a backup copies one snapshot
//! from a connection of its own, beside a running owner). The others write through the lane.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use seedbank::blobstore::{Config, Store};
use seedbank::index::{DeleteOptions, GcOptions, Index, IndexConfig, PinTarget};

use super::out::outln;
use super::{parse_cid, parse_cids};

/// The lifecycle subcommands (flattened into the top-level command list).
#[derive(Subcommand, Debug)]
pub enum LifecycleCommand {
    /// Pin ROOT and everything reachable from it under NAME (replacing a pin of that name).
    Pin {
        /// The pin's name.
        name: String,
        /// Root CID.
        root: String,
    },
    /// Remove the pin NAME; exits 1 if there was none.
    Unpin {
        /// The pin's name.
        name: String,
    },
    /// List pins as `NAME<TAB>root CID|scope NAME`.
    Pins,
    /// Delete blobs; a pinned one is refused (nothing is deleted) unless --force.
    Delete {
        /// CIDs to delete.
        #[arg(required = true)]
        cids: Vec<String>,
        /// Delete pinned blobs too.
        #[arg(long)]
        force: bool,
    },
    /// Delete every blob no pin reaches, then give the space back; prints what was freed.
    Gc {
        /// Print what would be freed without deleting anything.
        #[arg(long)]
        dry_run: bool,
    },
    /// Write a consistent copy of the database to DEST (which must not exist) and check it.
    Backup {
        /// Destination file.
        dest: PathBuf,
    },
}

impl LifecycleCommand {
    /// True for commands that write to the database.
    pub fn writes(&self) -> bool {
        !matches!(
            self,
            LifecycleCommand::Pins | LifecycleCommand::Backup { .. }
        )
    }
}

async fn open(db: &Path, writes: bool) -> anyhow::Result<Index> {
    let store = if writes {
        Store::open(db, Config::default())
    } else {
        Store::open_read_only(db, Config::default())
    }
    .context("cannot open the database")?;
    Ok(Index::open(store, IndexConfig::default()).await?)
}

/// Runs one lifecycle command and closes the store.
pub async fn run(db: &Path, command: LifecycleCommand) -> anyhow::Result<ExitCode> {
    let index = open(db, command.writes()).await?;
    let result = dispatch(&index, command).await;
    let closed = index.store().close().await;
    let code = result?;
    closed?;
    Ok(code)
}

async fn dispatch(index: &Index, command: LifecycleCommand) -> anyhow::Result<ExitCode> {
    match command {
        LifecycleCommand::Pin { name, root } => {
            index.pin(&name, &parse_cid(&root)?).await?;
            Ok(ExitCode::SUCCESS)
        }
        LifecycleCommand::Unpin { name } => Ok(super::blobs::verdict(index.unpin(&name).await?)),
        LifecycleCommand::Pins => {
            for pin in index.pins().await? {
                match pin.target {
                    PinTarget::Root(cid) => outln!("{}\troot {cid}", pin.name)?,
                    PinTarget::Scope(scope) => outln!("{}\tscope {scope}", pin.name)?,
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        LifecycleCommand::Delete { cids, force } => {
            let cids = parse_cids(&cids)?;
            let opts = if force {
                DeleteOptions::forced()
            } else {
                DeleteOptions::default()
            };
            let freed = index.delete(&cids, opts).await?;
            outln!("deleted {} blobs, {} bytes", freed.blobs, freed.bytes)?;
            Ok(ExitCode::SUCCESS)
        }
        LifecycleCommand::Gc { dry_run } => {
            let opts = GcOptions {
                dry_run,
                ..Default::default()
            };
            let r = index.gc(opts).await?;
            let verb = if dry_run { "would free" } else { "freed" };
            outln!("{verb} {} blobs, {} bytes", r.blobs_freed, r.bytes_freed)?;
            outln!(
                "marked {}, kept late {} (puts {}, pins {}, temp pins {}), batches {}, free pages {}",
                r.marked,
                r.kept_late,
                r.kept_late_by.puts,
                r.kept_late_by.pins,
                r.kept_late_by.temp_pins,
                r.batches,
                r.free_pages
            )?;
            Ok(ExitCode::SUCCESS)
        }
        LifecycleCommand::Backup { dest } => {
            let r = index.store().backup(&dest).await?;
            outln!(
                "backup {}: {} bytes, {} CIDs, integrity ok",
                r.path.display(),
                r.bytes,
                r.cids
            )?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `verify --repair`: removes corrupt blobs (they read as missing and can be put again),
/// then verifies; exits 1 if problems remain.
pub async fn repair(db: &Path) -> anyhow::Result<ExitCode> {
    let index = open(db, true).await?;
    let result = async {
        let r = index.repair().await?;
        for cid in &r.removed {
            outln!("removed corrupt {cid}")?;
        }
        let report = index.store().verify().await?;
        for p in &report.problems {
            outln!("problem: {p}")?;
        }
        outln!(
            "{} blobs checked, {} removed, {} problems",
            r.blobs_checked,
            r.removed.len(),
            report.problems.len()
        )?;
        anyhow::Ok(super::blobs::verdict(report.problems.is_empty()))
    }
    .await;
    let closed = index.store().close().await;
    let code = result?;
    closed?;
    Ok(code)
}

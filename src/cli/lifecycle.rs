//! Lifecycle commands: pins, delete, garbage collection, backup and `verify --repair`.
//!
//! `pins` and `backup` read: they open the store read-only (a backup copies one snapshot
//! from a connection of its own, beside a running owner). The others write through the lane.
//! Beside a running node (`seedbank serve`), `pin`, `unpin`, `delete`, `gc` and `backup`
//! send their work to it through its control socket (see `write`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use seedbank::blobstore::{Config, Store};
use seedbank::control::{Input, Op, Reply};
use seedbank::index::{Index, IndexConfig, PinTarget};

use super::out::outln;
use super::write::{with_target, Target};

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

async fn open(db: &Path, writes: bool) -> anyhow::Result<Index> {
    let store = if writes {
        Store::open(db, Config::default())
    } else {
        Store::open_read_only(db, Config::default())
    }
    .context("cannot open the database")?;
    Ok(Index::open(store, IndexConfig::default()).await?)
}

/// Runs one lifecycle command: `pins` on the database opened read-only, the others here or
/// on the node running on `db` (see `write`).
pub async fn run(db: &Path, command: LifecycleCommand) -> anyhow::Result<ExitCode> {
    let (op, dest) = match command {
        LifecycleCommand::Pins => return pins(db).await,
        LifecycleCommand::Pin { name, root } => (Op::Pin { name, root }, None),
        LifecycleCommand::Unpin { name } => (Op::Unpin { name }, None),
        LifecycleCommand::Delete { cids, force } => (Op::Delete { cids, force }, None),
        LifecycleCommand::Gc { dry_run } => (Op::Gc { dry_run }, None),
        LifecycleCommand::Backup { dest } => {
            let op = Op::Backup {
                dest: Input::from_arg(&dest),
            };
            (op, Some(dest))
        }
    };
    let target = match dest {
        Some(_) => Target::open_for_backup(db).await?,
        None => Target::open(db).await?,
    };
    with_target(target, |t| async move {
        let reply = t.run(op, None).await?;
        print(reply, dest.as_deref())
    })
    .await
}

async fn pins(db: &Path) -> anyhow::Result<ExitCode> {
    let index = open(db, false).await?;
    let result = async {
        for pin in index.pins().await? {
            match pin.target {
                PinTarget::Root(cid) => outln!("{}\troot {cid}", pin.name)?,
                PinTarget::Scope(scope) => outln!("{}\tscope {scope}", pin.name)?,
            }
        }
        anyhow::Ok(ExitCode::SUCCESS)
    }
    .await;
    let closed = index.store().close().await;
    let code = result?;
    closed?;
    Ok(code)
}

/// Prints a lifecycle reply as the command always has; `dest` is `backup`'s argument.
fn print(reply: Reply, dest: Option<&Path>) -> anyhow::Result<ExitCode> {
    match reply {
        Reply::Pinned => {}
        Reply::Unpinned { existed } => return Ok(super::out::verdict(existed)),
        Reply::Deleted { blobs, bytes } => outln!("deleted {blobs} blobs, {bytes} bytes")?,
        Reply::Collected(r) => {
            let verb = if r.dry_run { "would free" } else { "freed" };
            outln!("{verb} {} blobs, {} bytes", r.blobs_freed, r.bytes_freed)?;
            outln!(
                "marked {}, kept late {} (puts {}, pins {}, temp pins {}), batches {}, free pages {}",
                r.marked,
                r.kept_late,
                r.kept_late_puts,
                r.kept_late_pins,
                r.kept_late_temp_pins,
                r.batches,
                r.free_pages
            )?;
        }
        Reply::BackedUp { bytes, cids } => {
            let dest = dest.unwrap_or(Path::new("-"));
            outln!(
                "backup {}: {bytes} bytes, {cids} CIDs, integrity ok",
                dest.display()
            )?;
        }
        other => return Err(super::write::unexpected(other)),
    }
    Ok(ExitCode::SUCCESS)
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
        anyhow::Ok(super::out::verdict(report.problems.is_empty()))
    }
    .await;
    let closed = index.store().close().await;
    let code = result?;
    closed?;
    Ok(code)
}

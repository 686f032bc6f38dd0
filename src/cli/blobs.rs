//! Commands that read or write the blobs of one database.
//!
//! Write commands (`put`, `import`) open the store read-write: they create the database if
//! needed and close it with a checkpoint; beside a running node they send their work to it
//! (see `write`). Every other command opens it read-only: it never creates a file, never
//! writes or checkpoints, and works beside a running owner and on a full disk.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;

use anyhow::Context;
use seedbank::blobstore::{Config, Store};
use seedbank::control::{Input, Op, Reply};
use seedbank::index::{Index, IndexConfig};

use super::out::{self, outln};
use super::write::{unexpected, with_target, Target};
use super::{dag, parse_cid, parse_cids};

/// The commands that read the database (`verify --repair` is dispatched as a write).
#[derive(Subcommand, Debug)]
pub enum ReadCommand {
    /// Print a blob's bytes (verified) to stdout or a file.
    Get {
        /// The blob's CID.
        cid: String,
        /// Write to this file instead of stdout.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Show a blob's metadata and links.
    Info {
        /// The blob's CID.
        cid: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print `CID<TAB>yes|no` for each CID; exits 1 if any is missing.
    Has {
        /// CIDs to look up.
        #[arg(required = true)]
        cids: Vec<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show store contents and counters.
    Stats {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Re-hash every blob and run SQLite's integrity check; exits 1 on any problem.
    Verify {
        /// First remove blobs whose bytes do not hash to their CID (they read as missing).
        #[arg(long)]
        repair: bool,
    },
    /// Export the DAG under ROOT as a CARv1 file.
    Export {
        /// Root CID.
        root: String,
        /// Output file.
        file: PathBuf,
    },
    /// List the CIDs a blob links to.
    Links {
        /// The blob's CID.
        cid: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the stored blobs linking to a CID.
    Backlinks {
        /// The target CID.
        cid: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List blobs referenced under ROOT but not stored; exits 1 if any.
    Missing {
        /// Root CID.
        root: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Opens the store (read-only unless the command writes), runs one command (opening the
/// index only for commands that use links), and closes the store.
pub async fn run(db: &Path, command: ReadCommand) -> anyhow::Result<ExitCode> {
    let store = Store::open_read_only(db, Config::default()).context("cannot open the database")?;
    let result = dispatch(&store, command).await;
    let closed = store.close().await;
    let code = result?;
    closed?;
    Ok(code)
}

async fn dispatch(store: &Store, command: ReadCommand) -> anyhow::Result<ExitCode> {
    let index = || Index::open(store.clone(), IndexConfig::default());
    match command {
        ReadCommand::Export { root, file } => dag::export(&index().await?, &root, &file).await,
        ReadCommand::Links { cid, json } => dag::links(&index().await?, &cid, json).await,
        ReadCommand::Backlinks { cid, json } => dag::backlinks(&index().await?, &cid, json).await,
        ReadCommand::Missing { root, json } => dag::missing(&index().await?, &root, json).await,
        ReadCommand::Info { cid, json } => dag::info(&index().await?, &cid, json).await,
        ReadCommand::Get { cid, output } => {
            let cid = parse_cid(&cid)?;
            let data = store
                .get(&cid)
                .await?
                .with_context(|| format!("{cid} not found"))?;
            match output {
                Some(path) => std::fs::write(&path, &data)
                    .with_context(|| format!("cannot write {}", path.display()))?,
                None => out::raw(&data)?,
            }
            Ok(ExitCode::SUCCESS)
        }
        ReadCommand::Has { cids, json } => {
            let parsed = parse_cids(&cids)?;
            let present = store.has_many(&parsed).await?;
            if json {
                let rows: Vec<_> = parsed
                    .iter()
                    .zip(&present)
                    .map(|(cid, p)| serde_json::json!({ "cid": cid.to_string(), "present": p }))
                    .collect();
                out::json(&rows)?;
            } else {
                for (cid, p) in parsed.iter().zip(&present) {
                    outln!("{cid}\t{}", if *p { "yes" } else { "no" })?;
                }
            }
            Ok(out::verdict(present.iter().all(|p| *p)))
        }
        ReadCommand::Stats { json } => {
            let contents = store.contents().await?;
            let stats = store.stats();
            if json {
                out::json(&serde_json::json!({ "contents": contents, "stats": stats }))?;
            } else {
                outln!(
                    "blobs stored    {} CIDs, {} distinct, {} bytes",
                    contents.cids,
                    contents.distinct_blobs,
                    contents.bytes
                )?;
                outln!("schema version  {}", contents.schema_version)?;
                outln!("{}", stats.to_string().trim_end())?;
            }
            Ok(ExitCode::SUCCESS)
        }
        ReadCommand::Verify { .. } => {
            let report = store.verify().await?;
            for p in &report.problems {
                outln!("problem: {p}")?;
            }
            outln!(
                "{} blobs checked, {} problems",
                report.blobs_checked,
                report.problems.len()
            )?;
            Ok(out::verdict(report.problems.is_empty()))
        }
    }
}

/// Reads every file first (so a missing file fails before anything is written), then
/// stores them in one `put_many`: here, or on the node running on `db`.
pub async fn put(db: &Path, files: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let target = Target::open(db).await?;
    let inputs = files.iter().map(|f| Input::from_arg(f)).collect();
    with_target(target, |t| async move {
        match t.run(Op::Put { inputs }, None).await? {
            Reply::Put { cids } => {
                for (cid, f) in cids.iter().zip(files) {
                    outln!("{cid}\t{}", f.display())?;
                }
                Ok(ExitCode::SUCCESS)
            }
            other => Err(unexpected(other)),
        }
    })
    .await
}

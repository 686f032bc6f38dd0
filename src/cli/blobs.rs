//! Commands that read or write the blobs of one database.
//!
//! Write commands (`put`, `import`) open the store read-write: they create the database if
//! needed and close it with a checkpoint; beside a running node they send their work to it
//! (see `write`). Every other command opens it read-only: it never creates a file, never
//! writes or checkpoints, and works beside a running owner and on a full disk.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use seedbank::blobstore::{Config, Store};
use seedbank::control::{Input, Op, Reply};
use seedbank::index::{Index, IndexConfig};

use super::out::{self, outln};
use super::write::{with_target, Target};
use super::{dag, parse_cid, parse_cids, Command};

/// Opens the store (read-only unless the command writes), runs one command (opening the
/// index only for commands that use links), and closes the store.
pub async fn run(db: &Path, command: Command) -> anyhow::Result<ExitCode> {
    let store = if command.writes() {
        Store::open(db, Config::default())
    } else {
        Store::open_read_only(db, Config::default())
    }
    .context("cannot open the database")?;
    let result = dispatch(&store, command).await;
    let closed = store.close().await;
    let code = result?;
    closed?;
    Ok(code)
}

async fn dispatch(store: &Store, command: Command) -> anyhow::Result<ExitCode> {
    let index = || Index::open(store.clone(), IndexConfig::default());
    match command {
        Command::Export { root, file } => dag::export(&index().await?, &root, &file).await,
        Command::Links { cid, json } => dag::links(&index().await?, &cid, json).await,
        Command::Backlinks { cid, json } => dag::backlinks(&index().await?, &cid, json).await,
        Command::Missing { root, json } => dag::missing(&index().await?, &root, json).await,
        Command::Info { cid, json } => dag::info(&index().await?, &cid, json).await,
        Command::Get { cid, output } => {
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
        Command::Has { cids, json } => {
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
            Ok(verdict(present.iter().all(|p| *p)))
        }
        Command::Stats { json } => {
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
        Command::Verify { .. } => {
            let report = store.verify().await?;
            for p in &report.problems {
                outln!("problem: {p}")?;
            }
            outln!(
                "{} blobs checked, {} problems",
                report.blobs_checked,
                report.problems.len()
            )?;
            Ok(verdict(report.problems.is_empty()))
        }
        Command::Put { .. }
        | Command::Import { .. }
        | Command::Sim(_)
        | Command::Bench(_)
        | Command::Lifecycle(_)
        | Command::Files(_)
        | Command::Serve(_)
        | Command::Sync(_)
        | Command::Gateway(_) => unreachable!("dispatched in cli::run"),
    }
}

/// Exit 0 when a check passed, 1 when it did not.
pub fn verdict(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
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

/// A node answered an operation with another operation's reply.
pub fn unexpected(reply: Reply) -> anyhow::Error {
    anyhow::anyhow!("the node answered with an unexpected reply: {reply:?}")
}

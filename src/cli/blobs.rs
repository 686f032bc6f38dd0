//! Commands that read or write the blobs of one database.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use seedbank::blobstore::{codec, Blob, Config, Priority, Store};
use seedbank::index::{Index, IndexConfig, IndexPutOptions};

use super::{dag, parse_cid, Command};

/// Opens the store and its index, runs one command, and closes the store (so every write is
/// durable and the WAL checkpointed before the process exits).
pub async fn run(db: &Path, command: Command) -> anyhow::Result<ExitCode> {
    let store = Store::open(db, Config::default())
        .with_context(|| format!("cannot open {}", db.display()))?;
    let result = match Index::open(store.clone(), IndexConfig::default()).await {
        Ok(index) => dispatch(&index, command).await,
        Err(e) => Err(e.into()),
    };
    store.close().await?;
    result
}

async fn dispatch(index: &Index, command: Command) -> anyhow::Result<ExitCode> {
    let store = index.store();
    match command {
        Command::Import { file } => dag::import(index, &file).await,
        Command::Export { root, file } => dag::export(index, &root, &file).await,
        Command::Links { cid } => dag::links(index, &cid).await,
        Command::Backlinks { cid } => dag::backlinks(index, &cid).await,
        Command::Missing { root } => dag::missing(index, &root).await,
        Command::Info { cid } => dag::info(index, &cid).await,
        Command::Put { files } => put(index, &files).await,
        Command::Get { cid, output } => {
            let cid = parse_cid(&cid)?;
            let data = store
                .get(&cid)
                .await?
                .with_context(|| format!("{cid} not found"))?;
            match output {
                Some(path) => std::fs::write(&path, &data)
                    .with_context(|| format!("cannot write {}", path.display()))?,
                None => std::io::stdout().write_all(&data)?,
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Has { cids } => {
            let parsed = cids
                .iter()
                .map(|c| parse_cid(c))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let present = store.has_many(&parsed).await?;
            for (cid, p) in parsed.iter().zip(&present) {
                println!("{cid}\t{}", if *p { "yes" } else { "no" });
            }
            Ok(if present.iter().all(|p| *p) {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Stats { json } => {
            let contents = store.contents().await?;
            let stats = store.stats();
            if json {
                let v = serde_json::json!({ "contents": contents, "stats": stats });
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!(
                    "blobs stored    {} CIDs, {} distinct, {} bytes",
                    contents.cids, contents.distinct_blobs, contents.bytes
                );
                println!("schema version  {}", contents.schema_version);
                print!("{stats}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify => {
            let report = store.verify().await?;
            for p in &report.problems {
                println!("problem: {p}");
            }
            println!(
                "{} blobs checked, {} problems",
                report.blobs_checked,
                report.problems.len()
            );
            Ok(if report.problems.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Bench(_) | Command::Sim(_) => unreachable!("dispatched in cli::run"),
    }
}

/// Reads every file first (so a missing file fails before anything is written), then
/// stores them in one `put_many`.
async fn put(index: &Index, files: &[std::path::PathBuf]) -> anyhow::Result<ExitCode> {
    let mut blobs = Vec::with_capacity(files.len());
    for f in files {
        let data = std::fs::read(f).with_context(|| format!("cannot read {}", f.display()))?;
        blobs.push(Blob::new(codec::RAW, data));
    }
    let opts = IndexPutOptions::new(Priority::Interactive, "cli");
    let cids = index.put_many(blobs, opts).await?;
    for (cid, f) in cids.iter().zip(files) {
        println!("{cid}\t{}", f.display());
    }
    Ok(ExitCode::SUCCESS)
}

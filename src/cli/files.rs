//! UnixFS commands: `add` files and directories, `cat` a file (or a byte range of it), `ls` a
//! directory.
//!
//! `add` writes: it opens the store read-write, as `put` and `import` do (beside a running
//! node it sends its work there, see `write`). `cat` and `ls` open it read-only, so they
//! work beside a running owner.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use seedbank::blobstore::{Config, Store};
use seedbank::control::{AddedRow, Input, Op, Reply};
use seedbank::files::{Files, Profile, ProgressFn};
use seedbank::index::{Index, IndexConfig};

use super::out::{self, outln};
use super::write::{with_target, Target};

/// The UnixFS subcommands (flattened into the top-level command list).
#[derive(clap::Subcommand, Debug)]
pub enum FilesCommand {
    /// Add files or directories as UnixFS; prints `CID<TAB>PATH` per file and directory,
    /// the root last.
    Add(AddArgs),
    /// Print a UnixFS file's bytes, or a range of them.
    Cat(CatArgs),
    /// List a UnixFS directory: `CID<TAB>SIZE<TAB>TYPE<TAB>NAME` per entry.
    Ls(LsArgs),
}

/// Runs one UnixFS command.
pub async fn run(db: &Path, command: FilesCommand) -> anyhow::Result<ExitCode> {
    match command {
        FilesCommand::Add(a) => add(db, a).await,
        FilesCommand::Cat(c) => cat(db, c).await,
        FilesCommand::Ls(l) => ls(db, l).await,
    }
}

/// `add PATH...`.
#[derive(clap::Args, Debug)]
pub struct AddArgs {
    /// Files or directories to add; `-` reads standard input.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// CID profile: unixfs-v1-2025, unixfs-v0-2015 or kubo-cidv1 (`ipfs add
    /// --cid-version=1`).
    #[arg(long, default_value = "unixfs-v1-2025", value_parser = parse_profile)]
    profile: Profile,
    /// Pin the root under NAME (with one PATH).
    #[arg(long, value_name = "NAME")]
    pin: Option<String>,
    /// Include entries whose names start with `.` when adding a directory.
    #[arg(long)]
    hidden: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// `cat CID[/PATH]`.
#[derive(clap::Args, Debug)]
pub struct CatArgs {
    /// The file: a CID, or CID/PATH through directories.
    path: String,
    /// First byte to print.
    #[arg(long, default_value_t = 0)]
    offset: u64,
    /// Bytes to print (default: to the end).
    #[arg(long)]
    length: Option<u64>,
    /// Write to this file instead of stdout.
    #[arg(short, long)]
    output: Option<PathBuf>,
}

/// `ls CID[/PATH]`.
#[derive(clap::Args, Debug)]
pub struct LsArgs {
    /// The directory: a CID, or CID/PATH through directories.
    path: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

fn parse_profile(s: &str) -> Result<Profile, String> {
    s.parse().map_err(|e: seedbank::files::Error| e.to_string())
}

/// Opens the index (read-write for `add`), runs `f` and closes the store.
async fn with_files<F, Fut>(db: &Path, writes: bool, f: F) -> anyhow::Result<ExitCode>
where
    F: FnOnce(Files) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<ExitCode>>,
{
    let store = if writes {
        Store::open(db, Config::default())
    } else {
        Store::open_read_only(db, Config::default())
    }
    .context("cannot open the database")?;
    let result = match Index::open(store.clone(), IndexConfig::default()).await {
        Ok(index) => f(Files::new(index)).await,
        Err(e) => Err(e.into()),
    };
    let closed = store.close().await;
    let code = result?;
    closed?;
    Ok(code)
}

/// `add PATH... [--profile P] [--pin NAME] [--json]`: prints `CID<TAB>PATH` for every file
/// and directory added, each PATH's root last; here, or on the node running on `db`.
async fn add(db: &Path, args: AddArgs) -> anyhow::Result<ExitCode> {
    if args.pin.is_some() && args.paths.len() > 1 {
        anyhow::bail!("--pin names one root: give one PATH");
    }
    let target = Target::open(db).await?;
    with_target(target, |t| add_all(t, args)).await
}

async fn add_all(target: Target, args: AddArgs) -> anyhow::Result<ExitCode> {
    let bar = progress_bar(&args.paths, args.hidden);
    let progress: Option<ProgressFn> = bar.clone().map(|bar| {
        let f: ProgressFn = Arc::new(move |n| bar.inc(n));
        f
    });
    let mut rows = Vec::new();
    for path in &args.paths {
        let op = Op::Add {
            input: Input::from_arg(path),
            profile: args.profile.name().to_string(),
            pin: args.pin.clone(),
            hidden: args.hidden,
        };
        let entries = match target.run(op, progress.clone()).await? {
            Reply::Added { entries } => entries,
            other => return Err(super::write::unexpected(other)),
        };
        if !args.json {
            if let Some(bar) = &bar {
                bar.suspend(|| print_added(path, &entries))?;
            } else {
                print_added(path, &entries)?;
            }
        }
        rows.push((path.clone(), entries));
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    if args.json {
        let json: Vec<_> = rows
            .iter()
            .flat_map(|(path, entries)| {
                entries.iter().map(move |e| {
                    serde_json::json!({
                        "cid": e.cid,
                        "path": shown(path, &e.path),
                        "type": e.kind,
                        "dag_size": e.dag_size,
                    })
                })
            })
            .collect();
        out::json(&json)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print_added(path: &Path, entries: &[AddedRow]) -> std::io::Result<()> {
    for e in entries {
        outln!("{}\t{}", e.cid, shown(path, &e.path))?;
    }
    Ok(())
}

/// An entry's path as the user would type it: the argument, then the path inside it.
fn shown(arg: &Path, rel: &str) -> String {
    if rel.is_empty() {
        arg.display().to_string()
    } else {
        arg.join(rel).display().to_string()
    }
}

/// A bar with bytes and rate on stderr, only when stderr is a terminal.
fn progress_bar(paths: &[PathBuf], hidden: bool) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let stdin = paths.iter().any(|p| p.as_os_str() == "-");
    let bar = if stdin {
        indicatif::ProgressBar::new_spinner()
    } else {
        indicatif::ProgressBar::new(paths.iter().map(|p| bytes_under(p, hidden)).sum())
    };
    let template = if stdin {
        "{spinner} {bytes} {binary_bytes_per_sec}"
    } else {
        "{bar:30} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}"
    };
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    Some(bar)
}

/// File bytes an add of `path` will read (for the bar's total; unreadable entries count 0).
fn bytes_under(path: &Path, hidden: bool) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return if meta.is_file() { meta.len() } else { 0 };
    }
    let Ok(read) = std::fs::read_dir(path) else {
        return 0;
    };
    read.flatten()
        .filter(|e| hidden || !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| bytes_under(&e.path(), hidden))
        .sum()
}

/// `cat CID[/PATH] [--offset N] [--length N] [-o FILE]`: the file's bytes, each block
/// verified; a missing block fails the command after the bytes before it were written.
async fn cat(db: &Path, args: CatArgs) -> anyhow::Result<ExitCode> {
    with_files(db, false, |files| async move {
        let cid = files.resolve(&args.path).await?;
        let mut reader = files.cat(&cid, args.offset, args.length).await?;
        let mut sink: Box<dyn Write> = match &args.output {
            Some(path) => Box::new(std::io::BufWriter::new(
                std::fs::File::create(path)
                    .with_context(|| format!("cannot create {}", path.display()))?,
            )),
            None => Box::new(std::io::stdout().lock()),
        };
        while let Some(chunk) = reader.next_chunk().await? {
            sink.write_all(&chunk)?;
        }
        sink.flush()?;
        Ok(ExitCode::SUCCESS)
    })
    .await
}

/// `ls CID[/PATH] [--json]`: `CID<TAB>SIZE<TAB>TYPE<TAB>NAME` per entry, sorted by name.
async fn ls(db: &Path, args: LsArgs) -> anyhow::Result<ExitCode> {
    with_files(db, false, |files| async move {
        let cid = files.resolve(&args.path).await?;
        let entries = files.ls(&cid).await?;
        if args.json {
            let json: Vec<_> = entries
                .iter()
                .map(|e| {
                    serde_json::json!({
                        "name": e.name,
                        "cid": e.cid.to_string(),
                        "size": e.size,
                        "type": e.kind.name(),
                    })
                })
                .collect();
            out::json(&json)?;
        } else {
            for e in &entries {
                outln!("{}\t{}\t{}\t{}", e.cid, e.size, e.kind, e.name)?;
            }
        }
        Ok(ExitCode::SUCCESS)
    })
    .await
}

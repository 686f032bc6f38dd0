//! Command definitions and dispatch.

mod bench;
mod blobs;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// seedbank: content-addressed blobs in SQLite for sync engines.
#[derive(Parser, Debug)]
#[command(version, about)]
pub struct Args {
    /// Database file.
    #[arg(
        long,
        global = true,
        default_value = "seedbank.db",
        env = "SEEDBANK_DB"
    )]
    pub db: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Store files as raw blobs; prints `CID<TAB>FILE` for each once durable.
    Put {
        /// Files to store.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print a blob's bytes (verified) to stdout or a file.
    Get {
        /// The blob's CID.
        cid: String,
        /// Write to this file instead of stdout.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Show a blob's metadata.
    Info {
        /// The blob's CID.
        cid: String,
    },
    /// Print `CID<TAB>yes|no` for each CID; exits 1 if any is missing.
    Has {
        /// CIDs to look up.
        #[arg(required = true)]
        cids: Vec<String>,
    },
    /// Show store contents and counters.
    Stats {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Re-hash every blob and run SQLite's integrity check; exits 1 on any problem.
    Verify,
    /// Run the blob ingest benchmark on a temporary database.
    Bench(bench::BenchArgs),
}

/// Runs one command; `Ok` carries the exit code for commands that report a verdict.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Bench(b) => bench::run(b).await,
        command => blobs::run(&args.db, command).await,
    }
}

//! Command definitions and dispatch.

mod bench;
mod blobs;
mod dag;
mod files;
mod gateway;
mod lifecycle;
mod metrics;
mod net;
pub mod out;
mod sim;
mod sim_net;
mod write;

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
        /// Files to store (`-` reads standard input).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Import a CARv1/CARv2 file: prints blocks, bytes, roots and the missing count.
    Import {
        /// The CAR file.
        file: PathBuf,
    },
    #[command(flatten)]
    #[allow(missing_docs)]
    Read(blobs::ReadCommand),
    #[command(flatten)]
    #[allow(missing_docs)]
    Files(files::FilesCommand),
    #[command(flatten)]
    #[allow(missing_docs)]
    Lifecycle(lifecycle::LifecycleCommand),
    /// Serve the store to other nodes until SIGINT/SIGTERM; prints the node's ticket.
    Serve(net::ServeArgs),
    /// Fetch what SCOPE (a root CID or a scope name) is missing from peers; exits 0 when
    /// complete, 1 when not.
    Sync(net::SyncArgs),
    /// Serve the database read-only as an IPFS Trustless Gateway over HTTP (beside any
    /// owner) until SIGINT/SIGTERM; prints its URL.
    Gateway(gateway::GatewayArgs),
    /// Run a discovery simulation on embedded stores and print its report.
    Sim(sim::SimArgs),
    /// Run the blob ingest benchmark on a temporary database.
    Bench(Box<bench::BenchArgs>),
}

/// Parses CID arguments, failing on the first invalid one.
pub fn parse_cids(cids: &[String]) -> anyhow::Result<Vec<seedbank::Cid>> {
    cids.iter().map(|c| parse_cid(c)).collect()
}

/// Parses a CID argument with a message naming it.
pub fn parse_cid(s: &str) -> anyhow::Result<seedbank::Cid> {
    use anyhow::Context;
    seedbank::Cid::try_from(s).with_context(|| format!("invalid CID {s:?}"))
}

/// Runs one command; `Ok` carries the exit code for commands that report a verdict.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Bench(b) => bench::run(*b).await,
        Command::Sim(s) => sim::run(s).await,
        Command::Lifecycle(c) => lifecycle::run(&args.db, c).await,
        Command::Files(c) => files::run(&args.db, c).await,
        Command::Read(blobs::ReadCommand::Verify { repair: true }) => {
            lifecycle::repair(&args.db).await
        }
        Command::Read(c) => blobs::run(&args.db, c).await,
        Command::Serve(s) => net::serve(&args.db, s).await,
        Command::Sync(s) => net::sync(&args.db, s).await,
        Command::Gateway(g) => gateway::run(&args.db, g).await,
        Command::Put { files } => blobs::put(&args.db, &files).await,
        Command::Import { file } => dag::import(&args.db, &file).await,
    }
}

//! `seedbank sim`: a discovery simulation on embedded stores in a temporary directory.

use std::process::ExitCode;

use super::out::{self, outln};

use seedbank_sim::{self as sim, SimConfig};

/// Options of `seedbank sim`.
#[derive(clap::Args, Debug)]
pub struct SimArgs {
    /// Peers offered to discovery.
    #[arg(long, default_value_t = 50)]
    peers: usize,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Share of peers that fail or hang (half each).
    #[arg(long, default_value_t = 0.2)]
    failing: f64,
    /// Peers that send corrupted bytes.
    #[arg(long, default_value_t = 1)]
    liars: usize,
    /// Concurrent `discover` calls for the target (they share one run).
    #[arg(long, default_value_t = 8)]
    callers: usize,
    /// Run over real QUIC against this many `seedbank serve` processes on 127.0.0.1
    /// (`--failing` of them dead, `--liars` serving corrupted bytes) instead of in-process.
    #[arg(long)]
    processes: Option<usize>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: SimArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.failing),
        "--failing must be within 0..=1"
    );
    if let Some(processes) = args.processes {
        return super::sim_net::run(super::sim_net::ProcessSim {
            processes,
            seed: args.seed,
            failing: args.failing,
            liars: args.liars,
            json: args.json,
        })
        .await;
    }
    let config = SimConfig {
        peers: args.peers,
        seed: args.seed,
        failing: args.failing,
        liars: args.liars,
        callers: args.callers,
        ..SimConfig::default()
    };
    let report = sim::run(config).await?;
    if args.json {
        out::json(&report)?;
    } else {
        outln!("{}", report.to_string().trim_end())?;
    }
    Ok(ExitCode::SUCCESS)
}

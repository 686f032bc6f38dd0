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
    /// With `--processes`: blocks in the DAG.
    #[arg(long, default_value_t = 1021, requires = "processes")]
    blocks: usize,
    /// With `--processes`: leaf sizes in bytes, `SIZE` or `MIN-MAX` (drawn log-uniformly).
    #[arg(long, default_value = "1024", value_parser = parse_sizes, requires = "processes")]
    sizes: (usize, usize),
    /// With `--processes`: every process holds the whole DAG (default: partial replicas).
    #[arg(long, requires = "processes")]
    full_replicas: bool,
    /// With `--processes`: repetitions (fresh client and baseline each), reported as
    /// medians with their range.
    #[arg(long, default_value_t = 1, requires = "processes")]
    repeat: usize,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// `SIZE` or `MIN-MAX`, in bytes.
fn parse_sizes(text: &str) -> Result<(usize, usize), String> {
    let parse = |t: &str| {
        t.trim()
            .parse::<usize>()
            .map_err(|e| format!("{t:?} is not a size in bytes: {e}"))
    };
    let (min, max) = match text.split_once('-') {
        Some((a, b)) => (parse(a)?, parse(b)?),
        None => (parse(text)?, parse(text)?),
    };
    if min > max {
        return Err(format!("MIN {min} is larger than MAX {max}"));
    }
    Ok((min, max))
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
            blocks: args.blocks,
            sizes: args.sizes,
            full_replicas: args.full_replicas,
            repeat: args.repeat,
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

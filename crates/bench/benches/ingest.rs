//! `cargo bench --bench ingest [-- OPTIONS]`: the same benchmark as `seedbank bench`
//! (see `seedbank bench --help` for the options), e.g. `cargo bench --bench ingest -- --quick`.

use clap::Parser;
use seedbank_bench::BenchArgs;

/// The benchmark's options, plus the `--bench` flag cargo passes to every bench target.
#[derive(Parser, Debug)]
#[command(about = "seedbank blob ingest benchmark")]
struct Cli {
    #[command(flatten)]
    args: BenchArgs,
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(seedbank_bench::main(cli.args))
}

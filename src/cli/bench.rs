//! `seedbank bench`: the blob ingest benchmark (limit vs naive vs seedbank) on temporary
//! databases. The benchmark itself lives in the library (`seedbank-bench`) so that
//! `cargo bench --bench ingest` runs the same code.

use std::process::ExitCode;

pub use seedbank_bench::BenchArgs;

/// Runs the benchmark and prints its tables.
pub async fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    seedbank_bench::main(args).await?;
    Ok(ExitCode::SUCCESS)
}

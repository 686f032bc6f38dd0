//! `seedbank bench`: the ingest benchmark on a temporary database.

use std::process::ExitCode;

use seedbank::bench::{self, Workload};
use seedbank::blobstore::Config;

/// Options of `seedbank bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Concurrent producers.
    #[arg(long, default_value_t = 256)]
    producers: usize,
    /// `put_many` calls per producer.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Blobs per `put_many`.
    #[arg(long, default_value_t = 10)]
    blobs_per_put: usize,
    /// Blob size in bytes.
    #[arg(long, default_value_t = 1024)]
    size: usize,
    /// Concurrent `info` readers.
    #[arg(long, default_value_t = 16)]
    info_readers: usize,
    /// Write every figure as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

pub async fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let workload = Workload {
        producers: args.producers,
        rounds: args.rounds,
        blobs_per_put: args.blobs_per_put,
        blob_size: args.size,
        info_readers: args.info_readers,
        ..Workload::default()
    };
    let report = bench::run(&workload, Config::default()).await?;
    println!(
        "{} producers x {} x {} blobs of {} B, {} info readers",
        workload.producers,
        workload.rounds,
        workload.blobs_per_put,
        workload.blob_size,
        workload.info_readers
    );
    println!("blobs/s       {:.0}", report.blobs_per_sec);
    println!("MB/s          {:.1}", report.mb_per_sec);
    println!(
        "info µs       p50 {} p99 {} max {} (n={})",
        report.info_us.p50, report.info_us.p99, report.info_us.max, report.info_us.count
    );
    println!("SQLITE_BUSY   {}", report.sqlite_busy);
    println!("WAL peak      {} bytes", report.wal_peak_bytes);
    println!("batches       {}", report.batches);
    if let Some(path) = args.json {
        std::fs::write(&path, serde_json::to_string_pretty(&report)?)?;
    }
    Ok(ExitCode::SUCCESS)
}

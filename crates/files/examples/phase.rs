//! One phase of the files benchmark per process, so each can be profiled (`perf record`)
//! or measured (`/usr/bin/time -v`) alone:
//!
//! ```text
//! cargo run --release -p seedbank-files --example phase -- add DB PATH [PROFILE]
//! cargo run --release -p seedbank-files --example phase -- cat DB CID
//! cargo run --release -p seedbank-files --example phase -- export DB CID CAR
//! cargo run --release -p seedbank-files --example phase -- import DB CAR
//! ```
//!
//! `add` stores a file or directory (`Files::add_path`) in the database `DB` and prints its
//! root; `cat` reads the file `CID` back, or every file of the directory `CID`; `export`
//! writes the DAG under `CID` as a CAR and `import` reads one into `DB` (the store's own
//! ceiling for the same blocks). Each prints seconds, MB/s and the peak RSS (Linux).

use std::path::Path;
use std::time::Instant;

use cid::Cid;
use seedbank_blobstore::{Config, Store};
use seedbank_files::{AddOptions, Files, Kind, Profile};
use seedbank_index::{car, Index, IndexConfig};

type Error = Box<dyn std::error::Error>;

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// The store's configuration: the defaults, with `PHASE_BATCH_BYTES` (the lane's batch
/// byte budget) and `PHASE_WAL_CAP` (bytes) from the environment when set.
fn config() -> Result<Config, Error> {
    let mut config = Config::default();
    if let Ok(v) = std::env::var("PHASE_BATCH_BYTES") {
        config.batch.max_bytes = v.parse()?;
    }
    if let Ok(v) = std::env::var("PHASE_WAL_CAP") {
        config.wal_cap_bytes = v.parse()?;
    }
    Ok(config)
}

async fn open(db: &str) -> Result<Files, Error> {
    let store = Store::open(db, config()?)?;
    Ok(Files::new(
        Index::open(store, IndexConfig::default()).await?,
    ))
}

/// CPU seconds of this process's threads, summed by thread name (Linux).
fn thread_cpu() -> Vec<(String, f64)> {
    let mut by_name: Vec<(String, f64)> = Vec::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return by_name;
    };
    for task in tasks.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        // Fields after the `(comm)`: state is the 3rd field; utime and stime the 14th, 15th.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 = f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
            + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        let name = comm.trim().to_string();
        match by_name.iter_mut().find(|(n, _)| *n == name) {
            Some((_, cpu)) => *cpu += ticks / 100.0,
            None => by_name.push((name, ticks / 100.0)),
        }
    }
    by_name.sort_by(|a, b| b.1.total_cmp(&a.1));
    by_name
}

/// The store's view of a write phase: commits, their fsync, the WAL's checkpoints.
fn store_line(files: &Files) {
    let s = files.index().store().stats();
    println!(
        "store: {} commits of {} blobs (p50), COMMIT p50 {} µs p99 {} µs, batch hold p50 {} µs, lane busy {:.2}, WAL peak {:.1} MiB, checkpoints passive/rewind/truncate {}/{}/{}, lane waits {}",
        s.batches,
        s.batch_blobs.p50,
        s.commit_us.p50,
        s.commit_us.p99,
        s.batch_hold_us.p50,
        s.lane_utilisation,
        s.wal.peak_bytes as f64 / (1 << 20) as f64,
        s.wal.passive,
        s.wal.rewind,
        s.wal.truncate,
        s.wal.lane_waits,
    );
    let cpu: Vec<String> = thread_cpu()
        .into_iter()
        .map(|(name, secs)| format!("{name} {secs:.2}"))
        .collect();
    println!("thread CPU s: {}", cpu.join(", "));
}

fn report(what: &str, bytes: u64, files: u64, started: Instant) {
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{what}: {bytes} bytes, {files} files, {secs:.2} s, {:.1} MB/s, peak RSS {:.1} MiB",
        bytes as f64 / secs / 1e6,
        peak_rss_mib()
    );
}

async fn cat_one(files: &Files, cid: &Cid) -> Result<u64, Error> {
    let mut reader = files.cat(cid, 0, None).await?;
    let mut read = 0u64;
    while let Some(chunk) = reader.next_chunk().await? {
        read += chunk.len() as u64;
    }
    Ok(read)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| -> Result<&str, Error> {
        args.get(i)
            .map(String::as_str)
            .ok_or_else(|| "usage: phase add|cat|export|import DB ...".into())
    };
    match arg(0)? {
        "add" => {
            let files = open(arg(1)?).await?;
            let profile: Profile = args.get(3).map_or(Ok(Profile::default()), |p| p.parse())?;
            let started = Instant::now();
            let added = files
                .add_path(Path::new(arg(2)?), &AddOptions::new(profile))
                .await?;
            let n = added
                .entries
                .iter()
                .filter(|e| e.kind == Kind::File)
                .count();
            report("add", added.bytes, n as u64, started);
            println!("root {} blocks {}", added.root, added.blocks);
            store_line(&files);
            files.index().store().close().await?;
        }
        "cat" => {
            let files = open(arg(1)?).await?;
            let root: Cid = arg(2)?.parse()?;
            let started = Instant::now();
            let (mut bytes, mut n) = (0u64, 0u64);
            let entries = match files.ls(&root).await {
                Ok(entries) => entries,
                Err(seedbank_files::Error::NotADirectory { .. }) => Vec::new(),
                Err(e) => return Err(e.into()),
            };
            if entries.is_empty() {
                bytes += cat_one(&files, &root).await?;
                n += 1;
            }
            for entry in entries.iter().filter(|e| e.kind == Kind::File) {
                bytes += cat_one(&files, &entry.cid).await?;
                n += 1;
            }
            report("cat", bytes, n, started);
            files.index().store().close().await?;
        }
        "export" => {
            let files = open(arg(1)?).await?;
            let root: Cid = arg(2)?.parse()?;
            let file = tokio::fs::File::create(arg(3)?).await?;
            let mut writer = tokio::io::BufWriter::with_capacity(1 << 20, file);
            let started = Instant::now();
            let r = car::export_dag(files.index(), &root, &mut writer).await?;
            tokio::io::AsyncWriteExt::flush(&mut writer).await?;
            writer.into_inner().sync_all().await?;
            report("export", r.car_bytes, 0, started);
            files.index().store().close().await?;
        }
        "import" => {
            let files = open(arg(1)?).await?;
            let reader = tokio::io::BufReader::new(tokio::fs::File::open(arg(2)?).await?);
            let started = Instant::now();
            let r = car::import(files.index(), reader, car::ImportOptions::default()).await?;
            report("import", r.bytes, 0, started);
            println!("roots {:?} blocks {}", r.roots, r.blocks);
            store_line(&files);
            files.index().store().close().await?;
        }
        other => return Err(format!("unknown phase {other:?}").into()),
    }
    Ok(())
}

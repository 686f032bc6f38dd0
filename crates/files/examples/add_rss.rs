//! Adds a large generated file, then reads it back, and prints throughput and peak RSS:
//! the check that memory is bounded by batches, not by the file.
//!
//! `cargo run --release -p seedbank-files --example add_rss -- [GIB] [PROFILE] [DIR]`
//! (default 4 GiB, `unixfs-v1-2025`, a temporary directory). Linux only (reads
//! `/proc/self/status`).

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use seedbank_blobstore::{Config, Store};
use seedbank_files::{AddOptions, Files, Profile};
use seedbank_index::{Index, IndexConfig};
use tokio::io::{AsyncRead, ReadBuf};

/// `len` bytes of xorshift64 output, generated as read.
struct Generated {
    left: u64,
    state: u64,
}

impl AsyncRead for Generated {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let n = (buf.remaining() as u64).min(self.left) as usize & !7;
        let n = if n == 0 {
            self.left.min(buf.remaining() as u64) as usize
        } else {
            n
        };
        let out = buf.initialize_unfilled_to(n);
        for word in out.chunks_mut(8) {
            let mut x = self.state;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.state = x;
            word.copy_from_slice(&x.to_le_bytes()[..word.len()]);
        }
        buf.advance(n);
        self.left -= n as u64;
        Poll::Ready(Ok(()))
    }
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let gib: f64 = args.next().map_or(Ok(4.0), |a| a.parse())?;
    let profile: Profile = args.next().map_or(Ok(Profile::default()), |a| a.parse())?;
    let tmp = tempfile::tempdir()?;
    let dir = args.next().map_or(tmp.path().to_path_buf(), Into::into);
    let size = (gib * (1u64 << 30) as f64) as u64;

    let store = Store::open(dir.join("add_rss.db"), Config::default())?;
    let files = Files::new(Index::open(store, IndexConfig::default()).await?);
    println!(
        "profile {profile}, {size} bytes, RSS before {:.1} MiB",
        peak_rss_mib()
    );

    let started = Instant::now();
    let reader = Generated {
        left: size,
        state: 0x9e37_79b9_7f4a_7c15,
    };
    let added = files.add_reader(reader, &AddOptions::new(profile)).await?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "add  {:.1} s, {:.0} MB/s, {} blocks, root {}, peak RSS {:.1} MiB",
        secs,
        size as f64 / secs / 1e6,
        added.blocks,
        added.root,
        peak_rss_mib()
    );

    let started = Instant::now();
    let mut reader = files.cat(&added.root, 0, None).await?;
    let mut read = 0u64;
    while let Some(chunk) = reader.next_chunk().await? {
        read += chunk.len() as u64;
    }
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(read, size);
    println!(
        "cat  {:.1} s, {:.0} MB/s, peak RSS {:.1} MiB",
        secs,
        size as f64 / secs / 1e6,
        peak_rss_mib()
    );
    files.index().store().close().await?;
    Ok(())
}

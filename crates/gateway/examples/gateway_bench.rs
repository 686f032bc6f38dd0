//! Gateway figures, in one run on one machine:
//!
//! 1. CAR stream of a large file DAG (`--mb`, default 1024 MiB of 1 MiB chunks): the
//!    gateway's `?format=car` read by an HTTP client on 127.0.0.1, against
//!    `car::export_dag` to a file, alternating, `--rounds` times each (MB/s of CAR bytes),
//!    with the process's resident memory sampled while the gateway streams.
//! 2. Raw-block requests per second with `--clients` (64) concurrent clients over
//!    `--blocks` (10,000) stored 4 KiB blocks for `--secs` (5) seconds, with p50/p99
//!    latency.
//!
//! `cargo run --release -p seedbank-gateway --example gateway_bench -- [--mb N] [--rounds N]
//! [--clients N] [--blocks N] [--secs N]`

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use seedbank_blobstore::{codec, Blob, Config, PutOptions, Store};
use seedbank_files::{AddOptions, Files, Profile};
use seedbank_gateway::{Gateway, GatewayConfig};
use seedbank_index::{car, Index, IndexConfig};
use tokio::io::AsyncRead;

/// A reader of `len` pseudo-random bytes (no chunk repeats), produced as it is read.
struct Noise {
    left: u64,
    x: u64,
}

impl AsyncRead for Noise {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let n = (buf.remaining() as u64).min(self.left).min(64 * 1024) as usize;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n.div_ceil(8) {
            self.x ^= self.x << 13;
            self.x ^= self.x >> 7;
            self.x ^= self.x << 17;
            out.extend_from_slice(&self.x.to_le_bytes());
        }
        buf.put_slice(&out[..n]);
        self.left -= n as u64;
        std::task::Poll::Ready(Ok(()))
    }
}

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn spread(v: &[f64]) -> String {
    let min = v.iter().cloned().fold(f64::INFINITY, f64::min);
    let max = v.iter().cloned().fold(0.0, f64::max);
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    format!(
        "median {:.0} (min {:.0}, max {:.0})",
        s[s.len() / 2],
        min,
        max
    )
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (mb, rounds) = (arg("--mb", 1024), arg("--rounds", 3).max(1));
    let (clients, nblocks, secs) = (
        arg("--clients", 64),
        arg("--blocks", 10_000),
        arg("--secs", 5),
    );
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path().join("bench.db"), Config::default())?;
    let index = Index::open(store.clone(), IndexConfig::default()).await?;

    let t = Instant::now();
    let added = Files::new(index.clone())
        .add_reader(
            Noise {
                left: mb << 20,
                x: 0x9e37_79b9_7f4a_7c15,
            },
            &AddOptions::new(Profile::UnixfsV1_2025),
        )
        .await?;
    let root = added.root;
    println!(
        "added {mb} MiB as {} in {:.1} s",
        root,
        t.elapsed().as_secs_f64()
    );

    let mut config = GatewayConfig::default();
    config.listen = "127.0.0.1:0".parse()?;
    config.max_concurrent_requests = (clients as usize) * 2;
    let gateway = Gateway::new(index.clone(), config);
    let listener = gateway.bind().await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(gateway.serve(listener, async move {
        let _ = stopped.await;
    }));
    // See the rustls dev-dependency: needed once iroh is in the same build.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder().no_proxy().build()?;

    // 1. CAR stream vs export to a file.
    let (mut gw, mut ex) = (Vec::new(), Vec::new());
    let mut peak_rss = 0;
    let base_rss = rss_kib();
    for _ in 0..rounds {
        let t = Instant::now();
        let path = dir.path().join("export.car");
        let file = tokio::fs::File::create(&path).await?;
        let report = car::export_dag(&index, &root, file).await?;
        ex.push(report.car_bytes as f64 / 1e6 / t.elapsed().as_secs_f64());
        std::fs::remove_file(&path)?;

        let sampling = Arc::new(AtomicBool::new(true));
        let peak = Arc::new(AtomicU64::new(0));
        let sampler = {
            let (sampling, peak) = (sampling.clone(), peak.clone());
            tokio::spawn(async move {
                while sampling.load(Ordering::Relaxed) {
                    peak.fetch_max(rss_kib(), Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        };
        let t = Instant::now();
        let resp = client
            .get(format!("{base}/ipfs/{root}?format=car&dups=y"))
            .send()
            .await?;
        let mut stream = resp.bytes_stream();
        let mut bytes = 0u64;
        while let Some(chunk) = stream.next().await {
            bytes += chunk?.len() as u64;
        }
        gw.push(bytes as f64 / 1e6 / t.elapsed().as_secs_f64());
        sampling.store(false, Ordering::Relaxed);
        sampler.await?;
        peak_rss = peak_rss.max(peak.load(Ordering::Relaxed));
        assert_eq!(bytes, report.car_bytes, "same CAR size");
    }
    println!("CAR of {mb} MiB: gateway over HTTP {} MB/s", spread(&gw));
    println!("CAR of {mb} MiB: export_dag to a file {} MB/s", spread(&ex));
    println!(
        "resident memory: {} MiB before streaming, peak {} MiB while streaming",
        base_rss / 1024,
        peak_rss / 1024
    );

    // 2. Raw blocks with concurrent clients.
    let blobs: Vec<Blob> = (0..nblocks)
        .map(|i| {
            let mut data = vec![0u8; 4096];
            data[..8].copy_from_slice(&i.to_le_bytes());
            Blob::new(codec::RAW, data)
        })
        .collect();
    let cids = Arc::new(store.put_many(blobs, PutOptions::default()).await?);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (client, base, cids) = (client.clone(), base.clone(), cids.clone());
        tasks.push(tokio::spawn(async move {
            let mut h = hdrhistogram::Histogram::<u64>::new(3).unwrap();
            let mut i = c as usize * 7919;
            while Instant::now() < deadline {
                i = (i + 104_729) % cids.len();
                let t = Instant::now();
                let resp = client
                    .get(format!("{base}/ipfs/{}?format=raw", cids[i]))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), 200);
                let body = resp.bytes().await.unwrap();
                assert_eq!(body.len(), 4096);
                h.record(t.elapsed().as_micros() as u64).unwrap();
            }
            h
        }));
    }
    let mut all = hdrhistogram::Histogram::<u64>::new(3)?;
    for t in tasks {
        all.add(t.await?)?;
    }
    println!(
        "raw 4 KiB blocks, {clients} clients, {secs} s: {:.0} requests/s, p50 {:.2} ms, p99 {:.2} ms",
        all.len() as f64 / secs as f64,
        all.value_at_quantile(0.5) as f64 / 1000.0,
        all.value_at_quantile(0.99) as f64 / 1000.0
    );

    let _ = stop.send(());
    server.await??;
    store.close().await?;
    Ok(())
}

//! Index figures (a measurement program, not a timed test):
//!
//! 1. link extraction cost per 1 KiB DAG-CBOR blob (target ≤ 20 µs);
//! 2. write-lock hold time per blob, plain `Store::put_many` versus `Index::put_many`;
//! 3. CAR import throughput: `sample-v1.car` repeated to ≥ 100k blocks, and 100k distinct
//!    synthetic DAG-CBOR blocks;
//! 4. `Index::info` latency (p50/p99) while the synthetic import runs.
//!
//! Run with `cargo bench -p seedbank-index --bench index` (`-- --quick` for a smoke run).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use cid::Cid;
use hdrhistogram::Histogram;
use ipld_core::ipld::Ipld;
use seedbank_blobstore::{codec, Blob, Config, Priority, PutOptions, Store};
use seedbank_index::car::{self, CarReader, CarWriter, ImportOptions, ImportReport};
use seedbank_index::{extract_links, Index, IndexConfig, IndexPutOptions};

/// Scale of the run: full figures or a quick smoke run.
struct Scale {
    extract_rounds: usize,
    hold_blobs: usize,
    import_blocks: usize,
}

const FULL: Scale = Scale {
    extract_rounds: 20,
    hold_blobs: 20_000,
    import_blocks: 100_000,
};
const QUICK: Scale = Scale {
    extract_rounds: 2,
    hold_blobs: 2_000,
    import_blocks: 5_000,
};

/// A DAG-CBOR node of about `size` bytes linking to `links`.
fn node(i: u64, links: &[Cid], size: usize) -> Blob {
    let build = |pad: usize| {
        let map = BTreeMap::from([
            ("id".to_string(), Ipld::Integer(i.into())),
            ("name".to_string(), Ipld::String(format!("node-{i}"))),
            (
                "links".to_string(),
                Ipld::List(links.iter().copied().map(Ipld::Link).collect()),
            ),
            (
                "tags".to_string(),
                Ipld::List(vec![Ipld::String("a".into()), Ipld::Bool(true)]),
            ),
            ("data".to_string(), Ipld::Bytes(vec![i as u8; pad])),
        ]);
        serde_ipld_dagcbor::to_vec(&Ipld::Map(map)).expect("encodes")
    };
    let bare = build(0).len();
    // A byte string's head grows by 1 byte at 24 bytes and by 2 more at 256.
    let pad = size.saturating_sub(bare + 2);
    Blob::new(codec::DAG_CBOR, build(pad))
}

/// Blobs of about 1 KiB with 8 links each.
fn kib_nodes(n: usize, salt: u64) -> Vec<Blob> {
    (0..n as u64)
        .map(|i| {
            let links: Vec<Cid> = (0..8u64)
                .map(|j| *Blob::new(codec::RAW, [salt, i, j].map(u64::to_le_bytes).concat()).cid())
                .collect();
            node(salt * 1_000_000 + i, &links, 1024)
        })
        .collect()
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn extraction(scale: &Scale) {
    let blobs = kib_nodes(2_000, 1);
    let avg = blobs.iter().map(Blob::len).sum::<usize>() as f64 / blobs.len() as f64;
    let mut per_blob_us = Vec::new();
    for _ in 0..scale.extract_rounds {
        let started = Instant::now();
        let mut links = 0;
        for blob in &blobs {
            links += extract_links(codec::DAG_CBOR, blob.data()).links.len();
        }
        assert_eq!(links, blobs.len() * 8);
        per_blob_us.push(started.elapsed().as_secs_f64() * 1e6 / blobs.len() as f64);
    }
    println!(
        "extract: {:.2} µs per {:.0}-byte DAG-CBOR blob with 8 links (median of {} rounds of {})",
        median(per_blob_us),
        avg,
        scale.extract_rounds,
        blobs.len()
    );
}

fn open_store(dir: &Path, name: &str) -> Store {
    Store::open(dir.join(name), Config::default()).expect("store opens")
}

/// Write-lock time per blob in µs, from the lane's exact nanosecond counter
/// (`lane_utilisation × uptime`). The per-class `hold_us` histograms clamp values of 2048 µs
/// and more (a blobstore stats issue), so they are not used here.
fn lane_us_per_blob(store: &Store) -> f64 {
    let stats = store.stats();
    stats.lane_utilisation * stats.uptime_ms as f64 * 1000.0 / stats.blobs_written.max(1) as f64
}

/// About 1 KiB nodes in a fanout-8 tree, parents first (as a CAR or a sync delivers a DAG):
/// every link's target arrives later as a blob; one link per blob on average.
fn kib_tree(n: usize) -> Vec<Blob> {
    fanout8_tree(n, 1024)
}

/// `n` DAG-CBOR nodes of about `size` bytes in a fanout-8 tree, root first.
fn fanout8_tree(n: usize, size: usize) -> Vec<Blob> {
    let mut cids: Vec<Option<Cid>> = vec![None; n];
    let mut blobs: Vec<Option<Blob>> = vec![None; n];
    for i in (0..n).rev() {
        let children: Vec<Cid> = (8 * i + 1..(8 * i + 9).min(n))
            .map(|c| cids[c].unwrap())
            .collect();
        let blob = node(i as u64, &children, size);
        cids[i] = Some(*blob.cid());
        blobs[i] = Some(blob);
    }
    blobs.into_iter().flatten().collect()
}

/// Lane time per blob putting `blobs` plainly and through the index (with one scope).
async fn hold_plain_vs_indexed(dir: &Path, tag: &str, blobs: &[Blob]) -> (f64, f64) {
    let plain = open_store(dir, &format!("plain-{tag}.db"));
    for chunk in blobs.chunks(1024) {
        plain
            .put_many(chunk.to_vec(), PutOptions::default())
            .await
            .expect("put");
    }
    let plain_us = lane_us_per_blob(&plain);
    plain.close().await.expect("close");

    let indexed = open_store(dir, &format!("indexed-{tag}.db"));
    let index = Index::open(indexed.clone(), IndexConfig::default())
        .await
        .expect("index opens");
    let opts = IndexPutOptions::new(Priority::Normal, "bench").scope("bench:scope");
    for chunk in blobs.chunks(1024) {
        index
            .put_many(chunk.to_vec(), opts.clone())
            .await
            .expect("indexed put");
    }
    let index_us = lane_us_per_blob(&indexed);
    indexed.close().await.expect("close");
    (plain_us, index_us)
}

async fn lane_hold(dir: &Path, scale: &Scale) {
    let n = scale.hold_blobs;
    let shapes = [
        ("tree", "fanout-8 tree, parents first", kib_tree(n)),
        (
            "wide",
            "8 links each to blobs never stored",
            kib_nodes(n, 2),
        ),
    ];
    for (tag, shape, blobs) in shapes {
        let (plain, indexed) = hold_plain_vs_indexed(dir, tag, &blobs).await;
        println!(
            "lane hold per 1 KiB blob ({shape}; {n} blobs; COMMIT included): {plain:.1} µs \
             plain vs {indexed:.1} µs indexed with 1 scope (+{:.1} µs)",
            indexed - plain
        );
    }
}

/// `sample-v1.car`'s sections repeated until there are at least `blocks` of them.
async fn repeated_sample(path: &Path, blocks: usize) -> usize {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/car/sample-v1.car");
    let original = std::fs::read(fixture).expect("fixture");
    let mut reader = CarReader::new(&original[..], 4 << 20)
        .await
        .expect("header");
    let header_end = {
        let first = reader
            .next_block()
            .await
            .expect("block")
            .expect("one block");
        first.offset as usize
    };
    let mut sections = 1;
    while reader.next_block().await.expect("block").is_some() {
        sections += 1;
    }
    let copies = blocks.div_ceil(sections);
    let mut out = original[..header_end].to_vec();
    for _ in 0..copies {
        out.extend_from_slice(&original[header_end..]);
    }
    std::fs::write(path, out).expect("write");
    copies * sections
}

/// A tree of `n` distinct DAG-CBOR nodes of about 400 bytes, fanout 8, as a CARv1.
async fn synthetic_car(path: &Path, n: usize) -> Vec<Cid> {
    let blobs = fanout8_tree(n, 400);
    let file = tokio::fs::File::create(path).await.expect("create");
    let mut car = CarWriter::new(file, &[*blobs[0].cid()])
        .await
        .expect("header");
    for blob in &blobs {
        car.write_block(blob.cid(), blob.data())
            .await
            .expect("write");
    }
    car.finish().await.expect("flush");
    blobs.iter().map(|b| *b.cid()).collect()
}

async fn timed_import(index: &Index, path: &Path) -> (ImportReport, Duration) {
    let started = Instant::now();
    let file = tokio::fs::File::open(path).await.expect("open");
    let report = car::import(index, file, ImportOptions::default())
        .await
        .expect("import");
    (report, started.elapsed())
}

fn print_import(what: &str, report: &ImportReport, took: Duration) {
    let secs = took.as_secs_f64();
    println!(
        "import {what}: {} blocks, {:.1} MB in {:.2} s = {:.0} blocks/s, {:.1} MB/s (missing {})",
        report.blocks,
        report.bytes as f64 / 1e6,
        secs,
        report.blocks as f64 / secs,
        report.bytes as f64 / 1e6 / secs,
        report.missing
    );
}

/// Calls `info` once a millisecond on CIDs of the file until told to stop; returns latencies.
async fn probe_info(
    index: Index,
    cids: Vec<Cid>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Histogram<u64> {
    let mut hist = Histogram::<u64>::new(3).expect("histogram");
    let mut i = 0;
    while !*stop.borrow() {
        let started = Instant::now();
        index.info(&cids[i % cids.len()]).await.expect("info");
        // `record` grows the histogram; `saturating_record` would clamp values past ~2 ms.
        hist.record(started.elapsed().as_micros() as u64)
            .expect("an auto-resizing histogram takes any value");
        i += 7919;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    hist
}

async fn imports(dir: &Path, scale: &Scale) {
    let sample = dir.join("sample-repeated.car");
    let sections = repeated_sample(&sample, scale.import_blocks).await;
    let index = Index::open(open_store(dir, "import-sample.db"), IndexConfig::default())
        .await
        .expect("open");
    let (report, took) = timed_import(&index, &sample).await;
    assert_eq!(report.blocks as usize, sections);
    print_import(
        "sample-v1.car repeated (1049 distinct, rest already stored)",
        &report,
        took,
    );
    index.store().close().await.expect("close");

    let synthetic = dir.join("synthetic.car");
    let cids = synthetic_car(&synthetic, scale.import_blocks).await;
    let index = Index::open(
        open_store(dir, "import-synthetic.db"),
        IndexConfig::default(),
    )
    .await
    .expect("open");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let probe = tokio::spawn(probe_info(index.clone(), cids.clone(), stop_rx));
    let (report, took) = timed_import(&index, &synthetic).await;
    stop_tx.send(true).expect("probe alive");
    let hist = probe.await.expect("probe");
    print_import(
        "synthetic distinct DAG-CBOR (~400 B, fanout 8)",
        &report,
        took,
    );
    println!(
        "info during that import: p50 {} µs, p99 {} µs, max {} µs over {} calls",
        hist.value_at_quantile(0.5),
        hist.value_at_quantile(0.99),
        hist.max(),
        hist.len()
    );
    let started = Instant::now();
    let missing = index.missing(&cids[0]).await.expect("missing");
    println!(
        "missing(root) over {} blocks: {} missing, walk took {:.0} ms",
        cids.len(),
        missing.len(),
        started.elapsed().as_secs_f64() * 1e3
    );
    let stats = index.store().stats();
    println!("store during the synthetic import:\n{stats}");
    index.store().close().await.expect("close");
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let scale = if quick { QUICK } else { FULL };
    let dir = tempfile::tempdir().expect("tempdir");
    extraction(&scale);
    lane_hold(dir.path(), &scale).await;
    imports(dir.path(), &scale).await;
}

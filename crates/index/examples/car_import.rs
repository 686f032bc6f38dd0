//! Import a CAR file, then ask the index about the DAG it holds.
//!
//! `cargo run -p seedbank-index --example car_import [FILE.car]` (defaults to the
//! repository's `testdata/car/sample-v1.car`).

use std::path::PathBuf;

use seedbank_blobstore::{Config, Store};
use seedbank_index::{car, Index, IndexConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let file = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/car/sample-v1.car")
        });
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path().join("example.db"), Config::default())?;
    let index = Index::open(store.clone(), IndexConfig::default()).await?;

    let reader = tokio::io::BufReader::new(tokio::fs::File::open(&file).await?);
    let report = car::import(&index, reader, car::ImportOptions::default()).await?;
    println!("imported {} blocks ({} bytes)", report.blocks, report.bytes);
    for root in &report.roots {
        let links = index.links(root).await?.unwrap_or_default();
        let missing = index.missing(root).await?;
        println!(
            "root {root}: {} links, {} blocks missing",
            links.len(),
            missing.len()
        );
    }
    store.close().await?;
    Ok(())
}

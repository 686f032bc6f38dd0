//! Store blobs, read them back, and look at the lane's counters.
//!
//! `cargo run -p seedbank-blobstore --example store`

use seedbank_blobstore::{codec, Blob, Config, Priority, PutOptions, Store};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path().join("example.db"), Config::default())?;

    // One interactive put: acknowledged once its batch has committed.
    let hello = store.put(Blob::new(codec::RAW, &b"hello"[..])).await?;

    // A bulk import from one source, at background priority.
    let blobs: Vec<Blob> = (0..1000u32)
        .map(|i| Blob::new(codec::RAW, i.to_le_bytes().repeat(256)))
        .collect();
    let opts = PutOptions::new(Priority::Background, "import:example");
    let cids = store.put_many(blobs, opts).await?;

    let info = store.info(&hello).await?.expect("stored");
    println!("{hello}: {} bytes", info.size);
    let present = store.has_many(&cids).await?;
    println!(
        "{} of {} imported blobs present",
        present.iter().filter(|p| **p).count(),
        cids.len()
    );
    let stats = store.stats();
    println!(
        "batches committed: {}, SQLITE_BUSY: {}",
        stats.batches, stats.sqlite_busy
    );
    store.close().await?;
    Ok(())
}

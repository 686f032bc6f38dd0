//! Two in-process nodes: one holds a named scope, the other discovers and fetches it.
//!
//! `cargo run -p seedbank-discovery --example two_nodes`

use std::sync::Arc;

use seedbank_blobstore::{codec, Blob, Config, Store};
use seedbank_discovery::{
    Discovery, DiscoveryConfig, HavesCache, HavesConfig, Peer, Responder, ResponderConfig, Scope,
};
use seedbank_index::{Index, IndexConfig, IndexPutOptions};

async fn node(path: std::path::PathBuf) -> Result<Index, Box<dyn std::error::Error>> {
    Ok(Index::open(
        Store::open(path, Config::default())?,
        IndexConfig::default(),
    )
    .await?)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;

    // The remote node holds 100 blobs of scope "doc:1" and answers through a Responder.
    let remote = node(dir.path().join("remote.db")).await?;
    let blobs: Vec<Blob> = (0..100u32)
        .map(|i| Blob::new(codec::RAW, format!("blob {i}").into_bytes()))
        .collect();
    remote
        .put_many(blobs, IndexPutOptions::default().scope("doc:1"))
        .await?;
    let haves = HavesCache::new(remote.clone(), HavesConfig::default());
    let peer: Arc<dyn Peer> = Arc::new(Responder::new("remote", haves, ResponderConfig::default()));

    // The local node discovers what it is missing of the scope and fetches it.
    let local = node(dir.path().join("local.db")).await?;
    let discovery = Discovery::new(
        HavesCache::new(local.clone(), HavesConfig::default()),
        DiscoveryConfig::default(),
    );
    let report = discovery.discover(&Scope::named("doc:1"), &[peer]).await?;
    println!("{report}");
    println!(
        "local scope now holds {} blobs",
        local.scope_members("doc:1").await?.len()
    );
    local.store().close().await?;
    remote.store().close().await?;
    Ok(())
}

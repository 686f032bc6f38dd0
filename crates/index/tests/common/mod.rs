//! Shared setup for the index tests: a fresh store and index, fixtures, CAR helpers.

#![allow(dead_code)] // Each test binary uses a different part of this module.

use std::path::PathBuf;

use cid::Cid;
use seedbank_blobstore::{Config, Store};
use seedbank_index::car::{self, CarBlock, CarReader, ImportOptions, ImportReport};
use seedbank_index::{Index, IndexConfig};

/// The root of `sample-v1.car`, as go-car reports it.
pub const SAMPLE_V1_ROOT: &str = "bafy2bzaced4ueelaegfs5fqu4tzsh6ywbbpfk3cxppupmxfdhbpbhzawfw5oy";

/// A store and index in a temporary directory, removed on drop.
pub struct TestIndex {
    pub index: Index,
    pub dir: tempfile::TempDir,
}

impl std::ops::Deref for TestIndex {
    type Target = Index;
    fn deref(&self) -> &Index {
        &self.index
    }
}

/// Opens a fresh store and index with default settings.
pub async fn open() -> TestIndex {
    open_with(IndexConfig::default()).await
}

/// Opens a fresh store and index with `config`.
pub async fn open_with(config: IndexConfig) -> TestIndex {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("blobs.db"), Config::default()).unwrap();
    let index = Index::open(store, config).await.unwrap();
    TestIndex { index, dir }
}

/// Path of a go-car fixture.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/car")
        .join(name)
}

/// The bytes of a go-car fixture.
pub fn fixture_bytes(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).unwrap_or_else(|e| panic!("read fixture {name}: {e}"))
}

/// Imports a fixture with default options.
pub async fn import_fixture(index: &Index, name: &str) -> seedbank_index::Result<ImportReport> {
    let file = tokio::fs::File::open(fixture(name)).await.unwrap();
    car::import(index, file, ImportOptions::default()).await
}

/// Every block of a CAR (unverified), with the roots.
pub async fn read_all(bytes: &[u8]) -> seedbank_index::Result<(Vec<Cid>, Vec<CarBlock>)> {
    let mut reader = CarReader::new(bytes, 4 << 20).await?;
    let roots = reader.roots().to_vec();
    let mut blocks = Vec::new();
    while let Some(block) = reader.next_block().await? {
        blocks.push(block);
    }
    Ok((roots, blocks))
}

pub fn cid(s: &str) -> Cid {
    s.parse().unwrap()
}

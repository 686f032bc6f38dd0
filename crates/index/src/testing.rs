//! DAG builders for tests of this workspace (and of applications embedding it). Not part of
//! the stable API.

use std::collections::BTreeMap;

use cid::Cid;
use ipld_core::ipld::Ipld;
use seedbank_blobstore::{codec, Blob};

/// A DAG-CBOR node `{"t": tag, "l": [links]}`: distinct per tag, linking to `links`.
pub fn node(tag: &str, links: &[Cid]) -> Blob {
    let ipld = Ipld::Map(BTreeMap::from([
        ("t".to_string(), Ipld::String(tag.to_string())),
        (
            "l".to_string(),
            Ipld::List(links.iter().map(|c| Ipld::Link(*c)).collect()),
        ),
    ]));
    let bytes = serde_ipld_dagcbor::to_vec(&ipld).expect("a map of strings and links encodes");
    Blob::new(codec::DAG_CBOR, bytes)
}

/// `n` distinct raw blobs, `"{tag} leaf {i}"`.
pub fn leaves(tag: &str, n: usize) -> Vec<Blob> {
    (0..n)
        .map(|i| Blob::new(codec::RAW, format!("{tag} leaf {i}").into_bytes()))
        .collect()
}

/// A raw blob of `size` bytes (at least the tag's length) starting with `tag`: distinct
/// per tag, any size.
pub fn raw(tag: &str, size: usize) -> Blob {
    let mut data = tag.as_bytes().to_vec();
    data.resize(size.max(tag.len()), b'.');
    Blob::new(codec::RAW, data)
}

/// The CIDs of `blobs`, in order.
pub fn cids(blobs: &[Blob]) -> Vec<Cid> {
    blobs.iter().map(|b| *b.cid()).collect()
}

//! DAG-CBOR links: every tag-42 CID, found by serde without building an `Ipld` tree.

use cid::Cid;
use ipld_core::serde::ExtractLinks;
use serde::Deserialize;
use serde_ipld_dagcbor::de::Deserializer;

/// The block's links in document order, or `None` if it is not valid DAG-CBOR.
pub(super) fn links(data: &[u8]) -> Option<Vec<Cid>> {
    let mut de = Deserializer::from_slice(data);
    let links = ExtractLinks::<64>::deserialize(&mut de).ok()?.into_vec();
    // `Links::links` of the codec stops after one value; a block with bytes after it is not
    // DAG-CBOR, so it is not indexable either.
    de.end().ok()?;
    Some(links)
}

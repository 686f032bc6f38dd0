//! DAG-PB links: the `Hash` of every `PBLink`, decoded by `ipld-dagpb` (quick-protobuf).

use bytes::Bytes;
use cid::Cid;
use ipld_dagpb::PbNode;

/// The node's links in wire order, or `None` if it is not a valid `PBNode`.
pub(super) fn links(data: &Bytes) -> Option<Vec<Cid>> {
    // A clone of `Bytes` is a reference count: `Data` is sliced from the blob, not copied.
    let node = PbNode::from_bytes(data.clone()).ok()?;
    Some(node.links.into_iter().map(|l| l.cid).collect())
}

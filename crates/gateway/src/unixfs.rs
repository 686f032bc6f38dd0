//! Just enough UnixFS to walk paths and pick the blocks of an entity or a byte range: the
//! dag-pb framing is `ipld-dagpb`'s; the UnixFS `Data` message and the HAMT slot hash are
//! `seedbank-files`' (one decoder for the whole workspace).
//!
//! Decoding never panics and never allocates more than the block holds.

use bytes::Bytes;
use cid::Cid;
use ipld_dagpb::{PbLink, PbNode};

/// Multicodec of dag-pb.
pub(crate) const DAG_PB: u64 = 0x70;
/// Multicodec of raw.
pub(crate) const RAW: u64 = 0x55;
/// Multicodec of dag-cbor.
pub(crate) const DAG_CBOR: u64 = 0x71;
/// Multicodec of murmur3-x64-64, the only HAMT hash the importers use.
const MURMUR3: u64 = 0x22;

pub(crate) use seedbank_files::{Data, DataType};

/// A decoded dag-pb node and its UnixFS data (`None` when `Data` is absent or not UnixFS).
pub(crate) struct PbUnixfs {
    pub links: Vec<PbLink>,
    pub data: Option<Data>,
}

/// What a block is, as far as UnixFS is concerned.
pub(crate) enum Node {
    /// A raw block: a file of its own bytes.
    Raw(Bytes),
    /// A dag-pb node.
    Pb(PbUnixfs),
    /// Any other codec (or dag-pb that does not decode).
    Other,
}

impl Node {
    /// Decodes `bytes` of the block `cid`.
    pub fn decode(cid: &Cid, bytes: &Bytes) -> Node {
        match cid.codec() {
            RAW => Node::Raw(bytes.clone()),
            DAG_PB => match PbNode::from_bytes(bytes.clone()) {
                Ok(node) => Node::Pb(PbUnixfs {
                    data: node.data.as_ref().and_then(|d| Data::decode(d).ok()),
                    links: node.links,
                }),
                Err(_) => Node::Other,
            },
            _ => Node::Other,
        }
    }

    /// The file's size if this is a UnixFS file (a raw block, or a dag-pb `File`/`Raw`).
    pub fn file_size(&self) -> Option<u64> {
        match self {
            Node::Raw(b) => Some(b.len() as u64),
            Node::Pb(PbUnixfs {
                data: Some(d),
                links,
            }) if matches!(d.kind, DataType::File | DataType::Raw) => {
                let children: u64 = d.blocksizes.iter().fold(0u64, |a, b| a.saturating_add(*b));
                let own = d.data.as_ref().map_or(0, |b| b.len() as u64);
                Some(d.filesize.unwrap_or_else(|| {
                    if links.is_empty() {
                        own
                    } else {
                        own.saturating_add(children)
                    }
                }))
            }
            _ => None,
        }
    }

    /// The UnixFS type of a dag-pb node.
    pub fn kind(&self) -> Option<DataType> {
        match self {
            Node::Pb(PbUnixfs { data: Some(d), .. }) => Some(d.kind),
            _ => None,
        }
    }
}

/// The number of hex digits of a HAMT slot prefix for `fanout` (2 for 256), or `None` for a
/// fanout that is not a power of two between 2 and 2^16 or a hash other than murmur3.
pub(crate) fn shard_width(data: &Data) -> Option<usize> {
    if data.hash_type != Some(MURMUR3) {
        return None;
    }
    let fanout = data.fanout?;
    if !(2..=65536).contains(&fanout) || !fanout.is_power_of_two() {
        return None;
    }
    Some(format!("{:X}", fanout - 1).len())
}

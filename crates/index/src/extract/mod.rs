//! Link extraction, run at staging time on the caller's task (never on the writer lane).
//!
//! Each codec gives the CIDs a block links to, in the order they appear in its bytes. A block
//! its codec cannot decode is still valid content: it is stored, flagged not indexable, and
//! has no links.

mod dagcbor;
mod dagpb;

use bytes::Bytes;
use cid::Cid;
use seedbank_blobstore::codec;

/// What link extraction found in one block.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Extracted {
    /// CIDs the block links to, in the order they appear in its bytes (duplicates kept).
    pub links: Vec<Cid>,
    /// False when the codec is unknown or the bytes do not decode under it; `links` is then
    /// empty.
    pub indexable: bool,
}

impl Extracted {
    fn leaf() -> Self {
        Extracted {
            links: Vec::new(),
            indexable: true,
        }
    }

    fn malformed() -> Self {
        Extracted {
            links: Vec::new(),
            indexable: false,
        }
    }
}

/// Extracts the links of a block with multicodec `codec`.
///
/// Raw blocks have no links. DAG-CBOR is read with `serde_ipld_dagcbor` (tag-42 CIDs,
/// trailing bytes rejected); DAG-PB with `ipld-dagpb` (the `Hash` of every `PBLink`).
/// Other codecs are not indexable.
pub fn extract_links(codec: u64, data: &Bytes) -> Extracted {
    let links = match codec {
        codec::RAW => return Extracted::leaf(),
        codec::DAG_CBOR => dagcbor::links(data),
        codec::DAG_PB => dagpb::links(data),
        _ => None,
    };
    match links {
        Some(links) => Extracted {
            links,
            indexable: true,
        },
        None => Extracted::malformed(),
    }
}

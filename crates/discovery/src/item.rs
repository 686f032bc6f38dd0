//! Reconciliation item ids: 32 bytes per blob, the same on every peer.

use std::fmt;

use cid::Cid;

/// The 32-byte id a blob has in set reconciliation: BLAKE3 of its CIDv1 bytes.
///
/// CIDv0 and CIDv1 of one DAG-PB block map to the same id, as they are one blob in the
/// store (which keys blobs by multihash and codec). A CID is longer than 32 bytes, so an id
/// cannot be turned back into a CID: the side that owns the blob maps it back (see
/// [`Haves::cid_of`](crate::Haves::cid_of)).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ItemId(pub [u8; 32]);

impl ItemId {
    /// The id of `cid`.
    pub fn of(cid: &Cid) -> Self {
        let v1 = Cid::new_v1(cid.codec(), *cid.hash());
        ItemId(*blake3::hash(&v1.to_bytes()).as_bytes())
    }

    pub(crate) fn to_negentropy(self) -> negentropy::Id {
        negentropy::Id::from_byte_array(self.0)
    }

    pub(crate) fn from_negentropy(id: &negentropy::Id) -> Self {
        ItemId(id.to_bytes())
    }
}

impl fmt::Debug for ItemId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0[..6] {
            write!(f, "{b:02x}")?;
        }
        f.write_str("…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use seedbank_blobstore::{codec, Blob};

    #[test]
    fn cidv0_and_cidv1_of_one_block_share_an_id() {
        let mh = cid::multihash::Multihash::<64>::wrap(0x12, &[7u8; 32]).unwrap();
        let v0 = Cid::new_v0(mh).unwrap();
        let v1 = Cid::new_v1(codec::DAG_PB, mh);
        assert_eq!(ItemId::of(&v0), ItemId::of(&v1));
        let raw = Cid::new_v1(codec::RAW, mh);
        assert_ne!(ItemId::of(&raw), ItemId::of(&v1));
        let a = Blob::new(codec::RAW, &b"a"[..]);
        assert_eq!(ItemId::of(a.cid()), ItemId::of(a.cid()));
    }
}

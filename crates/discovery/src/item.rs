//! Reconciliation item ids: 32 bytes per blob, the same on every peer.

use std::fmt;

use cid::Cid;

/// The 32-byte id a blob has in set reconciliation: BLAKE3 of its multihash bytes.
///
/// The id names the bytes, not the codec or the CID version: CIDv0 and CIDv1 of one block,
/// and the same bytes under two codecs, share an id, so bytes a node holds under any codec
/// are never fetched again (the store keeps bytes once per multihash; discovery gives a
/// wanted CID its row from the local bytes). A CID is longer than 32 bytes, so an id cannot
/// be turned back into a CID: the side that owns the blob maps it back (see
/// [`Haves::cid_of`](crate::Haves::cid_of)).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ItemId(pub [u8; 32]);

impl ItemId {
    /// The id of `cid`.
    pub fn of(cid: &Cid) -> Self {
        ItemId(*blake3::hash(&cid.hash().to_bytes()).as_bytes())
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
    fn an_id_names_the_bytes_whatever_the_codec_or_version() {
        let mh = cid::multihash::Multihash::<64>::wrap(0x12, &[7u8; 32]).unwrap();
        let v0 = Cid::new_v0(mh).unwrap();
        let v1 = Cid::new_v1(codec::DAG_PB, mh);
        let raw = Cid::new_v1(codec::RAW, mh);
        assert_eq!(ItemId::of(&v0), ItemId::of(&v1));
        assert_eq!(ItemId::of(&raw), ItemId::of(&v1), "same bytes, same id");
        let (a, b) = (
            Blob::new(codec::RAW, &b"a"[..]),
            Blob::new(codec::RAW, &b"b"[..]),
        );
        assert_ne!(
            ItemId::of(a.cid()),
            ItemId::of(b.cid()),
            "other bytes, other id"
        );
        let other_hash = cid::multihash::Multihash::<64>::wrap(0x1e, &[7u8; 32]).unwrap();
        assert_ne!(
            ItemId::of(&Cid::new_v1(codec::RAW, other_hash)),
            ItemId::of(&raw)
        );
    }
}

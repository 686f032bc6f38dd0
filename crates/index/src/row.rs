//! How a CID is stored in a row: its multihash bytes, codec and CID version.
//!
//! The blob store keys blobs by `(multihash, codec)`, so CIDv0 and CIDv1 of the same DAG-PB
//! block are one blob. The version is kept beside the key only to hand back the CID exactly
//! as it was written (UnixFS links are usually CIDv0).

use cid::{Cid, Version};
use seedbank_blobstore::cid::{cid_from_parts, multihash_key};

use crate::error::{Error, Result};

/// A CID split into the columns that store it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct CidRow {
    /// `cid.hash().to_bytes()`, the blob store's key.
    pub mh: Vec<u8>,
    /// The multicodec, as SQLite's signed integer.
    pub codec: i64,
    /// 0 or 1.
    pub version: i64,
}

impl CidRow {
    pub fn of(cid: &Cid) -> Self {
        CidRow {
            mh: multihash_key(cid),
            codec: cid.codec() as i64,
            version: match cid.version() {
                Version::V0 => 0,
                Version::V1 => 1,
            },
        }
    }
}

/// Multihash code of the identity "hash".
const IDENTITY: u64 = 0x00;

/// True for identity CIDs, whose bytes are their digest.
pub(crate) fn is_identity(cid: &Cid) -> bool {
    cid.hash().code() == IDENTITY
}

/// The backlink key of a CID: the first 8 bytes of its digest (zero-padded), big-endian.
/// Digests of real hashes are uniform, so collisions are rare; identity digests may collide
/// more, which costs a row comparison, never a wrong answer.
pub(crate) fn target_key(cid: &Cid) -> i64 {
    digest_key(cid.hash().digest())
}

/// [`target_key`] from a stored multihash key (0 if it does not parse, which only costs
/// row comparisons).
pub(crate) fn target_key_of_mh(mh: &[u8]) -> i64 {
    match cid::multihash::Multihash::<64>::from_bytes(mh) {
        Ok(h) => digest_key(h.digest()),
        Err(_) => 0,
    }
}

fn digest_key(digest: &[u8]) -> i64 {
    let mut prefix = [0u8; 8];
    let n = digest.len().min(8);
    prefix[..n].copy_from_slice(&digest[..n]);
    i64::from_be_bytes(prefix)
}

/// Rebuilds a CID from its columns.
///
/// # Errors
/// [`Error::Storage`] if the row does not hold a valid CID (the table was tampered with).
pub(crate) fn cid_from_row(mh: &[u8], codec: i64, version: i64) -> Result<Cid> {
    cid_from_parts(version, codec as u64, mh).ok_or_else(|| {
        Error::bad_row(
            "decode stored CID",
            format!("not a valid CID: version {version}, codec {codec:#x}"),
        )
    })
}

/// Reads `(mh, codec, version)` from columns `at`, `at + 1`, `at + 2` of a row.
pub(crate) fn cid_at(
    row: &seedbank_blobstore::rusqlite::Row<'_>,
    at: usize,
) -> seedbank_blobstore::rusqlite::Result<(Vec<u8>, i64, i64)> {
    Ok((row.get(at)?, row.get(at + 1)?, row.get(at + 2)?))
}

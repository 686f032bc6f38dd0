//! Repair: blobs whose bytes no longer hash to their CID are removed, with their index rows,
//! so they read as missing (`has` is false, `missing(root)` lists them, discovery never
//! advertises them) and a correct re-put or a discovery refetch stores them again.

use seedbank_blobstore::cid::cid_from_parts;
use seedbank_blobstore::{Priority, PutOptions, Store};

use crate::access;
use crate::delete::{delete_keys, Freed};
use crate::error::Result;
use crate::pin::Key;

/// What [`Index::repair`](crate::Index::repair) found and removed.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct RepairReport {
    /// Distinct blobs (multihashes) re-hashed.
    pub blobs_checked: u64,
    /// CIDs removed because their bytes did not hash to them, as strings.
    pub removed: Vec<String>,
    /// Bytes removed.
    pub bytes_freed: u64,
}

/// Re-hashes every stored blob on the data pool, then removes the corrupt ones that still
/// hold the bytes found corrupt, with their index rows, in one lane transaction.
pub(crate) async fn run(store: &Store) -> Result<RepairReport> {
    let found = store.verify_blobs().await?;
    let mut report = RepairReport {
        blobs_checked: found.blobs_checked,
        ..Default::default()
    };
    if found.corrupt.is_empty() {
        return Ok(report);
    }
    let corrupt = found.corrupt;
    let opts = PutOptions::new(Priority::Normal, "repair");
    let (freed, removed) = access::write_deleting(store, opts, move |d| {
        let mut keys: Vec<Key> = Vec::new();
        for c in corrupt {
            // Deleted and stored again since the scan: not the bytes we checked.
            if c.is_current(d.conn())? {
                let mh = c.multihash_key();
                keys.extend(c.codecs().iter().map(|codec| (mh.to_vec(), *codec)));
            }
        }
        let freed: Freed = delete_keys(d, &keys)?;
        Ok((freed, keys))
    })
    .await?;
    report.bytes_freed = freed.bytes;
    report.removed = removed
        .iter()
        .filter_map(|(mh, codec)| cid_from_parts(1, *codec as u64, mh))
        .map(|c| c.to_string())
        .collect();
    Ok(report)
}

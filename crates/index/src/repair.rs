//! Repair: blobs whose bytes no longer hash to their CID are removed, with their index rows,
//! so they read as missing (`has` is false, `missing(root)` lists them, discovery never
//! advertises them) and a correct re-put or a discovery refetch stores them again.

use seedbank_blobstore::cid::{cid_from_parts, verify};
use seedbank_blobstore::rusqlite::Connection;
use seedbank_blobstore::{PoolKind, Priority, PutOptions};

use crate::delete::{delete_keys, Freed};
use crate::error::{Result, SqlContext};
use crate::pin::Key;
use crate::Index;

/// What [`Index::repair`] found and removed.
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

/// One corrupt multihash: its bytes' row id (so the lane deletes only what was checked) and
/// every CID key stored under it.
struct Corrupt {
    data_id: i64,
    keys: Vec<Key>,
}

/// Re-hashes every stored blob (in one read snapshot) and lists the corrupt ones.
fn scan(conn: &Connection) -> Result<(u64, Vec<Corrupt>)> {
    let tx = conn.unchecked_transaction().during("begin repair scan")?;
    let (mut checked, mut corrupt) = (0u64, Vec::new());
    {
        let mut stmt = tx
            .prepare("SELECT id, mh, data FROM blob_data")
            .during("prepare repair scan")?;
        let mut rows = stmt.query([]).during("repair scan")?;
        while let Some(r) = rows.next().during("repair scan")? {
            checked += 1;
            let id: i64 = r.get(0).during("data id")?;
            let mh: Vec<u8> = r.get(1).during("multihash")?;
            let data = r.get_ref(2).during("data")?.as_blob().unwrap_or_default();
            let ok = cid_from_parts(1, seedbank_blobstore::codec::RAW, &mh)
                .is_some_and(|cid| verify(&cid, data).is_ok());
            if !ok {
                corrupt.push((id, mh));
            }
        }
    }
    let mut out = Vec::new();
    for (data_id, mh) in corrupt {
        let codecs: Vec<i64> = tx
            .prepare_cached("SELECT codec FROM blobs WHERE mh = ?1")
            .during("prepare corrupt codecs")?
            .query_map([&mh], |r| r.get(0))
            .during("corrupt codecs")?
            .collect::<Result<_, _>>()
            .during("corrupt codec")?;
        let keys = codecs.into_iter().map(|c| (mh.clone(), c)).collect();
        out.push(Corrupt { data_id, keys });
    }
    tx.finish().during("end repair scan")?;
    Ok((checked, out))
}

impl Index {
    /// Re-hashes every stored blob and removes those whose bytes no longer hash to their CID
    /// (bytes, metadata, links, attributes and scope memberships, in one lane transaction,
    /// pins notwithstanding: corrupt bytes protect nothing). They then read as missing, and
    /// a re-put of the correct bytes stores them again. The hashing runs on the data pool; the
    /// lane only deletes, and only bytes that are still the ones found corrupt.
    ///
    /// # Errors
    /// [`Error::Blobstore`](crate::Error::Blobstore) if the store is closed or read-only,
    /// [`Error::Storage`](crate::Error::Storage).
    pub async fn repair(&self) -> Result<RepairReport> {
        let (checked, corrupt) = self.read(PoolKind::Data, scan).await?;
        let mut report = RepairReport {
            blobs_checked: checked,
            ..Default::default()
        };
        if corrupt.is_empty() {
            return Ok(report);
        }
        let opts = PutOptions::new(Priority::Normal, "repair");
        let (freed, removed) = self
            .write(opts, move |conn| {
                let mut keys = Vec::new();
                for c in corrupt {
                    // Deleted and stored again since the scan: not the bytes we checked.
                    let same = conn
                        .prepare_cached("SELECT 1 FROM blob_data WHERE id = ?1 AND mh = ?2")
                        .during("prepare recheck corrupt")?
                        .exists((
                            c.data_id,
                            &c.keys.first().map(|k| k.0.clone()).unwrap_or_default(),
                        ))
                        .during("recheck corrupt")?;
                    if same {
                        keys.extend(c.keys);
                    }
                }
                let freed: Freed = delete_keys(conn, &keys)?;
                Ok((freed, keys))
            })
            .await?;
        self.store().record_freed(freed.blobs, freed.bytes);
        report.bytes_freed = freed.bytes;
        report.removed = removed
            .iter()
            .filter_map(|(mh, codec)| cid_from_parts(1, *codec as u64, mh))
            .map(|c| c.to_string())
            .collect();
        Ok(report)
    }
}

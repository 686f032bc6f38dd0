//! Row helpers for code that already holds a connection of the store: inside a lane write
//! (a [`Store::write`](crate::Store::write) closure, a [`StagedOp`](crate::StagedOp)) or a
//! read snapshot (a [`Store::read`](crate::Store::read) / [`Store::scan`](crate::Store::scan)
//! closure). The blob store owns its tables: sibling crates read and change stored blobs only
//! through these functions and the [`Store`](crate::Store) methods built on them, never with
//! SQL of their own. The one exception is a JOIN of a sibling's own table on stored CIDs,
//! which names the metadata table through [`META_TABLE`].
//!
//! Everything here returns verified bytes only: stored bytes that do not hash to their CID
//! are an error ([`Error::Corrupt`]), never data.

use bytes::Bytes;
use cid::Cid;
use rusqlite::{Connection, OptionalExtension};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::cid::{check_supported, cid_from_parts, multihash_key, verify, Blob};
use crate::error::{Error, Result, SqlContext};

/// Metadata of a stored blob, served without reading its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobInfo {
    /// The CID asked for.
    pub cid: Cid,
    /// Size of the blob in bytes.
    pub size: u64,
    /// The CID's codec.
    pub codec: u64,
    /// When this CID was first stored.
    pub inserted_at: SystemTime,
}

/// The metadata table: one row per stored CID, primary key `(mh, codec)`, with columns
/// `mh` (the multihash bytes, [`multihash_key`]), `codec`, `size` and `inserted_at` (unix
/// ms). Named here for sibling crates that JOIN their own rows on stored CIDs (the index's
/// block-links and info reads); those columns are the ones such a JOIN may use, and a test
/// of this crate pins them.
pub const META_TABLE: &str = "blobs";

/// Reads the stored bytes of `cid`, verified against it.
///
/// # Errors
/// [`Error::Corrupt`] if the stored bytes do not hash to `cid`, [`Error::UnsupportedHash`] /
/// [`Error::BadDigestLength`] for a CID the store cannot verify, [`Error::Storage`].
pub fn get(conn: &Connection, cid: &Cid) -> Result<Option<Bytes>> {
    check_supported(cid)?;
    let data: Option<Vec<u8>> = conn
        .prepare_cached(
            "SELECT d.data FROM blobs b JOIN blob_data d ON d.id = b.data_id
             WHERE b.mh = ?1 AND b.codec = ?2",
        )
        .during("prepare get")?
        .query_row((multihash_key(cid), cid.codec() as i64), |r| r.get(0))
        .optional()
        .during("get")?;
    match data {
        None => Ok(None),
        Some(data) => match verify(cid, &data) {
            Ok(()) => Ok(Some(Bytes::from(data))),
            Err(_) => Err(Error::Corrupt { cid: *cid }),
        },
    }
}

/// The bytes of `cid`'s multihash stored under any codec (the store keeps bytes once per
/// multihash), as a blob addressed by `cid` itself: what lets a CID stored under one codec
/// be stored under another without fetching its bytes again.
///
/// # Errors
/// As [`get`].
pub fn get_any_codec(conn: &Connection, cid: &Cid) -> Result<Option<Blob>> {
    check_supported(cid)?;
    let data: Option<Vec<u8>> = conn
        .prepare_cached(
            "SELECT d.data FROM blobs b JOIN blob_data d ON d.id = b.data_id
             WHERE b.mh = ?1 LIMIT 1",
        )
        .during("prepare get by multihash")?
        .query_row([multihash_key(cid)], |r| r.get(0))
        .optional()
        .during("get by multihash")?;
    match data {
        None => Ok(None),
        Some(data) => Blob::with_cid(*cid, data)
            .map(Some)
            .map_err(|_| Error::Corrupt { cid: *cid }),
    }
}

/// Metadata of a stored CID, without its bytes (what [`Store::info`](crate::Store::info)
/// reads).
///
/// # Errors
/// [`Error::Storage`].
pub fn info(conn: &Connection, cid: &Cid) -> Result<Option<BlobInfo>> {
    conn.prepare_cached(crate::schema::sql::INFO)
        .during("prepare info")?
        .query_row((multihash_key(cid), cid.codec() as i64), |r| {
            let size: i64 = r.get(0)?;
            let at: i64 = r.get(1)?;
            Ok(BlobInfo {
                cid: *cid,
                size: size.max(0) as u64,
                codec: cid.codec(),
                inserted_at: UNIX_EPOCH + Duration::from_millis(at.max(0) as u64),
            })
        })
        .optional()
        .during("info")
}

/// True if `cid` is stored.
///
/// # Errors
/// [`Error::Storage`].
pub fn has(conn: &Connection, cid: &Cid) -> Result<bool> {
    conn.prepare_cached("SELECT 1 FROM blobs WHERE mh = ?1 AND codec = ?2")
        .during("prepare has")?
        .exists((multihash_key(cid), cid.codec() as i64))
        .during("has")
}

/// One stored CID as [`for_each_stored`] lists it: its row key and size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredRow {
    /// The multihash bytes ([`multihash_key`]).
    pub mh: Vec<u8>,
    /// The CID's codec, as stored.
    pub codec: i64,
    /// Size of the blob in bytes.
    pub size: u64,
}

/// Calls `f` with every stored CID's key and size, in key order, on `conn`'s snapshot (run
/// it in a read transaction to see one snapshot). Metadata only: no bytes are read.
///
/// # Errors
/// [`Error::Storage`] (converted into `E`), or the first error `f` returns (the scan stops).
pub fn for_each_stored<E: From<Error>>(
    conn: &Connection,
    mut f: impl FnMut(StoredRow) -> Result<(), E>,
) -> Result<(), E> {
    let mut stmt = conn
        .prepare("SELECT mh, codec, size FROM blobs")
        .during("prepare stored scan")?;
    let mut rows = stmt.query([]).during("stored scan")?;
    while let Some(r) = rows.next().during("stored scan")? {
        let size: i64 = r.get(2).during("stored size")?;
        f(StoredRow {
            mh: r.get(0).during("stored multihash")?,
            codec: r.get(1).during("stored codec")?,
            size: size.max(0) as u64,
        })?;
    }
    Ok(())
}

/// Bytes of one multihash that do not hash to it, found by a verify scan
/// ([`Store::verify`](crate::Store::verify), [`Store::verify_blobs`](crate::Store::verify_blobs)).
/// It remembers which stored bytes it checked, so a repair deletes only those
/// ([`CorruptBlob::is_current`]), never bytes stored again since.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CorruptBlob {
    data_id: i64,
    mh: Vec<u8>,
    codecs: Vec<i64>,
    problem: String,
}

impl CorruptBlob {
    /// The multihash bytes ([`multihash_key`]) the bytes are stored under.
    pub fn multihash_key(&self) -> &[u8] {
        &self.mh
    }

    /// The codecs of the CIDs stored with these bytes (empty for bytes no CID refers to).
    pub fn codecs(&self) -> &[i64] {
        &self.codecs
    }

    /// The CIDs (v1) stored with these bytes.
    pub fn cids(&self) -> Vec<Cid> {
        self.codecs
            .iter()
            .filter_map(|c| cid_from_parts(1, *c as u64, &self.mh))
            .collect()
    }

    /// What is wrong, as one line (`blob CID: ...` or `unparseable multihash ...`).
    pub fn problem(&self) -> &str {
        &self.problem
    }

    /// True if the bytes found corrupt are still the ones stored (nothing deleted and
    /// stored them again since the scan). Run it inside the lane write that removes them.
    ///
    /// # Errors
    /// [`Error::Storage`].
    pub fn is_current(&self, conn: &Connection) -> Result<bool> {
        conn.prepare_cached("SELECT 1 FROM blob_data WHERE id = ?1 AND mh = ?2")
            .during("prepare recheck corrupt")?
            .exists((self.data_id, &self.mh))
            .during("recheck corrupt")
    }
}

/// What a scan of every stored blob's bytes found.
#[derive(Debug, Default)]
pub(crate) struct Rehashed {
    /// Distinct blobs (multihashes) re-hashed.
    pub checked: u64,
    /// The ones whose bytes do not hash to their multihash.
    pub corrupt: Vec<CorruptBlob>,
}

/// Re-hashes the bytes of every multihash, on a read transaction the caller holds, and
/// lists the corrupt ones with the codecs stored under each.
pub(crate) fn rehash_in(tx: &Connection) -> Result<Rehashed> {
    let mut found = Rehashed::default();
    {
        let mut stmt = tx
            .prepare("SELECT id, mh, data FROM blob_data")
            .during("prepare verify")?;
        let mut rows = stmt.query([]).during("scan blobs")?;
        while let Some(row) = rows.next().during("scan blobs")? {
            let data_id: i64 = row.get(0).during("read data id")?;
            let mh: Vec<u8> = row.get(1).during("read multihash")?;
            let data = row
                .get_ref(2)
                .during("read data")?
                .as_blob()
                .unwrap_or_default();
            found.checked += 1;
            let problem = match cid_from_parts(1, crate::codec::RAW, &mh) {
                None => format!("unparseable multihash {}", hex(&mh)),
                Some(cid) => match verify(&cid, data) {
                    Ok(()) => continue,
                    Err(e) => format!("blob {cid}: {e}"),
                },
            };
            found.corrupt.push(CorruptBlob {
                data_id,
                mh,
                codecs: Vec::new(),
                problem,
            });
        }
    }
    for c in &mut found.corrupt {
        c.codecs = tx
            .prepare_cached("SELECT codec FROM blobs WHERE mh = ?1")
            .during("prepare corrupt codecs")?
            .query_map([&c.mh], |r| r.get(0))
            .during("corrupt codecs")?
            .collect::<rusqlite::Result<_>>()
            .during("corrupt codec")?;
    }
    Ok(found)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

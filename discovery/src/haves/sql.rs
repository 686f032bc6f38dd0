//! Reads on the index's tables, run on the store's data pool.
//!
//! The index has no DAG walk that reports depths and unindexed leaves, so DAG haves builds
//! read its `blob_index` and `links` tables (and the store's `blobs`) directly. Everything
//! here is read-only.

use cid::Cid;
use seedbank_blobstore::rusqlite::{self, Connection, OptionalExtension};
use seedbank_blobstore::{AppError, PoolKind, Store};

use crate::error::{Error, Result};

type Multihash = cid::multihash::Multihash<64>;

/// Runs `f` on a data-pool connection, mapping errors back to this crate's.
pub(crate) async fn read_data<T, F>(store: &Store, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T> + Send + 'static,
{
    store
        .read(PoolKind::Data, move |conn| {
            f(conn).map_err(|e| Box::new(e) as AppError)
        })
        .await
        .map_err(unwrap_app)
}

/// An error of ours that crossed the store as an [`AppError`] comes back as itself.
fn unwrap_app(err: seedbank_blobstore::Error) -> Error {
    match err {
        seedbank_blobstore::Error::App(app) => match app.downcast::<Error>() {
            Ok(ours) => *ours,
            Err(other) => Error::from(seedbank_blobstore::Error::App(other)),
        },
        other => Error::from(other),
    }
}

/// Names the failing operation of a rusqlite call.
pub(crate) trait During<T> {
    fn during(self, op: &'static str) -> Result<T>;
}

impl<T> During<T> for rusqlite::Result<T> {
    fn during(self, op: &'static str) -> Result<T> {
        self.map_err(|e| {
            Error::from(seedbank_blobstore::Error::Storage {
                op,
                message: e.to_string(),
                busy: false,
            })
        })
    }
}

/// The key columns of a CID: multihash bytes and codec.
pub(crate) fn key_of(cid: &Cid) -> (Vec<u8>, i64) {
    (cid.hash().to_bytes(), cid.codec() as i64)
}

/// Rebuilds a CID from `(mh, codec, version)` columns.
pub(crate) fn cid_from_row(mh: &[u8], codec: i64, version: i64) -> Result<Cid> {
    let bad = |what: String| {
        Error::from(seedbank_blobstore::Error::Storage {
            op: "decode stored CID",
            message: what,
            busy: false,
        })
    };
    let mh = Multihash::from_bytes(mh).map_err(|e| bad(format!("bad multihash: {e}")))?;
    if version == 0 {
        Cid::new_v0(mh).map_err(|e| bad(format!("bad CIDv0: {e}")))
    } else {
        Ok(Cid::new_v1(codec as u64, mh))
    }
}

/// True if the blob is stored under exactly this `(multihash, codec)`.
pub(crate) fn is_stored(conn: &Connection, cid: &Cid) -> Result<bool> {
    conn.prepare_cached("SELECT 1 FROM blobs WHERE mh = ?1 AND codec = ?2")
        .during("prepare has")?
        .exists(key_of(cid))
        .during("has")
}

/// The links of an indexed blob in order; `None` if it was never indexed.
pub(crate) fn links_of(conn: &Connection, cid: &Cid) -> Result<Option<Vec<Cid>>> {
    let seq: Option<i64> = conn
        .prepare_cached("SELECT seq FROM blob_index WHERE mh = ?1 AND codec = ?2")
        .during("prepare find indexed blob")?
        .query_row(key_of(cid), |r| r.get(0))
        .optional()
        .during("find indexed blob")?;
    let Some(seq) = seq else {
        return Ok(None);
    };
    let mut stmt = conn
        .prepare_cached("SELECT mh, codec, version FROM links WHERE src = ?1 ORDER BY pos")
        .during("prepare links")?;
    let rows = stmt
        .query_map([seq], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .during("links")?;
    let mut out = Vec::new();
    for row in rows {
        let (mh, codec, version) = row.during("link row")?;
        out.push(cid_from_row(&mh, codec, version)?);
    }
    Ok(Some(out))
}

/// The DAG generation: the newest `blob_index.seq` (see `Index::dag_generation`).
pub(crate) fn dag_generation(conn: &Connection) -> Result<u64> {
    conn.prepare_cached("SELECT coalesce(max(seq), 0) FROM blob_index")
        .during("prepare dag generation")?
        .query_row([], |r| r.get::<_, i64>(0))
        .during("dag generation")
        .map(|g| g as u64)
}

/// CIDs (as `(mh, codec)` rebuilt into CIDv1) indexed after DAG generation `after`, or
/// `None` if there are more than `cap` of them.
pub(crate) fn indexed_since(conn: &Connection, after: u64, cap: usize) -> Result<Option<Vec<Cid>>> {
    let mut stmt = conn
        .prepare_cached("SELECT mh, codec FROM blob_index WHERE seq > ?1 ORDER BY seq")
        .during("prepare indexed since")?;
    let mut rows = stmt.query([after as i64]).during("indexed since")?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().during("indexed since row")? {
        if out.len() >= cap {
            return Ok(None);
        }
        let mh: Vec<u8> = row.get(0).during("indexed since mh")?;
        let codec: i64 = row.get(1).during("indexed since codec")?;
        out.push(cid_from_row(&mh, codec, 1)?);
    }
    Ok(Some(out))
}

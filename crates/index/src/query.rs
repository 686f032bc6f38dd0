//! Point queries: links, backlinks, metadata-only info, attributes.

use std::sync::LazyLock;
use std::time::{Duration, UNIX_EPOCH};

use cid::Cid;
use seedbank_blobstore::rows::META_TABLE;
use seedbank_blobstore::rusqlite::{Connection, OptionalExtension, Params};
use seedbank_blobstore::{BlobInfo, PoolKind, Store};

use crate::access;
use crate::error::{Result, SqlContext};
use crate::row::{cid_at, cid_from_row, target_key, CidRow};

/// A blob's metadata with its index facts, served without reading its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexedInfo {
    /// Size, codec and insertion time from the blob store.
    pub blob: BlobInfo,
    /// How many links the blob has (duplicates counted; 0 when not indexable).
    pub links: u64,
    /// False when the blob's codec is unknown or its bytes do not decode under it (the blob
    /// is stored all the same), or when it was never indexed.
    pub indexable: bool,
    /// False when the blob was written without the index (e.g. by a plain
    /// [`Store::put`](seedbank_blobstore::Store::put)); its links are then unknown.
    pub indexed: bool,
}

/// Runs a query whose rows start with `(mh, codec, version)` and rebuilds the CIDs.
pub(crate) fn query_cids<P: Params>(
    conn: &Connection,
    sql: &'static str,
    params: P,
) -> Result<Vec<Cid>> {
    let mut stmt = conn.prepare_cached(sql).during("prepare CID query")?;
    let rows = stmt
        .query_map(params, |r| cid_at(r, 0))
        .during("CID query")?;
    let mut out = Vec::new();
    for row in rows {
        let (mh, codec, version) = row.during("CID row")?;
        out.push(cid_from_row(&mh, codec, version)?);
    }
    Ok(out)
}

/// The links of an indexed blob in order, or `None` if it was never indexed.
fn links_of(conn: &Connection, cid: &Cid) -> Result<Option<Vec<Cid>>> {
    let Some(src) = crate::tables::seq_of(conn, &CidRow::of(cid))? else {
        return Ok(None);
    };
    let sql = "SELECT mh, codec, version FROM links WHERE src = ?1 ORDER BY pos";
    query_cids(conn, sql, [src]).map(Some)
}

/// A stored blob's metadata with its index row, in one statement: a JOIN on the blob
/// store's metadata table, named by it.
static INFO_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT b.size, b.inserted_at, i.links, i.indexable FROM {META_TABLE} b
         LEFT JOIN blob_index i ON i.mh = b.mh AND i.codec = b.codec
         WHERE b.mh = ?1 AND b.codec = ?2"
    )
});

fn info_of(conn: &Connection, cid: Cid) -> Result<Option<IndexedInfo>> {
    let b = CidRow::of(&cid);
    conn.prepare_cached(&INFO_SQL)
        .during("prepare info")?
        .query_row((&b.mh, b.codec), |r| {
            let links: Option<i64> = r.get(2)?;
            let indexable: Option<bool> = r.get(3)?;
            Ok(IndexedInfo {
                blob: BlobInfo {
                    cid,
                    size: r.get::<_, i64>(0)? as u64,
                    codec: cid.codec(),
                    inserted_at: UNIX_EPOCH
                        + Duration::from_millis(r.get::<_, i64>(1)?.max(0) as u64),
                },
                links: links.unwrap_or(0) as u64,
                indexable: indexable.unwrap_or(false),
                indexed: links.is_some(),
            })
        })
        .optional()
        .during("info")
}

/// The indexed blobs that link to `cid`, each once, oldest first.
fn backlinks_of(conn: &Connection, cid: &Cid) -> Result<Vec<Cid>> {
    let (b, tkey) = (CidRow::of(cid), target_key(cid));
    let sql = "SELECT i.mh, i.codec, i.version FROM blob_index i
               WHERE i.seq IN
                 (SELECT src FROM links WHERE tkey = ?1 AND mh = ?2 AND codec = ?3)
               ORDER BY i.seq";
    query_cids(conn, sql, (tkey, &b.mh, b.codec))
}

/// The attributes of `cid`, by key.
fn attributes_of(conn: &Connection, cid: &Cid) -> Result<Vec<(String, String)>> {
    let b = CidRow::of(cid);
    let mut stmt = conn
        .prepare_cached(
            "SELECT a.key, a.value FROM attributes a
             JOIN blob_index i ON i.seq = a.src
             WHERE i.mh = ?1 AND i.codec = ?2 ORDER BY a.key",
        )
        .during("prepare attributes")?;
    let rows = stmt
        .query_map((&b.mh, b.codec), |r| Ok((r.get(0)?, r.get(1)?)))
        .during("attributes")?;
    rows.collect::<Result<Vec<_>, _>>().during("attribute row")
}

/// Blobs whose attribute `key` equals `value`, oldest first.
fn with_attribute(conn: &Connection, key: &str, value: &str) -> Result<Vec<Cid>> {
    let sql = "SELECT i.mh, i.codec, i.version FROM attributes a
               JOIN blob_index i ON i.seq = a.src
               WHERE a.key = ?1 AND a.value = ?2 ORDER BY i.seq";
    query_cids(conn, sql, (key, value))
}

// ---- The queries of `Index`, each one hop to a read pool.

/// [`Index::links`](crate::Index::links), on the data pool.
pub(crate) async fn links(store: &Store, cid: &Cid) -> Result<Option<Vec<Cid>>> {
    let cid = *cid;
    access::read(store, PoolKind::Data, move |c| links_of(c, &cid)).await
}

/// [`Index::backlinks`](crate::Index::backlinks), on the data pool.
pub(crate) async fn backlinks(store: &Store, cid: &Cid) -> Result<Vec<Cid>> {
    let cid = *cid;
    access::read(store, PoolKind::Data, move |c| backlinks_of(c, &cid)).await
}

/// [`Index::info`](crate::Index::info), on the metadata-only `info` pool.
pub(crate) async fn info(store: &Store, cid: &Cid) -> Result<Option<IndexedInfo>> {
    let cid = *cid;
    access::read(store, PoolKind::Info, move |c| info_of(c, cid)).await
}

/// [`Index::attributes`](crate::Index::attributes), on the `info` pool.
pub(crate) async fn attributes(store: &Store, cid: &Cid) -> Result<Vec<(String, String)>> {
    let cid = *cid;
    access::read(store, PoolKind::Info, move |c| attributes_of(c, &cid)).await
}

/// [`Index::find_by_attribute`](crate::Index::find_by_attribute), on the data pool.
pub(crate) async fn find_by_attribute(store: &Store, key: &str, value: &str) -> Result<Vec<Cid>> {
    let (key, value) = (key.to_string(), value.to_string());
    access::read(store, PoolKind::Data, move |c| {
        with_attribute(c, &key, &value)
    })
    .await
}

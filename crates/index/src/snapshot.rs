//! One read snapshot of the DAG tables, for callers that walk a DAG their own way (discovery
//! resumes its haves walks from the blocks that changed).
//!
//! [`Index::read_dag`](crate::Index::read_dag) runs a closure on one data-pool connection inside one read
//! transaction: every lookup it makes sees the same committed state, and a walk of any size
//! costs one pool hop. Lookups run cached prepared statements, one statement per block.
//!
//! *Present* has the meaning of the DAG walks (`dag`): stored under the exact CID key
//! `(multihash, codec)`. Identity CIDs are always present, with the links decoded from their
//! digest.

use std::sync::LazyLock;

use bytes::Bytes;
use cid::Cid;
use seedbank_blobstore::rows::META_TABLE;
use seedbank_blobstore::rusqlite::Connection;
use seedbank_blobstore::{PoolKind, Store};

use crate::access;
use crate::error::{Result, SqlContext};
use crate::extract::extract_links;
use crate::row::is_identity;
use crate::row::{cid_at, cid_from_row, CidRow};

/// A block's presence, index row and links in one statement: a JOIN on the blob store's
/// metadata table, named by it.
static BLOCK_LINKS_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT i.seq, l.mh, l.codec, l.version FROM {META_TABLE} b
         LEFT JOIN blob_index i ON i.mh = b.mh AND i.codec = b.codec
         LEFT JOIN links l ON l.src = i.seq
         WHERE b.mh = ?1 AND b.codec = ?2
         ORDER BY l.pos"
    )
});

/// Whether a block is stored, and whether its links are known.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Presence {
    /// Stored and indexed, or an identity CID: its links are known.
    Indexed,
    /// Stored without the index (e.g. by a plain
    /// [`Store::put`](seedbank_blobstore::Store::put)): its links are unknown until it is
    /// indexed, so walks treat it as a leaf.
    Unindexed,
    /// Not stored.
    Missing,
}

/// One block's presence and links, as [`DagSnapshot::links_many`] reports them.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BlockLinks {
    /// Whether the block is stored and indexed.
    pub presence: Presence,
    /// The block's links in the order they appear in its bytes (duplicates kept); empty
    /// unless `presence` is [`Presence::Indexed`].
    pub links: Vec<Cid>,
}

/// A read transaction on the DAG tables, lent to the closure of [`Index::read_dag`](crate::Index::read_dag). Every
/// call sees the same snapshot.
///
/// ```
/// # use seedbank_blobstore::{codec, Blob, Config, Store};
/// # use seedbank_index::{Index, IndexConfig, Presence};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), seedbank_index::Error> {
/// # let dir = tempfile::tempdir().unwrap();
/// # let store = Store::open(dir.path().join("blobs.db"), Config::default())?;
/// let index = Index::open(store, IndexConfig::default()).await?;
/// let leaf = index.put(Blob::new(codec::RAW, &b"leaf"[..])).await?;
/// let (generation, found) = index
///     .read_dag(move |dag| Ok((dag.generation()?, dag.links_many(&[leaf])?)))
///     .await?;
/// assert_eq!(generation, 1);
/// assert_eq!(found[0].presence, Presence::Indexed);
/// # Ok(())
/// # }
/// ```
pub struct DagSnapshot<'c> {
    conn: &'c Connection,
}

impl std::fmt::Debug for DagSnapshot<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DagSnapshot").finish_non_exhaustive()
    }
}

impl<'c> DagSnapshot<'c> {
    /// Wraps a connection that is inside a read transaction.
    pub(crate) fn new(conn: &'c Connection) -> Self {
        DagSnapshot { conn }
    }

    /// The DAG generation of this snapshot (see [`Index::dag_generation`](crate::Index::dag_generation)).
    ///
    /// # Errors
    /// [`Error::Storage`](crate::Error::Storage) if the read failed.
    pub fn generation(&self) -> Result<u64> {
        generation_of(self.conn)
    }

    /// The blobs indexed after DAG generation `generation` and up to this snapshot's, oldest
    /// first; `None` when there are more than `cap` of them (the caller then rescans, which
    /// costs about as much as reading them), or when blobs were deleted since `generation`
    /// (what was present then may be gone: only a rescan is correct).
    ///
    /// # Errors
    /// [`Error::Storage`](crate::Error::Storage) if the read failed or a row does not hold a
    /// valid CID.
    pub fn indexed_after(&self, generation: u64, cap: usize) -> Result<Option<Vec<Cid>>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT mh, codec, version FROM blob_index WHERE seq > ?1 ORDER BY seq")
            .during("prepare indexed after")?;
        let mut rows = stmt
            .query([i64::try_from(generation).unwrap_or(i64::MAX)])
            .during("indexed after")?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().during("indexed after row")? {
            if out.len() >= cap {
                return Ok(None);
            }
            let (mh, codec, version) = cid_at(row, 0).during("indexed after row")?;
            if mh.is_empty() {
                return Ok(None); // The deletion marker moved past `generation`.
            }
            out.push(cid_from_row(&mh, codec, version)?);
        }
        Ok(Some(out))
    }

    /// The presence and links of each of `cids`, in input order.
    ///
    /// # Errors
    /// [`Error::Storage`](crate::Error::Storage) if a read failed or a link row does not
    /// hold a valid CID.
    pub fn links_many(&self, cids: &[Cid]) -> Result<Vec<BlockLinks>> {
        cids.iter().map(|cid| self.block(cid)).collect()
    }

    /// The presence and links of one block: one statement, which finds the stored blob, its
    /// index row and its links together.
    pub(crate) fn block(&self, cid: &Cid) -> Result<BlockLinks> {
        if is_identity(cid) {
            let digest = Bytes::copy_from_slice(cid.hash().digest());
            return Ok(BlockLinks {
                presence: Presence::Indexed,
                links: extract_links(cid.codec(), &digest).links,
            });
        }
        let b = CidRow::of(cid);
        let mut stmt = self
            .conn
            .prepare_cached(&BLOCK_LINKS_SQL)
            .during("prepare block links")?;
        let mut rows = stmt.query((&b.mh, b.codec)).during("block links")?;
        let mut found = BlockLinks {
            presence: Presence::Missing,
            links: Vec::new(),
        };
        while let Some(row) = rows.next().during("block links row")? {
            let seq: Option<i64> = row.get(0).during("block links seq")?;
            if seq.is_none() {
                found.presence = Presence::Unindexed;
                break;
            }
            found.presence = Presence::Indexed;
            // A blob without links joins one row of NULLs.
            let mh: Option<Vec<u8>> = row.get(1).during("block link mh")?;
            if let Some(mh) = mh {
                let codec: i64 = row.get(2).during("block link codec")?;
                let version: i64 = row.get(3).during("block link version")?;
                found.links.push(cid_from_row(&mh, codec, version)?);
            }
        }
        Ok(found)
    }
}

/// The DAG generation: the newest `blob_index.seq`, deletion marker included (it only
/// grows, see `schema`).
pub(crate) fn generation_of(conn: &Connection) -> Result<u64> {
    conn.prepare_cached("SELECT coalesce(max(seq), 0) FROM blob_index")
        .during("prepare dag generation")?
        .query_row([], |r| r.get::<_, i64>(0))
        .during("dag generation")
        .map(|g| g as u64)
}

/// Runs `f` on one read snapshot of the DAG tables: one transaction on `conn`.
fn in_snapshot<T>(conn: &Connection, f: impl FnOnce(&DagSnapshot<'_>) -> Result<T>) -> Result<T> {
    let tx = conn.unchecked_transaction().during("begin dag read")?;
    let out = f(&DagSnapshot::new(&tx))?;
    tx.finish().during("end dag read")?;
    Ok(out)
}

/// [`Index::read_dag`](crate::Index::read_dag): `f` on one snapshot, on the data pool.
pub(crate) async fn read_dag<T, F>(store: &Store, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(&DagSnapshot<'_>) -> Result<T> + Send + 'static,
{
    access::read(store, PoolKind::Data, move |conn| in_snapshot(conn, f)).await
}

/// [`Index::dag_generation`](crate::Index::dag_generation), on the `info` pool.
pub(crate) async fn dag_generation(store: &Store) -> Result<u64> {
    access::read(store, PoolKind::Info, generation_of).await
}

//! The staged op: the index rows of one blob, prepared on the caller's task and written by
//! the lane in the same transaction as the blob (a failure rolls back the whole batch).

use std::sync::Arc;

use seedbank_blobstore::rusqlite::Connection;
use seedbank_blobstore::{AppError, Blob, StagedBlob, StagedOp};

use crate::error::{Error, Result, SqlContext};
use crate::extract::Extracted;
use crate::gc::put_log::PutLog;
use crate::indexer::{Annotations, Indexer};
use crate::row::{target_key, CidRow};
use crate::tables::{add_member, seq_of};

/// Runs `indexers` on `blob` (whose links are `extracted`) and attaches its index rows:
/// `scopes` are joined on top of those the indexers return. CPU only.
pub(crate) fn stage<S: AsRef<str>>(
    blob: Blob,
    extracted: &Extracted,
    scopes: &[S],
    indexers: &[Arc<dyn Indexer>],
    put_log: &Arc<PutLog>,
) -> StagedBlob {
    let mut annotations = Annotations {
        scopes: scopes.iter().map(|s| s.as_ref().to_string()).collect(),
        attributes: Vec::new(),
    };
    for indexer in indexers {
        let extra = indexer.annotate(&blob, extracted);
        annotations.scopes.extend(extra.scopes);
        annotations.attributes.extend(extra.attributes);
    }
    annotations.scopes.sort_unstable();
    annotations.scopes.dedup();
    let op = IndexOp::new(&blob, extracted, annotations, put_log.clone());
    StagedBlob {
        blob,
        op: Some(Box::new(op)),
    }
}

/// Rows for one blob. Everything here was computed before admission: `apply` binds and
/// executes prepared statements, nothing else.
pub(crate) struct IndexOp {
    blob: CidRow,
    /// Each link's backlink key and row.
    links: Vec<(i64, CidRow)>,
    indexable: bool,
    scopes: Vec<String>,
    attributes: Vec<(String, String)>,
    /// Where a put is recorded while a collection runs (see `gc::put_log`).
    put_log: Arc<PutLog>,
}

impl IndexOp {
    pub fn new(
        blob: &Blob,
        extracted: &Extracted,
        annotations: Annotations,
        put_log: Arc<PutLog>,
    ) -> Self {
        IndexOp {
            blob: CidRow::of(blob.cid()),
            links: extracted
                .links
                .iter()
                .map(|l| (target_key(l), CidRow::of(l)))
                .collect(),
            indexable: extracted.indexable,
            scopes: annotations.scopes,
            attributes: annotations.attributes,
            put_log,
        }
    }

    fn write(self, conn: &Connection) -> Result<()> {
        let b = &self.blob;
        // On the lane, in this put's transaction: every later sweep batch sees it.
        self.put_log.record(&b.mh, b.codec);
        // The `blob_index` row is the guard: links are written once per blob, whichever
        // codec-identical put comes first, and a re-put costs one failed insert.
        let fresh = conn
            .prepare_cached(
                "INSERT INTO blob_index (mh, codec, version, links, indexable)
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (mh, codec) DO NOTHING",
            )
            .during("prepare index blob")?
            .execute((
                &b.mh,
                b.codec,
                b.version,
                self.links.len() as i64,
                self.indexable,
            ))
            .during("index blob")?
            == 1;
        let src = if fresh {
            conn.last_insert_rowid()
        } else if self.attributes.is_empty() && self.scopes.is_empty() {
            return Ok(());
        } else {
            // The insert conflicted on this row, so it exists; never panic on the lane.
            seq_of(conn, b)?.ok_or_else(|| {
                Error::bad_row(
                    "find indexed blob",
                    "blob_index row missing after a conflict",
                )
            })?
        };
        if fresh {
            self.write_links(conn, src)?;
        }
        self.write_attributes(conn, src)?;
        for scope in &self.scopes {
            add_member(conn, scope, src)?;
        }
        Ok(())
    }

    fn write_links(&self, conn: &Connection, src: i64) -> Result<()> {
        let mut insert = conn
            .prepare_cached(
                "INSERT INTO links (src, pos, tkey, mh, codec, version)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .during("prepare insert link")?;
        for (pos, (tkey, l)) in self.links.iter().enumerate() {
            insert
                .execute((src, pos as i64, *tkey, &l.mh, l.codec, l.version))
                .during("insert link")?;
        }
        Ok(())
    }

    fn write_attributes(&self, conn: &Connection, src: i64) -> Result<()> {
        if self.attributes.is_empty() {
            return Ok(());
        }
        let mut upsert = conn
            .prepare_cached(
                "INSERT INTO attributes (src, key, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT (src, key) DO UPDATE SET value = excluded.value",
            )
            .during("prepare attribute")?;
        for (key, value) in &self.attributes {
            upsert
                .execute((src, key, value))
                .during("write attribute")?;
        }
        Ok(())
    }
}

impl StagedOp for IndexOp {
    fn apply(
        self: Box<Self>,
        conn: &Connection,
        _blob: &Blob,
        _inserted: bool,
    ) -> Result<(), AppError> {
        self.write(conn).map_err(crate::Error::boxed)
    }
}

//! The index's own tables and their versioned migrations, kept in `index_meta`.
//!
//! Nothing in the blob store knows about these tables. They are created through
//! [`Store::write`](seedbank_blobstore::Store::write), so the lane stays the only writer.
//!
//! - `blob_index`: one row per blob written through the index: its link count and whether
//!   its codec could decode it. `seq` is the insertion order; `max(seq)` is the DAG
//!   generation (it only grows: see the deletion marker below).
//! - `links`: `(src, pos) → target`, `src` being the source's `blob_index.seq`; the target
//!   may not be stored yet. `links_by_target` serves backlinks. It is keyed by `tkey`, the
//!   first 8 bytes of the target's digest, rather than the 34+ byte multihash: a third of
//!   the size, so fewer pages are dirtied (and rewritten to the WAL) per commit. Queries
//!   compare `mh` and `codec` too, so `tkey` collisions only cost a row read.
//! - `scopes`: named scopes with a generation bumped on every membership change, the last
//!   member sequence handed out, and `removals`, the number of members ever removed (since
//!   v2). Adding a member bumps `generation` and `last_seq`; removing one bumps `generation`
//!   and `removals`. All three only grow.
//! - `scope_members`: `(scope, seq) → blob_index.seq`, `seq` increasing per scope, so
//!   members can be listed in insertion order and fetched incrementally; unique per
//!   `(scope, blob)`. Keyed by integers, so a new blob joining a scope appends to both
//!   b-trees instead of inserting at a random multihash.
//! - `attributes`: key/value strings an [`Indexer`](crate::Indexer) attached to a blob.
//! - `pins` (since v3): named pins, each either a root CID or a named scope.
//!
//! Deleting blobs (since v3) removes their `blob_index` rows, links, attributes and scope
//! memberships, and moves the *deletion marker* — the `blob_index` row keyed by the empty
//! multihash, which no CID has — to `max(seq) + 1`. So `max(seq)`, the DAG generation,
//! still only grows, and grows on every deletion, and later blobs are numbered after it.

use seedbank_blobstore::rusqlite::{Connection, OptionalExtension};
use seedbank_blobstore::{PoolKind, Priority, PutOptions, Store};

use crate::access;
use crate::error::{Error, Result, SqlContext};

/// Migration `i` moves the index schema from version `i` to `i + 1`. Append only.
const MIGRATIONS: &[&str] = &[
    // v1
    "CREATE TABLE blob_index (
        seq       INTEGER PRIMARY KEY,
        mh        BLOB    NOT NULL,
        codec     INTEGER NOT NULL,
        version   INTEGER NOT NULL,
        links     INTEGER NOT NULL,
        indexable INTEGER NOT NULL,
        UNIQUE (mh, codec)
     );
     CREATE TABLE links (
        src     INTEGER NOT NULL REFERENCES blob_index(seq),
        pos     INTEGER NOT NULL,
        tkey    INTEGER NOT NULL,
        mh      BLOB    NOT NULL,
        codec   INTEGER NOT NULL,
        version INTEGER NOT NULL,
        PRIMARY KEY (src, pos)
     ) WITHOUT ROWID;
     CREATE INDEX links_by_target ON links (tkey);
     CREATE TABLE scopes (
        id         INTEGER PRIMARY KEY,
        name       TEXT    NOT NULL UNIQUE,
        generation INTEGER NOT NULL DEFAULT 0,
        last_seq   INTEGER NOT NULL DEFAULT 0
     );
     CREATE TABLE scope_members (
        scope INTEGER NOT NULL REFERENCES scopes(id),
        seq   INTEGER NOT NULL,
        blob  INTEGER NOT NULL REFERENCES blob_index(seq),
        PRIMARY KEY (scope, seq)
     ) WITHOUT ROWID;
     CREATE UNIQUE INDEX scope_members_by_blob ON scope_members (scope, blob);
     CREATE TABLE attributes (
        src   INTEGER NOT NULL REFERENCES blob_index(seq),
        key   TEXT    NOT NULL,
        value TEXT    NOT NULL,
        PRIMARY KEY (src, key)
     ) WITHOUT ROWID;
     CREATE INDEX attributes_by_value ON attributes (key, value);",
    // v2: a removal counter per scope, so an incremental reader can prove nothing was
    // removed. Under v1 every add bumped `generation` and `last_seq` by one and every removal
    // bumped `generation` only, so `generation - last_seq` is exactly the removals so far.
    "ALTER TABLE scopes ADD COLUMN removals INTEGER NOT NULL DEFAULT 0;
     UPDATE scopes SET removals = max(generation - last_seq, 0);",
    // v3: named pins (a root CID, or every member of a named scope) and the persistent
    // totals of what deletions freed.
    "CREATE TABLE pins (
        name       TEXT    PRIMARY KEY,
        root_mh    BLOB,
        root_codec INTEGER,
        root_ver   INTEGER,
        scope      TEXT,
        created_at INTEGER NOT NULL,
        CHECK ((root_mh IS NULL) <> (scope IS NULL))
     );
     CREATE INDEX pins_by_root ON pins (root_mh, root_codec) WHERE root_mh IS NOT NULL;
     CREATE INDEX pins_by_scope ON pins (scope) WHERE scope IS NOT NULL;",
    // v4: memberships found by blob first. Deleting a blob and "is it in a pinned scope"
    // look memberships up by blob alone, which the (scope, blob) order could only scan;
    // (blob, scope) serves those and the uniqueness of a pair alike, still one index.
    "DROP INDEX scope_members_by_blob;
     CREATE UNIQUE INDEX scope_members_by_blob ON scope_members (blob, scope);",
];

/// The index schema version this build writes.
pub const INDEX_SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The index schema version of the database (0 before the index was ever opened).
fn version(conn: &Connection) -> Result<i64> {
    let exists = conn
        .prepare_cached("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'index_meta'")
        .during("prepare find index_meta")?
        .exists([])
        .during("find index_meta")?;
    if !exists {
        return Ok(0);
    }
    let found = conn
        .prepare_cached("SELECT value FROM index_meta WHERE key = 'schema_version'")
        .during("prepare read index schema version")?
        .query_row([], |r| r.get(0))
        .optional()
        .during("read index schema version")?;
    match found.unwrap_or(0) {
        found if found < 0 => Err(Error::SchemaDamaged { found }),
        found => Ok(found),
    }
}

/// Brings the index tables up to [`INDEX_SCHEMA_VERSION`]. Runs on the lane inside one
/// savepoint, so a failed migration leaves nothing behind.
fn migrate(conn: &Connection) -> Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS index_meta (
            key   TEXT PRIMARY KEY,
            value INTEGER NOT NULL
         ) WITHOUT ROWID;",
    )
    .during("create index_meta")?;
    let found = version(conn)?;
    if found > INDEX_SCHEMA_VERSION {
        return Err(Error::SchemaTooNew {
            found,
            supported: INDEX_SCHEMA_VERSION,
        });
    }
    if found == INDEX_SCHEMA_VERSION {
        return Ok(());
    }
    for sql in &MIGRATIONS[found as usize..] {
        conn.execute_batch(sql).during("migrate index schema")?;
    }
    conn.execute(
        "INSERT INTO index_meta (key, value) VALUES ('schema_version', ?1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [INDEX_SCHEMA_VERSION],
    )
    .during("write index schema version")?;
    Ok(())
}

/// Makes the index tables of `store` current: read on a reader first, so opening an
/// up-to-date index writes nothing; migrated through the lane otherwise. A read-only store
/// is never migrated: tables it lacks or has older are [`Error::NotMigrated`].
pub(crate) async fn ensure_current(store: &Store) -> Result<()> {
    let found = access::read(store, PoolKind::Info, version).await?;
    if found != INDEX_SCHEMA_VERSION && store.is_read_only() {
        return Err(if found > INDEX_SCHEMA_VERSION {
            Error::SchemaTooNew {
                found,
                supported: INDEX_SCHEMA_VERSION,
            }
        } else {
            Error::NotMigrated {
                found,
                supported: INDEX_SCHEMA_VERSION,
            }
        });
    }
    if found != INDEX_SCHEMA_VERSION {
        let opts = PutOptions::new(Priority::Interactive, "index");
        access::write(store, opts, migrate).await?;
    }
    Ok(())
}

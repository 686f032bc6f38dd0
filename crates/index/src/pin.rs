//! Pins: what garbage collection keeps and what [`Index::delete`](crate::Index::delete) refuses to remove.
//!
//! A named pin keeps a root CID and everything reachable from it through the link index, or
//! every member of a named scope (and what they reach). A [`TempPin`] does the same for CIDs
//! registered in memory for as long as the guard lives: an import, a discovery run or an
//! application's multi-step write takes one and passes it in
//! [`IndexPutOptions::temp_pin`](crate::IndexPutOptions::temp_pin).
//!
//! Temp pins live in an in-memory registry, not in a table, and that is what makes them safe
//! without a lane round trip: a put registers its CIDs *before* it submits the blobs to the
//! lane, and deletion and GC consult the registry only inside lane transactions. The lane
//! runs one transaction at a time, so any transaction that could delete a blob either runs
//! before the blob is written (nothing to delete) or after the registration (it sees the
//! pin). Dropping the guard unregisters its CIDs at once; a crash forgets them, which is the
//! meaning of "temporary".

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cid::Cid;
use parking_lot::Mutex;
use seedbank_blobstore::rusqlite::Connection;
use seedbank_blobstore::{PoolKind, Priority, PutOptions, Store};

use crate::access;
use crate::error::{Error, Result, SqlContext};
use crate::row::{cid_from_row, CidRow};

/// A blob's storage key: `(multihash bytes, codec)`, the way the store keys blobs.
pub(crate) type Key = (Vec<u8>, i64);

pub(crate) fn key_of(cid: &Cid) -> Key {
    let r = CidRow::of(cid);
    (r.mh, r.codec)
}

/// What a named pin keeps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PinTarget {
    /// A root CID and everything reachable from it.
    Root(Cid),
    /// Every member of a named scope, and everything reachable from them.
    Scope(String),
}

/// A named pin, from [`Index::pins`](crate::Index::pins).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pin {
    /// The pin's name.
    pub name: String,
    /// What it keeps.
    pub target: PinTarget,
    /// When it was created or last replaced.
    pub created_at: SystemTime,
}

/// The in-memory registry of temp-pinned keys, with a count per key (several guards may pin
/// one blob).
#[derive(Debug, Default)]
pub(crate) struct TempPins {
    keys: Mutex<HashMap<Key, usize>>,
}

impl TempPins {
    fn add(&self, keys: &[Key]) {
        let mut map = self.keys.lock();
        for k in keys {
            *map.entry(k.clone()).or_insert(0) += 1;
        }
    }

    fn release(&self, keys: &[Key]) {
        let mut map = self.keys.lock();
        for k in keys {
            if let Some(n) = map.get_mut(k) {
                *n -= 1;
                if *n == 0 {
                    map.remove(k);
                }
            }
        }
    }

    pub(crate) fn contains(&self, key: &Key) -> bool {
        self.keys.lock().contains_key(key)
    }

    /// Every pinned key now (GC re-reads this in each sweep batch).
    pub(crate) fn snapshot(&self) -> Vec<Key> {
        self.keys.lock().keys().cloned().collect()
    }
}

/// A temporary pin: keeps the CIDs added to it (and everything they reach) from deletion and
/// garbage collection until the last clone of the guard is dropped. See the module docs of
/// [`Index::temp_pin`](crate::Index::temp_pin) for why no blob written under it is ever unprotected.
///
/// Clones share one pin; [`IndexPutOptions`](crate::IndexPutOptions) holding it keep it
/// alive too.
#[derive(Clone)]
pub struct TempPin {
    inner: Arc<GuardInner>,
}

struct GuardInner {
    registry: Arc<TempPins>,
    keys: Mutex<Vec<Key>>,
}

impl Drop for GuardInner {
    fn drop(&mut self) {
        self.registry.release(&self.keys.lock());
    }
}

impl std::fmt::Debug for TempPin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TempPin")
            .field("cids", &self.inner.keys.lock().len())
            .finish()
    }
}

impl TempPin {
    /// A new, empty temp pin registered in `registry`.
    pub(crate) fn new(registry: Arc<TempPins>) -> Self {
        TempPin {
            inner: Arc::new(GuardInner {
                registry,
                keys: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Protects `cids` from now on, until the guard is dropped. Call it before writing them
    /// (a put with the guard in its options does), so no blob is ever written unprotected.
    pub fn add(&self, cids: &[Cid]) {
        let keys: Vec<Key> = cids.iter().map(key_of).collect();
        self.inner.registry.add(&keys);
        self.inner.keys.lock().extend(keys);
    }

    /// How many CIDs were added (with repeats).
    pub fn len(&self) -> usize {
        self.inner.keys.lock().len()
    }

    /// True if nothing was added yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn belongs_to(&self, registry: &Arc<TempPins>) -> bool {
        Arc::ptr_eq(&self.inner.registry, registry)
    }
}

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Refuses an empty pin name, before anything reaches the lane.
fn check_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::InvalidPin {
            reason: "empty pin name".into(),
        });
    }
    Ok(())
}

/// Every named pin, by name.
pub(crate) fn read_pins(conn: &Connection) -> Result<Vec<Pin>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT name, root_mh, root_codec, root_ver, scope, created_at FROM pins ORDER BY name",
        )
        .during("prepare pins")?;
    let mut rows = stmt.query([]).during("pins")?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().during("pin row")? {
        let name: String = r.get(0).during("pin name")?;
        let mh: Option<Vec<u8>> = r.get(1).during("pin root")?;
        let scope: Option<String> = r.get(4).during("pin scope")?;
        let at: i64 = r.get(5).during("pin time")?;
        let target = match (mh, scope) {
            (Some(mh), _) => {
                let codec: i64 = r.get(2).during("pin codec")?;
                let version: i64 = r.get(3).during("pin version")?;
                PinTarget::Root(cid_from_row(&mh, codec, version)?)
            }
            (None, Some(scope)) => PinTarget::Scope(scope),
            (None, None) => {
                return Err(Error::bad_row(
                    "read pins",
                    format!("pin {name:?} has neither root nor scope"),
                ))
            }
        };
        out.push(Pin {
            name,
            target,
            created_at: UNIX_EPOCH + Duration::from_millis(at.max(0) as u64),
        });
    }
    Ok(out)
}

/// The name of a pin that protects `key` directly (as its root, or as a member of its
/// scope), if any.
pub(crate) fn pinned_directly(conn: &Connection, key: &Key) -> Result<Option<String>> {
    if let Some(name) = conn
        .prepare_cached("SELECT name FROM pins WHERE root_mh = ?1 AND root_codec = ?2 LIMIT 1")
        .during("prepare pin by root")?
        .query_row((&key.0, key.1), |r| r.get::<_, String>(0))
        .map(Some)
        .or_else(none_if_no_rows)
        .during("pin by root")?
    {
        return Ok(Some(name));
    }
    conn.prepare_cached(
        "SELECT p.name FROM blob_index i
         JOIN scope_members m ON m.blob = i.seq
         JOIN scopes s ON s.id = m.scope
         JOIN pins p ON p.scope = s.name
         WHERE i.mh = ?1 AND i.codec = ?2 LIMIT 1",
    )
    .during("prepare pin by scope")?
    .query_row((&key.0, key.1), |r| r.get::<_, String>(0))
    .map(Some)
    .or_else(none_if_no_rows)
    .during("pin by scope")
}

fn none_if_no_rows<T>(
    e: seedbank_blobstore::rusqlite::Error,
) -> seedbank_blobstore::rusqlite::Result<Option<T>> {
    match e {
        seedbank_blobstore::rusqlite::Error::QueryReturnedNoRows => Ok(None),
        e => Err(e),
    }
}

fn pin_opts() -> PutOptions {
    PutOptions::new(Priority::Interactive, "pin")
}

/// Pins `root` (and what it reaches) under `name`, replacing a pin of that name.
fn write_root_pin(conn: &Connection, name: &str, root: &Cid) -> Result<()> {
    let r = CidRow::of(root);
    conn.prepare_cached(
        "INSERT INTO pins (name, root_mh, root_codec, root_ver, scope, created_at)
         VALUES (?1, ?2, ?3, ?4, NULL, ?5)
         ON CONFLICT (name) DO UPDATE SET root_mh = excluded.root_mh,
           root_codec = excluded.root_codec, root_ver = excluded.root_ver,
           scope = NULL, created_at = excluded.created_at",
    )
    .during("prepare pin")?
    .execute((name, &r.mh, r.codec, r.version, unix_ms()))
    .during("pin")?;
    Ok(())
}

/// Pins every member of `scope` under `name`, replacing a pin of that name.
fn write_scope_pin(conn: &Connection, name: &str, scope: &str) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO pins (name, root_mh, root_codec, root_ver, scope, created_at)
         VALUES (?1, NULL, NULL, NULL, ?2, ?3)
         ON CONFLICT (name) DO UPDATE SET root_mh = NULL, root_codec = NULL,
           root_ver = NULL, scope = excluded.scope, created_at = excluded.created_at",
    )
    .during("prepare pin scope")?
    .execute((name, scope, unix_ms()))
    .during("pin scope")?;
    Ok(())
}

/// Removes the pin `name`; false if there was none.
fn delete_pin(conn: &Connection, name: &str) -> Result<bool> {
    let n = conn
        .prepare_cached("DELETE FROM pins WHERE name = ?1")
        .during("prepare unpin")?
        .execute([name])
        .during("unpin")?;
    Ok(n > 0)
}

// ---- The pin calls of `Index`: named pins are written on the lane, read on `info`.

/// [`Index::pin`](crate::Index::pin): checks the name, then writes through the lane.
pub(crate) async fn pin(store: &Store, name: &str, root: &Cid) -> Result<()> {
    check_name(name)?;
    let (name, root) = (name.to_string(), *root);
    access::write(store, pin_opts(), move |c| write_root_pin(c, &name, &root)).await
}

/// [`Index::pin_scope`](crate::Index::pin_scope): checks the name, then writes through the
/// lane.
pub(crate) async fn pin_scope(store: &Store, name: &str, scope: &str) -> Result<()> {
    check_name(name)?;
    let (name, scope) = (name.to_string(), scope.to_string());
    access::write(store, pin_opts(), move |c| {
        write_scope_pin(c, &name, &scope)
    })
    .await
}

/// [`Index::unpin`](crate::Index::unpin), through the lane.
pub(crate) async fn unpin(store: &Store, name: &str) -> Result<bool> {
    let name = name.to_string();
    access::write(store, pin_opts(), move |c| delete_pin(c, &name)).await
}

/// [`Index::pins`](crate::Index::pins), on the `info` pool.
pub(crate) async fn pins(store: &Store) -> Result<Vec<Pin>> {
    access::read(store, PoolKind::Info, read_pins).await
}

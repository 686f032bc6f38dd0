//! Keeps a connection the store lends to code it runs for others (write closures and staged
//! ops on the lane, read closures on the pools) as the store configured it.
//!
//! Such code gets a `&Connection` and could change it for every later user: `PRAGMA
//! synchronous = OFF` on the writer would silently make later acknowledged batches not
//! survive power loss, `query_only = 0` on a reader would let reads write beside the lane,
//! a commit hook of its own would replace the one by which the lane refuses a `COMMIT` it
//! did not issue. Two mechanisms, neither on the hot path:
//!
//! - An SQLite *authorizer* refuses, when a statement is prepared, what changes the
//!   connection: a `PRAGMA` with an argument unless it only reads or only acts on the open
//!   transaction ([`WRITER_PRAGMAS`], [`READER_PRAGMAS`]), `ATTACH`, `DETACH`, temporary
//!   triggers (they would fire on later batches). The statement fails to prepare, and the
//!   refusal is noted so the closure fails with
//!   [`Error::ClosureChangedConnection`](crate::Error::ClosureChangedConnection) even when it
//!   swallowed SQLite's error. The lane's own statements are prepared once and never refused.
//! - What rusqlite lets a closure change without SQL (the authorizer itself, commit, rollback
//!   and update hooks, the progress handler) is watched by *alarms*: the store installs its
//!   own (a no-op where it needs none), each owning an [`Alarm`]; rusqlite drops a hook when
//!   it is replaced or removed, and the alarm rings. After each closure one atomic load tells
//!   whether anything rang; only then does the store restore (see `writer`, `read`). The
//!   writer's no-op update hook would cost a call per row written, so it is there only while
//!   foreign code runs ([`install_update_sentinel`], [`remove_update_sentinel`]): the lane's
//!   own blob inserts never pay for it.
//!
//! Not watched: the busy handler and timeout, SQL functions and collations, limits
//! (`set_limit`), and anything done through `Connection::handle` (unsafe code can do
//! anything). `db_config` flags that matter are compared after each write closure.

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::Arc;

use parking_lot::Mutex;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::Connection;

/// Pragmas a write closure may run with an argument: reads of one object (`table_info(t)`),
/// checks, and the ones that act only inside the open transaction (`incremental_vacuum`,
/// `defer_foreign_keys`). `max_page_count` is a setting, kept because it can only make later
/// writes fail with [`Error::DiskFull`](crate::Error::DiskFull), never lose an acknowledged
/// one (tests use it to stand in for a full disk).
pub(crate) const WRITER_PRAGMAS: &[&str] = &[
    "table_info",
    "table_xinfo",
    "table_list",
    "index_info",
    "index_xinfo",
    "index_list",
    "foreign_key_list",
    "foreign_key_check",
    "integrity_check",
    "quick_check",
    "incremental_vacuum",
    "defer_foreign_keys",
    "max_page_count",
];

/// Pragmas a read closure may run with an argument: reads and checks only.
pub(crate) const READER_PRAGMAS: &[&str] = &[
    "table_info",
    "table_xinfo",
    "table_list",
    "index_info",
    "index_xinfo",
    "index_list",
    "foreign_key_list",
    "foreign_key_check",
    "integrity_check",
    "quick_check",
];

/// What an alarm watches, as a bit of [`Watch::rang`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Watched {
    /// A statement the authorizer refused.
    Refused = 1,
    /// The authorizer was replaced or removed.
    Authorizer = 2,
    /// The commit hook was replaced or removed.
    CommitHook = 4,
    /// The rollback hook was replaced or removed.
    RollbackHook = 8,
    /// An update hook was installed (the store's no-op one was replaced) or removed.
    UpdateHook = 16,
    /// The progress handler was replaced or removed.
    ProgressHandler = 32,
}

impl Watched {
    const ALL: [Watched; 6] = [
        Watched::Refused,
        Watched::Authorizer,
        Watched::CommitHook,
        Watched::RollbackHook,
        Watched::UpdateHook,
        Watched::ProgressHandler,
    ];

    fn name(self) -> &'static str {
        match self {
            Watched::Refused => "a refused statement",
            Watched::Authorizer => "the authorizer",
            Watched::CommitHook => "the commit hook",
            Watched::RollbackHook => "the rollback hook",
            Watched::UpdateHook => "the update hook",
            Watched::ProgressHandler => "the progress handler",
        }
    }
}

/// What rang since the last [`Watch::take`], for one connection.
#[derive(Default)]
pub(crate) struct Watch {
    rang: AtomicU32,
    /// Alarms about to be dropped by the store itself: they do not ring.
    expected: AtomicU32,
    /// What the authorizer refused first (for the error).
    refused: Mutex<Option<String>>,
}

/// What a closure changed, returned by [`Watch::take`].
#[derive(Debug)]
pub(crate) struct Changed {
    /// Bits of [`Watched`].
    pub bits: u32,
    /// A description for [`Error::ClosureChangedConnection`](crate::Error::ClosureChangedConnection).
    pub setting: String,
}

#[cfg(test)]
impl Changed {
    /// True if `what` rang.
    pub fn has(&self, what: Watched) -> bool {
        self.bits & what as u32 != 0
    }
}

/// Rings its [`Watch`] when dropped: owned by a hook the store installed, so it rings when
/// rusqlite drops that hook (it was replaced or removed).
pub(crate) struct Alarm {
    watch: Arc<Watch>,
    what: Watched,
}

impl Drop for Alarm {
    fn drop(&mut self) {
        let bit = self.what as u32;
        if self.watch.expected.fetch_and(!bit, Relaxed) & bit != 0 {
            return; // The store removed its own hook.
        }
        // Also rings when the connection closes; nobody looks then.
        self.watch.rang.fetch_or(bit, Relaxed);
    }
}

impl Watch {
    /// An alarm for `what` on this watch.
    pub fn alarm(self: &Arc<Self>, what: Watched) -> Alarm {
        Alarm {
            watch: self.clone(),
            what,
        }
    }

    /// True if anything rang since the last `take` (one relaxed load: the hot path).
    pub fn rang(&self) -> bool {
        self.rang.load(Relaxed) != 0
    }

    /// What rang since the last call, and resets.
    pub fn take(&self) -> Option<Changed> {
        let bits = self.rang.swap(0, Relaxed);
        if bits == 0 {
            return None;
        }
        let refused = self.refused.lock().take();
        let mut parts: Vec<String> = Vec::new();
        if let Some(r) = refused {
            parts.push(r);
        }
        for w in Watched::ALL {
            if w != Watched::Refused && bits & w as u32 != 0 {
                parts.push(w.name().to_string());
            }
        }
        Some(Changed {
            bits,
            setting: parts.join(", "),
        })
    }

    /// Notes a refused statement.
    fn refuse(&self, what: String) {
        self.refused.lock().get_or_insert(what);
        self.rang.fetch_or(Watched::Refused as u32, Relaxed);
    }
}

/// Whose connection an authorizer guards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// The writer lane's connection.
    Writer,
    /// A read pool's connection.
    Reader,
}

/// Installs the authorizer (and its alarm) on `conn`. Call after the store's own setup:
/// from here on, settings pragmas fail to prepare.
pub(crate) fn install_authorizer(conn: &Connection, watch: &Arc<Watch>, role: Role) {
    let alarm = watch.alarm(Watched::Authorizer);
    let w = watch.clone();
    let allowed = match role {
        Role::Writer => WRITER_PRAGMAS,
        Role::Reader => READER_PRAGMAS,
    };
    conn.authorizer(Some(move |ctx: AuthContext<'_>| {
        let _owned = &alarm;
        match refusal(&ctx.action, allowed) {
            Some(what) => {
                w.refuse(what);
                Authorization::Deny
            }
            None => Authorization::Allow,
        }
    }));
}

/// Installs a no-op update hook with its alarm (see [`install_sentinels`]).
pub(crate) fn install_update_sentinel(conn: &Connection, watch: &Arc<Watch>) {
    let alarm = watch.alarm(Watched::UpdateHook);
    conn.update_hook(Some(move |_, _: &str, _: &str, _| {
        let _owned = &alarm;
    }));
}

/// Removes the update hook without ringing (if a closure had replaced the sentinel, its
/// alarm rang then, and the closure's hook goes now).
pub(crate) fn remove_update_sentinel(conn: &Connection, watch: &Watch) {
    let bit = Watched::UpdateHook as u32;
    watch.expected.fetch_or(bit, Relaxed);
    conn.update_hook(None::<fn(rusqlite::hooks::Action, &str, &str, i64)>);
    // Not ours that went (or none): nothing stays expected.
    watch.expected.fetch_and(!bit, Relaxed);
}

/// Installs (with `update`) a no-op update hook and (with `progress`) a disabled progress
/// handler, each with its alarm: they cost nothing until replaced (but a no-op update hook
/// is one indirect call per row written: readers write none, the writer has one only while
/// foreign code runs).
pub(crate) fn install_sentinels(
    conn: &Connection,
    watch: &Arc<Watch>,
    update: bool,
    progress: bool,
) {
    if update {
        install_update_sentinel(conn, watch);
    }
    if !progress {
        return;
    }
    let alarm = watch.alarm(Watched::ProgressHandler);
    // 0 steps: SQLite never calls it; it is there to be noticed when replaced.
    conn.progress_handler(
        0,
        Some(move || {
            let _owned = &alarm;
            false
        }),
    );
}

/// Why `action` is refused, or `None` when it is allowed.
fn refusal(action: &AuthAction<'_>, allowed: &[&str]) -> Option<String> {
    match action {
        AuthAction::Pragma {
            pragma_name,
            pragma_value: Some(value),
        } if !allowed.iter().any(|a| a.eq_ignore_ascii_case(pragma_name)) => {
            Some(format!("PRAGMA {pragma_name} = {value}"))
        }
        AuthAction::Attach { filename } => Some(format!("ATTACH {filename}")),
        AuthAction::Detach { database_name } => Some(format!("DETACH {database_name}")),
        AuthAction::CreateTempTrigger { trigger_name, .. } => {
            Some(format!("CREATE TEMP TRIGGER {trigger_name}"))
        }
        _ => None,
    }
}

/// The writer's settings pragmas that a closure without the authorizer could change, and
/// that matter to later batches (durability, locking, what the lane may write).
const SETTINGS: &[&str] = &[
    "synchronous",
    "journal_mode",
    "locking_mode",
    "query_only",
    "foreign_keys",
    "wal_autocheckpoint",
    "journal_size_limit",
    "fullfsync",
    "checkpoint_fullfsync",
    "cache_size",
    "cache_spill",
    "temp_store",
    "mmap_size",
    "busy_timeout",
    "secure_delete",
    "recursive_triggers",
    "ignore_check_constraints",
    "read_uncommitted",
    "cell_size_check",
];

/// The writer connection's settings as the store configured them.
pub(crate) struct Settings(Vec<(&'static str, String)>);

impl Settings {
    /// Reads them back (once, when the lane starts).
    pub fn read(conn: &Connection) -> Settings {
        use rusqlite::types::Value;
        let values = SETTINGS
            .iter()
            .filter_map(|&name| {
                let v = conn
                    .query_row(&format!("PRAGMA {name}"), [], |r| r.get::<_, Value>(0))
                    .ok()?;
                match v {
                    Value::Integer(i) => Some((name, i.to_string())),
                    Value::Text(t) if t.chars().all(|c| c.is_ascii_alphanumeric()) => {
                        Some((name, t))
                    }
                    _ => None,
                }
            })
            .collect();
        Settings(values)
    }

    /// Sets each back. Inside a transaction some cannot change (`journal_mode`,
    /// `foreign_keys`); the lane applies them again once the batch has ended.
    pub fn apply(&self, conn: &Connection) {
        for (name, value) in &self.0 {
            let sql = format!("PRAGMA {name} = {value}");
            let drained = conn.prepare(&sql).and_then(|mut stmt| {
                let mut rows = stmt.query([])?;
                while rows.next()?.is_some() {}
                Ok(())
            });
            if let Err(e) = drained {
                tracing::debug!(%sql, error = %e, "setting not restored now");
            }
        }
    }
}

/// `db_config` flags a closure could flip without SQL, as the store set them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DbFlags {
    foreign_keys: bool,
    triggers: bool,
    reset_database: bool,
}

impl DbFlags {
    const FLAGS: [(rusqlite::config::DbConfig, &'static str); 3] = [
        (
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_FKEY,
            "db_config ENABLE_FKEY",
        ),
        (
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_TRIGGER,
            "db_config ENABLE_TRIGGER",
        ),
        (
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_RESET_DATABASE,
            "db_config RESET_DATABASE",
        ),
    ];

    /// Reads the flags (three calls into SQLite, no SQL).
    pub fn read(conn: &Connection) -> Option<DbFlags> {
        let get = |i: usize| conn.db_config(Self::FLAGS[i].0).ok();
        Some(DbFlags {
            foreign_keys: get(0)?,
            triggers: get(1)?,
            reset_database: get(2)?,
        })
    }

    fn values(self) -> [bool; 3] {
        [self.foreign_keys, self.triggers, self.reset_database]
    }

    /// Names of the flags that differ from `self` in `now`.
    pub fn changed(self, now: Option<DbFlags>) -> Option<String> {
        let Some(now) = now else {
            return Some("db_config".into());
        };
        let names: Vec<&str> = (0..3)
            .filter(|&i| self.values()[i] != now.values()[i])
            .map(|i| Self::FLAGS[i].1)
            .collect();
        (!names.is_empty()).then(|| names.join(", "))
    }

    /// Sets the flags back.
    pub fn restore(self, conn: &Connection) {
        for (i, v) in self.values().into_iter().enumerate() {
            let _ = conn.set_db_config(Self::FLAGS[i].0, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_pragmas_attach_and_temp_triggers_are_refused_reads_are_not() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (x)").unwrap();
        let watch = Arc::new(Watch::default());
        install_authorizer(&conn, &watch, Role::Writer);
        for sql in [
            "PRAGMA synchronous = OFF",
            "PRAGMA main.query_only = 1",
            "PRAGMA Locking_Mode = EXCLUSIVE",
            "PRAGMA foreign_keys = ON",
            "ATTACH ':memory:' AS other",
            "CREATE TEMP TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; END",
        ] {
            assert!(conn.execute_batch(sql).is_err(), "{sql} was allowed");
            let changed = watch.take().expect(sql);
            assert!(changed.has(Watched::Refused), "{sql}");
        }
        for sql in [
            "PRAGMA synchronous",
            "PRAGMA table_info(t)",
            "PRAGMA integrity_check",
            "PRAGMA max_page_count = 1000000",
            "SELECT * FROM t",
        ] {
            conn.execute_batch(sql)
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
            assert!(watch.take().is_none(), "{sql}");
        }
    }

    #[test]
    fn replacing_a_watched_hook_rings_its_alarm() {
        let conn = Connection::open_in_memory().unwrap();
        let watch = Arc::new(Watch::default());
        install_authorizer(&conn, &watch, Role::Reader);
        install_sentinels(&conn, &watch, true, true);
        assert!(!watch.rang());
        conn.update_hook(Some(|_, _: &str, _: &str, _| {}));
        conn.authorizer(None::<fn(AuthContext<'_>) -> Authorization>);
        let changed = watch.take().unwrap();
        assert!(changed.has(Watched::UpdateHook) && changed.has(Watched::Authorizer));
        assert!(!changed.has(Watched::ProgressHandler), "{changed:?}");
        assert!(watch.take().is_none());
    }

    #[test]
    fn the_store_removing_its_own_update_sentinel_rings_nothing() {
        let conn = Connection::open_in_memory().unwrap();
        let watch = Arc::new(Watch::default());
        install_update_sentinel(&conn, &watch);
        remove_update_sentinel(&conn, &watch);
        assert!(!watch.rang());
        // A closure replacing it rings; removing the closure's hook leaves nothing expected.
        install_update_sentinel(&conn, &watch);
        conn.update_hook(Some(|_, _: &str, _: &str, _| {}));
        remove_update_sentinel(&conn, &watch);
        assert!(watch.take().unwrap().has(Watched::UpdateHook));
        install_update_sentinel(&conn, &watch);
        conn.update_hook(None::<fn(rusqlite::hooks::Action, &str, &str, i64)>);
        assert!(watch.take().unwrap().has(Watched::UpdateHook));
    }
}

//! The mark: every key known live, why, and how far the catch-up has read.

use std::collections::HashMap;

use seedbank_blobstore::rusqlite::Connection;

use super::put_log::Watch;
use crate::delete::{children, max_seq};
use crate::error::{Result, SqlContext};
use crate::pin::{key_of, read_pins, Key, PinTarget, TempPins};

/// What first made a key live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Why {
    /// Reached in the mark's snapshot.
    Mark,
    /// Put since the collection started (new, or again), or reached from such a blob.
    Put,
    /// A named pin's root or a pinned-scope member seen after the mark, or reached from one.
    Pin,
    /// Temp-pinned, seen after the mark, or reached from it.
    TempPin,
}

/// A key the walk starts from. `fresh`: its `blob_index` row may be newer than the last
/// time it was expanded (it was absent then), so it is expanded even if already marked.
struct Root {
    key: Key,
    why: Why,
    fresh: bool,
}

/// The mark of one collection (see the `gc` module docs for the argument).
pub(crate) struct Mark {
    live: HashMap<Key, Why>,
    /// The DAG generation read up to: rows numbered above it are "indexed since".
    seen_seq: i64,
    /// Per pinned scope (by name), the last member sequence number marked.
    scope_seen: HashMap<String, i64>,
}

impl Mark {
    /// The mark on `conn`'s snapshot: everything pins, pinned scopes, temp pins and the
    /// puts `watch` saw reach.
    pub(crate) fn on_snapshot(conn: &Connection, temp: &TempPins, watch: &Watch) -> Result<Mark> {
        let mut mark = Mark {
            live: HashMap::new(),
            // Everything indexed so far is reached (or not) by the walk from the roots.
            seen_seq: max_seq(conn)?,
            scope_seen: HashMap::new(),
        };
        mark.catch_up_as(conn, temp, watch, true)?;
        Ok(mark)
    }

    /// Keys marked live (present or absent).
    pub(crate) fn len(&self) -> usize {
        self.live.len()
    }

    /// Why `key` is live, if it is.
    pub(crate) fn why_live(&self, key: &Key) -> Option<Why> {
        self.live.get(key).copied()
    }

    /// Brings the mark up to date with `conn`'s view; runs in the sweep batch's lane
    /// transaction, before its deletes.
    pub(crate) fn catch_up(&mut self, conn: &Connection, temp: &TempPins, w: &Watch) -> Result<()> {
        self.catch_up_as(conn, temp, w, false)
    }

    fn catch_up_as(
        &mut self,
        conn: &Connection,
        temp: &TempPins,
        watch: &Watch,
        initial: bool,
    ) -> Result<()> {
        let why = |late: Why| if initial { Why::Mark } else { late };
        let mut roots = Vec::new();
        for pin in read_pins(conn)? {
            match pin.target {
                PinTarget::Root(cid) => roots.push(Root {
                    key: key_of(&cid),
                    why: why(Why::Pin),
                    fresh: false,
                }),
                PinTarget::Scope(scope) => {
                    let after = self.scope_seen.get(&scope).copied().unwrap_or(0);
                    let (members, last) = scope_members_after(conn, &scope, after)?;
                    roots.extend(members.into_iter().map(|key| Root {
                        key,
                        why: why(Why::Pin),
                        fresh: false,
                    }));
                    self.scope_seen.insert(scope, last.max(after));
                }
            }
        }
        roots.extend(temp.snapshot().into_iter().map(|key| Root {
            key,
            why: why(Why::TempPin),
            fresh: false,
        }));
        // Puts since the collection started, and rows indexed since the last look: a key
        // marked while absent that has arrived since is among these, and is expanded anew.
        let fresh = |key| Root {
            key,
            why: why(Why::Put),
            fresh: true,
        };
        roots.extend(watch.take().into_iter().map(fresh));
        roots.extend(indexed_after(conn, self.seen_seq)?.into_iter().map(fresh));
        self.seen_seq = self.seen_seq.max(max_seq(conn)?);
        self.walk(conn, roots)
    }

    /// Marks `roots` and everything they reach that is not marked yet; fresh roots are
    /// expanded even if marked. Roots are walked in order, so a key's cause is the first
    /// root that reaches it.
    fn walk(&mut self, conn: &Connection, roots: Vec<Root>) -> Result<()> {
        for Root { key, why, fresh } in roots {
            let new = !self.live.contains_key(&key);
            if !new && !fresh {
                continue;
            }
            if new {
                self.live.insert(key.clone(), why);
            }
            let mut stack = vec![key];
            while let Some(k) = stack.pop() {
                for child in children(conn, &k)? {
                    if !self.live.contains_key(&child) {
                        self.live.insert(child.clone(), why);
                        stack.push(child);
                    }
                }
            }
        }
        Ok(())
    }
}

/// Keys of the rows indexed after `seq`.
fn indexed_after(conn: &Connection, seq: i64) -> Result<Vec<Key>> {
    conn.prepare_cached(
        "SELECT mh, codec FROM blob_index WHERE seq > ?1 AND mh <> X'' ORDER BY seq",
    )
    .during("prepare indexed since mark")?
    .query_map([seq], |r| Ok((r.get(0)?, r.get(1)?)))
    .during("indexed since mark")?
    .collect::<Result<_, _>>()
    .during("indexed since mark")
}

/// Members of `scope` numbered after `after`, and the largest number seen.
fn scope_members_after(conn: &Connection, scope: &str, after: i64) -> Result<(Vec<Key>, i64)> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT m.seq, i.mh, i.codec FROM scope_members m
             JOIN blob_index i ON i.seq = m.blob
             WHERE m.scope = (SELECT id FROM scopes WHERE name = ?1) AND m.seq > ?2",
        )
        .during("prepare pinned scope members")?;
    let mut rows = stmt.query((scope, after)).during("pinned scope members")?;
    let (mut out, mut last) = (Vec::new(), after);
    while let Some(r) = rows.next().during("pinned scope member")? {
        last = last.max(r.get(0).during("member seq")?);
        out.push((r.get(1).during("mh")?, r.get(2).during("codec")?));
    }
    Ok((out, last))
}

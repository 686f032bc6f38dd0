//! Incremental garbage collection: mark what pins and temp pins reach through the link
//! index, then sweep the rest in small lane batches at `Background` priority.
//!
//! **Why a live blob is never deleted** (the argument is repeated in `docs/design.md`,
//! "Lifecycle"). The mark runs on one read snapshot `S` and records `seen_seq`, the DAG
//! generation of `S`. Candidates are the blobs stored in `S` that the mark did not reach.
//! Each sweep batch is one lane transaction `T` that, *before* deleting anything,
//! brings the mark up to date with everything committed since `S`:
//!
//! 1. every blob indexed after `seen_seq` is marked live, with what it reaches;
//! 2. every pin's root and every member of a pinned scope added since the last look is
//!    marked live, with what it reaches;
//! 3. every temp-pinned CID is marked live, with what it reaches.
//!
//! A blob `b` live in `T` is reachable from a root `r` (pin root, pinned-scope member or
//! temp-pinned CID) by a path of links. Links are immutable: a `blob_index` row's links are
//! written with it and deleted with it. If every blob on the path was indexed at or before
//! `seen_seq` and `r` was a root in `S`, the mark reached `b` in `S`. Otherwise take the last
//! element of the path that is new — a blob indexed after `seen_seq` (step 1) or a root added
//! since (steps 2, 3; a member added to a pinned scope gets a new member sequence number) —
//! the rest of the path from it consists of old rows, so the walk from it reaches `b`. Hence
//! `b` is marked, and `T` skips it. The lane runs one transaction at a time, and temp pins
//! are registered before their blobs are submitted, so no commit can slip between the
//! catch-up and the deletes of `T`.
//!
//! Blobs stored after `S` are never candidates of this collection at all (an epoch): an
//! application that puts a blob and pins it a moment later does not race this collection.
//! Marking is conservative (new blobs are live for the whole run, unpinned ones too): a
//! collection may keep garbage for the next one, never the other way round.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use seedbank_blobstore::rusqlite::Connection;
use seedbank_blobstore::{PoolKind, Priority, PutOptions};

use crate::delete::{bump_generation, children, delete_key, max_seq, Freed};
use crate::error::{Result, SqlContext};
use crate::pin::{key_of, read_pins, Key, PinTarget, TempPins};
use crate::Index;

/// Options for [`Index::gc`].
#[derive(Clone, Debug)]
pub struct GcOptions {
    /// Report what would be freed without deleting anything (default false).
    pub dry_run: bool,
    /// Most candidates checked and deleted per lane batch (default 256): each batch is one
    /// `Background` lane write, so interactive writes wait for at most about one.
    pub batch_blobs: usize,
    /// Most time one sweep batch spends deleting (default 5 ms); what is left of its
    /// candidates goes to the next batch. Deleting random keys dirties pages all over the
    /// file, so a count alone would let one batch hold the lane for hundreds of ms on a
    /// large store (measured: p99 294 ms at 256 blobs per batch on a 1M-blob store).
    pub batch_time: std::time::Duration,
    /// Free pages given back to the file system per vacuum step (default 256).
    pub vacuum_pages: u64,
}

impl Default for GcOptions {
    fn default() -> Self {
        GcOptions {
            dry_run: false,
            batch_blobs: 256,
            batch_time: std::time::Duration::from_millis(5),
            vacuum_pages: 256,
        }
    }
}

/// What one collection did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct GcReport {
    /// True if nothing was deleted (a dry run).
    pub dry_run: bool,
    /// Blobs the mark reached (live, or referenced and absent).
    pub marked: u64,
    /// Stored blobs the mark did not reach.
    pub candidates: u64,
    /// Blobs deleted (in a dry run: that would be).
    pub blobs_freed: u64,
    /// Bytes deleted (in a dry run: at most that many would be).
    pub bytes_freed: u64,
    /// Candidates found live during the sweep (pinned or reached meanwhile) and kept.
    pub kept_late: u64,
    /// Sweep batches (lane writes).
    pub batches: u64,
    /// Vacuum steps run.
    pub vacuum_steps: u64,
    /// Free pages left in the file afterwards.
    pub free_pages: u64,
}

/// The mark: every key known live, and how far the catch-up has read.
pub(crate) struct Mark {
    live: HashSet<Key>,
    seen_seq: i64,
    /// Per pinned scope (by name), the last member sequence number marked.
    scope_seen: HashMap<String, i64>,
}

impl Mark {
    fn new() -> Self {
        Mark {
            live: HashSet::new(),
            seen_seq: 0,
            scope_seen: HashMap::new(),
        }
    }

    /// Marks `roots` and everything they reach that is not marked yet.
    fn walk(&mut self, conn: &Connection, roots: Vec<Key>) -> Result<()> {
        let mut stack = Vec::new();
        for r in roots {
            if self.live.insert(r.clone()) {
                stack.push(r);
            }
        }
        while let Some(k) = stack.pop() {
            for child in children(conn, &k)? {
                if self.live.insert(child.clone()) {
                    stack.push(child);
                }
            }
        }
        Ok(())
    }

    /// Brings the mark up to date with `conn`'s view (see the module docs).
    fn catch_up(&mut self, conn: &Connection, temp: &TempPins) -> Result<()> {
        let mut roots = Vec::new();
        {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT seq, mh, codec FROM blob_index WHERE seq > ?1 AND mh <> X''
                     ORDER BY seq",
                )
                .during("prepare indexed since mark")?;
            let mut rows = stmt.query([self.seen_seq]).during("indexed since mark")?;
            while let Some(r) = rows.next().during("indexed since mark")? {
                roots.push((r.get(1).during("mh")?, r.get(2).during("codec")?));
            }
        }
        self.seen_seq = self.seen_seq.max(max_seq(conn)?);
        for pin in read_pins(conn)? {
            match pin.target {
                PinTarget::Root(cid) => roots.push(key_of(&cid)),
                PinTarget::Scope(scope) => {
                    let after = self.scope_seen.get(&scope).copied().unwrap_or(0);
                    let (members, last) = scope_members_after(conn, &scope, after)?;
                    roots.extend(members);
                    self.scope_seen.insert(scope, last.max(after));
                }
            }
        }
        roots.extend(temp.snapshot());
        self.walk(conn, roots)
    }
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

/// The mark phase on one read snapshot: the mark and the candidates with their sizes.
fn mark_phase(conn: &Connection, temp: &TempPins) -> Result<(Mark, Vec<(Key, u64)>)> {
    let tx = conn.unchecked_transaction().during("begin mark")?;
    let mut mark = Mark::new();
    // Everything indexed so far is reached (or not) by the walk from the roots.
    mark.seen_seq = max_seq(&tx)?;
    mark.catch_up(&tx, temp)?;
    let mut candidates = Vec::new();
    {
        let mut stmt = tx
            .prepare("SELECT mh, codec, size FROM blobs")
            .during("prepare candidates")?;
        let mut rows = stmt.query([]).during("candidates")?;
        while let Some(r) = rows.next().during("candidate")? {
            let key: Key = (r.get(0).during("mh")?, r.get(1).during("codec")?);
            if !mark.live.contains(&key) {
                let size: i64 = r.get(2).during("size")?;
                candidates.push((key, size.max(0) as u64));
            }
        }
    }
    tx.finish().during("end mark")?;
    Ok((mark, candidates))
}

impl Index {
    /// Collects garbage: deletes every stored blob that no pin or temp pin reaches through
    /// the link index, in lane batches of `opts.batch_blobs` at `Background` priority, then
    /// gives the freed pages back to the file system in bounded incremental-vacuum steps.
    /// One collection runs at a time; a second call waits for the first.
    ///
    /// A blob that a concurrent put, pin or temp pin makes live is never deleted, and blobs
    /// first stored after the collection started are left for the next one (see the
    /// `gc` module docs and `docs/design.md`).
    ///
    /// # Errors
    /// [`Error::Blobstore`](crate::Error::Blobstore) if the store is closed or read-only,
    /// [`Error::Storage`](crate::Error::Storage). Batches committed before an error stay
    /// deleted; a later collection finishes the job.
    pub async fn gc(&self, opts: GcOptions) -> Result<GcReport> {
        let _one = self.gc_lock().lock().await;
        let temp: Arc<TempPins> = self.temp_pins().clone();
        let t = temp.clone();
        let (mut mark, candidates) = self
            .read(PoolKind::Data, move |conn| mark_phase(conn, &t))
            .await?;
        let mut report = GcReport {
            dry_run: opts.dry_run,
            marked: mark.live.len() as u64,
            candidates: candidates.len() as u64,
            ..Default::default()
        };
        if opts.dry_run {
            report.blobs_freed = report.candidates;
            report.bytes_freed = candidates.iter().map(|(_, s)| s).sum();
            report.free_pages = self.store().space().await?.free_pages;
            return Ok(report);
        }
        let per_batch = opts.batch_blobs.max(1);
        let budget = opts.batch_time;
        let mut candidates = candidates.into_iter().map(|(k, _)| k);
        let mut left: Vec<Key> = Vec::new();
        loop {
            let mut chunk = std::mem::take(&mut left);
            chunk.extend(
                candidates
                    .by_ref()
                    .take(per_batch.saturating_sub(chunk.len())),
            );
            if chunk.is_empty() {
                break;
            }
            let temp = temp.clone();
            let opts = PutOptions::new(Priority::Background, "gc");
            let (back, freed, kept, rest) = self
                .write(opts, move |conn| {
                    let started = std::time::Instant::now();
                    mark.catch_up(conn, &temp)?;
                    let before = max_seq(conn)?;
                    let (mut freed, mut changed) = (Freed::default(), false);
                    let (mut deleted, mut kept, mut rest) = (0u64, 0u64, Vec::new());
                    let mut chunk = chunk.into_iter();
                    while let Some(k) = chunk.next() {
                        if mark.live.contains(&k) {
                            kept += 1;
                            continue;
                        }
                        let (f, c) = delete_key(conn, &k)?;
                        freed += f;
                        changed |= c;
                        deleted += 1;
                        // The clock every 16 deletes: at least 16 per batch, so the sweep
                        // always progresses.
                        if deleted % 16 == 0 && started.elapsed() >= budget {
                            rest.extend(chunk);
                            break;
                        }
                    }
                    if changed {
                        bump_generation(conn, before)?;
                    }
                    Ok((mark, freed, kept, rest))
                })
                .await?;
            left = rest;
            mark = back;
            report.batches += 1;
            report.blobs_freed += freed.blobs;
            report.bytes_freed += freed.bytes;
            report.kept_late += kept;
            self.store().record_freed(freed.blobs, freed.bytes);
        }
        self.reclaim(&opts, &mut report).await?;
        Ok(report)
    }

    /// Gives free pages back in bounded steps (each one `Background` lane write).
    async fn reclaim(&self, opts: &GcOptions, report: &mut GcReport) -> Result<()> {
        let space = self.store().space().await?;
        report.free_pages = space.free_pages;
        if space.auto_vacuum != 2 {
            return Ok(()); // A file created before auto_vacuum: reuse only (see design doc).
        }
        let mut left = space.free_pages;
        while left > 0 {
            let now = self.store().vacuum_step(opts.vacuum_pages).await?;
            report.vacuum_steps += 1;
            if now >= left {
                break; // No progress (pages freed meanwhile by another writer).
            }
            left = now;
        }
        report.free_pages = left;
        Ok(())
    }
}

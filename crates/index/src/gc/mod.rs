//! Incremental garbage collection: mark what pins, temp pins and recent puts reach through
//! the link index, then sweep the rest in small lane batches at `Background` priority.
//!
//! **Why a live blob is never deleted** (the argument is repeated in `docs/design.md`,
//! "Lifecycle"). A collection *starts* when [`Index::gc`](crate::Index::gc) is called: from then on every put
//! through the index records its key in the put log (`put_log`) from inside its own lane
//! transaction. The mark runs on one read snapshot `S` and records `seen_seq`, the DAG
//! generation of `S`; candidates are the blobs stored in `S` that the mark did not reach.
//! Each sweep batch is one lane transaction `T` that, *before* deleting anything, catches
//! the mark up with everything committed since the last look:
//!
//! 1. every pin's root and every member of a pinned scope numbered after the last look is
//!    marked, with what it reaches;
//! 2. every temp-pinned key is marked, with what it reaches;
//! 3. every key in the put log since the last look and every blob indexed after
//!    `seen_seq` is marked *and expanded again*, even if it was marked before: it may have
//!    been marked while absent, when it had no links to follow.
//!
//! Invariant after each catch-up: (a) every root — pin root, pinned-scope member,
//! temp-pinned key, key put since the start — is marked; (b) every marked key that is
//! stored has had its current links walked. (a) holds because pins and temp pins are read
//! whole in `T`, scope members get increasing numbers, and puts are logged inside their
//! own lane transaction. (b) holds because a `blob_index` row's links never change (written
//! with it, deleted with it) and a key that had no row when it was marked gets its row
//! later, numbered after that look's `seen_seq`, so step 3 expands it. By (b) the marked
//! keys are closed under links, so by (a) everything reachable from a root is marked, and
//! `T` deletes only unmarked candidates. Temp pins are registered before their blobs are
//! submitted and the lane runs one transaction at a time, so nothing becomes live between
//! the catch-up and the deletes of `T`.
//!
//! Hence a blob put after the collection started is never deleted by it (an epoch): new
//! blobs committed after `S` are no candidates, and a re-put of a stored blob, or a put
//! committed between the start and `S`, is in the put log. An application that puts a
//! blob and pins it a moment later does not race a collection. Marking is conservative
//! (puts are live for the whole run, unpinned ones too): a collection may keep garbage for
//! the next one, never the other way round.

mod mark;
pub(crate) mod put_log;

use std::sync::Arc;

use parking_lot::Mutex;
use seedbank_blobstore::rows::{self, StoredRow};
use seedbank_blobstore::rusqlite::Connection;
use seedbank_blobstore::{PoolKind, Priority, PutOptions};

use crate::access;
use crate::delete::{bump_generation, delete_key, max_seq, Freed};
use crate::error::{Result, SqlContext};
use crate::pin::Key;
use crate::pin::TempPins;
use mark::{Mark, Why};
use put_log::PutLog;
use put_log::Watch;
use seedbank_blobstore::Store;

/// Options for [`Index::gc`](crate::Index::gc).
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
///
/// A collection starts when [`Index::gc`](crate::Index::gc) is called. A blob put through
/// the index after that (new, or put again) is not deleted by it, nor is anything a put,
/// pin, scope member or temp pin made live meanwhile (see the `gc` module docs and
/// `docs/design.md`); [`GcReport::kept_late_by`] counts those kept, by cause.
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
    /// Candidates found live during the sweep and kept: the sum of [`GcReport::kept_late_by`].
    pub kept_late: u64,
    /// Why the candidates counted in [`GcReport::kept_late`] were kept.
    pub kept_late_by: KeptLate,
    /// Sweep batches (lane writes).
    pub batches: u64,
    /// Vacuum steps run.
    pub vacuum_steps: u64,
    /// Free pages left in the file afterwards.
    pub free_pages: u64,
}

/// Why candidates of a collection were kept after its mark: what made each live first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct KeptLate {
    /// Put (again) since the collection started, or reached from a blob put since then (a
    /// new parent, a new version of a DAG sharing it).
    pub puts: u64,
    /// A named pin's root or a pinned-scope member seen after the mark, or reached from one.
    pub pins: u64,
    /// Temp-pinned after the mark (an import, a sync, an application's write), or reached
    /// from a temp-pinned blob.
    pub temp_pins: u64,
}

impl KeptLate {
    fn count(&mut self, why: Why) {
        match why {
            // A candidate was unmarked in the snapshot, so never `Mark`; counted as a put
            // rather than lost if that ever changed.
            Why::Put | Why::Mark => self.puts += 1,
            Why::Pin => self.pins += 1,
            Why::TempPin => self.temp_pins += 1,
        }
    }
}

/// The mark and the put-log watch, shared with the sweep batches' lane closures.
struct Sweep {
    mark: Mark,
    watch: Watch,
}

/// A collection in progress, driven one sweep batch at a time. [`Index::gc`](crate::Index::gc) runs one to
/// the end; tests and the model use the steps to interleave other work between batches.
/// Holding it blocks other collections and keeps the put log recording, so finish it.
#[doc(hidden)]
pub struct Collection {
    store: Store,
    temp_pins: Arc<TempPins>,
    _one: tokio::sync::OwnedMutexGuard<()>,
    sweep: Arc<Mutex<Sweep>>,
    candidates: std::vec::IntoIter<Key>,
    left: Vec<Key>,
    opts: GcOptions,
    report: GcReport,
}

/// Starts a collection and runs its mark (see [`Index::begin_gc`](crate::Index::begin_gc)).
pub(crate) async fn begin(
    store: Store,
    temp_pins: Arc<TempPins>,
    put_log: &Arc<PutLog>,
    gc_lock: Arc<tokio::sync::Mutex<()>>,
    opts: GcOptions,
) -> Result<Collection> {
    // Before waiting for another collection: puts from now on are this one's too.
    let watch = put_log.watch();
    let one = gc_lock.lock_owned().await;
    let temp = temp_pins.clone();
    let (sweep, candidates) = access::read(&store, PoolKind::Data, move |conn| {
        let tx = conn.unchecked_transaction().during("begin mark")?;
        let mark = Mark::on_snapshot(&tx, &temp, &watch)?;
        let candidates = candidates(&tx, &mark)?;
        tx.finish().during("end mark")?;
        Ok((Sweep { mark, watch }, candidates))
    })
    .await?;
    let mut report = GcReport {
        dry_run: opts.dry_run,
        marked: sweep.mark.len() as u64,
        candidates: candidates.len() as u64,
        ..Default::default()
    };
    let mut keys = Vec::with_capacity(candidates.len());
    for (key, size) in candidates {
        report.bytes_freed += if opts.dry_run { size } else { 0 };
        keys.push(key);
    }
    if opts.dry_run {
        report.blobs_freed = report.candidates;
        keys.clear();
    }
    Ok(Collection {
        store,
        temp_pins,
        _one: one,
        sweep: Arc::new(Mutex::new(sweep)),
        candidates: keys.into_iter(),
        left: Vec::new(),
        opts,
        report,
    })
}

/// The blobs stored in the mark's snapshot that it did not reach, with their sizes.
fn candidates(conn: &Connection, mark: &Mark) -> Result<Vec<(Key, u64)>> {
    let mut out = Vec::new();
    rows::for_each_stored(conn, |row: StoredRow| {
        let key: Key = (row.mh, row.codec);
        if mark.why_live(&key).is_none() {
            out.push((key, row.size));
        }
        Ok::<_, crate::Error>(())
    })?;
    Ok(out)
}

/// What one sweep batch did.
struct Batch {
    freed: Freed,
    kept: KeptLate,
    rest: Vec<Key>,
}

impl Collection {
    /// What the collection did so far (the mark's counts, then each batch's).
    pub fn report(&self) -> &GcReport {
        &self.report
    }

    /// Runs one sweep batch (one `Background` lane write): catches the mark up, then
    /// deletes the batch's candidates that are still unmarked. Returns false, without
    /// writing, once every candidate was handled.
    ///
    /// # Errors
    /// As [`Index::gc`](crate::Index::gc).
    pub async fn sweep_batch(&mut self) -> Result<bool> {
        let per_batch = self.opts.batch_blobs.max(1);
        let mut chunk = std::mem::take(&mut self.left);
        chunk.extend(
            self.candidates
                .by_ref()
                .take(per_batch.saturating_sub(chunk.len())),
        );
        if chunk.is_empty() {
            return Ok(false);
        }
        let (sweep, temp, budget) = (
            self.sweep.clone(),
            self.temp_pins.clone(),
            self.opts.batch_time,
        );
        let opts = PutOptions::new(Priority::Background, "gc");
        let batch = access::write_deleting(&self.store, opts, move |d| {
            let conn = d.conn();
            let started = std::time::Instant::now();
            let mut sweep = sweep.lock();
            let Sweep { mark, watch } = &mut *sweep;
            mark.catch_up(conn, &temp, watch)?;
            let before = max_seq(conn)?;
            let mut b = Batch {
                freed: Freed::default(),
                kept: KeptLate::default(),
                rest: Vec::new(),
            };
            let (mut changed, mut deleted) = (false, 0u64);
            let mut chunk = chunk.into_iter();
            while let Some(k) = chunk.next() {
                if let Some(why) = mark.why_live(&k) {
                    b.kept.count(why);
                    continue;
                }
                let (f, c) = delete_key(d, &k)?;
                b.freed += f;
                changed |= c;
                deleted += 1;
                // The clock every 16 deletes: at least 16 per batch, so the sweep
                // always progresses.
                if deleted % 16 == 0 && started.elapsed() >= budget {
                    b.rest.extend(chunk);
                    break;
                }
            }
            if changed {
                bump_generation(conn, before)?;
            }
            Ok(b)
        })
        .await?;
        self.left = batch.rest;
        let r = &mut self.report;
        r.batches += 1;
        r.blobs_freed += batch.freed.blobs;
        r.bytes_freed += batch.freed.bytes;
        r.kept_late_by.puts += batch.kept.puts;
        r.kept_late_by.pins += batch.kept.pins;
        r.kept_late_by.temp_pins += batch.kept.temp_pins;
        r.kept_late = r.kept_late_by.puts + r.kept_late_by.pins + r.kept_late_by.temp_pins;
        Ok(true)
    }

    /// Sweeps what is left, gives the freed pages back to the file system in bounded steps
    /// (each one `Background` lane write), and reports.
    ///
    /// # Errors
    /// As [`Index::gc`](crate::Index::gc).
    pub async fn finish(mut self) -> Result<GcReport> {
        while self.sweep_batch().await? {}
        if !self.opts.dry_run {
            self.reclaim().await?;
        } else {
            self.report.free_pages = self.store.space().await?.free_pages;
        }
        Ok(self.report)
    }

    async fn reclaim(&mut self) -> Result<()> {
        let store = &self.store;
        let space = store.space().await?;
        self.report.free_pages = space.free_pages;
        if space.auto_vacuum != 2 {
            return Ok(()); // A file created before auto_vacuum: reuse only (see design doc).
        }
        let mut left = space.free_pages;
        while left > 0 {
            let now = store.vacuum_step(self.opts.vacuum_pages).await?;
            self.report.vacuum_steps += 1;
            if now >= left {
                break; // No progress (pages freed meanwhile by another writer).
            }
            left = now;
        }
        self.report.free_pages = left;
        Ok(())
    }
}

impl std::fmt::Debug for Collection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collection")
            .field("report", &self.report)
            .finish_non_exhaustive()
    }
}

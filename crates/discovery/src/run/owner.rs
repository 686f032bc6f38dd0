//! [`Run`]: the one owner of a run's state. Sessions ask it for work (`claim`), tell it what
//! they learned (`offered`, `fetched`, `lacked`, `deferred`), and ask it what to do when
//! there is nothing to claim (`idle`); nothing else of the run is theirs to touch. It keeps
//! the want table, the counters, the temp pin and the progress channel, and it decides
//! when the scope is complete.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use cid::Cid;
use seedbank_blobstore::{Priority, PutOptions};
use seedbank_index::{Index, TempPin};
use tokio::sync::watch;

use super::ingest::{self, Parsed};
use super::state::{ClaimGuard, Halt, Idle, RunState};
use crate::config::DiscoveryConfig;
use crate::error::{Error, Result};
use crate::haves::Haves;
use crate::item::ItemId;
use crate::local::local_copies;
use crate::progress::{Progress, ProgressTx};
use crate::scope::Scope;

/// Run-wide counters.
#[derive(Default)]
pub(crate) struct RunCounters {
    pub blobs: AtomicU64,
    pub bytes: AtomicU64,
    pub duplicates: AtomicU64,
    pub memberships: AtomicU64,
    pub adopted: AtomicU64,
    /// Blobs and bytes reserved against the run's budget (verified answers about to be
    /// stored, and stored ones).
    reserved: parking_lot::Mutex<(u64, u64)>,
}

impl RunCounters {
    /// Blobs stored so far (fetched or taken from local bytes) and memberships added.
    pub fn progress(&self) -> u64 {
        self.blobs.load(Relaxed) + self.memberships.load(Relaxed) + self.adopted.load(Relaxed)
    }

    pub fn progressed(&self) -> bool {
        self.progress() > 0
    }
}

/// CIDs split by whether they are stored here: written once, for DAG wants and named
/// members alike.
struct Split {
    /// Stored here already (the run's temp pin keeps them).
    stored: Vec<Cid>,
    /// Not stored, but their bytes were here under another codec: stored from those bytes.
    adopted: Vec<Cid>,
    /// To fetch.
    absent: Vec<Cid>,
}

/// One run: its scope, its snapshot, its want table, counters and temp pin.
pub(crate) struct Run {
    pub id: u64,
    scope: Scope,
    index: Index,
    haves: Arc<Haves>,
    config: Arc<DiscoveryConfig>,
    state: RunState,
    pub counters: RunCounters,
    /// Where progress events go (the discovery's subscribers).
    progress: Arc<ProgressTx>,
    /// Serialises completion checks of a DAG scope (each is a walk).
    confirming: tokio::sync::Mutex<()>,
    /// Everything the run stores or relies on joins this temp pin — a DAG scope's root,
    /// blocks it found stored here already, blocks it fetched or adopted — so a collection
    /// running meanwhile never takes a block whose parent has not arrived yet, or one the
    /// run counted as done (or a member before the app pins its scope). Dropped with the
    /// run: keeping the content afterwards is the app's pin.
    pin: TempPin,
}

impl Run {
    pub fn new(
        id: u64,
        scope: Scope,
        index: Index,
        haves: Arc<Haves>,
        config: Arc<DiscoveryConfig>,
        progress: Arc<ProgressTx>,
    ) -> Self {
        let state = RunState::new(config.max_open_wants.max(1));
        // A DAG run relies on what is stored under its root already: the root's temp pin
        // keeps all of it (and what arrives under it) until the run ends.
        let pin = index.temp_pin();
        if let Scope::Dag(root) = &scope {
            pin.add(&[*root]);
        }
        Run {
            id,
            scope,
            pin,
            index,
            haves,
            config,
            state,
            counters: RunCounters::default(),
            confirming: tokio::sync::Mutex::new(()),
            progress,
        }
    }

    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    pub fn config(&self) -> &DiscoveryConfig {
        &self.config
    }

    pub fn haves(&self) -> &Arc<Haves> {
        &self.haves
    }

    pub fn dag(&self) -> bool {
        matches!(self.scope, Scope::Dag(_))
    }

    /// Largest blob this node stores: a peer sending a larger one is at fault.
    pub fn max_blob_size(&self) -> usize {
        self.index.store().config().max_blob_size
    }

    /// True once the run is over (complete, or a limit reached): sessions send nothing
    /// more.
    pub fn is_over(&self) -> bool {
        self.state.is_over()
    }

    pub fn is_complete(&self) -> bool {
        self.state.is_complete()
    }

    pub fn halted(&self) -> Option<Halt> {
        self.state.halted()
    }

    pub fn halt(&self, halt: Halt) {
        self.state.halt(halt);
    }

    pub async fn wait_over(&self) {
        self.state.wait_over().await;
    }

    /// Registers `session` as live until the guard drops (its claims and offers go then).
    pub fn join(&self, session: u64) -> ClaimGuard<'_> {
        ClaimGuard::new(&self.state, session)
    }

    /// A receiver that sees every later change of the want table.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.state.subscribe()
    }

    /// `session`'s peer answered a reconciliation round.
    pub fn answered(&self, session: u64) {
        self.state.answered(session);
    }

    /// What `session`'s reconciliation learned: for a DAG scope the ids its peer has that
    /// the snapshot lacks (offers, claimed as they become wants), for a named scope the
    /// CIDs its peer resolved (members to fetch from it).
    pub async fn offered(
        &self,
        session: u64,
        resolved: Vec<Cid>,
        offered: Vec<ItemId>,
    ) -> Result<()> {
        match &self.scope {
            Scope::Dag(_) => self.state.offer(session, offered),
            Scope::Named(name) if self.config.trust_named_members => {
                self.trusted_members(session, name, resolved).await?;
            }
            Scope::Named(_) => {
                // Membership is what a peer sends: every member it names is fetched from
                // it, stored here already or not, and joins the scope when it arrives.
                let ids: Vec<ItemId> = resolved.iter().map(ItemId::of).collect();
                self.state.want(resolved);
                self.state.offer(session, ids);
            }
        }
        Ok(())
    }

    /// Claims the next batch for `session`: wants its peer offers first, then (DAG scopes)
    /// open wants to probe its peer for.
    pub fn claim(&self, session: u64, max: usize) -> Vec<Cid> {
        self.state
            .claim(session, max.min(self.config.fetch_batch), self.dag())
    }

    /// Reserves an answer of `blobs` blobs and `bytes` bytes against the run's budget;
    /// false (and nothing reserved) if it would pass it.
    pub fn reserve(&self, blobs: u64, bytes: u64) -> bool {
        let mut reserved = self.counters.reserved.lock();
        let (b, n) = (reserved.0 + blobs, reserved.1 + bytes);
        if b > self.config.max_run_blobs || n > self.config.max_run_bytes {
            return false;
        }
        *reserved = (b, n);
        true
    }

    /// `session`'s peer did not send `cids` it was asked for: released, never asked of it
    /// again this run. True if its peer had offered any of them.
    pub fn lacked(&self, session: u64, cids: &[Cid]) -> bool {
        !cids.is_empty() && self.state.lacked(session, cids)
    }

    /// `session`'s peer had no room for `cids` in its answer: released, to be asked again
    /// (of it too).
    pub fn deferred(&self, session: u64, cids: &[Cid]) {
        if !cids.is_empty() {
            self.state.release(session, cids);
        }
    }

    /// Stores a batch `session` fetched and verified (still claimed by it), then marks it
    /// fetched together with the new wants its links revealed (DAG scopes), in one step, and
    /// checks whether the scope is complete. Returns how many blobs it stored.
    pub async fn fetched(&self, session: u64, blobs: Vec<Parsed>) -> Result<u64> {
        let fetched: Vec<Cid> = blobs.iter().map(|p| *p.cid()).collect();
        let bytes: usize = blobs.iter().map(|p| p.blob.len()).sum();
        let children = if self.dag() {
            self.new_wants(ingest::children(&blobs, &self.haves))
                .await?
        } else {
            Vec::new()
        };
        self.ingest(blobs).await?;
        let duplicates = self.state.fetched(session, &fetched, children);
        let c = &self.counters;
        c.blobs.fetch_add(fetched.len() as u64, Relaxed);
        c.bytes.fetch_add(bytes as u64, Relaxed);
        c.duplicates.fetch_add(duplicates, Relaxed);
        self.report_progress(false);
        if self.dag() && self.state.is_idle() && !self.is_over() {
            self.confirm_dag_complete().await?;
        }
        Ok(fetched.len() as u64)
    }

    /// What `session`, with nothing to claim, should do.
    pub fn idle(&self, session: u64) -> Idle {
        self.state.idle(session, self.dag())
    }

    /// `session` ended well. Named scopes: its peer counts towards the quorum if its
    /// reconciliation left nothing to fetch (it sent everything it offered).
    pub fn finished(&self, session: u64, lacked: bool) {
        if !self.dag() && !lacked && self.state.all_done(session) {
            self.state.synced();
        }
    }

    /// Sends the run's totals so far to progress subscribers.
    pub fn report_progress(&self, finished: bool) {
        let (wanted, peers_active) = self.state.counts();
        self.progress.send(Progress {
            run: self.id,
            scope: self.scope.clone(),
            blobs_fetched: self.counters.blobs.load(Relaxed),
            bytes_fetched: self.counters.bytes.load(Relaxed),
            wanted,
            peers_active,
            finished,
        });
    }

    /// Stores blobs through the one ingest path.
    async fn ingest(&self, blobs: Vec<Parsed>) -> Result<()> {
        let source = &self.config.source;
        ingest::store(&self.index, &self.scope, source, &self.pin, blobs).await
    }

    /// `cids` split into those stored here and those not (each in order): the store's
    /// answer, nothing else.
    async fn partition(&self, cids: Vec<Cid>) -> Result<(Vec<Cid>, Vec<Cid>)> {
        let stored = self.index.store().has_many(&cids).await?;
        let (mut here, mut absent) = (Vec::new(), Vec::new());
        for (cid, stored) in cids.into_iter().zip(stored) {
            if stored {
                here.push(cid)
            } else {
                absent.push(cid)
            }
        }
        Ok((here, absent))
    }

    /// The stored / absent split: pins `cids` first (what it finds stored stays stored for
    /// the run), then of the absent ones stores those whose bytes are here under another
    /// codec from those bytes.
    async fn split(&self, cids: Vec<Cid>) -> Result<Split> {
        self.pin.add(&cids);
        let (stored, absent) = self.partition(cids).await?;
        let copies = local_copies(&self.index, &absent).await?;
        let adopted: Vec<Cid> = copies.iter().map(|b| *b.cid()).collect();
        self.ingest(copies.into_iter().map(Parsed::new).collect())
            .await?;
        self.counters
            .adopted
            .fetch_add(adopted.len() as u64, Relaxed);
        let taken: HashSet<ItemId> = adopted.iter().map(ItemId::of).collect();
        let absent = absent
            .into_iter()
            .filter(|c| !taken.contains(&ItemId::of(c)))
            .collect();
        Ok(Split {
            stored,
            adopted,
            absent,
        })
    }

    /// Named scopes whose peers are trusted with membership (`trust_named_members`): the
    /// members `session`'s peer resolved that are stored here join the scope without a
    /// fetch; the rest become wants it offers.
    async fn trusted_members(&self, session: u64, name: &str, resolved: Vec<Cid>) -> Result<()> {
        let fresh: Vec<Cid> = resolved
            .iter()
            .filter(|c| !self.state.knows(&ItemId::of(c)))
            .copied()
            .collect();
        let Split {
            stored,
            adopted,
            mut absent,
        } = self.split(fresh).await?;
        let mut kept = Vec::new();
        if !stored.is_empty() {
            let opts = PutOptions::new(Priority::Normal, &self.config.source);
            let (index, name, cids) = (self.index.clone(), name.to_string(), stored.clone());
            let added =
                ingest::finish(async move { index.add_to_scope(&name, &cids, opts).await }).await?;
            self.counters.memberships.fetch_add(added, Relaxed);
            // A forced delete may have removed some of them since the split
            // (`add_to_scope` skips what is not stored; a collection cannot, they are
            // temp-pinned): those are wanted after all.
            let (still, gone) = self.partition(stored).await?;
            kept = still;
            absent.extend(gone);
        }
        self.state.want(absent);
        let here: HashSet<ItemId> = kept.iter().chain(&adopted).map(ItemId::of).collect();
        let offered: Vec<ItemId> = resolved
            .iter()
            .map(ItemId::of)
            .filter(|id| !here.contains(id))
            .collect();
        self.state.offer(session, offered);
        Ok(())
    }

    /// Blocks a DAG needs that become wants (links of fetched blocks, what the index finds
    /// missing): those stored here already (outside the snapshot) are walked for what is
    /// missing under them instead, and those whose bytes are stored here under another
    /// codec are stored from those bytes, then walked likewise.
    async fn new_wants(&self, links: Vec<Cid>) -> Result<Vec<Cid>> {
        let mut seen = HashSet::new();
        let mut pending = links;
        let mut wants = Vec::new();
        // Each pass stores what it can from local bytes and walks below it; a block adopted
        // may link to more blocks held here under another codec.
        while !pending.is_empty() {
            let unknown: Vec<Cid> = pending
                .drain(..)
                .filter(|c| {
                    let id = ItemId::of(c);
                    seen.insert(id) && !self.state.knows(&id)
                })
                .collect();
            let split = self.split(unknown).await?;
            wants.extend(split.absent);
            let limit = self.index.config().reachable_limit;
            for cid in split.stored.into_iter().chain(split.adopted) {
                let below = self.index.walk(&cid, limit).await?;
                if !below.complete {
                    return Err(seedbank_index::Error::LimitExceeded { root: cid, limit }.into());
                }
                pending.extend(below.missing);
            }
        }
        Ok(wants)
    }

    /// DAG scopes: the snapshot's missing blocks become the first wants, and a root stored
    /// here with nothing missing is complete before any peer is asked.
    pub async fn first_wants(&self) -> Result<()> {
        let Scope::Dag(root) = &self.scope else {
            return Ok(());
        };
        let wants = self.new_wants(self.haves.missing().to_vec()).await?;
        self.state.want(wants);
        if self.haves.missing().is_empty() && self.haves.contains(root) {
            self.state.set_complete();
        }
        Ok(())
    }

    /// With every known want fetched, asks the index whether the DAG is complete; if not,
    /// what it still misses becomes wants.
    pub async fn confirm_dag_complete(&self) -> Result<()> {
        let Scope::Dag(root) = &self.scope else {
            return Ok(());
        };
        let _one = self.confirming.lock().await;
        if self.state.is_over() || !self.state.is_idle() {
            return Ok(());
        }
        let missing = self.index.missing(root).await?;
        if missing.is_empty() {
            self.state.set_complete();
        } else {
            let wants = self.new_wants(missing).await?;
            if wants.is_empty() {
                // Stored from local bytes: look again.
                if self.index.missing(root).await?.is_empty() {
                    self.state.set_complete();
                }
            }
            self.state.want(wants);
        }
        Ok(())
    }

    /// Named scopes, after a session ended: complete once `named_quorum` peers'
    /// reconciliations left nothing to fetch, every fetched blob is committed, nothing known
    /// is still wanted, and no session is running (`running`): a peer still at work — even
    /// one that has not answered yet — may bring members the others lack, so the first
    /// peer to finish does not decide alone. A peer that never answers delays completion by
    /// its call timeout at most.
    pub fn check_named_complete(&self, running: bool) {
        if self.dag() || running || self.state.is_over() {
            return;
        }
        let has_members = !self.haves.is_empty() || self.counters.progressed();
        let quorum = self.state.synced_peers() >= self.config.named_quorum.max(1);
        if quorum && has_members && self.state.settled() {
            self.state.set_complete();
        }
    }

    /// Turns a halt into the error that carries the run's report.
    pub fn halt_error(halt: Halt, report: crate::report::Report) -> Error {
        match halt {
            Halt::OpenWants(limit) => Error::TooManyWants {
                limit,
                report: Box::new(report),
            },
            Halt::Timeout(timeout) => Error::RunTimedOut {
                timeout,
                report: Box::new(report),
            },
        }
    }
}

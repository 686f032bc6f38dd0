//! The state one discovery run shares between its peer sessions: what the scope still
//! wants, who claimed what, and whether the run is over (the scope complete, or a run limit
//! reached).
//!
//! A want is claimed by exactly one session at a time, so no blob is fetched from two peers
//! at once; a session that fails or is cancelled releases its claims (its [`ClaimGuard`]
//! does, on drop) for another session to take. Every change bumps a version on a watch
//! channel, which sessions with nothing to claim wait on.
//!
//! DAG scopes also *probe*: a block may sit on a peer that does not hold its ancestors (a
//! partial replica), so that peer's own DAG snapshot does not offer it. A DAG session that
//! has nothing offered left to claim asks its peer for open wants that no live session
//! offers and that it has not asked this peer for yet. Each want remembers which sessions'
//! peers lacked it; a DAG session ends only once no live session can make progress.
//!
//! **Bounded and sub-linear.** A run holds at most `max_open_wants` wants open (known, not
//! fetched yet, claimed ones included); one more ends the run ([`RunState::halted`]). No
//! call scans the open wants: open wants sit in a queue ordered by when they (last) opened,
//! each live session keeps the open wants its peer offers in that order (so a claim takes
//! them from the front), a probe resumes where the session's last probe stopped (a want
//! that opens again, or that a departed session offered, is queued again at the back, so
//! every probe cursor meets it once more), and every session id carries a count of the
//! open wants its peer was not asked for yet, so `idle` is a look at those counts. A claim
//! costs O(log n) per want handed out plus, amortised, one step per want a probe passed
//! over; `idle` costs O(sessions) plus O(claimed) for named scopes.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Duration;

use cid::Cid;
use parking_lot::Mutex;
use tokio::sync::watch;

use crate::item::ItemId;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WantState {
    Open,
    Claimed(u64),
    Done,
}

#[derive(Debug)]
struct Want {
    cid: Cid,
    state: WantState,
    /// Its place in the open queue while it is open (a new one each time it opens).
    seq: u64,
    /// Sessions whose peer was asked for it and did not send it.
    tried: Vec<u64>,
    /// Live sessions whose peer offers it.
    offered_by: Vec<u64>,
}

/// A session between its start and its end.
#[derive(Default)]
struct Live {
    /// Ids its peer offers: has, and the run's snapshot lacks.
    offered: HashSet<ItemId>,
    /// The open wants among `offered`, in open-queue order.
    claimable: BTreeSet<(u64, ItemId)>,
    /// Open wants queued before this place were looked at by this session's probes.
    probe_from: u64,
    /// True once its peer answered a reconciliation round.
    answered: bool,
}

/// Why a run stopped before its scope was complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Halt {
    /// A want would have passed `max_open_wants` (the limit).
    OpenWants(usize),
    /// The run passed its `run_timeout`.
    Timeout(Duration),
}

/// Where the run stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Running,
    Complete,
    Halted(Halt),
}

/// Every want, with the open and claimed ones indexed apart so that handing out claims
/// and checking for work in flight never scans the (growing) set of done ones, nor the
/// open ones.
struct Table {
    wants: HashMap<ItemId, Want>,
    /// Open wants by their place in the queue: claims go out in a deterministic order.
    open: BTreeMap<u64, ItemId>,
    next_seq: u64,
    /// Claimed wants and the session holding each.
    claimed: HashMap<ItemId, u64>,
    /// For every session id that ever joined: open wants its peer was not asked for.
    untried: HashMap<u64, usize>,
    synced_peers: usize,
    /// Sessions running now.
    live: BTreeMap<u64, Live>,
    /// Most wants open or claimed at once.
    max_open: usize,
}

/// What adding a want did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Added {
    New,
    Known,
    /// Not added: `max_open` wants are open or claimed already.
    Full,
}

impl Table {
    fn new(max_open: usize) -> Self {
        Table {
            wants: HashMap::new(),
            open: BTreeMap::new(),
            next_seq: 0,
            claimed: HashMap::new(),
            untried: HashMap::new(),
            synced_peers: 0,
            live: BTreeMap::new(),
            max_open,
        }
    }

    fn outstanding(&self) -> usize {
        self.open.len() + self.claimed.len()
    }

    /// Moves a known want to `to`; returns its previous state.
    fn set(&mut self, id: &ItemId, to: WantState) -> Option<WantState> {
        let from = self.wants.get(id)?.state;
        match from {
            WantState::Open => self.close(id),
            WantState::Claimed(_) => {
                self.claimed.remove(id);
            }
            WantState::Done => {}
        }
        self.wants.get_mut(id).expect("known").state = to;
        match to {
            WantState::Open => self.reopen(id),
            WantState::Claimed(session) => {
                self.claimed.insert(*id, session);
            }
            WantState::Done => {}
        }
        Some(from)
    }

    /// Takes an open want out of the queue and of its offerers' claimable sets.
    fn close(&mut self, id: &ItemId) {
        let want = &self.wants[id];
        self.open.remove(&want.seq);
        for session in &want.offered_by {
            if let Some(live) = self.live.get_mut(session) {
                live.claimable.remove(&(want.seq, *id));
            }
        }
        for (session, count) in self.untried.iter_mut() {
            if !want.tried.contains(session) {
                *count -= 1;
            }
        }
    }

    /// Queues a want (its state already `Open`) at the back of the open queue.
    fn reopen(&mut self, id: &ItemId) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let want = self.wants.get_mut(id).expect("known");
        want.seq = seq;
        self.open.insert(seq, *id);
        for session in &want.offered_by {
            if let Some(live) = self.live.get_mut(session) {
                live.claimable.insert((seq, *id));
            }
        }
        for (session, count) in self.untried.iter_mut() {
            if !want.tried.contains(session) {
                *count += 1;
            }
        }
    }

    /// Adds `cid` as an open want unless it is known, or the table is full.
    fn add(&mut self, cid: Cid) -> Added {
        let id = ItemId::of(&cid);
        if self.wants.contains_key(&id) {
            return Added::Known;
        }
        if self.outstanding() >= self.max_open {
            return Added::Full;
        }
        let offered_by = self
            .live
            .iter()
            .filter(|(_, live)| live.offered.contains(&id))
            .map(|(s, _)| *s)
            .collect();
        let want = Want {
            cid,
            state: WantState::Open,
            seq: 0,
            tried: Vec::new(),
            offered_by,
        };
        self.wants.insert(id, want);
        self.reopen(&id);
        Added::New
    }

    /// Records that `session`'s peer was asked for `id` and did not send it.
    fn tried(&mut self, id: &ItemId, session: u64) {
        let Some(want) = self.wants.get_mut(id) else {
            return;
        };
        if want.tried.contains(&session) {
            return;
        }
        want.tried.push(session);
        if want.state == WantState::Open {
            if let Some(count) = self.untried.get_mut(&session) {
                *count -= 1;
            }
        }
    }

    /// True if `session` may probe its peer for the open want `id`: it has not asked it
    /// yet, and no other live session's peer offers it (that one will fetch it).
    fn probeable(&self, session: u64, id: &ItemId) -> bool {
        let want = &self.wants[id];
        !want.tried.contains(&session) && want.offered_by.iter().all(|s| *s == session)
    }
}

/// What a session with nothing to claim should do.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Idle {
    /// Nothing this peer has can be wanted any more.
    Finished,
    /// Another session holds claims whose outcome may give this one work.
    Wait,
}

/// Shared state of one run.
pub(crate) struct RunState {
    table: Mutex<Table>,
    version: watch::Sender<u64>,
    phase: watch::Sender<Phase>,
}

impl RunState {
    /// A run that holds at most `max_open_wants` wants open or claimed at once.
    pub fn new(max_open_wants: usize) -> Self {
        RunState {
            table: Mutex::new(Table::new(max_open_wants)),
            version: watch::channel(0).0,
            phase: watch::channel(Phase::Running).0,
        }
    }

    fn changed(&self) {
        self.version.send_modify(|v| *v += 1);
    }

    /// A receiver that sees every later change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// Waits until the run is over: the scope complete, or a limit reached.
    pub async fn wait_over(&self) {
        let mut phase = self.phase.subscribe();
        let _ = phase.wait_for(|p| *p != Phase::Running).await;
    }

    /// True once the scope is complete.
    pub fn is_complete(&self) -> bool {
        *self.phase.borrow() == Phase::Complete
    }

    /// True once the run is over (the scope complete, or a limit reached): sessions send
    /// nothing more.
    pub fn is_over(&self) -> bool {
        *self.phase.borrow() != Phase::Running
    }

    /// The limit that ended the run, if one did.
    pub fn halted(&self) -> Option<Halt> {
        match *self.phase.borrow() {
            Phase::Halted(halt) => Some(halt),
            _ => None,
        }
    }

    /// Marks the scope complete, unless the run is over already.
    pub fn set_complete(&self) {
        self.end(Phase::Complete);
    }

    /// Ends the run because of `halt`, unless it is over already.
    pub fn halt(&self, halt: Halt) {
        self.end(Phase::Halted(halt));
    }

    fn end(&self, to: Phase) {
        let ended = self.phase.send_if_modified(|phase| {
            let running = *phase == Phase::Running;
            if running {
                *phase = to;
            }
            running
        });
        if ended {
            self.changed();
        }
    }

    /// Adds wants not known yet (in any state); returns how many were new. Past
    /// `max_open_wants` the rest are dropped and the run halts.
    pub fn want(&self, cids: impl IntoIterator<Item = Cid>) -> usize {
        let mut table = self.table.lock();
        let (added, full) = add_all(&mut table, cids);
        drop(table);
        if full {
            self.halt_full();
        }
        if added > 0 {
            self.changed();
        }
        added
    }

    fn halt_full(&self) {
        let limit = self.table.lock().max_open;
        tracing::debug!(limit, "discovery run over its open-want limit");
        self.halt(Halt::OpenWants(limit));
    }

    /// True if `id` is wanted in any state (open, claimed or already fetched).
    pub fn knows(&self, id: &ItemId) -> bool {
        self.table.lock().wants.contains_key(id)
    }

    /// Claims up to `max` open wants its peer offers for `session`; with `probe` (DAG
    /// scopes), fills the rest with open wants it may probe its peer for.
    pub fn claim(&self, session: u64, max: usize, probe: bool) -> Vec<Cid> {
        let mut table = self.table.lock();
        let mut picked = Vec::new();
        while picked.len() < max {
            let next = table
                .live
                .get(&session)
                .and_then(|live| live.claimable.first().copied());
            let Some((_, id)) = next else { break };
            table.set(&id, WantState::Claimed(session));
            picked.push(table.wants[&id].cid);
        }
        if probe && picked.len() < max {
            let Some(mut cursor) = table.live.get(&session).map(|l| l.probe_from) else {
                return picked;
            };
            while picked.len() < max {
                let Some((&seq, &id)) = table.open.range(cursor..).next() else {
                    break;
                };
                cursor = seq + 1;
                if table.probeable(session, &id) {
                    table.set(&id, WantState::Claimed(session));
                    picked.push(table.wants[&id].cid);
                }
            }
            if let Some(live) = table.live.get_mut(&session) {
                live.probe_from = cursor;
            }
        }
        picked
    }

    /// `session`'s peer did not send `cids` it was asked for: they are released, and never
    /// asked of that peer again in this run. True if its peer had offered any of them.
    pub fn lacked(&self, session: u64, cids: &[Cid]) -> bool {
        let mut table = self.table.lock();
        let mut offered = false;
        for cid in cids {
            let id = ItemId::of(cid);
            if let Some(live) = table.live.get_mut(&session) {
                offered |= live.offered.remove(&id);
            }
            if let Some(want) = table.wants.get_mut(&id) {
                want.offered_by.retain(|s| *s != session);
                let seq = want.seq;
                if let Some(live) = table.live.get_mut(&session) {
                    live.claimable.remove(&(seq, id));
                }
            }
            table.tried(&id, session);
        }
        drop(table);
        self.release(session, cids);
        offered
    }

    /// Registers a session that started.
    pub fn join(&self, session: u64) {
        let mut table = self.table.lock();
        table.live.insert(session, Live::default());
        // A session id new to the run was asked for nothing yet (a peer synced again in a
        // later pass keeps its id and its count).
        let open = table.open.len();
        table.untried.entry(session).or_insert(open);
        drop(table);
        self.changed();
    }

    /// Records that `session`'s peer answered a reconciliation round.
    pub fn answered(&self, session: u64) {
        if let Some(live) = self.table.lock().live.get_mut(&session) {
            live.answered = true;
        }
    }

    /// Records the ids `session`'s peer offers (it has them and the run's snapshot lacks
    /// them): the session claims those that are wanted, and other sessions do not probe
    /// their peers for them.
    pub fn offer(&self, session: u64, offered: impl IntoIterator<Item = ItemId>) {
        let mut guard = self.table.lock();
        let table = &mut *guard;
        let Some(live) = table.live.get_mut(&session) else {
            return;
        };
        for id in offered {
            if !live.offered.insert(id) {
                continue;
            }
            if let Some(want) = table.wants.get_mut(&id) {
                want.offered_by.push(session);
                if want.state == WantState::Open {
                    live.claimable.insert((want.seq, id));
                }
            }
        }
        drop(guard);
        self.changed();
    }

    /// Ends `session`: its claims return to the open pool, its offers are withdrawn (an
    /// open want only it offered may now be probed for by others: queued again).
    pub fn leave(&self, session: u64) {
        let mut table = self.table.lock();
        if let Some(live) = table.live.remove(&session) {
            for id in live.offered {
                let Some(want) = table.wants.get_mut(&id) else {
                    continue;
                };
                want.offered_by.retain(|s| *s != session);
                if want.state == WantState::Open {
                    table.close(&id);
                    table.reopen(&id);
                }
            }
        }
        drop(table);
        self.release_all(session);
        self.changed();
    }

    /// Named scopes: true when nothing is open or claimed (every fetched blob is committed)
    /// and no live session whose peer answered is still at work.
    pub fn settled(&self) -> bool {
        let table = self.table.lock();
        table.open.is_empty()
            && table.claimed.is_empty()
            && !table.live.values().any(|live| live.answered)
    }

    /// Returns `session`'s claims on `cids` to the open pool.
    pub fn release(&self, session: u64, cids: &[Cid]) {
        let mut table = self.table.lock();
        for cid in cids {
            let id = ItemId::of(cid);
            if table.wants.get(&id).map(|w| w.state) == Some(WantState::Claimed(session)) {
                table.set(&id, WantState::Open);
            }
        }
        drop(table);
        self.changed();
    }

    /// Returns every claim of `session` to the open pool.
    pub fn release_all(&self, session: u64) {
        let mut table = self.table.lock();
        let held: Vec<ItemId> = table
            .claimed
            .iter()
            .filter(|(_, s)| **s == session)
            .map(|(id, _)| *id)
            .collect();
        for id in &held {
            table.set(id, WantState::Open);
        }
        drop(table);
        if !held.is_empty() {
            self.changed();
        }
    }

    /// Marks `session`'s claims on `fetched` done and adds `children` as new wants, in one
    /// step (so no observer sees the scope idle in between). Returns how many of `fetched`
    /// were already done: duplicates. Past `max_open_wants` the rest of `children` are
    /// dropped and the run halts.
    pub fn fetched(&self, session: u64, fetched: &[Cid], children: Vec<Cid>) -> u64 {
        let mut table = self.table.lock();
        let mut duplicates = 0;
        for cid in fetched {
            let id = ItemId::of(cid);
            match table.set(&id, WantState::Done) {
                Some(WantState::Claimed(s)) if s == session => {}
                _ => duplicates += 1,
            }
        }
        let (_, full) = add_all(&mut table, children);
        drop(table);
        if full {
            self.halt_full();
        }
        self.changed();
        duplicates
    }

    /// True when nothing is open or claimed: every want known so far was fetched.
    pub fn is_idle(&self) -> bool {
        let table = self.table.lock();
        table.open.is_empty() && table.claimed.is_empty()
    }

    /// True if every id `session`'s peer offers that is wanted has been fetched.
    pub fn all_done(&self, session: u64) -> bool {
        let table = self.table.lock();
        table.live.get(&session).is_none_or(|live| {
            live.offered.iter().all(|id| {
                table
                    .wants
                    .get(id)
                    .is_none_or(|w| w.state == WantState::Done)
            })
        })
    }

    /// What `session`, with nothing to claim, should do. In a DAG scope, a fetch in flight
    /// anywhere may reveal new wants (its links), and an open want another live session
    /// has not asked its peer for may still be found: the session waits until no live
    /// session can make progress. In a named scope only a failed claim on a want its peer
    /// offers can give this session work.
    pub fn idle(&self, session: u64, dag: bool) -> Idle {
        let table = self.table.lock();
        let waiting = if dag {
            !table.claimed.is_empty()
                || table
                    .live
                    .keys()
                    .any(|s| *s != session && table.untried.get(s).is_some_and(|count| *count > 0))
        } else {
            table
                .live
                .get(&session)
                .is_some_and(|live| table.claimed.keys().any(|id| live.offered.contains(id)))
        };
        if waiting {
            Idle::Wait
        } else {
            Idle::Finished
        }
    }

    /// Counts a peer whose reconciliation left nothing to fetch.
    pub fn synced(&self) {
        self.table.lock().synced_peers += 1;
    }

    /// Distinct wants known (in any state) and live sessions, for progress events.
    pub fn counts(&self) -> (u64, u64) {
        let table = self.table.lock();
        (table.wants.len() as u64, table.live.len() as u64)
    }

    /// Wants open or claimed now (at most `max_open_wants`).
    #[cfg(test)]
    pub fn outstanding(&self) -> usize {
        self.table.lock().outstanding()
    }

    /// Peers counted by [`RunState::synced`].
    pub fn synced_peers(&self) -> usize {
        self.table.lock().synced_peers
    }
}

/// Adds `cids` as wants until the table is full; returns how many were new and whether
/// some were dropped because it was full.
fn add_all(table: &mut Table, cids: impl IntoIterator<Item = Cid>) -> (usize, bool) {
    let mut added = 0;
    for cid in cids {
        match table.add(cid) {
            Added::New => added += 1,
            Added::Known => {}
            Added::Full => return (added, true),
        }
    }
    (added, false)
}

/// Registers a session as live for as long as it runs, and releases its claims and offers
/// when it ends, however it ends.
pub(crate) struct ClaimGuard<'a> {
    state: &'a RunState,
    session: u64,
}

impl<'a> ClaimGuard<'a> {
    pub fn new(state: &'a RunState, session: u64) -> Self {
        state.join(session);
        ClaimGuard { state, session }
    }
}

impl Drop for ClaimGuard<'_> {
    fn drop(&mut self) {
        self.state.leave(self.session);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use seedbank_blobstore::{codec, Blob};

    fn cids(n: u16) -> Vec<Cid> {
        (0..n)
            .map(|i| *Blob::new(codec::RAW, i.to_le_bytes().to_vec()).cid())
            .collect()
    }

    fn ids(cids: &[Cid]) -> Vec<ItemId> {
        cids.iter().map(ItemId::of).collect()
    }

    impl RunState {
        /// Recomputes every index of the table from the wants and compares.
        fn check(&self) {
            let table = self.table.lock();
            let open: BTreeMap<u64, ItemId> = table
                .wants
                .iter()
                .filter(|(_, w)| w.state == WantState::Open)
                .map(|(id, w)| (w.seq, *id))
                .collect();
            assert_eq!(open, table.open);
            let claimed: HashMap<ItemId, u64> = table
                .wants
                .iter()
                .filter_map(|(id, w)| match w.state {
                    WantState::Claimed(s) => Some((*id, s)),
                    _ => None,
                })
                .collect();
            assert_eq!(claimed, table.claimed);
            assert!(table.outstanding() <= table.max_open);
            for (session, count) in &table.untried {
                let expected = open
                    .values()
                    .filter(|id| !table.wants[id].tried.contains(session))
                    .count();
                assert_eq!(*count, expected, "untried of session {session}");
            }
            for (session, live) in &table.live {
                let expected: BTreeSet<(u64, ItemId)> = open
                    .iter()
                    .filter(|(_, id)| live.offered.contains(id))
                    .map(|(seq, id)| (*seq, *id))
                    .collect();
                assert_eq!(live.claimable, expected, "claimable of session {session}");
                for (id, want) in &table.wants {
                    assert_eq!(
                        live.offered.contains(id),
                        want.offered_by.contains(session),
                        "offered_by"
                    );
                }
            }
        }

        /// The brute-force answer to `idle` for DAG scopes.
        fn idle_reference(&self, session: u64) -> Idle {
            let table = self.table.lock();
            let waiting = !table.claimed.is_empty()
                || table.open.values().any(|id| {
                    let tried = &table.wants[id].tried;
                    table
                        .live
                        .keys()
                        .any(|s| *s != session && !tried.contains(s))
                });
            if waiting {
                Idle::Wait
            } else {
                Idle::Finished
            }
        }
    }

    #[test]
    fn a_want_is_claimed_once_and_released_on_failure() {
        let state = RunState::new(usize::MAX);
        let all = cids(4);
        assert_eq!(state.want(all.clone()), 4);
        let guards: Vec<ClaimGuard<'_>> = (1..=4).map(|s| ClaimGuard::new(&state, s)).collect();
        for s in 1..=4 {
            state.offer(s, ids(&all));
        }
        let first = state.claim(1, 3, false);
        let second = state.claim(2, 3, false);
        assert_eq!((first.len(), second.len()), (3, 1));
        assert_eq!(state.claim(3, 3, false), Vec::<Cid>::new());
        assert_eq!(state.idle(3, false), Idle::Wait);
        state.release_all(1);
        assert_eq!(state.claim(3, 8, false).len(), 3);
        assert_eq!(state.fetched(2, &second, Vec::new()), 0);
        assert_eq!(
            state.fetched(2, &second, Vec::new()),
            1,
            "fetched twice is a duplicate"
        );
        assert!(!state.is_idle());
        state.release(3, &first);
        assert_eq!(state.fetched(4, &state.claim(4, 8, false), Vec::new()), 0);
        assert!(state.is_idle() && state.all_done(4));
        assert_eq!(state.idle(4, true), Idle::Finished);
        state.check();
        drop(guards);
        state.check();
    }

    #[test]
    fn dag_sessions_probe_what_nobody_offers_and_never_ask_one_peer_twice() {
        let state = RunState::new(usize::MAX);
        let all = cids(4);
        state.want(all.clone());
        let (_a, _b) = (ClaimGuard::new(&state, 1), ClaimGuard::new(&state, 2));
        // Session 2's peer offers the first want: session 1 does not probe for it.
        state.offer(2, [ItemId::of(&all[0])]);
        let probed = state.claim(1, 8, true);
        assert_eq!(probed.len(), 3);
        assert!(!probed.contains(&all[0]));
        state.lacked(1, &probed);
        assert_eq!(state.claim(1, 8, true), Vec::<Cid>::new());
        assert_eq!(state.idle(1, true), Idle::Wait, "session 2 may have them");
        let got = state.claim(2, 8, true);
        assert_eq!(got.len(), 4, "its offer, then the probes");
        assert!(state.lacked(2, &got), "its peer had offered one of them");
        assert_eq!(state.claim(1, 8, true), vec![all[0]]);
        state.lacked(1, &[all[0]]);
        assert_eq!(state.idle(1, true), Idle::Finished, "nobody can progress");
        assert_eq!(state.idle(2, true), Idle::Finished);
        state.check();
    }

    #[test]
    fn a_want_only_a_departed_session_offered_is_probed_for_again() {
        let state = RunState::new(usize::MAX);
        let all = cids(3);
        state.want(all.clone());
        let a = ClaimGuard::new(&state, 1);
        let _b = ClaimGuard::new(&state, 2);
        state.offer(1, ids(&all));
        // Session 2's probe passes over everything session 1 offers.
        assert_eq!(state.claim(2, 8, true), Vec::<Cid>::new());
        drop(a);
        assert_eq!(state.claim(2, 8, true).len(), 3, "queued again when 1 left");
        state.check();
    }

    #[test]
    fn open_wants_never_pass_the_limit_and_the_run_halts() {
        let state = RunState::new(10);
        let _a = ClaimGuard::new(&state, 1);
        assert_eq!(state.want(cids(6)), 6);
        assert!(!state.is_over());
        let claimed = state.claim(1, 4, true);
        // Claimed wants count: 6 outstanding, room for 4 of the 8 children.
        let children = cids(14)[6..].to_vec();
        state.fetched(1, &claimed[..1], children);
        assert_eq!(state.outstanding(), 10);
        assert_eq!(state.halted(), Some(Halt::OpenWants(10)));
        assert!(state.is_over() && !state.is_complete());
        state.set_complete();
        assert!(!state.is_complete(), "a halted run stays halted");
        assert_eq!(state.want(cids(20)), 0);
        assert_eq!(state.outstanding(), 10);
        state.check();
    }

    /// Random operations keep every index equal to its definition, and `idle` equal to
    /// the scan it replaces.
    #[test]
    fn the_indexes_follow_random_operations() {
        for seed in 0..40 {
            let mut rng = StdRng::seed_from_u64(seed);
            let all = cids(60);
            let state = RunState::new(40);
            let mut live: BTreeMap<u64, ClaimGuard<'_>> = BTreeMap::new();
            let mut held: HashMap<u64, Vec<Cid>> = HashMap::new();
            for _ in 0..400 {
                let session = rng.gen_range(1..5u64);
                match rng.gen_range(0..9) {
                    0 => {
                        let n = rng.gen_range(0..8);
                        let pick = (0..n).map(|_| all[rng.gen_range(0..all.len())]);
                        state.want(pick.collect::<Vec<_>>());
                    }
                    1 => {
                        if live.remove(&session).is_some() {
                            held.remove(&session);
                        } else {
                            live.insert(session, ClaimGuard::new(&state, session));
                        }
                    }
                    2 if live.contains_key(&session) => {
                        let n = rng.gen_range(0..10);
                        let offer = (0..n).map(|_| ItemId::of(&all[rng.gen_range(0..all.len())]));
                        state.offer(session, offer.collect::<Vec<_>>());
                    }
                    3 | 4 if live.contains_key(&session) => {
                        let got = state.claim(session, rng.gen_range(1..6), rng.gen_bool(0.5));
                        held.entry(session).or_default().extend(got);
                    }
                    5 => {
                        let mine = held.remove(&session).unwrap_or_default();
                        let (done, rest) = mine.split_at(mine.len() / 2);
                        let n = rng.gen_range(0..4);
                        let children = (0..n).map(|_| all[rng.gen_range(0..all.len())]);
                        state.fetched(session, done, children.collect());
                        state.lacked(session, rest);
                    }
                    6 => {
                        let mine = held.remove(&session).unwrap_or_default();
                        state.release(session, &mine);
                    }
                    _ if live.contains_key(&session) => {
                        assert_eq!(state.idle(session, true), state.idle_reference(session));
                    }
                    _ => {}
                }
                state.check();
            }
        }
    }
}

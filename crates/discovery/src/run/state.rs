//! The state one discovery run shares between its peer sessions: what the scope still
//! wants, who claimed what, and whether the scope is complete.
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

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

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
    /// Sessions whose peer was asked for it and did not send it.
    tried: Vec<u64>,
}

/// A session between its start and its end.
#[derive(Default)]
struct Live {
    /// Ids its peer's DAG snapshot offers (DAG scopes).
    offered: HashSet<ItemId>,
    /// True once its peer answered a reconciliation round.
    answered: bool,
}

/// Every want, with the open and claimed ones indexed apart so that handing out claims
/// and checking for work in flight never scans the (growing) set of done ones.
#[derive(Default)]
struct Table {
    wants: HashMap<ItemId, Want>,
    /// Ordered, so claims are handed out in a deterministic order.
    open: BTreeSet<ItemId>,
    /// Claimed wants and the session holding each.
    claimed: HashMap<ItemId, u64>,
    synced_peers: usize,
    /// Sessions running now.
    live: BTreeMap<u64, Live>,
}

impl Table {
    /// Moves a known want to `to`; returns its previous state.
    fn set(&mut self, id: &ItemId, to: WantState) -> Option<WantState> {
        let want = self.wants.get_mut(id)?;
        let from = std::mem::replace(&mut want.state, to);
        match from {
            WantState::Open => {
                self.open.remove(id);
            }
            WantState::Claimed(_) => {
                self.claimed.remove(id);
            }
            WantState::Done => {}
        }
        match to {
            WantState::Open => {
                self.open.insert(*id);
            }
            WantState::Claimed(session) => {
                self.claimed.insert(*id, session);
            }
            WantState::Done => {}
        }
        Some(from)
    }

    /// Adds `cid` as an open want unless it is known; true if it was new.
    fn add(&mut self, cid: Cid) -> bool {
        let id = ItemId::of(&cid);
        if self.wants.contains_key(&id) {
            return false;
        }
        let (state, tried) = (WantState::Open, Vec::new());
        self.wants.insert(id, Want { cid, state, tried });
        self.open.insert(id);
        true
    }

    /// True if `session` may probe its peer for the open want `id`: it has not asked it
    /// yet, and no other live session's peer offers it (that one will fetch it).
    fn probeable(&self, session: u64, id: &ItemId) -> bool {
        !self.wants[id].tried.contains(&session)
            && !self
                .live
                .iter()
                .any(|(s, live)| *s != session && live.offered.contains(id))
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
    complete: watch::Sender<bool>,
}

impl RunState {
    pub fn new() -> Self {
        RunState {
            table: Mutex::new(Table::default()),
            version: watch::channel(0).0,
            complete: watch::channel(false).0,
        }
    }

    fn changed(&self) {
        self.version.send_modify(|v| *v += 1);
    }

    /// A receiver that sees every later change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// A receiver of the completion flag.
    pub fn subscribe_complete(&self) -> watch::Receiver<bool> {
        self.complete.subscribe()
    }

    /// True once the scope is complete: sessions send nothing more.
    pub fn is_complete(&self) -> bool {
        *self.complete.borrow()
    }

    pub fn set_complete(&self) {
        self.complete.send_replace(true);
        self.changed();
    }

    /// Adds wants not known yet (in any state); returns how many were new.
    pub fn want(&self, cids: impl IntoIterator<Item = Cid>) -> usize {
        let mut table = self.table.lock();
        let added = cids.into_iter().filter(|cid| table.add(*cid)).count();
        drop(table);
        if added > 0 {
            self.changed();
        }
        added
    }

    /// True if `id` is wanted in any state (open, claimed or already fetched).
    pub fn knows(&self, id: &ItemId) -> bool {
        self.table.lock().wants.contains_key(id)
    }

    /// Claims up to `max` open wants among `offered` (what the session's peer has) for
    /// `session`; with `probe` (DAG scopes), fills the rest with open wants it may probe
    /// its peer for.
    pub fn claim(
        &self,
        session: u64,
        offered: &BTreeSet<ItemId>,
        max: usize,
        probe: bool,
    ) -> Vec<Cid> {
        let mut table = self.table.lock();
        let mut picked: Vec<ItemId> = if table.open.len() <= offered.len() {
            let open = table.open.iter();
            open.filter(|id| offered.contains(id))
                .take(max)
                .copied()
                .collect()
        } else {
            let offered = offered.iter().filter(|id| table.open.contains(id));
            offered.take(max).copied().collect()
        };
        if probe && picked.len() < max {
            let room = max - picked.len();
            let taken: HashSet<ItemId> = picked.iter().copied().collect();
            let extra: Vec<ItemId> = table
                .open
                .iter()
                .filter(|id| !taken.contains(id) && table.probeable(session, id))
                .take(room)
                .copied()
                .collect();
            picked.extend(extra);
        }
        picked
            .iter()
            .map(|id| {
                table.set(id, WantState::Claimed(session));
                table.wants[id].cid
            })
            .collect()
    }

    /// `session`'s peer did not send `cids` it was asked for: they are released, and never
    /// asked of that peer again in this run.
    pub fn lacked(&self, session: u64, cids: &[Cid]) {
        let mut table = self.table.lock();
        for cid in cids {
            let id = ItemId::of(cid);
            if let Some(live) = table.live.get_mut(&session) {
                live.offered.remove(&id);
            }
            if let Some(want) = table.wants.get_mut(&id) {
                if !want.tried.contains(&session) {
                    want.tried.push(session);
                }
            }
        }
        drop(table);
        self.release(session, cids);
    }

    /// Registers a session that started.
    pub fn join(&self, session: u64) {
        self.table.lock().live.insert(session, Live::default());
        self.changed();
    }

    /// Records that `session`'s peer answered a reconciliation round.
    pub fn answered(&self, session: u64) {
        if let Some(live) = self.table.lock().live.get_mut(&session) {
            live.answered = true;
        }
    }

    /// Records the ids `session`'s peer offers (DAG scopes), so others do not probe for them.
    pub fn offer(&self, session: u64, offered: &BTreeSet<ItemId>) {
        if let Some(live) = self.table.lock().live.get_mut(&session) {
            live.offered.extend(offered.iter().copied());
        }
        self.changed();
    }

    /// Ends `session`: its claims return to the open pool, its offers are withdrawn.
    pub fn leave(&self, session: u64) {
        self.table.lock().live.remove(&session);
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
    /// were already done: duplicates.
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
        for cid in children {
            table.add(cid);
        }
        drop(table);
        self.changed();
        duplicates
    }

    /// True when nothing is open or claimed: every want known so far was fetched.
    pub fn is_idle(&self) -> bool {
        let table = self.table.lock();
        table.open.is_empty() && table.claimed.is_empty()
    }

    /// True if every id of `offered` that is wanted has been fetched.
    pub fn all_done(&self, offered: &BTreeSet<ItemId>) -> bool {
        let table = self.table.lock();
        offered.iter().all(|id| {
            table
                .wants
                .get(id)
                .is_none_or(|w| w.state == WantState::Done)
        })
    }

    /// What `session`, with nothing to claim among `offered`, should do. In a DAG scope, a
    /// fetch in flight anywhere may reveal new wants (its links), and an open want another
    /// live session has not asked its peer for may still be found: the session waits until
    /// no live session can make progress. In a named scope only a failed claim on one of
    /// `offered` can give this session work.
    pub fn idle(&self, session: u64, offered: &BTreeSet<ItemId>, dag: bool) -> Idle {
        let table = self.table.lock();
        let waiting = if dag {
            !table.claimed.is_empty()
                || table.open.iter().any(|id| {
                    let tried = &table.wants[id].tried;
                    table
                        .live
                        .keys()
                        .any(|s| *s != session && !tried.contains(s))
                })
        } else {
            table.claimed.keys().any(|id| offered.contains(id))
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

    /// Peers counted by [`RunState::synced`].
    /// Distinct wants known (in any state) and live sessions, for progress events.
    pub fn counts(&self) -> (u64, u64) {
        let table = self.table.lock();
        (table.wants.len() as u64, table.live.len() as u64)
    }

    pub fn synced_peers(&self) -> usize {
        self.table.lock().synced_peers
    }
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
    use seedbank_blobstore::{codec, Blob};

    fn cids(n: u8) -> Vec<Cid> {
        (0..n)
            .map(|i| *Blob::new(codec::RAW, vec![i]).cid())
            .collect()
    }

    #[test]
    fn a_want_is_claimed_once_and_released_on_failure() {
        let state = RunState::new();
        let all = cids(4);
        assert_eq!(state.want(all.clone()), 4);
        let offered: BTreeSet<ItemId> = all.iter().map(ItemId::of).collect();
        let first = state.claim(1, &offered, 3, false);
        let second = state.claim(2, &offered, 3, false);
        assert_eq!((first.len(), second.len()), (3, 1));
        assert_eq!(state.claim(3, &offered, 3, false), Vec::<Cid>::new());
        assert_eq!(state.idle(3, &offered, false), Idle::Wait);
        drop(ClaimGuard::new(&state, 1));
        assert_eq!(state.claim(3, &offered, 8, false).len(), 3);
        assert_eq!(state.fetched(2, &second, Vec::new()), 0);
        assert_eq!(
            state.fetched(2, &second, Vec::new()),
            1,
            "fetched twice is a duplicate"
        );
        assert!(!state.is_idle());
        state.release(3, &first);
        assert_eq!(
            state.fetched(4, &state.claim(4, &offered, 8, false), Vec::new()),
            0
        );
        assert!(state.is_idle() && state.all_done(&offered));
        assert_eq!(state.idle(4, &offered, true), Idle::Finished);
    }

    #[test]
    fn dag_sessions_probe_what_nobody_offers_and_never_ask_one_peer_twice() {
        let state = RunState::new();
        let all = cids(4);
        state.want(all.clone());
        let (_a, _b) = (ClaimGuard::new(&state, 1), ClaimGuard::new(&state, 2));
        let none = BTreeSet::new();
        // Session 2's peer offers the first want: session 1 does not probe for it.
        state.offer(2, &BTreeSet::from([ItemId::of(&all[0])]));
        let probed = state.claim(1, &none, 8, true);
        assert_eq!(probed.len(), 3);
        assert!(!probed.contains(&all[0]));
        state.lacked(1, &probed);
        assert_eq!(state.claim(1, &none, 8, true), Vec::<Cid>::new());
        assert_eq!(
            state.idle(1, &none, true),
            Idle::Wait,
            "session 2 may have them"
        );
        let got = state.claim(2, &none, 8, true);
        assert_eq!(got.len(), 4, "its offer, then the probes");
        state.lacked(2, &got);
        assert_eq!(state.claim(1, &none, 8, true), vec![all[0]]);
        state.lacked(1, &[all[0]]);
        assert_eq!(
            state.idle(1, &none, true),
            Idle::Finished,
            "nobody can progress"
        );
        assert_eq!(state.idle(2, &none, true), Idle::Finished);
    }
}

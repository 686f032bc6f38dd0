//! The negative cache: scopes nobody had, remembered for a short time so repeated lookups
//! of missing content send no message. An entry covers only the peers that were offered
//! then: a lookup offering a peer not asked before is not answered from the cache. Expiry
//! uses tokio's clock (pausable in tests).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

use crate::scope::Scope;

/// Scopes answered "not found", with when the answer expires and who was asked.
pub(crate) struct NegativeCache {
    ttl: Duration,
    capacity: usize,
    /// Keys peer ids into [`Entry::peers`] (8 bytes a peer, not the id's 64).
    hasher: RandomState,
    entries: Mutex<HashMap<Scope, Entry>>,
}

struct Entry {
    expiry: Instant,
    /// Hashes of the peer ids offered to the run that found nothing, sorted.
    peers: Vec<u64>,
}

impl NegativeCache {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        NegativeCache {
            ttl,
            capacity: capacity.max(1),
            hasher: RandomState::new(),
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn hashes<'a>(&self, peers: impl IntoIterator<Item = &'a str>) -> Vec<u64> {
        let mut out: Vec<u64> = peers.into_iter().map(|p| self.hasher.hash_one(p)).collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// True if `scope` was not found less than the TTL ago by a run offered every one of
    /// `peers`.
    pub fn contains<'a>(&self, scope: &Scope, peers: impl IntoIterator<Item = &'a str>) -> bool {
        let offered = self.hashes(peers);
        let mut entries = self.entries.lock();
        match entries.get(scope) {
            Some(entry) if entry.expiry > Instant::now() => {
                offered.iter().all(|p| entry.peers.binary_search(p).is_ok())
            }
            Some(_) => {
                entries.remove(scope);
                false
            }
            None => false,
        }
    }

    /// Remembers that none of `peers` had `scope`. At capacity, expired entries go first,
    /// then the entry closest to expiring.
    pub fn insert<'a>(&self, scope: Scope, peers: impl IntoIterator<Item = &'a str>) {
        if self.ttl.is_zero() {
            return;
        }
        let peers = self.hashes(peers);
        let now = Instant::now();
        let mut entries = self.entries.lock();
        if entries.len() >= self.capacity && !entries.contains_key(&scope) {
            entries.retain(|_, e| e.expiry > now);
            if entries.len() >= self.capacity {
                let oldest = entries
                    .iter()
                    .min_by_key(|(_, e)| e.expiry)
                    .map(|(s, _)| s.clone());
                if let Some(oldest) = oldest {
                    entries.remove(&oldest);
                }
            }
        }
        entries.insert(
            scope,
            Entry {
                expiry: now + self.ttl,
                peers,
            },
        );
    }

    /// Forgets `scope` (it was found after all).
    pub fn remove(&self, scope: &Scope) {
        self.entries.lock().remove(scope);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn entries_expire_after_the_ttl_and_capacity_is_bounded() {
        let cache = NegativeCache::new(Duration::from_secs(10), 2);
        let (a, b, c) = (Scope::named("a"), Scope::named("b"), Scope::named("c"));
        let p = ["p"];
        cache.insert(a.clone(), p);
        tokio::time::advance(Duration::from_secs(9)).await;
        assert!(cache.contains(&a, p));
        cache.insert(b.clone(), p);
        cache.insert(c.clone(), p);
        assert!(
            !cache.contains(&a, p),
            "the entry closest to expiry made room"
        );
        assert!(cache.contains(&b, p) && cache.contains(&c, p));
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(!cache.contains(&b, p));
        cache.insert(a.clone(), p);
        cache.remove(&a);
        assert!(!cache.contains(&a, p));
    }

    #[tokio::test(start_paused = true)]
    async fn an_entry_covers_only_the_peers_asked() {
        let cache = NegativeCache::new(Duration::from_secs(10), 8);
        let a = Scope::named("a");
        cache.insert(a.clone(), ["p1", "p2"]);
        assert!(cache.contains(&a, ["p2"]));
        assert!(cache.contains(&a, ["p2", "p1", "p1"]));
        assert!(!cache.contains(&a, ["p1", "p3"]), "p3 was never asked");
    }
}

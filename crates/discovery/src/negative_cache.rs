//! The negative cache: scopes nobody had, remembered for a short time so repeated lookups
//! of missing content send no message. Expiry uses tokio's clock (pausable in tests).

use std::collections::HashMap;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

use crate::scope::Scope;

/// Scopes answered "not found", with when the answer expires.
pub(crate) struct NegativeCache {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<Scope, Instant>>,
}

impl NegativeCache {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        NegativeCache {
            ttl,
            capacity: capacity.max(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// True if `scope` was not found less than the TTL ago.
    pub fn contains(&self, scope: &Scope) -> bool {
        let mut entries = self.entries.lock();
        match entries.get(scope) {
            Some(expiry) if *expiry > Instant::now() => true,
            Some(_) => {
                entries.remove(scope);
                false
            }
            None => false,
        }
    }

    /// Remembers that nobody had `scope`. At capacity, expired entries go first, then the
    /// entry closest to expiring.
    pub fn insert(&self, scope: Scope) {
        if self.ttl.is_zero() {
            return;
        }
        let now = Instant::now();
        let mut entries = self.entries.lock();
        if entries.len() >= self.capacity && !entries.contains_key(&scope) {
            entries.retain(|_, expiry| *expiry > now);
            if entries.len() >= self.capacity {
                let oldest = entries
                    .iter()
                    .min_by_key(|(_, e)| **e)
                    .map(|(s, _)| s.clone());
                if let Some(oldest) = oldest {
                    entries.remove(&oldest);
                }
            }
        }
        entries.insert(scope, now + self.ttl);
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
        cache.insert(a.clone());
        tokio::time::advance(Duration::from_secs(9)).await;
        assert!(cache.contains(&a));
        cache.insert(b.clone());
        cache.insert(c.clone());
        assert!(!cache.contains(&a), "the entry closest to expiry made room");
        assert!(cache.contains(&b) && cache.contains(&c));
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(!cache.contains(&b));
        cache.insert(a.clone());
        cache.remove(&a);
        assert!(!cache.contains(&a));
    }
}

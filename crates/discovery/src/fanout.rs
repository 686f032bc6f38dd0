//! Peer scoring and selection: which peers a discovery contacts, in which order.
//!
//! A peer's rank is its success rate with a uniform prior, `(successes + 1) / (sessions +
//! 2)` (an unknown peer scores 0.5, one failure drops it below unknown peers), in steps of
//! 1/20 so that near-equal rates are ordered by latency (an exponentially weighted mean of
//! its round trips; unknown counts as `assumed_latency`), then by the caller's order. A peer
//! caught lying is never selected again by this [`Discovery`](crate::Discovery).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::peer::Peer;

/// Weight of a new latency sample in the moving average.
const LATENCY_ALPHA: f64 = 0.3;

/// What a [`Discovery`](crate::Discovery) remembers about one peer.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct PeerScore {
    /// Sessions that reconciled (and fetched) without error.
    pub successes: u64,
    /// Sessions that failed: error, timeout, busy.
    pub failures: u64,
    /// True once the peer sent bytes that did not match their CID or broke the protocol.
    pub liar: bool,
    /// Moving average of its round-trip time, when measured.
    pub latency: Option<Duration>,
}

impl PeerScore {
    /// Success rate with a uniform prior, quantised to steps of 1/20.
    fn rate_step(&self) -> u64 {
        let rate = (self.successes + 1) as f64 / (self.successes + self.failures + 2) as f64;
        (rate * 20.0).round() as u64
    }
}

/// How one session with a peer ended, for its score.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Verdict {
    Success,
    Failure,
    Liar,
    /// Cancelled because the scope completed: says nothing about the peer.
    Cancelled,
}

/// Scores of every peer seen, shared by all runs of one discovery.
#[derive(Default)]
pub(crate) struct Scores {
    map: Mutex<HashMap<String, PeerScore>>,
}

impl Scores {
    /// The peers to contact, best first: liars and duplicate ids removed, at most `fanout`.
    pub fn rank(
        &self,
        peers: &[Arc<dyn Peer>],
        fanout: usize,
        assumed_latency: Duration,
    ) -> Vec<Arc<dyn Peer>> {
        let map = self.map.lock();
        let mut seen = HashSet::new();
        let mut ranked: Vec<(u64, Duration, usize, &Arc<dyn Peer>)> = peers
            .iter()
            .enumerate()
            .filter(|(_, p)| seen.insert(p.id().to_string()))
            .filter_map(|(i, p)| {
                let score = map.get(p.id()).copied().unwrap_or_default();
                (!score.liar).then(|| {
                    let latency = score.latency.unwrap_or(assumed_latency);
                    (score.rate_step(), latency, i, p)
                })
            })
            .collect();
        ranked.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        ranked
            .into_iter()
            .take(fanout)
            .map(|(_, _, _, p)| p.clone())
            .collect()
    }

    /// Records how a session ended and its mean round trip.
    pub fn record(&self, peer: &str, verdict: Verdict, latency: Option<Duration>) {
        let mut map = self.map.lock();
        let score = map.entry(peer.to_string()).or_default();
        match verdict {
            Verdict::Success => score.successes += 1,
            Verdict::Failure => score.failures += 1,
            Verdict::Liar => {
                score.failures += 1;
                score.liar = true;
            }
            Verdict::Cancelled => {}
        }
        if let Some(sample) = latency {
            score.latency = Some(match score.latency {
                None => sample,
                Some(avg) => avg.mul_f64(1.0 - LATENCY_ALPHA) + sample.mul_f64(LATENCY_ALPHA),
            });
        }
    }

    /// The score of one peer, if it was ever contacted.
    pub fn get(&self, peer: &str) -> Option<PeerScore> {
        self.map.lock().get(peer).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Message, Result, Scope};
    use bytes::Bytes;
    use cid::Cid;

    struct Named(String);

    #[async_trait::async_trait]
    impl Peer for Named {
        fn id(&self) -> &str {
            &self.0
        }
        async fn reconcile(&self, _: &Scope, _: Message) -> Result<Message> {
            unreachable!()
        }
        async fn fetch(&self, _: &[Cid]) -> Result<Vec<(Cid, Bytes)>> {
            unreachable!()
        }
    }

    fn peers(ids: &[&str]) -> Vec<Arc<dyn Peer>> {
        ids.iter()
            .map(|id| Arc::new(Named(id.to_string())) as Arc<dyn Peer>)
            .collect()
    }

    fn ids(peers: &[Arc<dyn Peer>]) -> Vec<&str> {
        peers.iter().map(|p| p.id()).collect()
    }

    #[test]
    fn ranking_prefers_success_then_latency_and_drops_liars() {
        let scores = Scores::default();
        let ms = Duration::from_millis;
        scores.record("slow", Verdict::Success, Some(ms(500)));
        scores.record("fast", Verdict::Success, Some(ms(20)));
        scores.record("flaky", Verdict::Failure, None);
        scores.record("liar", Verdict::Liar, Some(ms(1)));
        let all = peers(&["new", "flaky", "liar", "slow", "fast", "fast"]);
        let ranked = scores.rank(&all, 8, ms(200));
        assert_eq!(ids(&ranked), ["fast", "slow", "new", "flaky"]);
        assert_eq!(ids(&scores.rank(&all, 2, ms(200))), ["fast", "slow"]);
        assert!(scores.get("liar").unwrap().liar);
    }

    #[test]
    fn unknown_peers_keep_the_callers_order() {
        let scores = Scores::default();
        let all = peers(&["c", "a", "b"]);
        assert_eq!(
            ids(&scores.rank(&all, 8, Duration::from_millis(1))),
            ["c", "a", "b"]
        );
    }
}

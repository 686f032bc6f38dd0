//! Progress of discovery runs, as events an application can subscribe to
//! ([`Discovery::progress`](crate::Discovery::progress)).
//!
//! Each event carries a run's cumulative counters, so a subscriber that falls behind (the
//! channel is bounded and drops the oldest events) loses no information, only detail.

use tokio::sync::broadcast;

use crate::scope::Scope;

/// Events kept for a subscriber that has not read them yet; older ones are dropped.
pub(crate) const CAPACITY: usize = 256;

/// Where one run stands.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Progress {
    /// The run's number (as in its [`Report`](crate::Report)).
    pub run: u64,
    /// The scope it looks for.
    pub scope: Scope,
    /// Blobs fetched, verified and stored so far.
    pub blobs_fetched: u64,
    /// Their bytes.
    pub bytes_fetched: u64,
    /// Distinct blobs known to be wanted so far, fetched ones included. A DAG's wants grow
    /// as fetched blocks reveal their links; a named scope's as peers' reconciliations do.
    pub wanted: u64,
    /// Peer sessions running now.
    pub peers_active: u64,
    /// True for a run's last event.
    pub finished: bool,
}

/// The sending side, one per [`Discovery`](crate::Discovery).
#[derive(Debug)]
pub(crate) struct ProgressTx(broadcast::Sender<Progress>);

impl Default for ProgressTx {
    fn default() -> Self {
        ProgressTx(broadcast::channel(CAPACITY).0)
    }
}

impl ProgressTx {
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Progress> {
        self.0.subscribe()
    }

    /// Sends `event` to current subscribers (none is fine).
    pub(crate) fn send(&self, event: Progress) {
        let _ = self.0.send(event);
    }
}

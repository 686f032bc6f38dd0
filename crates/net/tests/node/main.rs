//! Nodes over iroh on 127.0.0.1: serving and syncing, per-remote limits, peer exchange
//! under the serve policy, shutdown with requests in flight.

mod net;
mod peer_exchange;
mod remote_limits;

use seedbank_sim::SimNode;

/// A store, index and responder of its own for node `name`, in `dir`.
async fn open(dir: &tempfile::TempDir, name: &str) -> SimNode {
    SimNode::open(&dir.path().join(format!("{name}.db")))
        .await
        .unwrap()
}

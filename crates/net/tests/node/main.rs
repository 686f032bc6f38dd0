//! Nodes over iroh on 127.0.0.1: serving and syncing, per-remote limits, peer exchange
//! under the serve policy, shutdown with requests in flight.

mod net;
mod peer_exchange;
mod remote_limits;

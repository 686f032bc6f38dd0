//! A node on the network (feature `net`): serve and sync between nodes, sharing only what is
//! named, peer exchange, and syncing from a QUIC peer and a gateway in one run.

mod gateway_sync;
mod node;
mod share;

//! The serving policy: which scopes and blobs a remote endpoint may read.

use cid::Cid;
use iroh::EndpointId;
use seedbank_discovery::Scope;

/// Decides what a remote endpoint may read from this node. Sync engines hold private
/// content: implement this to serve each document only to its members.
///
/// A denied scope is answered with a "denied" failure and nothing of it (no ids, no CIDs);
/// a denied blob is left out of a fetch answer as if it were not stored. Both are asked
/// for every request, after the remote's identity was authenticated by the QUIC handshake.
/// Answers should be quick: each request holds an inbound slot while the policy decides.
#[async_trait::async_trait]
pub trait ServePolicy: Send + Sync + 'static {
    /// May `remote` reconcile `scope` with us? (Default: yes.)
    async fn may_read_scope(&self, remote: &EndpointId, scope: &Scope) -> bool {
        let _ = (remote, scope);
        true
    }

    /// May `remote` fetch the bytes of `cid`? (Default: yes.)
    async fn may_read_blob(&self, remote: &EndpointId, cid: &Cid) -> bool {
        let _ = (remote, cid);
        true
    }
}

/// The default policy: every peer may read everything.
#[derive(Clone, Copy, Debug, Default)]
pub struct ServeAll;

impl ServePolicy for ServeAll {}

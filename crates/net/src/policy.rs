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
///
/// Peer exchange is a read too: the node's known peers go only to remotes
/// [`ServePolicy::may_list_peers`] lets have them, and **a policy that does not say
/// otherwise hands them to nobody** (a node that restricts what it serves should not tell
/// strangers where other nodes are). [`ServeAll`] hands them to everyone.
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

    /// Which of `cids` may `remote` fetch, in order? One call per fetch request; the
    /// default asks [`ServePolicy::may_read_blob`] for each. Override it when one answer
    /// for the whole request is cheaper (one snapshot, one lock).
    async fn may_read_blobs(&self, remote: &EndpointId, cids: &[Cid]) -> Vec<bool> {
        let mut out = Vec::with_capacity(cids.len());
        for cid in cids {
            out.push(self.may_read_blob(remote, cid).await);
        }
        out
    }

    /// May `remote` have this node's known peers (peer exchange)? (Default: **no**; see
    /// the trait's documentation.)
    async fn may_list_peers(&self, remote: &EndpointId) -> bool {
        let _ = remote;
        false
    }
}

/// The default policy: every peer may read everything, known peers included.
#[derive(Clone, Copy, Debug, Default)]
pub struct ServeAll;

#[async_trait::async_trait]
impl ServePolicy for ServeAll {
    async fn may_read_blobs(&self, _remote: &EndpointId, cids: &[Cid]) -> Vec<bool> {
        vec![true; cids.len()]
    }

    async fn may_list_peers(&self, _remote: &EndpointId) -> bool {
        true
    }
}

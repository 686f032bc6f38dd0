//! The `Peer` trait: what a sync engine implements over its own network.

use bytes::Bytes;
use cid::Cid;

use crate::error::Result;
use crate::message::Message;
use crate::scope::Scope;

/// A remote node discovery can reconcile with and fetch from.
///
/// Implement it over your transport: send the [`Message`] (see [`Message::encode`]) and the
/// scope to the remote node, whose [`Responder`](crate::Responder) answers it. Calls may be
/// cancelled at any `.await` (discovery drops sessions once a scope is complete) and must
/// report failures as errors ([`Error::Transport`](crate::Error::Transport),
/// [`Error::Busy`](crate::Error::Busy), ...), never panic.
///
/// [`Responder`](crate::Responder) implements `Peer` itself, so an in-process node (tests,
/// the simulation) is a peer as it is.
#[async_trait::async_trait]
pub trait Peer: Send + Sync + 'static {
    /// A stable id for this peer: scores and logs are kept under it.
    fn id(&self) -> &str;

    /// Sends one reconciliation request for `scope` and returns the answer.
    async fn reconcile(&self, scope: &Scope, message: Message) -> Result<Message>;

    /// Asks for the bytes of `cids`. The answer may leave out CIDs the peer does not have;
    /// every returned blob is verified against its CID before anything is stored.
    async fn fetch(&self, cids: &[Cid]) -> Result<Vec<(Cid, Bytes)>>;
}

/// The answer a peer that holds nothing of the scope gives to a reconciliation `request`:
/// for peers that cannot reconcile, such as an HTTP gateway, which serves blocks by CID but
/// cannot list what it holds. A DAG run then offers such a peer nothing and probes it for
/// its open wants (those no other live session's peer offers), through [`Peer::fetch`].
///
/// # Errors
/// [`Error::Protocol`](crate::Error::Protocol) if the request's negentropy part is
/// malformed.
pub fn answer_holding_nothing(request: &Message) -> Result<Message> {
    use negentropy::{Negentropy, NegentropyStorageVector};
    let negentropy = if request.negentropy.is_empty() {
        Bytes::new()
    } else {
        let mut empty = NegentropyStorageVector::new();
        empty.seal()?;
        let mut ne = Negentropy::borrowed(&empty, crate::DiscoveryConfig::MAX_FRAME_LIMIT)?;
        Bytes::from(ne.reconcile(&request.negentropy)?)
    };
    // Nothing held: no id it is asked to resolve has a CID here.
    Ok(Message {
        negentropy,
        want: Vec::new(),
        cids: Vec::new(),
    })
}

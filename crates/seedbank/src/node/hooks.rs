//! Hooks for tests (feature `test-hooks`, off by default, so shipped builds do not contain
//! them): a node that lies to its peers, for tests of liar detection across processes.

use std::sync::Arc;

use bytes::Bytes;
use cid::Cid;
use seedbank_discovery::{Message, Peer, Responder, Result, Scope};

/// Answers as `responder` does, except that the last blob of every fetch answer has a byte
/// appended: a lie a syncing node must detect and punish.
pub struct Liar {
    responder: Responder,
}

impl Liar {
    /// A liar over `responder`.
    pub fn new(responder: Responder) -> Arc<Liar> {
        Arc::new(Liar { responder })
    }
}

#[async_trait::async_trait]
impl Peer for Liar {
    fn id(&self) -> &str {
        "liar"
    }

    async fn reconcile(&self, scope: &Scope, message: Message) -> Result<Message> {
        self.responder.reconcile(scope, message).await
    }

    async fn fetch(&self, cids: &[Cid]) -> Result<Vec<(Cid, Bytes)>> {
        let mut blobs = self.responder.fetch(cids).await?;
        if let Some((_, data)) = blobs.last_mut() {
            let mut bad = data.to_vec();
            bad.push(0xff);
            *data = Bytes::from(bad);
        }
        Ok(blobs)
    }
}

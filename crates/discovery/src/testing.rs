//! Helpers for tests of this workspace (and of applications embedding it): a peer that
//! behaves as another one except where a test changes it. Not part of the stable API.

use std::sync::Arc;

use bytes::Bytes;
use cid::Cid;

use crate::error::Result;
use crate::message::Message;
use crate::peer::Peer;
use crate::scope::Scope;

/// What a test changes about a peer: each call it does not override goes to the wrapped
/// peer unchanged (see [`Hooked`]).
#[async_trait::async_trait]
pub trait Hook: Send + Sync + 'static {
    /// A reconciliation round; `inner` is the wrapped peer.
    async fn reconcile(
        &self,
        inner: &dyn Peer,
        scope: &Scope,
        message: Message,
    ) -> Result<Message> {
        inner.reconcile(scope, message).await
    }

    /// A fetch; `inner` is the wrapped peer.
    async fn fetch(&self, inner: &dyn Peer, cids: &[Cid]) -> Result<Vec<(Cid, Bytes)>> {
        inner.fetch(cids).await
    }
}

/// A peer with `inner`'s id and answers, except where its [`Hook`] says otherwise.
pub struct Hooked<H> {
    inner: Arc<dyn Peer>,
    hook: H,
}

impl<H: Hook> Hooked<H> {
    /// `inner`, changed by `hook`.
    pub fn new(inner: Arc<dyn Peer>, hook: H) -> Self {
        Hooked { inner, hook }
    }

    /// The hook (for what it counted).
    pub fn hook(&self) -> &H {
        &self.hook
    }
}

#[async_trait::async_trait]
impl<H: Hook> Peer for Hooked<H> {
    fn id(&self) -> &str {
        self.inner.id()
    }

    async fn reconcile(&self, scope: &Scope, message: Message) -> Result<Message> {
        self.hook.reconcile(&*self.inner, scope, message).await
    }

    async fn fetch(&self, cids: &[Cid]) -> Result<Vec<(Cid, Bytes)>> {
        self.hook.fetch(&*self.inner, cids).await
    }
}

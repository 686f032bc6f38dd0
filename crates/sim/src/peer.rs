//! In-process peers for simulations and tests: a [`Responder`] over a real store behind
//! simulated latency, failures and lies, counting every message it receives.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use bytes::Bytes;
use cid::Cid;
use parking_lot::Mutex;

use seedbank_discovery::{Error, Message, Peer, Responder, Result, Scope};

/// How a simulated peer behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Behavior {
    /// Answers from its store after its latency.
    Honest,
    /// Fails every call with a transport error after its latency.
    Failing,
    /// Never answers (the caller's timeout ends the call).
    Hanging,
    /// Reconciles honestly, then answers every fetch with good bytes except for its last
    /// blob, whose bytes are corrupted.
    Liar,
    /// Refuses every call with [`Error::Busy`], as a responder past its admission limit.
    Busy,
}

impl std::fmt::Display for Behavior {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Behavior::Honest => "honest",
            Behavior::Failing => "failing",
            Behavior::Hanging => "hanging",
            Behavior::Liar => "liar",
            Behavior::Busy => "busy",
        })
    }
}

/// A simulated peer. Latency is tokio time, so tests with paused time run it instantly.
pub struct SimPeer {
    id: String,
    behavior: Behavior,
    latency: Duration,
    responder: Option<Responder>,
    reconciles: AtomicU64,
    fetches: AtomicU64,
    blobs_sent: AtomicU64,
    lies: Mutex<Vec<(Cid, Bytes)>>,
    sent: Mutex<Vec<Cid>>,
}

impl std::fmt::Debug for SimPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimPeer")
            .field("id", &self.id)
            .field("behavior", &self.behavior)
            .field("messages", &self.messages())
            .finish_non_exhaustive()
    }
}

impl SimPeer {
    /// A peer answering from `responder` (`None` only for failing, hanging and busy peers,
    /// which never reach a store).
    pub fn new(
        id: impl Into<String>,
        behavior: Behavior,
        latency: Duration,
        responder: Option<Responder>,
    ) -> Self {
        SimPeer {
            id: id.into(),
            behavior,
            latency,
            responder,
            reconciles: AtomicU64::new(0),
            fetches: AtomicU64::new(0),
            blobs_sent: AtomicU64::new(0),
            lies: Mutex::new(Vec::new()),
            sent: Mutex::new(Vec::new()),
        }
    }

    /// Its behaviour.
    pub fn behavior(&self) -> Behavior {
        self.behavior
    }

    /// Its one-way-and-back latency.
    pub fn latency(&self) -> Duration {
        self.latency
    }

    /// The responder behind it, if any.
    pub fn responder(&self) -> Option<&Responder> {
        self.responder.as_ref()
    }

    /// Reconcile requests received.
    pub fn reconciles(&self) -> u64 {
        self.reconciles.load(Relaxed)
    }

    /// Fetch requests received.
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Relaxed)
    }

    /// Every request received.
    pub fn messages(&self) -> u64 {
        self.reconciles() + self.fetches()
    }

    /// Blobs sent (a liar's corrupted ones included).
    pub fn blobs_sent(&self) -> u64 {
        self.blobs_sent.load(Relaxed)
    }

    /// The corrupted `(cid, bytes)` a liar sent (one per answer).
    pub fn lies(&self) -> Vec<(Cid, Bytes)> {
        self.lies.lock().clone()
    }

    /// The CIDs of every blob it sent with correct bytes, in order (a liar's good blobs
    /// included, its corrupted ones not).
    pub fn sent(&self) -> Vec<Cid> {
        self.sent.lock().clone()
    }

    /// Forgets what [`SimPeer::sent`] recorded.
    pub fn clear_sent(&self) {
        self.sent.lock().clear();
    }

    /// Waits out the latency, then fails or hangs as the behaviour says.
    async fn arrive(&self) -> Result<&Responder> {
        tokio::time::sleep(self.latency).await;
        match (self.behavior, &self.responder) {
            (Behavior::Failing, _) => Err(Error::transport(format!("{} refused", self.id))),
            (Behavior::Hanging, _) => std::future::pending().await,
            (Behavior::Busy, _) => Err(Error::Busy),
            (_, Some(responder)) => Ok(responder),
            (_, None) => Err(Error::transport(format!("{} has no store", self.id))),
        }
    }
}

#[async_trait::async_trait]
impl Peer for SimPeer {
    fn id(&self) -> &str {
        &self.id
    }

    async fn reconcile(&self, scope: &Scope, message: Message) -> Result<Message> {
        self.reconciles.fetch_add(1, Relaxed);
        self.arrive().await?.reconcile(scope, message).await
    }

    async fn fetch(&self, cids: &[Cid]) -> Result<Vec<(Cid, Bytes)>> {
        self.fetches.fetch_add(1, Relaxed);
        let mut blobs = self.arrive().await?.fetch(cids).await?;
        if self.behavior == Behavior::Liar {
            // One corrupted blob among good ones: the rule under test is that it condemns
            // the whole answer, the good blobs with it.
            if let Some((cid, data)) = blobs.last_mut() {
                let mut bad = data.to_vec();
                bad.push(0xff);
                *data = Bytes::from(bad);
                self.lies.lock().push((*cid, data.clone()));
            }
        }
        self.blobs_sent.fetch_add(blobs.len() as u64, Relaxed);
        let lies = self.lies.lock();
        let good = blobs
            .iter()
            .filter(|(cid, data)| !lies.iter().any(|(c, d)| c == cid && d == data))
            .map(|(cid, _)| *cid);
        self.sent.lock().extend(good);
        drop(lies);
        Ok(blobs)
    }
}

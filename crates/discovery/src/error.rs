//! The crate's one error type.
//!
//! Errors are `Clone` (store and index errors are kept behind an `Arc`) because one
//! discovery run's result is shared by every caller that joined it.

use std::sync::Arc;
use std::time::Duration;

use cid::Cid;

use crate::report::Report;
use crate::scope::Scope;

/// Errors returned by discovery, the responder and [`Peer`](crate::Peer) implementations.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The blob store failed or rejected a request (closed, overloaded, storage error).
    #[error(transparent)]
    Blobstore(Arc<seedbank_blobstore::Error>),
    /// The index failed (storage error, DAG over the reachable limit, ...).
    #[error(transparent)]
    Index(Arc<seedbank_index::Error>),
    /// A responder is at its admission limit and refused the request instead of queueing
    /// it. The caller should try another peer or come back later.
    #[error("peer is busy: admission limit reached")]
    Busy,
    /// A peer did not answer within the per-round or per-peer time budget.
    #[error("peer {peer} timed out during {op}")]
    Timeout {
        /// The peer's id.
        peer: String,
        /// The call that timed out.
        op: PeerCall,
    },
    /// A peer sent bytes that do not hash to the CID it sent them for: it is lying or
    /// corrupt. Nothing it sent in that response is stored.
    #[error("peer {peer} sent bytes that do not hash to {cid}")]
    HashMismatch {
        /// The peer's id.
        peer: String,
        /// The CID the bytes were sent for.
        cid: Cid,
    },
    /// A peer broke the protocol: an undecodable or oversized message, a blob nobody asked
    /// for, a reconciliation that would not end.
    #[error("protocol error{}: {reason}", peer_suffix(peer))]
    Protocol {
        /// The peer's id, when known.
        peer: Option<String>,
        /// What was wrong.
        reason: String,
        /// The decoder's error behind it, when there is one (negentropy's, the `cid`
        /// crate's, the store's verdict on a blob) ([`Error::protocol_caused`]).
        #[source]
        source: Option<Cause>,
    },
    /// A peer offered more than a run accepts from it: more ids than `max_peer_ids`, or
    /// blobs past the run's `max_run_blobs` / `max_run_bytes` budget. The peer is dropped
    /// for the run and scored down; what it sent past the budget is not stored.
    #[error("peer {peer} went over budget: {what}")]
    OverBudget {
        /// The peer's id.
        peer: String,
        /// Which budget, and its limit.
        what: String,
    },
    /// A peer could not be reached or failed on its side. [`Peer`](crate::Peer)
    /// implementations return this for transport errors.
    #[error("peer failed: {reason}")]
    Transport {
        /// What went wrong.
        reason: String,
        /// The transport's own error, when there is one ([`Error::transport_caused`]).
        #[source]
        source: Option<Cause>,
    },
    /// No contacted peer had anything the scope needs. `cached` is true when the answer
    /// came from the negative cache and no message was sent.
    #[error("nobody has {scope}{}", if *cached { " (cached)" } else { "" })]
    NotFound {
        /// The scope looked for.
        scope: Scope,
        /// True when answered from the negative cache.
        cached: bool,
    },
    /// The shared discovery run, or a task of it, panicked or was aborted before producing
    /// a result.
    #[error("discovery run aborted: {reason}")]
    Aborted {
        /// Why, as far as is known.
        reason: String,
        /// The task's error, when a task ended without its answer (it panicked or was
        /// cancelled).
        #[source]
        source: Option<Cause>,
    },
    /// A run stopped because it would have held more than
    /// [`max_open_wants`](crate::DiscoveryConfig::max_open_wants) wants open at once (a
    /// document with more links than that, or a peer serving one to exhaust us). What the
    /// run stored stays stored; `report` says what that was.
    #[error(
        "discovery of {} stopped: more than {limit} open wants (max_open_wants); {}",
        report.scope,
        stored(report)
    )]
    TooManyWants {
        /// The limit.
        limit: usize,
        /// The run up to that point (`complete` is false).
        report: Box<Report>,
    },
    /// A run passed its [`run_timeout`](crate::DiscoveryConfig::run_timeout) and was
    /// stopped. What the run stored stays stored; `report` says what that was.
    #[error(
        "discovery of {} stopped after its run_timeout of {timeout:?}; {}",
        report.scope,
        stored(report)
    )]
    RunTimedOut {
        /// The timeout.
        timeout: Duration,
        /// The run up to that point (`complete` is false).
        report: Box<Report>,
    },
    /// A configuration value is out of range (see
    /// [`DiscoveryConfig::validate`](crate::DiscoveryConfig::validate),
    /// [`ResponderConfig::validate`](crate::ResponderConfig::validate)).
    #[error("invalid configuration: {field}: {reason}")]
    Config {
        /// The field.
        field: &'static str,
        /// What is wrong with its value.
        reason: String,
        /// The error that refused the value, when one did (a gateway client that cannot be
        /// built from a URL) ([`Error::config_caused`]).
        #[source]
        source: Option<Cause>,
    },
}

fn stored(report: &Report) -> String {
    format!(
        "{} blobs ({} bytes) fetched and stored before",
        report.blobs_fetched, report.bytes_fetched
    )
}

fn peer_suffix(peer: &Option<String>) -> String {
    peer.as_ref()
        .map(|p| format!(" from peer {p}"))
        .unwrap_or_default()
}

/// `e` and its causes, `: `-separated (what `{:#}` of an `anyhow::Error` prints), for
/// reports and answers to peers that keep an error as text.
pub fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        next = cause.source();
    }
    text
}

/// A call a session makes to a peer: what an [`Error::Timeout`] timed out in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PeerCall {
    /// A reconciliation round ([`Peer::reconcile`](crate::Peer::reconcile)).
    Reconcile,
    /// A fetch of blobs ([`Peer::fetch`](crate::Peer::fetch)).
    Fetch,
    /// A transport's own request for the peers a peer knows (peer exchange).
    Peers,
}

impl std::fmt::Display for PeerCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PeerCall::Reconcile => "reconcile",
            PeerCall::Fetch => "fetch",
            PeerCall::Peers => "peers",
        })
    }
}

/// The error behind an [`Error`] (its [`source`](std::error::Error::source)): shared, since
/// discovery's errors are `Clone`, and handed out by `source()` as the cause itself, so
/// `downcast_ref` finds the cause's type. One type for the workspace, defined in the blob
/// store (the bottom crate) and re-exported here.
pub use seedbank_blobstore::Cause;

/// `Result` with this crate's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<seedbank_blobstore::Error> for Error {
    fn from(err: seedbank_blobstore::Error) -> Self {
        Error::Blobstore(Arc::new(err))
    }
}

impl From<seedbank_index::Error> for Error {
    fn from(err: seedbank_index::Error) -> Self {
        Error::Index(Arc::new(err))
    }
}

impl Error {
    /// A protocol error attributed to no peer yet (the session adds the peer).
    pub(crate) fn protocol(reason: impl Into<String>) -> Self {
        Error::Protocol {
            peer: None,
            reason: reason.into(),
            source: None,
        }
    }

    /// A protocol error by `peer` (or by no peer yet: the session adds it) caused by a
    /// decoder's error `source`, kept as this error's [`source`](std::error::Error::source)
    /// (for transports that decode what a peer sent).
    pub fn protocol_caused(
        peer: Option<String>,
        reason: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::Protocol {
            peer,
            reason: reason.into(),
            source: Some(Cause::new(source)),
        }
    }

    /// A configuration error for `field`.
    pub(crate) fn config(field: &'static str, reason: impl Into<String>) -> Self {
        Error::Config {
            field,
            reason: reason.into(),
            source: None,
        }
    }

    /// A configuration error for `field` found by another component's error `source`
    /// (kept as this error's [`source`](std::error::Error::source)); `reason` is what users
    /// read.
    pub fn config_caused(
        field: &'static str,
        reason: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::Config {
            field,
            reason: reason.into(),
            source: Some(Cause::new(source)),
        }
    }

    /// A transport failure with the given reason (for [`Peer`](crate::Peer) implementers).
    pub fn transport(reason: impl Into<String>) -> Self {
        Error::Transport {
            reason: reason.into(),
            source: None,
        }
    }

    /// A transport failure caused by the transport's own error `source`, kept as this
    /// error's [`source`](std::error::Error::source).
    pub fn transport_caused(
        reason: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::Transport {
            reason: reason.into(),
            source: Some(Cause::new(source)),
        }
    }

    /// A run aborted because its task `what` ended without an answer (it panicked or was
    /// cancelled); tokio's error is kept as the source.
    pub(crate) fn task_failed(what: &str, source: tokio::task::JoinError) -> Self {
        Error::Aborted {
            reason: format!("{what} task failed"),
            source: Some(Cause::new(source)),
        }
    }

    /// A run aborted for `reason`, with no error behind it.
    pub(crate) fn aborted(reason: impl Into<String>) -> Self {
        Error::Aborted {
            reason: reason.into(),
            source: None,
        }
    }

    /// True for errors that mean the peer lied (bad bytes or a protocol violation):
    /// such a peer is dropped and not contacted again by this [`Discovery`](crate::Discovery).
    pub fn is_lie(&self) -> bool {
        matches!(self, Error::HashMismatch { .. } | Error::Protocol { .. })
    }
}

/// A malformed negentropy message is a protocol violation; a peer speaking another
/// protocol version is merely incompatible (a failure, not a lie).
impl From<negentropy::Error> for Error {
    fn from(err: negentropy::Error) -> Self {
        match err {
            negentropy::Error::UnsupportedProtocolVersion => {
                Error::transport_caused("incompatible peer", err)
            }
            err => Error::protocol_caused(None, "negentropy", err),
        }
    }
}

//! seedbank's discovery: find a scope's missing blobs at peers, with the local "haves"
//! computed once per snapshot, range-based set reconciliation, capped fanout, single-flight
//! runs and early stop.
//!
//! The design is in `docs/design.md` of the repository.
//!
//! - [`HavesCache`] (`haves`): one sealed [`Haves`] snapshot per `(scope, generation)` in a
//!   `moka` cache, built on the data read pool (bounded), extended incrementally when that is
//!   provably correct, shared by every session and every [`Responder`] answer.
//! - `reconcile`, [`Message`]: negentropy range-based set reconciliation over those
//!   snapshots.
//! - [`Peer`]: what a sync engine implements over its network; [`Responder`]: the local side
//!   answering other peers (admission-limited, [`Error::Busy`] past the limit).
//! - [`Discovery`] (`discover`, `run`, `fanout`, `single_flight`, `negative_cache`): one run per
//!   scope at a time, at most `fanout` peers ranked by past success and latency, each missing
//!   blob claimed once and verified, ingested through the lane at `Normal` priority; a
//!   [`Report`] of what it cost.
//!
//! ```
//! use std::sync::Arc;
//!
//! use seedbank_blobstore::{codec, Blob, Config, Store};
//! use seedbank_discovery::{
//!     Discovery, DiscoveryConfig, HavesCache, HavesConfig, Peer, Responder, ResponderConfig,
//!     Scope,
//! };
//! use seedbank_index::{Index, IndexConfig, IndexPutOptions};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! async fn node(path: std::path::PathBuf) -> Result<Index, Box<dyn std::error::Error>> {
//!     Ok(Index::open(Store::open(path, Config::default())?, IndexConfig::default()).await?)
//! }
//! // A remote node holding two blobs of scope "doc:1", answering through a Responder.
//! let remote = node(dir.path().join("remote.db")).await?;
//! let blobs = vec![Blob::new(codec::RAW, &b"a"[..]), Blob::new(codec::RAW, &b"b"[..])];
//! remote.put_many(blobs, IndexPutOptions::default().scope("doc:1")).await?;
//! let remote_haves = HavesCache::new(remote.clone(), HavesConfig::default());
//! let peer: Arc<dyn Peer> =
//!     Arc::new(Responder::new("remote", remote_haves, ResponderConfig::default()));
//!
//! // The local node discovers the scope from it.
//! let local = node(dir.path().join("local.db")).await?;
//! let discovery = Discovery::new(
//!     HavesCache::new(local.clone(), HavesConfig::default()),
//!     DiscoveryConfig::default(),
//! );
//! let report = discovery.discover(&Scope::named("doc:1"), &[peer]).await?;
//! assert!(report.complete);
//! assert_eq!((report.blobs_fetched, report.duplicates, report.peers_contacted), (2, 0, 1));
//! assert_eq!(local.scope_members("doc:1").await?.len(), 2);
//! # Ok(())
//! # }
//! ```

mod config;
mod discover;
mod error;
mod fanout;
mod haves;
mod item;
mod local;
mod message;
#[cfg(feature = "metrics")]
mod metrics;
mod negative_cache;
mod peer;
mod progress;
mod reconcile;
mod report;
mod responder;
mod run;
mod scope;
mod single_flight;
#[doc(hidden)]
pub mod testing;

pub use config::DiscoveryConfig;
pub use discover::{Discovery, DiscoveryStats};
pub use error::{with_causes, Cause, Error, PeerCall, Result};
pub use fanout::PeerScore;
pub use haves::{BuildKind, Haves, HavesCache, HavesConfig, HavesStats};
pub use item::ItemId;
pub use message::{Message, MAX_MESSAGE_BYTES};
pub use peer::{answer_holding_nothing, Peer};
pub use progress::Progress;
pub use report::{Report, SessionOutcome, SessionReport};
pub use responder::{Responder, ResponderConfig, ResponderStats, MAX_SCOPE_NAME};
pub use scope::{ParseScopeError, Scope};

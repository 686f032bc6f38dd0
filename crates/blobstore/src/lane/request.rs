//! What callers hand the lane: staged blobs or app closures, with their ack channel.

use std::any::Any;
use std::sync::Arc;

use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::cid::Blob;
use crate::config::Priority;
use crate::error::{AppError, Result};

/// Extra SQL staged with a blob (e.g. the index's link rows), run on the lane in the same
/// transaction, right after the blob's insert. All CPU work (parsing, hashing) must be done
/// before staging: `apply` should only execute SQL.
pub trait StagedOp: Send + 'static {
    /// Writes this op's rows. `inserted` is false when the blob was already stored.
    ///
    /// # Errors
    /// Any error aborts the batch the blob's request is in: nothing of that batch is
    /// committed and every request in it fails (ops must fail only on storage faults).
    fn apply(
        self: Box<Self>,
        conn: &Connection,
        blob: &Blob,
        inserted: bool,
    ) -> Result<(), AppError>;
}

/// A verified blob ready for admission, with optional extra SQL to run in its transaction.
pub struct StagedBlob {
    /// The blob (its CID was computed or verified before staging).
    pub blob: Blob,
    /// SQL to run right after the blob's row is written, in the same transaction.
    pub op: Option<Box<dyn StagedOp>>,
}

impl From<Blob> for StagedBlob {
    fn from(blob: Blob) -> Self {
        StagedBlob { blob, op: None }
    }
}

impl std::fmt::Debug for StagedBlob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StagedBlob")
            .field("cid", self.blob.cid())
            .field("len", &self.blob.len())
            .field("op", &self.op.is_some())
            .finish()
    }
}

/// The value an app closure returns, carried back to its caller after commit.
pub(crate) type AppValue = Box<dyn Any + Send>;

/// An app write closure, run under its own savepoint inside a lane batch.
pub(crate) type AppWrite = Box<dyn FnOnce(&Connection) -> Result<AppValue, AppError> + Send>;

/// The work of one request; the request is committed whole or not at all.
pub(crate) enum Work {
    Blobs(Vec<StagedBlob>),
    App(AppWrite),
}

/// Sent to the caller once the transaction holding the request has committed (or failed).
pub(crate) type Ack = Result<Option<AppValue>>;

/// One admitted unit of work.
pub(crate) struct Request {
    pub class: Priority,
    pub source: Arc<str>,
    pub work: Work,
    /// Blob bytes (queue accounting).
    pub bytes: usize,
    /// Blob count (batch budget).
    pub blobs: usize,
    pub coalesce_key: Option<String>,
    pub enqueued: std::time::Instant,
    /// Batches the lane had committed when this request was admitted (see
    /// [`super::Shared::committed`]): the batch that commits it subtracts this from its own
    /// number to count the batches the request waited.
    pub admitted_after: u64,
    pub ack: oneshot::Sender<Ack>,
    /// Byte permits taken from the class's admission semaphore, returned when it completes.
    pub byte_permits: u32,
}

/// Fixed per-request and per-blob overhead in scheduling cost units, so that tiny writes are
/// not free under byte-based fairness (roughly what a row insert costs in bytes written).
const REQUEST_OVERHEAD: usize = 256;
const BLOB_OVERHEAD: usize = 128;

impl Request {
    /// Scheduling cost: bytes plus fixed overheads.
    pub fn cost(&self) -> usize {
        self.bytes + REQUEST_OVERHEAD + self.blobs * BLOB_OVERHEAD
    }
}

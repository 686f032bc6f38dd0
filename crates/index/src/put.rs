//! Writing blobs through the index: the options of a put, the hard size limit checked
//! before a write, and the size targets that start a background collection after one.

use std::future::Future;
use std::sync::Arc;

use cid::Cid;
use seedbank_blobstore::{Blob, Priority, PutOptions, StagedBlob, Store};

use crate::config::IndexConfig;
use crate::error::{Error, Result};
use crate::pin::{TempPin, TempPins};

/// Options for [`Index::put_many`](crate::Index::put_many).
#[derive(Clone, Debug, Default)]
pub struct IndexPutOptions {
    /// Priority, source and deadline of the write.
    pub put: PutOptions,
    /// Named scopes every blob joins (on top of those its indexers return).
    pub scopes: Vec<String>,
    /// A temp pin every blob joins before it is submitted to the lane (see
    /// [`Index::temp_pin`](crate::Index::temp_pin)). Holding it here keeps the pin alive as long as the options.
    pub temp_pin: Option<TempPin>,
}

impl IndexPutOptions {
    /// Options with the given priority class and source, and no scope.
    pub fn new(priority: Priority, source: &str) -> Self {
        IndexPutOptions {
            put: PutOptions::new(priority, source),
            scopes: Vec::new(),
            temp_pin: None,
        }
    }

    /// Adds a scope every blob joins.
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scopes.push(scope.into());
        self
    }

    /// Pins every blob of the put with `pin` before it reaches the lane.
    pub fn temp_pin(mut self, pin: &TempPin) -> Self {
        self.temp_pin = Some(pin.clone());
        self
    }
}

/// Adds `blobs` to the temp pin of `opts`, if any, before they are submitted: no lane
/// transaction can see them unpinned. Refuses a temp pin of another index.
pub(crate) fn pin_first(
    opts: &IndexPutOptions,
    registry: &Arc<TempPins>,
    blobs: &[Blob],
) -> Result<()> {
    let Some(pin) = &opts.temp_pin else {
        return Ok(());
    };
    if !pin.belongs_to(registry) {
        return Err(Error::InvalidPin {
            reason: "temp pin of another index".into(),
        });
    }
    let cids: Vec<Cid> = blobs.iter().map(|b| *b.cid()).collect();
    pin.add(&cids);
    Ok(())
}

/// Refuses with [`Error::StoreFull`] a write of `staged` that would take the store past
/// `max_bytes`. The size is summed before the returned future is polled, so the future
/// does not borrow `staged` (a [`StagedBlob`] is `Send` but not `Sync`).
pub(crate) fn check_room<'a>(
    store: &'a Store,
    max_bytes: Option<u64>,
    staged: &[StagedBlob],
) -> impl Future<Output = Result<()>> + Send + 'a {
    let incoming: u64 = match max_bytes {
        Some(_) => staged.iter().map(|s| s.blob.len() as u64).sum(),
        None => 0,
    };
    async move {
        let Some(limit) = max_bytes else {
            return Ok(());
        };
        let used = store.space().await?.used_bytes();
        if used.saturating_add(incoming) > limit {
            return Err(Error::StoreFull {
                used,
                incoming,
                limit,
            });
        }
        Ok(())
    }
}

/// True if the store is past a size target of `config`.
pub(crate) async fn over_target(store: &Store, config: &IndexConfig) -> Result<bool> {
    let mut over = false;
    if let Some(target) = config.gc_target_bytes {
        over |= store.space().await?.used_bytes() > target;
    }
    if let (false, Some(target)) = (over, config.gc_target_blobs) {
        over |= store.contents().await?.cids > target;
    }
    Ok(over)
}

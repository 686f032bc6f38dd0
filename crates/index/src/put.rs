//! Writing blobs through the index: the options of a put, the hard size limit checked
//! before a write, and the size targets that start a background collection after one.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use cid::Cid;
use seedbank_blobstore::{Blob, Priority, PutOptions, StagedBlob, Store};

use crate::config::IndexConfig;
use crate::error::{from_store, Error, Result};
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

/// Stores `staged` through the lane, after refusing with [`Error::StoreFull`] a write that
/// would take the store past `max_bytes`.
pub(crate) async fn put_staged(
    store: &Store,
    max_bytes: Option<u64>,
    staged: Vec<StagedBlob>,
    opts: PutOptions,
) -> Result<Vec<Cid>> {
    if let Some(limit) = max_bytes {
        let incoming: u64 = staged.iter().map(|s| s.blob.len() as u64).sum();
        let used = store.space().await?.used_bytes();
        if used.saturating_add(incoming) > limit {
            return Err(Error::StoreFull {
                used,
                incoming,
                limit,
            });
        }
    }
    store.put_staged(staged, opts).await.map_err(from_store)
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

/// Past a size target of `config`, `collect` (a check of the targets and the collection it
/// may start) runs on a task of its own. `running` is set while one runs, so there is never
/// more than one at a time; without size targets nothing runs.
pub(crate) fn collect_in_background<T, F>(
    config: &IndexConfig,
    running: &Arc<AtomicBool>,
    collect: F,
) where
    F: Future<Output = Result<T>> + Send + 'static,
{
    if config.gc_target_bytes.is_none() && config.gc_target_blobs.is_none() {
        return;
    }
    if running.swap(true, Ordering::AcqRel) {
        return;
    }
    let running = running.clone();
    tokio::spawn(async move {
        if let Err(e) = collect.await {
            tracing::warn!(error = %e, "size-target collection failed");
        }
        running.store(false, Ordering::Release);
    });
}

/// Reads back the stored ones of `cids` (blobs written without the index, e.g. by a plain
/// [`Store::put`]) so the caller can put them again through the index; CIDs that are not
/// stored are skipped.
pub(crate) async fn read_back(store: &Store, cids: Vec<Cid>) -> Result<Vec<Blob>> {
    let mut blobs = Vec::new();
    for cid in cids {
        if let Some(data) = store.get(&cid).await? {
            blobs.push(Blob::with_cid(cid, data)?);
        }
    }
    Ok(blobs)
}

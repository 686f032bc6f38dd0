//! Batched, pipelined block writes through the index under one temp pin.

use std::collections::VecDeque;

use cid::Cid;
use seedbank_blobstore::Blob;
use seedbank_index::{Index, IndexPutOptions};
use tokio::task::JoinHandle;

use crate::error::{Error, Result};

/// A batch is submitted once it holds this many bytes ...
const BATCH_BYTES: usize = 8 * 1024 * 1024;
/// ... or this many blocks (many small files).
const BATCH_BLOCKS: usize = 1024;
/// Batches written while the next one fills. Memory held by an add is about
/// `(MAX_IN_FLIGHT + 1) * BATCH_BYTES` plus one chunk, whatever the file's size.
const MAX_IN_FLIGHT: usize = 2;

type Put = JoinHandle<seedbank_index::Result<Vec<Cid>>>;

/// Collects blocks into batches and writes each with `Index::put_many` on a task of its
/// own, at most [`MAX_IN_FLIGHT`] at a time, so reading and hashing the next batch overlap
/// the lane committing the last. Every block joins the options' temp pin before it is
/// submitted (`put_many` adds it), so none is ever stored unprotected.
pub(crate) struct BlockWriter {
    index: Index,
    opts: IndexPutOptions,
    batch: Vec<Blob>,
    batch_bytes: usize,
    in_flight: VecDeque<Put>,
    /// Blocks handed to the writer.
    pub blocks: u64,
    /// Bytes of those blocks.
    pub bytes: u64,
}

impl BlockWriter {
    /// `opts` must carry the temp pin that protects the add until its root is pinned.
    pub fn new(index: Index, opts: IndexPutOptions) -> Self {
        BlockWriter {
            index,
            opts,
            batch: Vec::new(),
            batch_bytes: 0,
            in_flight: VecDeque::new(),
            blocks: 0,
            bytes: 0,
        }
    }

    /// The index written to.
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// Queues blocks; submits the batch when it is full (waiting for room in flight).
    pub async fn push(&mut self, blobs: impl IntoIterator<Item = Blob>) -> Result<()> {
        for blob in blobs {
            self.blocks += 1;
            self.bytes += blob.len() as u64;
            self.batch_bytes += blob.len();
            self.batch.push(blob);
            if self.batch_bytes >= BATCH_BYTES || self.batch.len() >= BATCH_BLOCKS {
                self.submit().await?;
            }
        }
        Ok(())
    }

    async fn submit(&mut self) -> Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        while self.in_flight.len() >= MAX_IN_FLIGHT {
            self.wait_oldest().await?;
        }
        let batch = std::mem::take(&mut self.batch);
        self.batch_bytes = 0;
        let (index, opts) = (self.index.clone(), self.opts.clone());
        self.in_flight.push_back(tokio::spawn(
            async move { index.put_many(batch, opts).await },
        ));
        Ok(())
    }

    async fn wait_oldest(&mut self) -> Result<()> {
        if let Some(put) = self.in_flight.pop_front() {
            put.await.map_err(Error::Task)?.map_err(Error::write)?;
        }
        Ok(())
    }

    /// Submits what is queued and waits until every block is committed.
    pub async fn finish(&mut self) -> Result<()> {
        self.submit().await?;
        while !self.in_flight.is_empty() {
            self.wait_oldest().await?;
        }
        Ok(())
    }
}

impl Drop for BlockWriter {
    /// An add that failed or was dropped stops its writes the lane has not started;
    /// batches already committed stay (complete blocks, collectable once unpinned).
    fn drop(&mut self) {
        for put in &self.in_flight {
            put.abort();
        }
    }
}

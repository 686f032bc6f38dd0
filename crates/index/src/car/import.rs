//! CAR import: stream, verify, stage and submit blocks in batches at `Background` priority.

use std::collections::HashSet;

use cid::Cid;
use seedbank_blobstore::{Blob, Priority, PutOptions, StagedBlob};
use tokio::io::AsyncRead;

use super::reader::{CarReader, MAX_CID_BYTES};
use crate::error::{Error, Result};
use crate::{Index, TempPin};

/// Options for [`import`].
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// Priority and source of the writes (default `Background`, source `"import"`).
    pub put: PutOptions,
    /// Named scopes every imported block joins.
    pub scopes: Vec<String>,
    /// Blocks handed to the lane per batch (default 512). One batch is submitted while the
    /// next is read and verified.
    pub batch_blobs: usize,
    /// Block bytes per batch (default 4 MiB). With `batch_blobs` this bounds the import's
    /// memory beside the lane's own admission bounds.
    pub batch_bytes: usize,
    /// Walk the roots after the import to count missing blocks (default true).
    pub count_missing: bool,
    /// The temp pin every block joins before it is submitted (default none: the import
    /// takes one of its own and drops it when it returns). Pass one and keep it to protect
    /// the imported blocks from collection until the application has pinned what it keeps.
    pub temp_pin: Option<TempPin>,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            put: PutOptions::new(Priority::Background, "import"),
            scopes: Vec::new(),
            batch_blobs: 512,
            batch_bytes: 4 * 1024 * 1024,
            count_missing: true,
            temp_pin: None,
        }
    }
}

/// What an import stored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// 1 or 2.
    pub version: u64,
    /// Blocks read, verified and stored (blocks already stored included).
    pub blocks: u64,
    /// Their bytes (block data, not CIDs or framing).
    pub bytes: u64,
    /// The roots named by the header.
    pub roots: Vec<Cid>,
    /// Distinct blocks referenced under the roots but not stored after the import.
    pub missing: u64,
    /// False when a root's DAG was larger than the reachable limit (so `missing` is a lower
    /// bound) or when counting was turned off.
    pub missing_complete: bool,
}

/// A batch of verified, staged blocks and how reading stopped.
struct Batch {
    staged: Vec<StagedBlob>,
    /// `None`: the batch filled up and there is more to read.
    end: Option<Result<()>>,
}

/// Imports a CARv1 or CARv2 from `reader`.
///
/// Blocks are verified against their CIDs and staged (links extracted) on this task, then
/// submitted through the lane in batches; one batch is committing while the next is read, so
/// memory stays bounded for any file size. On a corrupt or truncated file the blocks verified
/// before the bad section are still stored (they are valid content) and the error names the
/// bad section's byte offset.
///
/// Every block joins a temp pin ([`ImportOptions::temp_pin`], or the import's own) before it
/// is submitted, so a collection running meanwhile never takes a block whose parent has not
/// arrived yet; pin the roots to keep them after the import.
///
/// # Errors
/// [`Error::Car`] for corrupt input (including a block that does not match its CID or uses an
/// unsupported multihash), [`Error::CarIo`] if reading fails, [`Error::Blobstore`] if the lane
/// rejected a batch, [`Error::Storage`].
pub async fn import<R: AsyncRead + Unpin>(
    index: &Index,
    reader: R,
    opts: ImportOptions,
) -> Result<ImportReport> {
    let max_section = index.store().config().max_blob_size + MAX_CID_BYTES;
    let mut car = CarReader::new(reader, max_section).await?;
    let mut report = ImportReport {
        version: car.version(),
        roots: car.roots().to_vec(),
        ..Default::default()
    };
    let pin = match &opts.temp_pin {
        Some(pin) if !pin.belongs_to(index.temp_pins()) => {
            return Err(Error::InvalidPin {
                reason: "temp pin of another index".into(),
            })
        }
        Some(pin) => pin.clone(),
        None => index.temp_pin(),
    };
    let mut batch = read_batch(index, &mut car, &opts, &mut report).await;
    loop {
        // Before submission: no lane transaction can see these blocks unpinned.
        let cids: Vec<Cid> = batch.staged.iter().map(|s| *s.blob.cid()).collect();
        pin.add(&cids);
        let put = index.put_staged(std::mem::take(&mut batch.staged), opts.put.clone());
        if let Some(end) = batch.end {
            put.await?;
            end?;
            break;
        }
        let (put, next) = tokio::join!(put, read_batch(index, &mut car, &opts, &mut report));
        put?;
        batch = next;
    }
    if opts.count_missing {
        count_missing(index, &mut report).await?;
    }
    Ok(report)
}

/// Reads, verifies and stages blocks until the batch is full or the input ends.
async fn read_batch<R: AsyncRead + Unpin>(
    index: &Index,
    car: &mut CarReader<R>,
    opts: &ImportOptions,
    report: &mut ImportReport,
) -> Batch {
    let max_blob = index.store().config().max_blob_size;
    let mut staged = Vec::new();
    let mut bytes = 0;
    while staged.len() < opts.batch_blobs.max(1) && bytes < opts.batch_bytes {
        let block = match car.next_block().await {
            Ok(Some(block)) => block,
            Ok(None) => {
                return Batch {
                    staged,
                    end: Some(Ok(())),
                }
            }
            Err(e) => {
                return Batch {
                    staged,
                    end: Some(Err(e)),
                }
            }
        };
        let offset = block.offset;
        if block.data.len() > max_blob {
            let reason = format!(
                "block {} of {} bytes exceeds the store's limit of {max_blob} bytes",
                block.cid,
                block.data.len()
            );
            return Batch {
                staged,
                end: Some(Err(Error::Car {
                    offset,
                    reason,
                    source: None,
                })),
            };
        }
        let blob = match Blob::with_cid(block.cid, block.data) {
            Ok(blob) => blob,
            Err(e) => {
                let reason = format!("block {}", block.cid);
                return Batch {
                    staged,
                    end: Some(Err(super::reader::corrupt_caused(offset, reason, e))),
                };
            }
        };
        bytes += blob.len();
        report.blocks += 1;
        report.bytes += blob.len() as u64;
        staged.push(index.stage(blob, &opts.scopes));
    }
    Batch { staged, end: None }
}

/// Counts distinct missing blocks under every root.
async fn count_missing(index: &Index, report: &mut ImportReport) -> Result<()> {
    let limit = index.config().reachable_limit;
    let mut missing = HashSet::new();
    report.missing_complete = true;
    for root in &report.roots {
        let dag = index.walk(root, limit).await?;
        report.missing_complete &= dag.complete;
        missing.extend(dag.missing);
    }
    report.missing = missing.len() as u64;
    Ok(())
}

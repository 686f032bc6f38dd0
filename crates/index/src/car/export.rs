//! CAR export: a DAG from its root in traversal order, or a scope in insertion order.

use bytes::Bytes;
use cid::Cid;
use seedbank_blobstore::rows;
use seedbank_blobstore::rusqlite::Connection;
use seedbank_blobstore::PoolKind;
use tokio::io::AsyncWrite;

use super::writer::CarWriter;
use crate::error::{Error, Result};
use crate::row::is_identity;
use crate::Index;

/// Blocks fetched per read, at most (bounds memory with [`FETCH_BYTES`]).
const FETCH_BLOCKS: usize = 256;
/// Block bytes fetched per read, at least one block.
const FETCH_BYTES: usize = 4 * 1024 * 1024;

/// What an export wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExportReport {
    /// Blocks written.
    pub blocks: u64,
    /// Their bytes (block data only).
    pub bytes: u64,
    /// Size of the CAR written, in bytes.
    pub car_bytes: u64,
    /// Blocks of the DAG that are not stored and so were left out.
    pub missing: u64,
}

/// Writes a CARv1 with `root` as its only root and every locally available block of its DAG
/// in traversal order (depth-first, links in order, each block once). Missing blocks are
/// left out and counted.
///
/// # Errors
/// [`Error::NotFound`] if `root` is not stored, [`Error::LimitExceeded`] past the reachable
/// limit, [`Error::Blobstore`] with [`Corrupt`](seedbank_blobstore::Error::Corrupt) if a
/// stored block fails verification, [`Error::Io`] if writing fails.
pub async fn export_dag<W: AsyncWrite + Unpin>(
    index: &Index,
    root: &Cid,
    writer: W,
) -> Result<ExportReport> {
    let dag = index.walk(root, index.config().reachable_limit).await?;
    if !dag.complete {
        return Err(Error::LimitExceeded {
            root: *root,
            limit: index.config().reachable_limit,
        });
    }
    if dag.present.first() != Some(root) {
        return Err(Error::NotFound { cid: *root });
    }
    let mut report = write_blocks(index, std::slice::from_ref(root), dag.present, writer).await?;
    report.missing = dag.missing.len() as u64;
    Ok(report)
}

/// Writes a CARv1 of every member of `scope` in insertion order, with `roots` in its header
/// (CARv1 readers such as go-car expect at least one).
///
/// # Errors
/// As [`export_dag`], without `NotFound` and `LimitExceeded`.
pub async fn export_scope<W: AsyncWrite + Unpin>(
    index: &Index,
    scope: &str,
    roots: &[Cid],
    writer: W,
) -> Result<ExportReport> {
    let members = index.scope_members(scope).await?;
    write_blocks(index, roots, members, writer).await
}

async fn write_blocks<W: AsyncWrite + Unpin>(
    index: &Index,
    roots: &[Cid],
    cids: Vec<Cid>,
    writer: W,
) -> Result<ExportReport> {
    let mut car = CarWriter::new(writer, roots).await?;
    let mut report = ExportReport::default();
    let mut rest = &cids[..];
    while !rest.is_empty() {
        let want: Vec<Cid> = rest.iter().take(FETCH_BLOCKS).copied().collect();
        let blocks = index
            .read(PoolKind::Data, move |conn| fetch(conn, &want))
            .await?;
        rest = &rest[blocks.len()..];
        for (cid, data) in blocks {
            car.write_block(&cid, &data).await?;
            report.blocks += 1;
            report.bytes += data.len() as u64;
        }
    }
    report.car_bytes = car.bytes_written();
    car.finish().await?;
    Ok(report)
}

/// Reads and verifies a prefix of `cids` (at least one, at most [`FETCH_BYTES`] of data).
fn fetch(conn: &Connection, cids: &[Cid]) -> Result<Vec<(Cid, Bytes)>> {
    let (mut out, mut bytes) = (Vec::new(), 0);
    for cid in cids {
        if bytes >= FETCH_BYTES {
            break;
        }
        let data = match rows::get(conn, cid)? {
            Some(data) => data,
            None if is_identity(cid) => Bytes::copy_from_slice(cid.hash().digest()),
            None => return Err(Error::NotFound { cid: *cid }),
        };
        bytes += data.len();
        out.push((*cid, data));
    }
    Ok(out)
}

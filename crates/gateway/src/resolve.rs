//! Content path resolution: `/ipfs/{cid}/a/b` through UnixFS directories (flat and HAMT,
//! looked up by the name's hash, one shard per level), plain dag-pb links by name, and
//! DAG-CBOR fields and links. Every block read on the way is recorded, in order, so a CAR
//! response can carry what a client needs to verify the path.

use bytes::Bytes;
use cid::Cid;
use ipld_core::ipld::Ipld;
use seedbank_blobstore::Store;

use crate::blocks::{self, BlockError};
use crate::unixfs::{self, DataType, Node, PbUnixfs, DAG_CBOR};

/// Deepest HAMT walked for one path segment (8 levels use all 64 bits of one hash).
const MAX_HAMT_DEPTH: usize = 32;

/// A resolved content path.
#[derive(Debug)]
pub(crate) struct Resolved {
    /// Blocks read to walk the path, before the terminus, in order (the root first).
    pub path_blocks: Vec<Cid>,
    /// The CID the path leads to.
    pub terminus: Cid,
    /// Its bytes.
    pub block: Bytes,
    /// The CID each logical path segment resolved to (the root first), for `X-Ipfs-Roots`.
    pub roots: Vec<Cid>,
}

/// Why a path does not resolve.
#[derive(Debug)]
pub(crate) enum ResolveError {
    /// The root block is not stored.
    RootMissing(Cid),
    /// A block on the way (or the terminus) is not stored.
    Missing(Cid),
    /// The DAG has no such path (the message names the part that does not exist).
    NoSuchPath(String),
    /// The path ends inside a DAG-CBOR block on something that is not a link.
    NotALink(String),
    /// The store failed.
    Store(seedbank_blobstore::Error),
}

impl From<BlockError> for ResolveError {
    fn from(e: BlockError) -> Self {
        match e {
            BlockError::Missing(cid) => ResolveError::Missing(cid),
            BlockError::Store(e) => ResolveError::Store(e),
        }
    }
}

/// Walks `segments` (already percent-decoded) from `root`.
pub(crate) async fn resolve(
    store: &Store,
    root: &Cid,
    segments: &[String],
) -> Result<Resolved, ResolveError> {
    let mut block = match blocks::get(store, root).await {
        Ok(b) => b,
        Err(BlockError::Missing(_)) => return Err(ResolveError::RootMissing(*root)),
        Err(e) => return Err(e.into()),
    };
    let mut cid = *root;
    let mut path_blocks = Vec::new();
    let mut roots = vec![*root];
    let mut walked = format!("/ipfs/{root}");
    let mut i = 0;
    while i < segments.len() {
        let name = &segments[i];
        path_blocks.push(cid);
        let (next, used) = if cid.codec() == DAG_CBOR {
            cbor_step(&cid, &block, &segments[i..], &walked)?
        } else {
            let next = match Node::decode(&cid, &block) {
                Node::Pb(pb) => pb_step(store, pb, name, &mut path_blocks, &walked).await?,
                _ => None,
            };
            let next = next.ok_or_else(|| {
                ResolveError::NoSuchPath(format!("{walked}/{name}: no such link"))
            })?;
            (next, 1)
        };
        for s in &segments[i..i + used] {
            walked.push('/');
            walked.push_str(s);
        }
        i += used;
        block = blocks::get(store, &next).await?;
        cid = next;
        roots.push(cid);
    }
    Ok(Resolved {
        path_blocks,
        terminus: cid,
        block,
        roots,
    })
}

/// One step through a dag-pb node: a directory entry (flat or through a HAMT, whose
/// shards below the first are appended to `path_blocks`), or a plain dag-pb link by name.
async fn pb_step(
    store: &Store,
    pb: PbUnixfs,
    name: &str,
    path_blocks: &mut Vec<Cid>,
    walked: &str,
) -> Result<Option<Cid>, ResolveError> {
    match &pb.data {
        Some(data) if data.kind == DataType::HamtShard => {
            hamt_lookup(store, pb, name, path_blocks, walked).await
        }
        Some(data) if data.kind != DataType::Directory => Ok(None),
        _ => Ok(pb
            .links
            .into_iter()
            .find(|l| l.name.as_deref() == Some(name))
            .map(|l| l.cid)),
    }
}

/// Finds `name` in the HAMT whose root node is `pb`, reading one shard per level below it.
async fn hamt_lookup(
    store: &Store,
    mut pb: PbUnixfs,
    name: &str,
    path_blocks: &mut Vec<Cid>,
    walked: &str,
) -> Result<Option<Cid>, ResolveError> {
    let bad = |why: &str| ResolveError::NoSuchPath(format!("{walked}: {why}"));
    let mut current;
    for depth in 0..MAX_HAMT_DEPTH {
        let data = pb
            .data
            .as_ref()
            .filter(|d| d.kind == DataType::HamtShard)
            .ok_or_else(|| bad("a HAMT slot links to something not a shard"))?;
        let width = unixfs::shard_width(data).ok_or_else(|| bad("unsupported HAMT"))?;
        let fanout = data.fanout.unwrap_or_default();
        let slot = seedbank_files::hamt_slot(name.as_bytes(), depth, fanout)
            .ok_or_else(|| bad("unsupported HAMT fanout"))?;
        let prefix = format!("{slot:0width$X}");
        let Some(link) = pb
            .links
            .into_iter()
            .find(|l| l.name.as_deref().is_some_and(|n| n.starts_with(&prefix)))
        else {
            return Ok(None);
        };
        let link_name = link.name.as_deref().unwrap_or_default();
        if link_name.len() > width {
            return Ok((link_name.get(width..) == Some(name)).then_some(link.cid));
        }
        current = link.cid;
        path_blocks.push(current);
        let bytes = blocks::get(store, &current).await?;
        pb = match Node::decode(&current, &bytes) {
            Node::Pb(pb) => pb,
            _ => return Err(bad("a HAMT slot links to something not a shard")),
        };
    }
    Err(bad("HAMT deeper than any importer builds"))
}

/// Steps through a DAG-CBOR block: follows map keys and list indices in `segments` until
/// a link; returns it and how many segments it took.
fn cbor_step(
    cid: &Cid,
    block: &Bytes,
    segments: &[String],
    walked: &str,
) -> Result<(Cid, usize), ResolveError> {
    let node: Ipld = serde_ipld_dagcbor::from_slice(block)
        .map_err(|_| ResolveError::NoSuchPath(format!("{walked}: {cid} is not valid DAG-CBOR")))?;
    let mut here = &node;
    for (used, seg) in segments.iter().enumerate() {
        here = match here {
            Ipld::Map(m) => m.get(seg.as_str()),
            Ipld::List(l) => seg.parse::<usize>().ok().and_then(|i| l.get(i)),
            _ => None,
        }
        .ok_or_else(|| {
            let path = segments[..=used].join("/");
            ResolveError::NoSuchPath(format!("{walked}/{path}: no such field"))
        })?;
        if let Ipld::Link(next) = here {
            return Ok((*next, used + 1));
        }
    }
    Err(ResolveError::NotALink(format!(
        "{walked}/{}: the path ends inside {cid} on a value that is not a link",
        segments.join("/")
    )))
}

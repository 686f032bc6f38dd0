//! Directory listings (flat and HAMT) and path resolution.

use cid::Cid;
use ipld_dagpb::PbLink;
use seedbank_blobstore::{codec, Store};

use super::{fetch_many, load, MAX_DEPTH};
use crate::error::{Error, Result};
use crate::hamt;
use crate::node::Node;
use crate::unixfs::{Data, DataType};
use crate::Kind;

/// Children whose kind and size are read in one store round trip.
const LIST_BATCH: usize = 128;

/// One entry of a directory listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The entry's name in its directory.
    pub name: String,
    /// Its CID.
    pub cid: Cid,
    /// What it is ([`Kind::Unknown`] when its block is not stored).
    pub kind: Kind,
    /// For files, their size in bytes; for symlinks, the target's length; for directories
    /// (and entries whose block is not stored), the cumulative size of their blocks, as
    /// the link records it.
    pub size: u64,
}

/// The `(name, link)` pairs of the directory `cid`, HAMT shards flattened, sorted by name.
pub(crate) async fn entries(store: &Store, cid: &Cid) -> Result<Vec<(String, PbLink)>> {
    let node = load(store, cid).await?;
    let mut out = Vec::new();
    match node {
        Node::Pb { links, data } if data.kind == DataType::Directory => {
            for l in links {
                let name = l
                    .name
                    .clone()
                    .ok_or_else(|| Error::corrupt(cid, "unnamed link"))?;
                out.push((name, l));
            }
        }
        Node::Pb { links, data } if data.kind == DataType::HamtShard => {
            shard_entries(store, cid, links, &data, 0, &mut out).await?;
            out.sort_by(|a, b| a.0.cmp(&b.0));
        }
        node => {
            return Err(Error::NotADirectory {
                cid: *cid,
                found: node.kind(),
            })
        }
    }
    Ok(out)
}

/// Collects the entries of one shard node and, recursively, of its sub-shards.
async fn shard_entries(
    store: &Store,
    cid: &Cid,
    links: Vec<PbLink>,
    data: &Data,
    depth: usize,
    out: &mut Vec<(String, PbLink)>,
) -> Result<()> {
    let width = shard_width(cid, data)?;
    for l in links {
        let name = l
            .name
            .clone()
            .ok_or_else(|| Error::corrupt(cid, "unnamed HAMT link"))?;
        if name.len() < width || !name.is_char_boundary(width) {
            return Err(Error::corrupt(cid, format!("HAMT link name {name:?}")));
        }
        if name.len() > width {
            out.push((name[width..].to_string(), l));
            continue;
        }
        let (sub_links, sub_data) = load_shard(store, &l.cid, depth + 1).await?;
        Box::pin(shard_entries(
            store,
            &l.cid,
            sub_links,
            &sub_data,
            depth + 1,
            out,
        ))
        .await?;
    }
    Ok(())
}

/// Reads a sub-shard; anything else under a shard's bare-prefix link is corrupt.
async fn load_shard(store: &Store, cid: &Cid, depth: usize) -> Result<(Vec<PbLink>, Data)> {
    if depth >= MAX_DEPTH.min(hamt::MAX_DEPTH) {
        return Err(Error::TooDeep {
            cid: *cid,
            limit: hamt::MAX_DEPTH,
        });
    }
    match load(store, cid).await? {
        Node::Pb { links, data } if data.kind == DataType::HamtShard => Ok((links, data)),
        _ => Err(Error::corrupt(
            cid,
            "a HAMT slot links to something not a shard",
        )),
    }
}

/// The length of a shard's slot prefixes (hex digits of `fanout - 1`), after checking the
/// shard is one this crate can read (murmur3-x64-64, fanout 256).
fn shard_width(cid: &Cid, data: &Data) -> Result<usize> {
    if data.hash_type != Some(hamt::HASH_TYPE) {
        return Err(Error::corrupt(
            cid,
            format!(
                "HAMT hash type {:?} (only murmur3-x64-64 is supported)",
                data.hash_type
            ),
        ));
    }
    match data.fanout {
        Some(crate::profile::HAMT_FANOUT) => Ok(2),
        other => Err(Error::corrupt(
            cid,
            format!("HAMT fanout {other:?} (only 256 is supported)"),
        )),
    }
}

/// Lists the directory `cid`, reading each entry's root block for its kind and size.
pub(crate) async fn list(store: &Store, cid: &Cid) -> Result<Vec<Entry>> {
    let named = entries(store, cid).await?;
    let mut out = Vec::with_capacity(named.len());
    for batch in named.chunks(LIST_BATCH) {
        // Raw blocks are files whose size is their length; only dag-pb blocks are read.
        let pb: Vec<Cid> = batch
            .iter()
            .map(|(_, l)| l.cid)
            .filter(|c| c.codec() != codec::RAW)
            .collect();
        let mut fetched = fetch_many(store, &pb).await?.into_iter();
        for (name, l) in batch {
            let tsize = l.size.unwrap_or(0);
            let (kind, size) = if l.cid.codec() == codec::RAW {
                (Kind::File, tsize)
            } else {
                match fetched.next() {
                    Some(Ok(Some(bytes))) => {
                        let node = Node::decode(&l.cid, bytes)?;
                        let size = node.file_size(&l.cid)?.unwrap_or(tsize);
                        (node.kind(), size)
                    }
                    Some(Ok(None)) | None => (Kind::Unknown, tsize),
                    Some(Err(source)) => {
                        return Err(Error::Read {
                            cid: l.cid,
                            source: Box::new(source),
                        })
                    }
                }
            };
            out.push(Entry {
                name: name.clone(),
                cid: l.cid,
                kind,
                size,
            });
        }
    }
    Ok(out)
}

/// Follows `names` from the directory `root`; returns the CID they lead to.
pub(crate) async fn resolve(store: &Store, root: &Cid, names: &[&str]) -> Result<Cid> {
    let mut cid = *root;
    let mut walked = root.to_string();
    for name in names {
        walked.push('/');
        walked.push_str(name);
        cid = match child(store, &cid, name).await? {
            Some(c) => c,
            None => return Err(Error::NotFound { path: walked }),
        };
    }
    Ok(cid)
}

/// The CID of `name` in the directory `dir`, looking a HAMT up by the name's hash (one
/// shard per level) rather than listing it.
async fn child(store: &Store, dir: &Cid, name: &str) -> Result<Option<Cid>> {
    match load(store, dir).await? {
        Node::Pb { links, data } if data.kind == DataType::Directory => Ok(links
            .into_iter()
            .find(|l| l.name.as_deref() == Some(name))
            .map(|l| l.cid)),
        Node::Pb {
            mut links,
            mut data,
        } if data.kind == DataType::HamtShard => {
            let mut shard = *dir;
            for depth in 0..hamt::MAX_DEPTH {
                let width = shard_width(&shard, &data)?;
                let fanout = data.fanout.unwrap_or_default();
                let Some(slot) = hamt::slot(name.as_bytes(), depth, fanout) else {
                    return Err(Error::corrupt(&shard, "unsupported HAMT fanout"));
                };
                let prefix = format!("{slot:02X}");
                debug_assert_eq!(prefix.len(), width);
                let Some(l) = links
                    .into_iter()
                    .find(|l| l.name.as_deref().is_some_and(|n| n.starts_with(&prefix)))
                else {
                    return Ok(None);
                };
                let link_name = l.name.as_deref().unwrap_or_default();
                if link_name.len() > width {
                    return Ok((link_name[width..] == *name).then_some(l.cid));
                }
                shard = l.cid;
                (links, data) = load_shard(store, &shard, depth + 1).await?;
            }
            Err(Error::TooDeep {
                cid: *dir,
                limit: hamt::MAX_DEPTH,
            })
        }
        node => Err(Error::NotADirectory {
            cid: *dir,
            found: node.kind(),
        }),
    }
}

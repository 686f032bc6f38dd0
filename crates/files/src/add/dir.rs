//! Directories: entries in name order, then one flat node or, past the profile's size
//! threshold, a HAMT.
//!
//! The threshold is checked as the reference JS importer checks it: the estimate counts
//! files, symlinks and directories that have nothing in them (they reach the importer as
//! finished blocks), but not directories with entries (those are still open when their
//! parent's size is estimated, and count zero). `links-bytes` adds each counted link's
//! name and CID lengths; `block-bytes` adds each counted link's encoded size to the 4 bytes
//! of the directory's own data. A directory whose estimate is over [`SHARD_THRESHOLD`]
//! (strictly) becomes a HAMT.

use std::fs::FileType;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;

use crate::error::{Error, Result};
use crate::hamt;
use crate::node::{link, pb_block, Child};
use crate::profile::{ShardEstimate, SHARD_THRESHOLD};
use crate::unixfs::{varint_len, Data, DataType};
use crate::Kind;

use super::read::{FileRead, SmallFiles};
use super::{io_error, Added1, Adder};

/// One named child of a directory.
struct Named {
    name: String,
    added: Added1,
}

type Boxed<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

impl Adder {
    /// Adds the directory at `path` and everything under it; `rel` is its path in the add.
    /// Its regular files are read a group per blocking task ([`SmallFiles`]), one group
    /// ahead; one larger than a chunk is streamed when its turn comes.
    pub(super) fn dir<'a>(&'a mut self, path: &'a Path, rel: String) -> Boxed<'a, Added1> {
        Box::pin(async move {
            let listing = {
                let (dir, hidden) = (path.to_path_buf(), self.hidden);
                tokio::task::spawn_blocking(move || list(&dir, hidden))
                    .await
                    .map_err(Error::Task)??
            };
            let regular = listing
                .iter()
                .filter(|(_, kind)| kind.is_file())
                .map(|(name, _)| path.join(name))
                .collect();
            let mut small = SmallFiles::new(regular, self.profile);
            let mut children = Vec::with_capacity(listing.len());
            for (name, kind) in listing {
                let child_rel = if rel.is_empty() {
                    name.clone()
                } else {
                    format!("{rel}/{name}")
                };
                let added = if kind.is_file() {
                    self.listed_file(&mut small, &path.join(&name), child_rel)
                        .await?
                } else {
                    self.path(&path.join(&name), kind, child_rel).await?
                };
                children.push(Named { name, added });
            }
            let counted = children.is_empty();
            let child = self.directory(children).await?;
            self.entry(rel, &child, Kind::Directory);
            Ok(Added1 { child, counted })
        })
    }

    /// Adds the next regular file of a directory, read by `small` (or streamed from `path`
    /// when larger than a chunk).
    async fn listed_file(
        &mut self,
        small: &mut SmallFiles,
        path: &Path,
        rel: String,
    ) -> Result<Added1> {
        let child = match small.next().await? {
            FileRead::Small(file) => {
                self.writer.push(file.blocks).await?;
                self.read(file.bytes);
                file.root
            }
            FileRead::Large => self.file_at(path).await?,
        };
        self.entry(rel, &child, Kind::File);
        Ok(Added1 {
            child,
            counted: true,
        })
    }

    /// Writes the directory node(s) over `children` (sorted, unique names).
    async fn directory(&mut self, children: Vec<Named>) -> Result<Child> {
        let mut blocks = Vec::new();
        let child = if self.estimate(&children) > SHARD_THRESHOLD {
            let entries = children
                .into_iter()
                .map(|c| hamt::Entry {
                    name: c.name,
                    child: c.added.child,
                })
                .collect();
            hamt::build(entries, self.profile.cid_version(), &mut blocks)?
        } else {
            let mut tsize: u64 = 0;
            let links = children
                .iter()
                .map(|c| {
                    tsize = tsize.saturating_add(c.added.child.tsize);
                    link(c.name.clone(), &c.added.child)
                })
                .collect();
            let blob = pb_block(
                links,
                &Data::new(DataType::Directory),
                self.profile.cid_version(),
            );
            let child = Child {
                cid: *blob.cid(),
                file_size: 0,
                tsize: tsize.saturating_add(blob.len() as u64),
            };
            blocks.push(blob);
            child
        };
        self.writer.push(blocks).await?;
        Ok(child)
    }

    /// The directory's estimated size, as the profile measures it.
    fn estimate(&self, children: &[Named]) -> u64 {
        let counted = children.iter().filter(|c| c.added.counted);
        match self.profile.shard_estimate() {
            ShardEstimate::LinksBytes => counted
                .map(|c| (c.name.len() + c.added.child.cid.encoded_len()) as u64)
                .sum(),
            ShardEstimate::BlockBytes => {
                // The directory's data field: tag, length, `Type = Directory`.
                let data_field = 4;
                data_field
                    + counted
                        .map(|c| {
                            link_block_bytes(
                                c.name.len() as u64,
                                c.added.child.cid.encoded_len() as u64,
                                c.added.child.tsize,
                            )
                        })
                        .sum::<u64>()
            }
        }
    }
}

/// The entries of the directory `dir` sorted by name (byte order), without hidden ones
/// unless `hidden`. Runs on the blocking pool: one hand-off for the whole listing.
fn list(dir: &Path, hidden: bool) -> Result<Vec<(String, FileType)>> {
    let mut listing = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| io_error(dir, e))? {
        let entry = entry.map_err(|e| io_error(dir, e))?;
        let name = entry
            .file_name()
            .into_string()
            .map_err(|_| Error::Unsupported {
                path: entry.path(),
                reason: "its name is not UTF-8",
            })?;
        if name.starts_with('.') && !hidden {
            continue;
        }
        let kind = entry.file_type().map_err(|e| io_error(&entry.path(), e))?;
        listing.push((name, kind));
    }
    listing.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Ok(listing)
}

/// Bytes one link adds to an encoded dag-pb node: `Hash`, `Name` and `Tsize` fields inside
/// the `Links` field's tag and length.
fn link_block_bytes(name_len: u64, cid_len: u64, tsize: u64) -> u64 {
    let inner = 1
        + varint_len(cid_len)
        + cid_len
        + 1
        + varint_len(name_len)
        + name_len
        + 1
        + varint_len(tsize);
    1 + varint_len(inner) + inner
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_size_matches_an_encoded_link() {
        let child = Child {
            cid: "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
                .parse()
                .unwrap(),
            file_size: 0,
            tsize: 300,
        };
        let name = "x".repeat(100);
        let empty = pb_block(
            Vec::new(),
            &Data::new(DataType::Directory),
            cid::Version::V1,
        )
        .len() as u64;
        let one = pb_block(
            vec![link(name.clone(), &child)],
            &Data::new(DataType::Directory),
            cid::Version::V1,
        )
        .len() as u64;
        assert_eq!(empty, 4);
        assert_eq!(one - empty, link_block_bytes(100, 36, 300));
    }
}

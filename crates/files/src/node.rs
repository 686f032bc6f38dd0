//! Blocks: building and addressing dag-pb and raw blocks, and decoding them into UnixFS
//! nodes. The dag-pb framing (`PBNode`/`PBLink`) is `ipld-dagpb`'s; the UnixFS `Data`
//! message inside it is [`crate::unixfs`].

use bytes::Bytes;
use cid::Cid;
use ipld_dagpb::{PbLink, PbNode};
use seedbank_blobstore::cid::multihash_code;
use seedbank_blobstore::{codec, Blob};

use crate::error::{Error, Result};
use crate::unixfs::{Data, DataType};
use crate::Kind;

/// What a parent needs to know about a child it links to.
#[derive(Clone, Debug)]
pub(crate) struct Child {
    pub cid: Cid,
    /// Bytes of file content under the child (0 for directories).
    pub file_size: u64,
    /// The child's cumulative DAG size: its block plus every block under it (`Tsize`).
    pub tsize: u64,
}

/// A raw block (always CIDv1) with its sha2-256 CID. The bytes are hashed once: the
/// blobstore's constructor computes the CID (building it here and checking it with
/// `Blob::with_cid` hashed every block twice, 31% of a large add's CPU).
pub(crate) fn raw_block(bytes: Bytes) -> Blob {
    Blob::new_sha2_256(codec::RAW, bytes)
}

/// A dag-pb block of `links` (sorted by name, stably) and `data`, addressed with `version`.
pub(crate) fn pb_block(links: Vec<PbLink>, data: &Data, version: cid::Version) -> Blob {
    let node = PbNode {
        links,
        data: Some(Bytes::from(data.encode())),
    };
    let bytes = node.into_bytes();
    match version {
        cid::Version::V0 => Blob::new_cid_v0(bytes),
        cid::Version::V1 => Blob::new_sha2_256(codec::DAG_PB, bytes),
    }
}

/// A link as the importers write it: always a name (empty for file chunks) and a `Tsize`.
pub(crate) fn link(name: String, child: &Child) -> PbLink {
    PbLink {
        cid: child.cid,
        name: Some(name),
        size: Some(child.tsize),
    }
}

/// A decoded block.
#[derive(Debug)]
pub(crate) enum Node {
    /// A raw block: file bytes.
    Raw(Bytes),
    /// A dag-pb block with its UnixFS data.
    Pb { links: Vec<PbLink>, data: Data },
}

impl Node {
    /// Decodes `bytes`, the verified block of `cid`.
    pub fn decode(cid: &Cid, bytes: Bytes) -> Result<Node> {
        match cid.codec() {
            codec::RAW => Ok(Node::Raw(bytes)),
            codec::DAG_PB => {
                let node = PbNode::from_bytes(bytes)
                    .map_err(|e| Error::corrupt_caused(cid, "bad dag-pb", e))?;
                let raw = node
                    .data
                    .ok_or_else(|| Error::corrupt(cid, "dag-pb node without UnixFS data"))?;
                let data = Data::decode(&raw).map_err(|e| Error::corrupt(cid, e))?;
                Ok(Node::Pb {
                    links: node.links,
                    data,
                })
            }
            codec => Err(Error::UnsupportedCodec { cid: *cid, codec }),
        }
    }

    /// What the node is.
    pub fn kind(&self) -> Kind {
        match self {
            Node::Raw(_) => Kind::File,
            Node::Pb { data, .. } => match data.kind {
                DataType::File | DataType::Raw => Kind::File,
                DataType::Directory | DataType::HamtShard => Kind::Directory,
                DataType::Symlink => Kind::Symlink,
                DataType::Metadata => Kind::Unknown,
            },
        }
    }

    /// The file size a node states (raw: its length; File: `filesize`, or its data plus
    /// `blocksizes` when absent; symlink: its target's length). `None` for directories.
    pub fn file_size(&self, cid: &Cid) -> Result<Option<u64>> {
        match self {
            Node::Raw(bytes) => Ok(Some(bytes.len() as u64)),
            Node::Pb { data, links } => match data.kind {
                DataType::File | DataType::Raw => file_layout(cid, data, links.len()).map(Some),
                DataType::Symlink => Ok(Some(data.data.as_ref().map_or(0, |d| d.len() as u64))),
                _ => Ok(None),
            },
        }
    }
}

/// The size of a UnixFS file node, checked: `blocksizes` has one entry per link, and
/// `filesize`, when present, equals the inline data plus every blocksize.
pub(crate) fn file_layout(cid: &Cid, data: &Data, links: usize) -> Result<u64> {
    if data.blocksizes.len() != links {
        return Err(Error::corrupt(
            cid,
            format!("{links} links but {} blocksizes", data.blocksizes.len()),
        ));
    }
    let inline = data.data.as_ref().map_or(0, |d| d.len() as u64);
    let total = data
        .blocksizes
        .iter()
        .try_fold(inline, |acc, s| acc.checked_add(*s))
        .ok_or_else(|| Error::corrupt(cid, "blocksizes overflow"))?;
    match data.filesize {
        Some(size) if size != total => Err(Error::corrupt(
            cid,
            format!("filesize {size} but data and blocksizes add up to {total}"),
        )),
        _ => Ok(total),
    }
}

/// The bytes of an identity CID (its digest), or `None` for a real hash.
pub(crate) fn identity_bytes(cid: &Cid) -> Option<Bytes> {
    (cid.hash().code() == multihash_code::IDENTITY)
        .then(|| Bytes::copy_from_slice(cid.hash().digest()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_leaf_and_empty_directory_have_the_well_known_cids() {
        let mut empty = Data::new(DataType::File);
        empty.filesize = Some(0);
        let leaf = pb_block(Vec::new(), &empty, cid::Version::V0);
        assert_eq!(
            leaf.cid().to_string(),
            "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"
        );
        let dir = pb_block(
            Vec::new(),
            &Data::new(DataType::Directory),
            cid::Version::V1,
        );
        assert_eq!(
            dir.cid().to_string(),
            "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354"
        );
        let raw = raw_block(Bytes::new());
        assert_eq!(
            raw.cid().to_string(),
            "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
        );
    }

    #[test]
    fn a_bad_dag_pb_block_keeps_the_decoders_error_as_its_source() {
        let cid = *Blob::new_sha2_256(codec::DAG_PB, &b"x"[..]).cid();
        let err = Node::decode(&cid, Bytes::from_static(&[0xff, 0xff])).unwrap_err();
        assert!(matches!(&err, Error::Corrupt { reason, .. } if &**reason == "bad dag-pb"));
        let source = std::error::Error::source(&err).expect("the decoder's error is kept");
        assert!(
            source.downcast_ref::<ipld_dagpb::Error>().is_some(),
            "{source:?}"
        );
    }

    #[test]
    fn malformed_blocks_are_corrupt_not_panics() {
        let cid = *Blob::new_sha2_256(codec::DAG_PB, &b"x"[..]).cid();
        for bad in [
            &[0xffu8, 0xff][..],
            &[0x12, 0x01, 0x00],
            &[],
            &[0x0a, 0x01, 0x09],
        ] {
            let err = Node::decode(&cid, Bytes::copy_from_slice(bad)).unwrap_err();
            assert!(matches!(err, Error::Corrupt { .. }), "{bad:?}: {err}");
        }
        let other = *Blob::new_sha2_256(codec::DAG_CBOR, &b"x"[..]).cid();
        assert!(matches!(
            Node::decode(&other, Bytes::new()),
            Err(Error::UnsupportedCodec { codec: 0x71, .. })
        ));
    }
}

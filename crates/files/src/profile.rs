//! CID profiles: the construction parameters that make a UnixFS DAG's CIDs match another
//! tool's, bit for bit.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

/// Directory size past which a directory becomes a HAMT (`>`: a directory estimated at
/// exactly this many bytes stays flat), in every profile.
pub const SHARD_THRESHOLD: u64 = 262_144;

/// Children per HAMT node (8 bits of the name's hash per level), in every profile.
pub const HAMT_FANOUT: u64 = 256;

/// A set of UnixFS construction parameters that reproduces another tool's CIDs.
///
/// All profiles hash with sha2-256, chunk at a fixed size, lay files out as balanced trees,
/// keep empty directories, leave out mode and mtime, and preserve symlinks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Profile {
    /// IPIP-499 `unixfs-v1-2025` (the default): CIDv1, raw leaves, 1 MiB chunks, 1,024 links
    /// per node, HAMT past 256 KiB estimated as the whole directory block (`block-bytes`).
    #[default]
    UnixfsV1_2025,
    /// IPIP-499 `unixfs-v0-2015` (Kubo's historic default): CIDv0, dag-pb leaves (UnixFS
    /// `File` nodes), 256 KiB chunks, 174 links, HAMT past 256 KiB of link names and CIDs
    /// (`links-bytes`).
    UnixfsV0_2015,
    /// What `ipfs add --cid-version=1` produces (and Seed's daemon stores): CIDv1, raw
    /// leaves, 256 KiB chunks, 174 links, `links-bytes` HAMT threshold.
    KuboCidV1,
}

/// How a profile estimates a flat directory's size against [`SHARD_THRESHOLD`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ShardEstimate {
    /// The UTF-8 length of each link's name plus its CID's byte length.
    LinksBytes,
    /// The exact size of the encoded directory block.
    BlockBytes,
}

impl Profile {
    /// Every profile, the default first.
    pub const ALL: [Profile; 3] = [
        Profile::UnixfsV1_2025,
        Profile::UnixfsV0_2015,
        Profile::KuboCidV1,
    ];

    /// The profile's name, as the CLI and IPIP-499 spell it.
    pub fn name(self) -> &'static str {
        match self {
            Profile::UnixfsV1_2025 => "unixfs-v1-2025",
            Profile::UnixfsV0_2015 => "unixfs-v0-2015",
            Profile::KuboCidV1 => "kubo-cidv1",
        }
    }

    /// Bytes of file content per leaf.
    pub fn chunk_size(self) -> usize {
        match self {
            Profile::UnixfsV1_2025 => MIB,
            Profile::UnixfsV0_2015 | Profile::KuboCidV1 => 256 * KIB,
        }
    }

    /// Most links per file node (the width of the balanced tree).
    pub fn max_links(self) -> usize {
        match self {
            Profile::UnixfsV1_2025 => 1024,
            Profile::UnixfsV0_2015 | Profile::KuboCidV1 => 174,
        }
    }

    /// True when leaves are raw blocks (codec `raw`, always CIDv1); false when they are
    /// dag-pb UnixFS `File` nodes.
    pub fn raw_leaves(self) -> bool {
        !matches!(self, Profile::UnixfsV0_2015)
    }

    /// The CID version of dag-pb nodes.
    pub fn cid_version(self) -> cid::Version {
        match self {
            Profile::UnixfsV0_2015 => cid::Version::V0,
            Profile::UnixfsV1_2025 | Profile::KuboCidV1 => cid::Version::V1,
        }
    }

    pub(crate) fn shard_estimate(self) -> ShardEstimate {
        match self {
            Profile::UnixfsV1_2025 => ShardEstimate::BlockBytes,
            Profile::UnixfsV0_2015 | Profile::KuboCidV1 => ShardEstimate::LinksBytes,
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Profile {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Profile::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| Error::UnknownProfile { name: s.into() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_to_their_profile() {
        for p in Profile::ALL {
            assert_eq!(p.name().parse::<Profile>().unwrap(), p);
        }
        assert!(matches!(
            "kubo".parse::<Profile>(),
            Err(Error::UnknownProfile { .. })
        ));
        assert_eq!(Profile::default(), Profile::UnixfsV1_2025);
    }
}

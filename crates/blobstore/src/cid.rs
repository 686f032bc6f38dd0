//! Content addressing: codecs, supported multihashes, hashing and verification.
//!
//! New blobs get a CIDv1 with a BLAKE3-256 multihash. CIDs supplied by callers (from peers,
//! CAR files) may use sha2-256, blake2b-256, blake3 or identity, and may be CIDv0.

use bytes::Bytes;
use cid::Cid;
use multihash::Multihash;

use crate::error::{Error, Result};

/// Multicodec codes for the content types seedbank commonly stores.
pub mod codec {
    /// Raw bytes (`0x55`).
    pub const RAW: u64 = 0x55;
    /// DAG-PB, the UnixFS protobuf format (`0x70`).
    pub const DAG_PB: u64 = 0x70;
    /// DAG-CBOR (`0x71`).
    pub const DAG_CBOR: u64 = 0x71;
    /// DAG-JSON (`0x0129`).
    pub const DAG_JSON: u64 = 0x0129;
}

/// Multihash codes the store can verify.
pub mod multihash_code {
    /// Identity: the digest is the data itself.
    pub const IDENTITY: u64 = 0x00;
    /// SHA2-256.
    pub const SHA2_256: u64 = 0x12;
    /// BLAKE2b-256.
    pub const BLAKE2B_256: u64 = 0xb220;
    /// BLAKE3 with a 32-byte output.
    pub const BLAKE3: u64 = 0x1e;
}

/// Largest identity multihash digest (the `cid` crate's multihash capacity).
pub const MAX_IDENTITY_LEN: usize = 64;

/// A blob: bytes and the CID they hash to. Constructing one always hashes or verifies, so a
/// `Blob` in hand is known to be consistent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blob {
    cid: Cid,
    data: Bytes,
}

impl Blob {
    /// Hashes `data` with BLAKE3 and addresses it as a CIDv1 with `codec`.
    ///
    /// Runs on the caller's thread: hashing never happens on the writer lane.
    pub fn new(codec: u64, data: impl Into<Bytes>) -> Self {
        let data = data.into();
        let digest = blake3::hash(&data);
        let mh = Multihash::wrap(multihash_code::BLAKE3, digest.as_bytes())
            .expect("a 32-byte digest fits the 64-byte multihash");
        Blob {
            cid: Cid::new_v1(codec, mh),
            data,
        }
    }

    /// Hashes `data` with SHA2-256 and addresses it as a CIDv1 with `codec`: the CIDs UnixFS
    /// importers and most IPFS tools compute (where [`Blob::new`] uses BLAKE3).
    ///
    /// One hash, like [`Blob::new`]: building the CID first and passing it to
    /// [`Blob::with_cid`] would hash the same bytes a second time to check it.
    pub fn new_sha2_256(codec: u64, data: impl Into<Bytes>) -> Self {
        let data = data.into();
        Blob {
            cid: Cid::new_v1(codec, sha2_256_multihash(&data)),
            data,
        }
    }

    /// Hashes `data` with SHA2-256 and addresses it as a CIDv0: a dag-pb node, the only
    /// codec a CIDv0 names (Kubo's default and IPIP-499's `unixfs-v0-2015`). One hash, as
    /// [`Blob::new_sha2_256`].
    pub fn new_cid_v0(data: impl Into<Bytes>) -> Self {
        let data = data.into();
        let cid = Cid::new_v0(sha2_256_multihash(&data))
            .expect("a 32-byte sha2-256 multihash makes a CIDv0");
        Blob { cid, data }
    }

    /// Pairs a caller-supplied CID with bytes after verifying the bytes hash to it.
    ///
    /// # Errors
    /// [`Error::HashMismatch`] if the bytes do not match, [`Error::UnsupportedHash`] for a
    /// multihash the store cannot verify, [`Error::BadDigestLength`] for a malformed digest.
    pub fn with_cid(cid: Cid, data: impl Into<Bytes>) -> Result<Self> {
        let data = data.into();
        verify(&cid, &data)?;
        Ok(Blob { cid, data })
    }

    /// The blob's CID.
    pub fn cid(&self) -> &Cid {
        &self.cid
    }

    /// The blob's bytes.
    pub fn data(&self) -> &Bytes {
        &self.data
    }

    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True for the empty blob (a valid blob).
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Splits the blob into its CID and bytes.
    pub fn into_parts(self) -> (Cid, Bytes) {
        (self.cid, self.data)
    }
}

/// The SHA2-256 multihash of `data`.
fn sha2_256_multihash(data: &[u8]) -> Multihash<64> {
    use sha2::Digest;
    Multihash::wrap(multihash_code::SHA2_256, &sha2::Sha256::digest(data))
        .expect("a 32-byte digest fits the 64-byte multihash")
}

/// Checks that `data` hashes to the digest in `cid`.
///
/// # Errors
/// See [`Blob::with_cid`].
pub fn verify(cid: &Cid, data: &[u8]) -> Result<()> {
    let mh = cid.hash();
    let expected = digest_len(mh.code())?;
    if let Some(expected) = expected {
        if mh.digest().len() != expected {
            return Err(Error::BadDigestLength {
                code: mh.code(),
                len: mh.digest().len(),
                expected,
            });
        }
    }
    let matches = match mh.code() {
        multihash_code::IDENTITY => mh.digest() == data,
        multihash_code::BLAKE3 => blake3::hash(data).as_bytes() == mh.digest(),
        multihash_code::SHA2_256 => {
            use sha2::Digest;
            sha2::Sha256::digest(data).as_slice() == mh.digest()
        }
        multihash_code::BLAKE2B_256 => {
            use blake2::Digest;
            blake2::Blake2b::<blake2::digest::consts::U32>::digest(data).as_slice() == mh.digest()
        }
        code => return Err(Error::UnsupportedHash { code }),
    };
    if matches {
        Ok(())
    } else {
        Err(Error::HashMismatch { cid: *cid })
    }
}

/// The digest length of a supported multihash (`None` for identity, which is any length).
fn digest_len(code: u64) -> Result<Option<usize>> {
    match code {
        multihash_code::IDENTITY => Ok(None),
        multihash_code::BLAKE3 | multihash_code::SHA2_256 | multihash_code::BLAKE2B_256 => {
            Ok(Some(32))
        }
        code => Err(Error::UnsupportedHash { code }),
    }
}

/// Checks that a CID's multihash is one the store supports, without bytes to verify.
///
/// # Errors
/// [`Error::UnsupportedHash`] or [`Error::BadDigestLength`].
pub fn check_supported(cid: &Cid) -> Result<()> {
    let mh = cid.hash();
    match digest_len(mh.code())? {
        Some(expected) if mh.digest().len() != expected => Err(Error::BadDigestLength {
            code: mh.code(),
            len: mh.digest().len(),
            expected,
        }),
        _ => Ok(()),
    }
}

/// The multihash bytes (code, length, digest) that key a blob's row. Crates that keep rows
/// beside the store's (the index) key them the same way.
pub fn multihash_key(cid: &Cid) -> Vec<u8> {
    cid.hash().to_bytes()
}

/// Rebuilds a CID from stored parts (the inverse of [`multihash_key`] plus codec and
/// version); `version` 0 is CIDv0 (dag-pb + sha2-256 only). `None` if the parts are not a
/// valid CID.
pub fn cid_from_parts(version: i64, codec: u64, mh_bytes: &[u8]) -> Option<Cid> {
    let mh = Multihash::from_bytes(mh_bytes).ok()?;
    if version == 0 {
        Cid::new_v0(mh).ok()
    } else {
        Some(Cid::new_v1(codec, mh))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_blob_is_cidv1_blake3_and_verifies() {
        let blob = Blob::new(codec::RAW, &b"hello"[..]);
        assert_eq!(blob.cid().version(), cid::Version::V1);
        assert_eq!(blob.cid().hash().code(), multihash_code::BLAKE3);
        assert!(Blob::with_cid(*blob.cid(), &b"hello"[..]).is_ok());
    }

    #[test]
    fn sha2_256_blobs_have_the_cids_ipfs_tools_compute() {
        // `ipfs add --cid-version=1 --raw-leaves` of "hello world" (IPIP-499's vector).
        let raw = Blob::new_sha2_256(codec::RAW, &b"hello world"[..]);
        assert_eq!(
            raw.cid().to_string(),
            "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"
        );
        // The empty UnixFS directory, CIDv0.
        let dir = Blob::new_cid_v0(&[0x0a, 0x02, 0x08, 0x01][..]);
        assert_eq!(
            dir.cid().to_string(),
            "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"
        );
        for blob in [raw, dir] {
            assert!(Blob::with_cid(*blob.cid(), blob.data().clone()).is_ok());
        }
    }

    #[test]
    fn wrong_bytes_are_a_hash_mismatch() {
        let blob = Blob::new(codec::RAW, &b"hello"[..]);
        let err = Blob::with_cid(*blob.cid(), &b"hellO"[..]).unwrap_err();
        assert!(matches!(err, Error::HashMismatch { .. }));
    }

    #[test]
    fn unsupported_multihash_is_rejected() {
        let mh = Multihash::wrap(0x13, &[0u8; 64]).unwrap(); // sha2-512
        let cid = Cid::new_v1(codec::RAW, mh);
        assert!(matches!(
            Blob::with_cid(cid, &b"x"[..]),
            Err(Error::UnsupportedHash { code: 0x13 })
        ));
    }

    #[test]
    fn short_digest_is_rejected() {
        let mh = Multihash::wrap(multihash_code::SHA2_256, &[0u8; 8]).unwrap();
        let cid = Cid::new_v1(codec::RAW, mh);
        assert!(matches!(
            Blob::with_cid(cid, &b"x"[..]),
            Err(Error::BadDigestLength { .. })
        ));
    }
}

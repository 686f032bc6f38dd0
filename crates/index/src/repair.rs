//! Repair: blobs whose bytes no longer hash to their CID are removed, with their index rows,
//! so they read as missing (`has` is false, `missing(root)` lists them, discovery never
//! advertises them) and a correct re-put or a discovery refetch stores them again.

/// What [`Index::repair`](crate::Index::repair) found and removed.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct RepairReport {
    /// Distinct blobs (multihashes) re-hashed.
    pub blobs_checked: u64,
    /// CIDs removed because their bytes did not hash to them, as strings.
    pub removed: Vec<String>,
    /// Bytes removed.
    pub bytes_freed: u64,
}

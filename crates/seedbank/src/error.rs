//! The facade's error: one enum over the layers, each variant keeping its cause.

/// An error from a [`Node`](crate::Node) call. Each variant wraps the layer's own error as
/// its [`source`](std::error::Error::source), so nothing is flattened into a string.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The blob store (lane, pools, schema, a closed store).
    #[error(transparent)]
    Blobstore(#[from] seedbank_blobstore::Error),
    /// The index (links, pins, collection, CAR).
    #[error(transparent)]
    Index(#[from] seedbank_index::Error),
    /// Discovery (a run, its peers).
    #[error(transparent)]
    Discovery(#[from] seedbank_discovery::Error),
    /// Files (UnixFS add, cat, ls).
    #[error(transparent)]
    Files(#[from] seedbank_files::Error),
    /// The network (binding, serving, a peer).
    #[cfg(feature = "net")]
    #[error(transparent)]
    Net(#[from] seedbank_net::Error),
    /// A file of the node's own (its key file) could not be read or written.
    #[error("{what} {}", path.display())]
    File {
        /// What was being done ("read the node key", ...).
        what: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// The facade's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

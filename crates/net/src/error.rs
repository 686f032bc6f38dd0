//! Errors of node set-up and shutdown (request failures are discovery's errors).

/// Errors of [`Node`](crate::Node) and endpoint set-up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The endpoint could not be bound (address in use, invalid, no permission).
    #[error("cannot bind the endpoint: {0}")]
    Bind(String),
    /// A configuration value is out of range.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The router failed while shutting down.
    #[error("shutdown failed: {0}")]
    Shutdown(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

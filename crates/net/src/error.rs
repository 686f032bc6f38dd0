//! Errors of node set-up and shutdown (request failures are discovery's errors).

/// Errors of [`Node`](crate::Node) and endpoint set-up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The endpoint could not be bound (address in use, invalid, no permission); iroh's
    /// error is the source.
    #[error("cannot bind the endpoint")]
    Bind(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A configuration value is out of range.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The router failed while shutting down; its error is the source.
    #[error("shutdown failed")]
    Shutdown(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

//! The index's two doors to the store: reads on a pool and writes on the lane, with the
//! index's own errors carried through the store's [`AppError`](seedbank_blobstore::AppError)
//! and back. Everything below [`Index`](crate::Index) works through these, so no module of
//! the work needs the handle.

use seedbank_blobstore::lifecycle::Deleter;
use seedbank_blobstore::rusqlite::Connection;
use seedbank_blobstore::{PoolKind, PutOptions, Store};

use crate::error::{from_store, Error, Result};

/// Runs `f` on a read pool (a library scan: never ended by the reader transaction limit).
pub(crate) async fn read<T, F>(store: &Store, pool: PoolKind, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T> + Send + 'static,
{
    store
        .scan(pool, move |conn| f(conn).map_err(Error::boxed))
        .await
        .map_err(from_store)
}

/// Runs `f` on the lane in its own savepoint.
pub(crate) async fn write<T, F>(store: &Store, opts: PutOptions, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T> + Send + 'static,
{
    store
        .write(opts, move |conn| f(conn).map_err(Error::boxed))
        .await
        .map_err(from_store)
}

/// Runs `f` on the lane in its own savepoint with the store's [`Deleter`] (freed space is
/// counted once the write commits).
pub(crate) async fn write_deleting<T, F>(store: &Store, opts: PutOptions, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(&Deleter<'_>) -> Result<T> + Send + 'static,
{
    store
        .write_deleting(opts, move |d| f(d).map_err(Error::boxed))
        .await
        .map_err(from_store)
}

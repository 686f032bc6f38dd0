//! The application hook: derive scopes and attributes from a blob at staging time.

use seedbank_blobstore::Blob;

use crate::extract::Extracted;

/// What an [`Indexer`] adds to a blob: extra scope memberships and attributes, written in
/// the same transaction as the blob.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Annotations {
    /// Named scopes the blob joins (e.g. its document's resource key `hm://doc/123`).
    pub scopes: Vec<String>,
    /// Key/value pairs stored with the blob; a later value for the same key replaces the
    /// earlier one. Query them with [`Index::attributes`](crate::Index::attributes) and
    /// [`Index::find_by_attribute`](crate::Index::find_by_attribute).
    pub attributes: Vec<(String, String)>,
}

impl Annotations {
    /// True when there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.scopes.is_empty() && self.attributes.is_empty()
    }
}

/// An application hook run on the caller's task for every blob staged through the index,
/// after link extraction and before admission to the writer lane.
///
/// It must be quick and pure: it runs once per staging (a blob put twice is annotated
/// twice) and never on the lane, so it may decode the blob, but it must not do I/O. It
/// cannot fail; a blob it does not understand simply gets no annotations.
///
/// ```
/// use seedbank_index::{Annotations, Extracted, Indexer};
/// use seedbank_blobstore::Blob;
///
/// /// Puts every blob with links into the scope `dags`.
/// struct DagScope;
///
/// impl Indexer for DagScope {
///     fn annotate(&self, _blob: &Blob, extracted: &Extracted) -> Annotations {
///         if extracted.links.is_empty() {
///             return Annotations::default();
///         }
///         Annotations { scopes: vec!["dags".into()], attributes: Vec::new() }
///     }
/// }
/// ```
pub trait Indexer: Send + Sync + 'static {
    /// Returns the scopes and attributes to add for `blob`, whose links are `extracted`.
    fn annotate(&self, blob: &Blob, extracted: &Extracted) -> Annotations;
}

//! CAR (Content Addressable aRchive) import and export.
//!
//! [`import`] streams a CARv1 or CARv2 into the store through the lane; [`export_dag`] and
//! [`export_scope`] write CARv1. [`CarReader`] and [`CarWriter`] are the streaming codecs
//! beneath them.
//!
//! No published crate fit: `iroh-car` reads CARv1 only, reports no byte offsets and takes a
//! varint cut short as a clean end of file. This reader is small, one-pass, and exercised by
//! the go-car fixtures and a mutation test.

mod export;
mod import;
mod reader;
mod writer;

pub use export::{export_dag, export_scope, ExportReport};
pub use import::{import, ImportOptions, ImportReport};
pub use reader::{CarBlock, CarReader, MAX_CID_BYTES, MAX_HEADER_BYTES};
pub use writer::CarWriter;

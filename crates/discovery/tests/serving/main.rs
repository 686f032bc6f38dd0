//! The serving side: the haves cache (built once per snapshot, shared), the responder's
//! answers and bounds, what hostile requests cost it, and reconciliation's bytes on the
//! wire.

#[path = "../common/mod.rs"]
mod common;

mod haves;
mod hostile;
mod reconcile_bytes;
mod responder;

//! The `seedbank` command line, run as a user would (the built binary, real processes):
//! blob and DAG commands, files, lifecycle, read-only use beside an owner, `--json`
//! outputs, serving and syncing (peers, gateways, resume after a kill), the gateway, and
//! write commands beside a running node.

#[path = "../common/mod.rs"]
mod common;

mod blobs;
mod control;
mod files;
mod gateway;
mod json;
mod lifecycle;
mod net;
mod read_only;
mod serve_options;
mod sync_gateway;
mod sync_resume;

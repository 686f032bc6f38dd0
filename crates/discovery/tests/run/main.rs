//! A discovery run: what it fetches (DAGs, named scopes, partial and absent content), from
//! how many peers at once, within which limits, and what it does with faulty peers,
//! blocks already stored here and concurrent callers of the same scope.

#[path = "../common/mod.rs"]
mod common;

mod content;
mod fanout;
mod faults;
mod ingest;
mod limits;
mod named_scopes;
mod not_found;
mod partial;
mod run_limits;
mod single_flight;
mod stored_here;

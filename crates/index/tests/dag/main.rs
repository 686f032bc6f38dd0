//! DAG queries and link extraction: reachable, missing, links, backlinks and walks against
//! reference traversals; link depths; what a delete plan removes; named scopes.

#[path = "../common/mod.rs"]
mod common;

mod dag;
mod delete_plan;
mod depths;
mod extract;
mod scopes;

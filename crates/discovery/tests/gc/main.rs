//! Collection during discovery: blocks a run fetches are never collected before the run
//! pins or stores them, for named scopes and for DAGs.

#[path = "../common/mod.rs"]
mod common;

mod gc_dag_discovery;
mod gc_discovery;

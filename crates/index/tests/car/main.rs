//! CAR files: import (CARv1 and CARv2, partial DAGs, bad input refused whole) and export
//! (byte-identical to the reference where the DAG is whole).

#[path = "../common/mod.rs"]
mod common;

mod car_export;
mod car_import;

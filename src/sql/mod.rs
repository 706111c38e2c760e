//! The SQL front end: splits a query string into statements and parses each into an
//! [`EddyStatement`]. Our own statements (CREATE STREAM, SHOW STREAMS, EMIT CHANGES, ...) are
//! parsed with sqlparser's `Parser` API; every query body goes to sqlparser's SELECT parser,
//! so the SELECT dialect is exactly what DataFusion plans.

pub mod hidden;
pub mod kafka;
pub mod naming;
pub mod parser;
pub mod pg_compat;
pub mod pg_literals;
pub mod split;
pub mod types;
pub mod windows;

pub use parser::{parse_statement, EddyStatement, Emit, ShowWhat, ViewKind};
pub use split::split_statements;

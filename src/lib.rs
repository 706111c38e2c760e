//! eddy: a streaming SQL database. Streams and tables are fed by INSERT or Kafka topics;
//! continuous queries are maintained incrementally as materialized views; everything is
//! served over the Postgres wire protocol.
//!
//! ```text
//!  psql · drivers · BI tools                       INSERT / UPDATE / DELETE
//!         │ Postgres wire                                  │
//!         ▼                                                ▼
//!   server ── SQL text ──► sql (parse) ──► plan ──► dataflow ──► view (arrangements)
//!         ▲                              (DataFusion    │ change batches (rows + weights)
//!         │ rows                          LogicalPlan)  ▼
//!   database: snapshots for SELECT ◄──────────── one epoch per write statement
//!         │
//!         └──────── state: one ordered, fsynced log of DDL and accepted changes
//! ```
//!
//! Each arrow goes one way; each module says which box it is.

pub mod catalog;
pub mod connectors;
pub mod core;
pub mod database;
pub mod dataflow;
pub mod error;
pub mod functions;
pub mod metrics;
pub mod plan;
pub mod server;
pub mod sql;
pub mod state;
pub mod view;

pub use database::{Config, Database, Output, Session};
pub use error::{EddyError, Result};

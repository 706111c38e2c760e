//! Connectors: where rows come from and go to outside the Postgres wire.

pub mod kafka;

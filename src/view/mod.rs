//! Where maintained results live and are read: arrangements (multisets of rows, optionally
//! keyed) that `SELECT` snapshots.

pub mod arrangement;
pub mod published;
pub mod stream_log;
pub mod subscription;

pub use arrangement::{Arrangement, Storage};

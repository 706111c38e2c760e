//! The engine's vocabulary, depending on nothing else of eddy but its error type: the
//! change batch (a Z-set delta in Arrow) and event time. Every other module speaks these.

pub mod batch;
pub mod time;

pub use batch::ChangeBatch;
pub use time::Micros;

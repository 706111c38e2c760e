//! The incremental dataflow: change batches, the operator trait, the operators and the
//! runtime that pushes one epoch of deltas through a view's operators.

pub mod graph;
pub mod operator;
pub mod ops;

pub use crate::core::ChangeBatch;
pub use graph::{Dataflow, Input, Node};
pub use operator::{Message, Operator};

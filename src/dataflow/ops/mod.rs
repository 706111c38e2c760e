//! The operators, one per file.

pub mod aggregate;
pub mod filter;
pub mod float_sum;
pub mod general_agg;
pub mod interval_join;
pub mod join;
pub mod project;
pub mod semi_join;
pub mod session;
pub mod top_n;
pub mod union;
pub mod values;

//! Union (UNION ALL): merges the deltas of all inputs.
//!
//! Linear, stateless: Δout = Σ Δin_i. Inputs have the same column types; the output
//! carries the union's column names.

use datafusion::arrow::datatypes::SchemaRef;

use crate::core::batch::ChangeBatch;
use crate::dataflow::operator::{Ctx, Operator};
use crate::error::Result;

pub struct UnionOp {
    schema: SchemaRef,
    inputs: usize,
}

impl UnionOp {
    pub fn new(schema: SchemaRef, inputs: usize) -> Self {
        UnionOp { schema, inputs }
    }
}

impl Operator for UnionOp {
    fn process(
        &mut self,
        _input: usize,
        batch: ChangeBatch,
        _ctx: &mut Ctx,
    ) -> Result<ChangeBatch> {
        batch.with_schema(self.schema.clone())
    }

    fn describe(&self) -> String {
        format!("Union All: {} inputs", self.inputs)
    }
}

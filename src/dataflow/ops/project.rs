//! Project: computes the output columns of each delta from scalar expressions.
//!
//! Linear, stateless: Δout = π(Δin), weights carried through unchanged. Expressions are
//! DataFusion `PhysicalExpr`s, so every scalar function DataFusion has works here.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::physical_expr::PhysicalExpr;

use crate::core::batch::ChangeBatch;
use crate::dataflow::operator::{Ctx, Operator};
use crate::error::Result;

pub struct ProjectOp {
    exprs: Vec<Arc<dyn PhysicalExpr>>,
    schema: SchemaRef,
}

impl ProjectOp {
    pub fn new(exprs: Vec<Arc<dyn PhysicalExpr>>, schema: SchemaRef) -> Self {
        ProjectOp { exprs, schema }
    }
}

impl Operator for ProjectOp {
    fn process(
        &mut self,
        _input: usize,
        batch: ChangeBatch,
        _ctx: &mut Ctx,
    ) -> Result<ChangeBatch> {
        let n = batch.len();
        let columns = self
            .exprs
            .iter()
            .map(|e| {
                let array = e.evaluate(&batch.data)?.into_array(n)?;
                Ok(array)
            })
            .collect::<Result<Vec<_>>>()?;
        let data = RecordBatch::try_new_with_options(
            self.schema.clone(),
            columns,
            &datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(n)),
        )?;
        Ok(ChangeBatch::new(data, batch.weights))
    }

    fn describe(&self) -> String {
        let exprs: Vec<String> = self.exprs.iter().map(|e| e.to_string()).collect();
        format!("Project: {}", exprs.join(", "))
    }
}

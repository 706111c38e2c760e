//! Filter: keeps the rows of each delta where a predicate is true.
//!
//! Linear, stateless: Δout = σ(Δin). A retraction passes the filter exactly when its
//! insertion did, because the predicate sees the same row.

use std::sync::Arc;

use datafusion::arrow::array::{Array, BooleanArray};
use datafusion::arrow::compute::prep_null_mask_filter;
use datafusion::physical_expr::PhysicalExpr;

use crate::core::batch::ChangeBatch;
use crate::dataflow::operator::{Ctx, Operator};
use crate::error::{EddyError, Result};

pub struct FilterOp {
    predicate: Arc<dyn PhysicalExpr>,
}

impl FilterOp {
    pub fn new(predicate: Arc<dyn PhysicalExpr>) -> Self {
        FilterOp { predicate }
    }
}

impl Operator for FilterOp {
    fn process(
        &mut self,
        _input: usize,
        batch: ChangeBatch,
        _ctx: &mut Ctx,
    ) -> Result<ChangeBatch> {
        if batch.is_empty() {
            return Ok(batch);
        }
        let mask = self
            .predicate
            .evaluate(&batch.data)?
            .into_array(batch.len())?;
        let mask = mask
            .as_any()
            .downcast_ref::<BooleanArray>()
            .ok_or_else(|| EddyError::internal("filter predicate is not boolean"))?;
        // NULL counts as false, as in SQL WHERE.
        let mask = if mask.null_count() > 0 {
            prep_null_mask_filter(mask)
        } else {
            mask.clone()
        };
        batch.filter(&mask)
    }

    fn describe(&self) -> String {
        format!("Filter: {}", self.predicate)
    }
}

//! Values: a constant relation (`VALUES (…), (…)`, or the one row of a `SELECT` without
//! `FROM`) as a dataflow source.
//!
//! It has no inputs; the runtime calls it once per epoch with an empty batch. Rule: the
//! first committed epoch outputs the rows (Δout = rows), every later one nothing (Δout = 0).
//! State: whether the rows were emitted, in a state table, so an aborted first epoch emits
//! them again and a restored checkpoint does not.

use datafusion::arrow::array::{Int64Array, RecordBatch, RecordBatchOptions};
use datafusion::arrow::datatypes::SchemaRef;

use crate::core::batch::ChangeBatch;
use crate::dataflow::operator::{Ctx, Operator};
use crate::error::Result;
use crate::state::table::{StateMap, StateTable};

pub struct ValuesOp {
    rows: RecordBatch,
    emitted: StateMap<i64>,
}

impl ValuesOp {
    /// `rows` may have no columns (a `SELECT` without `FROM` reads one empty row).
    pub fn new(rows: RecordBatch) -> Self {
        ValuesOp {
            rows,
            emitted: StateMap::new("emitted"),
        }
    }

    /// `n` rows of no columns.
    pub fn empty_rows(schema: SchemaRef, n: usize) -> Result<Self> {
        let rows = RecordBatch::try_new_with_options(
            schema,
            vec![],
            &RecordBatchOptions::new().with_row_count(Some(n)),
        )?;
        Ok(Self::new(rows))
    }
}

impl Operator for ValuesOp {
    fn process(
        &mut self,
        _input: usize,
        _batch: ChangeBatch,
        _ctx: &mut Ctx,
    ) -> Result<ChangeBatch> {
        if self.emitted.contains_key(b"") {
            return Ok(ChangeBatch::empty(self.rows.schema()));
        }
        self.emitted.insert(Vec::new(), 1);
        let weights = Int64Array::from(vec![1; self.rows.num_rows()]);
        Ok(ChangeBatch::new(self.rows.clone(), weights))
    }

    fn describe(&self) -> String {
        format!("Values: {} rows", self.rows.num_rows())
    }

    fn state_tables(&mut self) -> Vec<&mut dyn StateTable> {
        vec![&mut self.emitted]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::batch::tests_support::render;
    use datafusion::arrow::array::Int64Array as Ints;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    fn op() -> ValuesOp {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, true)]));
        let rows = RecordBatch::try_new(schema, vec![Arc::new(Ints::from(vec![1, 2]))]).unwrap();
        ValuesOp::new(rows)
    }

    fn epoch(v: &mut ValuesOp, commit: bool) -> Vec<String> {
        let nothing = ChangeBatch::empty(v.rows.schema());
        let out = v.process(0, nothing, &mut Ctx::default()).unwrap();
        for t in v.state_tables() {
            if commit {
                t.commit()
            } else {
                t.abort()
            }
        }
        render(&out)
    }

    #[test]
    fn rows_come_once_even_after_an_aborted_first_epoch_and_a_restore() {
        let mut v = op();
        assert_eq!(epoch(&mut v, false), vec!["+1 1", "+1 2"]);
        assert_eq!(epoch(&mut v, true), vec!["+1 1", "+1 2"], "abort undoes");
        assert!(epoch(&mut v, true).is_empty());
        let saved = v.state_tables()[0].export().unwrap();
        let mut restored = op();
        restored.state_tables()[0].import(saved).unwrap();
        assert!(
            epoch(&mut restored, true).is_empty(),
            "a checkpoint remembers"
        );
    }
}

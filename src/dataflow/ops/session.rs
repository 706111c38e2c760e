//! Session window assignment: gives each row of an append-only stream the bounds of its
//! session — the rows of one key whose event times are less than `gap` apart —
//! `[first time, last time + gap)`.
//!
//! Takes insert-only deltas; keeps, per key, the open sessions with their rows. A new row
//! that bridges or extends sessions merges them: Δout = −(rows of each merged session, old
//! bounds) + (those rows and the new one, new bounds); otherwise +row with its own session.
//! Downstream, an ordinary aggregate grouped by the bounds maintains the per-session
//! results under these retractions. A session closes when the watermark passes its end +
//! grace: its rows are freed. A row whose own window [t, t + gap) ends at or before
//! watermark − grace is late: dropped and counted.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch, TimestampMicrosecondArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::row::{Row, RowConverter};
use datafusion::physical_expr::PhysicalExpr;

use crate::core::batch::{row_converter, row_converter_for, ChangeBatch};
use crate::dataflow::operator::{Ctx, Operator};
use crate::error::{EddyError, Result};
use crate::state::encoding::{Reader, StateCodec, Writer};
use crate::state::table::{OrderedState, StateTable};

#[derive(Clone)]
struct Session {
    last: i64,
    rows: Vec<Vec<u8>>,
}

impl StateCodec for Session {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        w.i64(self.last);
        self.rows.encode(w)
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Session {
            last: r.i64()?,
            rows: Vec::<Vec<u8>>::decode(r)?,
        })
    }
}

pub struct SessionAssignOp {
    keys: Vec<Arc<dyn PhysicalExpr>>,
    time: Arc<dyn PhysicalExpr>,
    gap: i64,
    grace: i64,
    input_schema: SchemaRef,
    output_schema: SchemaRef,
    row_converter: RowConverter,
    key_converter: RowConverter,
    /// (key, session start) → session.
    sessions: OrderedState<(Vec<u8>, i64), Session>,
}

impl SessionAssignOp {
    pub fn try_new(
        keys: Vec<Arc<dyn PhysicalExpr>>,
        time: Arc<dyn PhysicalExpr>,
        gap: i64,
        grace: i64,
        input_schema: SchemaRef,
        output_schema: SchemaRef,
    ) -> Result<Self> {
        let key_types = keys
            .iter()
            .map(|k| k.data_type(&input_schema).map_err(EddyError::from))
            .collect::<Result<Vec<_>>>()?;
        Ok(SessionAssignOp {
            row_converter: row_converter(&input_schema)?,
            key_converter: row_converter_for(&key_types)?,
            keys,
            time,
            gap,
            grace,
            input_schema,
            output_schema,
            sessions: OrderedState::new("sessions"),
        })
    }

    fn output(&self, rows: Vec<(i64, Row<'_>, i64, i64)>) -> Result<ChangeBatch> {
        if rows.is_empty() {
            return Ok(ChangeBatch::empty(self.output_schema.clone()));
        }
        let mut columns = self.row_converter.convert_rows(rows.iter().map(|r| r.1))?;
        let n = self.output_schema.fields().len();
        for (i, pick) in [(n - 2, 2usize), (n - 1, 3)] {
            let micros: TimestampMicrosecondArray = rows
                .iter()
                .map(|r| Some(if pick == 2 { r.2 } else { r.3 }))
                .collect();
            let target = self.output_schema.field(i).data_type();
            columns.push(cast(&(Arc::new(micros) as ArrayRef), target)?);
        }
        let weights = Int64Array::from(rows.iter().map(|r| r.0).collect::<Vec<_>>());
        Ok(ChangeBatch::new(
            RecordBatch::try_new(self.output_schema.clone(), columns)?,
            weights,
        ))
    }
}

impl Operator for SessionAssignOp {
    fn process(&mut self, _input: usize, batch: ChangeBatch, ctx: &mut Ctx) -> Result<ChangeBatch> {
        if !batch.is_insert_only() {
            return Err(EddyError::unsupported(
                "SESSION windows over rows that are updated or deleted",
            ));
        }
        let n = batch.len();
        let data = RecordBatch::try_new(self.input_schema.clone(), batch.data.columns().to_vec())?;
        let times = crate::core::time::event_times(&self.time.evaluate(&data)?.into_array(n)?)?;
        let keys: Vec<ArrayRef> = self
            .keys
            .iter()
            .map(|k| k.evaluate(&data).and_then(|v| v.into_array(n)))
            .collect::<datafusion::error::Result<_>>()?;
        let key_rows = if keys.is_empty() {
            None
        } else {
            Some(self.key_converter.convert_columns(&keys)?)
        };
        let rows = self.row_converter.convert_columns(data.columns())?;
        // (weight, row bytes, start, end) of the output, as owned bytes until the end.
        let mut out: Vec<(i64, Vec<u8>, i64, i64)> = Vec::new();
        for i in 0..n {
            let Some(t) = times[i] else { continue };
            if matches!(ctx.watermark(), Some(w) if t.saturating_add(self.gap).saturating_add(self.grace) <= w)
            {
                ctx.count_late(batch.weights.value(i).unsigned_abs());
                continue;
            }
            let key = key_rows
                .as_ref()
                .map(|k| k.row(i).data().to_vec())
                .unwrap_or_default();
            // Sessions overlapping [t, t + gap): start < t + gap and last + gap > t.
            let merged: Vec<i64> = self
                .sessions
                .range((key.clone(), i64::MIN)..(key.clone(), t.saturating_add(self.gap)))
                .rev()
                .take_while(|(_, s)| s.last.saturating_add(self.gap) > t)
                .map(|((_, start), _)| *start)
                .collect();
            let row = rows.row(i).data().to_vec();
            let mut new_start = t;
            let mut new_last = t;
            let mut members: Vec<Vec<u8>> = Vec::new();
            let mut old: Vec<(i64, i64, Vec<Vec<u8>>)> = Vec::new();
            for start in merged {
                let s = self
                    .sessions
                    .remove(&(key.clone(), start))
                    .expect("found above");
                new_start = new_start.min(start);
                new_last = new_last.max(s.last);
                old.push((start, s.last, s.rows));
            }
            for (start, last, rows) in old {
                let unchanged = start == new_start && last == new_last;
                for r in rows {
                    if !unchanged {
                        out.push((-1, r.clone(), start, last + self.gap));
                        out.push((1, r.clone(), new_start, new_last + self.gap));
                    }
                    members.push(r);
                }
            }
            out.push((1, row.clone(), new_start, new_last + self.gap));
            members.push(row);
            self.sessions.insert(
                (key, new_start),
                Session {
                    last: new_last,
                    rows: members,
                },
            );
        }
        let parser = self.row_converter.parser();
        let rows: Vec<(i64, Row<'_>, i64, i64)> = out
            .iter()
            .map(|(w, r, s, e)| (*w, parser.parse(r), *s, *e))
            .collect();
        let delta = self.output(rows)?;
        delta.consolidate()
    }

    fn on_watermark(&mut self, watermark: i64, _ctx: &mut Ctx) -> Result<Option<ChangeBatch>> {
        let (gap, grace) = (self.gap, self.grace);
        // Free closed sessions: their end + grace is at or before the watermark.
        self.sessions
            .retain(|_, s| s.last.saturating_add(gap).saturating_add(grace) > watermark);
        Ok(None)
    }

    fn describe(&self) -> String {
        format!(
            "Session windows: gap {}s, grace {}s, by [{}]",
            self.gap as f64 / 1e6,
            self.grace as f64 / 1e6,
            self.keys
                .iter()
                .map(|k| k.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    }

    fn state_rows(&self) -> usize {
        self.sessions.iter().map(|(_, s)| s.rows.len()).sum()
    }

    fn state_tables(&mut self) -> Vec<&mut dyn StateTable> {
        vec![&mut self.sessions]
    }
}

//! A view's dataflow: operators in topological order, each reading from source slots
//! (the view's input relations) or earlier operators. One `step` pushes the deltas of one
//! epoch through all operators and returns the delta of the view.

use std::collections::HashMap;

use datafusion::arrow::datatypes::SchemaRef;

use super::batch::ChangeBatch;
use super::operator::Operator;
use crate::error::Result;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// The delta of the view's n-th source relation.
    Source(usize),
    /// The output of an earlier node.
    Node(usize),
}

pub struct Node {
    pub op: Box<dyn Operator>,
    pub inputs: Vec<Input>,
    pub schema: SchemaRef,
}

pub struct Dataflow {
    /// Names of the relations read, by source slot.
    pub sources: Vec<String>,
    pub nodes: Vec<Node>,
    pub output: Input,
    /// Schema of the view's rows (Postgres column names applied).
    pub schema: SchemaRef,
    /// True when the output can only grow (no retractions possible).
    pub append_only: bool,
    /// The window this view aggregates over, if any, and the last watermark applied.
    pub window: Option<crate::sql::windows::WindowSpec>,
    pub watermark: Option<i64>,
    /// Streams whose watermark (the minimum of them) this dataflow follows.
    pub watermark_sources: Vec<String>,
}

impl Dataflow {
    /// Push one epoch of source deltas through. `deltas` is keyed by source slot; a source
    /// without a delta did not change. Returns the view's delta (None: no change).
    ///
    /// `watermark` (event time, µs) is applied after the data: operators holding windows
    /// close those it passed, and what they emit flows on in the same step.
    pub fn step(
        &mut self,
        deltas: &HashMap<usize, ChangeBatch>,
        watermark: Option<i64>,
    ) -> Result<Option<ChangeBatch>> {
        let advance = match (watermark, self.watermark) {
            (Some(w), Some(old)) if w > old => Some(w),
            (Some(w), None) => Some(w),
            _ => None,
        };
        if advance.is_some() {
            self.watermark = advance;
        }
        let mut outputs: Vec<Option<ChangeBatch>> = Vec::with_capacity(self.nodes.len());
        for node in self.nodes.iter_mut() {
            let mut parts = Vec::new();
            for (i, input) in node.inputs.iter().enumerate() {
                let delta = match input {
                    Input::Source(s) => deltas.get(s).cloned(),
                    Input::Node(n) => outputs[*n].clone(),
                };
                if let Some(d) = delta {
                    parts.push(node.op.process(i, d)?);
                }
            }
            if let Some(w) = advance {
                if let Some(closed) = node.op.on_watermark(w)? {
                    parts.push(closed);
                }
            }
            outputs.push(if parts.is_empty() {
                None
            } else {
                Some(ChangeBatch::concat(&node.schema, &parts)?)
            });
        }
        let out = match self.output {
            Input::Source(s) => deltas.get(&s).cloned(),
            Input::Node(n) => outputs[n].take(),
        };
        match out {
            Some(d) => Ok(Some(d.consolidate()?.with_schema(self.schema.clone())?)),
            None => Ok(None),
        }
    }

    /// EXPLAIN text: the operators from the view down to its sources.
    pub fn explain(&self) -> String {
        let mut lines = Vec::new();
        self.explain_input(self.output, 0, &mut lines);
        lines.join("\n")
    }

    fn explain_input(&self, input: Input, depth: usize, lines: &mut Vec<String>) {
        let pad = "  ".repeat(depth);
        match input {
            Input::Source(s) => lines.push(format!("{pad}Source: {}", self.sources[s])),
            Input::Node(n) => {
                let node = &self.nodes[n];
                let state = node.op.state_rows();
                let state = if state > 0 {
                    format!("  [state: {state} groups]")
                } else {
                    String::new()
                };
                lines.push(format!("{pad}{}{state}", node.op.describe()));
                for i in &node.inputs {
                    self.explain_input(*i, depth + 1, lines);
                }
            }
        }
    }

    pub fn state_rows(&self) -> usize {
        self.nodes.iter().map(|n| n.op.state_rows()).sum()
    }

    pub fn late_rows(&self) -> u64 {
        self.nodes.iter().map(|n| n.op.late_rows()).sum()
    }
}

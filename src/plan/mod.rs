//! Lowering: a DataFusion `LogicalPlan` (from DataFusion's SQL planner, analyzed but not
//! optimized) becomes a [`Dataflow`] of incremental operators. This `match` is the one
//! registry of operators: every plan node we can maintain incrementally is listed here, and
//! anything else is refused with SQLSTATE 0A000 naming the construct.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::common::DFSchema;
use datafusion::execution::context::ExecutionProps;
use datafusion::logical_expr::{Distinct, Expr, LogicalPlan};
use datafusion::physical_expr::{create_physical_expr, PhysicalExpr};

use crate::dataflow::ops::aggregate::{AggKind, AggSpec, AggregateOp};
use crate::dataflow::ops::filter::FilterOp;
use crate::dataflow::ops::project::ProjectOp;
use crate::dataflow::ops::union::UnionOp;
use crate::dataflow::{Dataflow, Input, Node, Operator};
use crate::error::{EddyError, Result};

mod optimize;
pub use optimize::optimize_view;

/// Builds a dataflow. `append_only(name)` says whether a source relation only grows.
pub struct Lowering<'a> {
    append_only: &'a dyn Fn(&str) -> bool,
    sources: Vec<String>,
    source_slots: HashMap<String, usize>,
    nodes: Vec<Node>,
    props: ExecutionProps,
    /// The view's window and whether it emits final results only.
    window: Option<(crate::sql::windows::WindowSpec, bool)>,
    window_used: bool,
    /// Group keys of the aggregate over a session window (its sessions are per key).
    session_keys: Option<Vec<String>>,
    /// A stream's event-time column, if it declares one.
    event_time_of: Option<&'a dyn Fn(&str) -> Option<String>>,
    /// Streams whose watermarks drive this dataflow (windows, time-bounded joins).
    watermark_sources: Vec<String>,
    /// The user opted in to unbounded state (stream-stream join without a time bound).
    unbounded_joins: bool,
}

struct Lowered {
    input: Input,
    append_only: bool,
}

/// All fields nullable: operators build batches from computed arrays, and nullability is
/// not something a retraction-carrying dataflow can promise column by column.
pub fn nullable(schema: &Schema) -> SchemaRef {
    Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| Field::new(f.name(), f.data_type().clone(), true))
            .collect::<Vec<_>>(),
    ))
}

impl<'a> Lowering<'a> {
    pub fn new(append_only: &'a dyn Fn(&str) -> bool) -> Self {
        Lowering {
            append_only,
            sources: vec![],
            source_slots: HashMap::new(),
            nodes: vec![],
            props: ExecutionProps::new(),
            window: None,
            window_used: false,
            session_keys: None,
            event_time_of: None,
            watermark_sources: vec![],
            unbounded_joins: false,
        }
    }

    pub fn with_unbounded_joins(mut self, allowed: bool) -> Self {
        self.unbounded_joins = allowed;
        self
    }

    pub fn with_event_times(mut self, f: &'a dyn Fn(&str) -> Option<String>) -> Self {
        self.event_time_of = Some(f);
        self
    }

    /// `SELECT *, session_bound(t, gap, 0), session_bound(t, gap, 1) FROM s` becomes a
    /// session-assignment operator over the stream.
    fn lower_session(&mut self, p: &datafusion::logical_expr::Projection) -> Result<Lowered> {
        let child = self.lower_node(&p.input)?;
        if !child.append_only {
            return Err(EddyError::unsupported(
                "SESSION windows over a table or view that updates rows; they need an append-only stream",
            ));
        }
        let Some((spec, _)) = self.window.clone() else {
            return Err(EddyError::unsupported(
                "eddy_session_bound() outside FROM SESSION(...)",
            ));
        };
        let crate::sql::windows::WindowKind::Session { gap } = spec.kind else {
            return Err(EddyError::unsupported(
                "eddy_session_bound() outside FROM SESSION(...)",
            ));
        };
        let n = p.expr.len();
        let in_schema = p.input.schema();
        // Only the projection the SESSION(...) rewrite produces has this shape; the marker
        // function written by hand anywhere else is refused, never indexed blindly.
        if n < 2 {
            return Err(EddyError::unsupported(
                "SESSION window over a computed relation",
            ));
        }
        let plain = p.expr[..n - 2]
            .iter()
            .enumerate()
            .all(|(i, e)| matches!(e, Expr::Column(c) if in_schema.field(i).name() == &c.name));
        if !plain || n - 2 != in_schema.fields().len() {
            return Err(EddyError::unsupported(
                "SESSION window over a computed relation",
            ));
        }
        let bound = match &p.expr[n - 2] {
            Expr::Alias(a) => a.expr.as_ref(),
            other => other,
        };
        let Expr::ScalarFunction(f) = bound else {
            return Err(EddyError::internal("session start bound missing"));
        };
        let time = self.physical(&f.args[0], in_schema)?;
        let key_names = self.session_keys.clone().unwrap_or_default();
        let keys = key_names
            .iter()
            .map(|k| {
                let idx = in_schema.index_of_column_by_name(None, k).ok_or_else(|| {
                    EddyError::unsupported(format!(
                        "SESSION window grouped by \"{k}\", which is not a column of the stream"
                    ))
                })?;
                Ok(
                    Arc::new(datafusion::physical_expr::expressions::Column::new(k, idx))
                        as Arc<dyn PhysicalExpr>,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let input_schema = nullable(in_schema.as_arrow());
        let schema = nullable(p.schema.as_arrow());
        let op = crate::dataflow::ops::session::SessionAssignOp::try_new(
            keys,
            time,
            gap,
            spec.grace,
            input_schema,
            schema.clone(),
        )?;
        let input = self.push(Box::new(op), vec![child.input], schema);
        Ok(Lowered {
            input,
            append_only: false,
        })
    }

    pub fn with_window(mut self, window: Option<(crate::sql::windows::WindowSpec, bool)>) -> Self {
        self.window = window;
        self
    }

    /// Lower `plan`; `output_schema` is the view's schema (its column names).
    pub fn lower(mut self, plan: &LogicalPlan, output_schema: SchemaRef) -> Result<Dataflow> {
        let out = self.lower_node(plan)?;
        if let Some((_, true)) = &self.window {
            if !self.window_used {
                return Err(EddyError::unsupported(
                    "EMIT FINAL needs an aggregation grouped by the window",
                ));
            }
        }
        let window = if self.window_used {
            self.window.map(|(w, _)| w)
        } else {
            None
        };
        let mut watermark_sources = self.watermark_sources;
        if let Some(w) = &window {
            watermark_sources.push(w.source.clone());
        }
        watermark_sources.sort();
        watermark_sources.dedup();
        Ok(Dataflow {
            sources: self.sources,
            nodes: self.nodes,
            output: out.input,
            schema: output_schema,
            append_only: out.append_only,
            window,
            watermark: None,
            committed_watermark: None,
            epoch: 0,
            watermark_sources,
            counters: Default::default(),
            pending: Default::default(),
        })
    }

    fn push(&mut self, op: Box<dyn Operator>, inputs: Vec<Input>, schema: SchemaRef) -> Input {
        self.nodes.push(Node::new(op, inputs, schema));
        Input::Node(self.nodes.len() - 1)
    }

    fn physical(&self, e: &Expr, schema: &DFSchema) -> Result<Arc<dyn PhysicalExpr>> {
        check_expr(e)?;
        let p = create_physical_expr(e, schema, &self.props, &Default::default())?;
        checked_arithmetic(p)
    }

    fn lower_node(&mut self, plan: &LogicalPlan) -> Result<Lowered> {
        match plan {
            LogicalPlan::TableScan(scan) => {
                if scan.fetch.is_some() {
                    return Err(EddyError::unsupported(
                        "LIMIT in a continuous query is not supported",
                    ));
                }
                let name = scan.table_name.table().to_string();
                let append_only = (self.append_only)(&name);
                let slot = match self.source_slots.get(&name) {
                    Some(s) => *s,
                    None => {
                        self.sources.push(name.clone());
                        self.source_slots
                            .insert(name.clone(), self.sources.len() - 1);
                        self.sources.len() - 1
                    }
                };
                let full_schema = scan.source.schema();
                let full =
                    DFSchema::try_from_qualified_schema(scan.table_name.clone(), &full_schema)?;
                let mut input = Input::Source(slot);
                if !scan.filters.is_empty() {
                    let predicate = scan
                        .filters
                        .iter()
                        .cloned()
                        .reduce(|a, b| a.and(b))
                        .expect("non-empty filters");
                    let p = self.physical(&predicate, &full)?;
                    input = self.push(
                        Box::new(FilterOp::new(p)),
                        vec![input],
                        nullable(&full_schema),
                    );
                }
                if let Some(projection) = &scan.projection {
                    let exprs = projection
                        .iter()
                        .map(|i| {
                            let f = full_schema.field(*i);
                            Arc::new(datafusion::physical_expr::expressions::Column::new(
                                f.name(),
                                *i,
                            )) as Arc<dyn PhysicalExpr>
                        })
                        .collect();
                    let schema = nullable(scan.projected_schema.as_arrow());
                    input = self.push(
                        Box::new(ProjectOp::new(exprs, schema.clone())),
                        vec![input],
                        schema,
                    );
                }
                Ok(Lowered { input, append_only })
            }
            LogicalPlan::Projection(p) if is_session_projection(p) => self.lower_session(p),
            LogicalPlan::Projection(p) => {
                let child = self.lower_node(&p.input)?;
                self.project(p, child)
            }
            LogicalPlan::Limit(l) => self.lower_limit(l),
            // A view is a set: ORDER BY alone changes nothing (it applies when you SELECT).
            LogicalPlan::Sort(s) if s.fetch.is_none() => self.lower_node(&s.input),
            LogicalPlan::Sort(s) => self.lower_top_n(s, 0, s.fetch),
            LogicalPlan::Filter(f) if matches!(f.input.as_ref(), LogicalPlan::Window(_)) => {
                self.lower_ranking(f)
            }
            LogicalPlan::Filter(f) => {
                let child = self.lower_node(&f.input)?;
                let predicate = self.physical(&f.predicate, f.input.schema())?;
                let schema = nullable(f.input.schema().as_arrow());
                let input = self.push(
                    Box::new(FilterOp::new(predicate)),
                    vec![child.input],
                    schema,
                );
                Ok(Lowered {
                    input,
                    append_only: child.append_only,
                })
            }
            LogicalPlan::Aggregate(a) => {
                // Session windows are per key: the keys are this aggregate's other groups.
                if let Some((spec, _)) = &self.window {
                    if matches!(spec.kind, crate::sql::windows::WindowKind::Session { .. })
                        && self.session_keys.is_none()
                    {
                        let keys: Vec<String> = a
                            .group_expr
                            .iter()
                            .filter_map(|g| match g {
                                Expr::Column(c)
                                    if c.name != spec.start_column && c.name != spec.end_column =>
                                {
                                    Some(c.name.clone())
                                }
                                _ => None,
                            })
                            .collect();
                        self.session_keys = Some(keys);
                    }
                }
                let child = self.lower_node(&a.input)?;
                let in_schema = a.input.schema();
                let mut group_exprs = Vec::new();
                let mut group_types = Vec::new();
                for g in &a.group_expr {
                    if matches!(g, Expr::GroupingSet(_)) {
                        return Err(EddyError::unsupported(
                            "GROUPING SETS, CUBE and ROLLUP in a continuous query are not supported",
                        ));
                    }
                    let p = self.physical(g, in_schema)?;
                    group_types.push(p.data_type(in_schema.as_arrow())?);
                    group_exprs.push(p);
                }
                let out_schema = nullable(a.schema.as_arrow());
                let mut aggs = Vec::new();
                for (i, e) in a.aggr_expr.iter().enumerate() {
                    let output_type = out_schema.field(a.group_expr.len() + i).data_type().clone();
                    aggs.push(self.aggregate_spec(e, in_schema, output_type)?);
                }
                let mut op =
                    AggregateOp::try_new(group_exprs, group_types, aggs, out_schema.clone())?
                        .with_append_only_input(child.append_only);
                if let Some(close) = self.window_close(&a.group_expr) {
                    op = op.with_window(close);
                }
                let input = self.push(Box::new(op), vec![child.input], out_schema);
                Ok(Lowered {
                    input,
                    append_only: false,
                })
            }
            LogicalPlan::Distinct(Distinct::All(inner)) => {
                let child = self.lower_node(inner)?;
                let schema = inner.schema();
                let arrow = schema.as_arrow();
                let group_exprs: Vec<Arc<dyn PhysicalExpr>> = arrow
                    .fields()
                    .iter()
                    .enumerate()
                    .map(|(i, f)| {
                        Arc::new(datafusion::physical_expr::expressions::Column::new(
                            f.name(),
                            i,
                        )) as Arc<dyn PhysicalExpr>
                    })
                    .collect();
                let group_types = arrow
                    .fields()
                    .iter()
                    .map(|f| f.data_type().clone())
                    .collect();
                let out_schema = nullable(arrow);
                let op =
                    AggregateOp::try_new(group_exprs, group_types, vec![], out_schema.clone())?;
                let input = self.push(Box::new(op), vec![child.input], out_schema);
                Ok(Lowered {
                    input,
                    append_only: false,
                })
            }
            LogicalPlan::Distinct(Distinct::On(_)) => Err(EddyError::unsupported(
                "DISTINCT ON in a continuous query is not supported",
            )),
            LogicalPlan::Union(u) => {
                let mut inputs = Vec::new();
                let mut append_only = true;
                for i in &u.inputs {
                    let c = self.lower_node(i)?;
                    append_only &= c.append_only;
                    inputs.push(c.input);
                }
                let schema = nullable(u.schema.as_arrow());
                let n = inputs.len();
                let input = self.push(Box::new(UnionOp::new(schema.clone(), n)), inputs, schema);
                Ok(Lowered { input, append_only })
            }
            LogicalPlan::SubqueryAlias(s) => self.lower_node(&s.input),
            LogicalPlan::Join(j) => self.lower_join(j),
            LogicalPlan::EmptyRelation(e) => {
                let schema = nullable(e.schema.as_arrow());
                let op = crate::dataflow::ops::values::ValuesOp::empty_rows(
                    schema.clone(),
                    usize::from(e.produce_one_row),
                )?;
                Ok(self.constant(Box::new(op), schema))
            }
            LogicalPlan::Values(v) => self.lower_values(v),
            other => Err(EddyError::unsupported(unsupported_node(other))),
        }
    }

    /// Equi-joins: INNER, and LEFT OUTER with the stored side on the right. A stream side
    /// is not stored (each row joins the table as it is when it arrives); joining two
    /// streams needs a time bound, which is not supported yet.
    fn lower_join(&mut self, j: &datafusion::logical_expr::Join) -> Result<Lowered> {
        use crate::dataflow::ops::join::{JoinKind, JoinOp};
        use datafusion::logical_expr::JoinType;
        if matches!(j.join_type, JoinType::LeftSemi | JoinType::LeftAnti) {
            return self.lower_semi_join(j);
        }
        if matches!(j.join_type, JoinType::LeftMark | JoinType::RightMark) {
            return Err(EddyError::unsupported(
                "EXISTS or IN under OR (a mark join) in a continuous query is not supported yet",
            ));
        }
        let (within, residual) = split_within(j.filter.as_ref());
        let kind = match j.join_type {
            JoinType::Inner => JoinKind::Inner,
            JoinType::Left => JoinKind::Left,
            JoinType::Right => JoinKind::Right,
            JoinType::Full => JoinKind::Full,
            other => {
                return Err(EddyError::unsupported(format!(
                    "{other} JOIN in a continuous query is not supported yet; INNER, LEFT, RIGHT and FULL are"
                )))
            }
        };
        // `ON true` (a cross join, an uncorrelated scalar subquery's join) is no condition.
        let residual = residual.filter(|r| {
            !matches!(
                r,
                Expr::Literal(datafusion::scalar::ScalarValue::Boolean(Some(true)), _)
            )
        });
        if kind != JoinKind::Inner && residual.is_some() {
            return Err(EddyError::unsupported(
                "an OUTER JOIN whose ON has conditions other than equalities is not supported yet",
            ));
        }
        let left = self.lower_node(&j.left)?;
        let right = self.lower_node(&j.right)?;
        let unbounded =
            left.append_only && right.append_only && within.is_none() && self.unbounded_joins;
        if left.append_only && right.append_only && !unbounded {
            if j.on.is_empty() {
                return Err(EddyError::unsupported(
                    "a JOIN of two streams in a continuous query needs an equality condition between the two sides (ON a.k = b.k)",
                ));
            }
            return self.lower_interval_join(j, kind, left, right, within, residual);
        }
        if within.is_some() {
            return Err(EddyError::unsupported(
                "WITHIN bounds a JOIN of two streams; this join reads a table or view",
            ));
        }
        // The outer side's padded rows are kept right only if the other side is stored.
        let stream_side_outer = (matches!(kind, JoinKind::Left | JoinKind::Full)
            && right.append_only)
            || (matches!(kind, JoinKind::Right | JoinKind::Full) && left.append_only);
        if stream_side_outer && !unbounded {
            return Err(EddyError::unsupported(
                "an OUTER JOIN that pads rows of a table against a stream is not supported; use stream LEFT JOIN table",
            ));
        }
        let lschema = j.left.schema();
        let rschema = j.right.schema();
        let mut lkeys = Vec::new();
        let mut rkeys = Vec::new();
        for (l, r) in &j.on {
            lkeys.push(self.physical(l, lschema)?);
            rkeys.push(self.physical(r, rschema)?);
        }
        if lkeys.is_empty() {
            // No equality: every pair meets (a constant key), then the residual condition
            // filters them — a theta or cross join, quadratic in the sides it stores.
            lkeys.push(datafusion::physical_expr::expressions::lit(true));
            rkeys.push(datafusion::physical_expr::expressions::lit(true));
        }
        for (l, r) in lkeys.iter().zip(&rkeys) {
            let (lt, rt) = (
                l.data_type(lschema.as_arrow())?,
                r.data_type(rschema.as_arrow())?,
            );
            if lt != rt && !datafusion::arrow::compute::can_cast_types(&rt, &lt) {
                return Err(EddyError::query(
                    "42804",
                    format!("JOIN keys of types {lt} and {rt} cannot be compared"),
                ));
            }
        }
        let schema = nullable(j.schema.as_arrow());
        let op = JoinOp::try_new(
            kind,
            lkeys,
            rkeys,
            nullable(lschema.as_arrow()),
            nullable(rschema.as_arrow()),
            schema.clone(),
            !left.append_only || unbounded,
            !right.append_only || unbounded,
        )?;
        let mut input = self.push(Box::new(op), vec![left.input, right.input], schema.clone());
        if let Some(f) = &residual {
            let p = self.physical(f, &j.schema)?;
            input = self.push(Box::new(FilterOp::new(p)), vec![input], schema);
        }
        // A stream joined with a table only ever inserts; an unbounded outer join of two
        // streams retracts padded rows when matches arrive.
        let append_only =
            (left.append_only || right.append_only) && !(unbounded && kind != JoinKind::Inner);
        Ok(Lowered { input, append_only })
    }

    /// EXISTS, IN, NOT EXISTS, NOT IN (decorrelated by the optimizer), INTERSECT and
    /// EXCEPT: a semi or anti join (see ops/semi_join.rs). A join without an equality
    /// compares a constant key, so every pair is tried against the residual condition.
    fn lower_semi_join(&mut self, j: &datafusion::logical_expr::Join) -> Result<Lowered> {
        use crate::dataflow::ops::semi_join::{SemiJoinOp, SemiKind};
        use datafusion::common::NullEquality;
        use datafusion::logical_expr::JoinType;
        let kind = match (j.join_type, j.null_aware) {
            (JoinType::LeftSemi, _) => SemiKind::Semi,
            (JoinType::LeftAnti, false) => SemiKind::Anti,
            (JoinType::LeftAnti, true) if j.on.len() == 1 && j.filter.is_none() => {
                SemiKind::NullAwareAnti
            }
            _ => {
                return Err(EddyError::unsupported(
                    "NOT IN over a correlated subquery or several columns in a continuous query is not supported; write NOT EXISTS",
                ))
            }
        };
        if let Some(f) = &j.filter {
            if split_within(Some(f)).0.is_some() {
                return Err(EddyError::unsupported(
                    "WITHIN bounds a JOIN of two streams, not a semi or anti join",
                ));
            }
        }
        let left = self.lower_node(&j.left)?;
        let right = self.lower_node(&j.right)?;
        if left.append_only && right.append_only && !self.unbounded_joins {
            return Err(EddyError::unsupported(
                "EXISTS / IN / INTERSECT / EXCEPT between two streams would keep both streams forever; read a table on one side, or opt in with WITH (unbounded_state = true)",
            ));
        }
        // An append-only left side is not stored: its rows are judged as they arrive.
        let store_left = !left.append_only || self.unbounded_joins;
        let (lschema, rschema) = (j.left.schema(), j.right.schema());
        let (mut lkeys, mut rkeys) = (Vec::new(), Vec::new());
        for (l, r) in &j.on {
            let (lk, rk) = (self.physical(l, lschema)?, self.physical(r, rschema)?);
            let (lt, rt) = (
                lk.data_type(lschema.as_arrow())?,
                rk.data_type(rschema.as_arrow())?,
            );
            if lt != rt && !datafusion::arrow::compute::can_cast_types(&rt, &lt) {
                return Err(EddyError::query(
                    "42804",
                    format!("keys of types {lt} and {rt} cannot be compared"),
                ));
            }
            lkeys.push(lk);
            rkeys.push(rk);
        }
        if lkeys.is_empty() {
            lkeys.push(datafusion::physical_expr::expressions::lit(true));
            rkeys.push(datafusion::physical_expr::expressions::lit(true));
        }
        let residual = match &j.filter {
            Some(f) => Some(self.physical(f, &lschema.join(rschema)?)?),
            None => None,
        };
        let schema = nullable(lschema.as_arrow());
        let op = SemiJoinOp::try_new(
            kind,
            lkeys,
            rkeys,
            j.null_equality == NullEquality::NullEqualsNull,
            residual,
            schema.clone(),
            nullable(rschema.as_arrow()),
            store_left,
        )?;
        let input = self.push(Box::new(op), vec![left.input, right.input], schema);
        Ok(Lowered {
            input,
            append_only: !store_left,
        })
    }

    /// A constant relation is stored like a table by whatever reads it (it is not a
    /// stream: a join must see it whole whenever the other side changes).
    fn constant(&mut self, op: Box<dyn Operator>, schema: SchemaRef) -> Lowered {
        let input = self.push(op, vec![], schema);
        Lowered {
            input,
            append_only: false,
        }
    }

    /// `VALUES (…), (…)`: each constant expression evaluated once, at plan time.
    fn lower_values(&mut self, v: &datafusion::logical_expr::Values) -> Result<Lowered> {
        use datafusion::arrow::array::{RecordBatch, RecordBatchOptions};
        let schema = nullable(v.schema.as_arrow());
        let one = RecordBatch::try_new_with_options(
            Arc::new(Schema::empty()),
            vec![],
            &RecordBatchOptions::new().with_row_count(Some(1)),
        )?;
        let no_columns = DFSchema::empty();
        let mut columns = Vec::new();
        for (c, field) in schema.fields().iter().enumerate() {
            let mut cells = Vec::new();
            for row in &v.values {
                let e = row
                    .get(c)
                    .ok_or_else(|| EddyError::internal("a VALUES row is short of columns"))?;
                let cell = self
                    .physical(e, &no_columns)?
                    .evaluate(&one)?
                    .into_array(1)?;
                cells.push(if cell.data_type() == field.data_type() {
                    cell
                } else {
                    datafusion::arrow::compute::cast(&cell, field.data_type())?
                });
            }
            let refs: Vec<&dyn datafusion::arrow::array::Array> =
                cells.iter().map(|a| a.as_ref()).collect();
            columns.push(datafusion::arrow::compute::concat(&refs)?);
        }
        let rows = RecordBatch::try_new_with_options(
            schema.clone(),
            columns,
            &RecordBatchOptions::new().with_row_count(Some(v.values.len())),
        )?;
        let op = crate::dataflow::ops::values::ValuesOp::new(rows);
        Ok(self.constant(Box::new(op), schema))
    }

    fn project(
        &mut self,
        p: &datafusion::logical_expr::Projection,
        child: Lowered,
    ) -> Result<Lowered> {
        let exprs = p
            .expr
            .iter()
            .map(|e| self.physical(e, p.input.schema()))
            .collect::<Result<Vec<_>>>()?;
        let schema = nullable(p.schema.as_arrow());
        let input = self.push(
            Box::new(ProjectOp::new(exprs, schema.clone())),
            vec![child.input],
            schema,
        );
        Ok(Lowered {
            input,
            append_only: child.append_only,
        })
    }

    /// `ORDER BY … LIMIT n OFFSET m`: a Top-N under the projections between the LIMIT and
    /// its ORDER BY (a projection keeps every row, so it commutes with the limit).
    fn lower_limit(&mut self, l: &datafusion::logical_expr::Limit) -> Result<Lowered> {
        use datafusion::logical_expr::{FetchType, SkipType};
        let (SkipType::Literal(skip), FetchType::Literal(fetch)) =
            (l.get_skip_type()?, l.get_fetch_type()?)
        else {
            return Err(EddyError::unsupported(
                "LIMIT/OFFSET that is not a constant in a continuous query",
            ));
        };
        let mut projections = Vec::new();
        let mut node = l.input.as_ref();
        while let LogicalPlan::Projection(p) = node {
            if is_session_projection(p) {
                break;
            }
            projections.push(p);
            node = &p.input;
        }
        let LogicalPlan::Sort(sort) = node else {
            return Err(EddyError::unsupported(
                "LIMIT/OFFSET without ORDER BY in a continuous query: which rows it keeps is not defined; add ORDER BY",
            ));
        };
        // The sort's own fetch keeps its first rows; the limit takes from those.
        let fetch = match (fetch, sort.fetch) {
            (f, None) => f,
            (None, Some(s)) => Some(s.saturating_sub(skip)),
            (Some(f), Some(s)) => Some(f.min(s.saturating_sub(skip))),
        };
        let mut lowered = self.lower_top_n(sort, skip, fetch)?;
        for p in projections.into_iter().rev() {
            lowered = self.project(p, lowered)?;
        }
        Ok(lowered)
    }

    fn sort_exprs(
        &self,
        sort: &[datafusion::logical_expr::SortExpr],
        schema: &DFSchema,
    ) -> Result<Vec<datafusion::physical_expr::PhysicalSortExpr>> {
        sort.iter()
            .map(|s| {
                Ok(datafusion::physical_expr::PhysicalSortExpr::new(
                    self.physical(&s.expr, schema)?,
                    datafusion::arrow::compute::SortOptions {
                        descending: !s.asc,
                        nulls_first: s.nulls_first,
                    },
                ))
            })
            .collect()
    }

    fn lower_top_n(
        &mut self,
        sort: &datafusion::logical_expr::Sort,
        skip: usize,
        fetch: Option<usize>,
    ) -> Result<Lowered> {
        use crate::dataflow::ops::top_n::{TopNKind, TopNOp};
        let child = self.lower_node(&sort.input)?;
        let in_schema = sort.input.schema();
        let order = self.sort_exprs(&sort.expr, in_schema)?;
        let schema = nullable(in_schema.as_arrow());
        let op = TopNOp::try_new(
            TopNKind::Limit { skip, fetch },
            vec![],
            order,
            schema.clone(),
            schema.clone(),
            child.append_only,
        )?;
        let input = self.push(Box::new(op), vec![child.input], schema);
        Ok(Lowered {
            input,
            append_only: false,
        })
    }

    /// `WHERE rn <= n` over `ROW_NUMBER() / RANK() / DENSE_RANK() OVER (PARTITION BY …
    /// ORDER BY …) AS rn`: a Top-N per partition that emits the rank, then the filter
    /// itself (it is exact on the Top-N's rows, and keeps any other condition).
    fn lower_ranking(&mut self, f: &datafusion::logical_expr::Filter) -> Result<Lowered> {
        use crate::dataflow::ops::top_n::{TopNKind, TopNOp};
        use datafusion::logical_expr::utils::split_conjunction;
        use datafusion::logical_expr::{BinaryExpr, Operator as Op};
        let LogicalPlan::Window(w) = f.input.as_ref() else {
            return Err(EddyError::internal("a ranking filter over something else"));
        };
        let refuse = || {
            EddyError::unsupported(
                "window functions (OVER) in a continuous query are not supported, except ROW_NUMBER(), RANK() and DENSE_RANK() bounded by a constant in WHERE (Top-N per group)",
            )
        };
        let [e] = w.window_expr.as_slice() else {
            return Err(refuse());
        };
        let e = match e {
            Expr::Alias(a) => a.expr.as_ref(),
            other => other,
        };
        let Expr::WindowFunction(wf) = e else {
            return Err(refuse());
        };
        let n_in = w.input.schema().fields().len();
        let rank_column = w.schema.field(n_in).name().clone();
        let literal = |e: &Expr| match e {
            Expr::Literal(v, _) => v
                .cast_to(&datafusion::arrow::datatypes::DataType::Int64)
                .ok()
                .and_then(|v| match v {
                    datafusion::scalar::ScalarValue::Int64(Some(n)) => Some(n),
                    _ => None,
                }),
            _ => None,
        };
        let is_rank = |e: &Expr| matches!(e, Expr::Column(c) if c.name == rank_column);
        let mut max: Option<i64> = None;
        for c in split_conjunction(&f.predicate) {
            let Expr::BinaryExpr(BinaryExpr { left, op, right }) = c else {
                continue;
            };
            let bound = match (is_rank(left), literal(right), is_rank(right), literal(left)) {
                (true, Some(n), _, _) => match op {
                    Op::LtEq | Op::Eq => Some(n),
                    Op::Lt => Some(n - 1),
                    _ => None,
                },
                (_, _, true, Some(n)) => match op {
                    Op::GtEq | Op::Eq => Some(n),
                    Op::Gt => Some(n - 1),
                    _ => None,
                },
                _ => None,
            };
            if let Some(b) = bound {
                max = Some(max.map_or(b, |m| m.min(b)));
            }
        }
        let Some(max) = max else {
            return Err(refuse());
        };
        let max = max.max(0) as u64;
        let kind = match wf.fun.name().to_lowercase().as_str() {
            "row_number" => TopNKind::RowNumber { max },
            "rank" => TopNKind::Rank { max },
            "dense_rank" => TopNKind::DenseRank { max },
            _ => return Err(refuse()),
        };
        let child = self.lower_node(&w.input)?;
        let in_schema = w.input.schema();
        let partition = wf
            .params
            .partition_by
            .iter()
            .map(|p| self.physical(p, in_schema))
            .collect::<Result<Vec<_>>>()?;
        let order = self.sort_exprs(&wf.params.order_by, in_schema)?;
        let schema = nullable(w.schema.as_arrow());
        let op = TopNOp::try_new(
            kind,
            partition,
            order,
            nullable(in_schema.as_arrow()),
            schema.clone(),
            child.append_only,
        )?;
        let mut input = self.push(Box::new(op), vec![child.input], schema.clone());
        let predicate = self.physical(&f.predicate, &w.schema)?;
        input = self.push(Box::new(FilterOp::new(predicate)), vec![input], schema);
        Ok(Lowered {
            input,
            append_only: false,
        })
    }

    /// A JOIN of two streams, bounded in time by WITHIN (see ops/interval_join.rs).
    fn lower_interval_join(
        &mut self,
        j: &datafusion::logical_expr::Join,
        kind: crate::dataflow::ops::join::JoinKind,
        left: Lowered,
        right: Lowered,
        within: Option<(i64, i64, i64)>,
        residual: Option<Expr>,
    ) -> Result<Lowered> {
        let mut times = Vec::new();
        let mut names: Vec<String> = Vec::new();
        for side in [&j.left, &j.right] {
            let stream = single_scan(side).ok_or_else(|| {
                EddyError::unsupported("a time-bounded JOIN must read each stream directly")
            })?;
            let column = match self.event_time_of.and_then(|f| f(&stream)) {
                Some(c) => c,
                None if within.is_none() => {
                    return Err(EddyError::unsupported(format!(
                        "a JOIN of two streams needs a time bound so its state can be freed: give {stream} an event-time column (WATERMARK FOR / TIMESTAMP=) and write JOIN ... WITHIN 1 HOUR ON ..., or join a stream with a table"
                    )))
                }
                None => {
                    return Err(EddyError::query(
                        "42P16",
                        format!("stream {stream} has no event-time column for JOIN ... WITHIN; declare WITH (TIMESTAMP='column') or WATERMARK FOR"),
                    ))
                }
            };
            let idx = side
                .schema()
                .index_of_column_by_name(None, &column)
                .ok_or_else(|| {
                    EddyError::unsupported(format!(
                        "the event-time column {column} of {stream} must be visible to the JOIN"
                    ))
                })?;
            times.push(
                Arc::new(datafusion::physical_expr::expressions::Column::new(
                    &column, idx,
                )) as Arc<dyn PhysicalExpr>,
            );
            self.watermark_sources.push(stream);
            names.push(column);
        }
        let (lschema, rschema) = (j.left.schema(), j.right.schema());
        // Time bounds: ksqlDB WITHIN, or interval conditions between the two time columns
        // in ON (b.ts BETWEEN a.ts - INTERVAL '1' HOUR AND a.ts), as Flink and RisingWave write.
        let (within, residual) = match within {
            Some(w) => (Some(w), residual),
            None => {
                let (bounds, rest) = interval_bounds(
                    residual.as_ref(),
                    (&names[0], lschema),
                    (&names[1], rschema),
                )?;
                (bounds.map(|(before, after)| (before, after, 0)), rest)
            }
        };
        let Some((before, after, grace)) = within else {
            return Err(EddyError::unsupported(
                "a JOIN of two streams needs a time bound so its state can be freed: write JOIN ... WITHIN 1 HOUR ON ..., or bound the time columns in ON (b.ts BETWEEN a.ts - INTERVAL '1' HOUR AND a.ts), or join a stream with a table (or opt in to unbounded state with WITH (unbounded_state = true))",
            ));
        };
        if kind != crate::dataflow::ops::join::JoinKind::Inner && residual.is_some() {
            return Err(EddyError::unsupported(
                "an OUTER stream-stream JOIN whose ON has conditions other than equalities and the time bound is not supported yet",
            ));
        }
        let mut lkeys = Vec::new();
        let mut rkeys = Vec::new();
        for (l, r) in &j.on {
            lkeys.push(self.physical(l, lschema)?);
            rkeys.push(self.physical(r, rschema)?);
        }
        let schema = nullable(j.schema.as_arrow());
        let right_time = times.pop().expect("two sides");
        let left_time = times.pop().expect("two sides");
        let op = crate::dataflow::ops::interval_join::IntervalJoinOp::try_new(
            kind,
            [lkeys, rkeys],
            [left_time, right_time],
            before,
            after,
            grace,
            [nullable(lschema.as_arrow()), nullable(rschema.as_arrow())],
            schema.clone(),
        )?;
        let mut input = self.push(Box::new(op), vec![left.input, right.input], schema.clone());
        if let Some(f) = &residual {
            let p = self.physical(f, &j.schema)?;
            input = self.push(Box::new(FilterOp::new(p)), vec![input], schema);
        }
        Ok(Lowered {
            input,
            append_only: true,
        })
    }

    /// The first aggregate grouped by the window's start or end column closes windows.
    fn window_close(
        &mut self,
        group_expr: &[Expr],
    ) -> Option<crate::dataflow::ops::aggregate::WindowClose> {
        let (spec, emit_final) = self.window.as_ref()?;
        if self.window_used {
            return None;
        }
        let session = matches!(spec.kind, crate::sql::windows::WindowKind::Session { .. });
        let found = group_expr
            .iter()
            .enumerate()
            .find_map(|(i, e)| match e {
                Expr::Column(c) if c.name == spec.end_column => Some((i, true)),
                _ => None,
            })
            .or_else(|| {
                group_expr.iter().enumerate().find_map(|(i, e)| match e {
                    Expr::Column(c) if c.name == spec.start_column && !session => Some((i, false)),
                    _ => None,
                })
            })?;
        self.window_used = true;
        Some(crate::dataflow::ops::aggregate::WindowClose::new(
            found.0,
            found.1,
            spec.kind.size(),
            spec.grace,
            spec.retention,
            *emit_final,
        ))
    }

    fn aggregate_spec(
        &self,
        e: &Expr,
        in_schema: &DFSchema,
        output_type: datafusion::arrow::datatypes::DataType,
    ) -> Result<AggSpec> {
        let (inner, display) = match e {
            Expr::Alias(a) => (a.expr.as_ref(), a.name.clone()),
            other => (other, other.schema_name().to_string()),
        };
        let Expr::AggregateFunction(f) = inner else {
            return Err(EddyError::unsupported(format!(
                "aggregate expression {inner} in a continuous query"
            )));
        };
        let name = f.func.name().to_lowercase();
        let params = &f.params;
        // COUNT, SUM, AVG, MIN, MAX and COUNT(DISTINCT) of one argument are kept by weight;
        // every other aggregate is recomputed per touched group by DataFusion.
        let by_weight = params.order_by.is_empty() && params.args.len() <= 1;
        let kind = match (name.as_str(), params.distinct) {
            ("count", false) if by_weight => AggKind::Count,
            ("count", true) if by_weight => AggKind::CountDistinct,
            ("sum", false) if by_weight => AggKind::Sum,
            ("avg" | "mean", false) if by_weight => AggKind::Avg,
            ("min", _) if by_weight => AggKind::Min,
            ("max", _) if by_weight => AggKind::Max,
            _ => AggKind::General,
        };
        let filter = match &params.filter {
            Some(f) => Some(self.physical(f, in_schema)?),
            None => None,
        };
        if kind == AggKind::General {
            for a in params
                .args
                .iter()
                .chain(params.order_by.iter().map(|s| &s.expr))
            {
                check_expr(a)?;
            }
            let (general, _) = crate::dataflow::ops::general_agg::GeneralAgg::try_new(
                inner,
                in_schema,
                &self.props,
            )?;
            return Ok(AggSpec {
                kind,
                arg: datafusion::physical_expr::expressions::lit(true),
                arg_type: datafusion::arrow::datatypes::DataType::Boolean,
                filter,
                output_type,
                display,
                general: Some(general),
            });
        }
        let arg = match params.args.as_slice() {
            [] => datafusion::physical_expr::expressions::lit(1i64),
            [a] => self.physical(a, in_schema)?,
            _ => {
                return Err(EddyError::unsupported(format!(
                    "{}() with several arguments in a continuous query",
                    name.to_uppercase()
                )))
            }
        };
        let arg_type = arg.data_type(in_schema.as_arrow())?;
        Ok(AggSpec {
            kind,
            arg,
            arg_type,
            filter,
            output_type,
            display,
            general: None,
        })
    }
}

/// Integer arithmetic that overflows is an error (22003), as in Postgres, not a wrapped
/// value.
pub(crate) fn checked_arithmetic(e: Arc<dyn PhysicalExpr>) -> Result<Arc<dyn PhysicalExpr>> {
    use datafusion::common::tree_node::{Transformed, TreeNode};
    use datafusion::physical_expr::expressions::BinaryExpr;
    Ok(e.transform_up(|node| {
        Ok(match node.downcast_ref::<BinaryExpr>() {
            Some(b) => Transformed::yes(Arc::new(
                BinaryExpr::new(b.left().clone(), *b.op(), b.right().clone())
                    .with_fail_on_overflow(true),
            ) as Arc<dyn PhysicalExpr>),
            None => Transformed::no(node),
        })
    })?
    .data)
}

/// Session windows depend on the order rows arrive and on the watermark: only a
/// continuous query can compute them.
pub fn check_no_session_windows(plan: &LogicalPlan) -> Result<()> {
    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    let mut found = false;
    plan.apply(|node| {
        for e in node.expressions() {
            e.apply(|x| {
                if matches!(x, Expr::ScalarFunction(f) if f.func.name() == crate::sql::windows::SESSION_BOUND_FUNCTION || f.func.name() == crate::sql::windows::WITHIN_FUNCTION) {
                    found = true;
                    return Ok(TreeNodeRecursion::Stop);
                }
                Ok(TreeNodeRecursion::Continue)
            })?;
        }
        Ok(if found { TreeNodeRecursion::Stop } else { TreeNodeRecursion::Continue })
    })?;
    if found {
        return Err(EddyError::unsupported(
            "SESSION windows and JOIN ... WITHIN in an ad-hoc query; they are maintained by continuous queries (CREATE ... AS SELECT ...)",
        ));
    }
    Ok(())
}

/// The same rule for ad-hoc queries: a physical optimizer rule that makes the arithmetic in
/// projections and filters overflow-checked, so `SELECT int_col + 1` errors (22003) instead
/// of wrapping, as in a view.
#[derive(Debug)]
pub struct CheckedArithmeticRule;

impl datafusion::physical_optimizer::PhysicalOptimizerRule for CheckedArithmeticRule {
    fn optimize(
        &self,
        plan: Arc<dyn datafusion::physical_plan::ExecutionPlan>,
        _config: &datafusion::config::ConfigOptions,
    ) -> datafusion::error::Result<Arc<dyn datafusion::physical_plan::ExecutionPlan>> {
        use datafusion::common::tree_node::{Transformed, TreeNode};
        use datafusion::physical_plan::filter::FilterExec;
        use datafusion::physical_plan::projection::ProjectionExec;
        use datafusion::physical_plan::ExecutionPlan;
        let checked = |e: &Arc<dyn PhysicalExpr>| {
            checked_arithmetic(e.clone())
                .map_err(|err| datafusion::error::DataFusionError::External(Box::new(err)))
        };
        Ok(plan
            .transform_up(|node| {
                if let Some(p) = node.downcast_ref::<ProjectionExec>() {
                    let exprs = p
                        .expr()
                        .iter()
                        .map(|pe| {
                            Ok(datafusion::physical_expr::projection::ProjectionExpr {
                                expr: checked(&pe.expr)?,
                                alias: pe.alias.clone(),
                            })
                        })
                        .collect::<datafusion::error::Result<Vec<_>>>()?;
                    let new = ProjectionExec::try_new(exprs, p.input().clone())?;
                    return Ok(Transformed::yes(Arc::new(new) as Arc<dyn ExecutionPlan>));
                }
                if let Some(f) = node.downcast_ref::<FilterExec>() {
                    let new = datafusion::physical_plan::filter::FilterExecBuilder::new(
                        checked(f.predicate())?,
                        f.input().clone(),
                    )
                    .apply_projection(f.projection().as_ref().map(|p| p.to_vec()))?
                    .build()?;
                    return Ok(Transformed::yes(Arc::new(new) as Arc<dyn ExecutionPlan>));
                }
                Ok(Transformed::no(node))
            })?
            .data)
    }

    fn name(&self) -> &str {
        "eddy_checked_arithmetic"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Functions whose value depends on when they run cannot be maintained: a view must mean
/// the same thing whenever it is recomputed.
pub fn check_time_functions(plan: &LogicalPlan) -> Result<()> {
    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    let mut found = None;
    plan.apply(|node| {
        for e in node.expressions() {
            e.apply(|x| {
                if let Expr::ScalarFunction(f) = x {
                    let n = f.func.name().to_lowercase();
                    if matches!(
                        n.as_str(),
                        "now"
                            | "current_timestamp"
                            | "current_date"
                            | "current_time"
                            | "localtime"
                            | "localtimestamp"
                            | "today"
                    ) {
                        found = Some(n);
                        return Ok(TreeNodeRecursion::Stop);
                    }
                }
                Ok(TreeNodeRecursion::Continue)
            })?;
        }
        Ok(if found.is_some() {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    })?;
    match found {
        Some(n) => Err(EddyError::unsupported(format!(
            "{n}() in a continuous query is not supported: its value depends on when the view is computed"
        ))),
        None => Ok(()),
    }
}

/// Expressions inside operators must be scalar and deterministic: a subquery would need a
/// join, and a volatile function would give a different answer on every recomputation.
fn check_expr(e: &Expr) -> Result<()> {
    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    let mut err = None;
    e.apply(|x| {
        let problem = match x {
            Expr::ScalarSubquery(_) | Expr::Exists(_) | Expr::InSubquery(_) => {
                Some("subqueries in expressions (scalar, IN, EXISTS) in a continuous query are not supported yet".to_string())
            }
            Expr::WindowFunction(_) => {
                Some("window functions (OVER) in a continuous query are not supported".to_string())
            }
            Expr::ScalarFunction(f) if f.func.signature().volatility == datafusion::logical_expr::Volatility::Volatile => {
                Some(format!("volatile function {}() in a continuous query is not supported: its result would differ on every recomputation", f.func.name()))
            }
            Expr::Placeholder(_) => Some("parameters ($n) in a continuous query".to_string()),
            _ => None,
        };
        match problem {
            Some(p) => {
                err = Some(p);
                Ok(TreeNodeRecursion::Stop)
            }
            None => Ok(TreeNodeRecursion::Continue),
        }
    })?;
    match err {
        Some(m) => Err(EddyError::unsupported(m)),
        None => Ok(()),
    }
}

/// Take the `eddy_within(before, after, grace)` conjunct (ksqlDB WITHIN) out of a join
/// condition; returns the bound and what is left of the condition.
fn split_within(filter: Option<&Expr>) -> (Option<(i64, i64, i64)>, Option<Expr>) {
    use datafusion::logical_expr::utils::{conjunction, split_conjunction};
    let Some(f) = filter else { return (None, None) };
    let mut within = None;
    let mut rest = Vec::new();
    for c in split_conjunction(f) {
        match c {
            Expr::ScalarFunction(sf) if sf.func.name() == crate::sql::windows::WITHIN_FUNCTION => {
                let lit = |e: &Expr| match e {
                    Expr::Literal(datafusion::scalar::ScalarValue::Int64(Some(v)), _) => Some(*v),
                    _ => None,
                };
                if let [a, b, g] = sf.args.as_slice() {
                    if let (Some(a), Some(b), Some(g)) = (lit(a), lit(b), lit(g)) {
                        within = Some((a, b, g));
                        continue;
                    }
                }
                rest.push(c.clone());
            }
            other => rest.push(other.clone()),
        }
    }
    (within, conjunction(rest))
}

/// `col ± interval` (or just `col`): the column and the offset in µs.
fn column_offset(e: &Expr) -> Option<(&datafusion::common::Column, i64)> {
    use datafusion::logical_expr::{BinaryExpr, Operator};
    use datafusion::scalar::ScalarValue;
    let micros = |e: &Expr| match e {
        Expr::Literal(ScalarValue::IntervalMonthDayNano(Some(v)), _) if v.months == 0 => {
            Some(v.days as i64 * 86_400_000_000 + v.nanoseconds / 1000)
        }
        Expr::Literal(ScalarValue::IntervalDayTime(Some(v)), _) => {
            Some(v.days as i64 * 86_400_000_000 + v.milliseconds as i64 * 1000)
        }
        _ => None,
    };
    match e {
        Expr::Column(c) => Some((c, 0)),
        Expr::Cast(c) => column_offset(&c.expr),
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Plus,
            right,
        }) => {
            let (c, o) = column_offset(left)?;
            Some((c, o + micros(right)?))
        }
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Minus,
            right,
        }) => {
            let (c, o) = column_offset(left)?;
            Some((c, o - micros(right)?))
        }
        _ => None,
    }
}

/// Read bounds on (right.time − left.time) off interval conditions in a join's ON;
/// returns (before, after) — right.time ∈ [left.time − before, left.time + after] — and
/// the conditions left over.
fn interval_bounds(
    filter: Option<&Expr>,
    left: (&str, &datafusion::common::DFSchemaRef),
    right: (&str, &datafusion::common::DFSchemaRef),
) -> Result<(Option<(i64, i64)>, Option<Expr>)> {
    use datafusion::logical_expr::utils::{conjunction, split_conjunction};
    use datafusion::logical_expr::{Between, BinaryExpr, Operator};
    let Some(f) = filter else {
        return Ok((None, None));
    };
    let is_time = |c: &datafusion::common::Column,
                   (name, schema): (&str, &datafusion::common::DFSchemaRef)| {
        c.name == name && schema.has_column(c)
    };
    // (right − left) as bounds from `a op b` with a = x + oa, b = y + ob.
    let mut lower: Option<i64> = None;
    let mut upper: Option<i64> = None;
    let mut rest = Vec::new();
    let mut bound = |a: &Expr, op: Operator, b: &Expr| -> bool {
        let (Some((ca, oa)), Some((cb, ob))) = (column_offset(a), column_offset(b)) else {
            return false;
        };
        // Normalise to (right - left) op' k.
        let (op, k) = if is_time(ca, right) && is_time(cb, left) {
            (op, ob - oa)
        } else if is_time(ca, left) && is_time(cb, right) {
            let flipped = match op {
                Operator::Lt => Operator::Gt,
                Operator::LtEq => Operator::GtEq,
                Operator::Gt => Operator::Lt,
                Operator::GtEq => Operator::LtEq,
                other => other,
            };
            (flipped, oa - ob)
        } else {
            return false;
        };
        match op {
            Operator::GtEq => lower = Some(lower.map_or(k, |l| l.max(k))),
            Operator::Gt => lower = Some(lower.map_or(k + 1, |l| l.max(k + 1))),
            Operator::LtEq => upper = Some(upper.map_or(k, |u| u.min(k))),
            Operator::Lt => upper = Some(upper.map_or(k - 1, |u| u.min(k - 1))),
            _ => return false,
        }
        true
    };
    for c in split_conjunction(f) {
        let used = match c {
            Expr::BinaryExpr(BinaryExpr {
                left: a,
                op,
                right: b,
            }) => bound(a, *op, b),
            Expr::Between(Between {
                expr,
                negated: false,
                low,
                high,
            }) => bound(expr, Operator::GtEq, low) && bound(expr, Operator::LtEq, high),
            _ => false,
        };
        if !used {
            rest.push(c.clone());
        }
    }
    match (lower, upper) {
        (Some(l), Some(u)) if l <= u => Ok((Some((-l, u)), conjunction(rest))),
        (Some(_), Some(_)) => Err(EddyError::query("22023", "the JOIN's time bounds leave no interval: the lower bound is above the upper")),
        (None, None) => Ok((None, conjunction(rest))),
        _ => Err(EddyError::unsupported(
            "a stream-stream JOIN needs both a lower and an upper bound between the two time columns",
        )),
    }
}

/// The one relation a join side reads, through projections, filters and aliases.
fn single_scan(plan: &LogicalPlan) -> Option<String> {
    match plan {
        LogicalPlan::TableScan(s) => Some(s.table_name.table().to_string()),
        LogicalPlan::Projection(p) => single_scan(&p.input),
        LogicalPlan::Filter(f) => single_scan(&f.input),
        LogicalPlan::SubqueryAlias(a) => single_scan(&a.input),
        _ => None,
    }
}

fn is_session_projection(p: &datafusion::logical_expr::Projection) -> bool {
    p.expr.iter().any(|e| {
        matches!(e, Expr::Alias(a) if matches!(a.expr.as_ref(), Expr::ScalarFunction(f) if f.func.name() == crate::sql::windows::SESSION_BOUND_FUNCTION))
            || matches!(e, Expr::ScalarFunction(f) if f.func.name() == crate::sql::windows::SESSION_BOUND_FUNCTION)
    })
}

fn unsupported_node(plan: &LogicalPlan) -> String {
    match plan {
        LogicalPlan::Join(_) => "JOIN in a continuous query is not supported yet".into(),
        LogicalPlan::Window(_) => "window functions (OVER) in a continuous query are not supported, except ROW_NUMBER(), RANK() and DENSE_RANK() bounded by a constant in WHERE (Top-N per group)".into(),
        LogicalPlan::Unnest(_) => "UNNEST in a continuous query is not supported".into(),
        LogicalPlan::RecursiveQuery(_) => "WITH RECURSIVE in a continuous query is not supported".into(),
        LogicalPlan::Subquery(_) => "subqueries in expressions in a continuous query are not supported yet".into(),
        other => format!("{} in a continuous query is not supported", other.display().to_string().split(':').next().unwrap_or("this plan node")),
    }
}

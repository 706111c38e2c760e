//! Aggregate: GROUP BY with any aggregate function, maintained under insertions and
//! retractions.
//!
//! Takes deltas, keeps per-group state, emits deltas. For every group g touched by Δin:
//! Δout = −old_row(g) + new_row(g), where old_row is what was last emitted for g (none if g
//! was empty) and new_row is computed from the updated state (none if g is now empty; the
//! group's state is then freed). Unchanged rows are not re-emitted.
//!
//! State per group: the row count (sum of weights) and one accumulator per aggregate.
//! COUNT/SUM/AVG keep running sums, updated by weight, so retraction is exact for integers
//! and decimals. MIN/MAX keep a value → count map ordered by the SQL order of the value
//! (Arrow's row format is order-preserving), so removing the current extreme finds the next
//! one. COUNT(DISTINCT) keeps a value → count map and counts its keys. Every other
//! aggregate (bool_and, stddev, string_agg, DISTINCT and ORDER BY forms, …) keeps the
//! group's rows as a multiset and recomputes the touched group with DataFusion's own
//! accumulator (general_agg.rs).
//! Without GROUP BY there is exactly one group, which always has a row (COUNT = 0 on empty
//! input), as in SQL.

use imbl::OrdMap;

// hashbrown with a fast non-cryptographic hasher: row keys are hashed once per row.
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Decimal128Array, Float64Array, Int64Array, RecordBatch,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::row::{RowConverter, Rows};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::scalar::ScalarValue;

use super::float_sum::FloatSum;
use super::general_agg::GeneralAgg;
use crate::core::batch::{row_converter_for, ChangeBatch};
use crate::dataflow::operator::{Ctx, Operator};
use crate::error::{EddyError, Result};
use crate::state::encoding::{NotByte, Reader, StateCodec, Writer};
use crate::state::table::{OrderedState, StateMap, StateTable};

/// Add weight `w` to value `v` in a value → multiplicity map (BTreeMap or HashMap),
/// dropping it at zero. Looks up by slice first: allocating a key per row is the hot path's
/// main cost.
macro_rules! bump {
    ($m:expr, $v:expr, $w:expr) => {{
        let (m, v, w) = ($m, $v, $w);
        match m.get_mut(v) {
            Some(c) => {
                *c += w;
                if *c == 0 {
                    m.remove(v);
                }
            }
            None => {
                m.insert(v.into(), w);
            }
        }
    }};
}

/// Which aggregate function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggKind {
    Count,
    CountDistinct,
    Sum,
    Avg,
    Min,
    Max,
    /// Any other DataFusion aggregate, recomputed from the group's stored rows
    /// (see general_agg.rs).
    General,
}

/// One aggregate of the operator, resolved at plan time.
pub struct AggSpec {
    pub kind: AggKind,
    pub arg: Arc<dyn PhysicalExpr>,
    pub arg_type: DataType,
    /// `agg(x) FILTER (WHERE cond)`.
    pub filter: Option<Arc<dyn PhysicalExpr>>,
    pub output_type: DataType,
    pub display: String,
    /// For [`AggKind::General`]: the DataFusion aggregate and what to store per row.
    pub general: Option<GeneralAgg>,
}

/// How a SUM/AVG accumulates: exactly for integers and decimals, in f64 for floats.
#[derive(Debug, Clone, Copy)]
enum SumDomain {
    Int,
    Float,
    Decimal { scale: i8 },
}

impl SumDomain {
    fn of(arg: &DataType) -> Result<Self> {
        Ok(match arg {
            t if t.is_integer() => SumDomain::Int,
            DataType::Float16 | DataType::Float32 | DataType::Float64 => SumDomain::Float,
            DataType::Decimal128(_, s) | DataType::Decimal256(_, s) => {
                SumDomain::Decimal { scale: *s }
            }
            DataType::Null => SumDomain::Int,
            other => {
                return Err(EddyError::query(
                    "42883",
                    format!("SUM/AVG of a {other} value is not supported"),
                ))
            }
        })
    }

    fn accumulation_type(&self) -> DataType {
        match self {
            SumDomain::Int => DataType::Int64,
            SumDomain::Float => DataType::Float64,
            SumDomain::Decimal { scale } => DataType::Decimal128(38, *scale),
        }
    }
}

#[derive(Debug, Clone)]
enum Accumulator {
    Count(i64),
    Sum {
        int: i128,
        float: FloatSum,
        non_null: i64,
    },
    /// Value (row-encoded, order-preserving) → multiplicity. MIN/MAX.
    Ordered(OrdMap<Arc<[u8]>, i64>),
    /// MIN/MAX over an append-only input: nothing is ever retracted, so the extreme
    /// alone is the state.
    Extreme(Option<Vec<u8>>),
    /// Value → multiplicity. COUNT(DISTINCT).
    Distinct(imbl::HashMap<Arc<[u8]>, i64>),
    /// The group's rows (ORDER BY values and arguments, in order) → multiplicity.
    Rows(OrdMap<Arc<[u8]>, i64>),
}

#[derive(Clone)]
struct GroupState {
    key: Vec<ScalarValue>,
    weight: i64,
    accs: Vec<Accumulator>,
    emitted: Option<Vec<ScalarValue>>,
    touched: bool,
}

impl NotByte for Accumulator {}

impl StateCodec for Accumulator {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        match self {
            Accumulator::Count(n) => {
                w.u8(0).i64(*n);
            }
            Accumulator::Sum {
                int,
                float,
                non_null,
            } => {
                w.u8(1).i128(*int).i64(*non_null);
                float.encode(w)?;
            }
            Accumulator::Ordered(m) => {
                w.u8(2).u64(m.len() as u64);
                for (v, c) in m {
                    w.bytes(v).i64(*c);
                }
            }
            Accumulator::Extreme(v) => {
                w.u8(3);
                v.encode(w)?;
            }
            Accumulator::Distinct(m) => {
                w.u8(4).u64(m.len() as u64);
                for (v, c) in m {
                    w.bytes(v).i64(*c);
                }
            }
            Accumulator::Rows(m) => {
                w.u8(5).u64(m.len() as u64);
                for (v, c) in m {
                    w.bytes(v).i64(*c);
                }
            }
        }
        Ok(())
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(match r.u8()? {
            0 => Accumulator::Count(r.i64()?),
            1 => {
                let int = r.i128()?;
                let non_null = r.i64()?;
                Accumulator::Sum {
                    int,
                    float: FloatSum::decode(r)?,
                    non_null,
                }
            }
            2 => {
                let n = r.u64()?;
                let mut m = OrdMap::new();
                for _ in 0..n {
                    let v: Arc<[u8]> = r.vec()?.into();
                    m.insert(v, r.i64()?);
                }
                Accumulator::Ordered(m)
            }
            3 => Accumulator::Extreme(Option::<Vec<u8>>::decode(r)?),
            4 => {
                let n = r.u64()?;
                let mut m = imbl::HashMap::new();
                for _ in 0..n {
                    let v: Arc<[u8]> = r.vec()?.into();
                    m.insert(v, r.i64()?);
                }
                Accumulator::Distinct(m)
            }
            5 => {
                let n = r.u64()?;
                let mut m = OrdMap::new();
                for _ in 0..n {
                    let v: Arc<[u8]> = r.vec()?.into();
                    m.insert(v, r.i64()?);
                }
                Accumulator::Rows(m)
            }
            other => {
                return Err(EddyError::Storage(format!(
                    "checkpoint holds an unknown accumulator tag {other}"
                )))
            }
        })
    }
}

impl StateCodec for GroupState {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        self.key.encode(w)?;
        w.i64(self.weight);
        self.accs.encode(w)?;
        self.emitted.encode(w)
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(GroupState {
            key: Vec::<ScalarValue>::decode(r)?,
            weight: r.i64()?,
            accs: Vec::<Accumulator>::decode(r)?,
            emitted: Option::<Vec<ScalarValue>>::decode(r)?,
            touched: false,
        })
    }
}

/// Per-batch evaluated input of one aggregate.
struct AggInput {
    /// For SUM/AVG: the argument cast to its accumulation type.
    values: Option<ArrayRef>,
    /// For MIN/MAX/COUNT(DISTINCT): the argument row-encoded.
    rows: Option<Rows>,
    nulls: ArrayRef,
    filter: Option<BooleanArray>,
}

pub struct AggregateOp {
    group_exprs: Vec<Arc<dyn PhysicalExpr>>,
    aggs: Vec<AggSpec>,
    domains: Vec<Option<SumDomain>>,
    value_converters: Vec<Option<RowConverter>>,
    key_converter: RowConverter,
    schema: SchemaRef,
    groups: StateMap<GroupState>,
    window: Option<WindowClose>,
    /// The input only ever inserts (a stream): MIN/MAX keep just the extreme.
    append_only: bool,
}

/// Windowed aggregation: one group key is a window bound. Rows whose window has closed
/// (watermark ≥ window end + grace) are late: dropped and counted. When the watermark
/// closes a window its groups' state is freed; with EMIT FINAL that is also when their row
/// is emitted, once. With a retention, rows of closed windows are retracted from the view
/// once the watermark passes window end + retention.
pub struct WindowClose {
    /// Index of the window bound among the group keys, and whether it is the end.
    pub bound_key: usize,
    pub bound_is_end: bool,
    /// All in µs.
    pub size: i64,
    pub grace: i64,
    pub retention: Option<i64>,
    pub emit_final: bool,
    /// (window end, group key) of the groups of open windows (some may already be gone).
    by_end: OrderedState<(i64, Vec<u8>), ()>,
    /// (window end, group key) → row of a closed window still shown, to retract at
    /// retention.
    closed: OrderedState<(i64, Vec<u8>), Vec<ScalarValue>>,
}

impl WindowClose {
    pub fn new(
        bound_key: usize,
        bound_is_end: bool,
        size: i64,
        grace: i64,
        retention: Option<i64>,
        emit_final: bool,
    ) -> Self {
        WindowClose {
            bound_key,
            bound_is_end,
            size,
            grace,
            retention,
            emit_final,
            by_end: OrderedState::new("groups by window end"),
            closed: OrderedState::new("closed windows' rows"),
        }
    }

    /// Window ends (µs) of a column of window bounds.
    fn ends(&self, bounds: &ArrayRef) -> Result<Vec<Option<i64>>> {
        use datafusion::arrow::array::TimestampMicrosecondArray;
        use datafusion::arrow::datatypes::TimeUnit;
        let micros = cast(bounds, &DataType::Timestamp(TimeUnit::Microsecond, None))?;
        let micros = micros
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .ok_or_else(|| EddyError::internal("window bound is not a timestamp"))?;
        let shift = if self.bound_is_end { 0 } else { self.size };
        Ok(micros.iter().map(|v| v.map(|v| v + shift)).collect())
    }

    fn is_closed(&self, end: i64, watermark: i64) -> bool {
        end.saturating_add(self.grace) <= watermark
    }
}

impl AggregateOp {
    /// `schema` is the output: group columns, then one column per aggregate.
    pub fn try_new(
        group_exprs: Vec<Arc<dyn PhysicalExpr>>,
        group_types: Vec<DataType>,
        aggs: Vec<AggSpec>,
        schema: SchemaRef,
    ) -> Result<Self> {
        let mut domains = Vec::new();
        let mut value_converters = Vec::new();
        for a in &aggs {
            match a.kind {
                AggKind::Sum | AggKind::Avg => {
                    domains.push(Some(SumDomain::of(&a.arg_type)?));
                    value_converters.push(None);
                }
                AggKind::Min | AggKind::Max | AggKind::CountDistinct => {
                    domains.push(None);
                    value_converters.push(Some(row_converter_for(&[a.arg_type.clone()])?));
                }
                AggKind::Count | AggKind::General => {
                    domains.push(None);
                    value_converters.push(None);
                }
            }
            if (a.kind == AggKind::General) != a.general.is_some() {
                return Err(EddyError::internal(
                    "a general aggregate without its DataFusion aggregate",
                ));
            }
        }
        Ok(AggregateOp {
            key_converter: row_converter_for(&group_types)?,
            group_exprs,
            aggs,
            domains,
            value_converters,
            schema,
            groups: StateMap::new("groups"),
            window: None,
            append_only: false,
        })
    }

    /// Declare the input insert-only (checked: a retraction is an internal error).
    pub fn with_append_only_input(mut self, append_only: bool) -> Self {
        self.append_only = append_only;
        self
    }

    pub fn with_window(mut self, window: WindowClose) -> Self {
        self.window = Some(window);
        self
    }

    /// Drop rows of closed windows, counting them.
    fn drop_late(&mut self, batch: ChangeBatch, ctx: &mut Ctx) -> Result<ChangeBatch> {
        let Some(win) = self.window.as_ref() else {
            return Ok(batch);
        };
        let Some(watermark) = ctx.watermark() else {
            return Ok(batch);
        };
        if batch.is_empty() {
            return Ok(batch);
        }
        let bounds = self.group_exprs[win.bound_key]
            .evaluate(&batch.data)?
            .into_array(batch.len())?;
        let ends = win.ends(&bounds)?;
        let mut late = 0u64;
        let keep: BooleanArray = ends
            .iter()
            .zip(batch.weights.values())
            .map(|(e, w)| {
                let closed = e.map(|e| win.is_closed(e, watermark)).unwrap_or(false);
                if closed {
                    late += w.unsigned_abs();
                }
                Some(!closed)
            })
            .collect();
        if late == 0 {
            return Ok(batch);
        }
        ctx.count_late(late);
        batch.filter(&keep)
    }

    fn is_global(&self) -> bool {
        self.group_exprs.is_empty()
    }

    fn new_accumulators(&self) -> Vec<Accumulator> {
        self.aggs
            .iter()
            .map(|a| match a.kind {
                AggKind::Count => Accumulator::Count(0),
                AggKind::Sum | AggKind::Avg => Accumulator::Sum {
                    int: 0,
                    float: FloatSum::default(),
                    non_null: 0,
                },
                AggKind::Min | AggKind::Max if self.append_only => Accumulator::Extreme(None),
                AggKind::Min | AggKind::Max => Accumulator::Ordered(OrdMap::new()),
                AggKind::CountDistinct => Accumulator::Distinct(imbl::HashMap::new()),
                AggKind::General => Accumulator::Rows(OrdMap::new()),
            })
            .collect()
    }

    fn evaluate_inputs(&self, batch: &RecordBatch) -> Result<Vec<AggInput>> {
        let n = batch.num_rows();
        self.aggs
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let arg = a.arg.evaluate(batch)?.into_array(n)?;
                let filter = match &a.filter {
                    Some(f) => {
                        let m = f.evaluate(batch)?.into_array(n)?;
                        let m = m
                            .as_any()
                            .downcast_ref::<BooleanArray>()
                            .ok_or_else(|| EddyError::internal("FILTER is not boolean"))?
                            .clone();
                        Some(m)
                    }
                    None => None,
                };
                let values = match self.domains[i] {
                    Some(d) => Some(cast(&arg, &d.accumulation_type())?),
                    None => None,
                };
                let rows = match (&self.value_converters[i], &a.general) {
                    (Some(c), _) => Some(c.convert_columns(&[arg.clone()])?),
                    (None, Some(g)) => Some(g.rows(batch)?),
                    (None, None) => None,
                };
                Ok(AggInput {
                    values,
                    rows,
                    nulls: arg,
                    filter,
                })
            })
            .collect()
    }

    fn output_row(&self, g: &GroupState) -> Result<Vec<ScalarValue>> {
        let mut row = g.key.clone();
        for (i, (a, acc)) in self.aggs.iter().zip(&g.accs).enumerate() {
            let v = match (a.kind, acc) {
                (AggKind::Count, Accumulator::Count(n)) => ScalarValue::Int64(Some(*n)),
                (AggKind::CountDistinct, Accumulator::Distinct(m)) => {
                    ScalarValue::Int64(Some(m.len() as i64))
                }
                (
                    AggKind::Sum,
                    Accumulator::Sum {
                        int,
                        float,
                        non_null,
                    },
                ) => {
                    if *non_null == 0 {
                        ScalarValue::try_from(&a.output_type)?
                    } else {
                        sum_value(self.domains[i], *int, float.value(), &a.output_type)?
                    }
                }
                (
                    AggKind::Avg,
                    Accumulator::Sum {
                        int,
                        float,
                        non_null,
                    },
                ) => {
                    if *non_null == 0 {
                        ScalarValue::try_from(&a.output_type)?
                    } else {
                        avg_value(
                            self.domains[i],
                            *int,
                            float.value(),
                            *non_null,
                            &a.output_type,
                        )?
                    }
                }
                (AggKind::Min, Accumulator::Ordered(m)) => {
                    self.decode_value(i, m.keys().next().map(|k| &k[..]), &a.output_type)?
                }
                (AggKind::Max, Accumulator::Ordered(m)) => {
                    self.decode_value(i, m.keys().next_back().map(|k| &k[..]), &a.output_type)?
                }
                (AggKind::Min | AggKind::Max, Accumulator::Extreme(v)) => {
                    self.decode_value(i, v.as_deref(), &a.output_type)?
                }
                (AggKind::General, Accumulator::Rows(m)) => a
                    .general
                    .as_ref()
                    .ok_or_else(|| EddyError::internal("a general aggregate without its plan"))?
                    .evaluate(m)?,
                _ => {
                    return Err(EddyError::internal(
                        "aggregate state does not match its kind",
                    ))
                }
            };
            let v = if v.data_type() == a.output_type {
                v
            } else {
                v.cast_to(&a.output_type)?
            };
            row.push(v);
        }
        Ok(row)
    }

    fn decode_value(&self, i: usize, bytes: Option<&[u8]>, ty: &DataType) -> Result<ScalarValue> {
        let Some(bytes) = bytes else {
            return Ok(ScalarValue::try_from(ty)?);
        };
        let converter = self.value_converters[i]
            .as_ref()
            .ok_or_else(|| EddyError::internal("MIN/MAX without a value converter"))?;
        let parser = converter.parser();
        let arrays = converter.convert_rows([parser.parse(bytes)])?;
        Ok(ScalarValue::try_from_array(&arrays[0], 0)?)
    }

    fn build_output(&self, rows: Vec<(i64, Vec<ScalarValue>)>) -> Result<ChangeBatch> {
        if rows.is_empty() {
            return Ok(ChangeBatch::empty(self.schema.clone()));
        }
        let ncols = self.schema.fields().len();
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(ncols);
        for c in 0..ncols {
            let values = rows.iter().map(|(_, r)| r[c].clone());
            let array = ScalarValue::iter_to_array(values)?;
            let target = self.schema.field(c).data_type();
            let array = if array.data_type() == target {
                array
            } else {
                cast(&array, target)?
            };
            columns.push(array);
        }
        let weights = Int64Array::from(rows.iter().map(|(w, _)| *w).collect::<Vec<_>>());
        Ok(ChangeBatch::new(
            RecordBatch::try_new(self.schema.clone(), columns)?,
            weights,
        ))
    }
}

fn sum_value(
    domain: Option<SumDomain>,
    int: i128,
    float: f64,
    ty: &DataType,
) -> Result<ScalarValue> {
    Ok(match domain {
        Some(SumDomain::Float) => ScalarValue::Float64(Some(float)),
        Some(SumDomain::Decimal { scale }) => match ty {
            DataType::Decimal128(p, s) => ScalarValue::Decimal128(Some(int), *p, *s),
            _ => ScalarValue::Decimal128(Some(int), 38, scale),
        },
        _ => {
            let v = i64::try_from(int).map_err(|_| EddyError::BadValue {
                code: "22003",
                message: "bigint out of range in SUM".into(),
            })?;
            ScalarValue::Int64(Some(v))
        }
    })
}

fn avg_value(
    domain: Option<SumDomain>,
    int: i128,
    float: f64,
    count: i64,
    ty: &DataType,
) -> Result<ScalarValue> {
    Ok(match (domain, ty) {
        (Some(SumDomain::Decimal { scale }), DataType::Decimal128(p, s)) => {
            // Same arithmetic as DataFusion's DecimalAverager: rescale, then truncate.
            let shift = (*s as i32 - scale as i32).max(0) as u32;
            let scaled = int
                .checked_mul(10i128.pow(shift))
                .ok_or_else(|| EddyError::BadValue {
                    code: "22003",
                    message: "numeric overflow in AVG".into(),
                })?;
            ScalarValue::Decimal128(Some(scaled / count as i128), *p, *s)
        }
        (Some(SumDomain::Float), _) => ScalarValue::Float64(Some(float / count as f64)),
        _ => ScalarValue::Float64(Some(int as f64 / count as f64)),
    })
}

fn arg_at(values: &ArrayRef, domain: SumDomain, i: usize) -> (i128, f64) {
    match domain {
        SumDomain::Int => {
            let a = values
                .as_any()
                .downcast_ref::<Int64Array>()
                .expect("cast to Int64");
            (a.value(i) as i128, 0.0)
        }
        SumDomain::Float => {
            let a = values
                .as_any()
                .downcast_ref::<Float64Array>()
                .expect("cast to Float64");
            (0, a.value(i))
        }
        SumDomain::Decimal { .. } => {
            let a = values
                .as_any()
                .downcast_ref::<Decimal128Array>()
                .expect("cast to Decimal128");
            (a.value(i), 0.0)
        }
    }
}

impl Operator for AggregateOp {
    fn process(&mut self, _input: usize, batch: ChangeBatch, ctx: &mut Ctx) -> Result<ChangeBatch> {
        let batch = self.drop_late(batch, ctx)?;
        let n = batch.len();
        let keys: Vec<ArrayRef> = self
            .group_exprs
            .iter()
            .map(|e| e.evaluate(&batch.data).and_then(|v| v.into_array(n)))
            .collect::<datafusion::error::Result<_>>()?;
        // Without GROUP BY every row belongs to the one group with the empty key (the row
        // converter has no columns to encode, so it is not asked).
        let key_rows = if self.is_global() {
            None
        } else {
            Some(self.key_converter.convert_columns(&keys)?)
        };
        let inputs = self.evaluate_inputs(&batch.data)?;
        let mut touched: Vec<Vec<u8>> = Vec::new();

        if self.is_global() {
            // The single group always exists, so empty input still yields its row.
            let g = match self.groups.get_mut(&[]) {
                Some(g) => g,
                None => {
                    let fresh = self.new_accumulators();
                    self.groups.insert(
                        Vec::new(),
                        GroupState {
                            key: vec![],
                            weight: 0,
                            accs: fresh,
                            emitted: None,
                            touched: false,
                        },
                    )
                }
            };
            g.touched = true;
            touched.push(Vec::new());
        }

        for i in 0..n {
            let w = batch.weights.value(i);
            let key: &[u8] = match &key_rows {
                Some(rows) => rows.row(i).data(),
                None => &[],
            };
            let g = match self.groups.get_mut(key) {
                Some(g) => g,
                None => {
                    let key_values = keys
                        .iter()
                        .map(|k| ScalarValue::try_from_array(k, i))
                        .collect::<datafusion::error::Result<Vec<_>>>()?;
                    let accs = self.new_accumulators();
                    if let Some(win) = self.window.as_mut() {
                        let ends = win.ends(&keys[win.bound_key].slice(i, 1))?;
                        if let Some(end) = ends[0] {
                            win.by_end.insert((end, key.to_vec()), ());
                        }
                    }
                    self.groups.insert(
                        key.to_vec(),
                        GroupState {
                            key: key_values,
                            weight: 0,
                            accs,
                            emitted: None,
                            touched: false,
                        },
                    )
                }
            };
            if !g.touched {
                g.touched = true;
                touched.push(key.to_vec());
            }
            g.weight += w;
            for (a, (acc, input)) in g.accs.iter_mut().zip(&inputs).enumerate() {
                if input.nulls.is_null(i) {
                    continue;
                }
                if let Some(f) = &input.filter {
                    if !f.is_valid(i) || !f.value(i) {
                        continue;
                    }
                }
                match acc {
                    Accumulator::Count(c) => *c += w,
                    Accumulator::Sum {
                        int,
                        float,
                        non_null,
                    } => {
                        let domain = self.domains[a].expect("SUM/AVG has a domain");
                        let values = input.values.as_ref().expect("SUM/AVG has values");
                        let (iv, fv) = arg_at(values, domain, i);
                        *int += iv * w as i128;
                        if matches!(domain, SumDomain::Float) {
                            float.add(fv, w);
                        }
                        *non_null += w;
                    }
                    Accumulator::Ordered(m) => {
                        let v = input.rows.as_ref().expect("MIN/MAX has rows").row(i);
                        bump!(m, v.as_ref(), w);
                    }
                    Accumulator::Extreme(best) => {
                        if w < 0 {
                            return Err(EddyError::internal(
                                "retraction reached an append-only MIN/MAX",
                            ));
                        }
                        let v = input.rows.as_ref().expect("MIN/MAX has rows").row(i);
                        let v = v.as_ref();
                        let is_max = self.aggs[a].kind == AggKind::Max;
                        let better = match best {
                            None => true,
                            Some(b) => {
                                if is_max {
                                    v > b.as_slice()
                                } else {
                                    v < b.as_slice()
                                }
                            }
                        };
                        if better {
                            *best = Some(v.to_vec());
                        }
                    }
                    Accumulator::Distinct(m) => {
                        let v = input.rows.as_ref().expect("DISTINCT has rows").row(i);
                        bump!(m, v.as_ref(), w);
                    }
                    Accumulator::Rows(m) => {
                        let v = input
                            .rows
                            .as_ref()
                            .expect("a general aggregate has rows")
                            .row(i);
                        bump!(m, v.as_ref(), w);
                    }
                }
            }
        }

        let global = self.is_global();
        // EMIT FINAL: rows appear only when their window closes (on_watermark).
        let hold = self.window.as_ref().map(|w| w.emit_final).unwrap_or(false);
        let mut out: Vec<(i64, Vec<ScalarValue>)> = Vec::new();
        for key in touched {
            let Some(g) = self.groups.get(&key) else {
                continue;
            };
            if g.weight < 0 {
                return Err(EddyError::internal(
                    "aggregate group retracted below zero rows: input retracted a row it never inserted",
                ));
            }
            let new_row = if g.weight > 0 || global {
                Some(self.output_row(g)?)
            } else {
                None
            };
            let old_row = g.emitted.clone();
            if new_row != old_row && !hold {
                if let Some(old) = old_row {
                    out.push((-1, old));
                }
                if let Some(new) = &new_row {
                    out.push((1, new.clone()));
                }
            }
            if new_row.is_none() {
                self.groups.remove(&key);
            } else if let Some(g) = self.groups.get_mut(&key) {
                g.emitted = new_row;
                g.touched = false;
            }
        }
        self.build_output(out)
    }

    fn describe(&self) -> String {
        let aggs: Vec<&str> = self.aggs.iter().map(|a| a.display.as_str()).collect();
        let keys: Vec<String> = self.group_exprs.iter().map(|e| e.to_string()).collect();
        let window = match &self.window {
            Some(w) => format!(
                " window: close at end + grace {}s{}{}",
                w.grace as f64 / 1e6,
                w.retention
                    .map(|r| format!(", retention {}s", r as f64 / 1e6))
                    .unwrap_or_default(),
                if w.emit_final {
                    ", EMIT FINAL"
                } else {
                    ", EMIT CHANGES"
                }
            ),
            None => String::new(),
        };
        format!(
            "Aggregate: group by [{}], aggregates [{}]{window}",
            keys.join(", "),
            aggs.join(", ")
        )
    }

    fn state_rows(&self) -> usize {
        self.groups.len() + self.window.as_ref().map(|w| w.closed.len()).unwrap_or(0)
    }

    fn state_tables(&mut self) -> Vec<&mut dyn StateTable> {
        let mut tables: Vec<&mut dyn StateTable> = vec![&mut self.groups];
        if let Some(w) = self.window.as_mut() {
            tables.push(&mut w.by_end);
            tables.push(&mut w.closed);
        }
        tables
    }

    fn on_watermark(&mut self, watermark: i64, _ctx: &mut Ctx) -> Result<Option<ChangeBatch>> {
        let Some(win) = self.window.as_mut() else {
            return Ok(None);
        };
        let mut out: Vec<(i64, Vec<ScalarValue>)> = Vec::new();
        // Close windows whose end + grace has passed: free their state.
        let cutoff = watermark.saturating_sub(win.grace);
        let closing = win
            .by_end
            .drain_below(&(cutoff.saturating_add(1), Vec::new()));
        let (emit_final, retention) = (win.emit_final, win.retention);
        let mut keep: Vec<((i64, Vec<u8>), Vec<ScalarValue>)> = Vec::new();
        for ((end, key), ()) in closing {
            let Some(g) = self.groups.remove(&key) else {
                continue;
            };
            if g.weight <= 0 {
                continue;
            }
            let row = if emit_final {
                let row = self.output_row(&g)?;
                out.push((1, row.clone()));
                row
            } else {
                match g.emitted {
                    Some(r) => r,
                    None => continue,
                }
            };
            if retention.is_some() {
                keep.push(((end, key), row));
            }
        }
        let win = self.window.as_mut().expect("windowed");
        for (at, row) in keep {
            win.closed.insert(at, row);
        }
        // Retract rows of windows past their retention.
        if let Some(r) = retention {
            let cutoff = watermark.saturating_sub(r);
            let expired = win
                .closed
                .drain_below(&(cutoff.saturating_add(1), Vec::new()));
            out.extend(expired.into_iter().map(|(_, row)| (-1, row)));
        }
        if out.is_empty() {
            return Ok(None);
        }
        Ok(Some(self.build_output(out)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::batch::tests_support::render;
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::physical_expr::expressions::{col, lit};

    /// One committed epoch of one batch.
    fn step(agg: &mut AggregateOp, input: usize, batch: ChangeBatch) -> Result<ChangeBatch> {
        let out = agg.process(input, batch, &mut Ctx::default())?;
        for t in agg.state_tables() {
            t.commit();
        }
        Ok(out)
    }

    fn input_schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("k", DataType::Utf8, true),
            Field::new("v", DataType::Int64, true),
        ]))
    }

    fn op(kinds: &[AggKind], grouped: bool) -> AggregateOp {
        let s = input_schema();
        let mut fields = vec![];
        let group_exprs = if grouped {
            fields.push(Field::new("k", DataType::Utf8, true));
            vec![col("k", &s).unwrap()]
        } else {
            vec![]
        };
        let aggs = kinds
            .iter()
            .map(|k| {
                let output_type = match k {
                    AggKind::Avg => DataType::Float64,
                    _ => DataType::Int64,
                };
                fields.push(Field::new(format!("{k:?}"), output_type.clone(), true));
                AggSpec {
                    kind: *k,
                    arg: if *k == AggKind::Count {
                        lit(1i64)
                    } else {
                        col("v", &s).unwrap()
                    },
                    arg_type: DataType::Int64,
                    filter: None,
                    output_type,
                    display: format!("{k:?}"),
                    general: None,
                }
            })
            .collect();
        let group_types = if grouped {
            vec![DataType::Utf8]
        } else {
            vec![]
        };
        AggregateOp::try_new(
            group_exprs,
            group_types,
            aggs,
            Arc::new(Schema::new(fields)),
        )
        .unwrap()
    }

    #[test]
    fn max_falls_back_to_next_value_when_extreme_is_retracted() {
        let mut agg = op(&[AggKind::Max, AggKind::Min], true);
        let out = step(
            &mut agg,
            0,
            crate::changes!(input_schema(); 1 => ["a", 5i64], 1 => ["a", 9i64], 1 => ["a", 1i64]),
        )
        .unwrap();
        assert_eq!(render(&out), vec!["+1 a|9|1"]);
        let out = step(
            &mut agg,
            0,
            crate::changes!(input_schema(); -1 => ["a", 9i64]),
        )
        .unwrap();
        assert_eq!(render(&out), vec!["+1 a|5|1", "-1 a|9|1"]);
    }

    #[test]
    fn group_disappears_and_state_is_freed_when_last_row_is_retracted() {
        let mut agg = op(&[AggKind::Count, AggKind::Sum], true);
        step(
            &mut agg,
            0,
            crate::changes!(input_schema(); 1 => ["a", 2i64], 1 => ["b", 3i64]),
        )
        .unwrap();
        let out = step(
            &mut agg,
            0,
            crate::changes!(input_schema(); -1 => ["a", 2i64]),
        )
        .unwrap();
        assert_eq!(render(&out), vec!["-1 a|1|2"]);
        assert_eq!(agg.state_rows(), 1);
    }

    #[test]
    fn global_aggregate_has_a_row_on_empty_input() {
        let mut agg = op(&[AggKind::Count, AggKind::Sum, AggKind::Avg], false);
        let out = step(&mut agg, 0, ChangeBatch::empty(input_schema())).unwrap();
        assert_eq!(render(&out), vec!["+1 0|NULL|NULL"]);
        let out = step(
            &mut agg,
            0,
            crate::changes!(input_schema(); 1 => ["a", 4i64], 1 => ["a", 2i64]),
        )
        .unwrap();
        assert_eq!(render(&out), vec!["+1 2|6|3", "-1 0|NULL|NULL"]);
    }

    #[test]
    fn count_distinct_counts_values_with_positive_multiplicity() {
        let mut agg = op(&[AggKind::CountDistinct], true);
        let out = step(
            &mut agg,
            0,
            crate::changes!(input_schema(); 1 => ["a", 1i64], 1 => ["a", 1i64], 1 => ["a", 2i64]),
        )
        .unwrap();
        assert_eq!(render(&out), vec!["+1 a|2"]);
        let out = step(
            &mut agg,
            0,
            crate::changes!(input_schema(); -1 => ["a", 1i64]),
        )
        .unwrap();
        assert!(out.is_empty(), "one copy of 1 is left: still 2 distinct");
        let out = step(
            &mut agg,
            0,
            crate::changes!(input_schema(); -1 => ["a", 1i64]),
        )
        .unwrap();
        assert_eq!(render(&out), vec!["+1 a|1", "-1 a|2"]);
    }

    mod differential {
        //! The operator alone against DataFusion from scratch: random inserts and
        //! retracts in random batches, each epoch committed or aborted at random; after
        //! every epoch the committed output equals the batch GROUP BY over the rows of the
        //! committed epochs.
        use super::*;
        use crate::core::batch::tests_support::{build, datafusion_rows, Accumulated};
        use proptest::prelude::*;

        const KINDS: [AggKind; 6] = [
            AggKind::Count,
            AggKind::Sum,
            AggKind::Min,
            AggKind::Max,
            AggKind::CountDistinct,
            AggKind::Avg,
        ];
        const ORACLE: &str = "SELECT k, count(*), sum(v), min(v), max(v), count(DISTINCT v), avg(v) FROM t GROUP BY k";

        /// One epoch: rows as (key, value, retract an existing row instead), and whether
        /// the epoch aborts.
        fn epochs() -> impl Strategy<Value = Vec<(Vec<(u8, Option<i64>, bool)>, bool)>> {
            let row = (
                0u8..4,
                proptest::option::weighted(0.9, -3i64..6),
                any::<bool>(),
            );
            proptest::collection::vec(
                (
                    proptest::collection::vec(row, 0..7),
                    proptest::bool::weighted(0.3),
                ),
                1..10,
            )
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(40))]
            #[test]
            fn equals_datafusion_after_every_epoch(epochs in epochs()) {
                let mut agg = op(&KINDS, true);
                let mut view = Accumulated::default();
                let mut committed: Vec<(u8, Option<i64>)> = Vec::new();
                for (rows, abort) in epochs {
                    let mut live = committed.clone();
                    let mut delta = Vec::new();
                    for (k, v, retract) in rows {
                        let key = ["a", "b", "c", "d"][k as usize];
                        if retract {
                            if let Some(p) = live.iter().position(|r| r.0 == k) {
                                let (rk, rv) = live.remove(p);
                                delta.push((-1, vec![ScalarValue::from(["a", "b", "c", "d"][rk as usize]), ScalarValue::Int64(rv)]));
                            }
                        } else {
                            live.push((k, v));
                            delta.push((1, vec![ScalarValue::from(key), ScalarValue::Int64(v)]));
                        }
                    }
                    let out = agg.process(0, build(input_schema(), delta), &mut Ctx::default());
                    if abort {
                        for t in agg.state_tables() { t.abort(); }
                    } else {
                        let out = out.expect("valid input");
                        for t in agg.state_tables() { t.commit(); }
                        view.apply(&out);
                        committed = live;
                    }
                    let table = build(
                        input_schema(),
                        committed
                            .iter()
                            .map(|(k, v)| (1, vec![ScalarValue::from(["a", "b", "c", "d"][*k as usize]), ScalarValue::Int64(*v)]))
                            .collect(),
                    );
                    let expected = datafusion_rows(vec![("t", table.data)], ORACLE);
                    prop_assert_eq!(view.rows(), expected);
                }
            }
        }
    }
}

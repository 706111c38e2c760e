//! Every scalar function of a session behind a panic guard. Some kernels panic on
//! arguments they do not expect (`lpad(s, 9223372036854775807, p)` allocates and dies with
//! "capacity overflow"); a function is called on user data, at planning (constant folding)
//! as well as inside a running view, so its panic must become an error bound to that
//! call: a statement error for a query or an INSERT, a bad record for a Kafka source.
//! The invariant: with [`guard_all`] applied, no scalar function call unwinds.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::config::ConfigOptions;
use datafusion::common::{DataFusionError, ExprSchema, Result, ScalarValue};
use datafusion::execution::session_state::SessionState;
use datafusion::logical_expr::interval_arithmetic::Interval;
use datafusion::logical_expr::preimage::PreimageResult;
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::sort_properties::{ExprProperties, SortProperties};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, Expr, ExpressionPlacement, ReturnFieldArgs, ScalarFunctionArgs,
    ScalarUDF, ScalarUDFImpl, Signature, StructFieldMapping,
};

/// The message of a caught panic.
pub fn panic_message(p: &(dyn Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

fn user_error(code: &'static str, message: String) -> DataFusionError {
    DataFusionError::External(Box::new(crate::error::EddyError::BadValue {
        code,
        message,
    }))
}

/// Run `f`, turning a panic into an error that names the function (SQLSTATE 22023:
/// the arguments were out of what the function handles).
fn guarded<T>(name: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|p| {
        Err(user_error(
            "22023",
            format!(
                "function {name} failed on its arguments: {}",
                panic_message(p.as_ref())
            ),
        ))
    })
}

/// The longest text a function may build, in bytes: Postgres' limit for one value (1 GB).
/// A longer result would not fit a row anyway; asking for it must not take the memory
/// of the server (an allocation failure aborts the process, it does not unwind).
pub const MAX_RESULT_BYTES: i64 = 1 << 30;

/// Functions whose result length is an argument: (name, position of the length, whether
/// the length multiplies the first argument's own length, as `repeat` does).
const LENGTH_ARGUMENTS: &[(&str, usize, bool)] = &[
    ("lpad", 1, false),
    ("rpad", 1, false),
    ("repeat", 1, true),
    ("array_repeat", 1, true),
    ("array_resize", 1, false),
];

/// Refuse a call whose result would exceed [`MAX_RESULT_BYTES`] (SQLSTATE 54000, as
/// Postgres' "requested length too large").
fn check_result_size(name: &str, args: &[ColumnarValue]) -> Result<()> {
    use datafusion::arrow::array::Array;
    let too_large = || {
        Err(user_error(
            "54000",
            format!("{name}: requested length too large (the limit is 1 GB)"),
        ))
    };
    if matches!(name, "range" | "generate_series") {
        // (stop), (start, stop) or (start, stop, step) integers: the element count.
        let ints: Vec<Option<datafusion::arrow::array::ArrayRef>> = args
            .iter()
            .map(|a| {
                let a = a.clone().into_array(1).ok()?;
                a.data_type()
                    .is_integer()
                    .then(|| datafusion::arrow::compute::cast(&a, &DataType::Int64).ok())
                    .flatten()
            })
            .collect();
        if ints.is_empty() || ints.iter().any(Option::is_none) {
            return Ok(());
        }
        let ints: Vec<datafusion::arrow::array::ArrayRef> = ints.into_iter().flatten().collect();
        let ints: Vec<&datafusion::arrow::array::Int64Array> = ints
            .iter()
            .filter_map(|a| a.as_any().downcast_ref())
            .collect();
        let rows = ints.iter().map(|a| a.len()).max().unwrap_or(0);
        let at = |a: &datafusion::arrow::array::Int64Array, i: usize| -> Option<i64> {
            let i = if a.len() == 1 { 0 } else { i };
            a.is_valid(i).then(|| a.value(i))
        };
        for i in 0..rows {
            let (start, stop, step) = match ints.len() {
                1 => (Some(0), at(ints[0], i), Some(1)),
                2 => (at(ints[0], i), at(ints[1], i), Some(1)),
                _ => (at(ints[0], i), at(ints[1], i), at(ints[2], i)),
            };
            if let (Some(a), Some(b), Some(st)) = (start, stop, step) {
                let span = (b as i128 - a as i128).unsigned_abs();
                let step = (st as i128).unsigned_abs().max(1);
                if span / step * 8 > MAX_RESULT_BYTES as u128 {
                    return too_large();
                }
            }
        }
        return Ok(());
    }
    let Some((_, at, times_text)) = LENGTH_ARGUMENTS.iter().find(|(n, ..)| *n == name) else {
        return Ok(());
    };
    let Some(len_arg) = args.get(*at) else {
        return Ok(());
    };
    let max_of = |c: &ColumnarValue| -> Option<i64> {
        let array = c.clone().into_array(1).ok()?;
        let ints = datafusion::arrow::compute::cast(&array, &DataType::Int64).ok()?;
        let ints = ints
            .as_any()
            .downcast_ref::<datafusion::arrow::array::Int64Array>()?;
        (0..ints.len())
            .filter(|i| ints.is_valid(*i))
            .map(|i| ints.value(i))
            .max()
    };
    let Some(n) = max_of(len_arg) else {
        return Ok(());
    };
    let text = if *times_text {
        args.first()
            .and_then(|c| c.clone().into_array(1).ok())
            .and_then(|a| {
                let lens = datafusion::arrow::compute::kernels::length::length(&a).ok()?;
                max_of(&ColumnarValue::Array(lens))
            })
            // Not text (array_repeat of a number): an element is up to 8 bytes.
            .unwrap_or(8)
            .max(1)
    } else {
        4 // a character is up to 4 bytes
    };
    if n.saturating_mul(text) > MAX_RESULT_BYTES {
        return too_large();
    }
    Ok(())
}

/// A scalar function whose evaluation cannot unwind.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct PanicSafe {
    inner: ScalarUDF,
    /// The inner function's aliases less those that are another function's name.
    aliases: Vec<String>,
}

impl PanicSafe {
    pub fn wrap(udf: &ScalarUDF, aliases: Vec<String>) -> ScalarUDF {
        let inner = match udf.inner().downcast_ref::<PanicSafe>() {
            Some(p) => p.inner.clone(),
            None => udf.clone(),
        };
        ScalarUDF::new_from_impl(PanicSafe { inner, aliases })
    }
}

/// Wrap every scalar function registered in `state`. A function's own name wins over
/// another's alias (eddy's `instr` over DataFusion's `strpos` alias `instr`): the alias
/// is dropped, since a session rebuilt from this state re-registers every function with
/// its aliases in hash order, and the alias would otherwise take the name back at random.
pub fn guard_all(mut state: SessionState) -> SessionState {
    use datafusion::execution::FunctionRegistry;
    let functions: Vec<Arc<ScalarUDF>> = state
        .scalar_functions()
        .iter()
        .filter(|(key, f)| *key == f.name())
        .map(|(_, f)| f.clone())
        .collect();
    let names: std::collections::HashSet<String> =
        functions.iter().map(|f| f.name().to_string()).collect();
    for f in functions {
        let aliases = f
            .aliases()
            .iter()
            .filter(|a| !names.contains(*a))
            .cloned()
            .collect();
        let _ = state.register_udf(Arc::new(PanicSafe::wrap(&f, aliases)));
    }
    state
}

impl ScalarUDFImpl for PanicSafe {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn display_name(&self, args: &[Expr]) -> Result<String> {
        #[allow(deprecated)]
        let name = self.inner.inner().display_name(args);
        name
    }
    fn schema_name(&self, args: &[Expr]) -> Result<String> {
        self.inner.inner().schema_name(args)
    }
    fn signature(&self) -> &Signature {
        self.inner.inner().signature()
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.inner().return_type(arg_types)
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.inner.inner().return_field_from_args(args)
    }
    fn is_nullable(&self, args: &[Expr], schema: &dyn ExprSchema) -> bool {
        #[allow(deprecated)]
        let nullable = self.inner.inner().is_nullable(args, schema);
        nullable
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        check_result_size(self.inner.name(), &args.args)?;
        guarded(self.inner.name(), || {
            self.inner.inner().invoke_with_args(args)
        })
    }
    fn aliases(&self) -> &[String] {
        &self.aliases
    }
    fn is_strict(&self) -> bool {
        self.inner.inner().is_strict()
    }
    fn with_updated_config(&self, config: &ConfigOptions) -> Option<ScalarUDF> {
        self.inner
            .inner()
            .with_updated_config(config)
            .map(|f| PanicSafe::wrap(&f, self.aliases.clone()))
    }
    fn simplify(&self, args: Vec<Expr>, info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        guarded(self.inner.name(), || {
            self.inner.inner().simplify(args, info)
        })
    }
    fn preimage(
        &self,
        args: &[Expr],
        lit_expr: &Expr,
        info: &SimplifyContext,
    ) -> Result<PreimageResult> {
        self.inner.inner().preimage(args, lit_expr, info)
    }
    fn conditional_arguments<'a>(
        &self,
        args: &'a [Expr],
    ) -> Option<(Vec<&'a Expr>, Vec<&'a Expr>)> {
        self.inner.inner().conditional_arguments(args)
    }
    fn struct_field_mapping(
        &self,
        literal_args: &[Option<ScalarValue>],
    ) -> Option<StructFieldMapping> {
        self.inner.inner().struct_field_mapping(literal_args)
    }
    fn strictly_order_preserving(&self, inputs: &[ExprProperties]) -> Result<bool> {
        self.inner.inner().strictly_order_preserving(inputs)
    }
    fn placement(&self, args: &[ExpressionPlacement]) -> ExpressionPlacement {
        self.inner.inner().placement(args)
    }
    fn short_circuits(&self) -> bool {
        self.inner.inner().short_circuits()
    }
    fn evaluate_bounds(&self, input: &[&Interval]) -> Result<Interval> {
        self.inner.inner().evaluate_bounds(input)
    }
    fn propagate_constraints(
        &self,
        interval: &Interval,
        inputs: &[&Interval],
    ) -> Result<Option<Vec<Interval>>> {
        self.inner.inner().propagate_constraints(interval, inputs)
    }
    fn output_ordering(&self, inputs: &[ExprProperties]) -> Result<SortProperties> {
        self.inner.inner().output_ordering(inputs)
    }
    fn preserves_lex_ordering(&self, inputs: &[ExprProperties]) -> Result<bool> {
        self.inner.inner().preserves_lex_ordering(inputs)
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.inner().coerce_types(arg_types)
    }
    fn documentation(&self) -> Option<&Documentation> {
        self.inner.inner().documentation()
    }
}

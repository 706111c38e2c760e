//! Checked arithmetic, vectorized: integer `+ - *` raise 22003 on overflow (Postgres'
//! int2/int4/int8 operators) and float `/` raises 22012 on a zero divisor and 22003 when a
//! finite quotient overflows (float8div / float4div). Both run on whole Arrow arrays with
//! arrow's checked kernels — these operators are on ingest and view-maintenance paths, so
//! they must not go row by row. The invariant: the value is the kernel's, or the statement
//! fails with the SQLSTATE Postgres gives.

use std::sync::{Arc, OnceLock};

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::kernels::numeric;
use datafusion::arrow::datatypes::{DataType, Float32Type, Float64Type};
use datafusion::arrow::error::ArrowError;
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};

use crate::error::EddyError;

fn user_error(code: &'static str, message: impl Into<String>) -> DataFusionError {
    DataFusionError::External(Box::new(EddyError::BadValue {
        code,
        message: message.into(),
    }))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CheckedOp {
    Add,
    Sub,
    Mul,
    /// Float division (integer division keeps DataFusion's operator).
    FloatDiv,
}

/// One checked operator as a scalar function of two arguments of one type.
#[derive(Debug, PartialEq, Eq, Hash)]
struct CheckedArith {
    name: &'static str,
    op: CheckedOp,
    signature: Signature,
}

fn type_name(t: &DataType) -> &'static str {
    match t {
        DataType::Int16 => "smallint",
        DataType::Int32 => "integer",
        DataType::Int64 => "bigint",
        DataType::Float32 => "real",
        _ => "double precision",
    }
}

/// Both arguments as arrays of `n` rows (a scalar is repeated): only on the error path.
fn arrays(args: &[ColumnarValue], n: usize) -> Result<(ArrayRef, ArrayRef)> {
    Ok((args[0].to_array(n)?, args[1].to_array(n)?))
}

/// Postgres' float division errors, looked for only where the quotient is not finite.
fn check_float_div(args: &[ColumnarValue], quotient: &ArrayRef, n: usize) -> Result<()> {
    let bad: Vec<usize> = match quotient.data_type() {
        DataType::Float64 => quotient
            .as_primitive::<Float64Type>()
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.filter(|v| !v.is_finite()).map(|_| i))
            .collect(),
        DataType::Float32 => quotient
            .as_primitive::<Float32Type>()
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.filter(|v| !v.is_finite()).map(|_| i))
            .collect(),
        _ => return Ok(()),
    };
    if bad.is_empty() {
        return Ok(());
    }
    let (x, y) = arrays(args, n)?;
    let value = |a: &ArrayRef, i: usize| -> f64 {
        match a.data_type() {
            DataType::Float32 => a.as_primitive::<Float32Type>().value(i) as f64,
            _ => a.as_primitive::<Float64Type>().value(i),
        }
    };
    for i in bad {
        let (x, y) = (value(&x, i), value(&y, i));
        if y == 0.0 && !x.is_nan() {
            return Err(user_error("22012", "division by zero"));
        }
        if x.is_finite() && y.is_finite() {
            return Err(user_error("22003", "value out of range: overflow"));
        }
    }
    Ok(())
}

impl ScalarUDFImpl for CheckedArith {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(args.first().cloned().unwrap_or(DataType::Int64))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let datum = |a: &ColumnarValue| -> Result<Box<dyn datafusion::arrow::array::Datum>> {
            Ok(match a {
                ColumnarValue::Array(a) => Box::new(a.clone()),
                ColumnarValue::Scalar(s) => Box::new(s.to_scalar()?),
            })
        };
        let (l, r) = (datum(&args.args[0])?, datum(&args.args[1])?);
        let out = match self.op {
            CheckedOp::Add => numeric::add(l.as_ref(), r.as_ref()),
            CheckedOp::Sub => numeric::sub(l.as_ref(), r.as_ref()),
            CheckedOp::Mul => numeric::mul(l.as_ref(), r.as_ref()),
            CheckedOp::FloatDiv => numeric::div(l.as_ref(), r.as_ref()),
        };
        let out = match out {
            Ok(out) => out,
            Err(ArrowError::ArithmeticOverflow(_)) => {
                let t = args.return_field.data_type();
                return Err(user_error(
                    "22003",
                    format!("{} out of range", type_name(t)),
                ));
            }
            Err(e) => return Err(e.into()),
        };
        if self.op == CheckedOp::FloatDiv {
            check_float_div(&args.args, &out, if scalar { 1 } else { args.number_rows })?;
        }
        if scalar {
            return Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?));
        }
        Ok(ColumnarValue::Array(out))
    }
}

fn udf(name: &'static str, op: CheckedOp, types: &[DataType]) -> Arc<ScalarUDF> {
    let signature = Signature::one_of(
        types
            .iter()
            .map(|t| TypeSignature::Exact(vec![t.clone(), t.clone()]))
            .collect(),
        Volatility::Immutable,
    );
    Arc::new(ScalarUDF::new_from_impl(CheckedArith {
        name,
        op,
        signature,
    }))
}

/// `a + b`, `a - b`, `a * b` on integers of one type, or `a / b` on floats of one type.
pub fn checked(op: CheckedOp) -> Arc<ScalarUDF> {
    static ADD: OnceLock<Arc<ScalarUDF>> = OnceLock::new();
    static SUB: OnceLock<Arc<ScalarUDF>> = OnceLock::new();
    static MUL: OnceLock<Arc<ScalarUDF>> = OnceLock::new();
    static DIV: OnceLock<Arc<ScalarUDF>> = OnceLock::new();
    let ints = [DataType::Int16, DataType::Int32, DataType::Int64];
    let floats = [DataType::Float64, DataType::Float32];
    match op {
        CheckedOp::Add => ADD.get_or_init(|| udf("eddy_int_add", op, &ints)),
        CheckedOp::Sub => SUB.get_or_init(|| udf("eddy_int_sub", op, &ints)),
        CheckedOp::Mul => MUL.get_or_init(|| udf("eddy_int_mul", op, &ints)),
        CheckedOp::FloatDiv => DIV.get_or_init(|| udf("eddy_float_div", op, &floats)),
    }
    .clone()
}

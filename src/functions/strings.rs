//! String and bytea functions as Postgres has them: `concat`/`concat_ws` write each
//! argument with its output text (`concat('a', true)` is `at`, a timestamp reads
//! `2026-01-01 10:00:00`), `octet_length`/`length` of a bytea count its bytes, and
//! `get_byte(bytea, n)`. Plus the aggregate spellings Postgres has and DataFusion names
//! otherwise: `variance` (var_samp) and `every` (bool_and).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int32Array, StringBuilder};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::{
    AggregateUDF, ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};

use crate::error::EddyError;
use crate::server::pg_text;

fn user_error(code: &'static str, message: impl Into<String>) -> DataFusionError {
    DataFusionError::External(Box::new(EddyError::BadValue {
        code,
        message: message.into(),
    }))
}

fn is_string(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// An argument as Utf8 text: strings as they are, anything else as Postgres writes it.
fn as_text(arg: &ColumnarValue, n: usize) -> Result<ColumnarValue> {
    let array = arg.to_array(n)?;
    if is_string(array.data_type()) {
        return Ok(ColumnarValue::Array(datafusion::arrow::compute::cast(
            &array,
            &DataType::Utf8,
        )?));
    }
    let mut out = StringBuilder::with_capacity(n, n * 8);
    for i in 0..array.len() {
        out.append_option(pg_text::format_value(&array, i));
    }
    Ok(ColumnarValue::Array(Arc::new(out.finish())))
}

/// `concat`/`concat_ws` over DataFusion's, with every argument first turned into its
/// Postgres text.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Concat {
    inner: Arc<ScalarUDF>,
    signature: Signature,
}

impl ScalarUDFImpl for Concat {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let n = if scalar { 1 } else { args.number_rows };
        let texts = args
            .args
            .iter()
            .map(|a| as_text(a, n))
            .collect::<Result<Vec<_>>>()?;
        let fields = texts
            .iter()
            .enumerate()
            .map(|(i, _)| {
                Arc::new(datafusion::arrow::datatypes::Field::new(
                    format!("a{i}"),
                    DataType::Utf8,
                    true,
                ))
            })
            .collect();
        let inner = ScalarFunctionArgs {
            args: texts,
            arg_fields: fields,
            number_rows: n,
            return_field: Arc::new(datafusion::arrow::datatypes::Field::new(
                self.name(),
                DataType::Utf8,
                true,
            )),
            config_options: args.config_options.clone(),
        };
        let out = self.inner.invoke_with_args(inner)?.to_array(n)?;
        if scalar {
            return Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?));
        }
        Ok(ColumnarValue::Array(out))
    }
}

/// `octet_length`/`length` of a bytea (its bytes), else DataFusion's function.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ByteaLength {
    inner: Arc<ScalarUDF>,
    signature: Signature,
}

impl ScalarUDFImpl for ByteaLength {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, types: &[DataType]) -> Result<Vec<DataType>> {
        match types {
            [DataType::Binary | DataType::LargeBinary | DataType::BinaryView] => {
                Ok(vec![DataType::Binary])
            }
            [t] if t.is_integer() || t.is_floating() || matches!(t, DataType::Decimal128(_, _)) => {
                Err(user_error(
                    "42883",
                    format!(
                        "function {}({}) does not exist",
                        self.name(),
                        crate::sql::types::pg_type_name(t)
                    ),
                ))
            }
            _ => {
                let fields: Vec<_> = types
                    .iter()
                    .map(|t| {
                        Arc::new(datafusion::arrow::datatypes::Field::new(
                            "f",
                            t.clone(),
                            true,
                        ))
                    })
                    .collect();
                Ok(
                    datafusion::logical_expr::type_coercion::functions::fields_with_udf(
                        &fields,
                        self.inner.as_ref(),
                    )?
                    .iter()
                    .map(|f| f.data_type().clone())
                    .collect(),
                )
            }
        }
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match args {
            [DataType::Binary] => Ok(DataType::Int32),
            _ => self.inner.return_type(args),
        }
    }

    fn return_field_from_args(
        &self,
        args: datafusion::logical_expr::ReturnFieldArgs,
    ) -> Result<datafusion::arrow::datatypes::FieldRef> {
        match args.arg_fields {
            [f] if f.data_type() == &DataType::Binary => Ok(Arc::new(
                datafusion::arrow::datatypes::Field::new(self.name(), DataType::Int32, true),
            )),
            _ => self.inner.return_field_from_args(args),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if args.arg_fields.len() != 1 || args.arg_fields[0].data_type() != &DataType::Binary {
            return self.inner.invoke_with_args(args);
        }
        let (array, scalar) = match &args.args[0] {
            ColumnarValue::Array(a) => (a.clone(), false),
            ColumnarValue::Scalar(s) => (s.to_array()?, true),
        };
        let b = array.as_binary::<i32>();
        let out: ArrayRef = Arc::new(
            (0..b.len())
                .map(|i| (!b.is_null(i)).then(|| b.value(i).len() as i32))
                .collect::<Int32Array>(),
        );
        if scalar {
            return Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?));
        }
        Ok(ColumnarValue::Array(out))
    }
}

fn get_byte(a: &[ScalarValue], _: &[DataType]) -> Result<ScalarValue> {
    let (ScalarValue::Binary(Some(bytes)), ScalarValue::Int64(Some(n))) = (&a[0], &a[1]) else {
        return Ok(ScalarValue::Int32(None));
    };
    let byte = usize::try_from(*n)
        .ok()
        .and_then(|n| bytes.get(n))
        .ok_or_else(|| {
            user_error(
                "2202E",
                format!(
                    "index {n} out of valid range, 0..{}",
                    bytes.len() as i64 - 1
                ),
            )
        })?;
    Ok(ScalarValue::Int32(Some(*byte as i32)))
}

pub fn functions() -> Vec<Arc<ScalarUDF>> {
    let concat = |inner: Arc<ScalarUDF>| {
        Arc::new(ScalarUDF::new_from_impl(Concat {
            inner,
            signature: Signature::variadic_any(Volatility::Immutable),
        }))
    };
    let length = |inner: Arc<ScalarUDF>| {
        Arc::new(ScalarUDF::new_from_impl(ByteaLength {
            inner,
            signature: Signature::user_defined(Volatility::Immutable),
        }))
    };
    let sig = Signature::exact(
        vec![DataType::Binary, DataType::Int64],
        Volatility::Immutable,
    );
    vec![
        concat(datafusion::functions::string::concat()),
        concat(datafusion::functions::string::concat_ws()),
        length(datafusion::functions::string::octet_length()),
        length(datafusion::functions::unicode::character_length()),
        super::RowFunction::udf("get_byte", sig, |_| Ok(DataType::Int32), get_byte),
    ]
}

/// Aggregates under their Postgres names.
pub fn aggregates() -> Vec<Arc<AggregateUDF>> {
    vec![
        Arc::new(
            datafusion::functions_aggregate::variance::var_samp_udaf()
                .as_ref()
                .clone()
                .with_aliases(["variance"]),
        ),
        Arc::new(
            datafusion::functions_aggregate::bool_and_or::bool_and_udaf()
                .as_ref()
                .clone()
                .with_aliases(["every"]),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_byte_reads_one_byte() {
        let b = ScalarValue::Binary(Some(vec![0xde, 0xad]));
        assert_eq!(
            get_byte(&[b.clone(), ScalarValue::Int64(Some(1))], &[]).ok(),
            Some(ScalarValue::Int32(Some(0xad)))
        );
        assert!(get_byte(&[b, ScalarValue::Int64(Some(2))], &[]).is_err());
    }
}

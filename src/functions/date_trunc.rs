//! `date_trunc(field, date)` as Postgres types it: there is no date_trunc on dates, so the
//! date is promoted to `timestamptz` (midnight in the session time zone, UTC in eddy) and
//! the result is a timestamptz (`2026-01-01 00:00:00+00`). DataFusion promotes a date to a
//! timestamp without zone instead. This wraps DataFusion's `date_trunc` and changes only
//! that coercion; every other argument type goes through DataFusion's own signature.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, FieldRef, TimeUnit};
use datafusion::common::Result;
use datafusion::logical_expr::type_coercion::functions::fields_with_udf;
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};

use crate::sql::types::UTC;

#[derive(Debug, PartialEq, Eq, Hash)]
struct DateTrunc {
    inner: Arc<ScalarUDF>,
    signature: Signature,
    aliases: Vec<String>,
}

impl ScalarUDFImpl for DateTrunc {
    fn name(&self) -> &str {
        "date_trunc"
    }

    fn aliases(&self) -> &[String] {
        &self.aliases
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, types: &[DataType]) -> Result<Vec<DataType>> {
        if let [field, DataType::Date32 | DataType::Date64] = types {
            let tz = DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into()));
            let field = fields_with_udf(
                &[Arc::new(datafusion::arrow::datatypes::Field::new(
                    "f",
                    field.clone(),
                    true,
                ))],
                self.inner.as_ref(),
            )
            .ok()
            .and_then(|f| f.first().map(|f| f.data_type().clone()))
            .unwrap_or(DataType::Utf8);
            return Ok(vec![field, tz]);
        }
        let fields: Vec<FieldRef> = types
            .iter()
            .map(|t| {
                Arc::new(datafusion::arrow::datatypes::Field::new(
                    "f",
                    t.clone(),
                    true,
                ))
            })
            .collect();
        Ok(fields_with_udf(&fields, self.inner.as_ref())?
            .iter()
            .map(|f| f.data_type().clone())
            .collect())
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        self.inner.return_type(args)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        self.inner.invoke_with_args(args)
    }
}

pub fn date_trunc() -> Arc<ScalarUDF> {
    let inner = datafusion::functions::datetime::date_trunc();
    let aliases = inner.aliases().to_vec();
    Arc::new(ScalarUDF::new_from_impl(DateTrunc {
        inner,
        signature: Signature::user_defined(Volatility::Immutable),
        aliases,
    }))
}

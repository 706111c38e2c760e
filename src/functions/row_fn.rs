//! A scalar function evaluated row by row on [`ScalarValue`]s: the simple way to add a
//! Postgres function whose speed does not matter (they are not on ingest paths).

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
};

type ReturnType = fn(&[DataType]) -> Result<DataType>;
type Eval = fn(&[ScalarValue], &[DataType]) -> Result<ScalarValue>;

/// `eval` gets one row's arguments and their types; its result must have the return type.
pub struct RowFunction {
    name: &'static str,
    signature: Signature,
    return_type: ReturnType,
    eval: Eval,
}

impl std::fmt::Debug for RowFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl PartialEq for RowFunction {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for RowFunction {}

impl std::hash::Hash for RowFunction {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state)
    }
}

impl RowFunction {
    pub fn udf(
        name: &'static str,
        signature: Signature,
        return_type: ReturnType,
        eval: Eval,
    ) -> Arc<ScalarUDF> {
        Arc::new(ScalarUDF::new_from_impl(RowFunction {
            name,
            signature,
            return_type,
            eval,
        }))
    }
}

impl ScalarUDFImpl for RowFunction {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        (self.return_type)(args)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let types: Vec<DataType> = args
            .arg_fields
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        let ret = args.return_field.data_type().clone();
        let all_scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        if all_scalar {
            let row: Vec<ScalarValue> = args
                .args
                .iter()
                .map(|a| match a {
                    ColumnarValue::Scalar(s) => s.clone(),
                    ColumnarValue::Array(_) => unreachable!("checked all scalar"),
                })
                .collect();
            let v = (self.eval)(&row, &types)?;
            return Ok(ColumnarValue::Scalar(v.cast_to(&ret)?));
        }
        let arrays = args
            .args
            .iter()
            .map(|a| a.to_array(args.number_rows))
            .collect::<Result<Vec<_>>>()?;
        let mut out = Vec::with_capacity(args.number_rows);
        for i in 0..args.number_rows {
            let row = arrays
                .iter()
                .map(|a| ScalarValue::try_from_array(a, i))
                .collect::<Result<Vec<_>>>()?;
            out.push((self.eval)(&row, &types)?.cast_to(&ret)?);
        }
        if out.is_empty() {
            return Ok(ColumnarValue::Array(
                datafusion::arrow::array::new_empty_array(&ret),
            ));
        }
        Ok(ColumnarValue::Array(ScalarValue::iter_to_array(out)?))
    }
}

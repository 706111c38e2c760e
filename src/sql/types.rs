//! SQL column types → Arrow types, and Arrow types → the names Postgres users know.
//! Timestamps are microseconds, as in Postgres; TIMESTAMPTZ is stored in UTC.

use datafusion::arrow::datatypes::{DataType, IntervalUnit, TimeUnit};
use datafusion::sql::sqlparser::ast::{DataType as SqlType, ExactNumberInfo, TimezoneInfo};

use crate::error::{EddyError, Result};

pub const UTC: &str = "+00:00";

/// The Arrow type that stores a declared SQL column type.
pub fn arrow_type(t: &SqlType) -> Result<DataType> {
    Ok(match t {
        SqlType::SmallInt(_) | SqlType::Int2(_) => DataType::Int16,
        SqlType::Int(_) | SqlType::Integer(_) | SqlType::Int4(_) => DataType::Int32,
        SqlType::BigInt(_) | SqlType::Int8(_) => DataType::Int64,
        SqlType::Real | SqlType::Float4 => DataType::Float32,
        SqlType::Double(_) | SqlType::DoublePrecision | SqlType::Float8 => DataType::Float64,
        SqlType::Float(info) => match info {
            ExactNumberInfo::Precision(p) if *p <= 24 => DataType::Float32,
            _ => DataType::Float64,
        },
        SqlType::Numeric(info) | SqlType::Decimal(info) | SqlType::Dec(info) => match info {
            ExactNumberInfo::None => DataType::Decimal128(38, 10),
            ExactNumberInfo::Precision(p) => DataType::Decimal128(check_precision(*p)?, 0),
            ExactNumberInfo::PrecisionAndScale(p, s) => {
                let p = check_precision(*p)?;
                if *s < 0 || *s > p as i64 {
                    return Err(EddyError::query(
                        "22023",
                        format!("NUMERIC scale {s} must be between 0 and precision {p}"),
                    ));
                }
                DataType::Decimal128(p, *s as i8)
            }
        },
        SqlType::Text
        | SqlType::String(_)
        | SqlType::Varchar(_)
        | SqlType::CharacterVarying(_)
        | SqlType::CharVarying(_)
        | SqlType::Char(_)
        | SqlType::Character(_)
        | SqlType::Uuid
        | SqlType::JSON
        | SqlType::JSONB => DataType::Utf8,
        SqlType::Bool | SqlType::Boolean => DataType::Boolean,
        SqlType::Timestamp(_, TimezoneInfo::WithTimeZone | TimezoneInfo::Tz) => {
            DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into()))
        }
        SqlType::Timestamp(_, _) | SqlType::Datetime(_) => {
            DataType::Timestamp(TimeUnit::Microsecond, None)
        }
        SqlType::Date => DataType::Date32,
        SqlType::Time(_, _) => DataType::Time64(TimeUnit::Microsecond),
        SqlType::Interval { .. } => DataType::Interval(IntervalUnit::MonthDayNano),
        SqlType::Bytea | SqlType::Blob(_) | SqlType::Bytes(_) | SqlType::Varbinary(_) => {
            DataType::Binary
        }
        SqlType::Custom(name, _) => {
            let n = name.to_string().to_lowercase();
            match n.as_str() {
                "timestamptz" => DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into())),
                "serial" | "int4" => DataType::Int32,
                "bigserial" | "long" => DataType::Int64,
                "double" => DataType::Float64,
                _ => {
                    return Err(EddyError::query(
                        "42704",
                        format!("type \"{n}\" does not exist"),
                    ))
                }
            }
        }
        other => return Err(unsupported_type(other)),
    })
}

fn check_precision(p: u64) -> Result<u8> {
    if p == 0 || p > 38 {
        return Err(EddyError::query(
            "22023",
            format!("NUMERIC precision {p} must be between 1 and 38"),
        ));
    }
    Ok(p as u8)
}

fn unsupported_type(t: &SqlType) -> EddyError {
    EddyError::query("0A000", format!("column type {t} is not supported"))
}

/// The length limit of a `VARCHAR(n)` / `CHAR(n)` column, in characters.
pub fn char_limit(t: &SqlType) -> Option<u64> {
    use datafusion::sql::sqlparser::ast::CharacterLength;
    match t {
        SqlType::Varchar(Some(CharacterLength::IntegerLength { length, .. }))
        | SqlType::CharacterVarying(Some(CharacterLength::IntegerLength { length, .. }))
        | SqlType::CharVarying(Some(CharacterLength::IntegerLength { length, .. }))
        | SqlType::Char(Some(CharacterLength::IntegerLength { length, .. }))
        | SqlType::Character(Some(CharacterLength::IntegerLength { length, .. })) => Some(*length),
        _ => None,
    }
}

/// The Postgres name of the type a column of this Arrow type has on the wire.
pub fn pg_type_name(t: &DataType) -> String {
    match t {
        DataType::Boolean => "boolean".into(),
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => "smallint".into(),
        DataType::Int32 | DataType::UInt16 => "integer".into(),
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => "bigint".into(),
        DataType::Float16 | DataType::Float32 => "real".into(),
        DataType::Float64 => "double precision".into(),
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => format!("numeric({p},{s})"),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "text".into(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "bytea".into(),
        DataType::Timestamp(_, None) => "timestamp".into(),
        DataType::Timestamp(_, Some(_)) => "timestamptz".into(),
        DataType::Date32 | DataType::Date64 => "date".into(),
        DataType::Time32(_) | DataType::Time64(_) => "time".into(),
        DataType::Interval(_) | DataType::Duration(_) => "interval".into(),
        DataType::Null => "text".into(),
        other => other.to_string().to_lowercase(),
    }
}

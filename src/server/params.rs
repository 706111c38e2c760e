//! Bound parameters of the extended protocol, decoded by their declared type (text or
//! binary format) and rendered as SQL literals for [`crate::database::params::bind`].

use bytes::Bytes;
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, Utc};
use pgwire::api::portal::Portal;
use pgwire::api::Type;

use crate::error::{EddyError, Result};

/// `inferred`: the types the server reported in ParameterDescription, for parameters the
/// client sent without a type (they were encoded as the server described them).
pub fn render_parameters(portal: &Portal<String>, inferred: &[Type]) -> Result<Vec<String>> {
    (0..portal.parameter_len())
        .map(|i| render(portal, i, inferred.get(i)))
        .collect()
}

/// True when some parameter has no client-declared type.
pub fn needs_inference(portal: &Portal<String>) -> bool {
    (0..portal.parameter_len()).any(|i| {
        !matches!(portal.statement.parameter_types.get(i), Some(Some(t)) if *t != Type::UNKNOWN)
    })
}

fn bad(i: usize, e: impl std::fmt::Display) -> EddyError {
    EddyError::BadValue {
        code: "22P02",
        message: format!("invalid value for parameter ${}: {e}", i + 1),
    }
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn render(portal: &Portal<String>, i: usize, inferred: Option<&Type>) -> Result<String> {
    if portal
        .parameters
        .get(i)
        .map(|p| p.is_none())
        .unwrap_or(true)
    {
        return Ok("NULL".into());
    }
    let ty = portal
        .statement
        .parameter_types
        .get(i)
        .cloned()
        .flatten()
        .filter(|t| *t != Type::UNKNOWN)
        .or_else(|| inferred.cloned())
        .unwrap_or(Type::UNKNOWN);
    macro_rules! get {
        ($t:ty) => {
            portal
                .parameter::<$t>(i, &ty)
                .map_err(|e| bad(i, e))?
                .expect("checked not null")
        };
    }
    Ok(match ty {
        Type::BOOL => {
            if get!(bool) {
                "TRUE".into()
            } else {
                "FALSE".into()
            }
        }
        Type::INT2 => get!(i16).to_string(),
        Type::INT4 => get!(i32).to_string(),
        Type::INT8 => get!(i64).to_string(),
        Type::OID => get!(u32).to_string(),
        Type::FLOAT4 => float(get!(f32) as f64, "REAL"),
        Type::FLOAT8 => float(get!(f64), "DOUBLE PRECISION"),
        Type::NUMERIC => {
            let d = get!(rust_decimal::Decimal);
            format!("CAST({} AS NUMERIC)", quote(&d.to_string()))
        }
        Type::DATE => format!("CAST({} AS DATE)", quote(&get!(NaiveDate).to_string())),
        Type::TIMESTAMP => format!(
            "CAST({} AS TIMESTAMP)",
            quote(
                &get!(NaiveDateTime)
                    .format("%Y-%m-%d %H:%M:%S%.f")
                    .to_string()
            )
        ),
        Type::TIMESTAMPTZ => format!(
            "CAST({} AS TIMESTAMP WITH TIME ZONE)",
            quote(
                &get!(DateTime<FixedOffset>)
                    .with_timezone(&Utc)
                    .format("%Y-%m-%dT%H:%M:%S%.f+00:00")
                    .to_string()
            )
        ),
        Type::BYTEA => {
            let b = get!(Vec<u8>);
            let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
            format!("X'{hex}'")
        }
        _ => {
            // text, varchar, name, unknown (0) and anything else: the text form, which the
            // planner coerces to the type the context needs.
            let raw: &Bytes = portal.parameters[i].as_ref().expect("checked not null");
            if portal.parameter_format.is_binary(i)
                && !matches!(
                    ty,
                    Type::TEXT
                        | Type::VARCHAR
                        | Type::NAME
                        | Type::BPCHAR
                        | Type::UNKNOWN
                        | Type::JSON
                )
            {
                return Err(EddyError::unsupported(format!(
                    "binary parameters of type {}",
                    ty.name()
                )));
            }
            let s = std::str::from_utf8(raw).map_err(|e| bad(i, e))?;
            quote(s)
        }
    })
}

fn float(v: f64, ty: &str) -> String {
    if v.is_finite() {
        format!("CAST({v:?} AS {ty})")
    } else {
        let s = if v.is_nan() {
            "NaN"
        } else if v > 0.0 {
            "Infinity"
        } else {
            "-Infinity"
        };
        format!("CAST('{s}' AS {ty})")
    }
}

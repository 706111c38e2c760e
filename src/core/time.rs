//! Event time: microseconds since the Unix epoch, as an `i64`, everywhere in the engine.
//! Watermarks, window bounds and late-row checks all use this one unit.

use crate::error::{EddyError, Result};

/// A point in event time, µs since the epoch.
pub type Micros = i64;

/// Event times (µs) of a column: TIMESTAMP/TIMESTAMPTZ as is, BIGINT as epoch milliseconds.
pub fn event_times(column: &datafusion::arrow::array::ArrayRef) -> Result<Vec<Option<i64>>> {
    use datafusion::arrow::array::{Array, Int64Array, TimestampMicrosecondArray};
    use datafusion::arrow::datatypes::{DataType, TimeUnit};
    if let Some(ms) = column.as_any().downcast_ref::<Int64Array>() {
        return Ok(ms
            .iter()
            .map(|v| v.and_then(|v| v.checked_mul(1000)))
            .collect());
    }
    let micros = datafusion::arrow::compute::cast(
        column,
        &DataType::Timestamp(TimeUnit::Microsecond, None),
    )?;
    let micros = micros
        .as_any()
        .downcast_ref::<TimestampMicrosecondArray>()
        .ok_or_else(|| EddyError::internal("event time is not a timestamp"))?;
    Ok(micros.iter().collect())
}

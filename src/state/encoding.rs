//! Bytes for checkpoints: how state-table keys and values, and the scalar values inside
//! them, are written to the state store and read back.
//!
//! Invariant: `decode(encode(x)) == x` for every value a state table holds; a value that
//! cannot be encoded (a nested type in a group key, say) is an error at checkpoint time,
//! never a silently different value after restart. The format is private to one eddy
//! version's checkpoints: a checkpoint is a cache of the log, not an interchange format.

use std::sync::Arc;

use datafusion::arrow::datatypes::{i256, IntervalDayTime, IntervalMonthDayNano};
use datafusion::scalar::ScalarValue;

use crate::error::{EddyError, Result};

/// Appends primitives to a byte buffer.
#[derive(Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Writer::default()
    }
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }
    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.u8(v as u8)
    }
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn i128(&mut self, v: i128) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn f64(&mut self, v: f64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_bits().to_le_bytes());
        self
    }
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.u64(v.len() as u64);
        self.buf.extend_from_slice(v);
        self
    }
    pub fn str(&mut self, v: &str) -> &mut Self {
        self.bytes(v.as_bytes())
    }
    pub fn opt_i64(&mut self, v: Option<i64>) -> &mut Self {
        match v {
            Some(v) => self.u8(1).i64(v),
            None => self.u8(0),
        }
    }
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

/// Reads what a [`Writer`] wrote; running short is a storage error (a damaged checkpoint).
pub struct Reader<'a> {
    buf: &'a [u8],
}

fn short() -> EddyError {
    EddyError::Storage("checkpoint entry is truncated".into())
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.buf.len() < n {
            return Err(short());
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        self.take(N)?.try_into().map_err(|_| short())
    }
    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    pub fn bool(&mut self) -> Result<bool> {
        Ok(self.u8()? != 0)
    }
    pub fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    pub fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_le_bytes(self.array()?))
    }
    pub fn i128(&mut self) -> Result<i128> {
        Ok(i128::from_le_bytes(self.array()?))
    }
    pub fn f64(&mut self) -> Result<f64> {
        Ok(f64::from_bits(u64::from_le_bytes(self.array()?)))
    }
    pub fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = usize::try_from(self.u64()?).map_err(|_| short())?;
        self.take(n)
    }
    pub fn vec(&mut self) -> Result<Vec<u8>> {
        Ok(self.bytes()?.to_vec())
    }
    pub fn string(&mut self) -> Result<String> {
        String::from_utf8(self.vec()?)
            .map_err(|_| EddyError::Storage("checkpoint string is not UTF-8".into()))
    }
    pub fn opt_i64(&mut self) -> Result<Option<i64>> {
        Ok(match self.u8()? {
            0 => None,
            _ => Some(self.i64()?),
        })
    }
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

/// A state table's key or value as checkpoint bytes.
pub trait StateCodec: Sized {
    fn encode(&self, w: &mut Writer) -> Result<()>;
    fn decode(r: &mut Reader<'_>) -> Result<Self>;
}

impl StateCodec for () {
    fn encode(&self, _w: &mut Writer) -> Result<()> {
        Ok(())
    }
    fn decode(_r: &mut Reader<'_>) -> Result<Self> {
        Ok(())
    }
}

impl StateCodec for i64 {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        w.i64(*self);
        Ok(())
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        r.i64()
    }
}

impl StateCodec for u32 {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        w.u64(u64::from(*self));
        Ok(())
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        u32::try_from(r.u64()?).map_err(|_| short())
    }
}

impl StateCodec for u64 {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        w.u64(*self);
        Ok(())
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        r.u64()
    }
}

impl StateCodec for Vec<u8> {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        w.bytes(self);
        Ok(())
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        r.vec()
    }
}

impl<A: StateCodec, B: StateCodec> StateCodec for (A, B) {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        self.0.encode(w)?;
        self.1.encode(w)
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok((A::decode(r)?, B::decode(r)?))
    }
}

impl<A: StateCodec, B: StateCodec, C: StateCodec> StateCodec for (A, B, C) {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        self.0.encode(w)?;
        self.1.encode(w)?;
        self.2.encode(w)
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok((A::decode(r)?, B::decode(r)?, C::decode(r)?))
    }
}

impl<T: StateCodec> StateCodec for Option<T> {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        match self {
            Some(v) => {
                w.u8(1);
                v.encode(w)
            }
            None => {
                w.u8(0);
                Ok(())
            }
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(match r.u8()? {
            0 => None,
            _ => Some(T::decode(r)?),
        })
    }
}

impl<T: StateCodec> StateCodec for Vec<T>
where
    T: NotByte,
{
    fn encode(&self, w: &mut Writer) -> Result<()> {
        w.u64(self.len() as u64);
        self.iter().try_for_each(|v| v.encode(w))
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let n = r.u64()?;
        (0..n).map(|_| T::decode(r)).collect()
    }
}

/// Element types of a `Vec` encoded element by element (`Vec<u8>` is encoded as bytes).
pub trait NotByte {}
impl NotByte for Vec<u8> {}
impl NotByte for ScalarValue {}
impl NotByte for Vec<ScalarValue> {}
impl NotByte for (Vec<u8>, i64) {}

macro_rules! scalar_tags {
    ($($tag:literal => $name:ident),* $(,)?) => {
        $(const $name: u8 = $tag;)*
    };
}

scalar_tags! {
    0 => S_NULL, 1 => S_BOOL, 2 => S_I8, 3 => S_I16, 4 => S_I32, 5 => S_I64, 6 => S_U8,
    7 => S_U16, 8 => S_U32, 9 => S_U64, 10 => S_F32, 11 => S_F64, 12 => S_DEC128,
    13 => S_UTF8, 14 => S_LARGE_UTF8, 15 => S_UTF8_VIEW, 16 => S_BINARY, 17 => S_LARGE_BINARY,
    18 => S_BINARY_VIEW, 19 => S_DATE32, 20 => S_DATE64, 21 => S_TIME32S, 22 => S_TIME32MS,
    23 => S_TIME64US, 24 => S_TIME64NS, 25 => S_TS_S, 26 => S_TS_MS, 27 => S_TS_US,
    28 => S_TS_NS, 29 => S_IYM, 30 => S_IDT, 31 => S_IMDN, 32 => S_DUR_S, 33 => S_DUR_MS,
    34 => S_DUR_US, 35 => S_DUR_NS, 36 => S_DEC256,
}

fn opt<T: Copy>(w: &mut Writer, v: &Option<T>, put: impl Fn(&mut Writer, T)) {
    match v {
        Some(v) => {
            w.u8(1);
            put(w, *v)
        }
        None => {
            w.u8(0);
        }
    }
}

fn read_opt<T>(
    r: &mut Reader<'_>,
    get: impl Fn(&mut Reader<'_>) -> Result<T>,
) -> Result<Option<T>> {
    Ok(match r.u8()? {
        0 => None,
        _ => Some(get(r)?),
    })
}

fn tz(w: &mut Writer, tz: &Option<Arc<str>>) {
    match tz {
        Some(t) => {
            w.u8(1).str(t);
        }
        None => {
            w.u8(0);
        }
    }
}

fn read_tz(r: &mut Reader<'_>) -> Result<Option<Arc<str>>> {
    Ok(match r.u8()? {
        0 => None,
        _ => Some(Arc::from(r.string()?.as_str())),
    })
}

impl StateCodec for ScalarValue {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        use ScalarValue as S;
        let int = |w: &mut Writer, tag: u8, v: Option<i64>| {
            w.u8(tag);
            opt(w, &v, |w, v| {
                w.i64(v);
            });
        };
        match self {
            S::Null => {
                w.u8(S_NULL);
            }
            S::Boolean(v) => {
                w.u8(S_BOOL);
                opt(w, v, |w, v| {
                    w.bool(v);
                });
            }
            S::Int8(v) => int(w, S_I8, v.map(i64::from)),
            S::Int16(v) => int(w, S_I16, v.map(i64::from)),
            S::Int32(v) => int(w, S_I32, v.map(i64::from)),
            S::Int64(v) => int(w, S_I64, *v),
            S::UInt8(v) => int(w, S_U8, v.map(i64::from)),
            S::UInt16(v) => int(w, S_U16, v.map(i64::from)),
            S::UInt32(v) => int(w, S_U32, v.map(i64::from)),
            S::UInt64(v) => {
                w.u8(S_U64);
                opt(w, v, |w, v| {
                    w.u64(v);
                });
            }
            S::Float32(v) => {
                w.u8(S_F32);
                opt(w, &v.map(f64::from), |w, v| {
                    w.f64(v);
                });
            }
            S::Float64(v) => {
                w.u8(S_F64);
                opt(w, v, |w, v| {
                    w.f64(v);
                });
            }
            S::Decimal128(v, p, s) => {
                w.u8(S_DEC128).u8(*p).u8(*s as u8);
                opt(w, v, |w, v| {
                    w.i128(v);
                });
            }
            S::Decimal256(v, p, s) => {
                w.u8(S_DEC256).u8(*p).u8(*s as u8);
                match v {
                    Some(v) => {
                        w.u8(1);
                        w.buf.extend_from_slice(&v.to_le_bytes());
                    }
                    None => {
                        w.u8(0);
                    }
                }
            }
            S::Utf8(v) | S::LargeUtf8(v) | S::Utf8View(v) => {
                w.u8(match self {
                    S::Utf8(_) => S_UTF8,
                    S::LargeUtf8(_) => S_LARGE_UTF8,
                    _ => S_UTF8_VIEW,
                });
                match v {
                    Some(s) => {
                        w.u8(1).str(s);
                    }
                    None => {
                        w.u8(0);
                    }
                }
            }
            S::Binary(v) | S::LargeBinary(v) | S::BinaryView(v) => {
                w.u8(match self {
                    S::Binary(_) => S_BINARY,
                    S::LargeBinary(_) => S_LARGE_BINARY,
                    _ => S_BINARY_VIEW,
                });
                match v {
                    Some(b) => {
                        w.u8(1).bytes(b);
                    }
                    None => {
                        w.u8(0);
                    }
                }
            }
            S::Date32(v) => int(w, S_DATE32, v.map(i64::from)),
            S::Date64(v) => int(w, S_DATE64, *v),
            S::Time32Second(v) => int(w, S_TIME32S, v.map(i64::from)),
            S::Time32Millisecond(v) => int(w, S_TIME32MS, v.map(i64::from)),
            S::Time64Microsecond(v) => int(w, S_TIME64US, *v),
            S::Time64Nanosecond(v) => int(w, S_TIME64NS, *v),
            S::TimestampSecond(v, z)
            | S::TimestampMillisecond(v, z)
            | S::TimestampMicrosecond(v, z)
            | S::TimestampNanosecond(v, z) => {
                let tag = match self {
                    S::TimestampSecond(..) => S_TS_S,
                    S::TimestampMillisecond(..) => S_TS_MS,
                    S::TimestampMicrosecond(..) => S_TS_US,
                    _ => S_TS_NS,
                };
                int(w, tag, *v);
                tz(w, z);
            }
            S::IntervalYearMonth(v) => int(w, S_IYM, v.map(i64::from)),
            S::IntervalDayTime(v) => {
                w.u8(S_IDT);
                opt(w, v, |w, v| {
                    w.i64(v.days as i64).i64(v.milliseconds as i64);
                });
            }
            S::IntervalMonthDayNano(v) => {
                w.u8(S_IMDN);
                opt(w, v, |w, v| {
                    w.i64(v.months as i64).i64(v.days as i64).i64(v.nanoseconds);
                });
            }
            S::DurationSecond(v) => int(w, S_DUR_S, *v),
            S::DurationMillisecond(v) => int(w, S_DUR_MS, *v),
            S::DurationMicrosecond(v) => int(w, S_DUR_US, *v),
            S::DurationNanosecond(v) => int(w, S_DUR_NS, *v),
            other => {
                return Err(EddyError::unsupported(format!(
                    "checkpointing state that holds a {} value",
                    other.data_type()
                )))
            }
        }
        Ok(())
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        use ScalarValue as S;
        let tag = r.u8()?;
        let int = |r: &mut Reader<'_>| read_opt(r, |r| r.i64());
        let narrow = |v: Option<i64>| -> Result<Option<i32>> {
            v.map(|v| i32::try_from(v).map_err(|_| short())).transpose()
        };
        Ok(match tag {
            S_NULL => S::Null,
            S_BOOL => S::Boolean(read_opt(r, |r| r.bool())?),
            S_I8 => S::Int8(int(r)?.map(|v| v as i8)),
            S_I16 => S::Int16(int(r)?.map(|v| v as i16)),
            S_I32 => S::Int32(narrow(int(r)?)?),
            S_I64 => S::Int64(int(r)?),
            S_U8 => S::UInt8(int(r)?.map(|v| v as u8)),
            S_U16 => S::UInt16(int(r)?.map(|v| v as u16)),
            S_U32 => S::UInt32(int(r)?.map(|v| v as u32)),
            S_U64 => S::UInt64(read_opt(r, |r| r.u64())?),
            S_F32 => S::Float32(read_opt(r, |r| r.f64())?.map(|v| v as f32)),
            S_F64 => S::Float64(read_opt(r, |r| r.f64())?),
            S_DEC128 => {
                let (p, s) = (r.u8()?, r.u8()? as i8);
                S::Decimal128(read_opt(r, |r| r.i128())?, p, s)
            }
            S_DEC256 => {
                let (p, s) = (r.u8()?, r.u8()? as i8);
                let v = read_opt(r, |r| Ok(i256::from_le_bytes(r.array()?)))?;
                S::Decimal256(v, p, s)
            }
            S_UTF8 => S::Utf8(read_opt(r, |r| r.string())?),
            S_LARGE_UTF8 => S::LargeUtf8(read_opt(r, |r| r.string())?),
            S_UTF8_VIEW => S::Utf8View(read_opt(r, |r| r.string())?),
            S_BINARY => S::Binary(read_opt(r, |r| r.vec())?),
            S_LARGE_BINARY => S::LargeBinary(read_opt(r, |r| r.vec())?),
            S_BINARY_VIEW => S::BinaryView(read_opt(r, |r| r.vec())?),
            S_DATE32 => S::Date32(narrow(int(r)?)?),
            S_DATE64 => S::Date64(int(r)?),
            S_TIME32S => S::Time32Second(narrow(int(r)?)?),
            S_TIME32MS => S::Time32Millisecond(narrow(int(r)?)?),
            S_TIME64US => S::Time64Microsecond(int(r)?),
            S_TIME64NS => S::Time64Nanosecond(int(r)?),
            S_TS_S => S::TimestampSecond(int(r)?, read_tz(r)?),
            S_TS_MS => S::TimestampMillisecond(int(r)?, read_tz(r)?),
            S_TS_US => S::TimestampMicrosecond(int(r)?, read_tz(r)?),
            S_TS_NS => S::TimestampNanosecond(int(r)?, read_tz(r)?),
            S_IYM => S::IntervalYearMonth(narrow(int(r)?)?),
            S_IDT => S::IntervalDayTime(read_opt(r, |r| {
                Ok(IntervalDayTime::new(r.i64()? as i32, r.i64()? as i32))
            })?),
            S_IMDN => S::IntervalMonthDayNano(read_opt(r, |r| {
                Ok(IntervalMonthDayNano::new(
                    r.i64()? as i32,
                    r.i64()? as i32,
                    r.i64()?,
                ))
            })?),
            S_DUR_S => S::DurationSecond(int(r)?),
            S_DUR_MS => S::DurationMillisecond(int(r)?),
            S_DUR_US => S::DurationMicrosecond(int(r)?),
            S_DUR_NS => S::DurationNanosecond(int(r)?),
            other => {
                return Err(EddyError::Storage(format!(
                    "checkpoint holds an unknown value tag {other}"
                )))
            }
        })
    }
}

/// Encode one value to a fresh buffer.
pub fn to_bytes<T: StateCodec>(v: &T) -> Result<Vec<u8>> {
    let mut w = Writer::new();
    v.encode(&mut w)?;
    Ok(w.into_bytes())
}

/// Decode one value that must take the whole buffer.
pub fn from_bytes<T: StateCodec>(bytes: &[u8]) -> Result<T> {
    let mut r = Reader::new(bytes);
    let v = T::decode(&mut r)?;
    if !r.is_empty() {
        return Err(EddyError::Storage(
            "checkpoint entry has trailing bytes".into(),
        ));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalar_values_round_trip() {
        let values = vec![
            ScalarValue::Null,
            ScalarValue::Boolean(Some(true)),
            ScalarValue::Int32(None),
            ScalarValue::Int32(Some(-7)),
            ScalarValue::Int64(Some(i64::MIN)),
            ScalarValue::UInt64(Some(u64::MAX)),
            ScalarValue::Float32(Some(1.5)),
            ScalarValue::Float64(Some(f64::NAN)),
            ScalarValue::Float64(Some(-0.0)),
            ScalarValue::Decimal128(Some(-12345), 10, 2),
            ScalarValue::Utf8(Some("héllo|x".into())),
            ScalarValue::Utf8(None),
            ScalarValue::Binary(Some(vec![0, 255])),
            ScalarValue::Date32(Some(19000)),
            ScalarValue::TimestampMicrosecond(Some(1_700_000_000_000_000), Some("UTC".into())),
            ScalarValue::TimestampMicrosecond(Some(5), None),
            ScalarValue::IntervalMonthDayNano(Some(IntervalMonthDayNano::new(1, -2, 3))),
            ScalarValue::IntervalDayTime(Some(IntervalDayTime::new(4, 5))),
        ];
        for v in values {
            let back: ScalarValue = from_bytes(&to_bytes(&v).unwrap()).unwrap();
            // NaN != NaN: compare the debug text, which also shows the type.
            assert_eq!(format!("{back:?}"), format!("{v:?}"));
        }
    }

    #[test]
    fn nested_values_are_refused_not_changed() {
        let list = ScalarValue::List(ScalarValue::new_list_nullable(
            &[ScalarValue::Int32(Some(1))],
            &datafusion::arrow::datatypes::DataType::Int32,
        ));
        assert!(to_bytes(&list).is_err());
    }

    #[test]
    fn a_truncated_entry_is_an_error() {
        let bytes = to_bytes(&(7i64, vec![1u8, 2, 3])).unwrap();
        assert!(from_bytes::<(i64, Vec<u8>)>(&bytes[..bytes.len() - 1]).is_err());
    }
}

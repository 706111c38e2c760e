//! Postgres' built-in types as `pg_type` lists them (real OIDs, namespace `pg_catalog`),
//! the mapping from Arrow column types to them, and `format_type`'s spelling.

use datafusion::arrow::datatypes::DataType;

/// One built-in type: what `pg_type` says about it.
pub struct PgType {
    pub oid: i64,
    pub name: &'static str,
    pub len: i16,
    /// `b` base, `p` pseudo.
    pub kind: &'static str,
    pub category: &'static str,
    /// For array types, the element type.
    pub elem: i64,
    /// The array type of this type (0: none).
    pub array: i64,
    pub input: &'static str,
    /// Default collation (100 for string types).
    pub collation: i64,
}

macro_rules! ty {
    ($oid:expr, $name:expr, $len:expr, $kind:expr, $cat:expr, $elem:expr, $array:expr, $input:expr, $coll:expr) => {
        PgType {
            oid: $oid,
            name: $name,
            len: $len,
            kind: $kind,
            category: $cat,
            elem: $elem,
            array: $array,
            input: $input,
            collation: $coll,
        }
    };
}

pub const TYPES: &[PgType] = &[
    ty!(16, "bool", 1, "b", "B", 0, 1000, "boolin", 0),
    ty!(17, "bytea", -1, "b", "U", 0, 1001, "byteain", 0),
    ty!(18, "char", 1, "b", "Z", 0, 1002, "charin", 0),
    ty!(19, "name", 64, "b", "S", 18, 1003, "namein", 950),
    ty!(20, "int8", 8, "b", "N", 0, 1016, "int8in", 0),
    ty!(21, "int2", 2, "b", "N", 0, 1005, "int2in", 0),
    ty!(22, "int2vector", -1, "b", "A", 21, 1006, "int2vectorin", 0),
    ty!(23, "int4", 4, "b", "N", 0, 1007, "int4in", 0),
    ty!(24, "regproc", 4, "b", "N", 0, 1008, "regprocin", 0),
    ty!(25, "text", -1, "b", "S", 0, 1009, "textin", 100),
    ty!(26, "oid", 4, "b", "N", 0, 1028, "oidin", 0),
    ty!(30, "oidvector", -1, "b", "A", 26, 1013, "oidvectorin", 0),
    ty!(114, "json", -1, "b", "U", 0, 199, "json_in", 0),
    ty!(142, "xml", -1, "b", "U", 0, 143, "xml_in", 0),
    ty!(700, "float4", 4, "b", "N", 0, 1021, "float4in", 0),
    ty!(701, "float8", 8, "b", "N", 0, 1022, "float8in", 0),
    ty!(705, "unknown", -2, "p", "X", 0, 0, "unknownin", 0),
    ty!(790, "money", 8, "b", "N", 0, 791, "cash_in", 0),
    ty!(1042, "bpchar", -1, "b", "S", 0, 1014, "bpcharin", 100),
    ty!(1043, "varchar", -1, "b", "S", 0, 1015, "varcharin", 100),
    ty!(1082, "date", 4, "b", "D", 0, 1182, "date_in", 0),
    ty!(1083, "time", 8, "b", "D", 0, 1183, "time_in", 0),
    ty!(1114, "timestamp", 8, "b", "D", 0, 1115, "timestamp_in", 0),
    ty!(
        1184,
        "timestamptz",
        8,
        "b",
        "D",
        0,
        1185,
        "timestamptz_in",
        0
    ),
    ty!(1186, "interval", 16, "b", "T", 0, 1187, "interval_in", 0),
    ty!(1266, "timetz", 12, "b", "D", 0, 1270, "timetz_in", 0),
    ty!(1700, "numeric", -1, "b", "N", 0, 1231, "numeric_in", 0),
    ty!(2205, "regclass", 4, "b", "N", 0, 2210, "regclassin", 0),
    ty!(2206, "regtype", 4, "b", "N", 0, 2211, "regtypein", 0),
    ty!(
        4089,
        "regnamespace",
        4,
        "b",
        "N",
        0,
        4090,
        "regnamespacein",
        0
    ),
    ty!(2950, "uuid", 16, "b", "U", 0, 2951, "uuid_in", 0),
    ty!(3802, "jsonb", -1, "b", "U", 0, 3807, "jsonb_in", 0),
    ty!(2249, "record", -1, "p", "P", 0, 2287, "record_in", 0),
    ty!(2276, "any", 4, "p", "P", 0, 0, "any_in", 0),
    ty!(2277, "anyarray", -1, "p", "P", 0, 0, "anyarray_in", 0),
    ty!(2278, "void", 4, "p", "P", 0, 0, "void_in", 0),
    ty!(2279, "trigger", 4, "p", "P", 0, 0, "trigger_in", 0),
    ty!(2283, "anyelement", 4, "p", "P", 0, 0, "anyelement_in", 0),
    ty!(1000, "_bool", -1, "b", "A", 16, 0, "array_in", 0),
    ty!(1001, "_bytea", -1, "b", "A", 17, 0, "array_in", 0),
    ty!(1002, "_char", -1, "b", "A", 18, 0, "array_in", 0),
    ty!(1003, "_name", -1, "b", "A", 19, 0, "array_in", 950),
    ty!(1005, "_int2", -1, "b", "A", 21, 0, "array_in", 0),
    ty!(1006, "_int2vector", -1, "b", "A", 22, 0, "array_in", 0),
    ty!(1007, "_int4", -1, "b", "A", 23, 0, "array_in", 0),
    ty!(1008, "_regproc", -1, "b", "A", 24, 0, "array_in", 0),
    ty!(1009, "_text", -1, "b", "A", 25, 0, "array_in", 100),
    ty!(1013, "_oidvector", -1, "b", "A", 30, 0, "array_in", 0),
    ty!(1014, "_bpchar", -1, "b", "A", 1042, 0, "array_in", 100),
    ty!(1015, "_varchar", -1, "b", "A", 1043, 0, "array_in", 100),
    ty!(1016, "_int8", -1, "b", "A", 20, 0, "array_in", 0),
    ty!(1021, "_float4", -1, "b", "A", 700, 0, "array_in", 0),
    ty!(1022, "_float8", -1, "b", "A", 701, 0, "array_in", 0),
    ty!(1028, "_oid", -1, "b", "A", 26, 0, "array_in", 0),
    ty!(1115, "_timestamp", -1, "b", "A", 1114, 0, "array_in", 0),
    ty!(1182, "_date", -1, "b", "A", 1082, 0, "array_in", 0),
    ty!(1183, "_time", -1, "b", "A", 1083, 0, "array_in", 0),
    ty!(1185, "_timestamptz", -1, "b", "A", 1184, 0, "array_in", 0),
    ty!(1187, "_interval", -1, "b", "A", 1186, 0, "array_in", 0),
    ty!(1231, "_numeric", -1, "b", "A", 1700, 0, "array_in", 0),
    ty!(1270, "_timetz", -1, "b", "A", 1266, 0, "array_in", 0),
    ty!(199, "_json", -1, "b", "A", 114, 0, "array_in", 0),
    ty!(143, "_xml", -1, "b", "A", 142, 0, "array_in", 0),
    ty!(791, "_money", -1, "b", "A", 790, 0, "array_in", 0),
    ty!(2210, "_regclass", -1, "b", "A", 2205, 0, "array_in", 0),
    ty!(2211, "_regtype", -1, "b", "A", 2206, 0, "array_in", 0),
    ty!(4090, "_regnamespace", -1, "b", "A", 4089, 0, "array_in", 0),
    ty!(2951, "_uuid", -1, "b", "A", 2950, 0, "array_in", 0),
    ty!(3807, "_jsonb", -1, "b", "A", 3802, 0, "array_in", 0),
    ty!(2287, "_record", -1, "p", "P", 2249, 0, "array_in", 0),
];

pub fn by_oid(oid: i64) -> Option<&'static PgType> {
    TYPES.iter().find(|t| t.oid == oid)
}

/// A type by any name Postgres accepts for it (`integer`, `int4`, `pg_catalog.int4`,
/// `character varying`, `_int4`, `int4[]`).
pub fn by_name(name: &str) -> Option<&'static PgType> {
    let n = name.trim().trim_matches('"').to_lowercase();
    let n = n.strip_prefix("pg_catalog.").unwrap_or(&n).to_string();
    if let Some(elem) = n.strip_suffix("[]") {
        let e = by_name(elem)?;
        return by_oid(e.array);
    }
    let canonical = match n.as_str() {
        "boolean" => "bool",
        "smallint" => "int2",
        "integer" | "int" => "int4",
        "bigint" => "int8",
        "real" => "float4",
        "double precision" => "float8",
        "character varying" => "varchar",
        "character" => "bpchar",
        "timestamp without time zone" => "timestamp",
        "timestamp with time zone" => "timestamptz",
        "time without time zone" => "time",
        "time with time zone" => "timetz",
        "decimal" => "numeric",
        other => other,
    };
    TYPES.iter().find(|t| t.name == canonical)
}

/// The OID and type modifier of an Arrow column, as `pg_attribute` reports them.
/// `char_limit` is a declared `VARCHAR(n)` length.
pub fn oid_and_typmod(t: &DataType, char_limit: Option<u64>) -> (i64, i32) {
    match t {
        DataType::Boolean => (16, -1),
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => (21, -1),
        DataType::Int32 | DataType::UInt16 => (23, -1),
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => (20, -1),
        DataType::Float16 | DataType::Float32 => (700, -1),
        DataType::Float64 => (701, -1),
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => {
            (1700, (((*p as i32) << 16) | (*s as i32 & 0xffff)) + 4)
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => match char_limit {
            Some(n) => (1043, n as i32 + 4),
            None => (25, -1),
        },
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => (17, -1),
        DataType::Timestamp(_, None) => (1114, -1),
        DataType::Timestamp(_, Some(_)) => (1184, -1),
        DataType::Date32 | DataType::Date64 => (1082, -1),
        DataType::Time32(_) | DataType::Time64(_) => (1083, -1),
        DataType::Interval(_) | DataType::Duration(_) => (1186, -1),
        DataType::List(f) | DataType::LargeList(f) => {
            let (elem, _) = oid_and_typmod(f.data_type(), None);
            (by_oid(elem).map(|t| t.array).unwrap_or(1009), -1)
        }
        _ => (25, -1),
    }
}

/// `format_type(oid, typmod)`: the SQL spelling of a type.
pub fn format_type(oid: i64, typmod: Option<i64>) -> Option<String> {
    let t = by_oid(oid)?;
    let m = typmod.filter(|m| *m >= 0);
    Some(match t.name {
        "bool" => "boolean".into(),
        "int2" => "smallint".into(),
        "int4" => "integer".into(),
        "int8" => "bigint".into(),
        "float4" => "real".into(),
        "float8" => "double precision".into(),
        "char" => "\"char\"".into(),
        "varchar" => match m {
            Some(m) => format!("character varying({})", m - 4),
            None => "character varying".into(),
        },
        "bpchar" => match m {
            Some(m) => format!("character({})", m - 4),
            None => "character".into(),
        },
        "numeric" => match m {
            Some(m) => format!("numeric({},{})", (m - 4) >> 16, (m - 4) & 0xffff),
            None => "numeric".into(),
        },
        "timestamp" => "timestamp without time zone".into(),
        "timestamptz" => "timestamp with time zone".into(),
        "time" => "time without time zone".into(),
        "timetz" => "time with time zone".into(),
        name if t.category == "A" && t.elem != 0 => {
            let _ = name;
            format!("{}[]", format_type(t.elem, None)?)
        }
        name => name.to_string(),
    })
}

/// `information_schema.columns.data_type`: the SQL spelling without modifiers, `ARRAY`
/// for arrays.
pub fn information_schema_type(oid: i64) -> String {
    match by_oid(oid) {
        Some(t) if t.category == "A" => "ARRAY".into(),
        Some(_) => format_type(oid, None).unwrap_or_else(|| "text".into()),
        None => "USER-DEFINED".into(),
    }
}

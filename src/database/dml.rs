//! INSERT, UPDATE and DELETE on base streams and tables. Each statement becomes one delta
//! (computed against a snapshot, with the writer lock held so no other write interleaves)
//! and is applied as one epoch. Values are cast to the column types strictly: a value that
//! does not fit fails the whole statement and nothing of it is applied.

use std::sync::Arc;

use datafusion::arrow::array::{new_null_array, Array, ArrayRef, RecordBatch};
use datafusion::arrow::compute::{can_cast_types, cast_with_options, concat_batches, CastOptions};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::util::display::FormatOptions;
use datafusion::sql::sqlparser::ast::{
    Assignment, AssignmentTarget, Expr, FromTable, OnInsert, SetExpr, Statement, TableFactor,
    TableObject,
};

use super::{Database, Output};
use crate::catalog::RelationKind;
use crate::dataflow::ChangeBatch;
use crate::error::{EddyError, Result};
use crate::sql::parser::object_name;
use crate::sql::types::pg_type_name;
use crate::view::Storage;

impl Database {
    fn char_limits(&self, name: &str) -> Vec<(usize, u64)> {
        self.lock()
            .get(name)
            .map(|r| r.char_limits.clone())
            .unwrap_or_default()
    }

    /// Hidden columns of a relation (a stream's implicit rowtime).
    fn hidden_columns(&self, name: &str) -> Vec<usize> {
        self.lock()
            .get(name)
            .map(|r| r.hidden.clone())
            .unwrap_or_default()
    }

    fn writable(&self, name: &str, verb: &str) -> Result<(SchemaRef, RelationKind, Vec<usize>)> {
        let inner = self.lock();
        let rel = inner.require(name)?;
        if !rel.kind.is_base() {
            return Err(EddyError::WrongObjectType(format!(
                "cannot {verb} {} \"{name}\": it is maintained by its query",
                rel.kind.noun()
            )));
        }
        if rel.kind == RelationKind::Stream && verb != "INSERT INTO" {
            return Err(EddyError::WrongObjectType(format!(
                "cannot {verb} stream \"{name}\": streams are append-only"
            )));
        }
        Ok((rel.schema.clone(), rel.kind, rel.not_null.clone()))
    }

    /// Append a batch of rows (columns in the relation's order) to a base stream or table,
    /// as one epoch. The programmatic twin of INSERT, for sources and benchmarks.
    pub async fn insert_batch(&self, name: &str, rows: RecordBatch) -> Result<usize> {
        let _w = self.writer.lock().await;
        let (schema, kind, not_null) = self.writable(name, "INSERT INTO")?;
        let hidden = self.hidden_columns(name);
        // Rows without the hidden rowtime get the insertion time.
        let rows =
            if rows.num_columns() + hidden.len() == schema.fields().len() && !hidden.is_empty() {
                let mut cols = rows.columns().to_vec();
                for &h in &hidden {
                    let f = schema.field(h);
                    let c = if f.name() == super::ddl::ROWTIME {
                        insertion_time(rows.num_rows())
                    } else {
                        // A Kafka source's other pseudo-columns: no partition or offset.
                        new_null_array(f.data_type(), rows.num_rows())
                    };
                    cols.insert(h.min(cols.len()), c);
                }
                let fields: Vec<_> = schema.fields().iter().cloned().collect();
                RecordBatch::try_new(
                    Arc::new(datafusion::arrow::datatypes::Schema::new(fields)),
                    cols,
                )?
            } else {
                rows
            };
        if rows.num_columns() != schema.fields().len() {
            return Err(EddyError::query(
                "42601",
                format!(
                    "{name} has {} columns, batch has {}",
                    schema.fields().len(),
                    rows.num_columns()
                ),
            ));
        }
        let columns = schema
            .fields()
            .iter()
            .zip(rows.columns())
            .map(|(f, c)| cast_value(c, f.name(), f.data_type()))
            .collect::<Result<Vec<_>>>()?;
        let rows = RecordBatch::try_new(schema.clone(), columns)?;
        check_not_null(&rows, &not_null, name)?;
        check_char_limits(&rows, &self.char_limits(name))?;
        let n = rows.num_rows();
        let mut inner = self.lock();
        let rows = admit(&mut inner, name, rows)?;
        let delta = match (&inner.require(name)?.storage, kind) {
            (Storage::Keyed(k), _) => k.upsert_delta(&rows)?,
            _ => ChangeBatch::inserts(rows),
        };
        self.apply_epoch(&mut inner, name, delta, true)?;
        Ok(n)
    }

    pub(super) async fn insert(&self, stmt: &Statement) -> Result<Output> {
        let Statement::Insert(ins) = stmt else {
            return Err(EddyError::internal("not an INSERT"));
        };
        let TableObject::TableName(table) = &ins.table else {
            return Err(EddyError::unsupported("INSERT INTO TABLE FUNCTION"));
        };
        let on_conflict = match &ins.on {
            None => None,
            Some(OnInsert::OnConflict(oc)) => Some(oc),
            Some(_) => return Err(EddyError::unsupported("INSERT ... ON DUPLICATE KEY")),
        };
        let name = object_name(table);
        let (schema, _, not_null) = self.writable(&name, "INSERT INTO")?;
        let source = ins
            .source
            .as_ref()
            .ok_or_else(|| EddyError::unsupported("INSERT without VALUES or SELECT"))?;
        // Target columns, in the order the source provides them.
        let hidden = self.hidden_columns(&name);
        let targets: Vec<usize> = if ins.columns.is_empty() {
            (0..schema.fields().len())
                .filter(|i| !hidden.contains(i))
                .collect()
        } else {
            ins.columns
                .iter()
                .map(|c| {
                    let n = object_name(c);
                    schema.index_of(&n).map_err(|_| {
                        EddyError::UnknownColumn(format!(
                            "column \"{n}\" of relation \"{name}\" does not exist"
                        ))
                    })
                })
                .collect::<Result<_>>()?
        };
        for (i, t) in targets.iter().enumerate() {
            if targets[..i].contains(t) {
                return Err(EddyError::query(
                    "42701",
                    format!(
                        "column \"{}\" specified more than once",
                        schema.field(*t).name()
                    ),
                ));
            }
        }
        // Postgres types a VALUES string by its target column, not by its neighbours:
        // `VALUES (1.5), ('NaN')` into a float column is two floats.
        let typed_source;
        let source = if let SetExpr::Values(_) = source.body.as_ref() {
            let mut copy = source.as_ref().clone();
            if let SetExpr::Values(v) = copy.body.as_mut() {
                let types: Vec<_> = targets
                    .iter()
                    .map(|t| schema.field(*t).data_type().clone())
                    .collect();
                type_value_strings(v, &types);
            }
            typed_source = copy;
            &typed_source
        } else {
            source.as_ref()
        };
        let (src_schema, batches) = match super::literal_values::literal_batch(source) {
            Some(batch) => (batch.schema(), vec![batch]),
            None => self.run_query(source).await?,
        };
        let src_cols = src_schema.fields().len();
        if src_cols > targets.len() {
            return Err(EddyError::query(
                "42601",
                "INSERT has more expressions than target columns",
            ));
        }
        if !ins.columns.is_empty() && src_cols < targets.len() {
            return Err(EddyError::query(
                "42601",
                "INSERT has more target columns than expressions",
            ));
        }
        let data = concat_batches(&src_schema, batches.iter())?;
        let n = data.num_rows();
        let mut columns: Vec<ArrayRef> = schema
            .fields()
            .iter()
            .map(|f| new_null_array(f.data_type(), n))
            .collect();
        for (src, &target) in targets.iter().take(src_cols).enumerate() {
            let field = schema.field(target);
            columns[target] = cast_value(data.column(src), field.name(), field.data_type())?;
        }
        for &h in &hidden {
            if !targets.contains(&h) && schema.field(h).name() == super::ddl::ROWTIME {
                columns[h] = insertion_time(n);
            }
        }
        let rows = RecordBatch::try_new(schema.clone(), columns)?;
        check_not_null(&rows, &not_null, &name)?;
        check_char_limits(&rows, &self.char_limits(&name))?;
        if self.kafka.is_source(&name) {
            if ins.returning.is_some() || on_conflict.is_some() {
                return Err(EddyError::unsupported(
                    "INSERT ... RETURNING / ON CONFLICT into a Kafka-backed relation",
                ));
            }
            // A Kafka-backed relation is fed by its topic: the rows go there, and come
            // back through the source like any other record.
            let n = self.kafka_produce(&name, &rows).await?;
            return Ok(Output::command(format!("INSERT 0 {n}")));
        }
        let (rows, n) = match on_conflict {
            Some(oc) => {
                let rows = self.resolve_conflicts(&name, rows, oc).await?;
                let n = rows.num_rows();
                (rows, n)
            }
            None => (rows, n),
        };
        // RETURNING is computed before the commit, so a failing item changes nothing.
        let returned = match &ins.returning {
            Some(items) => Some(self.returning(&name, &rows, &hidden, items).await?),
            None => None,
        };
        self.commit_insert(name, rows).await?;
        Ok(returned.unwrap_or_else(|| Output::command(format!("INSERT 0 {n}"))))
    }

    pub(super) async fn update(&self, stmt: &Statement) -> Result<Output> {
        let Statement::Update(up) = stmt else {
            return Err(EddyError::internal("not an UPDATE"));
        };
        if up.from.is_some() || !up.table.joins.is_empty() {
            return Err(EddyError::unsupported("UPDATE ... FROM"));
        }
        let TableFactor::Table { name: table, .. } = &up.table.relation else {
            return Err(EddyError::unsupported(
                "UPDATE of something other than a table",
            ));
        };
        let name = object_name(table);
        self.kafka_refuse_write(&name, "UPDATE")?;
        let (schema, _, not_null) = self.writable(&name, "UPDATE")?;
        let mut new_exprs: Vec<Option<&Expr>> = vec![None; schema.fields().len()];
        for Assignment { target, value } in &up.assignments {
            let AssignmentTarget::ColumnName(col) = target else {
                return Err(EddyError::unsupported("UPDATE SET (a, b) = (...)"));
            };
            let col_name = object_name(col);
            let idx = schema.index_of(&col_name).map_err(|_| {
                EddyError::UnknownColumn(format!(
                    "column \"{col_name}\" of relation \"{name}\" does not exist"
                ))
            })?;
            new_exprs[idx] = Some(value);
        }
        // One query gives each matching row's old and new values, from one snapshot.
        let mut select = Vec::new();
        for f in schema.fields() {
            select.push(quote_ident(f.name()));
        }
        for (i, f) in schema.fields().iter().enumerate() {
            let value = match new_exprs[i] {
                Some(e) => format!("({e})"),
                None => quote_ident(f.name()),
            };
            select.push(format!("{value} AS \"__eddy_new_{i}\""));
        }
        let where_clause = up
            .selection
            .as_ref()
            .map(|w| format!(" WHERE {w}"))
            .unwrap_or_default();
        let sql = format!(
            "SELECT {} FROM {}{}",
            select.join(", "),
            quote_ident(&name),
            where_clause
        );
        let query = parse_query(&sql)?;
        let (_, batches) = self.run_query(&query).await?;
        let width = schema.fields().len();
        let mut old_parts = Vec::new();
        let mut new_parts = Vec::new();
        let mut n = 0;
        for b in &batches {
            n += b.num_rows();
            old_parts.push(RecordBatch::try_new(
                schema.clone(),
                b.columns()[..width].to_vec(),
            )?);
            let cols = schema
                .fields()
                .iter()
                .enumerate()
                .map(|(i, f)| cast_value(b.column(width + i), f.name(), f.data_type()))
                .collect::<Result<Vec<_>>>()?;
            new_parts.push(RecordBatch::try_new(schema.clone(), cols)?);
        }
        let old = concat_batches(&schema, old_parts.iter())?;
        let new = concat_batches(&schema, new_parts.iter())?;
        check_not_null(&new, &not_null, &name)?;
        check_char_limits(&new, &self.char_limits(&name))?;
        let returned = match &up.returning {
            Some(items) => {
                let hidden = self.hidden_columns(&name);
                Some(self.returning(&name, &new, &hidden, items).await?)
            }
            None => None,
        };
        let delta = ChangeBatch::concat(
            &schema,
            &[ChangeBatch::retractions(old), ChangeBatch::inserts(new)],
        )?;
        let mut inner = self.lock();
        self.apply_epoch(&mut inner, &name, delta, true)?;
        Ok(returned.unwrap_or_else(|| Output::command(format!("UPDATE {n}"))))
    }

    pub(super) async fn delete(&self, stmt: &Statement) -> Result<Output> {
        let Statement::Delete(del) = stmt else {
            return Err(EddyError::internal("not a DELETE"));
        };
        let from = match &del.from {
            FromTable::WithFromKeyword(t) | FromTable::WithoutKeyword(t) => t,
        };
        if del.using.is_some() || from.len() != 1 || !from[0].joins.is_empty() {
            return Err(EddyError::unsupported("DELETE ... USING / several tables"));
        }
        let TableFactor::Table { name: table, .. } = &from[0].relation else {
            return Err(EddyError::unsupported(
                "DELETE from something other than a table",
            ));
        };
        let name = object_name(table);
        self.kafka_refuse_write(&name, "DELETE FROM")?;
        let (schema, _, _) = self.writable(&name, "DELETE FROM")?;
        let where_clause = del
            .selection
            .as_ref()
            .map(|w| format!(" WHERE {w}"))
            .unwrap_or_default();
        let sql = format!("SELECT * FROM {}{}", quote_ident(&name), where_clause);
        let (_, batches) = self.run_query(&*parse_query(&sql)?).await?;
        let batches: Vec<RecordBatch> = batches
            .into_iter()
            .map(|b| RecordBatch::try_new(schema.clone(), b.columns().to_vec()))
            .collect::<std::result::Result<_, _>>()?;
        let old = concat_batches(&schema, batches.iter())?;
        let n = old.num_rows();
        let returned = match &del.returning {
            Some(items) => {
                let hidden = self.hidden_columns(&name);
                Some(self.returning(&name, &old, &hidden, items).await?)
            }
            None => None,
        };
        let mut inner = self.lock();
        self.apply_epoch(&mut inner, &name, ChangeBatch::retractions(old), true)?;
        Ok(returned.unwrap_or_else(|| Output::command(format!("DELETE {n}"))))
    }

    /// `RETURNING items` of a write: the items evaluated over the rows it wrote (or, for
    /// DELETE, removed), as a query over those rows under the relation's name. Hidden
    /// columns are not visible to it, as in a SELECT.
    async fn returning(
        &self,
        name: &str,
        rows: &RecordBatch,
        hidden: &[usize],
        items: &[datafusion::sql::sqlparser::ast::SelectItem],
    ) -> Result<Output> {
        use datafusion::catalog::MemTable;
        let visible: Vec<usize> = (0..rows.num_columns())
            .filter(|i| !hidden.contains(i))
            .collect();
        let rows = rows.project(&visible)?;
        let list: Vec<String> = items.iter().map(|i| i.to_string()).collect();
        let ctx = super::query::context_with_schema(
            &self.batch_state,
            Arc::new(datafusion::catalog::MemorySchemaProvider::new()),
        );
        let table = MemTable::try_new(rows.schema(), vec![vec![rows]])?;
        ctx.register_table(name, Arc::new(table))?;
        let (schema, batches) = super::upsert::run_on(
            &ctx,
            &format!("SELECT {} FROM {}", list.join(", "), quote_ident(name)),
        )
        .await?;
        Ok(Output::Rows { schema, batches })
    }
}

/// The insertion time (now, µs) of `n` rows of one statement: a stream's implicit rowtime.
fn insertion_time(n: usize) -> ArrayRef {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0);
    std::sync::Arc::new(datafusion::arrow::array::TimestampMicrosecondArray::from(
        vec![now; n],
    ))
}

pub(super) fn parse_query(sql: &str) -> Result<Box<datafusion::sql::sqlparser::ast::Query>> {
    Ok(datafusion::sql::sqlparser::parser::Parser::new(
        &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
    )
    .try_with_sql(sql)?
    .parse_query()?)
}

pub(crate) fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Cast the literals of VALUES rows to their target column's type where that is a float,
/// as Postgres does: otherwise `VALUES (1.5), ('NaN')` would type the column by its decimal
/// literal, which has no NaN. Everything else is cast strictly by [`cast_value`].
fn type_value_strings(
    values: &mut datafusion::sql::sqlparser::ast::Values,
    types: &[datafusion::arrow::datatypes::DataType],
) {
    use datafusion::arrow::datatypes::DataType as T;
    use datafusion::sql::sqlparser::ast::{CastKind, DataType as S, Expr, Value};
    for row in values.rows.iter_mut() {
        for (e, ty) in row.iter_mut().zip(types) {
            let literal = |e: &Expr| {
                matches!(e, Expr::Value(v)
                    if matches!(v.value, Value::SingleQuotedString(_) | Value::Number(_, _)))
            };
            let is_literal = match &*e {
                Expr::UnaryOp { expr, .. } => literal(expr),
                other => literal(other),
            };
            if !is_literal {
                continue;
            }
            let sql_type = match ty {
                T::Float32 => S::Real,
                T::Float64 => S::DoublePrecision,
                _ => continue,
            };
            *e = Expr::Cast {
                kind: CastKind::Cast,
                expr: Box::new(e.clone()),
                data_type: sql_type,
                array: false,
                format: None,
            };
        }
    }
}

/// Cast a value column to its target column type, strictly: no silent NULLs, no wrapping.
pub(super) fn cast_value(
    array: &ArrayRef,
    column: &str,
    target: &datafusion::arrow::datatypes::DataType,
) -> Result<ArrayRef> {
    use datafusion::arrow::datatypes::DataType as T;
    let source = array.data_type();
    if source == target {
        return Ok(array.clone());
    }
    let mismatch = || {
        EddyError::query(
            "42804",
            format!(
                "column \"{column}\" is of type {} but expression is of type {}",
                pg_type_name(target),
                pg_type_name(source)
            ),
        )
    };
    // Postgres does not turn booleans into numbers or numbers into booleans implicitly.
    let numeric = |t: &T| t.is_numeric();
    if (matches!(source, T::Boolean) && numeric(target))
        || (numeric(source) && matches!(target, T::Boolean))
    {
        return Err(mismatch());
    }
    if !can_cast_types(source, target) {
        return Err(mismatch());
    }
    // Postgres rounds (half away from zero) where Arrow truncates: to integers from floats
    // and decimals, and to decimals of a smaller scale.
    let rounded = round_for(array, target)?;
    let array = rounded.as_ref().unwrap_or(array);
    // Date/time and interval text in every form Postgres reads (see sql::pg_literals).
    let normalized;
    let array = match (crate::sql::pg_literals::Kind::of_arrow(target), source) {
        (Some(kind), T::Utf8) => {
            use datafusion::arrow::array::StringArray;
            let strings = array
                .as_any()
                .downcast_ref::<StringArray>()
                .ok_or_else(|| EddyError::internal("Utf8 column is not a StringArray"))?;
            let out: StringArray = strings
                .iter()
                .map(|v| {
                    v.map(|s| {
                        crate::sql::pg_literals::normalize(kind, s).unwrap_or_else(|| s.into())
                    })
                })
                .collect();
            normalized = std::sync::Arc::new(out) as ArrayRef;
            &normalized
        }
        _ => array,
    };
    // BYTEA text input is hex (\x0102), as Postgres writes it.
    if matches!(target, T::Binary) && matches!(source, T::Utf8) {
        return decode_bytea(array, column);
    }
    let opts = CastOptions {
        safe: false,
        format_options: FormatOptions::default(),
    };
    cast_with_options(array, target, &opts).map_err(|e| cast_error(&e.to_string(), column, target))
}

/// A Postgres-style message for a value that does not convert.
fn cast_error(
    detail: &str,
    column: &str,
    target: &datafusion::arrow::datatypes::DataType,
) -> EddyError {
    use datafusion::arrow::datatypes::DataType as T;
    let ty = pg_type_name(target);
    let quoted = detail.split('\'').nth(1).map(str::to_string);
    let out_of_range = detail.contains("overflow")
        || detail.contains("Can't cast value")
        || detail.contains("too large");
    if out_of_range {
        return EddyError::BadValue {
            code: "22003",
            message: format!("value out of range for type {ty} in column \"{column}\""),
        };
    }
    let code = match target {
        T::Date32 | T::Date64 | T::Timestamp(_, _) | T::Time64(_) | T::Time32(_) => "22008",
        _ => "22P02",
    };
    let message = match quoted {
        Some(v) => format!("invalid input syntax for type {ty}: \"{v}\" (column \"{column}\")"),
        None => format!("invalid value for column \"{column}\" of type {ty}"),
    };
    EddyError::BadValue { code, message }
}

fn round_for(
    array: &ArrayRef,
    target: &datafusion::arrow::datatypes::DataType,
) -> Result<Option<ArrayRef>> {
    use datafusion::arrow::array::{Decimal128Array, Float32Array, Float64Array};
    use datafusion::arrow::datatypes::DataType as T;
    let to_int = target.is_integer();
    Ok(match (array.data_type(), target) {
        (T::Float64, T::Decimal128(p, s)) => {
            // A literal like 1.005 arrives as the nearest double (1.00499...); Postgres reads
            // it as an exact numeric. Converting through the shortest decimal text of the
            // double recovers the literal, then rounds half away from zero to the scale.
            let a = array
                .as_any()
                .downcast_ref::<Float64Array>()
                .expect("Float64");
            let mut out = Vec::with_capacity(a.len());
            for v in a.iter() {
                out.push(match v {
                    None => None,
                    Some(f) if !f.is_finite() => {
                        return Err(EddyError::BadValue {
                            code: "22P02",
                            message: format!("cannot store {f} in a numeric column"),
                        })
                    }
                    Some(f) => Some(decimal_from_text(&format!("{f}"), *p, *s)?),
                });
            }
            Some(std::sync::Arc::new(
                Decimal128Array::from(out).with_precision_and_scale(*p, *s)?,
            ))
        }
        (T::Float64, _) if to_int => {
            let a = array
                .as_any()
                .downcast_ref::<Float64Array>()
                .expect("Float64");
            Some(std::sync::Arc::new(
                a.unary::<_, datafusion::arrow::datatypes::Float64Type>(|v| v.round()),
            ))
        }
        (T::Float32, _) if to_int => {
            let a = array
                .as_any()
                .downcast_ref::<Float32Array>()
                .expect("Float32");
            Some(std::sync::Arc::new(
                a.unary::<_, datafusion::arrow::datatypes::Float32Type>(|v| v.round()),
            ))
        }
        (T::Decimal128(p, s), _) if to_int || matches!(target, T::Decimal128(_, ts) if ts < s) => {
            let keep = match target {
                T::Decimal128(_, ts) => *ts,
                _ => 0,
            };
            let drop = (*s - keep) as u32;
            let a = array
                .as_any()
                .downcast_ref::<Decimal128Array>()
                .expect("Decimal128");
            let div = 10i128.pow(drop);
            let half = div / 2;
            let r: Decimal128Array = a.unary(|v| {
                let q = v / div;
                let rem = v % div;
                if rem.abs() >= half && drop > 0 {
                    (q + v.signum()) * div
                } else {
                    q * div
                }
            });
            Some(std::sync::Arc::new(r.with_precision_and_scale(*p, *s)?))
        }
        _ => None,
    })
}

/// Parse plain decimal text (no exponent) into a Decimal128 of `scale`, rounding half away
/// from zero; 22003 when it does not fit `precision`.
fn decimal_from_text(text: &str, precision: u8, scale: i8) -> Result<i128> {
    let out_of_range = || EddyError::BadValue {
        code: "22003",
        message: format!(
            "numeric field overflow: {text} does not fit numeric({precision},{scale})"
        ),
    };
    let (negative, digits) = match text.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, text),
    };
    let (int_part, frac_part) = digits.split_once('.').unwrap_or((digits, ""));
    let scale = scale.max(0) as usize;
    let mut value: i128 = 0;
    for c in int_part
        .chars()
        .chain(frac_part.chars().chain(std::iter::repeat('0')).take(scale))
    {
        let d = c.to_digit(10).ok_or_else(out_of_range)? as i128;
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(d))
            .ok_or_else(out_of_range)?;
    }
    if frac_part
        .chars()
        .nth(scale)
        .map(|c| c >= '5')
        .unwrap_or(false)
    {
        value += 1;
    }
    if value >= 10i128.pow(precision as u32) {
        return Err(out_of_range());
    }
    Ok(if negative { -value } else { value })
}

fn decode_bytea(array: &ArrayRef, column: &str) -> Result<ArrayRef> {
    use datafusion::arrow::array::{BinaryArray, StringArray};
    let a = array.as_any().downcast_ref::<StringArray>().expect("Utf8");
    let mut out: Vec<Option<Vec<u8>>> = Vec::with_capacity(a.len());
    for v in a.iter() {
        out.push(match v {
            None => None,
            Some(s) => match s.strip_prefix("\\x") {
                Some(hex) => {
                    if hex.len() % 2 != 0 {
                        return Err(EddyError::BadValue { code: "22P02", message: format!("invalid hexadecimal data: odd number of digits (column \"{column}\")") });
                    }
                    let mut bytes = Vec::with_capacity(hex.len() / 2);
                    for i in (0..hex.len()).step_by(2) {
                        let b = u8::from_str_radix(hex.get(i..i + 2).unwrap_or("zz"), 16).map_err(|_| EddyError::BadValue {
                            code: "22P02",
                            message: format!("invalid hexadecimal digit in \"{s}\" (column \"{column}\")"),
                        })?;
                        bytes.push(b);
                    }
                    Some(bytes)
                }
                None => Some(s.as_bytes().to_vec()),
            },
        });
    }
    Ok(std::sync::Arc::new(BinaryArray::from_iter(out)))
}

/// Rows without an event time cannot be placed in time: they are refused and counted
/// (visible as `rejected_rows` in `eddy_relations`), and the rest of the statement goes in.
pub(super) fn admit(
    inner: &mut super::Inner,
    name: &str,
    rows: RecordBatch,
) -> Result<RecordBatch> {
    let Some(rel) = inner.get_mut(name) else {
        return Ok(rows);
    };
    let Some(et) = rel.event_time.as_ref() else {
        return Ok(rows);
    };
    let column = rows.column(et.column);
    if column.null_count() == 0 {
        return Ok(rows);
    }
    rel.rejected_rows += column.null_count() as u64;
    tracing::warn!(
        relation = name,
        rows = column.null_count(),
        "rows without an event time rejected"
    );
    let keep = datafusion::arrow::compute::is_not_null(column)?;
    Ok(datafusion::arrow::compute::filter_record_batch(
        &rows, &keep,
    )?)
}

/// `VARCHAR(n)` / `CHAR(n)`: a longer value is an error (22001), as in Postgres.
fn check_char_limits(rows: &RecordBatch, limits: &[(usize, u64)]) -> Result<()> {
    use datafusion::arrow::array::StringArray;
    for &(c, n) in limits {
        let Some(a) = rows.column(c).as_any().downcast_ref::<StringArray>() else {
            continue;
        };
        if let Some(v) = a.iter().flatten().find(|v| v.chars().count() as u64 > n) {
            return Err(EddyError::BadValue {
                code: "22001",
                message: format!(
                    "value too long for type character varying({n}) in column \"{}\": \"{}\"",
                    rows.schema().field(c).name(),
                    v.chars().take(40).collect::<String>()
                ),
            });
        }
    }
    Ok(())
}

fn check_not_null(rows: &RecordBatch, not_null: &[usize], name: &str) -> Result<()> {
    for &c in not_null {
        if rows.column(c).null_count() > 0 {
            return Err(EddyError::BadValue {
                code: "23502",
                message: format!(
                    "null value in column \"{}\" of relation \"{name}\" violates not-null constraint",
                    rows.schema().field(c).name()
                ),
            });
        }
    }
    Ok(())
}

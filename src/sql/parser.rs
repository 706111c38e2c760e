//! Statement parser: our streaming DDL on top of sqlparser's PostgreSQL dialect.
//!
//! Recognised here (everything else is handed to sqlparser whole):
//! - `CREATE STREAM name (cols) [WITH (...)]`, `CREATE STREAM name [WITH (...)] AS SELECT ...`
//! - `CREATE TABLE name AS SELECT ... [EMIT CHANGES]` (ksqlDB: a continuously maintained table)
//! - `CREATE [MATERIALIZED] VIEW name AS SELECT ...`
//! - `DROP STREAM|TABLE|VIEW|MATERIALIZED VIEW [IF EXISTS] name, ... [CASCADE|RESTRICT]`
//! - `SHOW STREAMS|TABLES|MATERIALIZED VIEWS|VIEWS|QUERIES`, `SHOW <setting>`
//! - `DESCRIBE name`, `EXPLAIN name`, `EXPLAIN <query or CREATE ... AS>`
//! - `SET`, `BEGIN`/`COMMIT`/`ROLLBACK` (sessions are autocommit)

use datafusion::sql::sqlparser::ast::{
    ColumnDef, ColumnOption, CreateTableOptions, Expr, ObjectName, Query, SqlOption, Statement,
    TableConstraint,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

use super::split::position_in_message;
use crate::error::{EddyError, Result};

/// What kind of relation a `CREATE ... AS SELECT` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewKind {
    /// `CREATE MATERIALIZED VIEW` / `CREATE VIEW`.
    MaterializedView,
    /// ksqlDB `CREATE TABLE ... AS SELECT`.
    Table,
    /// ksqlDB `CREATE STREAM ... AS SELECT`: must stay append-only.
    Stream,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emit {
    Changes,
    Final,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShowWhat {
    Streams,
    Tables,
    MaterializedViews,
    Queries,
    Setting(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropKind {
    Stream,
    Table,
    MaterializedView,
    View,
    /// A generated source (nexmark, datagen) and the streams it feeds.
    Source,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransactionOp {
    Begin,
    Commit,
    Rollback,
    Savepoint(String),
    Release(String),
    RollbackTo(String),
}

#[derive(Debug, Clone)]
pub enum EddyStatement {
    /// A base stream (append-only) or table (keyed, upsert when it has a primary key).
    CreateSource {
        name: String,
        is_stream: bool,
        columns: Vec<ColumnDef>,
        constraints: Vec<TableConstraint>,
        options: Vec<SqlOption>,
        if_not_exists: bool,
        /// `WATERMARK FOR col AS col - INTERVAL ...`: the event-time column and the
        /// allowed out-of-orderness in µs.
        watermark: Option<(String, i64)>,
    },
    CreateView {
        name: String,
        kind: ViewKind,
        query: Box<Query>,
        emit: Option<Emit>,
        options: Vec<SqlOption>,
        if_not_exists: bool,
        /// A ksqlDB `WINDOW TUMBLING|HOPPING (...)` clause.
        window: Option<crate::sql::windows::KsqlWindow>,
    },
    Drop {
        kind: DropKind,
        names: Vec<String>,
        if_exists: bool,
        cascade: bool,
    },
    /// An ad-hoc query over a snapshot.
    Query(Box<Query>),
    Insert(Box<Statement>),
    Update(Box<Statement>),
    Delete(Box<Statement>),
    Show(ShowWhat),
    /// `SUBSCRIBE [TO] name [WITH (SNAPSHOT = true|false)]`, or ksqlDB's
    /// `SELECT * FROM name EMIT CHANGES [LIMIT n]`.
    Subscribe {
        name: String,
        snapshot: Option<bool>,
        limit: Option<usize>,
        /// `SUBSCRIBE (SELECT ...)` / a push query more complex than `SELECT * FROM x`:
        /// maintained by a transient view for as long as the subscription lasts.
        query: Option<Box<Query>>,
    },
    Describe(String),
    /// `EXPLAIN name`: the dataflow of a view.
    ExplainRelation(String),
    /// `EXPLAIN ANALYZE view`: the operator tree with its live counters.
    ExplainAnalyze(String),
    /// `EXPLAIN CREATE ... AS SELECT`: the dataflow a view would get.
    ExplainCreate(Box<EddyStatement>),
    /// `EXPLAIN SELECT ...`: DataFusion's batch plan.
    ExplainQuery(Box<Query>),
    Set {
        name: String,
        value: String,
    },
    Transaction(TransactionOp),
    /// Accepted and ignored: DISCARD, DEALLOCATE, RESET, CLOSE, LISTEN.
    NoOp(&'static str),
    /// `CREATE SINK ... FROM ...` / `DROP SINK` (Kafka).
    Sink(crate::sql::kafka::SinkStatement),
    /// `CHECKPOINT` (as in Postgres): write a checkpoint of all state now.
    Checkpoint,
}

/// Parse one statement (no trailing semicolon needed).
pub fn parse_statement(sql: &str) -> Result<EddyStatement> {
    parse_inner(sql).map_err(|e| match e {
        EddyError::Syntax {
            message,
            position: None,
        } => {
            // An error at the end of input has no location: Postgres points past the end.
            let position = position_in_message(sql, &message).or_else(|| {
                message
                    .contains("found: EOF")
                    .then(|| sql.trim_end().chars().count() + 1)
            });
            let message = strip_location(&message);
            EddyError::Syntax { message, position }
        }
        other => other,
    })
}

fn strip_location(m: &str) -> String {
    match m.rfind(" at Line: ") {
        Some(i) => m[..i].to_string(),
        None => m.to_string(),
    }
}

fn words(sql: &str) -> Result<Vec<String>> {
    let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql)
        .tokenize()
        .map_err(|e| EddyError::syntax(format!("syntax error: {e}")))?;
    Ok(tokens
        .into_iter()
        .filter(|t| !matches!(t, Token::Whitespace(_)))
        .take(4)
        .map(|t| match t {
            Token::Word(w) if w.quote_style.is_none() => w.value.to_uppercase(),
            other => other.to_string(),
        })
        .collect())
}

/// ksqlDB quotes identifiers with backticks (`` `Name` ``), Postgres with double quotes.
/// Backticks outside string literals and double-quoted identifiers become double quotes
/// (a double quote between backticks is doubled), so the rest sees one spelling.
pub fn backtick_identifiers(sql: &str) -> std::borrow::Cow<'_, str> {
    if !sql.contains('`') {
        return std::borrow::Cow::Borrowed(sql);
    }
    let mut out = String::with_capacity(sql.len() + 2);
    let (mut in_string, mut in_quoted, mut in_tick) = (false, false, false);
    for c in sql.chars() {
        match c {
            '\'' if !in_quoted && !in_tick => {
                in_string = !in_string;
                out.push(c);
            }
            '"' if in_tick => out.push_str("\"\""),
            '"' if !in_string => {
                in_quoted = !in_quoted;
                out.push(c);
            }
            '`' if !in_string && !in_quoted => {
                in_tick = !in_tick;
                out.push('"');
            }
            _ => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// ksqlDB statements and clauses eddy does not implement, refused naming them (0A000)
/// rather than as a syntax error.
fn refuse_ksql_only(sql: &str, head: &[String]) -> Result<()> {
    if head.first().map(String::as_str) == Some("TERMINATE") {
        return Err(EddyError::unsupported(
            "TERMINATE: a persistent query is its stream or table here; DROP it (DROP STREAM|TABLE name) to stop it",
        ));
    }
    if head.first().map(String::as_str) != Some("CREATE") {
        return Ok(());
    }
    let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql)
        .tokenize()
        .map_err(|e| EddyError::syntax(format!("syntax error: {e}")))?;
    let significant: Vec<&Token> = tokens
        .iter()
        .filter(|t| !matches!(t, Token::Whitespace(_)))
        .collect();
    let is_word = |t: &Token, w: &str| matches!(t, Token::Word(x) if x.quote_style.is_none() && x.value.eq_ignore_ascii_case(w));
    let mut depth = 0i32;
    for (i, t) in significant.iter().enumerate() {
        match t {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            _ if depth == 0
                && is_word(t, "PARTITION")
                && significant.get(i + 1).is_some_and(|n| is_word(n, "BY")) =>
            {
                return Err(EddyError::unsupported(
                    "PARTITION BY (re-keying a stream through a repartition topic) is not supported; the output keeps its source's key column",
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

fn parse_inner(sql: &str) -> Result<EddyStatement> {
    let sql = &*backtick_identifiers(sql);
    let head = words(sql)?;
    refuse_ksql_only(sql, &head)?;
    let w = |i: usize| head.get(i).map(String::as_str).unwrap_or("");
    let (sql_no_limit, push_limit) = strip_push_limit(sql);
    let sql = sql_no_limit.as_str();
    let (body, emit) = strip_emit(sql)?;
    let (body, window) = crate::sql::windows::extract_ksql_window(&body)?;
    let body = crate::sql::windows::extract_within(&body)?;
    match (w(0), w(1), w(2)) {
        ("CREATE", "STREAM", _) | ("CREATE", "OR", "REPLACE")
            if w(1) == "STREAM" || w(3) == "STREAM" =>
        {
            parse_create_stream(&body, emit, window)
        }
        ("CREATE", "SOURCE", _) => {
            let body = crate::sql::kafka::cut_format_encode(&body)?;
            let at = body.to_uppercase().find("SOURCE").unwrap_or(0);
            let body = format!("{}STREAM{}", &body[..at], &body[at + 6..]);
            parse_create_stream(&body, emit, window)
        }
        ("CREATE", "SINK", _) => Ok(EddyStatement::Sink(crate::sql::kafka::parse_create_sink(
            sql,
        )?)),
        ("DROP", "SINK", _) => Ok(EddyStatement::Sink(crate::sql::kafka::parse_drop_sink(
            sql,
        )?)),
        ("DROP", "STREAM", _) => parse_drop(sql, DropKind::Stream),
        ("DROP", "SOURCE", _) => parse_drop(sql, DropKind::Source),
        ("DROP", "TABLE", _) => parse_drop(sql, DropKind::Table),
        ("DROP", "VIEW", _) => parse_drop(sql, DropKind::View),
        ("DROP", "MATERIALIZED", "VIEW") => parse_drop(sql, DropKind::MaterializedView),
        ("SUBSCRIBE", _, _) => parse_subscribe(sql),
        ("SHOW", "STREAMS", _) => Ok(EddyStatement::Show(ShowWhat::Streams)),
        ("SHOW", "TABLES", _) => Ok(EddyStatement::Show(ShowWhat::Tables)),
        ("SHOW", "MATERIALIZED", "VIEWS") | ("SHOW", "VIEWS", _) => {
            Ok(EddyStatement::Show(ShowWhat::MaterializedViews))
        }
        ("SHOW", "QUERIES", _) => Ok(EddyStatement::Show(ShowWhat::Queries)),
        ("SHOW", _, _) => {
            let name = sql.trim().trim_end_matches(';')[4..].trim().to_lowercase();
            Ok(EddyStatement::Show(ShowWhat::Setting(name)))
        }
        ("DESCRIBE", _, _) | ("DESC", _, _) => {
            let mut p = Parser::new(&PostgreSqlDialect {}).try_with_sql(sql)?;
            p.next_token();
            let _ = p.parse_keyword(Keyword::EXTENDED);
            let name = p.parse_object_name(false)?;
            expect_end(&mut p)?;
            Ok(EddyStatement::Describe(object_name(&name)))
        }
        ("EXPLAIN", _, _) => parse_explain(sql),
        ("SET", _, _) => parse_set(sql),
        ("BEGIN", _, _) | ("START", "TRANSACTION", _) => {
            Ok(EddyStatement::Transaction(TransactionOp::Begin))
        }
        ("COMMIT", _, _) | ("END", _, _) => Ok(EddyStatement::Transaction(TransactionOp::Commit)),
        ("SAVEPOINT", _, _) => Ok(EddyStatement::Transaction(TransactionOp::Savepoint(
            savepoint_name(sql, 1),
        ))),
        ("RELEASE", "SAVEPOINT", _) => Ok(EddyStatement::Transaction(TransactionOp::Release(
            savepoint_name(sql, 2),
        ))),
        ("RELEASE", _, _) => Ok(EddyStatement::Transaction(TransactionOp::Release(
            savepoint_name(sql, 1),
        ))),
        ("ROLLBACK", "TO", "SAVEPOINT") => Ok(EddyStatement::Transaction(
            TransactionOp::RollbackTo(savepoint_name(sql, 3)),
        )),
        ("ROLLBACK", "TO", _) => Ok(EddyStatement::Transaction(TransactionOp::RollbackTo(
            savepoint_name(sql, 2),
        ))),
        ("ROLLBACK", _, _) | ("ABORT", _, _) => {
            Ok(EddyStatement::Transaction(TransactionOp::Rollback))
        }
        ("DISCARD", _, _) => Ok(EddyStatement::NoOp("DISCARD ALL")),
        ("CHECKPOINT", "" | ";", _) => Ok(EddyStatement::Checkpoint),
        // RisingWave's FLUSH waits until earlier writes are visible in every view; here an
        // INSERT's rows are in every dependent view when it returns, so there is no wait.
        ("FLUSH", "" | ";", _) => Ok(EddyStatement::NoOp("FLUSH")),
        ("DEALLOCATE", _, _) => Ok(EddyStatement::NoOp("DEALLOCATE")),
        ("RESET", _, _) => Ok(EddyStatement::NoOp("RESET")),
        ("CREATE", "TABLE", _) => {
            let body = crate::sql::kafka::cut_format_encode(&body)?;
            parse_with_sqlparser(&body, emit, window)
        }
        _ => match parse_with_sqlparser(&body, emit, window)? {
            EddyStatement::Subscribe {
                name,
                snapshot,
                query,
                ..
            } => Ok(EddyStatement::Subscribe {
                name,
                snapshot,
                limit: push_limit,
                query,
            }),
            other if push_limit.is_some() => {
                let _ = other;
                Err(EddyError::syntax(
                    "syntax error: LIMIT after EMIT CHANGES applies to push queries only",
                ))
            }
            other => Ok(other),
        },
    }
}

/// The savepoint name after `skip` leading words (`SAVEPOINT x`, `ROLLBACK TO SAVEPOINT x`).
fn savepoint_name(sql: &str, skip: usize) -> String {
    let word = sql
        .trim()
        .trim_end_matches(';')
        .split_whitespace()
        .nth(skip)
        .unwrap_or("")
        .to_string();
    if word.starts_with('"') {
        word.trim_matches('"').to_string()
    } else {
        word.to_lowercase()
    }
}

/// `... EMIT CHANGES LIMIT n` (ksqlDB push query): cut the LIMIT, which belongs to the push.
fn strip_push_limit(sql: &str) -> (String, Option<usize>) {
    let trimmed = sql.trim_end().trim_end_matches(';').trim_end();
    let mut words = trimmed.rsplitn(3, char::is_whitespace);
    let (Some(n), Some(limit), Some(rest)) = (words.next(), words.next(), words.next()) else {
        return (sql.to_string(), None);
    };
    let upper = rest.trim_end().to_uppercase();
    match n.parse::<usize>() {
        Ok(n) if limit.eq_ignore_ascii_case("LIMIT") && upper.ends_with("EMIT CHANGES") => {
            (rest.to_string(), Some(n))
        }
        _ => (sql.to_string(), None),
    }
}

/// A push query must read one relation whole: `SELECT * FROM name EMIT CHANGES`.
fn push_query(q: &Query) -> Result<EddyStatement> {
    use datafusion::sql::sqlparser::ast::{GroupByExpr, SelectItem, SetExpr, TableFactor};
    let transient = || {
        Ok(EddyStatement::Subscribe {
            name: String::new(),
            snapshot: None,
            limit: None,
            query: Some(Box::new(q.clone())),
        })
    };
    let SetExpr::Select(s) = q.body.as_ref() else {
        return transient();
    };
    let plain = s.projection.len() == 1
        && matches!(s.projection[0], SelectItem::Wildcard(_))
        && s.from.len() == 1
        && s.from[0].joins.is_empty()
        && s.selection.is_none()
        && s.having.is_none()
        && matches!(&s.group_by, GroupByExpr::Expressions(e, _) if e.is_empty())
        && q.order_by.is_none()
        && q.limit_clause.is_none();
    let name = match s.from.first().map(|f| &f.relation) {
        Some(TableFactor::Table {
            name, args: None, ..
        }) if plain => name,
        _ => return transient(),
    };
    Ok(EddyStatement::Subscribe {
        name: object_name(name),
        snapshot: None,
        limit: None,
        query: None,
    })
}

fn parse_subscribe(sql: &str) -> Result<EddyStatement> {
    let mut p = Parser::new(&PostgreSqlDialect {}).try_with_sql(sql)?;
    p.next_token(); // SUBSCRIBE
    let _ = p.parse_keyword(Keyword::TO);
    let (name, query) = if p.consume_token(&Token::LParen) {
        let q = p.parse_query()?;
        p.expect_token(&Token::RParen)?;
        (String::new(), Some(q))
    } else {
        (object_name(&p.parse_object_name(false)?), None)
    };
    let mut snapshot = None;
    if p.parse_keyword(Keyword::WITH) {
        p.prev_token();
        for o in p.parse_options(Keyword::WITH)? {
            let text = o.to_string().to_lowercase().replace(' ', "");
            match text.as_str() {
                "snapshot=true" => snapshot = Some(true),
                "snapshot=false" => snapshot = Some(false),
                other => {
                    return Err(EddyError::query(
                        "22023",
                        format!("unknown SUBSCRIBE option {other}; SNAPSHOT = true|false"),
                    ))
                }
            }
        }
    }
    expect_end(&mut p)?;
    Ok(EddyStatement::Subscribe {
        name,
        snapshot,
        limit: None,
        query,
    })
}

/// `s` without its trailing words `words` (any case, any whitespace between), if it ends so.
fn strip_trailing_words<'a>(s: &'a str, words: &[&str]) -> Option<&'a str> {
    let mut rest = s;
    for w in words.iter().rev() {
        let t = rest.trim_end();
        let start = t
            .char_indices()
            .rev()
            .find(|(_, c)| c.is_whitespace())
            .map(|(i, c)| i + c.len_utf8())
            .unwrap_or(0);
        if !t[start..].eq_ignore_ascii_case(w) {
            return None;
        }
        rest = &t[..start];
    }
    Some(rest)
}

/// Remove a trailing `EMIT CHANGES` / `EMIT FINAL` (ksqlDB) or `EMIT ON WINDOW CLOSE`
/// (RisingWave's spelling of EMIT FINAL), returning the rest.
fn strip_emit(sql: &str) -> Result<(String, Option<Emit>)> {
    let trimmed = sql.trim_end().trim_end_matches(';').trim_end();
    if let Some(rest) = strip_trailing_words(trimmed, &["EMIT", "ON", "WINDOW", "CLOSE"]) {
        return Ok((rest.to_string(), Some(Emit::Final)));
    }
    let upper = trimmed.to_uppercase();
    for (suffix, emit) in [("CHANGES", Emit::Changes), ("FINAL", Emit::Final)] {
        if upper.ends_with(suffix) {
            let before = trimmed[..trimmed.len() - suffix.len()].trim_end();
            if before.to_uppercase().ends_with("EMIT") {
                let rest = before[..before.len() - 4].to_string();
                return Ok((rest, Some(emit)));
            }
        }
    }
    Ok((sql.to_string(), None))
}

fn parse_create_stream(
    sql: &str,
    emit: Option<Emit>,
    window: Option<crate::sql::windows::KsqlWindow>,
) -> Result<EddyStatement> {
    let (sql, watermark) = extract_watermark(sql)?;
    let sql =
        crate::sql::kafka::key_columns_as_primary(&crate::sql::kafka::cut_format_encode(&sql)?);
    let mut p = Parser::new(&PostgreSqlDialect {}).try_with_sql(&sql)?;
    p.expect_keyword(Keyword::CREATE)?;
    let _ = p.parse_keywords(&[Keyword::OR, Keyword::REPLACE]);
    p.next_token(); // STREAM
    let if_not_exists = p.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
    let name = object_name(&p.parse_object_name(false)?);
    let (columns, constraints) = p.parse_columns()?;
    let options = if p.parse_keyword(Keyword::WITH) {
        p.prev_token();
        p.parse_options(Keyword::WITH)?
    } else {
        vec![]
    };
    if p.parse_keyword(Keyword::AS) {
        if !columns.is_empty() {
            return Err(EddyError::syntax(
                "syntax error: CREATE STREAM ... AS SELECT takes its columns from the query; remove the column list",
            ));
        }
        let query = p.parse_query()?;
        expect_end(&mut p)?;
        return Ok(EddyStatement::CreateView {
            name,
            kind: ViewKind::Stream,
            query,
            emit,
            options,
            if_not_exists,
            window,
        });
    }
    expect_end(&mut p)?;
    // A generated source (nexmark) defines its own columns.
    let has_connector = options.iter().any(|o| {
        matches!(o, SqlOption::KeyValue { key, .. } if key.value.eq_ignore_ascii_case("connector"))
    });
    if columns.is_empty() && !has_connector {
        return Err(EddyError::syntax(format!(
            "syntax error: CREATE STREAM {name} needs a column list, e.g. CREATE STREAM {name} (id INT, ts TIMESTAMP)"
        )));
    }
    if emit.is_some() || window.is_some() {
        return Err(EddyError::syntax(
            "syntax error: EMIT and WINDOW apply to CREATE ... AS SELECT only",
        ));
    }
    Ok(EddyStatement::CreateSource {
        name,
        is_stream: true,
        columns,
        constraints,
        options,
        if_not_exists,
        watermark,
    })
}

/// Cut `WATERMARK FOR col AS col [- INTERVAL ...]` out of a column list, returning the rest
/// of the statement and (column, delay in µs).
fn extract_watermark(sql: &str) -> Result<(String, Option<(String, i64)>)> {
    let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql)
        .tokenize()
        .map_err(|e| EddyError::syntax(format!("syntax error: {e}")))?;
    let is_word = |t: &Token, w: &str| matches!(t, Token::Word(x) if x.quote_style.is_none() && x.value.eq_ignore_ascii_case(w));
    let next_sig =
        |from: usize| (from..tokens.len()).find(|i| !matches!(tokens[*i], Token::Whitespace(_)));
    let Some(start) = (0..tokens.len()).find(|&i| {
        is_word(&tokens[i], "WATERMARK")
            && next_sig(i + 1)
                .map(|j| is_word(&tokens[j], "FOR"))
                .unwrap_or(false)
    }) else {
        return Ok((sql.to_string(), None));
    };
    // The clause ends at the next top-level comma or the closing parenthesis of the list.
    let mut depth = 0i32;
    let mut end = tokens.len();
    for (i, t) in tokens.iter().enumerate().skip(start) {
        match t {
            Token::LParen => depth += 1,
            Token::RParen if depth == 0 => {
                end = i;
                break;
            }
            Token::RParen => depth -= 1,
            Token::Comma if depth == 0 => {
                end = i;
                break;
            }
            _ => {}
        }
    }
    let clause: String = tokens[start..end].iter().map(|t| t.to_string()).collect();
    // Drop the clause and one adjacent comma.
    let (cut_from, cut_to) = if matches!(tokens.get(end), Some(Token::Comma)) {
        (start, end + 1)
    } else {
        let before = (0..start)
            .rev()
            .find(|i| !matches!(tokens[*i], Token::Whitespace(_)));
        match before {
            Some(b) if matches!(tokens[b], Token::Comma) => (b, end),
            _ => (start, end),
        }
    };
    let rest: String = tokens
        .iter()
        .enumerate()
        .filter(|(i, _)| *i < cut_from || *i >= cut_to)
        .map(|(_, t)| t.to_string())
        .collect();
    let mut p = Parser::new(&PostgreSqlDialect {}).try_with_sql(&clause)?;
    p.next_token(); // WATERMARK
    p.next_token(); // FOR
    let column = ident_name(&p.parse_identifier()?);
    p.expect_keyword(Keyword::AS)?;
    let expr = p.parse_expr()?;
    let delay = match &expr {
        Expr::Identifier(i) if ident_name(i) == column => 0,
        Expr::BinaryOp { left, op: datafusion::sql::sqlparser::ast::BinaryOperator::Minus, right }
            if matches!(left.as_ref(), Expr::Identifier(i) if ident_name(i) == column) =>
        {
            crate::sql::windows::delay_of(right)?
        }
        other => {
            return Err(EddyError::syntax(format!(
                "syntax error: WATERMARK FOR {column} AS {other}: expected {column} or {column} - INTERVAL '...'"
            )))
        }
    };
    Ok((rest, Some((column, delay))))
}

fn parse_drop(sql: &str, kind: DropKind) -> Result<EddyStatement> {
    let mut p = Parser::new(&PostgreSqlDialect {}).try_with_sql(sql)?;
    p.expect_keyword(Keyword::DROP)?;
    match kind {
        DropKind::MaterializedView => {
            p.next_token();
            p.next_token();
        }
        _ => {
            p.next_token();
        }
    }
    let if_exists = p.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
    let names = p.parse_comma_separated(|p| p.parse_object_name(false))?;
    let cascade = p.parse_keyword(Keyword::CASCADE);
    if !cascade {
        let _ = p.parse_keyword(Keyword::RESTRICT);
    }
    // ksqlDB's DELETE TOPIC: nothing to delete for embedded relations.
    if p.parse_keyword(Keyword::DELETE) {
        let t = p.next_token();
        if !matches!(&t.token, Token::Word(w) if w.value.eq_ignore_ascii_case("TOPIC")) {
            return Err(EddyError::syntax(
                "syntax error: expected TOPIC after DELETE",
            ));
        }
    }
    expect_end(&mut p)?;
    Ok(EddyStatement::Drop {
        kind,
        names: names.iter().map(object_name).collect(),
        if_exists,
        cascade,
    })
}

fn parse_explain(sql: &str) -> Result<EddyStatement> {
    let rest = sql.trim_start()[7..].trim_start();
    let mut p = Parser::new(&PostgreSqlDialect {}).try_with_sql(rest)?;
    if p.parse_keyword(Keyword::ANALYZE) {
        let name = p
            .parse_object_name(false)
            .ok()
            .filter(|_| matches!(p.peek_token().token, Token::EOF | Token::SemiColon));
        return match name {
            Some(name) => Ok(EddyStatement::ExplainAnalyze(object_name(&name))),
            None => Err(EddyError::unsupported(
                "EXPLAIN ANALYZE of anything but a relation name: views run all the time, so EXPLAIN ANALYZE shows a view's live counters (EXPLAIN ANALYZE view_name)",
            )),
        };
    }
    // `EXPLAIN name`: a single (possibly qualified) identifier.
    if let Ok(name) = p.parse_object_name(false) {
        if matches!(p.peek_token().token, Token::EOF | Token::SemiColon) {
            return Ok(EddyStatement::ExplainRelation(object_name(&name)));
        }
    }
    match parse_inner(rest)? {
        EddyStatement::Query(q) => Ok(EddyStatement::ExplainQuery(q)),
        s @ EddyStatement::CreateView { .. } => Ok(EddyStatement::ExplainCreate(Box::new(s))),
        _ => Err(EddyError::unsupported(
            "EXPLAIN supports a relation name, a SELECT, or a CREATE ... AS SELECT",
        )),
    }
}

fn parse_set(sql: &str) -> Result<EddyStatement> {
    let body = sql.trim().trim_end_matches(';')[3..].trim();
    let lower = body.to_lowercase();
    let body = if lower.starts_with("session ") && !lower.starts_with("session characteristics") {
        &body[8..]
    } else if lower.starts_with("local ") {
        &body[6..]
    } else {
        body
    };
    let (name, value) = if let Some((n, v)) = body.split_once('=') {
        (n.trim().to_string(), v.trim().to_string())
    } else if let Some(i) = body.to_lowercase().find(" to ") {
        (
            body[..i].trim().to_string(),
            body[i + 4..].trim().to_string(),
        )
    } else {
        // `SET TIME ZONE 'UTC'`, `SET SESSION CHARACTERISTICS AS ...`, `SET NAMES ...`
        let lower = body.to_lowercase();
        if let Some(v) = lower.strip_prefix("time zone ") {
            (
                "timezone".to_string(),
                body[body.len() - v.len()..].trim().to_string(),
            )
        } else {
            (body.to_string(), String::new())
        }
    };
    let value = value.trim_matches('\'').trim_matches('"').to_string();
    Ok(EddyStatement::Set {
        name: name.to_lowercase(),
        value,
    })
}

/// A Postgres-dialect parser over `sql`, with one fix: sqlparser reads `TOP n` after
/// SELECT in every dialect, but Postgres has no TOP, so there `top` is a column name
/// (`SELECT top FROM t`). Such a word is handed to the parser as an identifier.
fn postgres_parser(sql: &str) -> Result<Parser<'static>> {
    use datafusion::sql::sqlparser::tokenizer::{Token, Word};
    static DIALECT: PostgreSqlDialect = PostgreSqlDialect {};
    let mut tokens = Tokenizer::new(&DIALECT, sql)
        .tokenize_with_location()
        .map_err(|e| EddyError::syntax(format!("syntax error: {e}")))?;
    let mut prev: Option<Keyword> = None;
    for t in tokens.iter_mut() {
        match &t.token {
            Token::Whitespace(_) => continue,
            Token::Word(w) => {
                let after_select = matches!(
                    prev,
                    Some(Keyword::SELECT) | Some(Keyword::DISTINCT) | Some(Keyword::ALL)
                );
                if w.keyword == Keyword::TOP && w.quote_style.is_none() && after_select {
                    t.token = Token::Word(Word {
                        value: w.value.to_lowercase(),
                        quote_style: Some('"'),
                        keyword: Keyword::NoKeyword,
                    });
                    prev = None;
                    continue;
                }
                prev = Some(w.keyword);
            }
            _ => prev = None,
        }
    }
    Ok(Parser::new(&DIALECT).with_tokens_with_locations(tokens))
}

fn parse_with_sqlparser(
    sql: &str,
    emit: Option<Emit>,
    window: Option<crate::sql::windows::KsqlWindow>,
) -> Result<EddyStatement> {
    let mut p = postgres_parser(sql)?;
    let stmt = p.parse_statement()?;
    expect_end(&mut p)?;
    let is_create_as = match &stmt {
        Statement::CreateTable(ct) => ct.query.is_some(),
        Statement::CreateView(_) => true,
        _ => false,
    };
    if window.is_some() && !is_create_as {
        return Err(EddyError::unsupported(
            "a WINDOW clause belongs in CREATE TABLE/STREAM ... AS SELECT; for an ad-hoc query use FROM TUMBLE(stream, time_column, INTERVAL ...)",
        ));
    }
    match stmt {
        Statement::Query(q) => {
            if emit == Some(Emit::Changes) {
                return push_query(&q);
            }
            if emit.is_some() {
                return Err(EddyError::unsupported(
                    "EMIT FINAL on an ad-hoc SELECT; use it in CREATE ... AS SELECT",
                ));
            }
            Ok(EddyStatement::Query(q))
        }
        Statement::CreateTable(ct) => {
            let name = object_name(&ct.name);
            let options = match &ct.table_options {
                CreateTableOptions::With(o)
                | CreateTableOptions::Options(o)
                | CreateTableOptions::Plain(o) => o.clone(),
                _ => vec![],
            };
            if let Some(query) = ct.query {
                if !ct.columns.is_empty() {
                    return Err(EddyError::syntax(
                        "syntax error: CREATE TABLE ... AS SELECT takes its columns from the query; remove the column list",
                    ));
                }
                return Ok(EddyStatement::CreateView {
                    name,
                    kind: ViewKind::Table,
                    query,
                    emit,
                    options,
                    if_not_exists: ct.if_not_exists,
                    window,
                });
            }
            if emit.is_some() {
                return Err(EddyError::syntax(
                    "syntax error: EMIT applies to CREATE ... AS SELECT only",
                ));
            }
            if ct.columns.is_empty() {
                return Err(EddyError::syntax(format!(
                    "syntax error: CREATE TABLE {name} needs a column list"
                )));
            }
            Ok(EddyStatement::CreateSource {
                name,
                is_stream: false,
                columns: ct.columns,
                constraints: ct.constraints,
                options,
                if_not_exists: ct.if_not_exists,
                watermark: None,
            })
        }
        Statement::CreateView(v) => {
            if v.or_replace {
                return Err(EddyError::unsupported("CREATE OR REPLACE VIEW"));
            }
            let options = match &v.options {
                CreateTableOptions::With(o) => o.clone(),
                _ => vec![],
            };
            let name = object_name(&v.name);
            let query = if v.columns.is_empty() {
                v.query
            } else {
                rename_view_columns(&name, &v.query, &v.columns)?
            };
            Ok(EddyStatement::CreateView {
                name,
                kind: ViewKind::MaterializedView,
                query,
                emit,
                options,
                if_not_exists: v.if_not_exists,
                window,
            })
        }
        s @ Statement::Insert(_) => Ok(EddyStatement::Insert(Box::new(s))),
        s @ Statement::Update(_) => Ok(EddyStatement::Update(Box::new(s))),
        s @ Statement::Delete(_) => Ok(EddyStatement::Delete(Box::new(s))),
        Statement::Close { .. } => Ok(EddyStatement::NoOp("CLOSE CURSOR")),
        other => Err(EddyError::unsupported(format!(
            "statement not supported: {}",
            other
                .to_string()
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        ))),
    }
}

fn expect_end(p: &mut Parser) -> Result<()> {
    let _ = p.consume_token(&Token::SemiColon);
    let t = p.peek_token();
    if t.token != Token::EOF {
        return Err(EddyError::from(ParserError::ParserError(format!(
            "unexpected {} at Line: {}, Column: {}",
            t.token, t.span.start.line, t.span.start.column
        ))));
    }
    Ok(())
}

/// Relation names are case-insensitive unless quoted, and live in one schema: `public.x`
/// and `x` are the same relation.
pub fn object_name(name: &ObjectName) -> String {
    let last = name.0.last().and_then(|p| p.as_ident());
    match last {
        Some(i) if i.quote_style.is_some() => i.value.clone(),
        Some(i) => i.value.to_lowercase(),
        None => name.to_string().to_lowercase(),
    }
}

/// Primary key column names, from `PRIMARY KEY` on a column or a table constraint.
pub fn primary_key(columns: &[ColumnDef], constraints: &[TableConstraint]) -> Vec<String> {
    let mut key = Vec::new();
    for c in columns {
        if c.options
            .iter()
            .any(|o| matches!(o.option, ColumnOption::PrimaryKey(_)))
        {
            key.push(ident_name(&c.name));
        }
    }
    for t in constraints {
        if let TableConstraint::PrimaryKey(pk) = t {
            for col in &pk.columns {
                key.push(match &col.column.expr {
                    Expr::Identifier(i) => ident_name(i),
                    other => other.to_string().to_lowercase(),
                });
            }
        }
    }
    key
}

pub fn ident_name(i: &datafusion::sql::sqlparser::ast::Ident) -> String {
    if i.quote_style.is_some() {
        i.value.clone()
    } else {
        i.value.to_lowercase()
    }
}

/// `NOT NULL` on a column.
pub fn is_not_null(c: &ColumnDef) -> bool {
    c.options
        .iter()
        .any(|o| matches!(o.option, ColumnOption::NotNull))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_stream_with_columns_and_options() {
        let s = parse_statement("CREATE STREAM pv (user_id INT, page TEXT) WITH (KAFKA_TOPIC='pv', VALUE_FORMAT='JSON')").unwrap();
        match s {
            EddyStatement::CreateSource {
                name,
                is_stream,
                columns,
                options,
                ..
            } => {
                assert_eq!(name, "pv");
                assert!(is_stream);
                assert_eq!(columns.len(), 2);
                assert_eq!(options.len(), 2);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ksql_ctas_with_emit_changes() {
        let s = parse_statement("CREATE TABLE r AS SELECT region, count(*) AS n FROM users GROUP BY region EMIT CHANGES").unwrap();
        assert!(matches!(
            s,
            EddyStatement::CreateView {
                kind: ViewKind::Table,
                emit: Some(Emit::Changes),
                ..
            }
        ));
    }

    #[test]
    fn table_primary_key_from_column_or_constraint() {
        for sql in [
            "CREATE TABLE u (id INT PRIMARY KEY, name TEXT)",
            "CREATE TABLE u (id INT, name TEXT, PRIMARY KEY (id))",
        ] {
            match parse_statement(sql).unwrap() {
                EddyStatement::CreateSource {
                    columns,
                    constraints,
                    is_stream: false,
                    ..
                } => {
                    assert_eq!(primary_key(&columns, &constraints), vec!["id".to_string()]);
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn explain_analyze_takes_a_relation_name() {
        assert!(
            matches!(parse_statement("EXPLAIN ANALYZE per_page").unwrap(), EddyStatement::ExplainAnalyze(n) if n == "per_page")
        );
        assert_eq!(
            parse_statement("EXPLAIN ANALYZE SELECT 1")
                .unwrap_err()
                .sqlstate(),
            "0A000"
        );
    }

    #[test]
    fn syntax_error_has_position() {
        let e = parse_statement("SELECT * FROM t WHERE").unwrap_err();
        assert_eq!(e.sqlstate(), "42601");
        assert!(e.position().is_some(), "{e:?}");
    }

    #[test]
    fn explain_relation_and_query() {
        assert!(
            matches!(parse_statement("EXPLAIN per_page").unwrap(), EddyStatement::ExplainRelation(n) if n == "per_page")
        );
        assert!(matches!(
            parse_statement("EXPLAIN SELECT 1").unwrap(),
            EddyStatement::ExplainQuery(_)
        ));
    }
}

/// `CREATE MATERIALIZED VIEW v (a, b) AS q` names the columns: the query becomes
/// `SELECT * FROM (q) AS v (a, b)`, so a wrong count is DataFusion's planning error.
fn rename_view_columns(
    name: &str,
    query: &Query,
    columns: &[datafusion::sql::sqlparser::ast::ViewColumnDef],
) -> Result<Box<Query>> {
    if columns
        .iter()
        .any(|c| c.data_type.is_some() || c.options.is_some())
    {
        return Err(EddyError::unsupported(
            "types or options in a materialized view's column list; name the columns only",
        ));
    }
    let names: Vec<String> = columns.iter().map(|c| c.name.to_string()).collect();
    let alias = datafusion::sql::sqlparser::ast::Ident::with_quote('"', name);
    let sql = format!("SELECT * FROM ({query}) AS {alias} ({})", names.join(", "));
    let mut p = Parser::new(&PostgreSqlDialect {}).try_with_sql(&sql)?;
    Ok(p.parse_query()?)
}

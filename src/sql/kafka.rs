//! Kafka spellings in the SQL front end:
//! - RisingWave's `FORMAT PLAIN|UPSERT ENCODE JSON|CSV` clause after `WITH (...)`: cut out
//!   and carried on as the options `format_type` and `encode`;
//! - ksqlDB's `col TYPE KEY` (a column read from the record key) in a stream's column
//!   list: read as `PRIMARY KEY` (which, on a Kafka-backed stream, means "from the key");
//! - `CREATE SINK [IF NOT EXISTS] name FROM relation WITH (...)` and `DROP SINK`.

use datafusion::sql::sqlparser::ast::SqlOption;
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::Token;

use super::parser::object_name;
use crate::error::{EddyError, Result};

#[derive(Debug, Clone)]
pub enum SinkStatement {
    Create {
        name: String,
        from: String,
        options: Vec<SqlOption>,
        if_not_exists: bool,
    },
    Drop {
        names: Vec<String>,
        if_exists: bool,
    },
}

/// Top-level words of `sql` (outside quotes), with their byte range and paren depth.
fn words(sql: &str) -> Vec<(usize, usize, usize)> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let (mut i, mut depth) = (0, 0usize);
    while i < b.len() {
        let c = b[i];
        if c == b'\'' || c == b'"' {
            let q = c;
            i += 1;
            while i < b.len() {
                if b[i] == q {
                    if i + 1 < b.len() && b[i + 1] == q {
                        i += 2;
                        continue;
                    }
                    break;
                }
                i += 1;
            }
            i += 1;
        } else if c == b'(' {
            depth += 1;
            i += 1;
        } else if c == b')' {
            depth = depth.saturating_sub(1);
            i += 1;
        } else if c.is_ascii_alphanumeric() || c == b'_' {
            let s = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'.') {
                i += 1;
            }
            out.push((s, i, depth));
        } else {
            i += 1;
        }
    }
    out
}

/// Cut `FORMAT x ENCODE y` (at the top level) into WITH options, and quote dotted option
/// names (`properties.bootstrap.server = ...`), which sqlparser takes as one identifier only
/// when quoted.
pub fn cut_format_encode(sql: &str) -> Result<String> {
    let sql = &quote_dotted_options(sql);
    let w = words(sql);
    let word = |k: usize| &sql[w[k].0..w[k].1];
    for k in 0..w.len() {
        if w[k].2 == 0 && word(k).eq_ignore_ascii_case("FORMAT") {
            if k + 3 >= w.len() || !word(k + 2).eq_ignore_ascii_case("ENCODE") {
                return Err(EddyError::syntax(
                    "syntax error: FORMAT needs ENCODE, e.g. FORMAT PLAIN ENCODE JSON",
                ));
            }
            let (format, encode) = (word(k + 1).to_string(), word(k + 3).to_string());
            let end = w[k + 3].1;
            let rest = sql[end..].trim();
            let rest = rest.trim_end_matches(';').trim();
            if !rest.is_empty() {
                return Err(EddyError::unsupported(format!(
                    "options after FORMAT ... ENCODE {encode} ({rest}) are not supported"
                )));
            }
            let before = sql[..w[k].0].trim_end();
            let injected = format!("format_type = '{format}', encode = '{encode}'");
            // The WITH list ends right before FORMAT: add to it.
            let has_with = w[..k]
                .iter()
                .any(|&(s, e, d)| d == 0 && sql[s..e].eq_ignore_ascii_case("WITH"));
            return Ok(if has_with && before.ends_with(')') {
                format!("{}, {injected})", &before[..before.len() - 1])
            } else {
                format!("{before} WITH ({injected})")
            });
        }
    }
    Ok(sql.to_string())
}

fn quote_dotted_options(sql: &str) -> String {
    let w = words(sql);
    let Some(with) = w
        .iter()
        .position(|&(s, e, d)| d == 0 && sql[s..e].eq_ignore_ascii_case("WITH"))
    else {
        return sql.to_string();
    };
    let mut out = String::with_capacity(sql.len() + 8);
    let mut last = 0;
    for &(s, e, d) in &w[with + 1..] {
        // The option list ends at the first top-level word after it (`AS`, `FORMAT`): a
        // dotted name compared in the query (`ON (l.id = r.id)`) is no option.
        if d == 0 {
            break;
        }
        let word = &sql[s..e];
        let before_eq = sql[e..].trim_start().starts_with('=');
        if d == 1
            && word.contains('.')
            && before_eq
            && !word.starts_with(|c: char| c.is_ascii_digit())
        {
            out.push_str(&sql[last..s]);
            out.push('"');
            out.push_str(&word.to_lowercase());
            out.push('"');
            last = e;
        }
    }
    out.push_str(&sql[last..]);
    out
}

/// `col TYPE KEY` in the column list becomes `col TYPE PRIMARY KEY`.
pub fn key_columns_as_primary(sql: &str) -> String {
    let w = words(sql);
    let mut out = String::with_capacity(sql.len() + 16);
    let mut last = 0;
    // Only in the column list: before the first top-level word after the name.
    let end = w
        .iter()
        .skip(3)
        .find(|&&(_, _, d)| d == 0)
        .map(|&(s, _, _)| s)
        .unwrap_or(sql.len());
    for k in 0..w.len() {
        let (s, e, d) = w[k];
        let after_type = sql[..s]
            .trim_end()
            .chars()
            .last()
            .is_some_and(|c| c != ',' && c != '(');
        if d == 1
            && s < end
            && after_type
            && sql[s..e].eq_ignore_ascii_case("KEY")
            && (k == 0 || !sql[w[k - 1].0..w[k - 1].1].eq_ignore_ascii_case("PRIMARY"))
        {
            out.push_str(&sql[last..s]);
            out.push_str("PRIMARY KEY");
            last = e;
        }
    }
    out.push_str(&sql[last..]);
    out
}

pub fn parse_create_sink(sql: &str) -> Result<SinkStatement> {
    let sql = cut_format_encode(sql)?;
    let mut p = Parser::new(&PostgreSqlDialect {}).try_with_sql(&sql)?;
    p.expect_keyword(Keyword::CREATE)?;
    p.next_token(); // SINK
    let if_not_exists = p.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
    let name = object_name(&p.parse_object_name(false)?);
    if p.parse_keyword(Keyword::AS) {
        return Err(EddyError::unsupported(
            "CREATE SINK ... AS SELECT; create a view and CREATE SINK name FROM view",
        ));
    }
    if p.parse_keyword(Keyword::INTO) {
        return Err(EddyError::unsupported(
            "CREATE SINK ... INTO; use CREATE SINK name FROM view WITH (connector='kafka', topic='...')",
        ));
    }
    p.expect_keyword(Keyword::FROM)?;
    let from = object_name(&p.parse_object_name(false)?);
    let options = if p.parse_keyword(Keyword::WITH) {
        p.prev_token();
        p.parse_options(Keyword::WITH)?
    } else {
        vec![]
    };
    let _ = p.consume_token(&Token::SemiColon);
    if p.peek_token().token != Token::EOF {
        return Err(EddyError::syntax(format!(
            "syntax error at or near \"{}\"",
            p.peek_token().token
        )));
    }
    Ok(SinkStatement::Create {
        name,
        from,
        options,
        if_not_exists,
    })
}

pub fn parse_drop_sink(sql: &str) -> Result<SinkStatement> {
    let mut p = Parser::new(&PostgreSqlDialect {}).try_with_sql(sql)?;
    p.expect_keyword(Keyword::DROP)?;
    p.next_token(); // SINK
    let if_exists = p.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
    let names = p.parse_comma_separated(|p| p.parse_object_name(false))?;
    let _ = p.consume_token(&Token::SemiColon);
    if p.peek_token().token != Token::EOF {
        return Err(EddyError::syntax(format!(
            "syntax error at or near \"{}\"",
            p.peek_token().token
        )));
    }
    Ok(SinkStatement::Drop {
        names: names.iter().map(object_name).collect(),
        if_exists,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_encode_goes_into_with() {
        assert_eq!(
            cut_format_encode("CREATE SOURCE s (a INT) WITH (connector='kafka', topic='t') FORMAT PLAIN ENCODE JSON").unwrap(),
            "CREATE SOURCE s (a INT) WITH (connector='kafka', topic='t', format_type = 'PLAIN', encode = 'JSON')"
        );
        assert_eq!(
            cut_format_encode("CREATE SOURCE s (a INT) WITH (properties.bootstrap.server = 'h:1', scan.startup.mode='latest')").unwrap(),
            "CREATE SOURCE s (a INT) WITH (\"properties.bootstrap.server\" = 'h:1', \"scan.startup.mode\"='latest')"
        );
        assert_eq!(
            cut_format_encode("CREATE SINK k FROM v FORMAT UPSERT ENCODE JSON;").unwrap(),
            "CREATE SINK k FROM v WITH (format_type = 'UPSERT', encode = 'JSON')"
        );
        // Only the option list is quoted, not a dotted name compared in the query.
        let j = "CREATE STREAM j WITH (partitions=1) AS SELECT a FROM l JOIN r ON (l.id = r.id)";
        assert_eq!(cut_format_encode(j).unwrap(), j);
        // ksqlDB's FORMAT option is inside WITH and stays.
        let k = "CREATE STREAM s (a INT) WITH (KAFKA_TOPIC='t', FORMAT='JSON')";
        assert_eq!(cut_format_encode(k).unwrap(), k);
        assert!(
            cut_format_encode("CREATE SOURCE s (a INT) WITH (topic='t') FORMAT PLAIN").is_err()
        );
    }

    #[test]
    fn key_columns() {
        assert_eq!(
            key_columns_as_primary("CREATE STREAM s (id VARCHAR KEY, key INT, k2 INT PRIMARY KEY) WITH (kafka_topic='key')"),
            "CREATE STREAM s (id VARCHAR PRIMARY KEY, key INT, k2 INT PRIMARY KEY) WITH (kafka_topic='key')"
        );
        let q = "CREATE STREAM o AS SELECT count(key) FROM s";
        assert_eq!(key_columns_as_primary(q), q);
    }

    #[test]
    fn sinks() {
        match parse_create_sink(
            "CREATE SINK k FROM v WITH (connector='kafka', topic='o') FORMAT UPSERT ENCODE JSON",
        )
        .unwrap()
        {
            SinkStatement::Create {
                name,
                from,
                options,
                ..
            } => {
                assert_eq!((name.as_str(), from.as_str(), options.len()), ("k", "v", 4));
            }
            other => panic!("{other:?}"),
        }
        assert!(parse_create_sink("CREATE SINK k AS SELECT 1").is_err());
    }
}

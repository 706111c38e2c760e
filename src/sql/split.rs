//! Splitting a query string into statements with their source text and offsets, so each can
//! be logged verbatim and errors can point at a position in the original string.

use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

use crate::error::{EddyError, Result};

/// One statement of a query string.
#[derive(Debug, Clone)]
pub struct StatementText {
    pub text: String,
    /// Offset of the statement's first character in the whole string, in characters.
    pub char_offset: usize,
}

/// Split on top-level semicolons (the tokenizer knows about strings, comments and
/// dollar quoting). Empty statements are dropped.
pub fn split_statements(sql: &str) -> Result<Vec<StatementText>> {
    let dialect = PostgreSqlDialect {};
    let tokens = Tokenizer::new(&dialect, sql)
        .tokenize_with_location()
        .map_err(|e| EddyError::Syntax {
            message: format!("syntax error: {}", e.message),
            position: Some(char_offset_of(sql, e.location.line, e.location.column) + 1),
        })?;
    let mut out = Vec::new();
    let mut start: Option<(u64, u64)> = None;
    let mut end: Option<(u64, u64)> = None;
    let mut flush = |start: &mut Option<(u64, u64)>, end: &mut Option<(u64, u64)>| {
        if let (Some(s), Some(e)) = (start.take(), end.take()) {
            let from = char_offset_of(sql, s.0, s.1);
            let to = char_offset_of(sql, e.0, e.1);
            let text: String = sql
                .chars()
                .skip(from)
                .take(to.saturating_sub(from))
                .collect();
            out.push(StatementText {
                text,
                char_offset: from,
            });
        }
    };
    for t in &tokens {
        match &t.token {
            Token::SemiColon => flush(&mut start, &mut end),
            Token::Whitespace(_) | Token::EOF => {}
            _ => {
                if start.is_none() {
                    start = Some((t.span.start.line, t.span.start.column));
                }
                end = Some((t.span.end.line, t.span.end.column));
            }
        }
    }
    flush(&mut start, &mut end);
    Ok(out)
}

/// Character offset (0-based) of a 1-based line/column location.
pub fn char_offset_of(sql: &str, line: u64, column: u64) -> usize {
    if line == 0 {
        return 0;
    }
    let mut offset = 0usize;
    let mut current_line = 1u64;
    let mut chars = sql.chars();
    while current_line < line {
        match chars.next() {
            Some('\n') => {
                current_line += 1;
                offset += 1;
            }
            Some(_) => offset += 1,
            None => return offset,
        }
    }
    offset + (column.saturating_sub(1) as usize)
}

/// Find "Line: L, Column: C" in a sqlparser message and turn it into a 1-based position
/// relative to the statement text.
pub fn position_in_message(statement: &str, message: &str) -> Option<usize> {
    let at = message.rfind("Line: ")?;
    let rest = &message[at + 6..];
    let (line, rest) = rest.split_once(',')?;
    let col = rest.trim().strip_prefix("Column: ")?;
    let col: String = col.chars().take_while(|c| c.is_ascii_digit()).collect();
    let line: u64 = line.trim().parse().ok()?;
    let col: u64 = col.parse().ok()?;
    Some(char_offset_of(statement, line, col) + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_top_level_semicolons_only() {
        let parts = split_statements("SELECT 'a;b'; -- c;\n INSERT INTO t VALUES (1);;").unwrap();
        let texts: Vec<&str> = parts.iter().map(|p| p.text.as_str()).collect();
        assert_eq!(texts, vec!["SELECT 'a;b'", "INSERT INTO t VALUES (1)"]);
        assert_eq!(parts[1].char_offset, 21);
    }

    #[test]
    fn position_from_parser_message() {
        let p = position_in_message(
            "SELEC 1",
            "Expected: an SQL statement, found: SELEC at Line: 1, Column: 1",
        );
        assert_eq!(p, Some(1));
    }
}

//! Cursors: `DECLARE c CURSOR FOR <query or push query>`, `FETCH [n|ALL] [FROM] c
//! [WITH (timeout = '1s')]`, `CLOSE c|ALL`. Over a push query (`SUBSCRIBE x`,
//! `SELECT ... EMIT CHANGES`) FETCH waits for at least one change — at most `timeout`,
//! if given — and returns up to n of those ready, as Materialize does; over a query it
//! returns the next n rows. Cursors live until CLOSE or the end of the connection (not
//! only the transaction).

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::time::Duration;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use futures::{FutureExt, Stream, StreamExt};
use pgwire::error::PgWireResult;

use crate::error::{EddyError, Result};

pub type Batches = Pin<Box<dyn Stream<Item = PgWireResult<RecordBatch>> + Send>>;

pub struct Cursor {
    pub schema: SchemaRef,
    batches: Batches,
    pending: VecDeque<RecordBatch>,
    push: bool,
    done: bool,
}

#[derive(Default)]
pub struct Cursors {
    open: HashMap<String, Cursor>,
}

/// A cursor statement, recognised by its first word.
#[derive(Debug, PartialEq)]
pub enum CursorStatement {
    Declare {
        name: String,
        query: String,
    },
    Fetch {
        name: String,
        count: Option<usize>,
        timeout: Option<Duration>,
    },
    Close(Option<String>),
}

fn ident(word: &str) -> String {
    if word.starts_with('"') && word.ends_with('"') && word.len() >= 2 {
        word[1..word.len() - 1].replace("\"\"", "\"")
    } else {
        word.to_lowercase()
    }
}

/// Words of a statement, keeping quoted identifiers and `(...)` whole.
fn words(sql: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let b = sql.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        if b[i] == b'"' {
            i += 1;
            while i < b.len() && !(b[i] == b'"' && b.get(i + 1) != Some(&b'"')) {
                i += if b[i] == b'"' { 2 } else { 1 };
            }
            i += 1;
        } else if b[i] == b'(' {
            let mut depth = 0;
            while i < b.len() {
                match b[i] {
                    b'(' => depth += 1,
                    b')' => {
                        depth -= 1;
                        if depth == 0 {
                            i += 1;
                            break;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        } else {
            while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'(' {
                i += 1;
            }
        }
        out.push((start, sql[start..i.min(b.len())].to_string()));
    }
    out
}

/// Parse a cursor statement; `None` if `sql` is not one.
pub fn parse(sql: &str) -> Option<Result<CursorStatement>> {
    let sql = sql.trim().trim_end_matches(';').trim();
    let w = words(sql);
    let first = w.first()?.1.to_uppercase();
    match first.as_str() {
        "DECLARE" => Some(parse_declare(sql, &w)),
        "FETCH" => Some(parse_fetch(&w)),
        "CLOSE" => Some(match w.get(1) {
            Some((_, n)) if n.eq_ignore_ascii_case("all") && w.len() == 2 => {
                Ok(CursorStatement::Close(None))
            }
            Some((_, n)) if w.len() == 2 => Ok(CursorStatement::Close(Some(ident(n)))),
            _ => Err(EddyError::syntax("syntax error: expected CLOSE name")),
        }),
        "MOVE" => Some(Err(EddyError::unsupported("MOVE on a cursor"))),
        _ => None,
    }
}

fn parse_declare(sql: &str, w: &[(usize, String)]) -> Result<CursorStatement> {
    let name = w
        .get(1)
        .map(|(_, n)| ident(n))
        .ok_or_else(|| EddyError::syntax("syntax error: expected DECLARE name CURSOR FOR ..."))?;
    let cursor = w
        .iter()
        .position(|(_, x)| x.eq_ignore_ascii_case("cursor"))
        .ok_or_else(|| EddyError::syntax("syntax error: expected CURSOR in DECLARE"))?;
    let mut prev = String::new();
    for (_, opt) in &w[2..cursor] {
        let o = opt.to_uppercase();
        match o.as_str() {
            "BINARY" | "ASENSITIVE" | "INSENSITIVE" | "NO" => {}
            "SCROLL" if prev == "NO" => {}
            "SCROLL" => return Err(EddyError::unsupported("DECLARE ... SCROLL CURSOR")),
            other => {
                return Err(EddyError::syntax(format!(
                    "syntax error at or near \"{other}\" in DECLARE"
                )))
            }
        }
        prev = o;
    }
    let for_at = w[cursor..]
        .iter()
        .position(|(_, x)| x.eq_ignore_ascii_case("for"))
        .map(|i| i + cursor)
        .ok_or_else(|| EddyError::syntax("syntax error: expected FOR in DECLARE"))?;
    // WITH HOLD / WITHOUT HOLD between CURSOR and FOR: cursors already outlive transactions.
    let query = w
        .get(for_at + 1)
        .map(|(at, _)| sql[*at..].to_string())
        .ok_or_else(|| EddyError::syntax("syntax error: DECLARE without a query"))?;
    Ok(CursorStatement::Declare { name, query })
}

fn parse_fetch(w: &[(usize, String)]) -> Result<CursorStatement> {
    let mut rest: Vec<String> = w[1..].iter().map(|(_, s)| s.clone()).collect();
    // Trailing WITH (timeout = '...').
    let mut timeout = None;
    if rest.len() >= 2 && rest[rest.len() - 2].eq_ignore_ascii_case("with") {
        let opts = rest.pop().unwrap_or_default();
        rest.pop();
        let inner = opts.trim_start_matches('(').trim_end_matches(')');
        let (k, v) = inner
            .split_once('=')
            .ok_or_else(|| EddyError::syntax("syntax error: expected WITH (timeout = '...')"))?;
        if !k.trim().eq_ignore_ascii_case("timeout") {
            return Err(EddyError::query(
                "22023",
                format!("unknown FETCH option \"{}\"", k.trim()),
            ));
        }
        timeout = Some(parse_timeout(v.trim().trim_matches('\''))?);
    }
    let mut count = Some(1usize);
    let mut i = 0;
    if let Some(dir) = rest.first().map(|s| s.to_uppercase()) {
        if dir == "FORWARD" || dir == "NEXT" {
            i += 1;
        }
    }
    if let Some(c) = rest.get(i) {
        if c.eq_ignore_ascii_case("all") {
            count = None;
            i += 1;
        } else if let Ok(n) = c.parse::<usize>() {
            count = Some(n);
            i += 1;
        } else if ["BACKWARD", "PRIOR", "FIRST", "LAST", "ABSOLUTE", "RELATIVE"]
            .contains(&c.to_uppercase().as_str())
        {
            return Err(EddyError::unsupported(format!(
                "FETCH {}: cursors only move forward",
                c.to_uppercase()
            )));
        }
    }
    if let Some(f) = rest.get(i) {
        if f.eq_ignore_ascii_case("from") || f.eq_ignore_ascii_case("in") {
            i += 1;
        }
    }
    match &rest[i..] {
        [name] => Ok(CursorStatement::Fetch {
            name: ident(name),
            count,
            timeout,
        }),
        _ => Err(EddyError::syntax(
            "syntax error: expected FETCH [FORWARD] [n | ALL] [FROM] name [WITH (timeout = '...')]",
        )),
    }
}

/// `'1s'`, `'250ms'`, `'0'`, `'2 minutes'`, or any interval eddy reads.
fn parse_timeout(v: &str) -> Result<Duration> {
    let t = v.trim().to_lowercase();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    if let Ok(n) = num.parse::<f64>() {
        let secs = match unit.trim() {
            "" | "s" | "sec" | "secs" | "second" | "seconds" => Some(n),
            "ms" | "millisecond" | "milliseconds" => Some(n / 1000.0),
            "us" | "microsecond" | "microseconds" => Some(n / 1e6),
            "m" | "min" | "mins" | "minute" | "minutes" => Some(n * 60.0),
            _ => None,
        };
        if let Some(s) = secs {
            return Duration::try_from_secs_f64(s.max(0.0)).map_err(|_| {
                EddyError::query("22008", format!("FETCH timeout '{v}' is out of range"))
            });
        }
    }
    Ok(Duration::from_micros(
        crate::sql::windows::parse_duration(v)?.max(0) as u64,
    ))
}

impl Cursors {
    pub fn declare(
        &mut self,
        name: String,
        schema: SchemaRef,
        batches: Batches,
        push: bool,
    ) -> Result<()> {
        if self.open.contains_key(&name) {
            return Err(EddyError::query(
                "42P03",
                format!("cursor \"{name}\" already exists"),
            ));
        }
        self.open.insert(
            name,
            Cursor {
                schema,
                batches,
                pending: VecDeque::new(),
                push,
                done: false,
            },
        );
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<&Cursor> {
        self.open.get(name)
    }

    pub fn get_mut(&mut self, name: &str) -> Result<&mut Cursor> {
        self.open.get_mut(name).ok_or_else(|| missing(name))
    }

    pub fn close(&mut self, name: Option<&str>) -> Result<()> {
        match name {
            None => {
                self.open.clear();
                Ok(())
            }
            Some(n) => self.open.remove(n).map(|_| ()).ok_or_else(|| missing(n)),
        }
    }
}

fn missing(name: &str) -> EddyError {
    EddyError::query("34000", format!("cursor \"{name}\" does not exist"))
}

impl Cursor {
    /// The next rows: up to `count` (all with `None`).
    pub async fn fetch(
        &mut self,
        count: Option<usize>,
        timeout: Option<Duration>,
    ) -> PgWireResult<Vec<RecordBatch>> {
        let want = count.unwrap_or(usize::MAX);
        let mut out = Vec::new();
        let mut got = 0usize;
        while got < want {
            if let Some(b) = self.pending.pop_front() {
                let take = (want - got).min(b.num_rows());
                if take < b.num_rows() {
                    self.pending.push_front(b.slice(take, b.num_rows() - take));
                }
                got += take;
                if take > 0 {
                    out.push(b.slice(0, take));
                }
                continue;
            }
            if self.done {
                break;
            }
            let next = if !self.push {
                self.batches.next().await
            } else if got == 0 {
                match timeout {
                    None => self.batches.next().await,
                    Some(t) => match tokio::time::timeout(t, self.batches.next()).await {
                        Ok(n) => n,
                        Err(_) => break,
                    },
                }
            } else {
                match self.batches.next().now_or_never() {
                    Some(n) => n,
                    None => break,
                }
            };
            match next {
                Some(Ok(b)) => self.pending.push_back(b),
                Some(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                None => self.done = true,
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cursor_statements() {
        assert_eq!(
            parse("DECLARE \"srv\" CURSOR FOR SELECT 1")
                .unwrap()
                .unwrap(),
            CursorStatement::Declare {
                name: "srv".into(),
                query: "SELECT 1".into()
            }
        );
        assert_eq!(
            parse("declare c no scroll cursor with hold for SUBSCRIBE v")
                .unwrap()
                .unwrap(),
            CursorStatement::Declare {
                name: "c".into(),
                query: "SUBSCRIBE v".into()
            }
        );
        assert_eq!(
            parse("FETCH 100 c WITH (timeout = '1s')").unwrap().unwrap(),
            CursorStatement::Fetch {
                name: "c".into(),
                count: Some(100),
                timeout: Some(Duration::from_secs(1))
            }
        );
        assert_eq!(
            parse("FETCH FORWARD ALL FROM \"srv\";").unwrap().unwrap(),
            CursorStatement::Fetch {
                name: "srv".into(),
                count: None,
                timeout: None
            }
        );
        assert_eq!(
            parse("FETCH c").unwrap().unwrap(),
            CursorStatement::Fetch {
                name: "c".into(),
                count: Some(1),
                timeout: None
            }
        );
        assert_eq!(parse_timeout("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_timeout("0").unwrap(), Duration::ZERO);
        assert!(parse_timeout("99999999999999999999999999999").is_err());
        assert_eq!(
            parse("CLOSE ALL").unwrap().unwrap(),
            CursorStatement::Close(None)
        );
        assert!(parse("FETCH BACKWARD 2 c").unwrap().is_err());
        assert!(parse("SELECT 1").is_none());
    }
}

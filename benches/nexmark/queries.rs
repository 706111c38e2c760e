//! The Nexmark queries of this directory (`qN.sql`), shared by the correctness test
//! (tests/nexmark.rs) and the benchmark (benches/nexmark.rs).
//!
//! Each file is one SELECT in the RisingWave dialect, preceded by `--` comments. Lines
//! starting `-- eddy-with:` give the view's WITH options, `-- eddy-setup:` statements to
//! run before the source starts, and `-- eddy-expect: SQLSTATE` marks a query eddy refuses.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct NexmarkQuery {
    /// `q0` ... `q22`.
    pub name: String,
    pub select: String,
    pub with: Option<String>,
    pub setup: Vec<String>,
    /// The SQLSTATE eddy answers instead of running the query.
    pub expect_error: Option<String>,
}

impl NexmarkQuery {
    /// The statement that makes the query a live view named `view`.
    pub fn create_view(&self, view: &str) -> String {
        match &self.with {
            Some(w) => format!(
                "CREATE MATERIALIZED VIEW {view} WITH ({w}) AS {}",
                self.select
            ),
            None => format!("CREATE MATERIALIZED VIEW {view} AS {}", self.select),
        }
    }

    pub fn number(&self) -> u32 {
        self.name[1..].parse().unwrap_or(u32::MAX)
    }
}

pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/nexmark")
}

pub fn parse(name: &str, text: &str) -> NexmarkQuery {
    let mut q = NexmarkQuery {
        name: name.to_string(),
        select: String::new(),
        with: None,
        setup: vec![],
        expect_error: None,
    };
    let mut body = Vec::new();
    for line in text.lines() {
        let t = line.trim();
        if let Some(w) = t.strip_prefix("-- eddy-with:") {
            q.with = Some(w.trim().to_string());
        } else if let Some(s) = t.strip_prefix("-- eddy-setup:") {
            q.setup.push(s.trim().to_string());
        } else if let Some(e) = t.strip_prefix("-- eddy-expect:") {
            q.expect_error = Some(e.trim().to_string());
        } else if !t.starts_with("--") && !t.is_empty() {
            body.push(line);
        }
    }
    q.select = body.join("\n").trim().trim_end_matches(';').to_string();
    q
}

/// Every query, in order q0, q1, ...
pub fn load() -> Vec<NexmarkQuery> {
    let mut out: Vec<NexmarkQuery> = std::fs::read_dir(dir())
        .expect("benches/nexmark")
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let p = e.path();
            let name = p.file_name()?.to_str()?.strip_suffix(".sql")?.to_string();
            name.starts_with('q').then(|| {
                let text = std::fs::read_to_string(&p).expect("read query");
                parse(&name, &text)
            })
        })
        .collect();
    out.sort_by_key(|q| q.number());
    out
}

pub fn get(name: &str) -> Option<NexmarkQuery> {
    load().into_iter().find(|q| q.name == name)
}

//! One error type for the whole server, grouped by who is at fault: the user (bad SQL, bad
//! option, bad value), the outside world (disk, network), or us (a bug). Every variant maps
//! to a Postgres SQLSTATE at the wire, so clients can react to the class of error.

use datafusion::arrow::error::ArrowError;
use datafusion::error::DataFusionError;

pub type Result<T, E = EddyError> = std::result::Result<T, E>;

/// What went wrong, and whose fault it is.
#[derive(Debug, thiserror::Error)]
pub enum EddyError {
    // ---- the user's fault --------------------------------------------------------------
    /// SQL that does not parse. `position` is a 1-based character offset into the
    /// statement text, as Postgres reports it.
    #[error("{message}")]
    Syntax {
        message: String,
        position: Option<usize>,
    },
    /// A construct we understand but cannot run (yet), e.g. a JOIN in a continuous query.
    #[error("{0}")]
    Unsupported(String),
    #[error("relation \"{0}\" does not exist")]
    UnknownRelation(String),
    #[error("{0}")]
    UnknownColumn(String),
    #[error("relation \"{0}\" already exists")]
    DuplicateRelation(String),
    /// Something depends on the object the user wants to drop.
    #[error("{0}")]
    DependentObjects(String),
    /// An operation that does not apply to this kind of relation (UPDATE on a stream, ...).
    #[error("{0}")]
    WrongObjectType(String),
    /// A value of the wrong type, or that does not fit its column. `code` is the SQLSTATE.
    #[error("{message}")]
    BadValue { code: &'static str, message: String },
    /// Any other error in a user's query, with its SQLSTATE (e.g. 42601, 42804, 23502).
    #[error("{message}")]
    Query { code: &'static str, message: String },

    // ---- the outside world's fault -----------------------------------------------------
    #[error("storage error: {0}")]
    Storage(String),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The Kafka broker could not be reached or refused a request.
    #[error("kafka: {0}")]
    Kafka(String),

    // ---- our fault ---------------------------------------------------------------------
    #[error("internal error: {0}")]
    Internal(String),
    /// An operator (or a function it called) panicked on some input. Our bug, but bound
    /// to that input: the epoch aborts and a source counts the records as bad and goes on.
    #[error("internal error: {0}")]
    OperatorPanic(String),
}

impl EddyError {
    /// The SQLSTATE sent to the client for this error.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            EddyError::Syntax { .. } => "42601",
            EddyError::Unsupported(_) => "0A000",
            EddyError::UnknownRelation(_) => "42P01",
            EddyError::UnknownColumn(_) => "42703",
            EddyError::DuplicateRelation(_) => "42P07",
            EddyError::DependentObjects(_) => "2BP01",
            EddyError::WrongObjectType(_) => "42809",
            EddyError::BadValue { code, .. } | EddyError::Query { code, .. } => code,
            EddyError::Storage(_) => "58030",
            // disk_full, as Postgres reports ENOSPC.
            EddyError::Io(e) if e.kind() == std::io::ErrorKind::StorageFull => "53100",
            EddyError::Io(_) => "58030",
            EddyError::Kafka(_) => "08006",
            EddyError::Internal(_) | EddyError::OperatorPanic(_) => "XX000",
        }
    }

    pub fn position(&self) -> Option<usize> {
        match self {
            EddyError::Syntax { position, .. } => *position,
            _ => None,
        }
    }

    pub fn unsupported(what: impl std::fmt::Display) -> Self {
        EddyError::Unsupported(what.to_string())
    }

    pub fn query(code: &'static str, message: impl Into<String>) -> Self {
        EddyError::Query {
            code,
            message: message.into(),
        }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        EddyError::Internal(message.into())
    }

    pub fn syntax(message: impl Into<String>) -> Self {
        EddyError::Syntax {
            message: message.into(),
            position: None,
        }
    }
}

impl From<DataFusionError> for EddyError {
    fn from(e: DataFusionError) -> Self {
        classify_datafusion(e)
    }
}

impl From<ArrowError> for EddyError {
    fn from(e: ArrowError) -> Self {
        classify_arrow(e)
    }
}

impl From<datafusion::sql::sqlparser::parser::ParserError> for EddyError {
    fn from(e: datafusion::sql::sqlparser::parser::ParserError) -> Self {
        let message = match &e {
            datafusion::sql::sqlparser::parser::ParserError::ParserError(m)
            | datafusion::sql::sqlparser::parser::ParserError::TokenizerError(m) => m.clone(),
            other => other.to_string(),
        };
        EddyError::Syntax {
            message: format!("syntax error: {message}"),
            position: None,
        }
    }
}

fn classify_arrow(e: ArrowError) -> EddyError {
    match e {
        ArrowError::CastError(m) | ArrowError::ParseError(m) => {
            let code = if m.contains("overflow") || m.contains("Can't cast value") {
                "22003"
            } else if ["Date32", "Timestamp", "Time64", "Interval"]
                .iter()
                .any(|t| m.contains(&format!("to value of {t}")))
            {
                // date/time field value out of range (or unreadable)
                "22008"
            } else {
                "22P02"
            };
            EddyError::BadValue { code, message: m }
        }
        ArrowError::DivideByZero => EddyError::BadValue {
            code: "22012",
            message: "division by zero".into(),
        },
        ArrowError::ArithmeticOverflow(m) => EddyError::BadValue {
            code: "22003",
            message: m,
        },
        ArrowError::ComputeError(m) | ArrowError::InvalidArgumentError(m) => {
            EddyError::query("22000", m)
        }
        other => EddyError::Internal(other.to_string()),
    }
}

fn classify_datafusion(e: DataFusionError) -> EddyError {
    match e {
        DataFusionError::ArrowError(a, _) => classify_arrow(*a),
        DataFusionError::SQL(p, _) => EddyError::from(*p),
        DataFusionError::NotImplemented(m) if m.contains("Unsupported CAST") => {
            EddyError::query("42846", strip_df_noise(&m))
        }
        DataFusionError::NotImplemented(m) => EddyError::Unsupported(
            m.trim_start_matches("This feature is not implemented: ")
                .to_string(),
        ),
        DataFusionError::SchemaError(s, _) => match *s {
            datafusion::common::SchemaError::FieldNotFound { field, .. } => {
                EddyError::UnknownColumn(format!("column \"{}\" does not exist", field.flat_name()))
            }
            datafusion::common::SchemaError::AmbiguousReference { field } => EddyError::query(
                "42702",
                format!("column reference \"{}\" is ambiguous", field.name()),
            ),
            other => EddyError::query("42701", strip_df_noise(&other.to_string())),
        },
        DataFusionError::Plan(m) => {
            if m.contains("table '") && m.contains("not found") {
                let name = m.split('\'').nth(1).unwrap_or("?").to_string();
                let name = name.rsplit('.').next().unwrap_or(&name).to_string();
                EddyError::UnknownRelation(name)
            } else if m.contains("No function matches")
                || m.contains("Cannot infer common")
                || m.contains("There isn't a common type")
                || m.contains("not supported")
                || m.contains("Failed to coerce")
                || m.contains("Cannot coerce")
            {
                EddyError::query("42804", strip_df_noise(&m))
            } else if m.contains("must be in GROUP BY") || m.contains("must appear in the GROUP BY")
            {
                EddyError::query("42803", strip_df_noise(&m))
            } else if m.contains("Invalid function") {
                EddyError::query("42883", strip_df_noise(&m))
            } else {
                EddyError::query("42601", strip_df_noise(&m))
            }
        }
        DataFusionError::Context(_, inner) => classify_datafusion(*inner),
        // Planning may report several errors at once: the first is the user's.
        DataFusionError::Collection(errs) => match errs.into_iter().next() {
            Some(first) => classify_datafusion(first),
            None => EddyError::Internal("empty error collection".into()),
        },
        DataFusionError::Shared(shared) => match std::sync::Arc::try_unwrap(shared) {
            Ok(inner) => classify_datafusion(inner),
            Err(shared) => classify_datafusion(DataFusionError::Plan(shared.to_string())),
        },
        DataFusionError::Diagnostic(_, inner) => classify_datafusion(*inner),
        DataFusionError::Execution(m) => {
            if m.contains("Divide by zero") || m.contains("division by zero") {
                EddyError::BadValue {
                    code: "22012",
                    message: "division by zero".into(),
                }
            } else {
                EddyError::query("22000", m)
            }
        }
        DataFusionError::External(e) => match e.downcast::<EddyError>() {
            Ok(inner) => *inner,
            Err(e) => match e.downcast::<DataFusionError>() {
                Ok(df) => classify_datafusion(*df),
                // A pattern the regex crate cannot compile is the user's (Postgres:
                // invalid_regular_expression), not ours.
                Err(e) if e.to_string().starts_with("regex parse error") => EddyError::BadValue {
                    code: "2201B",
                    message: format!("invalid regular expression: {e}"),
                },
                Err(e) => EddyError::Internal(e.to_string()),
            },
        },
        DataFusionError::ResourcesExhausted(m) => EddyError::query("53200", m),
        other => EddyError::Internal(other.to_string()),
    }
}

/// DataFusion messages carry a "Schema error: " style prefix; users want the sentence.
fn strip_df_noise(m: &str) -> String {
    m.trim_start_matches("Schema error: ")
        .trim_start_matches("Error during planning: ")
        .to_string()
}

impl From<rdkafka::error::KafkaError> for EddyError {
    fn from(e: rdkafka::error::KafkaError) -> Self {
        EddyError::Kafka(e.to_string())
    }
}

/// A fault of the state store's disk (or a corrupt store): the outside world's, like `Io`.
impl From<sled::Error> for EddyError {
    fn from(e: sled::Error) -> Self {
        EddyError::Storage(format!("state store: {e}"))
    }
}

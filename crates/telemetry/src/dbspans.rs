//! Database client spans, one per SQL statement, without touching a single query site.
//!
//! sqlx reports every statement it ran as a `sqlx::query` event (our pools log them at TRACE),
//! with the SQL text (placeholders, never the bound values) and the time it took. [`DbSpans`]
//! turns each such event that happens inside a traced span into an OpenTelemetry client span,
//! back-dated to the statement's start, named as the database semantic conventions say
//! (`{db.operation.name} {db.collection.name}`, e.g. `UPDATE session.messages`) and carrying
//! `db.system.name`, `db.operation.name`, `db.collection.name` and the parameterised query text.
//! Statements outside any traced span (background polling) make no span.

use std::time::{Duration, SystemTime};

use opentelemetry::KeyValue;
use opentelemetry::trace::{SpanKind, TraceContextExt, Tracer};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use crate::logfmt::DispatchSlot;
use crate::service::ServiceName;

/// The target sqlx logs its statements under.
pub const SQLX_TARGET: &str = "sqlx::query";
/// Longest query text kept on a span.
const MAX_QUERY_TEXT: usize = 2048;

/// The layer; install it with [`filter`].
pub struct DbSpans<T> {
    tracer: T,
    dispatch: DispatchSlot,
}

impl<T> DbSpans<T> {
    /// Spans are started on `tracer`; parents are read through the subscriber in `dispatch`.
    pub fn new(tracer: T, dispatch: DispatchSlot) -> Self {
        Self { tracer, dispatch }
    }
}

/// The per-layer filter [`DbSpans`] needs: the exported spans (a filtered layer sees no other
/// span as an event's parent) and sqlx's statement events.
pub fn filter() -> tracing_subscriber::EnvFilter {
    let statements = format!("{SQLX_TARGET}=trace").parse().unwrap_or_default();
    crate::logfmt::trace_filter().add_directive(statements)
}

#[derive(Default)]
struct Statement {
    summary: String,
    full: String,
    elapsed_secs: f64,
    rows_returned: Option<i64>,
}

impl Visit for Statement {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "summary" => value.clone_into(&mut self.summary),
            "db.statement" => value.trim().clone_into(&mut self.full),
            _ => {}
        }
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if field.name() == "elapsed_secs" {
            self.elapsed_secs = value;
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "rows_returned" {
            self.rows_returned = i64::try_from(value).ok();
        }
    }

    fn record_debug(&mut self, _field: &Field, _value: &dyn std::fmt::Debug) {}
}

impl<S, T> tracing_subscriber::Layer<S> for DbSpans<T>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    T: Tracer + Send + Sync + 'static,
    T::Span: Send + Sync + 'static,
{
    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if event.metadata().target() != SQLX_TARGET {
            return;
        }
        let Some(span) = ctx.event_span(event) else { return };
        let service = span.extensions().get::<ServiceName>().map(|s| s.name.clone());
        let Some(parent) = self.dispatch.otel_context(&span.id()) else {
            return;
        };
        if !parent.span().span_context().is_valid() {
            return;
        }
        let mut statement = Statement::default();
        event.record(&mut statement);
        let text = if statement.full.is_empty() {
            statement.summary.trim_end_matches(" …").to_owned()
        } else {
            statement.full
        };
        let shape = parse(&text);
        let end = SystemTime::now();
        let start = end
            .checked_sub(Duration::try_from_secs_f64(statement.elapsed_secs).unwrap_or_default())
            .unwrap_or(end);
        let mut attributes = vec![
            KeyValue::new("db.system.name", "postgresql"),
            KeyValue::new("db.system", "postgresql"),
            KeyValue::new("db.operation.name", shape.operation.clone()),
            KeyValue::new("db.query.text", truncate(&text, MAX_QUERY_TEXT).to_owned()),
        ];
        if let Some(table) = &shape.table {
            attributes.push(KeyValue::new("db.collection.name", table.clone()));
        }
        if let Some(rows) = statement.rows_returned {
            attributes.push(KeyValue::new("db.response.returned_rows", rows));
        }
        if let Some(service) = service {
            attributes.push(KeyValue::new(crate::semconv::SWITCHBOARD_SERVICE, service.to_string()));
        }
        let mut otel_span = self
            .tracer
            .span_builder(shape.span_name())
            .with_kind(SpanKind::Client)
            .with_start_time(start)
            .with_attributes(attributes)
            .start_with_context(&self.tracer, &parent);
        opentelemetry::trace::Span::end_with_timestamp(&mut otel_span, end);
    }
}

fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// What a statement does and to which table, read from its text.
#[derive(Debug, PartialEq, Eq)]
pub struct Shape {
    /// `SELECT`, `INSERT`, `UPDATE`, `DELETE`, `BEGIN`, `COMMIT`, … (upper case).
    pub operation: String,
    /// The (schema-qualified) table the statement is about, when one can be named.
    pub table: Option<String>,
}

impl Shape {
    /// The span name of the database conventions: `{operation} {table}`, or the operation alone.
    pub fn span_name(&self) -> String {
        match &self.table {
            Some(table) => format!("{} {table}", self.operation),
            None => self.operation.clone(),
        }
    }
}

/// Reads the operation and table of a statement. A `WITH` query is named after its main
/// statement (the first data-changing one, else the final `SELECT`).
pub fn parse(sql: &str) -> Shape {
    let words: Vec<&str> = sql.split_whitespace().collect();
    let first = words.first().map(|w| w.to_ascii_uppercase()).unwrap_or_default();
    let verbs = ["INSERT", "UPDATE", "DELETE", "SELECT"];
    let (operation, at) = if first == "WITH" {
        let changing = words
            .iter()
            .position(|w| ["INSERT", "UPDATE", "DELETE"].contains(&upper_word(w).as_str()));
        let last_select = words.iter().rposition(|w| upper_word(w) == "SELECT");
        match changing.or(last_select) {
            Some(i) => (upper_word(words[i]), i),
            None => (first, 0),
        }
    } else {
        (first.trim_end_matches(';').to_owned(), 0)
    };
    let table = if verbs.contains(&operation.as_str()) {
        let after = match operation.as_str() {
            "INSERT" => "INTO",
            "UPDATE" => "UPDATE",
            _ => "FROM",
        };
        words[at..]
            .iter()
            .position(|w| upper_word(w) == after)
            .and_then(|i| words.get(at + i + 1))
            .map(|w| {
                w.trim_matches(|c: char| c == '"' || c == ',' || c == ';')
                    .split('(')
                    .next()
                    .unwrap_or_default()
            })
            .filter(|t| !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.'))
            .filter(|t| !["ONLY", "LATERAL"].contains(&t.to_ascii_uppercase().as_str()))
            .map(|t| t.to_ascii_lowercase())
    } else {
        None
    };
    Shape { operation, table }
}

fn upper_word(word: &str) -> String {
    word.trim_start_matches('(').to_ascii_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(sql: &str) -> (String, Option<String>) {
        let s = parse(sql);
        (s.operation, s.table)
    }

    #[test]
    fn statements_are_named_by_operation_and_table() {
        assert_eq!(
            shape("SELECT id, status FROM session.conversations WHERE id = $1"),
            ("SELECT".into(), Some("session.conversations".into()))
        );
        assert_eq!(
            shape("INSERT INTO session.messages (id, body) VALUES ($1, $2)"),
            ("INSERT".into(), Some("session.messages".into()))
        );
        assert_eq!(
            shape("update routing.work_items set state = 'offered' where id = $1"),
            ("UPDATE".into(), Some("routing.work_items".into()))
        );
        assert_eq!(
            shape("DELETE FROM api.web_sessions WHERE expires_at < now()"),
            ("DELETE".into(), Some("api.web_sessions".into()))
        );
        assert_eq!(shape("COMMIT"), ("COMMIT".into(), None));
        assert_eq!(shape("SELECT pg_advisory_xact_lock($1)"), ("SELECT".into(), None));
        assert_eq!(
            shape("INSERT INTO session.outbox(id, payload) SELECT * FROM UNNEST($1::uuid[], $2::jsonb[])"),
            ("INSERT".into(), Some("session.outbox".into()))
        );
    }

    #[test]
    fn a_with_query_is_named_after_its_main_statement() {
        assert_eq!(
            shape("WITH moved AS (UPDATE session.messages SET status = $2 WHERE sid = ANY($1) RETURNING id) SELECT count(*) FROM moved"),
            ("UPDATE".into(), Some("session.messages".into()))
        );
        assert_eq!(
            shape("WITH c AS (SELECT 1) SELECT * FROM routing.queues"),
            ("SELECT".into(), Some("routing.queues".into()))
        );
    }

    #[test]
    fn query_text_is_cut_on_a_character_boundary() {
        assert_eq!(truncate("ab…cd", 3), "ab");
        assert_eq!(truncate("abc", 10), "abc");
    }
}

//! Exports of an organization's audit trail as CSV or NDJSON, of any size: the events are read
//! in sequence order a page at a time and handed out as a stream of chunks, so memory stays flat
//! however long the log is. An unfiltered NDJSON export is exactly what `mandate audit verify
//! --export` checks offline against a signed checkpoint.

use super::{filtered_in_order, view, ResolvedFilter, StoredEvent};
use crate::model::audit::AuditFilter;
use crate::server::domain::DomainError;
use futures_util::stream::{self, Stream};
use sqlx::PgPool;
use uuid::Uuid;

/// Events read per query.
const PAGE: i64 = 1_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Csv,
    Ndjson,
}

impl Format {
    pub fn parse(input: &str) -> Result<Format, DomainError> {
        match input {
            "csv" => Ok(Format::Csv),
            "ndjson" | "jsonl" => Ok(Format::Ndjson),
            other => Err(DomainError::invalid(format!("format must be csv or ndjson, not {other:?}"))),
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Ndjson => "application/x-ndjson",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Ndjson => "ndjson",
        }
    }
}

const CSV_COLUMNS: &str = "seq,id,occurred_at,actor_type,actor_id,actor_label,action,target_type,target_id,\
target_label,outcome,ip,user_agent,request_id,person_id,agent_id,details,prev_hash,hash\n";

/// One CSV cell: quoted when needed, and defused when a spreadsheet would run it as a formula.
fn csv_cell(out: &mut String, value: &str) {
    let formula = value.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if formula || value.contains([',', '"', '\n', '\r']) {
        out.push('"');
        if formula {
            out.push('\'');
        }
        out.push_str(&value.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(value);
    }
}

fn csv_row(out: &mut String, event: &StoredEvent) {
    let occurred = event.occurred_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    let uuid = |id: Option<Uuid>| id.map(|id| id.to_string()).unwrap_or_default();
    let cells: [&str; 19] = [
        &event.seq.to_string(),
        &event.id.to_string(),
        &occurred,
        &event.actor_type,
        event.actor_id.as_deref().unwrap_or(""),
        &event.actor_label,
        &event.action,
        event.target_type.as_deref().unwrap_or(""),
        event.target_id.as_deref().unwrap_or(""),
        event.target_label.as_deref().unwrap_or(""),
        &event.outcome,
        event.ip.as_deref().unwrap_or(""),
        event.user_agent.as_deref().unwrap_or(""),
        event.request_id.as_deref().unwrap_or(""),
        &uuid(event.person_id),
        &uuid(event.agent_id),
        &event.details,
        &hex::encode(&event.prev_hash),
        &hex::encode(&event.hash),
    ];
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_cell(out, cell);
    }
    out.push('\n');
}

fn chunk(events: Vec<StoredEvent>, format: Format) -> String {
    let mut out = String::with_capacity(events.len() * 600);
    for event in events {
        match format {
            Format::Csv => csv_row(&mut out, &event),
            Format::Ndjson => {
                out.push_str(&serde_json::to_string(&view(event)).unwrap_or_default());
                out.push('\n');
            }
        }
    }
    out
}

/// The export as a stream of text chunks, oldest event first. The filter is checked before the
/// first chunk, so a bad filter is an error answer, not a broken download.
pub fn stream(
    pool: PgPool,
    org_id: Uuid,
    filter: &AuditFilter,
    format: Format,
) -> Result<impl Stream<Item = Result<String, DomainError>> + Send + 'static, DomainError> {
    let filter = ResolvedFilter::new(filter)?;
    let header = match format {
        Format::Csv => Some(CSV_COLUMNS.to_string()),
        Format::Ndjson => None,
    };
    // State: the next header to send, the last sequence number sent, and whether we are done.
    Ok(stream::unfold((header, 0_i64, false), move |(header, after, done)| {
        let pool = pool.clone();
        let filter = filter.clone();
        async move {
            if let Some(header) = header {
                return Some((Ok(header), (None, after, done)));
            }
            if done {
                return None;
            }
            match filtered_in_order(&pool, org_id, &filter, after, PAGE).await {
                Err(err) => Some((Err(err), (None, after, true))),
                Ok(events) if events.is_empty() => None,
                Ok(events) => {
                    let last = events.last().map(|e| e.seq).unwrap_or(after);
                    let finished = (events.len() as i64) < PAGE;
                    Some((Ok(chunk(events, format)), (None, last, finished)))
                }
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_formulas_defused() {
        let mut out = String::new();
        for value in ["plain", "a,b", "say \"hi\"", "=HYPERLINK(\"x\")", "-1", "line\nbreak"] {
            csv_cell(&mut out, value);
            out.push('|');
        }
        assert_eq!(out, "plain|\"a,b\"|\"say \"\"hi\"\"\"|\"'=HYPERLINK(\"\"x\"\")\"|\"'-1\"|\"line\nbreak\"|");
    }

    #[test]
    fn formats_parse() {
        assert_eq!(Format::parse("csv").unwrap(), Format::Csv);
        assert_eq!(Format::parse("ndjson").unwrap(), Format::Ndjson);
        assert!(Format::parse("xlsx").unwrap_err().to_string().contains("csv or ndjson"));
    }
}

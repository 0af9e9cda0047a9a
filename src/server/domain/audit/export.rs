//! Exports of an organization's audit trail as CSV or NDJSON, of any size: the events are read
//! in sequence order a page at a time and handed out as a stream of chunks, so memory stays flat
//! however long the log is. CSV cells are quoted by the `csv` crate, and a cell a spreadsheet
//! would run as a formula is defused. An unfiltered NDJSON export is exactly what `mandate audit
//! verify --export` checks offline against a signed checkpoint.

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

/// A cell starting with one of these would run as a formula in a spreadsheet (`=1+1`, `-2+3`,
/// `@SUM(…)`, or a tab or CR in front of one).
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// CSV cells, quoted and escaped by the `csv` crate: a cell holding a comma, a quote or a line
/// break is quoted, quotes inside doubled. A cell that would run as a formula is defused: an
/// apostrophe first, and quoted whatever it holds. `csv` chooses quoting per writer, not per
/// cell, so each cell is a one-field record from the writer of the style it needs, written
/// straight into the chunk; the commas between cells and the end of a row are `csv_row`'s.
struct CsvCells {
    when_needed: csv::WriterBuilder,
    always: csv::WriterBuilder,
}

impl CsvCells {
    fn new() -> CsvCells {
        let builder = |style| {
            let mut builder = csv::WriterBuilder::new();
            builder.quote_style(style).terminator(csv::Terminator::Any(b'\n'));
            builder
        };
        CsvCells { when_needed: builder(csv::QuoteStyle::Necessary), always: builder(csv::QuoteStyle::Always) }
    }

    fn cell(&mut self, out: &mut Vec<u8>, value: &str) -> Result<(), DomainError> {
        // `csv` writes a record of one empty field as `""`, so that it is not a blank line;
        // between two commas an empty cell is nothing.
        if value.is_empty() {
            return Ok(());
        }
        let defused;
        let (builder, value) = if value.starts_with(FORMULA_STARTS) {
            defused = format!("'{value}");
            (&mut self.always, defused.as_str())
        } else {
            (&mut self.when_needed, value)
        };
        // Room for the worst case (every byte a quote), so the cell goes through in one piece.
        let mut writer = builder.buffer_capacity(2 * value.len() + 3).from_writer(&mut *out);
        writer.write_record([value]).map_err(csv_failed)?;
        writer.into_inner().map_err(|err| csv_failed(err.error()))?;
        // The record's line end: a cell is not a row.
        if out.ends_with(b"\n") {
            out.pop();
        }
        Ok(())
    }
}

fn csv_failed(err: impl std::fmt::Display) -> DomainError {
    DomainError::Internal(format!("writing CSV: {err}"))
}

fn csv_row(cells: &mut CsvCells, out: &mut Vec<u8>, event: &StoredEvent) -> Result<(), DomainError> {
    let occurred = event.occurred_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    let uuid = |id: Option<Uuid>| id.map(|id| id.to_string()).unwrap_or_default();
    let values: [&str; 19] = [
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
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        cells.cell(out, value)?;
    }
    out.push(b'\n');
    Ok(())
}

fn chunk(events: Vec<StoredEvent>, format: Format) -> Result<String, DomainError> {
    match format {
        Format::Csv => {
            let mut cells = CsvCells::new();
            let mut out = Vec::with_capacity(events.len() * 600);
            for event in &events {
                csv_row(&mut cells, &mut out, event)?;
            }
            String::from_utf8(out).map_err(csv_failed)
        }
        Format::Ndjson => {
            let mut out = String::with_capacity(events.len() * 600);
            for event in events {
                out.push_str(&serde_json::to_string(&view(event)).unwrap_or_default());
                out.push('\n');
            }
            Ok(out)
        }
    }
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
                    match chunk(events, format) {
                        Ok(text) => Some((Ok(text), (None, last, finished))),
                        Err(err) => Some((Err(err), (None, last, true))),
                    }
                }
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cells(values: &[&str]) -> String {
        let mut cells = CsvCells::new();
        let mut out = Vec::new();
        for value in values {
            cells.cell(&mut out, value).unwrap();
            out.push(b'|');
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn csv_cells_are_quoted_and_formulas_defused() {
        let out = cells(&["plain", "a,b", "say \"hi\"", "=HYPERLINK(\"x\")", "-1", "line\nbreak"]);
        assert_eq!(out, "plain|\"a,b\"|\"say \"\"hi\"\"\"|\"'=HYPERLINK(\"\"x\"\")\"|\"'-1\"|\"line\nbreak\"|");
    }

    #[test]
    fn csv_cells_with_a_quote_a_comma_and_a_newline() {
        assert_eq!(cells(&["He said \"no\", then\nleft"]), "\"He said \"\"no\"\", then\nleft\"|");
        assert_eq!(cells(&["@SUM(A1,\"b\")\nx"]), "\"'@SUM(A1,\"\"b\"\")\nx\"|");
        assert_eq!(
            cells(&["", "+1", "\tx", "\rx", "a\rb", "tab\tinside", "O'Brien", " "]),
            "|\"'+1\"|\"'\tx\"|\"'\rx\"|\"a\rb\"|tab\tinside|O'Brien| |"
        );
    }

    fn event() -> StoredEvent {
        StoredEvent {
            seq: 7,
            id: Uuid::nil(),
            occurred_at: time::macros::datetime!(2025-01-02 03:04:05 UTC),
            actor_type: "admin".into(),
            actor_id: None,
            actor_label: "=cmd|' /C calc'!A0".into(),
            action: "agent.registered".into(),
            target_type: Some("agent".into()),
            target_id: Some("a1".into()),
            target_label: Some("Ledger, \"v2\"".into()),
            outcome: "success".into(),
            ip: None,
            user_agent: Some("curl/8".into()),
            request_id: None,
            details: r#"{"note":"two\nlines"}"#.into(),
            prev_hash: vec![0; 2],
            hash: vec![255; 2],
            person_id: None,
            agent_id: Some(Uuid::nil()),
        }
    }

    #[test]
    fn csv_rows_read_back_cell_for_cell() {
        let mut out = Vec::new();
        csv_row(&mut CsvCells::new(), &mut out, &event()).unwrap();
        let row = String::from_utf8(out).unwrap();
        let nil = Uuid::nil();
        assert_eq!(
            row,
            format!(
                "7,{nil},2025-01-02T03:04:05Z,admin,,\"'=cmd|' /C calc'!A0\",agent.registered,agent,a1,\
                 \"Ledger, \"\"v2\"\"\",success,,curl/8,,,{nil},{},0000,ffff\n",
                "\"{\"\"note\"\":\"\"two\\nlines\"\"}\""
            )
        );
        let file = format!("{CSV_COLUMNS}{row}");
        let mut reader = csv::ReaderBuilder::new().from_reader(file.as_bytes());
        assert_eq!(reader.headers().unwrap().len(), 19);
        let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(records.len(), 1);
        assert_eq!(&records[0][5], "'=cmd|' /C calc'!A0");
        assert_eq!(&records[0][9], "Ledger, \"v2\"");
        assert_eq!(&records[0][16], r#"{"note":"two\nlines"}"#);
    }

    #[test]
    fn formats_parse() {
        assert_eq!(Format::parse("csv").unwrap(), Format::Csv);
        assert_eq!(Format::parse("ndjson").unwrap(), Format::Ndjson);
        assert!(Format::parse("xlsx").unwrap_err().to_string().contains("csv or ndjson"));
    }
}

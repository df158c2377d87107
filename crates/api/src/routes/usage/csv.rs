//! The audit log as CSV (RFC 4180): a header row, CRLF line ends, fields quoted when they
//! hold a comma, a quote or a line break (quotes doubled). Text that a spreadsheet would
//! run as a formula (starting with `=`, `+`, `-`, `@`, a tab or a carriage return) is
//! prefixed with `'`.
//!
//! An export is read in chunks of [`CHUNK`] rows and holds at most [`MAX_EXPORT_ROWS`]
//! rows, newest first; a longer range is cut at the oldest rows and says so.

use super::views::KeyVisibility;
use crate::error::ApiResult;
use tollgate_domain::time::rfc3339;
use tollgate_store::Store;
use tollgate_store::usage::{AuditFilter, AuditRow};

/// The most rows one export holds.
pub const MAX_EXPORT_ROWS: usize = 50_000;
/// Rows read per query.
const CHUNK: usize = 1_000;

/// The header row.
pub const COLUMNS: [&str; 21] = [
    "time",
    "request_id",
    "installation_id",
    "agent",
    "version",
    "function",
    "method",
    "key_name",
    "key_prefix",
    "member",
    "input_tokens",
    "output_tokens",
    "cache_tokens",
    "counted_input_tokens",
    "counted_output_tokens",
    "latency_ms",
    "status",
    "error_code",
    "cost_usd",
    "free_tier",
    "divergent",
];

/// A finished export.
pub struct Export {
    pub body: String,
    pub rows: usize,
    /// More rows matched than [`MAX_EXPORT_ROWS`]; the oldest were left out.
    pub truncated: bool,
}

/// Appends one text field.
fn text(out: &mut String, value: &str) {
    let formula = value.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quoted = formula || value.contains([',', '"', '\r', '\n']);
    if quoted {
        out.push('"');
    }
    if formula {
        out.push('\'');
    }
    for c in value.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    if quoted {
        out.push('"');
    }
}

/// Appends one row, CRLF-terminated; the key's name and prefix only when `vis` shows it.
fn row(out: &mut String, r: &AuditRow, vis: &KeyVisibility) {
    let cost = r.cost.to_usd_string();
    let shown = vis.shows(&r.user_id);
    let key = |v: &Option<String>| if shown { v.clone().unwrap_or_default() } else { String::new() };
    let (key_name, key_prefix) = (key(&r.key_name), key(&r.key_prefix));
    let texts: [&str; 10] = [
        &rfc3339(r.created_at),
        &r.id,
        &r.installation_id,
        r.agent_slug.as_deref().unwrap_or(&r.agent_id),
        &r.version,
        &r.function_name,
        &r.method,
        &key_name,
        &key_prefix,
        r.member_email.as_deref().unwrap_or(&r.user_id),
    ];
    let numbers = [
        r.input_tokens,
        r.output_tokens,
        r.cache_tokens,
        r.counted_input_tokens,
        r.counted_output_tokens,
        r.latency_ms,
        r.http_status,
    ];
    let mut first = true;
    let mut sep = |out: &mut String| {
        if !first {
            out.push(',');
        }
        first = false;
    };
    for t in texts {
        sep(out);
        text(out, t);
    }
    for n in numbers {
        sep(out);
        out.push_str(&n.to_string());
    }
    for t in [r.error_code.as_deref().unwrap_or(""), &cost, bool_text(r.free_tier), bool_text(r.divergent)] {
        sep(out);
        text(out, t);
    }
    out.push_str("\r\n");
}

fn bool_text(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

/// The rows of `filter`, newest first, as CSV for a caller who sees `vis`.
pub async fn export(store: &Store, filter: &AuditFilter, vis: &KeyVisibility) -> ApiResult<Export> {
    let mut body = COLUMNS.join(",");
    body.push_str("\r\n");
    let mut rows = 0;
    let mut last: Option<(i64, String)> = None;
    loop {
        let want = CHUNK.min(MAX_EXPORT_ROWS + 1 - rows);
        let after = last.as_ref().map(|(t, id)| (*t, id.as_str()));
        let chunk = store.audit_rows_after(filter, after, want as i64).await?;
        for r in chunk.iter().take(MAX_EXPORT_ROWS - rows) {
            row(&mut body, r, vis);
        }
        let read = chunk.len();
        if rows + read > MAX_EXPORT_ROWS {
            return Ok(Export { body, rows: MAX_EXPORT_ROWS, truncated: true });
        }
        rows += read;
        match chunk.last() {
            Some(r) if read == want => last = Some((r.created_at, r.id.clone())),
            _ => return Ok(Export { body, rows, truncated: false }),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use tollgate_domain::catalog::Role;

    fn field(v: &str) -> String {
        let mut out = String::new();
        text(&mut out, v);
        out
    }

    #[test]
    fn quotes_as_rfc_4180_says() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("two\nlines"), "\"two\nlines\"");
        assert_eq!(field("=1+1"), "\"'=1+1\"");
        assert_eq!(field("@SUM(A1)"), "\"'@SUM(A1)\"");
        assert_eq!(field(""), "");
    }

    #[test]
    fn rows_have_every_column() {
        let mut out = String::new();
        let r = AuditRow {
            id: "req_1".into(),
            function_name: "a,b".into(),
            user_id: "usr_1".into(),
            key_name: Some("laptop".into()),
            ..AuditRow::default()
        };
        row(&mut out, &r, &KeyVisibility::new(Role::Owner, "usr_2"));
        assert!(out.ends_with("\r\n"));
        assert_eq!(out.trim_end().split(',').count(), COLUMNS.len() + 1, "{out}");
        assert!(out.contains(",\"a,b\",") && out.contains(",laptop,"));
        let mut hidden = String::new();
        row(&mut hidden, &r, &KeyVisibility::new(Role::Viewer, "usr_2"));
        assert!(!hidden.contains("laptop"));
        let mut own = String::new();
        row(&mut own, &r, &KeyVisibility::new(Role::Member, "usr_1"));
        assert!(own.contains(",laptop,"));
    }
}

//! Checkpoint format 1, as releases up to 0.1.0 (commit 95ada40) wrote it, and its upgrade.
//!
//! Format 1 held both sources' cursors side by side (`cursor` for REST, `taxii` for TAXII)
//! and one `filters` string for both. The upgrade keeps the source's cursor unchanged (the
//! cursor algorithms did not change), so a walk in progress continues with no gap and no
//! repeat; [`fingerprint`] rebuilds format 1's `filters` string from today's settings so the
//! caller can tell whether those settings changed since.

use serde::Deserialize;
use serde_json::{Value, json};

use super::checkpoint::{Checkpoint, VERSION};
use crate::setting::Values;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    #[allow(dead_code)]
    version: u32,
    input: String,
    filters: String,
    cursor: Option<Value>,
    recent: Vec<(i64, u64)>,
    not_before_ms: Option<i64>,
    budget_day: String,
    budget_used: u32,
    backlog: Option<u64>,
    last_success: Option<String>,
    #[serde(default)]
    taxii: Option<Value>,
}

impl State {
    pub fn upgrade(self) -> Checkpoint {
        let taxii = self.filters.starts_with("source=Taxii");
        let cursor = if taxii {
            // Format 1's `resolved_from` was always `filters`; format 2 keeps only `filters`.
            self.taxii.map(|mut t| {
                if let Some(o) = t.as_object_mut() {
                    o.remove("resolved_from");
                }
                t
            })
        } else {
            self.cursor.map(|mut c| {
                if let Some(o) = c.as_object_mut() {
                    o.insert("backlog".into(), json!(self.backlog));
                }
                c
            })
        };
        Checkpoint {
            version: VERSION,
            input: self.input,
            source: if taxii { "taxii" } else { "rest" }.into(),
            filters: self.filters,
            cursor,
            recent: self.recent,
            not_before_ms: self.not_before_ms,
            budget_day: self.budget_day,
            budget_used: self.budget_used,
            last_success: self.last_success,
        }
    }
}

/// Format 1's `filters` for today's settings, normalised as format 1 normalised them.
pub fn fingerprint(values: &Values, source: &str) -> String {
    let s = |k: &str| values.string(k).unwrap_or_default();
    let mut types: Vec<String> = Vec::new();
    for t in s("type")
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        let t = if t == "mitre-attack" {
            "mitre_attack"
        } else {
            t
        };
        if !types.iter().any(|x| x == t) {
            types.push(t.to_string());
        }
    }
    let taxii_url = values
        .string("taxii_url")
        .map(|u| u.trim_end_matches('/').to_string() + "/")
        .unwrap_or_default();
    format!(
        "source={} taxii_url={taxii_url} collection={} base_url={} type={} confidence={} category={} industry={}",
        if source == "taxii" { "Taxii" } else { "Rest" },
        s("collection"),
        // Format 1 gave every input, TAXII ones too, this built-in base_url.
        values
            .string("base_url")
            .unwrap_or_else(|| "https://socdefenders.ai".into())
            .trim_end_matches('/'),
        types.join(","),
        s("confidence"),
        s("category"),
        s("industry"),
    )
}

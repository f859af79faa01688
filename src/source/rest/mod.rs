//! The REST source: `GET {base_url}/api/v1/iocs` of the SOC Defenders API, one cursor
//! position per request, the page streamed and decoded as it arrives.
//!
//! Files: `settings` (its settings), `cursor` (the walk by `since` and `offset`), `wire`
//! (request, statuses, error envelope), `page` (the page's JSON, streamed), `scan` (one
//! validating pass per record), `record` (a record to an event line), `decode` (large pages
//! decoded on a thread of their own).

pub mod cursor;
pub mod decode;
pub mod page;
pub mod record;
pub mod scan;
pub mod settings;
pub mod wire;

use std::borrow::Cow;

use anyhow::Result;
use serde_json::Value;

use crate::http::Net;
use crate::output::PageOut;
use crate::output::event::encode_into;
use crate::source::{Fetched, Printed, Source, Step};
use crate::state::memory::version_hash;
use crate::{log, timeutil};
use cursor::{Cursor, Order, PageFacts};
use record::Element;
pub use settings::{SETTINGS, Settings};

pub struct Rest {
    s: Settings,
    max_field_bytes: usize,
    max_pages: u32,
}

/// What a fetched page told the walk.
pub struct Fetch {
    page: wire::Page,
    facts: PageFacts,
    invalid: usize,
    /// The server sent more records than `limit`; only the newest were remembered.
    oversized: bool,
    at_offset: u64,
}

impl Rest {
    pub fn new(s: Settings, max_field_bytes: usize, max_pages: u32) -> Rest {
        Rest {
            s,
            max_field_bytes,
            max_pages,
        }
    }

    fn first(since_ms: i64) -> Cursor {
        Cursor {
            since_ms,
            offset: 0,
            order: Order::Unknown,
            walk_top_ms: None,
            backlog: None,
        }
    }
}

/// A record to print: its own bytes (the fast path) or its parsed form.
enum Body<'a> {
    Raw(record::Raw<'a>),
    Parsed(&'a serde_json::Map<String, Value>),
}

impl Source for Rest {
    type Cursor = Cursor;
    type Page = Fetch;
    const NAME: &'static str = "rest";

    fn target(&self) -> &str {
        &self.s.base_url
    }

    fn fingerprint(&self) -> String {
        self.s.fingerprint()
    }

    fn start(&self, since_ms: i64) -> Cursor {
        Rest::first(since_ms)
    }

    fn restart(&self, old: Cursor, _since_ms: i64) -> Cursor {
        log::warn(&format!(
            "the filters changed since the last run; restarting the walk at since={} (repeats are filtered out)",
            timeutil::format_ms(old.since_ms)
        ));
        Cursor {
            offset: 0,
            order: Order::Unknown,
            walk_top_ms: None,
            ..old
        }
    }

    fn before_run(&self, c: &Cursor, now: i64) {
        let lookback_ms = self.s.tier.lookback().as_millis() as i64;
        // A first walk starts at the lookback edge; an hour past it means runs were missed.
        if c.since_ms < now - lookback_ms - 3_600_000 {
            log::warn(&format!(
                "the checkpoint (since={}) is older than the tier's {}-day lookback; the API clamps since, so indicators last seen between {} and {} may be unreachable",
                timeutil::format_ms(c.since_ms),
                lookback_ms / 86_400_000,
                timeutil::format_ms(c.since_ms),
                timeutil::format_ms(now - lookback_ms)
            ));
        }
    }

    fn fetch(&mut self, net: &mut Net, cur: &Cursor, out: &mut PageOut) -> Result<Fetched<Fetch>> {
        let limit = self.s.limit;
        let now = timeutil::now_ms();
        let max_field_bytes = self.max_field_bytes;
        let mut bound = (limit as usize).max(1024);
        let mut oversized = false;
        let mut facts = PageFacts {
            limit,
            ..PageFacts::default()
        };
        let (mut index, mut invalid) = (0u64, 0usize);
        let each = |found: record::Found<'_>| -> Result<()> {
            let element = found.element();
            index += 1;
            // The usual record is printed from its bytes; anything unusual is parsed.
            let parsed;
            let (identity, seen_raw, body) = match element {
                Element::Plain(raw) => (
                    raw.identity(),
                    raw.str("last_seen").unwrap_or_default(),
                    Body::Raw(raw),
                ),
                Element::Other(text) => {
                    let replaced;
                    (parsed, replaced) = page::parse_lossy(text).map_err(|e| e.into_failure(0))?;
                    if replaced {
                        log::warn(&format!(
                            "record {} of the page at offset {} holds an escaped lone UTF-16 surrogate, which is not Unicode; it is printed as U+FFFD",
                            index - 1,
                            cur.offset
                        ));
                    }
                    let obj = match record::validate(&parsed) {
                        Ok(o) => o,
                        Err(why) => {
                            invalid += 1;
                            let id = parsed
                                .get("id")
                                .map(|v| v.to_string())
                                .unwrap_or_else(|| "none".into());
                            log::warn(&format!(
                                "skipped record {} of the page at offset {} (id {}): it {why}",
                                index - 1,
                                cur.offset,
                                id.chars().take(80).collect::<String>()
                            ));
                            return Ok(());
                        }
                    };
                    let seen = obj.get("last_seen").and_then(Value::as_str).unwrap_or("");
                    (
                        Cow::Owned(record::identity(obj)),
                        Cow::Borrowed(seen),
                        Body::Parsed(obj),
                    )
                }
            };
            let ts = timeutil::parse_ms(&seen_raw);
            facts.saw(ts);
            let hash = version_hash(&identity, &seen_raw);
            out.offer(hash, ts.unwrap_or(now), |buf| {
                match body {
                    Body::Raw(raw) => raw.encode_into(buf),
                    Body::Parsed(obj) => encode_into(obj, max_field_bytes, buf),
                }
                buf.push(b'\n');
            })?;
            // A page holds at most `limit` records by contract. Past that, keep only the
            // versions that can outlive the page whatever comes next (those within a second
            // of its newest last_seen), so memory depends on `limit`, not on the page.
            if out.fresh.len() > bound {
                let floor = facts.top.unwrap_or(i64::MIN).saturating_sub(1000);
                let kept = out.keep_fresh_from(floor);
                oversized = true;
                bound = bound.max(kept * 2);
            }
            Ok(())
        };
        let fetched = wire::fetch(net, &self.s, cur, limit, max_field_bytes, each)?;
        Ok(match fetched {
            Fetched::Page(page) => Fetched::Page(Fetch {
                page,
                facts,
                invalid,
                oversized,
                at_offset: cur.offset,
            }),
            Fetched::RateLimited { until_ms, detail } => Fetched::RateLimited { until_ms, detail },
            Fetched::BudgetSpent => Fetched::BudgetSpent,
        })
    }

    fn advance(&mut self, cur: Cursor, f: Fetch, printed: &Printed) -> Step<Cursor> {
        let Fetch {
            page,
            mut facts,
            invalid,
            oversized,
            at_offset,
        } = f;
        if page.replaced_utf8 {
            log::warn(
                "the page held invalid UTF-8 (or escaped lone surrogates outside its records); it was ingested with U+FFFD replacement characters",
            );
        }
        facts.len = page.count;
        facts.has_more = page.has_more;
        let mut next = cursor::advance(&cur, &facts, |since| printed.above(since));
        if oversized && page.has_more && next.order != Order::Ascending {
            log::warn(&format!(
                "the server sent {} records in a page of limit {}; only the newest were remembered, so a few repeats are possible on the next pages",
                page.count, self.s.limit
            ));
        }
        let backlog = page.total.map(|t| t.saturating_sub(at_offset + page.count));
        if let (Some(now_left), Some(before)) = (backlog, cur.backlog)
            && page.has_more
            && now_left > before
        {
            log::warn(&format!(
                "the backlog is growing: {now_left} IOCs still to fetch, {before} after the previous page; each run fetches at most {} (limit {} x max_pages {}). Raise max_pages or shorten the interval",
                u64::from(self.s.limit) * u64::from(self.max_pages),
                self.s.limit,
                self.max_pages
            ));
        }
        next.backlog = backlog;
        let summary = format!(
            "printed {} IOCs ({} repeats and {invalid} invalid records skipped); next since={} offset={} order={:?}{}",
            printed.count,
            printed.repeats,
            timeutil::format_ms(next.since_ms),
            next.offset,
            next.order,
            backlog.map(|b| format!(" backlog={b}")).unwrap_or_default()
        );
        Step {
            remember_from_ms: next.since_ms,
            cursor: next,
            more: page.has_more,
            crossing: false,
            summary,
        }
    }

    fn check(&mut self, net: &mut Net, since_ms: i64) -> Result<Vec<String>> {
        let cur = Rest::first(since_ms);
        Ok(
            match wire::fetch(net, &self.s, &cur, 1, self.max_field_bytes, |_| Ok(()))? {
                Fetched::Page(p) => vec![format!(
                    "API: OK, the key is accepted at {}; {} IOCs match since {}",
                    self.s.base_url,
                    p.total
                        .map(|t| t.to_string())
                        .unwrap_or_else(|| "an unknown number of".into()),
                    timeutil::format_ms(since_ms)
                )],
                Fetched::RateLimited { until_ms, .. } => vec![format!(
                    "API: the key is valid but rate-limited until {}; runs before then send no request",
                    timeutil::format_ms(until_ms)
                )],
                Fetched::BudgetSpent => vec!["API: no request sent (daily budget)".into()],
            },
        )
    }
}

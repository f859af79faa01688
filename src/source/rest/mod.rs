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

use crate::http::Net;
use crate::output::PageOut;
use crate::source::{Fetched, Printed, Source, Step};
use crate::state::memory::version_hash;
use crate::{log, timeutil};
use cursor::{Cursor, Order, PageFacts};
use record::Found;
pub use settings::{SETTINGS, Settings};

pub struct Rest {
    s: Settings,
    max_field_bytes: usize,
    max_pages: u32,
    /// Records of this run with a last_seen in the future.
    future: usize,
}

/// What a fetched page told the walk.
pub struct Fetch {
    page: wire::Page,
    facts: PageFacts,
    invalid: usize,
    /// The server sent more records than `limit`; only the newest were remembered.
    oversized: bool,
    future: usize,
    at_offset: u64,
}

impl Rest {
    pub fn new(s: Settings, max_field_bytes: usize, max_pages: u32) -> Rest {
        Rest {
            s,
            max_field_bytes,
            max_pages,
            future: 0,
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

/// A page being read: what its records tell the cursor, and what was skipped.
#[derive(Default)]
struct PageState {
    facts: PageFacts,
    index: u64,
    invalid: usize,
    /// Records whose last_seen is in the future: printed, but they do not move the cursor.
    future: usize,
    /// Versions this page may keep in memory before only its newest second is kept.
    bound: usize,
    oversized: bool,
}

impl PageState {
    /// One element of the page: printed unless it was printed before or is not a record.
    fn take(&mut self, found: Found<'_>, out: &mut PageOut, offset: u64, now: i64) -> Result<()> {
        self.index += 1;
        let at = self.index - 1;
        let (identity, seen, encoded, raw) = match found {
            Found::Skipped { id, why } => {
                self.invalid += 1;
                log::note("skipped record", || {
                    format!(
                        "skipped record {at} of the page at offset {offset} (id {}): it {why}",
                        log::excerpt(&id, 80)
                    )
                });
                return Ok(());
            }
            Found::Encoded(e) => {
                if e.surrogates {
                    log::note("lone surrogate", || {
                        format!(
                            "record {at} of the page at offset {offset} holds an escaped lone UTF-16 surrogate, which is not Unicode; it is printed as U+FFFD"
                        )
                    });
                }
                (
                    Cow::Owned(e.identity),
                    Cow::Owned(e.last_seen),
                    Some(e.line),
                    None,
                )
            }
            record => {
                let raw = record
                    .raw()
                    .expect("record::element hands over only printable records");
                (
                    raw.identity(),
                    raw.str("last_seen").unwrap_or_default(),
                    None,
                    Some(raw),
                )
            }
        };
        let ts = timeutil::parse_ms(&seen);
        // A last_seen in the future is printed (and remembered as it is), but the cursor
        // never moves past now because of it.
        let future = ts.is_some_and(|t| t > now + timeutil::FUTURE_SKEW_MS);
        if future {
            self.future += 1;
        }
        self.facts.saw(ts.map(|t| t.min(now)));
        let hash = version_hash(&identity, &seen);
        out.offer(hash, ts.unwrap_or(now), |buf| {
            match (&raw, &encoded) {
                (Some(raw), _) => raw.encode_into(buf),
                (None, Some(line)) => buf.extend_from_slice(line),
                (None, None) => unreachable!("a record is raw or encoded"),
            }
            buf.push(b'\n');
        })?;
        // A page holds at most `limit` records by contract. Past that, keep only the
        // versions that can outlive the page whatever comes next (those within a second of
        // its newest last_seen), so memory depends on `limit`, not on the page.
        if out.fresh.len() > self.bound {
            let floor = self.facts.top.unwrap_or(i64::MIN).saturating_sub(1000);
            let kept = out.keep_fresh_from(floor);
            self.oversized = true;
            self.bound = self.bound.max(kept * 2);
        }
        Ok(())
    }
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
        let mut page = PageState {
            bound: (limit as usize).max(1024),
            facts: PageFacts {
                limit,
                ..PageFacts::default()
            },
            ..PageState::default()
        };
        let each = |found: Found<'_>| page.take(found, out, cur.offset, now);
        let fetched = wire::fetch(net, &self.s, cur, limit, self.max_field_bytes, each)?;
        Ok(match fetched {
            Fetched::Page(p) => Fetched::Page(Fetch {
                page: p,
                facts: page.facts,
                invalid: page.invalid,
                oversized: page.oversized,
                future: page.future,
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
            future,
            at_offset,
        } = f;
        self.future += future;
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

    fn end_run(&mut self, _cursor: &mut Cursor, _behind: bool) {
        if self.future > 0 {
            log::warn(&format!(
                "{} records in this run had a last_seen more than {} minutes ahead of this host's clock; they were printed, but the checkpoint does not move past now because of them. If this repeats, check the feed (or this host's clock)",
                self.future,
                timeutil::FUTURE_SKEW_MS / 60_000
            ));
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

//! The TAXII 2.1 source: any TAXII 2.1 collection, SOC Defenders' included.
//!
//! Files: `settings` (its settings), `cursor` (the walk by `added_after`), `wire` (discovery,
//! statuses, the objects request), `objects` (a page streamed into bounded objects),
//! `pattern` (STIX patterns as the OASIS validator reads them), `convert` (an object to
//! bounded events). Discovery, rediscovery after a 404 and `next` tokens stay in here: the
//! loop only sees pages.
//!
//! The key goes only to the origin of `taxii_url`: a discovery document that names an API
//! root elsewhere is refused (the HTTP client refuses any other origin too). A page is
//! streamed: each object becomes its events as it is read, and when a page holds several
//! versions of one object, only the newest is printed (the earlier one's lines are taken back
//! before the page reaches stdout).

pub mod convert;
pub mod cursor;
pub mod objects;
pub mod pattern;
pub mod settings;
pub mod wire;

use std::collections::{BTreeMap, HashMap};

use anyhow::Result;

use crate::error::{Kind, fail};
use crate::http::Net;
use crate::output::PageOut;
use crate::source::{Fetched, Printed, Source, Step};
use crate::state::memory::{PassThrough, version_hash};
use crate::{json, log, timeutil};
use convert::Converted;
use cursor::Cursor;
pub use settings::{SETTINGS, Settings};
use wire::Got;

/// Kinds of skipped objects counted by name; the rest are counted as "other".
const SKIPPED_KINDS: usize = 32;

pub struct Taxii {
    s: Settings,
    max_field_bytes: usize,
    max_pages: u32,
    /// This run's `next` token and the `added_after` it belongs to: tokens expire within
    /// seconds, so they never outlive a run.
    next: Option<(String, String)>,
    /// The objects URL and title discovered in this run, not yet in the cursor.
    found: Option<(String, String)>,
    rediscovered: bool,
    /// Pages of this run whose X-TAXII-Date-Added-Last was in the future.
    future: usize,
}

/// What a fetched page told the walk.
pub struct Fetch {
    more: bool,
    next: Option<String>,
    date_added_last: Option<String>,
    bundle: bool,
    /// The page gave no way forward by timestamp (it is inside one `date_added` group).
    stuck: bool,
    objects_url: String,
    title: String,
    counts: Counts,
    /// The `added_after` the request used: a `next` token belongs to it.
    after: String,
}

/// What a page's objects became, besides events.
#[derive(Default)]
struct Counts {
    /// Objects of other types, by type (bounded).
    skipped: BTreeMap<String, usize>,
    /// Entries that are not objects with an id and a type.
    malformed: usize,
    /// Older versions of an object the same page holds a newer version of.
    superseded: usize,
}

impl Counts {
    fn skip(&mut self, kind: String) {
        let key = if self.skipped.len() < SKIPPED_KINDS || self.skipped.contains_key(&kind) {
            kind
        } else {
            "other".into()
        };
        *self.skipped.entry(key).or_default() += 1;
    }
}

/// A version printed on this page: its time in nanoseconds, its hash, its byte range.
type OnPage = (Option<i64>, u64, (u64, u64));

/// Per page: the newest version of each object id printed so far (its time in nanoseconds,
/// its version hash) and where its lines are. Up to `cap` ids, so flat in the page size.
struct Newest {
    by_id: HashMap<u64, OnPage, PassThrough>,
    cap: usize,
}

impl Taxii {
    pub fn new(s: Settings, max_field_bytes: usize, max_pages: u32) -> Taxii {
        Taxii {
            s,
            max_field_bytes,
            max_pages,
            next: None,
            found: None,
            rediscovered: false,
            future: 0,
        }
    }

    /// The next page of objects, with the URL, title and `added_after` it was read with;
    /// rediscovers the collection once if its objects URL answers 404.
    fn page(
        &mut self,
        net: &mut Net,
        c: &Cursor,
    ) -> Result<Got<(wire::Objects, String, String, String)>> {
        loop {
            let (url, title) = match self.target(net, c)? {
                Got::Ok(t) => t,
                Got::Spent => return Ok(Got::Spent),
                Got::RateLimited(t) => return Ok(Got::RateLimited(t)),
                Got::Gone => unreachable!("discovery maps 404 itself"),
            };
            let (after, next) = match &self.next {
                Some((token, after)) => (after.clone(), Some(token.as_str())),
                None => (c.added_after.clone(), None),
            };
            match wire::objects(net, &self.s, &url, &after, next, self.s.limit)? {
                Got::Ok(p) => return Ok(Got::Ok((p, url, title, after))),
                Got::Spent => return Ok(Got::Spent),
                Got::RateLimited(t) => return Ok(Got::RateLimited(t)),
                Got::Gone if !self.rediscovered => {
                    self.rediscovered = true;
                    self.found = None;
                    self.next = None;
                }
                Got::Gone => {
                    return Err(fail(
                        Kind::Config,
                        format!("{url} answered 404 twice; check taxii_url and collection"),
                    ));
                }
            }
        }
    }

    /// The objects URL and title to use: this run's discovery, the checkpoint's, or a new
    /// discovery.
    fn target(&mut self, net: &mut Net, c: &Cursor) -> Result<Got<(String, String)>> {
        if let Some(f) = &self.found {
            return Ok(Got::Ok(f.clone()));
        }
        if !c.objects_url.is_empty() && !self.rediscovered {
            return Ok(Got::Ok((c.objects_url.clone(), c.collection_title.clone())));
        }
        let got = wire::discover(net, &self.s)?;
        if let Got::Ok(f) = &got {
            self.found = Some(f.clone());
        }
        Ok(got)
    }
}

impl Source for Taxii {
    type Cursor = Cursor;
    type Page = Fetch;
    const NAME: &'static str = "taxii";

    fn target(&self) -> &str {
        &self.s.url
    }

    fn fingerprint(&self) -> String {
        self.s.fingerprint()
    }

    fn start(&self, since_ms: i64) -> Cursor {
        Cursor {
            added_after: timeutil::format_us(timeutil::from_ms(since_ms)),
            objects_url: String::new(),
            collection_title: String::new(),
            behind_runs: 0,
        }
    }

    /// Another collection or server: start again at `since`, discovering it anew.
    fn restart(&self, old: Cursor, since_ms: i64) -> Cursor {
        Cursor {
            behind_runs: old.behind_runs,
            ..self.start(since_ms)
        }
    }

    fn fetch(&mut self, net: &mut Net, c: &Cursor, out: &mut PageOut) -> Result<Fetched<Fetch>> {
        let (resp, objects_url, title, after) = match self.page(net, c)? {
            Got::Ok(p) => p,
            Got::Spent => return Ok(Fetched::BudgetSpent),
            Got::RateLimited(until_ms) => {
                return Ok(Fetched::RateLimited {
                    until_ms,
                    detail: "on TAXII objects".into(),
                });
            }
            Got::Gone => unreachable!("page() maps 404 itself"),
        };
        let now = timeutil::now_ms();
        // Versions are remembered at their page's last date_added (never later than now).
        let group_ms = resp
            .date_added_last
            .as_deref()
            .and_then(timeutil::parse_ms)
            .map_or(now, |t| t.min(now));
        let mut counts = Counts::default();
        let mut newest = Newest {
            by_id: HashMap::default(),
            cap: (self.s.limit as usize).max(1024) * 2,
        };
        let (collection, max_field) = (title.clone(), self.max_field_bytes);
        let hint = resp
            .length
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX));
        let meta = objects::stream(resp.body, net.client.max_body(), hint, max_field, |o| {
            take(
                o,
                &collection,
                now,
                max_field,
                group_ms,
                out,
                &mut counts,
                &mut newest,
            )
        })
        .map_err(|e| page_error(e, &objects_url, net.client.max_body()))?;
        if meta.replaced {
            log::warn(&format!(
                "{objects_url} sent invalid UTF-8 or escaped lone UTF-16 surrogates, which are not Unicode; they are printed as U+FFFD"
            ));
        }
        let more = match meta.more {
            Some(m) => m,
            // A bundle has no "more": a full page means there may be more.
            None => meta.bundle && meta.count > 0 && meta.count as u64 >= u64::from(self.s.limit),
        };
        let stuck = cursor::next_added_after(&c.added_after, resp.date_added_last.as_deref())
            .is_none()
            && more;
        if stuck && meta.next.is_none() && resp.date_added_last.is_none() {
            return Err(fail(
                Kind::Upstream,
                format!(
                    "{objects_url} says there is more but sends neither a next token nor X-TAXII-Date-Added-Last; there is no way to page it"
                ),
            ));
        }
        Ok(Fetched::Page(Fetch {
            more,
            next: meta.next,
            date_added_last: resp.date_added_last,
            bundle: meta.bundle,
            stuck,
            objects_url,
            title,
            counts,
            after,
        }))
    }

    fn advance(&mut self, c: Cursor, p: Fetch, printed: &Printed) -> Step<Cursor> {
        let mut added_after =
            cursor::next_added_after(&c.added_after, p.date_added_last.as_deref())
                .unwrap_or(c.added_after.clone());
        if p.stuck
            && p.next.is_none()
            && let Some(last) = &p.date_added_last
        {
            log::warn(&format!(
                "a full page of objects all added at {last}, and the server offers no next token: stepping past that timestamp, so objects added at that same instant beyond this page are not read. Raise limit to avoid this"
            ));
            added_after = last.clone();
        }
        // The next request of this run: the server's token (with the added_after it belongs
        // to), or the new added_after.
        self.next = p.next.map(|t| (t, p.after));
        let skipped: usize = p.counts.skipped.values().sum();
        let kinds: Vec<String> = p
            .counts
            .skipped
            .iter()
            .map(|(k, n)| format!("{}={n}", k.replace(' ', "_")))
            .collect();
        if p.counts.malformed > 0 {
            log::warn(&format!(
                "skipped {} TAXII entries that are not STIX objects with an id and a type",
                p.counts.malformed
            ));
        }
        let summary = format!(
            "printed {} STIX objects as events ({} repeats and {} older versions skipped; {skipped} objects of other types skipped{}{}); next added_after={added_after}",
            printed.count,
            printed.repeats,
            p.counts.superseded,
            if kinds.is_empty() {
                String::new()
            } else {
                format!(": {}", kinds.join(" "))
            },
            if p.bundle { "; bundle paging" } else { "" }
        );
        // Objects are remembered at their page's last date_added, which the cursor stays
        // just below; a second of slack covers the millisecond rounding.
        let remember_from_ms = timeutil::parse_ms(&added_after).unwrap_or(0) - 1000;
        Step {
            cursor: Cursor {
                added_after,
                objects_url: p.objects_url,
                collection_title: p.title,
                behind_runs: c.behind_runs,
            },
            remember_from_ms,
            more: p.more,
            crossing: p.stuck,
            summary,
        }
    }

    /// Counts runs that end with objects still waiting, and warns when it keeps happening:
    /// TAXII gives no totals, so this is the backlog signal.
    fn end_run(&mut self, c: &mut Cursor, behind: bool) {
        if self.future > 0 {
            log::warn(&format!(
                "{} pages in this run had an X-TAXII-Date-Added-Last more than {} minutes ahead of this host's clock; the checkpoint does not move past now because of them. If this repeats, check the server (or this host's clock)",
                self.future,
                timeutil::FUTURE_SKEW_MS / 60_000
            ));
        }
        c.behind_runs = if behind { c.behind_runs + 1 } else { 0 };
        if c.behind_runs >= 3 {
            log::warn(&format!(
                "the collection keeps growing faster than it is read: {} runs in a row ended with objects still waiting, and each run reads at most {} (limit {} x max_pages {}). Raise max_pages or shorten the interval",
                c.behind_runs,
                u64::from(self.s.limit) * u64::from(self.max_pages),
                self.s.limit,
                self.max_pages
            ));
        }
    }

    fn check(&mut self, net: &mut Net, since_ms: i64) -> Result<Vec<String>> {
        let mut lines = Vec::new();
        let (url, title) = match wire::discover(net, &self.s)? {
            Got::Ok(f) => f,
            Got::RateLimited(until) => {
                return Ok(vec![format!(
                    "TAXII: rate-limited until {}",
                    timeutil::format_ms(until)
                )]);
            }
            Got::Spent | Got::Gone => return Ok(vec!["TAXII: no request sent".into()]),
        };
        lines.push(format!("TAXII: OK, collection {title:?} found at {url}"));
        let after = timeutil::format_us(timeutil::from_ms(since_ms));
        lines.push(match wire::objects(net, &self.s, &url, &after, None, 1)? {
            Got::Ok(resp) => {
                let mut any = false;
                objects::stream(resp.body, net.client.max_body(), None, 256, |_| {
                    any = true;
                    Ok(())
                })
                .map_err(|e| page_error(e, &url, net.client.max_body()))?;
                format!(
                    "TAXII: OK, the key is accepted; objects since {after}: {}",
                    if any { "yes" } else { "none yet" }
                )
            }
            Got::RateLimited(until) => {
                format!("TAXII: rate-limited until {}", timeutil::format_ms(until))
            }
            Got::Gone => "TAXII: the objects endpoint answered 404".into(),
            Got::Spent => "TAXII: no request sent".into(),
        });
        Ok(lines)
    }
}

/// The one error line for an objects page that could not be read.
fn page_error(e: json::Error, url: &str, max_body: u64) -> anyhow::Error {
    let why = match e {
        json::Error::Sink(e) => return e,
        json::Error::Io(e) => format!("reading it failed ({})", log::excerpt(&e.to_string(), 200)),
        json::Error::TooLarge => format!(
            "it is larger than max_body_bytes ({max_body} bytes); raise max_body_bytes or lower limit"
        ),
        json::Error::Truncated => "it is truncated JSON".into(),
        json::Error::Malformed(m) => format!("it is not TAXII JSON ({})", log::excerpt(&m, 200)),
    };
    fail(
        Kind::Upstream,
        format!(
            "the TAXII objects page from {url} could not be read: {why}; nothing from it was printed and the checkpoint did not move"
        ),
    )
}

/// One object of a page: its events to the page output (only the newest version of an id
/// on the page), or counted and warned about.
#[allow(clippy::too_many_arguments)]
fn take(
    o: objects::Obj,
    collection: &str,
    now: i64,
    max_field: usize,
    group_ms: i64,
    out: &mut PageOut,
    counts: &mut Counts,
    newest: &mut Newest,
) -> anyhow::Result<()> {
    if o.surrogates {
        log::note("lone surrogate", || {
            format!(
                "STIX object {} holds escaped lone UTF-16 surrogates, which are not Unicode; they are printed as U+FFFD",
                o.id.as_ref().map_or("", |t| t.kept.as_str())
            )
        });
    }
    let events = match convert::convert(&o, collection, now, max_field) {
        Converted::Events(e) => e,
        Converted::Skipped(kind) => {
            counts.skip(kind);
            return Ok(());
        }
        Converted::Invalid(why) => {
            let id = o.id.as_ref().map_or("", |t| t.kept.as_str());
            log::note("skipped STIX object", || {
                format!("skipped STIX object {id}: it {why}")
            });
            return Ok(());
        }
        Converted::Malformed => {
            counts.malformed += 1;
            return Ok(());
        }
    };
    if let Some(n) = &events.note {
        log::note("large STIX object", || n.clone());
    }
    let id = o.id.as_ref().map_or("", |t| t.kept.as_str());
    let version = o.version();
    let id_hash = version_hash(id, "");
    // Nanoseconds: STIX timestamps may carry more digits than milliseconds.
    let ns = timeutil::parse(version).and_then(|t| i64::try_from(t.unix_timestamp_nanos()).ok());
    let hash = version_hash(id, version);
    // Only the newest version of an id on a page is printed; of two at the same instant,
    // the first.
    if let Some((old_ns, old_hash, range)) = newest.by_id.get(&id_hash) {
        if ns <= *old_ns {
            counts.superseded += 1;
            return Ok(());
        }
        out.retract(*old_hash, *range);
        counts.superseded += 1;
    }
    if let Some(range) =
        out.offer_each(hash, group_ms, events.len(), |i, buf| events.write(i, buf))?
        && (newest.by_id.len() < newest.cap || newest.by_id.contains_key(&id_hash))
    {
        newest.by_id.insert(id_hash, (ns, hash, range));
    }
    Ok(())
}

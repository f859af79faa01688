//! The TAXII 2.1 source: any TAXII 2.1 collection, SOC Defenders' included.
//!
//! Files: `settings` (its settings), `cursor` (the walk by `added_after`), `wire` (discovery,
//! statuses, one page of objects), `stix` (STIX patterns and objects to events). Discovery,
//! rediscovery after a 404 and `next` tokens stay in here: the loop only sees pages.

pub mod cursor;
pub mod settings;
pub mod stix;
pub mod wire;

use anyhow::Result;

use crate::error::{Kind, fail};
use crate::http::Net;
use crate::output::PageOut;
use crate::output::event::encode_into;
use crate::source::{Fetched, Printed, Source, Step};
use crate::state::memory::version_hash;
use crate::{log, timeutil};
use cursor::Cursor;
pub use settings::{SETTINGS, Settings};
use wire::Got;

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
    skipped: Vec<(String, usize)>,
    /// The `added_after` the request used: a `next` token belongs to it.
    after: String,
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
        }
    }

    /// The next page of objects, with the URL, title and `added_after` it was read with;
    /// rediscovers the collection once if its objects URL answers 404.
    fn page(
        &mut self,
        net: &mut Net,
        c: &Cursor,
    ) -> Result<Got<(wire::Page, String, String, String)>> {
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
        let (page, objects_url, title, after) = match self.page(net, c)? {
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
        let conv = stix::convert(&page.objects, &title, now);
        for (id, why) in &conv.invalid {
            log::warn(&format!("skipped STIX object {id}: it {why}"));
        }
        if conv.malformed > 0 {
            log::warn(&format!(
                "skipped {} TAXII entries that are not STIX objects with an id and a type",
                conv.malformed
            ));
        }
        let group_ms = page
            .date_added_last
            .as_deref()
            .and_then(timeutil::parse_ms)
            .unwrap_or(now);
        for (id, version, events) in &conv.objects {
            out.offer(version_hash(id, version), group_ms, |buf| {
                for e in events {
                    encode_into(e, self.max_field_bytes, buf);
                    buf.push(b'\n');
                }
            })?;
        }
        let stuck = cursor::next_added_after(&c.added_after, page.date_added_last.as_deref())
            .is_none()
            && page.more;
        if stuck && page.next.is_none() && page.date_added_last.is_none() {
            return Err(fail(
                Kind::Upstream,
                format!(
                    "{objects_url} says there is more but sends neither a next token nor X-TAXII-Date-Added-Last; there is no way to page it"
                ),
            ));
        }
        let mut skipped: Vec<(String, usize)> = conv.skipped.into_iter().collect();
        skipped.sort();
        Ok(Fetched::Page(Fetch {
            more: page.more,
            next: page.next,
            date_added_last: page.date_added_last,
            bundle: page.bundle,
            stuck,
            objects_url,
            title,
            skipped,
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
        let skipped: usize = p.skipped.iter().map(|(_, n)| n).sum();
        let kinds: Vec<String> = p.skipped.iter().map(|(k, n)| format!("{k}={n}")).collect();
        let summary = format!(
            "printed {} STIX objects as events ({} repeats skipped; {skipped} objects of other types skipped{}{}); next added_after={added_after}",
            printed.count,
            printed.repeats,
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
            Got::Ok(p) => format!(
                "TAXII: OK, the key is accepted; objects since {after}: {}",
                if p.objects.is_empty() {
                    "none yet"
                } else {
                    "yes"
                }
            ),
            Got::RateLimited(until) => {
                format!("TAXII: rate-limited until {}", timeutil::format_ms(until))
            }
            Got::Gone => "TAXII: the objects endpoint answered 404".into(),
            Got::Spent => "TAXII: no request sent".into(),
        });
        Ok(lines)
    }
}

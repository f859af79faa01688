//! What each command does: one run of the input, `check`, `state show|reset`, `store-key`,
//! `--print-config`. Printing, flushing, then saving the checkpoint happens here, in that order.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::io::Write;

use anyhow::Result;

use crate::cli::{Cli, Command, StateAction};
use crate::config::{self, Config, SourceKind};
use crate::error::{Kind, KindExt, fail};
use crate::http::Client;
use crate::key::{self, Secret};
use crate::page;
use crate::rest::{self, Fetched};
use crate::spill::Spill;
use crate::state::{self, Cursor, Order, PageFacts, State, Store};
use crate::{event, log, splunkd, stix, taxii, timeutil};
use serde_json::Value;

pub fn main(cli: Cli) -> Result<()> {
    let cfg = config::resolve(&cli.opts.settings())?;
    log::set_input(&cfg.input);
    if cli.opts.print_config {
        return print_config(&cfg);
    }
    match cli.command {
        None => run(&cfg, cli.opts.dry_run),
        Some(Command::Check) => check(&cfg),
        Some(Command::State { action }) => state_cmd(&cfg, action),
        Some(Command::StoreKey) => splunkd::store_key(&cfg),
    }
}

fn print_config(cfg: &Config) -> Result<()> {
    let mut out = String::new();
    for (k, v, src) in &cfg.origins {
        let v = if *k == "proxy" {
            mask_userinfo(v)
        } else {
            v.clone()
        };
        out.push_str(&format!("{k} = {v}    # {src}\n"));
    }
    for set in config::SETTINGS {
        if !cfg.origins.iter().any(|(k, _, _)| *k == set.key) {
            out.push_str(&format!("{} =    # not set\n", set.key));
        }
    }
    out.push_str(&format!(
        "# effective: state file {}, limit {}, since for a first run {}, daily budget {}\n",
        cfg.state_path().display(),
        cfg.limit,
        timeutil::format_ms(timeutil::to_ms(cfg.since)),
        cfg.daily_budget
    ));
    let key_line = match key::resolve_local(cfg) {
        Ok(Some((k, from))) => format!("api_key = {}    # {from}\n", k.masked()),
        Ok(None) => format!(
            "api_key = (from Splunk's secret store at run time: realm {}, username {})\n",
            splunkd::REALM,
            cfg.credential
        ),
        Err(e) => format!("api_key = (error: {e:#})\n"),
    };
    out.push_str(&key_line);
    write_out(out.as_bytes())
}

fn mask_userinfo(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}***{}", &url[..s + 3], &url[at..]),
        _ => url.to_string(),
    }
}

const STDOUT_FAILED: &str =
    "cannot write to stdout (closed pipe or full disk); the checkpoint was not advanced";

fn write_out(bytes: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .kind(Kind::Output, || STDOUT_FAILED.into())
}

fn client(cfg: &Config) -> Result<Client> {
    let target = match cfg.source {
        SourceKind::Rest => cfg.base_url.as_str(),
        SourceKind::Taxii => cfg.taxii_url.as_deref().unwrap_or_default(),
    };
    Client::new(
        target.starts_with("https://"),
        cfg.ca_file.as_deref(),
        cfg.proxy.as_deref(),
        cfg.timeout,
        cfg.max_body_bytes,
        cfg.retries,
    )
}

fn first_cursor(cfg: &Config) -> Cursor {
    Cursor {
        since_ms: timeutil::to_ms(cfg.since),
        offset: 0,
        order: Order::Unknown,
        walk_top_ms: None,
    }
}

/// Loads the state, starting over cleanly on a first run or after a filter change.
fn load_state(cfg: &Config, store: &Store) -> Result<State> {
    let mut st = store.load()?.unwrap_or_else(|| State::new(&cfg.input));
    let filters = cfg.filter_fingerprint();
    if st.filters != filters {
        if let Some(c) = &mut st.cursor {
            log::warn(&format!(
                "the filters changed since the last run; restarting the walk at since={} (repeats are filtered out)",
                timeutil::format_ms(c.since_ms)
            ));
            c.offset = 0;
            c.order = Order::Unknown;
            c.walk_top_ms = None;
        }
        st.filters = filters;
    }
    Ok(st)
}

fn run(cfg: &Config, dry_run: bool) -> Result<()> {
    let store = Store::open(&cfg.state_dir, &cfg.input)?;
    let st = load_state(cfg, &store)?;
    let now = timeutil::now_ms();
    if let Some(nb) = st.not_before_ms.filter(|&nb| nb > now) {
        log::info(&format!(
            "rate limited by the API until {}; no request sent this run",
            timeutil::format_ms(nb)
        ));
        return Ok(());
    }
    let today = timeutil::utc_day(now);
    if st.budget_day == today && st.budget_used >= cfg.daily_budget {
        log::info(&format!(
            "the daily request budget ({}) is spent for {today} UTC; no request sent until tomorrow. Raise daily_budget if your tier allows more",
            cfg.daily_budget
        ));
        return Ok(());
    }
    let (api_key, _) = key::resolve(cfg)?;
    let client = client(cfg)?;
    let mut run = Run {
        cfg,
        store: &store,
        st,
        dry_run,
        today,
    };
    match cfg.source {
        SourceKind::Rest => run.rest(&client, &api_key),
        SourceKind::Taxii => run.taxii(&client, &api_key),
    }
}

/// One run in progress: the state it owns and how it saves.
struct Run<'a> {
    cfg: &'a Config,
    store: &'a Store,
    st: State,
    dry_run: bool,
    today: String,
}

/// The output of one page. A version printed before (remembered in the checkpoint, or earlier
/// in this page) is skipped; the others are encoded into the spill, which reaches stdout only in
/// [`Run::publish`], and are remembered only after that ([`Run::remember`]).
struct PageOut {
    seen: HashSet<u64, state::PassThrough>,
    /// This page's printed versions: hash -> last_seen (or date_added group), epoch ms.
    fresh: HashMap<u64, i64, state::PassThrough>,
    spill: Spill,
    printed: usize,
    repeats: usize,
}

impl PageOut {
    fn new(st: &State, dir: &std::path::Path) -> PageOut {
        PageOut {
            seen: st.seen_set(),
            fresh: HashMap::default(),
            spill: Spill::new(dir),
            printed: 0,
            repeats: 0,
        }
    }

    /// Prints the version `hash` (at time `ts`) with `encode`, unless it was printed before.
    fn offer(&mut self, hash: u64, ts: i64, encode: impl FnOnce(&mut Vec<u8>)) -> Result<()> {
        if self.seen.contains(&hash) || self.fresh.contains_key(&hash) {
            self.repeats += 1;
            return Ok(());
        }
        self.spill.append(encode)?;
        self.fresh.insert(hash, ts);
        self.printed += 1;
        Ok(())
    }
}

/// A record to print: its own bytes (the fast path) or its parsed form.
enum Body<'a> {
    Raw(event::Raw<'a>),
    Parsed(&'a serde_json::Map<String, Value>),
}

/// How a failed fetch ends the run.
enum Stop {
    /// The daily budget ran out: the run ends quietly.
    Budget,
    Fail(anyhow::Error),
}

impl Run<'_> {
    fn save(&self) -> Result<()> {
        save(self.store, &self.st, self.dry_run)
    }

    /// Counts a request against today's budget, refusing it when the budget is spent.
    fn gate(st: &mut State, today: &str, budget: u32, spent: &mut bool) -> Result<()> {
        if st.take_budget(today, budget) {
            Ok(())
        } else {
            *spent = true;
            Err(fail(Kind::RateLimit, "daily request budget spent"))
        }
    }

    /// After a failed request: keep the request count, and say how the run ends.
    fn failed(&mut self, err: anyhow::Error, spent: bool) -> Result<Stop> {
        self.save()?;
        if spent {
            log::info(&format!(
                "the daily request budget ({}) is spent for {} UTC; stopping this run",
                self.cfg.daily_budget, self.today
            ));
            return Ok(Stop::Budget);
        }
        Ok(Stop::Fail(err))
    }

    fn rate_limited(&mut self, until_ms: i64, detail: &str) -> anyhow::Error {
        self.st.not_before_ms = Some(until_ms);
        if let Err(e) = self.save() {
            return e;
        }
        fail(
            Kind::RateLimit,
            format!(
                "the API rate-limited this key (HTTP 429 {detail}); no request until {}, later runs before then exit quietly. If this repeats, lengthen the interval or lower max_pages",
                timeutil::format_ms(until_ms)
            ),
        )
    }

    /// Remembers the versions a published page printed that can still be served again (at or
    /// after `since_ms`), and forgets older ones.
    fn remember(&mut self, fresh: HashMap<u64, i64, state::PassThrough>, since_ms: i64) {
        self.st.recent.extend(
            fresh
                .into_iter()
                .filter(|&(_, t)| t >= since_ms)
                .map(|(h, t)| (t, h)),
        );
        let forgotten = self.st.prune(since_ms);
        if forgotten > 0 {
            log::warn(&format!(
                "forgot the {forgotten} oldest remembered versions (cap {}); a few repeats are possible",
                state::RECENT_CAP
            ));
        }
    }

    fn rest(&mut self, client: &Client, api_key: &Secret) -> Result<()> {
        let cfg = self.cfg;
        let now = timeutil::now_ms();
        let lookback_ms = cfg.tier.lookback().as_millis() as i64;
        if let Some(c) = &self.st.cursor
            // A first walk starts at the lookback edge; an hour past it means runs were missed.
            && c.since_ms < now - lookback_ms - 3_600_000
        {
            log::warn(&format!(
                "the checkpoint (since={}) is older than the tier's {}-day lookback; the API clamps since, so indicators last seen between {} and {} may be unreachable",
                timeutil::format_ms(c.since_ms),
                lookback_ms / 86_400_000,
                timeutil::format_ms(c.since_ms),
                timeutil::format_ms(now - lookback_ms)
            ));
        }
        for _ in 0..cfg.max_pages {
            let cur = self.st.cursor.clone().unwrap_or_else(|| first_cursor(cfg));
            let mut out = PageOut::new(&self.st, &cfg.state_dir);
            let mut bound = (cfg.limit as usize).max(1024);
            let mut oversized = false;
            let mut facts = PageFacts {
                limit: cfg.limit,
                ..PageFacts::default()
            };
            let (mut index, mut invalid) = (0u64, 0usize);
            let each = |found: event::Found<'_>| -> Result<()> {
                let element = found.element();
                index += 1;
                // The usual record is printed from its bytes; anything unusual is parsed.
                let parsed;
                let (identity, seen_raw, body) = match element {
                    event::Element::Plain(raw) => (
                        raw.identity(),
                        raw.str("last_seen").unwrap_or_default(),
                        Body::Raw(raw),
                    ),
                    event::Element::Other(text) => {
                        let replaced;
                        (parsed, replaced) =
                            page::parse_lossy(text).map_err(rest::element_error)?;
                        if replaced {
                            log::warn(&format!(
                                "record {} of the page at offset {} holds an escaped lone UTF-16 surrogate, which is not Unicode; it is printed as U+FFFD",
                                index - 1,
                                cur.offset
                            ));
                        }
                        let obj = match event::validate(&parsed) {
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
                            Cow::Owned(event::identity(obj)),
                            Cow::Borrowed(seen),
                            Body::Parsed(obj),
                        )
                    }
                };
                let ts = timeutil::parse_ms(&seen_raw);
                facts.saw(ts);
                let hash = state::version_hash(&identity, &seen_raw);
                out.offer(hash, ts.unwrap_or(now), |buf| {
                    match body {
                        Body::Raw(raw) => raw.encode_into(buf),
                        Body::Parsed(obj) => event::encode_into(obj, cfg.max_field_bytes, buf),
                    }
                    buf.push(b'\n');
                })?;
                // A page holds at most `limit` records by contract. Past that, keep only the
                // versions that can outlive the page whatever comes next (those within a second
                // of its newest last_seen), so memory depends on `limit`, not on the page.
                if out.fresh.len() > bound {
                    let floor = facts.top.unwrap_or(i64::MIN).saturating_sub(1000);
                    // Rebuilt rather than `retain`ed: the tombstones retain leaves would make
                    // the table double on the next refills instead of reusing its space.
                    let kept: Vec<(u64, i64)> =
                        out.fresh.drain().filter(|&(_, t)| t >= floor).collect();
                    out.fresh.extend(kept);
                    oversized = true;
                    bound = bound.max(out.fresh.len() * 2);
                }
                Ok(())
            };
            let mut spent = false;
            let (st, today) = (&mut self.st, &self.today);
            let fetched = rest::fetch(
                client,
                cfg,
                api_key,
                &cur,
                || Self::gate(st, today, cfg.daily_budget, &mut spent),
                each,
            );
            let page = match fetched {
                Ok(Fetched::Page(p)) => p,
                Ok(Fetched::RateLimited { until_ms, detail }) => {
                    return Err(self.rate_limited(until_ms, &detail));
                }
                Err(e) => match self.failed(e, spent)? {
                    Stop::Budget => return Ok(()),
                    Stop::Fail(e) => return Err(e),
                },
            };
            if page.replaced_utf8 {
                log::warn(
                    "the page held invalid UTF-8 (or escaped lone surrogates outside its records); it was ingested with U+FFFD replacement characters",
                );
            }
            let PageOut {
                spill,
                fresh,
                printed,
                repeats,
                ..
            } = out;
            self.publish(spill)?;
            facts.len = page.count;
            facts.has_more = page.has_more;
            let recent = &self.st.recent;
            let next = state::advance(&cur, &facts, |since| {
                (recent.iter().filter(|&&(t, _)| t > since).count()
                    + fresh.values().filter(|&&t| t > since).count()) as u64
            });
            if oversized && page.has_more && next.order != state::Order::Ascending {
                log::warn(&format!(
                    "the server sent {} records in a page of limit {}; only the newest were remembered, so a few repeats are possible on the next pages",
                    page.count, cfg.limit
                ));
            }
            self.remember(fresh, next.since_ms);
            let backlog = page
                .total
                .map(|t| t.saturating_sub(cur.offset + page.count));
            if let (Some(now_left), Some(before)) = (backlog, self.st.backlog)
                && page.has_more
                && now_left > before
            {
                log::warn(&format!(
                    "the backlog is growing: {now_left} IOCs still to fetch, {before} after the previous page; each run fetches at most {} (limit {} x max_pages {}). Raise max_pages or shorten the interval",
                    u64::from(cfg.limit) * u64::from(cfg.max_pages),
                    cfg.limit,
                    cfg.max_pages
                ));
            }
            self.st.backlog = backlog;
            self.st.last_success = Some(timeutil::format_ms(timeutil::now_ms()));
            log::info(&format!(
                "printed {printed} IOCs ({repeats} repeats and {invalid} invalid records skipped); next since={} offset={} order={:?}{}",
                timeutil::format_ms(next.since_ms),
                next.offset,
                next.order,
                backlog.map(|b| format!(" backlog={b}")).unwrap_or_default()
            ));
            self.st.cursor = Some(next);
            self.save()?;
            if !page.has_more {
                break;
            }
        }
        Ok(())
    }

    /// Copies a complete page's output to stdout; only then may the checkpoint move.
    fn publish(&mut self, spill: Spill) -> Result<()> {
        let mut out = std::io::stdout().lock();
        spill
            .complete()?
            .copy_to(&mut out)
            .kind(Kind::Output, || STDOUT_FAILED.into())?;
        if std::env::var_os("SOCDEFENDERS_TEST_CRASH_AFTER_PRINT").is_some() {
            // Test hook: dies like a killed process between printing and saving.
            std::process::abort();
        }
        self.st.not_before_ms = None;
        Ok(())
    }

    fn taxii(&mut self, client: &Client, api_key: &Secret) -> Result<()> {
        /// Pages a run may add, beyond max_pages, to cross one date_added group.
        const GROUP_EXTRA_PAGES: u32 = 100;
        let cfg = self.cfg;
        let fingerprint = cfg.filter_fingerprint();
        let since = timeutil::format_us(cfg.since);
        let known = self
            .st
            .taxii
            .clone()
            .filter(|t| t.resolved_from == fingerprint);
        let mut added_after = known.as_ref().map_or(since, |t| t.added_after.clone());
        let (mut objects_url, mut title) = match known {
            Some(t) => (t.objects_url, t.collection_title),
            None => self.discover(client, api_key)?,
        };
        let mut session_after = added_after.clone();
        let mut next: Option<String> = None;
        let (mut pages, mut extra, mut rediscovered) = (0u32, 0u32, false);
        loop {
            let mut spent = false;
            let (st, today) = (&mut self.st, &self.today);
            let mut gate = || Self::gate(st, today, cfg.daily_budget, &mut spent);
            let fetched = taxii::fetch(
                client,
                cfg,
                api_key,
                &objects_url,
                &session_after,
                next.as_deref(),
                &mut gate,
            );
            let page = match fetched {
                Ok(taxii::FetchedPage::Page(p)) => p,
                Ok(taxii::FetchedPage::RateLimited(until)) => {
                    return Err(self.rate_limited(until, "on TAXII objects"));
                }
                Ok(taxii::FetchedPage::Gone) if !rediscovered => {
                    rediscovered = true;
                    (objects_url, title) = self.discover(client, api_key)?;
                    next = None;
                    continue;
                }
                Ok(taxii::FetchedPage::Gone) => {
                    return Err(fail(
                        Kind::Config,
                        format!("{objects_url} answered 404 twice; check taxii_url and collection"),
                    ));
                }
                Err(e) => match self.failed(e, spent)? {
                    Stop::Budget => return Ok(()),
                    Stop::Fail(e) => return Err(e),
                },
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
            let mut out = PageOut::new(&self.st, &cfg.state_dir);
            for (id, version, events) in &conv.objects {
                out.offer(state::version_hash(id, version), group_ms, |buf| {
                    for e in events {
                        event::encode_into(e, cfg.max_field_bytes, buf);
                        buf.push(b'\n');
                    }
                })?;
            }
            let PageOut {
                spill,
                fresh,
                printed,
                repeats,
                ..
            } = out;
            self.publish(spill)?;
            let moved = taxii::next_added_after(&added_after, page.date_added_last.as_deref());
            let stuck = moved.is_none() && page.more;
            if let Some(m) = moved {
                added_after = m;
            }
            if stuck && page.next.is_none() {
                let Some(last) = page.date_added_last.clone() else {
                    return Err(fail(
                        Kind::Upstream,
                        format!(
                            "{objects_url} says there is more but sends neither a next token nor X-TAXII-Date-Added-Last; there is no way to page it"
                        ),
                    ));
                };
                log::warn(&format!(
                    "a full page of objects all added at {last}, and the server offers no next token: stepping past that timestamp, so objects added at that same instant beyond this page are not read. Raise limit to avoid this"
                ));
                added_after = last;
            }
            pages += 1;
            if stuck {
                extra += 1;
            }
            let behind_runs = self.st.taxii.as_ref().map_or(0, |t| t.behind_runs);
            self.st.taxii = Some(taxii::TaxiiCursor {
                added_after: added_after.clone(),
                objects_url: objects_url.clone(),
                resolved_from: fingerprint.clone(),
                collection_title: title.clone(),
                behind_runs,
            });
            // Objects are remembered at their page's last date_added, which the cursor stays
            // just below; a second of slack covers the millisecond rounding.
            let after_ms = timeutil::parse_ms(&added_after).unwrap_or(0);
            self.remember(fresh, after_ms - 1000);
            self.st.last_success = Some(timeutil::format_ms(now));
            let skipped: usize = conv.skipped.values().sum();
            let mut kinds: Vec<_> = conv
                .skipped
                .iter()
                .map(|(k, n)| format!("{k}={n}"))
                .collect();
            kinds.sort();
            log::info(&format!(
                "printed {printed} STIX objects as events ({repeats} repeats skipped; {skipped} objects of other types skipped{}{}); next added_after={added_after}",
                if kinds.is_empty() {
                    String::new()
                } else {
                    format!(": {}", kinds.join(" "))
                },
                if page.bundle { "; bundle paging" } else { "" }
            ));
            self.save()?;
            if !page.more {
                self.set_behind(false)?;
                break;
            }
            if (pages >= cfg.max_pages && !stuck) || extra > GROUP_EXTRA_PAGES {
                self.set_behind(true)?;
                break;
            }
            match page.next {
                Some(token) => next = Some(token),
                None => {
                    next = None;
                    session_after = added_after.clone();
                }
            }
        }
        Ok(())
    }

    /// Counts runs that end with objects still waiting, and warns when it keeps happening:
    /// TAXII gives no totals, so this is the backlog signal.
    fn set_behind(&mut self, behind: bool) -> Result<()> {
        let cfg = self.cfg;
        let Some(t) = self.st.taxii.as_mut() else {
            return Ok(());
        };
        t.behind_runs = if behind { t.behind_runs + 1 } else { 0 };
        if t.behind_runs >= 3 {
            log::warn(&format!(
                "the collection keeps growing faster than it is read: {} runs in a row ended with objects still waiting, and each run reads at most {} (limit {} x max_pages {}). Raise max_pages or shorten the interval",
                t.behind_runs,
                u64::from(cfg.limit) * u64::from(cfg.max_pages),
                cfg.limit,
                cfg.max_pages
            ));
        }
        self.save()
    }

    fn discover(&mut self, client: &Client, api_key: &Secret) -> Result<(String, String)> {
        let mut spent = false;
        let (st, today, cfg) = (&mut self.st, &self.today, self.cfg);
        let mut gate = || Self::gate(st, today, cfg.daily_budget, &mut spent);
        match taxii::discover(client, cfg, api_key, &mut gate) {
            Ok(found) => Ok(found),
            Err(e) => match self.failed(e, spent)? {
                Stop::Budget => Err(fail(
                    Kind::RateLimit,
                    "the daily request budget ran out during TAXII discovery",
                )),
                Stop::Fail(e) => Err(e),
            },
        }
    }
}

fn save(store: &Store, st: &State, dry_run: bool) -> Result<()> {
    if dry_run {
        return Ok(());
    }
    store.save(st)
}

fn state_cmd(cfg: &Config, action: StateAction) -> Result<()> {
    let store = Store::open(&cfg.state_dir, &cfg.input)?;
    match action {
        StateAction::Show => {
            let st = store.load()?;
            let v = match st {
                None => {
                    serde_json::json!({"input": cfg.input, "path": store.path(), "state": null})
                }
                Some(s) => serde_json::json!({
                    "input": cfg.input,
                    "path": store.path(),
                    "since": s.cursor.as_ref().map(|c| timeutil::format_ms(c.since_ms)),
                    "offset": s.cursor.as_ref().map(|c| c.offset),
                    "order": s.cursor.as_ref().map(|c| c.order),
                    "remembered_versions": s.recent.len(),
                    "not_before": s.not_before_ms.map(timeutil::format_ms),
                    "requests_today": if s.budget_day == timeutil::utc_day(timeutil::now_ms()) { s.budget_used } else { 0 },
                    "backlog": s.backlog,
                    "last_success": s.last_success,
                }),
            };
            write_out(format!("{}\n", serde_json::to_string_pretty(&v)?).as_bytes())
        }
        StateAction::Reset => {
            let existed = store.reset()?;
            write_out(
                format!(
                    "{} {}\n",
                    if existed {
                        "deleted"
                    } else {
                        "there was no checkpoint at"
                    },
                    store.path().display()
                )
                .as_bytes(),
            )
        }
    }
}

/// `check`: settings, key, state, one request; plain words on stdout, failures as usual.
fn check(cfg: &Config) -> Result<()> {
    let say = |s: String| write_out(format!("{s}\n").as_bytes());
    say(format!(
        "settings: OK (input {}, base_url {}, tier {:?}, limit {})",
        cfg.input, cfg.base_url, cfg.tier, cfg.limit
    ))?;
    match state::load_file(&cfg.state_path()) {
        Ok(None) => say(format!(
            "checkpoint: none yet at {} (first run starts at {})",
            cfg.state_path().display(),
            timeutil::format_ms(timeutil::to_ms(cfg.since))
        ))?,
        Ok(Some(s)) => say(format!(
            "checkpoint: OK at {} (since {})",
            cfg.state_path().display(),
            s.cursor
                .map(|c| timeutil::format_ms(c.since_ms))
                .unwrap_or_else(|| "-".into())
        ))?,
        Err(e) => return Err(e),
    }
    let (api_key, from) = key::resolve(cfg)?;
    say(format!("API key: found ({}) from {from}", api_key.masked()))?;
    let client = client(cfg)?;
    if cfg.source == SourceKind::Taxii {
        let (url, title) = taxii::discover(&client, cfg, &api_key, &mut || Ok(()))?;
        say(format!("TAXII: OK, collection {title:?} found at {url}"))?;
        let probe = Config {
            limit: 1,
            ..cfg.clone()
        };
        let after = timeutil::format_ms(timeutil::to_ms(cfg.since));
        match taxii::fetch(
            &client,
            &probe,
            &api_key,
            &url,
            &after,
            None,
            &mut || Ok(()),
        )? {
            taxii::FetchedPage::Page(p) => say(format!(
                "TAXII: OK, the key is accepted; objects since {after}: {}",
                if p.objects.is_empty() {
                    "none yet"
                } else {
                    "yes"
                }
            ))?,
            taxii::FetchedPage::RateLimited(until) => say(format!(
                "TAXII: rate-limited until {}",
                timeutil::format_ms(until)
            ))?,
            taxii::FetchedPage::Gone => say("TAXII: the objects endpoint answered 404".into())?,
        }
        return say(
            "all checks passed: enable the input in Settings > Data inputs > Scripts".into(),
        );
    }
    let cur = first_cursor(cfg);
    let probe = Config {
        limit: 1,
        ..cfg.clone()
    };
    match rest::fetch(&client, &probe, &api_key, &cur, || Ok(()), |_| Ok(()))? {
        Fetched::Page(p) => say(format!(
            "API: OK, the key is accepted at {}; {} IOCs match since {}",
            cfg.base_url,
            p.total
                .map(|t| t.to_string())
                .unwrap_or_else(|| "an unknown number of".into()),
            timeutil::format_ms(cur.since_ms)
        ))?,
        Fetched::RateLimited { until_ms, .. } => say(format!(
            "API: the key is valid but rate-limited until {}; runs before then send no request",
            timeutil::format_ms(until_ms)
        ))?,
    }
    say("all checks passed: enable the input in Settings > Data inputs > Scripts".into())
}

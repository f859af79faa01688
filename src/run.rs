//! What each command does: one run of the input, `check`, `state show|reset`, `store-key`,
//! `--print-config`. Printing, flushing, then saving the checkpoint happens here, in that order.

use std::io::Write;

use anyhow::Result;

use crate::cli::{Cli, Command, StateAction};
use crate::config::{self, Config, Source};
use crate::error::{Kind, KindExt, fail};
use crate::http::Client;
use crate::key::{self, Secret};
use crate::rest::{self, Fetched};
use crate::state::{self, Cursor, Order, PageFacts, State, Store};
use crate::{event, log, splunkd, timeutil};

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
    let key_line = match key_source_without_network(cfg) {
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

/// The key from the environment or a file, without touching stdin or splunkd.
fn key_source_without_network(cfg: &Config) -> Result<Option<(Secret, String)>> {
    let from_cli = cfg
        .api_key_file
        .as_ref()
        .is_some_and(|(_, s)| *s == Source::Option);
    if from_cli || std::env::var_os("SOCDEFENDERS_API_KEY").is_some() || cfg.api_key_file.is_some()
    {
        return key::resolve(cfg).map(Some);
    }
    Ok(None)
}

fn write_out(bytes: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .kind(Kind::Output, || {
            "cannot write to stdout (closed pipe or full disk); the checkpoint was not advanced"
                .into()
        })
}

fn client(cfg: &Config) -> Result<Client> {
    Client::new(
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
    let mut st = load_state(cfg, &store)?;
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
    let lookback_ms = cfg.tier.lookback().as_millis() as i64;
    if let Some(c) = &st.cursor
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
    let (api_key, _) = key::resolve(cfg)?;
    let client = client(cfg)?;

    for _ in 0..cfg.max_pages {
        let cur = st.cursor.clone().unwrap_or_else(|| first_cursor(cfg));
        let mut spent = false;
        let fetched = rest::fetch(&client, cfg, &api_key, &cur, || {
            if st.take_budget(&today, cfg.daily_budget) {
                Ok(())
            } else {
                spent = true;
                Err(fail(Kind::RateLimit, "daily request budget spent"))
            }
        });
        let page = match fetched {
            Ok(Fetched::Page(p)) => p,
            Ok(Fetched::RateLimited { until_ms, detail }) => {
                st.not_before_ms = Some(until_ms);
                save(&store, &st, dry_run)?;
                return Err(fail(
                    Kind::RateLimit,
                    format!(
                        "the API rate-limited this key (HTTP 429 {detail}); no request until {}, later runs before then exit quietly. If this repeats, lengthen the interval or lower max_pages",
                        timeutil::format_ms(until_ms)
                    ),
                ));
            }
            Err(_) if spent => {
                save(&store, &st, dry_run)?;
                log::info(&format!(
                    "the daily request budget ({}) is spent for {today} UTC; stopping this run",
                    cfg.daily_budget
                ));
                return Ok(());
            }
            Err(e) => {
                // The request count still has to be kept; the cursor is untouched.
                save(&store, &st, dry_run)?;
                return Err(e);
            }
        };
        st.not_before_ms = None;
        if page.replaced_utf8 {
            log::warn(
                "the page held invalid UTF-8; it was ingested with U+FFFD replacement characters",
            );
        }

        let seen = st.seen_set();
        let mut lines = Vec::with_capacity(page.records.len() * 600);
        let mut fresh: Vec<(i64, u64)> = Vec::new();
        let mut last_seen = Vec::with_capacity(page.records.len());
        let (mut repeats, mut invalid) = (0usize, 0usize);
        for (i, rec) in page.records.iter().enumerate() {
            let obj = match event::validate(rec) {
                Ok(o) => o,
                Err(why) => {
                    invalid += 1;
                    let id = rec
                        .get("id")
                        .map(|v| v.to_string())
                        .unwrap_or_else(|| "none".into());
                    log::warn(&format!(
                        "skipped record {i} of the page at offset {} (id {}): it {why}",
                        cur.offset,
                        id.chars().take(80).collect::<String>()
                    ));
                    continue;
                }
            };
            let seen_raw = obj.get("last_seen").and_then(|v| v.as_str()).unwrap_or("");
            let ts = timeutil::parse_ms(seen_raw);
            last_seen.push(ts);
            let h = state::version_hash(&event::identity(obj), seen_raw);
            if seen.contains(&h) || fresh.iter().any(|&(_, x)| x == h) {
                repeats += 1;
                continue;
            }
            lines.extend_from_slice(&event::encode(obj, cfg.max_field_bytes));
            lines.push(b'\n');
            fresh.push((ts.unwrap_or(now), h));
        }
        write_out(&lines)?;
        if std::env::var_os("SOCDEFENDERS_TEST_CRASH_AFTER_PRINT").is_some() {
            // Test hook: dies like a killed process between printing and saving.
            std::process::abort();
        }

        let printed = fresh.len();
        st.recent.extend(fresh);
        let next = state::advance(
            &cur,
            &PageFacts {
                last_seen: &last_seen,
                has_more: page.has_more,
                limit: cfg.limit,
            },
            &st.recent,
        );
        let forgotten = st.prune(next.since_ms);
        if forgotten > 0 {
            log::warn(&format!(
                "forgot the {forgotten} oldest remembered versions (cap {}); a few repeats are possible",
                state::RECENT_CAP
            ));
        }
        let backlog = page
            .total
            .map(|t| t.saturating_sub(cur.offset + page.records.len() as u64));
        if let (Some(now_left), Some(before)) = (backlog, st.backlog)
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
        st.backlog = backlog;
        st.last_success = Some(timeutil::format_ms(timeutil::now_ms()));
        log::info(&format!(
            "printed {printed} IOCs ({repeats} repeats and {invalid} invalid records skipped); next since={} offset={} order={:?}{}",
            timeutil::format_ms(next.since_ms),
            next.offset,
            next.order,
            backlog.map(|b| format!(" backlog={b}")).unwrap_or_default()
        ));
        st.cursor = Some(next);
        save(&store, &st, dry_run)?;
        if !page.has_more {
            break;
        }
    }
    Ok(())
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
    let cur = Cursor {
        offset: 0,
        ..first_cursor(cfg)
    };
    let probe = Config {
        limit: 1,
        ..cfg.clone()
    };
    match rest::fetch(&client, &probe, &api_key, &cur, || Ok(()))? {
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

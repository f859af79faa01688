//! The one loop every source runs in: the rate-limit pause and the daily budget, fetch,
//! print and flush, move the cursor, remember what was printed, save, one summary line.
//!
//! Printing comes before saving: a run killed in between prints the same page again next
//! time (at least once, never lost), and the memory of printed versions keeps that to the
//! killed run's page.

use anyhow::Result;

use crate::config::Config;
use crate::error::{Kind, fail};
use crate::http::{Client, Net};
use crate::output::PageOut;
use crate::source::{Fetched, Printed, Source, Step};
use crate::state::{self, Checkpoint, Store, memory, v1};
use crate::{key, log, timeutil};

/// Pages a run may add, beyond `max_pages`, to cross one group of equal timestamps.
const GROUP_EXTRA_PAGES: u32 = 100;

/// The checkpoint for `src`, upgraded from format 1 if need be, and the cursor to continue
/// from (`None` on a first run).
fn load<S: Source>(
    cfg: &Config,
    store: &Store,
    src: &S,
) -> Result<(Checkpoint, Option<S::Cursor>)> {
    let (mut ck, from_version) = match state::load(store)? {
        Some(l) => (l.checkpoint, l.from_version),
        None => (Checkpoint::new(&cfg.input, S::NAME), crate::state::VERSION),
    };
    // Format 1 wrote another fingerprint: the same settings mean the same walk.
    if from_version == 1 && ck.filters == v1::fingerprint(&cfg.values, S::NAME) {
        ck.filters = src.fingerprint();
    }
    let cursor = match ck.cursor.take() {
        Some(_) if ck.source != S::NAME => {
            log::warn(&format!(
                "this input's source changed from {} to {}; starting a new walk at since={}",
                log::excerpt(&ck.source, 20),
                S::NAME,
                timeutil::format_ms(cfg.since_ms)
            ));
            None
        }
        Some(v) => Some(serde_json::from_value::<S::Cursor>(v).map_err(|e| {
            fail(
                Kind::State,
                format!(
                    "the checkpoint {} is corrupt (its {} cursor: {}); it was left untouched; to start over run: socdefenders-iocs state reset --input {}",
                    store.path().display(),
                    S::NAME,
                    log::excerpt(&e.to_string(), 200),
                    cfg.input
                ),
            )
        })?),
        None => None,
    };
    ck.source = S::NAME.into();
    let fingerprint = src.fingerprint();
    let cursor = match cursor {
        Some(c) if ck.filters != fingerprint => Some(src.restart(c, cfg.since_ms)),
        c => c,
    };
    ck.filters = fingerprint;
    if let Some(c) = &cursor {
        ck.cursor = Some(serde_json::to_value(c)?);
    }
    Ok((ck, cursor))
}

fn save(store: &Store, ck: &Checkpoint, dry_run: bool) -> Result<()> {
    if dry_run {
        return Ok(());
    }
    state::save(store, ck)
}

/// One run of `src`.
pub fn run<S: Source>(mut src: S, cfg: &Config, dry_run: bool) -> Result<()> {
    let store = Store::open(&cfg.state_dir, &cfg.input)?;
    let (ck, cursor) = load(cfg, &store, &src)?;
    let now = timeutil::now_ms();
    let mut walk = Walk {
        cfg,
        store: &store,
        ck,
        today: timeutil::utc_day(now),
        dry_run,
    };
    if let Some(nb) = walk.ck.not_before_ms.filter(|&nb| nb > now) {
        log::info(&format!(
            "rate limited by the API until {}; no request sent this run",
            timeutil::format_ms(nb)
        ));
        return Ok(());
    }
    if walk.ck.budget_spent(&walk.today, cfg.daily_budget) {
        log::info(&walk.budget_spent());
        return Ok(());
    }
    let (api_key, _) = key::resolve(&cfg.key, &cfg.splunkd)?;
    let client = Client::new(&cfg.net, src.target())?;
    let mut cursor = cursor.unwrap_or_else(|| src.start(cfg.since_ms));
    src.before_run(&cursor, now);
    let (mut pages, mut extra) = (0u32, 0u32);
    loop {
        let mut out = PageOut::new(&walk.ck.recent, &cfg.state_dir);
        let fetched = {
            let (ck, day, budget) = (&mut walk.ck, &walk.today, cfg.daily_budget);
            let mut gate = || ck.take_budget(day, budget);
            let mut net = Net::new(&client, &api_key, &mut gate);
            src.fetch(&mut net, &cursor, &mut out)
        };
        let Some(page) = walk.settle(fetched)? else {
            return Ok(());
        };
        let step = walk.publish(&mut src, cursor, page, out)?;
        cursor = step.cursor;
        pages += 1;
        if step.crossing {
            extra += 1;
        }
        let behind =
            step.more && ((pages >= cfg.max_pages && !step.crossing) || extra > GROUP_EXTRA_PAGES);
        let end = !step.more || behind;
        if end {
            src.end_run(&mut cursor, behind);
        }
        walk.ck.cursor = Some(serde_json::to_value(&cursor)?);
        walk.save()?;
        if end {
            return Ok(());
        }
    }
}

/// A run in progress: the checkpoint it owns and how it saves.
struct Walk<'a> {
    cfg: &'a Config,
    store: &'a Store,
    ck: Checkpoint,
    today: String,
    dry_run: bool,
}

impl Walk<'_> {
    fn save(&self) -> Result<()> {
        save(self.store, &self.ck, self.dry_run)
    }

    fn budget_spent(&self) -> String {
        format!(
            "the daily request budget ({}) is spent for {} UTC; no request until the next UTC day. Raise daily_budget if your tier allows more",
            self.cfg.daily_budget, self.today
        )
    }

    /// The page of a fetch, or how the run ends: quietly (`None`) or with an error. Either
    /// way the requests made so far are saved, since they count against the daily budget.
    fn settle<P>(&mut self, fetched: Result<Fetched<P>>) -> Result<Option<P>> {
        match fetched {
            Ok(Fetched::Page(p)) => Ok(Some(p)),
            Ok(Fetched::BudgetSpent) => {
                self.save()?;
                log::info(&self.budget_spent());
                Ok(None)
            }
            Ok(Fetched::RateLimited { until_ms, detail }) => {
                self.ck.not_before_ms = Some(until_ms);
                self.save()?;
                Err(fail(
                    Kind::RateLimit,
                    format!(
                        "the API rate-limited this key (HTTP 429 {detail}); no request until {}, later runs before then exit quietly. If this repeats, lengthen the interval or lower max_pages",
                        timeutil::format_ms(until_ms)
                    ),
                ))
            }
            Err(e) => {
                self.save()?;
                Err(e)
            }
        }
    }

    /// Prints a complete page, then moves the walk and remembers what was printed.
    fn publish<S: Source>(
        &mut self,
        src: &mut S,
        cursor: S::Cursor,
        page: S::Page,
        out: PageOut,
    ) -> Result<Step<S::Cursor>> {
        let (count, repeats) = (out.printed, out.repeats);
        let fresh = out.publish()?;
        #[cfg(debug_assertions)]
        if std::env::var_os("SOCDEFENDERS_TEST_CRASH_AFTER_PRINT").is_some() {
            // Test hook, absent from release builds: dies like a killed process between
            // printing and saving.
            std::process::abort();
        }
        self.ck.not_before_ms = None;
        let printed = Printed {
            recent: &self.ck.recent,
            fresh: &fresh,
            count,
            repeats,
        };
        let step = src.advance(cursor, page, &printed);
        let forgotten = memory::remember(&mut self.ck.recent, fresh, step.remember_from_ms);
        if forgotten > 0 {
            log::warn(&format!(
                "forgot the {forgotten} oldest remembered versions (cap {}); a few repeats are possible",
                memory::RECENT_CAP
            ));
        }
        self.ck.last_success = Some(timeutil::format_ms(timeutil::now_ms()));
        log::info(&step.summary);
        Ok(step)
    }
}

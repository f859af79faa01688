//! The boundary between the one run loop (`run::engine`) and the places indicators come
//! from. A source turns its cursor into requests and a fetched page into events; the loop
//! does everything else, once for every source: the rate-limit pause and the daily budget,
//! printing a page only when it is complete, flushing, moving the cursor, remembering what was
//! printed, saving the checkpoint, the summary line.
//!
//! Each source lives in a folder of its own and owns its settings, its cursor (kept in the
//! checkpoint in the shape it chooses), its wire format and its quirks:
//! - [`rest`]: `GET /api/v1/iocs` of the SOC Defenders API, walked by `since` and `offset`;
//! - [`taxii`]: a TAXII 2.1 collection, with discovery, `added_after` and `next` tokens.
//!
//! # Adding a source
//! A third source (say, a MISP feed) touches exactly these places:
//! 1. `src/source/<name>/`: a `Settings` type with `SETTINGS` (its keys and built-in
//!    defaults) and `from_values`, and a type implementing [`Source`];
//! 2. `config::SOURCES` and `config::SourceSettings` (one entry, one variant, one arm of
//!    `config::build`);
//! 3. `run::with_source` (one match arm);
//! 4. `tests/util/<name>.rs`: a loopback server playing the feed, and its tests;
//! 5. the documentation of its settings: `app/README/socdefenders.conf.spec` and the README
//!    (a test fails while a setting is undocumented).
//!
//! Nothing else changes: the checkpoint, the budget, the output and the error lines are the
//! loop's.

pub mod rest;
pub mod taxii;

use anyhow::Result;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::http::Net;
use crate::output::PageOut;
use crate::state::Recent;
use crate::state::memory::Fresh;

/// How a page request ended, when it did not fail.
pub enum Fetched<P> {
    /// A page arrived and its records were offered to the page output.
    Page(P),
    /// HTTP 429: no request before `until_ms`. `detail` is the server's message, scrubbed.
    RateLimited { until_ms: i64, detail: String },
    /// The daily request budget refused a request: the run ends quietly.
    BudgetSpent,
}

/// The versions printed so far: remembered from earlier pages, and printed on this page.
pub struct Printed<'a> {
    pub recent: &'a Recent,
    pub fresh: &'a Fresh,
    /// Versions this page printed, and versions it dropped as printed before.
    pub count: usize,
    pub repeats: usize,
}

impl Printed<'_> {
    /// How many printed versions are newer than `t` (epoch ms).
    pub fn above(&self, t: i64) -> u64 {
        (self.recent.iter().filter(|&&(ts, _)| ts > t).count()
            + self.fresh.values().filter(|&&ts| ts > t).count()) as u64
    }
}

/// Where a published page leaves the walk.
pub struct Step<C> {
    pub cursor: C,
    /// Versions of this page at or after this time can be served again: they are remembered,
    /// older ones forgotten.
    pub remember_from_ms: i64,
    /// The server has more after this page.
    pub more: bool,
    /// The page did not move the cursor (it was inside one group of equal timestamps): the
    /// loop may read past `max_pages` to cross the group.
    pub crossing: bool,
    /// The page's INFO line.
    pub summary: String,
}

/// A place indicators come from. See the module docs for what the loop does around it.
pub trait Source {
    /// The source's part of the checkpoint.
    type Cursor: Serialize + DeserializeOwned + Clone;
    /// What a fetched page told the source, for [`Source::advance`].
    type Page;
    /// The checkpoint's `source`.
    const NAME: &'static str;

    /// The URL whose origin (scheme, host, port) is the only place requests, and so the key,
    /// may go.
    fn target(&self) -> &str;
    /// Changes whenever the settings that define the result set change.
    fn fingerprint(&self) -> String;
    /// The cursor of a first run, starting at `since_ms`.
    fn start(&self, since_ms: i64) -> Self::Cursor;
    /// The cursor to continue from after the fingerprint changed.
    fn restart(&self, old: Self::Cursor, since_ms: i64) -> Self::Cursor;
    /// Warnings worth giving before the first request (a stale checkpoint).
    fn before_run(&self, _cursor: &Self::Cursor, _now_ms: i64) {}
    /// Fetches one page at `cursor`, handing its events to `out`. Nothing reaches stdout
    /// before the loop publishes `out`, so an error here prints nothing.
    fn fetch(
        &mut self,
        net: &mut Net,
        cursor: &Self::Cursor,
        out: &mut PageOut,
    ) -> Result<Fetched<Self::Page>>;
    /// Where the walk goes after a published page.
    fn advance(
        &mut self,
        cursor: Self::Cursor,
        page: Self::Page,
        printed: &Printed,
    ) -> Step<Self::Cursor>;
    /// The end of a run: `behind` when it stopped with pages still waiting.
    fn end_run(&mut self, _cursor: &mut Self::Cursor, _behind: bool) {}
    /// `check`: one request that shows the settings and the key work; lines to print.
    fn check(&mut self, net: &mut Net, since_ms: i64) -> Result<Vec<String>>;
}

//! The per-input checkpoint: where the next request starts, which versions were already
//! printed, the rate-limit pause and the daily request count.
//!
//! # Why it looks like this
//! The API filters with `since` (inclusive or exclusive: undocumented), pages with `offset`,
//! has no `until`, does not document its sort order, and grows while we walk it. So:
//! - **Ascending pages** (oldest first) are walked by key: the next `since` is just below the
//!   newest `last_seen` printed, and `offset` skips the versions above that `since` we already
//!   printed, less an overlap. Updates to old IOCs then never shift what is left to read.
//! - **Descending or unknown order** is walked with a fixed `since` and a growing `offset`; new
//!   and updated IOCs land in front of the offset (they only cause repeats), and when the walk
//!   reaches its end the next walk starts just below the newest `last_seen` of its first page,
//!   which catches everything added or updated while the walk went on.
//! - Overlaps and inclusive/exclusive `since` cause repeats, never gaps; `recent` (hashes of
//!   `id` + `last_seen` with their time) filters the repeats out. Entries older than the cursor's
//!   `since` can never be served again and are dropped, so the memory stays bounded.
//!
//! The file is versioned JSON written to a temp file, synced (fdatasync) and renamed; a lock file keeps
//! two runs of one input apart. A missing file is a first run; anything unreadable is an error
//! that leaves the file as it is.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::error::{Kind, KindExt, fail};

pub const VERSION: u32 = 1;
/// Most versions remembered; past this the oldest are forgotten (and a warning says so).
pub const RECENT_CAP: usize = 200_000;

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    /// No page with two different `last_seen` values seen yet.
    #[default]
    Unknown,
    Ascending,
    Descending,
    /// Pages disagreed: walk by offset with an overlap.
    Mixed,
}

/// Where the next request starts.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Cursor {
    /// `since` of the next request, epoch ms.
    pub since_ms: i64,
    /// `offset` of the next request.
    pub offset: u64,
    pub order: Order,
    /// Offset walks: the newest `last_seen` on the walk's first page.
    pub walk_top_ms: Option<i64>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct State {
    pub version: u32,
    pub input: String,
    /// The filters the cursor belongs to; a change restarts the walk at the same `since`.
    pub filters: String,
    pub cursor: Option<Cursor>,
    /// `[last_seen_ms, hash of id+last_seen]` of versions already printed.
    pub recent: Vec<(i64, u64)>,
    /// No request before this time (epoch ms): set by a 429.
    pub not_before_ms: Option<i64>,
    /// UTC day (`YYYY-MM-DD`) and requests sent that day.
    pub budget_day: String,
    pub budget_used: u32,
    /// IOCs left to read after the last page, when the server said how many.
    pub backlog: Option<u64>,
    /// When a page was last printed and saved (RFC 3339).
    pub last_success: Option<String>,
    /// The TAXII source's cursor (`source = taxii`).
    #[serde(default)]
    pub taxii: Option<crate::taxii::TaxiiCursor>,
}

impl State {
    pub fn new(input: &str) -> State {
        State {
            version: VERSION,
            input: input.to_string(),
            filters: String::new(),
            cursor: None,
            recent: Vec::new(),
            not_before_ms: None,
            budget_day: String::new(),
            budget_used: 0,
            backlog: None,
            last_success: None,
            taxii: None,
        }
    }

    /// Counts one request against today's budget; false (and nothing counted) when it is spent.
    pub fn take_budget(&mut self, today: &str, budget: u32) -> bool {
        if self.budget_day != today {
            self.budget_day = today.to_string();
            self.budget_used = 0;
        }
        if self.budget_used >= budget {
            return false;
        }
        self.budget_used += 1;
        true
    }

    pub fn seen_set(&self) -> HashSet<u64, PassThrough> {
        self.recent.iter().map(|&(_, h)| h).collect()
    }

    /// Forgets versions older than `since_ms` and, past the cap, the oldest ones.
    /// Returns how many were forgotten because of the cap.
    pub fn prune(&mut self, since_ms: i64) -> usize {
        self.recent.retain(|&(ts, _)| ts >= since_ms);
        if self.recent.len() <= RECENT_CAP {
            return 0;
        }
        self.recent.sort_unstable();
        let over = self.recent.len() - RECENT_CAP;
        self.recent.drain(..over);
        over
    }
}

/// A hasher for keys that already are hashes ([`version_hash`]): SipHash on them again is
/// wasted work at 10,000 records a page.
#[derive(Default, Clone, Copy)]
pub struct PassThrough;

impl std::hash::BuildHasher for PassThrough {
    type Hasher = PassThroughHasher;
    fn build_hasher(&self) -> PassThroughHasher {
        PassThroughHasher(0)
    }
}

pub struct PassThroughHasher(u64);

impl std::hash::Hasher for PassThroughHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// FNV-1a 64: stable across Rust versions and platforms, unlike `DefaultHasher`.
pub fn version_hash(id: &str, last_seen: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes().chain([0u8]).chain(last_seen.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// What one page told us, reduced to what the cursor needs.
#[derive(Debug, Default, Clone, Copy)]
pub struct PageFacts {
    /// `last_seen` (epoch ms) of the first and last records that had a parseable one.
    pub first: Option<i64>,
    pub last: Option<i64>,
    /// The newest `last_seen` in the page.
    pub top: Option<i64>,
    /// Records in the page, valid or not (they all take a position).
    pub len: u64,
    /// The server says there is more after this page.
    pub has_more: bool,
    /// Requested page size.
    pub limit: u32,
}

impl PageFacts {
    pub fn saw(&mut self, ts: Option<i64>) {
        if let Some(t) = ts {
            self.first.get_or_insert(t);
            self.last = Some(t);
            self.top = Some(self.top.map_or(t, |m| m.max(t)));
        }
    }
}

/// The cursor after a page. `above(t)` counts the printed versions (remembered or from this
/// page) whose `last_seen` is after `t`.
pub fn advance(cur: &Cursor, page: &PageFacts, above: impl Fn(i64) -> u64) -> Cursor {
    let len = page.len;
    let page_order = match (page.first, page.last) {
        (Some(a), Some(b)) if a < b => Order::Ascending,
        (Some(a), Some(b)) if a > b => Order::Descending,
        _ => Order::Unknown,
    };
    let order = match (cur.order, page_order) {
        (o, Order::Unknown) => o,
        (Order::Unknown, p) => p,
        (o, p) if o == p => o,
        _ => Order::Mixed,
    };
    let top = page.top;

    if order == Order::Ascending {
        let Some(top) = top else {
            // Nothing at this offset: re-read the window from its start next time, in case
            // the offset over-counted (the repeats are filtered out).
            return Cursor {
                offset: 0,
                order,
                ..cur.clone()
            };
        };
        // Versions printed but since superseded (re-seen IOCs move to the end) inflate the
        // count of what lies before the next unread position; the overlap absorbs them.
        let overlap = u64::from((page.limit / 4).max(1));
        let since_ms = cur.since_ms.max(top - 1000);
        let above = above(since_ms);
        let mut offset = above.saturating_sub(overlap);
        if since_ms == cur.since_ms && page.has_more && offset <= cur.offset {
            offset = cur.offset + len.saturating_sub(overlap).max(1);
        }
        return Cursor {
            since_ms,
            offset,
            order,
            walk_top_ms: None,
        };
    }

    let walk_top_ms = if cur.offset == 0 {
        top.max(cur.walk_top_ms)
    } else {
        cur.walk_top_ms.or(top)
    };
    if page.has_more && len > 0 {
        // Unknown order: shifts either way are possible, so overlap the pages.
        let overlap = if order == Order::Descending {
            0
        } else {
            u64::from(page.limit / 4).min(len / 4)
        };
        Cursor {
            since_ms: cur.since_ms,
            offset: cur.offset + (len - overlap).max(1),
            order,
            walk_top_ms,
        }
    } else {
        // The walk is complete: the next one starts just below the newest version it began
        // with, so anything added or updated during the walk is in the next one.
        Cursor {
            since_ms: walk_top_ms.map_or(cur.since_ms, |t| cur.since_ms.max(t - 1000)),
            offset: 0,
            order,
            walk_top_ms: None,
        }
    }
}

/// The lock and files of one input's checkpoint.
pub struct Store {
    path: PathBuf,
    _lock: File,
}

impl Store {
    /// Creates the state directory if needed and takes the input's lock.
    pub fn open(dir: &Path, input: &str) -> Result<Store> {
        fs::create_dir_all(dir).kind(Kind::State, || {
            format!(
                "cannot create the state directory {}: fix its permissions or set state_dir",
                dir.display()
            )
        })?;
        let lock_path = dir.join(format!("{input}.lock"));
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .kind(Kind::State, || {
                format!("cannot open the lock file {}", lock_path.display())
            })?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(fail(
                    Kind::State,
                    format!(
                        "another run of input {input} is still going (it holds {}); this run did nothing. If runs keep overlapping, lengthen the interval",
                        lock_path.display()
                    ),
                ));
            }
            Err(fs::TryLockError::Error(e)) => {
                return Err(e).kind(Kind::State, || {
                    format!("cannot lock {}", lock_path.display())
                });
            }
        }
        Ok(Store {
            path: dir.join(format!("{input}.json")),
            _lock: lock,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The saved state, or `None` on a first run.
    pub fn load(&self) -> Result<Option<State>> {
        load_file(&self.path)
    }

    /// Replaces the state atomically: temp file, fsync, rename, fsync of the directory.
    pub fn save(&self, state: &State) -> Result<()> {
        let fail_msg = || {
            format!(
                "cannot save the checkpoint {}: check free space and permissions; the next run repeats this page",
                self.path.display()
            )
        };
        let tmp = self
            .path
            .with_extension(format!("json.tmp{}", std::process::id()));
        let bytes = serde_json::to_vec(state).kind(Kind::State, fail_msg)?;
        // The data is synced before the rename, so a crash never leaves a torn checkpoint. The
        // folder is not synced after it: if power loss undoes the rename, the previous
        // checkpoint is still whole and the page is printed again (at least once, never
        // lost), and that saves a second sync on every run.
        let written = (|| -> std::io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.write_all(b"\n")?;
            f.sync_data()?;
            fs::rename(&tmp, &self.path)
        })();
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        written.kind(Kind::State, fail_msg)
    }

    /// Deletes the checkpoint.
    pub fn reset(&self) -> Result<bool> {
        match fs::remove_file(&self.path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e).kind(Kind::State, || {
                format!("cannot delete {}", self.path.display())
            }),
        }
    }
}

/// Reads a state file; missing is `None`; anything else wrong is a State error with the fix.
pub fn load_file(path: &Path) -> Result<Option<State>> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(e).kind(Kind::State, || {
                format!("cannot read the checkpoint {}", path.display())
            });
        }
    };
    let input = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let reset = format!(
        "it was left untouched; to start over run: socdefenders-iocs state reset --input {input}"
    );
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
        fail(
            Kind::State,
            format!(
                "the checkpoint {} is corrupt ({e}); {reset}",
                path.display()
            ),
        )
    })?;
    match value.get("version").and_then(serde_json::Value::as_u64) {
        Some(v) if v == u64::from(VERSION) => {}
        Some(v) => {
            return Err(fail(
                Kind::State,
                format!(
                    "the checkpoint {} has version {v}, this program reads version {VERSION} (was it written by a newer release?); {reset}",
                    path.display()
                ),
            ));
        }
        None => {
            return Err(fail(
                Kind::State,
                format!(
                    "the checkpoint {} has no version number; {reset}",
                    path.display()
                ),
            ));
        }
    }
    serde_json::from_value(value).map(Some).map_err(|e| {
        fail(
            Kind::State,
            format!(
                "the checkpoint {} is corrupt ({e}); {reset}",
                path.display()
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cur(since_ms: i64, offset: u64, order: Order) -> Cursor {
        Cursor {
            since_ms,
            offset,
            order,
            walk_top_ms: None,
        }
    }

    fn facts(ts: &[i64], has_more: bool, limit: u32) -> PageFacts {
        let mut f = PageFacts {
            len: ts.len() as u64,
            has_more,
            limit,
            ..PageFacts::default()
        };
        for &t in ts {
            f.saw(Some(t));
        }
        f
    }

    fn counter(recent: Vec<i64>) -> impl Fn(i64) -> u64 {
        move |since| recent.iter().filter(|&&t| t > since).count() as u64
    }

    #[test]
    fn ascending_moves_since_and_skips_what_was_printed() {
        let ts = [10_000, 20_000, 30_000, 30_000];
        let next = advance(
            &cur(0, 0, Order::Unknown),
            &facts(&ts, true, 4),
            counter(ts.to_vec()),
        );
        assert_eq!(next.order, Order::Ascending);
        assert_eq!(next.since_ms, 29_000);
        // two printed versions above 29 s, overlap of one
        assert_eq!(next.offset, 1);
    }

    #[test]
    fn ascending_with_a_page_of_one_timestamp_still_progresses() {
        let c = cur(4_000, 8, Order::Ascending);
        let next = advance(&c, &facts(&[5_000; 4], true, 4), counter(vec![5_000]));
        assert_eq!(next.since_ms, 4_000);
        assert!(next.offset > 8);
    }

    #[test]
    fn descending_walks_by_offset_then_restarts_below_its_top() {
        let c1 = advance(
            &cur(0, 0, Order::Unknown),
            &facts(&[50_000, 40_000], true, 2),
            counter(vec![]),
        );
        assert_eq!(
            c1,
            Cursor {
                since_ms: 0,
                offset: 2,
                order: Order::Descending,
                walk_top_ms: Some(50_000)
            }
        );
        let c2 = advance(&c1, &facts(&[30_000], false, 2), counter(vec![]));
        assert_eq!(c2, cur(49_000, 0, Order::Descending));
    }

    #[test]
    fn invalid_records_still_take_their_positions() {
        // a page of 3 where only one record had a usable last_seen
        let mut f = facts(&[50_000], true, 3);
        f.len = 3;
        let next = advance(&cur(0, 3, Order::Descending), &f, counter(vec![]));
        assert_eq!(next.offset, 6);
    }

    #[test]
    fn empty_page_keeps_since() {
        let c = cur(7_000, 0, Order::Unknown);
        assert_eq!(advance(&c, &facts(&[], false, 10), counter(vec![])), c);
    }

    #[test]
    fn budget_resets_each_day_and_is_never_exceeded() {
        let mut s = State::new("x");
        assert!(s.take_budget("2026-01-01", 2));
        assert!(s.take_budget("2026-01-01", 2));
        assert!(!s.take_budget("2026-01-01", 2));
        assert_eq!(s.budget_used, 2);
        assert!(s.take_budget("2026-01-02", 2));
        assert_eq!(s.budget_used, 1);
    }

    #[test]
    fn prune_drops_old_and_caps() {
        let mut s = State::new("x");
        s.recent = vec![(1, 1), (5, 2), (9, 3)];
        assert_eq!(s.prune(5), 0);
        assert_eq!(s.recent, vec![(5, 2), (9, 3)]);
    }

    #[test]
    fn hash_is_stable() {
        assert_eq!(version_hash("a", "b"), version_hash("a", "b"));
        assert_ne!(version_hash("a", "b"), version_hash("ab", ""));
        assert_eq!(version_hash("", ""), 0xaf63_bd4c_8601_b7df);
    }
}

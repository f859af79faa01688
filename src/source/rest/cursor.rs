//! The REST walk: where the next `GET /api/v1/iocs` starts, and how a page moves it.
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
//! - Overlaps and inclusive/exclusive `since` cause repeats, never gaps; the checkpoint's
//!   memory of printed versions (`id` + `last_seen`) filters the repeats out.

use serde::{Deserialize, Serialize};

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

/// Where the next request starts. The same fields as checkpoint format 1's `cursor`, plus
/// the backlog format 1 kept beside it.
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
    /// IOCs left to read after the last page, when the server said how many.
    #[serde(default)]
    pub backlog: Option<u64>,
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
            backlog: cur.backlog,
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
            backlog: cur.backlog,
        }
    } else {
        // The walk is complete: the next one starts just below the newest version it began
        // with, so anything added or updated during the walk is in the next one.
        Cursor {
            since_ms: walk_top_ms.map_or(cur.since_ms, |t| cur.since_ms.max(t - 1000)),
            offset: 0,
            order,
            walk_top_ms: None,
            backlog: cur.backlog,
        }
    }
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
            backlog: None,
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
                walk_top_ms: Some(50_000),
                backlog: None,
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
}

//! The TAXII walk: `added_after` of the next request, and how a page moves it.
//!
//! Objects are listed by `date_added`, and `added_after` is exclusive. Many objects can share
//! one `date_added` and a page can end inside such a group, so the checkpoint is *one
//! microsecond before* the last page's `X-TAXII-Date-Added-Last`: the next run reads that
//! group again (the repeats are filtered by the version memory) and skips nothing. A group
//! bigger than a page is crossed inside one run with the server's `next` token, because
//! tokens expire long before the next run. A server with neither `next` nor room to progress
//! leaves no choice but to step past the group, and a warning says so.

use serde::{Deserialize, Serialize};

use crate::timeutil;

/// The TAXII part of the checkpoint; the same fields as checkpoint format 1's `taxii`, less
/// `resolved_from` (the checkpoint's `filters` says what the objects URL was resolved from).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Cursor {
    /// `added_after` of the next run, as the server writes timestamps (microseconds kept).
    pub added_after: String,
    /// The resolved objects URL; empty until discovery ran.
    pub objects_url: String,
    /// Title of the collection, for the events' `collection` field.
    pub collection_title: String,
    /// Consecutive runs that ended with objects still waiting (a backlog that one run per
    /// interval does not drain).
    #[serde(default)]
    pub behind_runs: u32,
}

/// A timestamp one microsecond earlier, in RFC 3339 with microseconds.
pub fn just_before(ts: &str) -> Option<String> {
    let t = timeutil::parse(ts)? - time::Duration::microseconds(1);
    Some(timeutil::format_us(t))
}

/// Where the checkpoint goes after a page: just before the page's last `date_added`, but
/// never backwards. `None` when the page gives no way forward (no header, or stuck in a group).
pub fn next_added_after(current: &str, date_added_last: Option<&str>) -> Option<String> {
    let last = date_added_last?;
    let candidate = just_before(last)?;
    match (timeutil::parse(&candidate), timeutil::parse(current)) {
        (Some(c), Some(cur)) if c > cur => Some(candidate),
        (Some(_), None) => Some(candidate),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn just_before_keeps_microseconds() {
        assert_eq!(
            just_before("2026-01-01T00:00:00.000000Z").unwrap(),
            "2025-12-31T23:59:59.999999Z"
        );
        assert_eq!(
            just_before("2026-01-01T00:00:01.5Z").unwrap(),
            "2026-01-01T00:00:01.499999Z"
        );
    }

    #[test]
    fn cursor_moves_forward_only() {
        let cur = "2026-01-01T00:00:00.000000Z";
        assert_eq!(
            next_added_after(cur, Some("2026-01-01T00:00:05.000000Z")).unwrap(),
            "2026-01-01T00:00:04.999999Z"
        );
        // a page that is all one group just after the cursor: no way forward by timestamp
        assert_eq!(
            next_added_after(
                "2026-01-01T00:00:04.999999Z",
                Some("2026-01-01T00:00:05.000000Z")
            ),
            None
        );
        assert_eq!(next_added_after(cur, None), None);
    }
}

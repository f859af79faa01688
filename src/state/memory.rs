//! The memory of printed versions, shared by every source: `(time, hash)` pairs of versions
//! already printed, so overlaps between pages and runs print nothing twice.
//!
//! A version is a hash of the record's identity and its version string (REST: `id` and
//! `last_seen`; TAXII: the STIX id and `modified`). Its time says when it can no longer be
//! served again (REST: its `last_seen`; TAXII: its page's `date_added`); versions older than
//! the cursor are forgotten, and past [`RECENT_CAP`] the oldest are.

use std::collections::{HashMap, HashSet};

/// Most versions remembered; past this the oldest are forgotten (and a warning says so).
pub const RECENT_CAP: usize = 200_000;

/// `[time_ms, version hash]` of versions already printed.
pub type Recent = Vec<(i64, u64)>;

/// Versions printed on the page being read: hash -> time, epoch ms.
pub type Fresh = HashMap<u64, i64, PassThrough>;

/// FNV-1a 64: stable across Rust versions and platforms, unlike `DefaultHasher`. Hashes are
/// kept in checkpoints, so this function may never change.
pub fn version_hash(id: &str, version: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes().chain([0u8]).chain(version.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

pub fn seen_set(recent: &Recent) -> HashSet<u64, PassThrough> {
    recent.iter().map(|&(_, h)| h).collect()
}

/// Adds a published page's versions at or after `from_ms` (the older ones can never be served
/// again), forgets remembered ones older than `from_ms`, and past the cap the oldest. Returns
/// how many were forgotten because of the cap.
pub fn remember(recent: &mut Recent, fresh: Fresh, from_ms: i64) -> usize {
    // Exactly: doubling would leave up to half of a large page's memory unused.
    recent.reserve_exact(fresh.len());
    recent.extend(
        fresh
            .into_iter()
            .filter(|&(_, t)| t >= from_ms)
            .map(|(h, t)| (t, h)),
    );
    recent.retain(|&(ts, _)| ts >= from_ms);
    if recent.len() <= RECENT_CAP {
        return 0;
    }
    recent.sort_unstable();
    let over = recent.len() - RECENT_CAP;
    recent.drain(..over);
    over
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remember_drops_old_and_caps() {
        let mut recent = vec![(1, 1), (5, 2), (9, 3)];
        let mut fresh = Fresh::default();
        fresh.insert(4, 4);
        fresh.insert(7, 7);
        assert_eq!(remember(&mut recent, fresh, 5), 0);
        recent.sort_unstable();
        assert_eq!(recent, vec![(5, 2), (7, 7), (9, 3)]);
        let mut big: Recent = (0..RECENT_CAP as i64 + 3).map(|i| (i, i as u64)).collect();
        assert_eq!(remember(&mut big, Fresh::default(), 0), 3);
        assert_eq!(big.first(), Some(&(3, 3)));
    }

    #[test]
    fn hash_values_are_pinned() {
        // These values are in installed checkpoints: the function must never change.
        assert_eq!(version_hash("", ""), 0xaf63_bd4c_8601_b7df);
        // From tests/fixtures/v1/rest-descending.json, written by the previous release.
        assert_eq!(
            version_hash(
                "00000000-0000-4000-8000-000000000038",
                "2026-10-26T07:33:33Z"
            ),
            6_945_405_502_255_724_424
        );
        assert_ne!(version_hash("a", "b"), version_hash("ab", ""));
        assert_ne!(version_hash("a", "b"), version_hash("a", "c"));
    }
}

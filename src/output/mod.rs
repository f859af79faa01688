//! A page's output: each version printed once, held back until the page is complete.
//!
//! Sources offer every event of a page to a [`PageOut`] with the version it belongs to; a
//! version printed before (remembered in the checkpoint, or earlier on the page) is counted as
//! a repeat and dropped. Events collect in a [`spill::Spill`] and reach stdout only when the
//! loop calls [`PageOut::publish`], after the whole page was read, so a page that fails
//! halfway prints nothing.

pub mod event;
pub mod spill;
pub mod term;

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;

use anyhow::Result;

use crate::error::{Kind, KindExt, fail};
use crate::state::Recent;
use crate::state::memory::{self, Fresh, PassThrough};
use spill::Spill;

/// Writes bytes that are not events (`check`, `state show`, `--print-config`) to stdout.
pub fn write_out(bytes: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .kind(Kind::Output, || STDOUT_FAILED.into())
}

pub const STDOUT_FAILED: &str =
    "cannot write to stdout (closed pipe or full disk); the checkpoint was not advanced";

/// The events of one page, and the versions they belong to.
pub struct PageOut {
    seen: HashSet<u64, PassThrough>,
    /// This page's printed versions: hash -> time (epoch ms).
    pub fresh: Fresh,
    spill: Spill,
    /// Versions printed, and versions dropped as printed before.
    pub printed: usize,
    pub repeats: usize,
    /// Bytes appended so far, and the byte ranges taken back (whole lines, in order).
    written: u64,
    dead: Vec<(u64, u64)>,
}

impl PageOut {
    /// An empty page; its spill file, if it needs one, goes in `dir`.
    pub fn new(recent: &Recent, dir: &Path) -> PageOut {
        PageOut {
            seen: memory::seen_set(recent),
            fresh: Fresh::default(),
            spill: Spill::new(dir),
            printed: 0,
            repeats: 0,
            written: 0,
            dead: Vec::new(),
        }
    }

    /// Prints the version `hash` (at time `ts`) as `n` lines, line `i` appended by
    /// `write(i, buf)`, unless it was printed before; the output may go to the spill file
    /// between lines, so a version of many lines is never held whole. Returns the byte range
    /// it took, if printed.
    pub fn offer_each(
        &mut self,
        hash: u64,
        ts: i64,
        n: usize,
        mut write: impl FnMut(usize, &mut Vec<u8>),
    ) -> Result<Option<(u64, u64)>> {
        if self.seen.contains(&hash) || self.fresh.contains_key(&hash) {
            self.repeats += 1;
            return Ok(None);
        }
        let mut bytes = 0u64;
        for i in 0..n {
            bytes += self.spill.append(|buf| write(i, buf))? as u64;
        }
        self.fresh.insert(hash, ts);
        self.printed += 1;
        let range = (self.written, self.written + bytes);
        self.written += bytes;
        Ok(Some(range))
    }

    /// Prints the version `hash` (at time `ts`) with `encode`, which appends whole lines,
    /// unless it was printed before. Returns the byte range it took, if printed.
    pub fn offer(
        &mut self,
        hash: u64,
        ts: i64,
        encode: impl FnOnce(&mut Vec<u8>),
    ) -> Result<Option<(u64, u64)>> {
        if self.seen.contains(&hash) || self.fresh.contains_key(&hash) {
            self.repeats += 1;
            return Ok(None);
        }
        let n = self.spill.append(encode)? as u64;
        self.fresh.insert(hash, ts);
        self.printed += 1;
        let range = (self.written, self.written + n);
        self.written += n;
        Ok(Some(range))
    }

    /// Takes back a version this page printed (a newer version of it came later on the
    /// page): its lines are left out when the page is published.
    pub fn retract(&mut self, hash: u64, range: (u64, u64)) {
        if self.fresh.remove(&hash).is_some() {
            self.printed -= 1;
            self.dead.push(range);
        }
    }

    /// Forgets this page's versions older than `floor`, when a page holds far more records
    /// than it should; returns how many are kept.
    pub fn keep_fresh_from(&mut self, floor: i64) -> usize {
        // Rebuilt rather than `retain`ed: the tombstones retain leaves would make the table
        // double on the next refills instead of reusing its space.
        let kept: Vec<(u64, i64)> = self.fresh.drain().filter(|&(_, t)| t >= floor).collect();
        self.fresh.extend(kept);
        self.fresh.len()
    }

    /// Copies the complete page's output to stdout and flushes it; only then may the
    /// checkpoint move. Returns the page's printed versions for the memory. A SIGTERM while
    /// printing (splunkd stopping the input) ends the output on a line boundary, and the run
    /// with an error: no half event reaches the index and the checkpoint does not move.
    pub fn publish(self) -> Result<Fresh> {
        let output = self.spill.complete()?;
        let mut out = std::io::stdout().lock();
        let _printing = term::Printing::start();
        let mut dead = self.dead;
        dead.sort_unstable();
        let done = output
            .copy_to(&mut out, &dead, &term::arrived)
            .kind(Kind::Output, || STDOUT_FAILED.into())?;
        if !done {
            return Err(fail(
                Kind::Output,
                "stopped by SIGTERM while printing (splunkd is stopping the input): the output ends at a line boundary and the checkpoint was not advanced; the next run prints this page again",
            ));
        }
        Ok(self.fresh)
    }
}

//! A page's output, held back until the page is known to be complete.
//!
//! Lines collect in memory up to a cap, then move to an unlinked temporary file in the state
//! directory, so memory stays flat whatever the page size. Only when the page parsed to the
//! end is everything copied to stdout; a page that fails halfway prints nothing.
//!
//! The file is written by a thread of its own, so copying a full buffer into the page cache
//! overlaps with decoding the next records (on a 10,000-IOC page that copy is about a fifth of
//! the run). A full buffer is handed over only when the writer is free, so two buffers exist:
//! one filling, one being written; a written buffer comes back for reuse. Pages of up to about
//! 190 IOCs never need the file (or the thread).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use crate::error::{Kind, KindExt};

/// Bytes kept in memory before a buffer goes to the spill file.
const MEMORY_CAP: usize = 128 * 1024;

pub struct Spill {
    buf: Vec<u8>,
    writer: Option<Writer>,
    dir: PathBuf,
}

struct Writer {
    full: SyncSender<Vec<u8>>,
    empty: Receiver<Vec<u8>>,
    done: JoinHandle<io::Result<File>>,
}

impl Writer {
    fn start(mut file: File) -> io::Result<Writer> {
        let (full, full_rx) = sync_channel::<Vec<u8>>(0);
        let (empty_tx, empty) = sync_channel(2);
        let done = std::thread::Builder::new()
            .name("spill".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                for mut buf in full_rx {
                    file.write_all(&buf)?;
                    buf.clear();
                    let _ = empty_tx.try_send(buf);
                }
                Ok(file)
            })?;
        Ok(Writer { full, empty, done })
    }

    /// Waits for every buffer to be written and returns the file, or the first write error.
    fn close(self) -> io::Result<File> {
        drop(self.full);
        self.done
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the spill writer panicked")))
    }
}

/// A complete page's output: the spill file (if the page needed one), then the buffer.
pub struct Output {
    file: Option<File>,
    buf: Vec<u8>,
}

impl Spill {
    pub fn new(dir: &Path) -> Spill {
        Spill {
            // Reserved, not touched: memory grows only as lines arrive.
            buf: Vec::with_capacity(2 * MEMORY_CAP),
            writer: None,
            dir: dir.to_path_buf(),
        }
    }

    /// Lets `f` append to the buffer directly (no intermediate copy), then hands the buffer to
    /// the spill file's writer if it went over the cap. Returns the bytes appended.
    pub fn append(&mut self, f: impl FnOnce(&mut Vec<u8>)) -> anyhow::Result<usize> {
        let before = self.buf.len();
        f(&mut self.buf);
        let n = self.buf.len() - before;
        if self.buf.len() <= MEMORY_CAP {
            return Ok(n);
        }
        let sent = (|| -> io::Result<()> {
            let writer = match &mut self.writer {
                Some(w) => w,
                None => self.writer.insert(Writer::start(temp_file(&self.dir)?)?),
            };
            // Handed over first: the writer takes it only once it has written and returned the
            // previous one, so the buffer taken back below is that one, and two buffers serve
            // the whole page (taking one back first would often find none and make a third).
            if writer.full.send(std::mem::take(&mut self.buf)).is_ok() {
                self.buf = writer
                    .empty
                    .try_recv()
                    .unwrap_or_else(|_| Vec::with_capacity(2 * MEMORY_CAP));
                return Ok(());
            }
            // The writer stopped: its error says why.
            match self.writer.take().map(Writer::close) {
                Some(Err(e)) => Err(e),
                _ => Err(io::Error::other("the spill writer stopped")),
            }
        })();
        sent.kind(Kind::Output, || self.no_room())?;
        Ok(n)
    }

    /// Waits until everything is in the spill file; the page's output is then ready to copy.
    pub fn complete(mut self) -> anyhow::Result<Output> {
        let file = self.writer.take().map(Writer::close).transpose();
        let file = file.kind(Kind::Output, || self.no_room())?;
        Ok(Output {
            file,
            buf: self.buf,
        })
    }

    fn no_room(&self) -> String {
        format!(
            "cannot hold the page's events in {}: check free space; nothing was printed",
            self.dir.display()
        )
    }
}

/// Read size when copying the spill file out.
const COPY_CHUNK: usize = 64 * 1024;

/// Writes whole lines only: bytes after the last line break of a write wait for the next.
struct Lines<'a, W: Write> {
    out: &'a mut W,
    carry: Vec<u8>,
    stop: &'a dyn Fn() -> bool,
}

impl<W: Write> Lines<'_, W> {
    /// Writes what ends on a line break; false when `stop` then says to end.
    fn feed(&mut self, data: &[u8]) -> io::Result<bool> {
        let Some(last) = memchr::memrchr(b'\n', data) else {
            self.carry.extend_from_slice(data);
            return Ok(true);
        };
        if !self.carry.is_empty() {
            self.out.write_all(&self.carry)?;
            self.carry.clear();
        }
        self.out.write_all(&data[..=last])?;
        self.carry.extend_from_slice(&data[last + 1..]);
        Ok(!(self.stop)())
    }
}

impl Output {
    /// Copies the page's lines in order to `out`, leaving out the byte ranges in `dead`
    /// (sorted, whole lines), and flushes. `stop` is asked after every write that ends on a
    /// line boundary; when it says so, the copy ends there. True when everything was copied.
    pub fn copy_to(
        self,
        out: &mut impl Write,
        dead: &[(u64, u64)],
        stop: &dyn Fn() -> bool,
    ) -> io::Result<bool> {
        let mut lines = Lines {
            out,
            carry: Vec::new(),
            stop,
        };
        let mut at = 0u64;
        let mut dead = dead.iter().peekable();
        // Feeds the live parts of `data`, which starts at offset `at` of the page.
        let mut live = |lines: &mut Lines<'_, _>, data: &[u8], at: u64| -> io::Result<bool> {
            let mut from = 0usize;
            while from < data.len() {
                let pos = at + from as u64;
                while dead.peek().is_some_and(|&&(_, end)| end <= pos) {
                    dead.next();
                }
                let (to, skip) = match dead.peek() {
                    Some(&&(start, end)) if start <= pos => ((end - at) as usize, true),
                    Some(&&(start, _)) => ((start - at) as usize, false),
                    None => (data.len(), false),
                };
                let to = to.min(data.len());
                if !skip && !lines.feed(&data[from..to])? {
                    return Ok(false);
                }
                from = to;
            }
            Ok(true)
        };
        if let Some(mut f) = self.file {
            f.seek(SeekFrom::Start(0))?;
            let mut chunk = vec![0u8; COPY_CHUNK];
            loop {
                let n = f.read(&mut chunk)?;
                if n == 0 {
                    break;
                }
                if !live(&mut lines, &chunk[..n], at)? {
                    lines.out.flush()?;
                    return Ok(false);
                }
                at += n as u64;
            }
        }
        let done = live(&mut lines, &self.buf, at)?;
        lines.out.write_all(&lines.carry)?;
        lines.out.flush()?;
        Ok(done)
    }
}

/// A file that disappears when closed or when the process dies: `O_TMPFILE` where the
/// kernel has it, else created exclusively and unlinked at once (on Windows, opened
/// delete-on-close), by the `tempfile` crate.
fn temp_file(dir: &Path) -> io::Result<File> {
    tempfile::tempfile_in(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_is_kept_across_memory_and_disk_and_nothing_is_left_behind() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spill::new(dir.path());
        let mut want = Vec::new();
        for i in 0..50_000u32 {
            let line = format!("{{\"n\":{i}}}\n");
            s.append(|b| b.extend_from_slice(line.as_bytes())).unwrap();
            want.extend_from_slice(line.as_bytes());
        }
        let big = vec![b'x'; MEMORY_CAP * 2];
        s.append(|b| b.extend_from_slice(&big)).unwrap();
        want.extend_from_slice(&big);
        s.append(|b| b.extend_from_slice(b"end\n")).unwrap();
        want.extend_from_slice(b"end\n");
        for i in 0..40_000u32 {
            s.append(|b| b.extend_from_slice(format!("[{i}]\n").as_bytes()))
                .unwrap();
            want.extend_from_slice(format!("[{i}]\n").as_bytes());
        }
        let mut out = Vec::new();
        assert!(
            s.complete()
                .unwrap()
                .copy_to(&mut out, &[], &|| false)
                .unwrap()
        );
        assert_eq!(out, want);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    /// Lines written across memory and disk, some of them then left out, and a stop asked
    /// for midway: what comes out is whole lines, in order, without the dead ones.
    #[test]
    fn dead_ranges_are_left_out_and_a_stop_ends_on_a_line() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spill::new(dir.path());
        let (mut lines, mut at) = (Vec::new(), 0u64);
        for i in 0..30_000u32 {
            let line = format!(
                "{{\"n\":{i},\"pad\":\"{}\"}}\n",
                "p".repeat((i % 50) as usize)
            );
            s.append(|b| b.extend_from_slice(line.as_bytes())).unwrap();
            lines.push((at, line.clone()));
            at += line.len() as u64;
        }
        let output = s.complete().unwrap();
        let dead: Vec<(u64, u64)> = lines
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 7 == 3 || (12_000..12_500).contains(i))
            .map(|(_, (start, l))| (*start, start + l.len() as u64))
            .collect();
        let want: String = lines
            .iter()
            .enumerate()
            .filter(|(i, _)| !(i % 7 == 3 || (12_000..12_500).contains(i)))
            .map(|(_, (_, l))| l.as_str())
            .collect();
        let mut out = Vec::new();
        assert!(output.copy_to(&mut out, &dead, &|| false).unwrap());
        assert_eq!(String::from_utf8(out).unwrap(), want);

        let mut s = Spill::new(dir.path());
        for (_, l) in &lines {
            s.append(|b| b.extend_from_slice(l.as_bytes())).unwrap();
        }
        let calls = std::cell::Cell::new(0);
        let mut out = Vec::new();
        let stop = || {
            calls.set(calls.get() + 1);
            calls.get() == 3
        };
        assert!(!s.complete().unwrap().copy_to(&mut out, &[], &stop).unwrap());
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.ends_with('\n') && text.len() < at as usize / 2,
            "{}",
            text.len()
        );
        assert!(
            text.lines()
                .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
        );
    }

    #[test]
    fn a_failed_write_in_the_writer_thread_reaches_the_caller() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("read-only");
        std::fs::write(&path, b"").unwrap();
        // A file opened for reading only: every write the writer thread tries fails.
        let file = File::open(&path).unwrap();
        let mut s = Spill::new(dir.path());
        s.writer = Some(Writer::start(file).unwrap());
        let line = vec![b'x'; 1000];
        let mut failed = None;
        for _ in 0..(MEMORY_CAP / 1000 + 1) * 4 {
            if let Err(e) = s.append(|b| b.extend_from_slice(&line)) {
                failed = Some(e);
                break;
            }
        }
        let err = match failed {
            Some(e) => e,
            None => s.complete().err().expect("the page must not complete"),
        };
        assert_eq!(crate::error::kind_of(&err), Kind::Output);
        assert!(format!("{err:#}").contains("check free space"), "{err:#}");
    }
}

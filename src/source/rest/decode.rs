//! A REST page's elements, found on a thread of their own when the body is large.
//!
//! Finding the elements is most of a large page's work: receiving the body, checking it is
//! UTF-8, and the scan that validates each record and locates its members, or the general
//! path that streams an unusual record into its line (see [`record::element`]). What is done
//! with each element (de-duplication, the spill file) must stay with the caller, in page
//! order. So for a large body a "decode" thread runs [`page::stream`] and hands over batches
//! of found elements (fast-path records' text back to back with where their members are, the
//! general path's lines, skipped elements), at most two batches ahead, while the caller
//! handles the previous batch. Small bodies are decoded on the caller's thread: starting a thread would
//! cost more than it saves. Errors arrive after every element found before them, in order.

use std::io::Read;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use super::page::{self, Summary};
use super::record::{self, Encoded, Found, Skip};
use super::scan::{Member, Members};

/// Bodies at least this long (or of unknown length) are decoded on a thread.
const THREAD_FROM: u64 = 256 * 1024;
/// Text per batch: large enough that handing a batch over is rare, small enough to keep
/// memory flat.
const BATCH: usize = 32 * 1024;
/// The decode thread's stack: the readers recurse nowhere, so a small one is plenty.
const STACK: usize = 256 * 1024;

/// Decodes the page in `body` (at most `limit` bytes; `length` as announced, if it was),
/// calling `each` with every element of `data` in order; on a thread when the body is large.
/// An error from `each` stops the page and is returned as [`page::Error::Sink`].
pub fn elements<R: Read + Send + 'static>(
    body: R,
    length: Option<u64>,
    limit: u64,
    max_field_bytes: usize,
    mut each: impl FnMut(Found<'_>) -> anyhow::Result<()>,
) -> Result<Summary, page::Error> {
    let hint = length.map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    if length.is_some_and(|n| n < THREAD_FROM) {
        let mut members = Members::default();
        return page::stream(body, limit, hint, |inp| {
            record::element(inp, max_field_bytes, &mut members, &mut each)
        });
    }
    let (batches, spent) = start(body, limit, hint, max_field_bytes)?;
    loop {
        match batches.recv() {
            Ok(Msg::Batch(mut batch)) => {
                batch.each(&mut each).map_err(page::Error::Sink)?;
                batch.clear();
                let _ = spent.try_send(batch);
            }
            Ok(Msg::Done(result)) => return result,
            Err(_) => {
                return Err(page::Error::Io(std::io::Error::other(
                    "the page's decoding thread stopped",
                )));
            }
        }
    }
}

enum Msg {
    Batch(Batch),
    /// The end of the page, after its last batch.
    Done(Result<Summary, page::Error>),
}

/// Found elements, their text back to back.
#[derive(Default)]
struct Batch {
    text: String,
    items: Vec<Item>,
    /// The members of the batch's records, one record after another.
    members: Vec<Member>,
    /// Bytes of the general path's lines in `items`.
    encoded: usize,
}

struct Item {
    /// Where the element's text ends in `text` (fast-path records only have text).
    end: usize,
    kind: Kind,
}

enum Kind {
    /// A fast-path record: how many members it has in `members`, and whether it is printable.
    Record(usize, bool),
    Encoded(Encoded),
    Skipped(String, Skip),
}

impl Batch {
    /// Sized for a full batch, so it does not grow (and copy itself) as it fills.
    fn new() -> Batch {
        Batch {
            text: String::with_capacity(BATCH + BATCH / 4),
            items: Vec::with_capacity(BATCH / 256),
            members: Vec::with_capacity(BATCH / 32),
            encoded: 0,
        }
    }

    fn push(&mut self, found: Found<'_>) {
        let kind = match found {
            Found::Record {
                text,
                members,
                printable,
            } => {
                self.text.push_str(text);
                self.members.extend_from_slice(members);
                Kind::Record(members.len(), printable)
            }
            Found::Encoded(e) => {
                self.encoded += e.line.len();
                Kind::Encoded(e)
            }
            Found::Skipped { id, why } => Kind::Skipped(id, why),
        };
        self.items.push(Item {
            end: self.text.len(),
            kind,
        });
    }

    /// Bytes the batch holds, each item counted too (a page of a million bare `1`s has no
    /// text, but each item still costs memory until the batch is handed over).
    fn size(&self) -> usize {
        self.text.len() + self.encoded + self.items.len() * 64
    }

    fn each(&mut self, f: &mut impl FnMut(Found<'_>) -> anyhow::Result<()>) -> anyhow::Result<()> {
        let (mut start, mut m) = (0, 0);
        for item in self.items.drain(..) {
            let text = &self.text[start..item.end];
            start = item.end;
            f(match item.kind {
                Kind::Record(count, printable) => {
                    m += count;
                    Found::Record {
                        text,
                        members: &self.members[m - count..m],
                        printable,
                    }
                }
                Kind::Encoded(e) => Found::Encoded(e),
                Kind::Skipped(id, why) => Found::Skipped { id, why },
            })?;
        }
        Ok(())
    }

    fn clear(&mut self) {
        self.text.clear();
        self.items.clear();
        self.members.clear();
        self.encoded = 0;
    }
}

/// Starts the decode thread: batches come on the first channel; used batches go back on the
/// second for reuse.
fn start<R: Read + Send + 'static>(
    body: R,
    limit: u64,
    hint: Option<usize>,
    max_field_bytes: usize,
) -> Result<(Receiver<Msg>, SyncSender<Batch>), page::Error> {
    let (tx, batches) = sync_channel::<Msg>(1);
    let (spent, spent_rx) = sync_channel::<Batch>(2);
    std::thread::Builder::new()
        .name("decode".into())
        .stack_size(STACK)
        .spawn(move || {
            let mut members = Members::default();
            let mut batch = Batch::new();
            let result = page::stream(body, limit, hint, |inp| {
                record::element(inp, max_field_bytes, &mut members, |found| {
                    batch.push(found);
                    Ok(())
                })?;
                if batch.size() >= BATCH {
                    tx.send(Msg::Batch(std::mem::take(&mut batch)))
                        // The caller stopped (its handling of an element failed).
                        .map_err(|_| anyhow::anyhow!("the page was abandoned"))?;
                    batch = spent_rx.try_recv().unwrap_or_else(|_| Batch::new());
                }
                Ok(())
            });
            if !batch.items.is_empty() && tx.send(Msg::Batch(batch)).is_err() {
                return;
            }
            let _ = tx.send(Msg::Done(result));
        })
        .map_err(page::Error::Io)?;
    Ok((batches, spent))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;
    use std::sync::{Arc, Mutex};

    /// Gives out its bytes at most `.1` at a time, as a socket does, and notes the name of the
    /// thread that read the last piece.
    struct Pieces(Cursor<Vec<u8>>, usize, Arc<Mutex<String>>);

    impl Read for Pieces {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let thread = std::thread::current().name().unwrap_or("").to_string();
            *self.2.lock().unwrap() = thread;
            let n = out.len().min(self.1);
            self.0.read(&mut out[..n])
        }
    }

    fn pieces(body: Vec<u8>, step: usize) -> Pieces {
        Pieces(Cursor::new(body), step, Arc::default())
    }

    /// A page of `n` records (and one element that is not a record, and one that is not
    /// printable as is), with a `meta` nested `depth` deep.
    fn page_of(n: usize, depth: usize) -> String {
        let mut data: Vec<String> = (0..n)
            .map(|i| {
                format!(r#"{{"id":"r{i}","type":"domain","value":"d{i}.example","tags":["a"]}}"#)
            })
            .collect();
        data.insert(n / 2, "[1, 2]".into());
        data.insert(n / 3, "{\"type\":\"url\",\n\"value\":\"v\"}".into());
        let meta = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
        format!(
            r#"{{"data":[{}],"meta":{{"deep":{meta}}}}}"#,
            data.join(",")
        )
    }

    /// What `each` saw: each element's text, and whether it came as a record; the body
    /// announced as small (decoded inline) or not announced (decoded on the thread).
    fn run(body: &str, threaded: bool) -> Seen {
        run_on(body, if threaded { None } else { Some(0) }).0
    }

    type Seen = (Result<Summary, page::Error>, Vec<(String, bool)>);

    /// [`run`] with the body's announced length, and the name of the thread that read it.
    fn run_on(body: &str, length: Option<u64>) -> (Seen, String) {
        let mut seen = Vec::new();
        let body = pieces(body.as_bytes().to_vec(), 7919);
        let reader = body.2.clone();
        let r = elements(body, length, u64::MAX, 8192, |found| {
            seen.push(match found {
                Found::Record {
                    text,
                    members,
                    printable,
                } => {
                    assert!(!members.is_empty());
                    (text.to_string(), printable)
                }
                Found::Encoded(e) => (String::from_utf8(e.line).unwrap(), false),
                Found::Skipped { id, why } => (format!("skipped {id}: {why}"), false),
            });
            Ok(())
        });
        let thread = reader.lock().unwrap().clone();
        ((r, seen), thread)
    }

    #[test]
    fn threaded_and_inline_find_the_same_elements() {
        for n in [0, 1, 500, 5_000] {
            let body = page_of(n, 126);
            let ((inline, want), reader) = run_on(&body, Some(0));
            assert_ne!(reader, "decode");
            let ((threaded, got), reader) = run_on(&body, None);
            assert_eq!(reader, "decode");
            // Announced truthfully, a body takes the thread from 256 KiB on.
            let (_, reader) = run_on(&body, Some(body.len() as u64));
            assert_eq!(reader == "decode", body.len() as u64 >= THREAD_FROM, "{n}");
            let (inline, threaded) = (inline.unwrap(), threaded.unwrap());
            assert_eq!(threaded, inline);
            assert_eq!(threaded.count, n as u64 + 2);
            assert!(got == want, "elements differ for {n} records");
            assert_eq!(got.iter().filter(|(_, printable)| *printable).count(), n);
        }
    }

    #[test]
    fn a_page_that_breaks_late_fails_after_its_earlier_elements() {
        let body = page_of(5_000, 1);
        let cut = body.len() - 200;
        for broken in [body[..cut].to_string(), format!("{}}}x", &body[..cut])] {
            let (r, seen) = run(&broken, true);
            assert!(r.is_err(), "{:?}", r.map(|s| s.count));
            assert!(seen.len() > 4_000);
            let (_, inline) = run(&broken, false);
            assert!(seen == inline);
        }
    }

    #[test]
    fn a_failing_caller_stops_the_page() {
        let body = page_of(5_000, 1);
        let mut calls = 0;
        let r = elements(
            pieces(body.into_bytes(), 4096),
            None,
            u64::MAX,
            8192,
            |_| {
                calls += 1;
                if calls == 1_000 {
                    anyhow::bail!("spill failed");
                }
                Ok(())
            },
        );
        match r {
            Err(page::Error::Sink(e)) => assert_eq!(e.to_string(), "spill failed"),
            other => panic!("{:?}", other.map(|s| s.count)),
        }
        assert_eq!(calls, 1_000);
    }
}

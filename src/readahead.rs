//! Reading a large body ahead, on a thread of its own.
//!
//! On a 10,000-IOC page, receiving the body (the kernel's copy out of the socket and ureq's
//! chunk handling) is about a tenth of the run, on the thread that decodes it. Once a body has
//! shown it is large (past [`AFTER`] bytes), the rest is read by a thread of its own into
//! [`CHUNK`]-sized buffers, at most one buffer ahead of the decoder, so receiving overlaps
//! decoding. Small pages never start the thread. Errors reach the reader unchanged, in order.

use std::io::{self, Read};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

/// Bytes read directly before the rest is read ahead.
const AFTER: u64 = 256 * 1024;
const CHUNK: usize = 32 * 1024;

/// A chunk: a buffer and how many of its bytes hold data (none: end of body).
type Chunk = io::Result<(Vec<u8>, usize)>;

pub struct ReadAhead<R> {
    inner: Inner<R>,
    read: u64,
}

enum Inner<R> {
    Direct(Option<R>),
    Ahead {
        chunks: Receiver<Chunk>,
        spent: SyncSender<Vec<u8>>,
        cur: Vec<u8>,
        len: usize,
        pos: usize,
        ended: bool,
    },
}

impl<R: Read + Send + 'static> ReadAhead<R> {
    pub fn new(r: R) -> ReadAhead<R> {
        ReadAhead {
            inner: Inner::Direct(Some(r)),
            read: 0,
        }
    }

    fn start(r: R) -> io::Result<Inner<R>> {
        let (chunks_tx, chunks) = sync_channel::<Chunk>(1);
        let (spent, spent_rx) = sync_channel::<Vec<u8>>(2);
        std::thread::Builder::new()
            .name("read-ahead".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                let mut r = r;
                loop {
                    // Buffers keep their length, so a reused one is not zeroed again.
                    let mut buf = spent_rx.try_recv().unwrap_or_else(|_| vec![0; CHUNK]);
                    let (n, err) = fill(&mut r, &mut buf);
                    // Bytes read go first, then the error; an empty chunk is the end.
                    if (n > 0 || err.is_none()) && chunks_tx.send(Ok((buf, n))).is_err() {
                        return; // the decoder stopped
                    }
                    if let Some(e) = err {
                        let _ = chunks_tx.send(Err(e));
                        return;
                    }
                    if n == 0 {
                        return;
                    }
                }
            })?;
        Ok(Inner::Ahead {
            chunks,
            spent,
            cur: Vec::new(),
            len: 0,
            pos: 0,
            ended: false,
        })
    }
}

/// Reads until `buf` is full or the body ends or fails: the bytes read, and the error if any.
fn fill(r: &mut impl Read, buf: &mut [u8]) -> (usize, Option<io::Error>) {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (n, Some(e)),
        }
    }
    (n, None)
}

impl<R: Read + Send + 'static> Read for ReadAhead<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            match &mut self.inner {
                Inner::Direct(r) if self.read >= AFTER => {
                    let r = r.take().expect("a direct reader is only taken once");
                    self.inner = Self::start(r)?;
                }
                Inner::Direct(r) => {
                    let r = r.as_mut().expect("a direct reader is only taken once");
                    let n = r.read(out)?;
                    self.read += n as u64;
                    return Ok(n);
                }
                Inner::Ahead {
                    chunks,
                    spent,
                    cur,
                    len,
                    pos,
                    ended,
                } => {
                    if *pos < *len {
                        let n = out.len().min(*len - *pos);
                        out[..n].copy_from_slice(&cur[*pos..*pos + n]);
                        *pos += n;
                        return Ok(n);
                    }
                    if *ended {
                        return Ok(0);
                    }
                    match chunks.recv() {
                        Ok(Ok((buf, n))) => {
                            let old = std::mem::replace(cur, buf);
                            if !old.is_empty() {
                                let _ = spent.try_send(old);
                            }
                            (*len, *pos) = (n, 0);
                            *ended = n == 0;
                        }
                        Ok(Err(e)) => {
                            *ended = true;
                            return Err(e);
                        }
                        Err(_) => {
                            *ended = true;
                            return Err(io::Error::other("the body's reader thread stopped"));
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Gives out `data` in uneven pieces, then an error if asked.
    struct Source {
        data: Vec<u8>,
        at: usize,
        fail: Option<io::ErrorKind>,
    }

    impl Read for Source {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            if self.at == self.data.len() {
                return match self.fail {
                    Some(kind) => Err(io::Error::new(kind, "cut off")),
                    None => Ok(0),
                };
            }
            let n = out.len().min(7919).min(self.data.len() - self.at);
            out[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    fn body(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn small_and_large_bodies_arrive_whole_and_in_order() {
        for n in [
            0,
            1000,
            AFTER as usize,
            AFTER as usize + 1,
            3 * 1024 * 1024 + 17,
        ] {
            let data = body(n);
            let mut r = ReadAhead::new(Source {
                data: data.clone(),
                at: 0,
                fail: None,
            });
            let mut got = Vec::new();
            let mut piece = [0u8; 5000];
            loop {
                let k = r.read(&mut piece).unwrap();
                if k == 0 {
                    break;
                }
                got.extend_from_slice(&piece[..k]);
            }
            assert_eq!(got.len(), data.len());
            assert!(got == data, "bytes differ for a body of {n}");
            let threaded = matches!(r.inner, Inner::Ahead { .. });
            assert_eq!(threaded, n as u64 >= AFTER, "body of {n}");
        }
    }

    #[test]
    fn an_error_after_the_threshold_comes_after_all_bytes_before_it() {
        let data = body(AFTER as usize * 3 + 5);
        let mut r = ReadAhead::new(Source {
            data: data.clone(),
            at: 0,
            fail: Some(io::ErrorKind::TimedOut),
        });
        let mut got = Vec::new();
        let err = loop {
            let mut piece = [0u8; 4096];
            match r.read(&mut piece) {
                Ok(0) => panic!("the body must not end cleanly"),
                Ok(k) => got.extend_from_slice(&piece[..k]),
                Err(e) => break e,
            }
        };
        assert!(got == data);
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }
}

//! Streaming decode of a REST page: `{"data": [ ... ], "meta": {...}, "links": {...}}`.
//!
//! The body is read in chunks. Each element of `data` is handed to a sink as the unread rest
//! of the buffer; the sink parses one element from its start (serde finds where it ends in the
//! same pass) and says how many bytes it took, or that the element is not complete yet, and
//! then the next chunk is read. Top-level keys, `meta` and `links` are delimited by a small
//! byte scanner. Memory is one read buffer plus the largest element, whatever the page size:
//! consumed bytes are dropped before each read.
//!
//! The sink decides what to do with a record; the caller keeps the page's output aside until
//! [`stream`] returns `Ok`, so a body that turns out malformed halfway prints nothing.
//! Invalid UTF-8 inside an element is replaced with U+FFFD (and reported), so one bad byte
//! cannot block the feed forever.

use std::io::Read;

use serde_json::Value;

const CHUNK: usize = 64 * 1024;

/// What the page said besides its records.
#[derive(Debug, Default, PartialEq)]
pub struct Summary {
    pub count: u64,
    pub meta: Option<Value>,
    pub links: Option<Value>,
    pub replaced_utf8: bool,
}

#[derive(Debug)]
pub enum Error {
    /// The body ended before the JSON did.
    Truncated,
    /// Not the documented shape, or not JSON at all.
    Malformed(String),
    /// More than the configured number of bytes.
    TooLarge,
    Io(std::io::Error),
    /// The sink refused a record (for example stdout or the spill file failed).
    Sink(anyhow::Error),
}

struct Input<R> {
    r: R,
    /// Storage, zeroed once when it grows and then reused: `buf[..filled]` holds body bytes.
    buf: Vec<u8>,
    filled: usize,
    /// Next unread byte in `buf`.
    pos: usize,
    eof: bool,
    total: u64,
    limit: u64,
}

impl<R: Read> Input<R> {
    /// Reads one more chunk; false at end of body.
    fn fill(&mut self) -> Result<bool, Error> {
        if self.eof {
            return Ok(false);
        }
        if self.buf.len() - self.filled < CHUNK {
            // Move the unread tail (at most one partial element) to the front first.
            self.buf.copy_within(self.pos..self.filled, 0);
            self.filled -= self.pos;
            self.pos = 0;
            if self.buf.len() - self.filled < CHUNK {
                self.buf.resize(self.filled + CHUNK, 0);
            }
        }
        let n = loop {
            match self.r.read(&mut self.buf[self.filled..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(if e.kind() == std::io::ErrorKind::UnexpectedEof {
                        Error::Truncated
                    } else {
                        Error::Io(e)
                    });
                }
            }
        };
        self.filled += n;
        self.total += n as u64;
        if self.total > self.limit {
            return Err(Error::TooLarge);
        }
        if n == 0 {
            self.eof = true;
        }
        Ok(n > 0)
    }

    fn unread(&self) -> &[u8] {
        &self.buf[self.pos..self.filled]
    }

    /// The next non-whitespace byte, not consumed; `None` at end of body.
    fn peek(&mut self) -> Result<Option<u8>, Error> {
        loop {
            while self.pos < self.filled {
                let b = self.buf[self.pos];
                if b.is_ascii_whitespace() {
                    self.pos += 1;
                } else {
                    return Ok(Some(b));
                }
            }
            if !self.fill()? {
                return Ok(None);
            }
        }
    }

    fn expect(&mut self, want: u8, what: &str) -> Result<(), Error> {
        match self.peek()? {
            Some(b) if b == want => {
                self.pos += 1;
                Ok(())
            }
            Some(b) => Err(Error::Malformed(format!(
                "expected {what}, found {:?}",
                b as char
            ))),
            None => Err(Error::Truncated),
        }
    }

    /// The end offset in `buf` of the JSON value starting at the next non-whitespace byte
    /// (left unconsumed), reading more as needed.
    fn scan_value(&mut self) -> Result<usize, Error> {
        if self.peek()?.is_none() {
            return Err(Error::Truncated);
        }
        loop {
            if let Some(n) = value_len(self.unread(), self.eof)? {
                return Ok(self.pos + n);
            }
            if !self.fill()? && value_len(self.unread(), true)?.is_none() {
                return Err(Error::Truncated);
            }
        }
    }

    /// Parses the value at `pos..end` and consumes it.
    fn take(&mut self, end: usize, replaced: &mut bool) -> Result<Value, Error> {
        let v = parse_element(&self.buf[self.pos..end], replaced)?;
        self.pos = end;
        Ok(v)
    }
}

/// The length of the JSON value at the start of `buf` (no leading whitespace), by structure
/// alone; `None` when `buf` ends first. At the end of the body (`eof`) a number or literal
/// ends with the buffer.
pub fn value_len(buf: &[u8], eof: bool) -> Result<Option<usize>, Error> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    if !matches!(first, b'{' | b'[' | b'"') {
        return Ok(buf
            .iter()
            .position(|&b| matches!(b, b',' | b']' | b'}') || b.is_ascii_whitespace())
            .or(eof.then_some(buf.len())));
    }
    let mut depth = 0u32;
    let mut in_str = false;
    let mut i = 0;
    while i < buf.len() {
        let b = buf[i];
        if in_str {
            match b {
                b'\\' => i += 1,
                b'"' => {
                    in_str = false;
                    if depth == 0 {
                        return Ok(Some(i + 1));
                    }
                }
                // Most bytes are inside strings: jump to the next one that matters.
                _ => match memchr::memchr2(b'"', b'\\', &buf[i + 1..]) {
                    Some(n) => i += n,
                    None => return Ok(None),
                },
            }
        } else {
            match b {
                b'"' => in_str = true,
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth = depth
                        .checked_sub(1)
                        .ok_or_else(|| Error::Malformed("unbalanced brackets".into()))?;
                    if depth == 0 {
                        return Ok(Some(i + 1));
                    }
                }
                _ => {}
            }
        }
        i += 1;
    }
    Ok(None)
}

/// Parses one value; invalid UTF-8 is replaced with U+FFFD and reported in `replaced`.
pub fn parse_element(bytes: &[u8], replaced: &mut bool) -> Result<Value, Error> {
    match serde_json::from_slice(bytes) {
        Ok(v) => Ok(v),
        Err(e) if std::str::from_utf8(bytes).is_err() => {
            *replaced = true;
            serde_json::from_str(&String::from_utf8_lossy(bytes))
                .map_err(|_| Error::Malformed(e.to_string()))
        }
        Err(e) => Err(Error::Malformed(e.to_string())),
    }
}

/// Reads a page from `r` (at most `limit` bytes). For each element of `data`, `sink` gets the
/// unread bytes starting at it and whether the body has ended, and returns how many bytes the
/// element took, or `None` when they do not hold all of it yet (it is then called again with
/// more). It must have no effect until it returns `Some`.
pub fn stream<R: Read>(
    r: R,
    limit: u64,
    mut sink: impl FnMut(&[u8], bool) -> anyhow::Result<Option<usize>>,
) -> Result<Summary, Error> {
    let mut inp = Input {
        r,
        buf: Vec::new(),
        filled: 0,
        pos: 0,
        eof: false,
        total: 0,
        limit,
    };
    let mut sum = Summary::default();
    let mut saw_data = false;
    match inp.peek()? {
        Some(b'{') => inp.pos += 1,
        Some(_) => return Err(Error::Malformed("the body is not a JSON object".into())),
        None => return Err(Error::Truncated),
    }
    if inp.peek()? == Some(b'}') {
        inp.pos += 1;
    } else {
        loop {
            let end = match inp.peek()? {
                Some(b'"') => inp.scan_value()?,
                Some(_) => return Err(Error::Malformed("expected a key".into())),
                None => return Err(Error::Truncated),
            };
            let key = match inp.take(end, &mut sum.replaced_utf8)? {
                Value::String(k) => k,
                _ => unreachable!("a scanned string parses as a string"),
            };
            inp.expect(b':', "':'")?;
            if key == "data" {
                if inp.peek()? != Some(b'[') {
                    return Err(Error::Malformed("\"data\" is not a list".into()));
                }
                inp.pos += 1;
                saw_data = true;
                if inp.peek()? == Some(b']') {
                    inp.pos += 1;
                } else {
                    loop {
                        if inp.peek()?.is_none() {
                            return Err(Error::Truncated);
                        }
                        loop {
                            match sink(inp.unread(), inp.eof).map_err(Error::Sink)? {
                                Some(n) => {
                                    inp.pos += n;
                                    break;
                                }
                                None if inp.eof => return Err(Error::Truncated),
                                None => {
                                    inp.fill()?;
                                }
                            }
                        }
                        sum.count += 1;
                        match inp.peek()? {
                            Some(b',') => inp.pos += 1,
                            Some(b']') => {
                                inp.pos += 1;
                                break;
                            }
                            Some(b) => {
                                return Err(Error::Malformed(format!(
                                    "expected ',' or ']' in data, found {:?}",
                                    b as char
                                )));
                            }
                            None => return Err(Error::Truncated),
                        }
                    }
                }
            } else {
                let end = inp.scan_value()?;
                let v = inp.take(end, &mut sum.replaced_utf8)?;
                match key.as_str() {
                    "meta" => sum.meta = Some(v),
                    "links" => sum.links = Some(v),
                    _ => {}
                }
            }
            match inp.peek()? {
                Some(b',') => inp.pos += 1,
                Some(b'}') => {
                    inp.pos += 1;
                    break;
                }
                Some(b) => {
                    return Err(Error::Malformed(format!(
                        "expected ',' or '}}' after a value, found {:?}",
                        b as char
                    )));
                }
                None => return Err(Error::Truncated),
            }
        }
    }
    if let Some(b) = inp.peek()? {
        return Err(Error::Malformed(format!(
            "unexpected {:?} after the JSON object",
            b as char
        )));
    }
    if !saw_data {
        return Err(Error::Malformed("there is no \"data\" list".into()));
    }
    Ok(sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out at most `n` bytes per read, to cross every chunk boundary.
    struct Trickle<'a>(&'a [u8], usize);
    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let n = self.1.min(self.0.len()).min(out.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    fn run(body: &[u8], step: usize) -> Result<(Vec<Value>, Summary), Error> {
        let mut got = Vec::new();
        let mut replaced = false;
        let mut s = stream(Trickle(body, step), u64::MAX, |rest, eof| {
            let Some(n) = value_len(rest, eof).map_err(|e| anyhow::anyhow!("{e:?}"))? else {
                return Ok(None);
            };
            got.push(
                parse_element(&rest[..n], &mut replaced).map_err(|e| anyhow::anyhow!("{e:?}"))?,
            );
            Ok(Some(n))
        })
        .map_err(|e| match e {
            Error::Sink(_) => Error::Malformed("element".into()),
            e => e,
        })?;
        s.replaced_utf8 |= replaced;
        Ok((got, s))
    }

    #[test]
    fn elements_meta_and_links_in_any_order_and_any_chunking() {
        let body = br#" {"links": {"next": null}, "data": [ {"a": "x,]}\"y", "n": [1, {"b": 2}]}, "s", 3 , true, null ],
            "meta": {"total": 3}, "extra": [1, [2]] } "#;
        for step in [1, 2, 3, 7, 64, 100_000] {
            let (got, s) = run(body, step).unwrap();
            assert_eq!(got.len(), 5, "step {step}");
            assert_eq!(got[0]["a"], "x,]}\"y");
            assert_eq!(got[2], Value::from(3));
            assert_eq!(s.meta.unwrap()["total"], 3);
            assert_eq!(s.links.unwrap()["next"], Value::Null);
            assert_eq!(s.count, 5);
        }
    }

    #[test]
    fn truncated_malformed_and_wrong_shapes() {
        for body in [
            &b"{\"data\":[{\"a\":1},"[..],
            b"{\"data\":[{\"a\":\"unterminated",
            b"{\"data\":[",
            b"",
            b"  ",
        ] {
            assert!(
                matches!(run(body, 5), Err(Error::Truncated)),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
        for body in [
            &b"[1,2]"[..],
            b"{\"data\":{}}",
            b"{\"meta\":{}}",
            b"{\"data\":[1 2]}",
            b"{\"data\":[]} x",
            b"<html>",
            b"{\"data\":[{\"a\":tru}]}",
            b"{\"data\":[]]}",
        ] {
            assert!(
                matches!(run(body, 5), Err(Error::Malformed(_))),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn invalid_utf8_is_replaced_and_reported() {
        let (got, s) = run(b"{\"data\":[{\"v\":\"a\xffb\"}]}", 3).unwrap();
        assert_eq!(got[0]["v"], "a\u{fffd}b");
        assert!(s.replaced_utf8);
    }

    #[test]
    fn the_size_limit_holds() {
        let body = format!("{{\"data\":[\"{}\"]}}", "a".repeat(300_000));
        let r = stream(Trickle(body.as_bytes(), 4096), 100_000, |rest, eof| {
            value_len(rest, eof).map_err(|e| anyhow::anyhow!("{e:?}"))
        });
        assert!(matches!(r, Err(Error::TooLarge)));
    }

    #[test]
    fn a_sink_error_stops_the_stream() {
        let r = stream(Trickle(b"{\"data\":[1,2,3]}", 4), u64::MAX, |v, eof| {
            if v.starts_with(b"2") {
                anyhow::bail!("disk full")
            }
            Ok(value_len(v, eof).unwrap())
        });
        assert!(matches!(r, Err(Error::Sink(_))));
    }
}

//! Streaming decode of a REST page: `{"data": [ ... ], "meta": {...}, "links": {...}}`.
//!
//! The body is read in chunks. Each element of `data` is handed to a sink as the unread rest
//! of the buffer; the sink finds where the element ends (the record scan does it while
//! validating, see `crate::scan`) and says how many bytes it took, or that the element is not
//! complete yet, and then more is read. Top-level keys, `meta` and `links` are delimited by a
//! small byte scanner. Memory is one read buffer plus the largest element, whatever the page size:
//! consumed bytes are dropped before each read.
//!
//! The sink decides what to do with a record; the caller keeps the page's output aside until
//! [`stream`] returns `Ok`, so a body that turns out malformed halfway prints nothing.
//! The body is checked as UTF-8 once, chunk by chunk as it is read (the sink gets text);
//! invalid UTF-8, and in `meta`, `links` and keys escaped lone surrogates, are read as U+FFFD
//! (and reported), so one bad byte cannot block the feed forever.

use std::io::Read;

use serde_json::Value;

const CHUNK: usize = 32 * 1024;

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

impl Error {
    /// The one error line for a page that could not be read: nothing from it is printed and
    /// the checkpoint does not move. `max_body` names the limit a too-large body broke.
    pub fn into_failure(self, max_body: u64) -> anyhow::Error {
        use crate::error::{Kind, fail};
        let msg = match self {
            Error::Truncated => "the API's response is truncated JSON; nothing from it was printed and the checkpoint did not move".to_string(),
            Error::Malformed(m) => format!(
                "the API's response is not valid JSON of the documented shape ({}); nothing from it was printed and the checkpoint did not move. Check base_url points at the SOC Defenders API",
                crate::log::excerpt(&m, 200)
            ),
            Error::TooLarge => format!(
                "GET /api/v1/iocs: the response is larger than max_body_bytes ({max_body} bytes); nothing from it was printed. Raise max_body_bytes or lower limit"
            ),
            Error::Sink(e) => return e,
            Error::Io(e) => format!(
                "reading the response failed ({}); nothing was printed and the checkpoint did not move",
                crate::log::excerpt(&e.to_string(), 200)
            ),
        };
        fail(Kind::Upstream, msg)
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Truncated => f.write_str("the JSON ends early"),
            Error::Malformed(m) => f.write_str(m),
            Error::TooLarge => f.write_str("larger than the size limit"),
            Error::Io(e) => write!(f, "{e}"),
            Error::Sink(e) => write!(f, "{e:#}"),
        }
    }
}

struct Input<R> {
    r: R,
    /// The body read and not yet consumed, as text: each byte is checked as UTF-8 once, as it
    /// is read, so the decoder borrows strings from it without checking them again.
    buf: String,
    /// Next unread byte in `buf`.
    pos: usize,
    /// The last read's bytes (zeroed once); `raw[..carry]` is a UTF-8 sequence cut by the
    /// end of the previous read, completed by the next one.
    raw: Vec<u8>,
    carry: usize,
    /// Invalid UTF-8 (or, outside `data`, an escaped lone surrogate) was read as U+FFFD.
    replaced: bool,
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
        // Drop what was consumed (the unread tail is at most one partial element). `pos` only
        // ever stops after an ASCII byte, so it is a character boundary.
        self.buf.drain(..self.pos);
        self.pos = 0;
        if self.raw.len() < CHUNK {
            self.raw.resize(CHUNK, 0);
        }
        let n = loop {
            match self.r.read(&mut self.raw[self.carry..]) {
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
        self.total += n as u64;
        if self.total > self.limit {
            return Err(Error::TooLarge);
        }
        if n == 0 {
            self.eof = true;
            if self.carry > 0 {
                // The body ended inside a character.
                self.buf.push(char::REPLACEMENT_CHARACTER);
                self.replaced = true;
                self.carry = 0;
            }
            return Ok(false);
        }
        let end = self.carry + n;
        let mut at = 0;
        self.carry = loop {
            match std::str::from_utf8(&self.raw[at..end]) {
                Ok(text) => {
                    self.buf.push_str(text);
                    break 0;
                }
                Err(e) => {
                    let good = at + e.valid_up_to();
                    self.buf
                        .push_str(std::str::from_utf8(&self.raw[at..good]).unwrap_or_default());
                    match e.error_len() {
                        Some(bad) => {
                            self.buf.push(char::REPLACEMENT_CHARACTER);
                            self.replaced = true;
                            at = good + bad;
                        }
                        // A character cut by the end of this read: keep its bytes for the next.
                        None => {
                            self.raw.copy_within(good..end, 0);
                            break end - good;
                        }
                    }
                }
            }
        };
        Ok(true)
    }

    fn unread(&self) -> &str {
        &self.buf[self.pos..]
    }

    /// The next non-whitespace byte, not consumed; `None` at end of body.
    fn peek(&mut self) -> Result<Option<u8>, Error> {
        loop {
            while let Some(&b) = self.buf.as_bytes().get(self.pos) {
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
    fn take(&mut self, end: usize) -> Result<Value, Error> {
        let (v, replaced) = parse_lossy(&self.buf[self.pos..end])?;
        self.replaced |= replaced;
        self.pos = end;
        Ok(v)
    }
}

/// The length in bytes of the JSON value at the start of `text` (no leading whitespace), by
/// structure alone; `None` when `text` ends first. At the end of the body (`eof`) a number or
/// literal ends with the text.
pub fn value_len(text: &str, eof: bool) -> Result<Option<usize>, Error> {
    let buf = text.as_bytes();
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

/// Parses one value.
pub fn parse_element(text: &str) -> Result<Value, Error> {
    serde_json::from_str(text).map_err(|e| Error::Malformed(e.to_string()))
}

/// Parses one value, reading an escaped lone UTF-16 surrogate (`"\ud800"`: valid JSON, but not
/// Unicode, so serde_json refuses the whole value) as U+FFFD; says whether it did. Without
/// this, one such string would fail its page on every run and stop the feed there.
pub fn parse_lossy(text: &str) -> Result<(Value, bool), Error> {
    match parse_element(text) {
        Ok(v) => Ok((v, false)),
        Err(e) => match replace_lone_surrogates(text) {
            Some(fixed) => Ok((parse_element(&fixed)?, true)),
            None => Err(e),
        },
    }
}

/// `text` with each escaped lone surrogate in its strings replaced by `\ufffd`; `None` when
/// it has none.
fn replace_lone_surrogates(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let unit = |at: usize| {
        let hex = std::str::from_utf8(b.get(at..at + 4)?).ok()?;
        u16::from_str_radix(hex, 16).ok()
    };
    let (mut out, mut copied) = (String::new(), 0);
    let (mut i, mut in_string) = (0, false);
    while i < b.len() {
        match b[i] {
            b'"' => in_string = !in_string,
            b'\\' if in_string && b.get(i + 1) == Some(&b'u') => {
                let paired = matches!(unit(i + 2), Some(0xD800..=0xDBFF))
                    && b.get(i + 6..i + 8) == Some(b"\\u")
                    && matches!(unit(i + 8), Some(0xDC00..=0xDFFF));
                if paired {
                    i += 12;
                    continue;
                }
                if matches!(unit(i + 2), Some(0xD800..=0xDFFF)) {
                    out.push_str(&text[copied..i]);
                    out.push_str("\\ufffd");
                    copied = i + 6;
                }
                i += 6;
                continue;
            }
            // Any other escape: skip the escaped character, which may be a quote.
            b'\\' if in_string => i += 1,
            _ => {}
        }
        i += 1;
    }
    (copied > 0).then(|| out + &text[copied..])
}

/// Reads a page from `r` (at most `limit` bytes). For each element of `data`, `sink` gets the
/// unread text starting at it and whether the body has ended, and returns how many bytes the
/// element took, or `None` when they do not hold all of it yet (it is then called again with
/// more). It must have no effect until it returns `Some`.
pub fn stream<R: Read>(
    r: R,
    limit: u64,
    mut sink: impl FnMut(&str, bool) -> anyhow::Result<Option<usize>>,
) -> Result<Summary, Error> {
    let mut inp = Input {
        r,
        buf: String::new(),
        pos: 0,
        raw: Vec::new(),
        carry: 0,
        replaced: false,
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
            let key = match inp.take(end)? {
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
                                // Read as much again as is unread before asking again: an
                                // element spanning many reads (a 60 MB string) is then
                                // rescanned a few dozen times, not once per 32 KiB read.
                                None => {
                                    let want = inp.unread().len() * 2;
                                    while inp.fill()? && inp.unread().len() < want {}
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
                let v = inp.take(end)?;
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
    sum.replaced_utf8 = inp.replaced;
    Ok(sum)
}

/// A reader that hands out at most `n` bytes per read, to cross every chunk boundary.
#[cfg(test)]
pub(crate) struct Trickle<'a>(pub &'a [u8], pub usize);

#[cfg(test)]
impl Read for Trickle<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = self.1.min(self.0.len()).min(out.len());
        out[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lone_surrogates_are_read_as_replacement_characters() {
        for (text, want) in [
            (r#"{"v":"a\ud800b"}"#, "a\u{fffd}b"),
            (r#"{"v":"\udc00"}"#, "\u{fffd}"),
            (r#"{"v":"\ud800\u0041"}"#, "\u{fffd}A"),
            (r#"{"v":"\ude00\ud83d\ude00"}"#, "\u{fffd}\u{1f600}"),
            (r#"{"v":"\ud83d"}"#, "\u{fffd}"),
        ] {
            let (v, replaced) = parse_lossy(text).unwrap();
            assert_eq!((v["v"].as_str(), replaced), (Some(want), true), "{text}");
        }
        // Pairs, and an escaped backslash before a 'u', are left alone.
        for text in [
            r#"{"v":"\ud83d\ude00 \\ud800"}"#,
            r#"{"\\":"\\","v":"\u00e9"}"#,
        ] {
            let (v, replaced) = parse_lossy(text).unwrap();
            assert_eq!(v, parse_element(text).unwrap());
            assert!(!replaced, "{text}");
        }
        assert!(parse_lossy(r#"{"v":"\ud800"#).is_err(), "still truncated");
        assert!(parse_lossy(r#"{"v":tru}"#).is_err());
        // In `meta` too: the page is read, and the replacement reported.
        let body = br#"{"data":[],"meta":{"total":0,"note":"\udc00"}}"#;
        let (_, sum) = run(body, 7).unwrap();
        assert_eq!(sum.meta.unwrap()["note"], "\u{fffd}");
        assert!(sum.replaced_utf8);
    }

    #[test]
    fn a_huge_element_is_not_rescanned_for_every_read() {
        let big = format!(
            r#"{{"data":[{{"type":"url","value":"{}"}},1],"meta":{{}}}}"#,
            "x".repeat(6 << 20)
        );
        for step in [CHUNK, 4096] {
            let mut calls = 0;
            let sum = stream(Trickle(big.as_bytes(), step), u64::MAX, |rest, eof| {
                calls += 1;
                value_len(rest, eof).map_err(|e| anyhow::anyhow!("{e:?}"))
            })
            .unwrap();
            assert_eq!(sum.count, 2);
            // About log2(6 MiB / 32 KiB) + 1 for the big one, one or two for the small one;
            // asking after every read would be 190 (or 1,500) times.
            assert!(calls <= 14, "{calls} calls with reads of {step}");
        }
    }

    fn run(body: &[u8], step: usize) -> Result<(Vec<Value>, Summary), Error> {
        let mut got = Vec::new();
        let s = stream(Trickle(body, step), u64::MAX, |rest, eof| {
            let Some(n) = value_len(rest, eof).map_err(|e| anyhow::anyhow!("{e:?}"))? else {
                return Ok(None);
            };
            got.push(parse_element(&rest[..n]).map_err(|e| anyhow::anyhow!("{e:?}"))?);
            Ok(Some(n))
        })
        .map_err(|e| match e {
            Error::Sink(_) => Error::Malformed("element".into()),
            e => e,
        })?;
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
        for step in [1, 2, 3, 5, 100] {
            let (got, s) = run(b"{\"data\":[{\"v\":\"a\xffb\"}]}", step).unwrap();
            assert_eq!(got[0]["v"], "a\u{fffd}b");
            assert!(s.replaced_utf8);
        }
        // A character cut by every possible read boundary is not invalid.
        let body = "{\"data\":[{\"v\":\"é€😀\"}]}";
        for step in 1..8 {
            let (got, s) = run(body.as_bytes(), step).unwrap();
            assert_eq!(got[0]["v"], "é€😀", "step {step}");
            assert!(!s.replaced_utf8, "step {step}");
        }
        // A body that ends inside a character: replaced, and then the JSON is cut short.
        let cut = &body.as_bytes()[..body.find('😀').unwrap() + 2];
        assert!(matches!(run(cut, 3), Err(Error::Truncated)));
        // Invalid bytes right after a cut: both parts reported.
        let (got, s) = run(b"{\"data\":[\"\xc3\xff\xe2\x82\"]}", 1).unwrap();
        assert_eq!(got[0], "\u{fffd}\u{fffd}\u{fffd}");
        assert!(s.replaced_utf8);
    }

    #[test]
    fn non_ascii_where_json_wants_structure_is_an_error_not_a_panic() {
        for body in [
            "{\"data\":[\u{e9}]}",
            "{\"data\":[1\u{e9}]}",
            "{\"data\":[],\"meta\":\u{e9}}",
            "{\"data\":[]\u{2028}}",
            "{\u{1f600}:1,\"data\":[]}",
            "\u{feff}{\"data\":[]}",
        ] {
            for step in [1, 2, 3, 100] {
                assert!(run(body.as_bytes(), step).is_err(), "{body:?} step {step}");
            }
        }
        // The same characters inside strings are data.
        let (got, _) = run(
            "{\"data\":[\"\u{e9}\u{1f600}\"],\"meta\":\"\u{2028}\"}".as_bytes(),
            1,
        )
        .unwrap();
        assert_eq!(got[0], "\u{e9}\u{1f600}");
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
            if v.starts_with('2') {
                anyhow::bail!("disk full")
            }
            Ok(value_len(v, eof).unwrap())
        });
        assert!(matches!(r, Err(Error::Sink(_))));
    }
}

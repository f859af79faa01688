//! The body as UTF-8 text read in chunks, and the readers that consume it token by token.

use std::io::Read;

use super::text::{next_special, prefix, write_capped, write_str_body};
use super::types::{Bounded, Error, Flags, Str};

/// Bytes asked of the reader at a time.
const CHUNK: usize = 32 * 1024;
/// Longest key kept when a value is copied; longer ones are cut with the marker.
pub const KEY_CAP: usize = 256;

/// The body read and not yet consumed. Each byte is checked as UTF-8 once, as it is read, so
/// readers borrow text from it without checking again; consumed bytes are dropped before each
/// read, so it holds the unread tail of one chunk plus whatever a caller asked to look ahead.
pub struct Input<R> {
    r: R,
    buf: String,
    /// Next unread byte in `buf`; always a character boundary.
    pub pos: usize,
    /// The last read's bytes; `raw[..carry]` is a UTF-8 sequence cut by the end of the
    /// previous read, completed by the next one.
    raw: Vec<u8>,
    carry: usize,
    chunk: usize,
    /// Invalid UTF-8 (or, where a caller says so, an escaped lone surrogate) was read as
    /// U+FFFD.
    pub replaced: bool,
    pub eof: bool,
    total: u64,
    limit: u64,
}

/// One bit per open container: set for an object, clear for an array.
#[derive(Default)]
struct Nesting {
    bits: Vec<u64>,
    depth: usize,
}

impl Nesting {
    fn push(&mut self, object: bool) {
        let (w, b) = (self.depth / 64, self.depth % 64);
        if w == self.bits.len() {
            self.bits.push(0);
        }
        if object {
            self.bits[w] |= 1 << b;
        } else {
            self.bits[w] &= !(1 << b);
        }
        self.depth += 1;
    }
    fn top_is_object(&self) -> bool {
        let d = self.depth - 1;
        self.bits[d / 64] & (1 << (d % 64)) != 0
    }
    fn pop(&mut self) {
        self.depth -= 1;
    }
}

impl<R: Read> Input<R> {
    /// A body of at most `limit` bytes; `hint` bounds the first read buffer (a small
    /// in-memory text needs no 32 KiB one).
    pub fn new(r: R, limit: u64, hint: Option<usize>) -> Input<R> {
        Input {
            r,
            buf: String::new(),
            pos: 0,
            raw: Vec::new(),
            carry: 0,
            chunk: hint.map_or(CHUNK, |h| h.clamp(16, CHUNK)),
            replaced: false,
            eof: false,
            total: 0,
            limit,
        }
    }

    /// Reads one more chunk; false at end of body.
    pub fn fill(&mut self) -> Result<bool, Error> {
        if self.eof {
            return Ok(false);
        }
        self.buf.drain(..self.pos);
        self.pos = 0;
        if self.raw.len() < self.chunk {
            self.raw.resize(self.chunk, 0);
        }
        let n = loop {
            match self.r.read(&mut self.raw[self.carry..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    return Err(Error::Truncated);
                }
                Err(e) => return Err(Error::Io(e)),
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
        self.take_utf8(self.carry + n);
        Ok(true)
    }

    /// Moves `raw[..end]` into `buf` as UTF-8, invalid sequences as U+FFFD; keeps a sequence
    /// cut by the end of the read for the next.
    fn take_utf8(&mut self, end: usize) {
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
                        None => {
                            self.raw.copy_within(good..end, 0);
                            break end - good;
                        }
                    }
                }
            }
        };
    }

    /// Reads until at least `want` bytes are unread, or the body ends; false if it ended.
    pub fn fill_to(&mut self, want: usize) -> Result<bool, Error> {
        while self.unread().len() < want {
            if !self.fill()? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    pub fn unread(&self) -> &str {
        &self.buf[self.pos..]
    }

    /// The next byte, whitespace included, not consumed; `None` at end of body.
    fn byte(&mut self) -> Result<Option<u8>, Error> {
        loop {
            if let Some(&b) = self.buf.as_bytes().get(self.pos) {
                return Ok(Some(b));
            }
            if !self.fill()? {
                return Ok(None);
            }
        }
    }

    /// The next non-whitespace byte, not consumed; `None` at end of body.
    pub fn peek(&mut self) -> Result<Option<u8>, Error> {
        loop {
            while let Some(&b) = self.buf.as_bytes().get(self.pos) {
                if matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
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

    pub fn expect(&mut self, want: u8, what: &str) -> Result<(), Error> {
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

    /// Reads the string that comes next (after whitespace), decoding it: at most `cap` bytes
    /// of it, ending on a character boundary, are appended to `out`.
    pub fn string(&mut self, out: &mut String, cap: usize) -> Result<Str, Error> {
        self.expect(b'"', "a string")?;
        let start = out.len();
        let mut full = false;
        let mut info = Str::default();
        let keep = |out: &mut String, s: &str, full: &mut bool| {
            if *full {
                return;
            }
            let room = (start + cap).saturating_sub(out.len());
            let part = prefix(s, room);
            out.push_str(part);
            *full = part.len() < s.len();
        };
        loop {
            let stop = next_special(self.buf.as_bytes(), self.pos);
            if stop > self.pos {
                keep(out, &self.buf[self.pos..stop], &mut full);
                info.len += stop - self.pos;
                self.pos = stop;
            }
            match self.buf.as_bytes().get(self.pos) {
                None => {
                    if !self.fill()? {
                        return Err(Error::Truncated);
                    }
                }
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(info);
                }
                Some(b'\\') => {
                    let (c, lone) = self.escape()?;
                    info.surrogates |= lone;
                    let mut tmp = [0u8; 4];
                    let s = c.encode_utf8(&mut tmp);
                    keep(out, s, &mut full);
                    info.len += s.len();
                }
                Some(_) => {
                    return Err(Error::Malformed(
                        "a control character inside a string".into(),
                    ));
                }
            }
        }
    }

    /// The escape at `pos` (a backslash): its character, and whether it was a lone surrogate.
    fn escape(&mut self) -> Result<(char, bool), Error> {
        self.fill_to(2)?;
        let b = self.unread().as_bytes();
        let simple = match b.get(1) {
            None => return Err(Error::Truncated),
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => return self.unicode_escape(),
            Some(c) => {
                return Err(Error::Malformed(format!(
                    "invalid escape \\{} in a string",
                    *c as char
                )));
            }
        };
        self.pos += 2;
        Ok((simple, false))
    }

    fn hex4(&self, at: usize) -> Result<u16, Error> {
        let hex = self
            .unread()
            .as_bytes()
            .get(at..at + 4)
            .ok_or(Error::Truncated)?;
        if !hex.iter().all(u8::is_ascii_hexdigit) {
            return Err(Error::Malformed("invalid \\u escape in a string".into()));
        }
        let text = std::str::from_utf8(hex).map_err(|_| Error::Truncated)?;
        u16::from_str_radix(text, 16).map_err(|_| Error::Truncated)
    }

    /// `\uXXXX`, a surrogate pair `\uD83D\uDE00`, or a lone surrogate read as U+FFFD.
    fn unicode_escape(&mut self) -> Result<(char, bool), Error> {
        self.fill_to(6)?;
        let hi = self.hex4(2)?;
        if (0xD800..=0xDBFF).contains(&hi) {
            self.fill_to(12)?;
            let u = self.unread().as_bytes();
            if u.get(6..8) == Some(b"\\u")
                && let Ok(lo) = self.hex4(8)
                && (0xDC00..=0xDFFF).contains(&lo)
            {
                let c = 0x10000 + ((u32::from(hi) - 0xD800) << 10) + (u32::from(lo) - 0xDC00);
                self.pos += 12;
                return Ok((char::from_u32(c).expect("a valid pair"), false));
            }
            self.pos += 6;
            return Ok((char::REPLACEMENT_CHARACTER, true));
        }
        self.pos += 6;
        match char::from_u32(u32::from(hi)) {
            Some(c) => Ok((c, false)),
            None => Ok((char::REPLACEMENT_CHARACTER, true)),
        }
    }

    /// A number, validated (`-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`) and copied to
    /// `out` as sent.
    pub fn number(&mut self, out: &mut Bounded) -> Result<(), Error> {
        let digits = |inp: &mut Self, out: &mut Bounded| -> Result<usize, Error> {
            let mut n = 0;
            while let Some(c) = inp.byte()?.filter(u8::is_ascii_digit) {
                out.push(c);
                inp.pos += 1;
                n += 1;
            }
            Ok(n)
        };
        let bad = || Error::Malformed("a number that is not JSON".into());
        if self.byte()? == Some(b'-') {
            out.push(b'-');
            self.pos += 1;
        }
        match self.byte()? {
            Some(b'0') => {
                out.push(b'0');
                self.pos += 1;
            }
            Some(b'1'..=b'9') => {
                digits(self, out)?;
            }
            Some(_) => return Err(bad()),
            None => return Err(Error::Truncated),
        }
        if self.byte()? == Some(b'.') {
            out.push(b'.');
            self.pos += 1;
            if digits(self, out)? == 0 {
                return Err(bad());
            }
        }
        if let Some(e @ (b'e' | b'E')) = self.byte()? {
            out.push(e);
            self.pos += 1;
            if let Some(s @ (b'+' | b'-')) = self.byte()? {
                out.push(s);
                self.pos += 1;
            }
            if digits(self, out)? == 0 {
                return Err(bad());
            }
        }
        Ok(())
    }

    /// `true`, `false` or `null`, copied to `out`.
    fn literal(&mut self, out: &mut Bounded) -> Result<(), Error> {
        let word: &[u8] = match self.byte()? {
            Some(b't') => b"true",
            Some(b'f') => b"false",
            _ => b"null",
        };
        self.fill_to(word.len())?;
        if !self.unread().as_bytes().starts_with(word) {
            return Err(if self.unread().len() < word.len() {
                Error::Truncated
            } else {
                Error::Malformed("a literal that is not true, false or null".into())
            });
        }
        out.extend(word);
        self.pos += word.len();
        Ok(())
    }

    /// A string copied as a JSON string, its decoded text cut at `cap` with the marker.
    fn copy_string(
        &mut self,
        out: &mut Bounded,
        cap: usize,
        flags: &mut Flags,
        tmp: &mut String,
    ) -> Result<(), Error> {
        tmp.clear();
        // Once the output is over its cap (or when only skipping) nothing more is kept:
        // decode without keeping.
        let skip = out.over() || out.cap() == 0;
        let s = self.string(tmp, if skip { 0 } else { cap })?;
        flags.surrogates |= s.surrogates;
        if s.len > cap {
            flags.cut = true;
        }
        if skip {
            out.total += s.len + 2;
            return Ok(());
        }
        let mut enc = Vec::with_capacity(tmp.len() + 2);
        write_capped(&mut enc, tmp, s.len, cap);
        out.extend(&enc);
        Ok(())
    }

    /// The value that comes next, validated and consumed. With `out`, it is copied there as
    /// compact JSON: whitespace dropped, strings decoded and written again (cut at `cap`
    /// bytes with the marker; keys at [`KEY_CAP`]), numbers as sent. Without, only skipped.
    pub fn value(
        &mut self,
        out: Option<&mut Bounded>,
        cap: usize,
        flags: &mut Flags,
    ) -> Result<(), Error> {
        let mut sink = Bounded::new(0);
        let (out, cap) = match out {
            Some(o) => (o, cap),
            None => (&mut sink, 0),
        };
        let mut nest = Nesting::default();
        let mut tmp = String::new();
        loop {
            match self.peek()? {
                None => return Err(Error::Truncated),
                Some(b'"') => self.copy_string(out, cap, flags, &mut tmp)?,
                Some(c @ (b'{' | b'[')) => {
                    self.pos += 1;
                    out.push(c);
                    let close = if c == b'{' { b'}' } else { b']' };
                    if self.peek()? == Some(close) {
                        self.pos += 1;
                        out.push(close);
                    } else {
                        nest.push(c == b'{');
                        if c == b'{' {
                            self.copy_key(out, flags, &mut tmp)?;
                        }
                        continue;
                    }
                }
                Some(b't' | b'f' | b'n') => self.literal(out)?,
                Some(b'-' | b'0'..=b'9') => self.number(out)?,
                Some(c) => {
                    return Err(Error::Malformed(format!(
                        "unexpected {:?} where a JSON value belongs",
                        c as char
                    )));
                }
            }
            // After a value: close the containers that end here, or go on to the next value.
            loop {
                if nest.depth == 0 {
                    return Ok(());
                }
                let object = nest.top_is_object();
                match self.peek()? {
                    Some(b',') => {
                        self.pos += 1;
                        out.push(b',');
                        if object {
                            self.copy_key(out, flags, &mut tmp)?;
                        }
                        break;
                    }
                    Some(b'}') if object => {
                        self.pos += 1;
                        out.push(b'}');
                    }
                    Some(b']') if !object => {
                        self.pos += 1;
                        out.push(b']');
                    }
                    Some(c) => {
                        return Err(Error::Malformed(format!(
                            "expected ',' or the end of {}, found {:?}",
                            if object { "an object" } else { "an array" },
                            c as char
                        )));
                    }
                    None => return Err(Error::Truncated),
                }
                nest.pop();
            }
        }
    }

    /// A key and its colon, copied.
    fn copy_key(
        &mut self,
        out: &mut Bounded,
        flags: &mut Flags,
        tmp: &mut String,
    ) -> Result<(), Error> {
        if self.peek()? != Some(b'"') {
            return match self.peek()? {
                None => Err(Error::Truncated),
                Some(c) => Err(Error::Malformed(format!(
                    "expected a key, found {:?}",
                    c as char
                ))),
            };
        }
        self.copy_string(out, KEY_CAP, flags, tmp)?;
        self.expect(b':', "':'")?;
        out.push(b':');
        Ok(())
    }

    /// The members of the object that comes next (`{` is read here), each handed to `member`
    /// with its key at its value, which `member` must consume.
    pub fn members(
        &mut self,
        flags: &mut Flags,
        mut member: impl FnMut(&mut Self, &str, &mut Flags) -> Result<(), Error>,
    ) -> Result<(), Error> {
        self.expect(b'{', "a JSON object")?;
        if self.peek()? == Some(b'}') {
            self.pos += 1;
            return Ok(());
        }
        let mut key = String::new();
        loop {
            let k = self.key(&mut key)?;
            flags.surrogates |= k.surrogates;
            member(self, &key, flags)?;
            if self.after_element(b'}', "an object")? {
                return Ok(());
            }
        }
    }

    /// The elements of the list that comes next (`[` is read here), each handed to `item`,
    /// which must consume it.
    pub fn items(
        &mut self,
        what: &str,
        mut item: impl FnMut(&mut Self) -> Result<(), Error>,
    ) -> Result<(), Error> {
        self.expect(b'[', what)?;
        if self.peek()? == Some(b']') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            if self.peek()?.is_none() {
                return Err(Error::Truncated);
            }
            item(self)?;
            if self.after_element(b']', what)? {
                return Ok(());
            }
        }
    }

    /// After an element of a list or object: a comma (false), or its `close` (true).
    fn after_element(&mut self, close: u8, what: &str) -> Result<bool, Error> {
        match self.peek()? {
            Some(b',') => {
                self.pos += 1;
                Ok(false)
            }
            Some(b) if b == close => {
                self.pos += 1;
                Ok(true)
            }
            Some(b) => Err(Error::Malformed(format!(
                "expected ',' or '{}' in {what}, found {:?}",
                close as char, b as char
            ))),
            None => Err(Error::Truncated),
        }
    }

    /// A key (decoded, cut at [`KEY_CAP`]) and the colon after it.
    pub fn key(&mut self, out: &mut String) -> Result<Str, Error> {
        out.clear();
        let s = self.string(out, KEY_CAP)?;
        self.expect(b':', "':'")?;
        Ok(s)
    }

    /// Writes `s` escaped, without quotes, into a bounded buffer.
    pub fn write_escaped(out: &mut Bounded, s: &str) {
        let mut enc = Vec::with_capacity(s.len());
        write_str_body(&mut enc, s);
        out.extend(&enc);
    }
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

    fn copy(text: &str, step: usize, cap: usize) -> Result<(String, Flags), Error> {
        let mut inp = Input::new(Trickle(text.as_bytes(), step), u64::MAX, None);
        let mut out = Bounded::new(usize::MAX);
        let mut flags = Flags::default();
        inp.value(Some(&mut out), cap, &mut flags)?;
        if inp.peek()?.is_some() {
            return Err(Error::Malformed("trailing".into()));
        }
        Ok((String::from_utf8(out.buf).unwrap(), flags))
    }

    #[test]
    fn values_are_copied_compactly_with_numbers_as_sent() {
        let text = " { \"a\" : [ 1 , -0.5e+3 , 1E400 , true , null , { } , [ ] ] ,\n\"b\":\"x\\ty\\u00e9\\ud83d\\ude00\" , \"1.10\": 1.10 } ";
        for step in [1, 2, 3, 7, 100] {
            let (out, flags) = copy(text, step, 8192).unwrap();
            assert_eq!(
                out,
                "{\"a\":[1,-0.5e+3,1E400,true,null,{},[]],\"b\":\"x\\ty\u{e9}\u{1f600}\",\"1.10\":1.10}"
            );
            assert!(!flags.cut && !flags.surrogates);
        }
    }

    #[test]
    fn invalid_json_is_refused_as_serde_json_refuses_it() {
        for bad in [
            "01",
            "1.",
            "-",
            ".5",
            "1e",
            "+1",
            "[1,]",
            "{\"a\"}",
            "{\"a\":}",
            "{1:2}",
            "[1 2]",
            "tru",
            "nul",
            "\"a\u{1}\"",
            "\"\\x\"",
            "\"\\u12g4\"",
            "{\"a\":1,}",
            "[",
            "\"abc",
            "[}",
            "{]",
        ] {
            let ours = copy(bad, 1, 8192).is_err();
            let serde = serde_json::from_str::<serde::de::IgnoredAny>(bad).is_err();
            assert!(ours && serde, "{bad:?}: ours {ours}, serde {serde}");
        }
    }

    #[test]
    fn long_strings_are_cut_and_counted_and_lone_surrogates_replaced() {
        let long = format!("\"{}é\\ud800\"", "a".repeat(20));
        let (out, flags) = copy(&long, 3, 10).unwrap();
        assert_eq!(out, "\"aaaaaaaaaa...[truncated 15 bytes]\"");
        assert!(flags.cut && flags.surrogates);
        let (out, _) = copy("\"\\ud800x\"", 1, 100).unwrap();
        assert_eq!(out, "\"\u{fffd}x\"");
    }

    #[test]
    fn deep_nesting_costs_no_stack_and_output_stays_bounded() {
        let depth = 200_000;
        let text = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
        let mut inp = Input::new(text.as_bytes(), u64::MAX, None);
        let mut out = Bounded::new(1000);
        inp.value(Some(&mut out), 8192, &mut Flags::default())
            .unwrap();
        assert!(out.over() && out.buf.len() <= 1000 && out.total == text.len());
        let unbalanced = format!("{}1{}", "[".repeat(depth), "]".repeat(depth - 1));
        let mut inp = Input::new(unbalanced.as_bytes(), u64::MAX, None);
        assert!(matches!(
            inp.value(None, 0, &mut Flags::default()),
            Err(Error::Truncated)
        ));
    }

    #[test]
    fn a_huge_string_is_read_without_being_held() {
        let text = format!("\"{}\"", "z".repeat(8 << 20));
        let mut inp = Input::new(text.as_bytes(), u64::MAX, None);
        let mut kept = String::new();
        let s = inp.string(&mut kept, 64).unwrap();
        assert_eq!((kept.len(), s.len), (64, 8 << 20));
        // The buffer never held more than a chunk or so.
        assert!(inp.buf.capacity() <= 4 * CHUNK, "{}", inp.buf.capacity());
    }
}

//! One pass over a record's JSON text that checks it is valid JSON and notes where its
//! top-level members are, building nothing: the fast path's parser (see [`super::record::Raw`]).
//!
//! serde_json spent over a third of a 10,000-IOC page's decoding in its per-member machinery
//! (a visitor call, a `RawValue` and a vector slot per member, an allocation per record); this
//! pass only records offsets in a fixed array. It is deliberately narrow: whatever it is not
//! sure of (invalid JSON, an element that is not an object, nesting deeper than 64, a record
//! longer than the caller's cap) is [`Scan::Unsure`], and the caller hands the element to
//! serde_json, which has the last word. Accepting invalid JSON would print an invalid event,
//! so a test holds this scanner to serde_json on many thousands of mutated records.

use wide::u8x16;

/// Top-level members noted per record; a record with more is valid but not [`Record::printable`].
pub const MAX_MEMBERS: usize = 32;

/// Where one top-level member is in the record's text (byte offsets; a record is at most
/// `max_field_bytes`, 1 MiB, long).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Member {
    /// The key's opening quote, and the byte after its closing quote.
    pub key: u32,
    pub key_end: u32,
    /// The value's first byte, and the byte after its last.
    pub value: u32,
    pub value_end: u32,
    /// The value is a string with escapes in it.
    pub escaped: bool,
}

/// Where a record's members are noted: the caller's, so no record moves them around.
pub type Members = [Member; MAX_MEMBERS];

/// A valid JSON object at the start of the text.
#[derive(Debug, Clone, Copy)]
pub struct Record {
    /// Its length in bytes, up to and including the closing brace.
    pub len: usize,
    /// It can be printed from its own bytes: no raw line break between tokens, no
    /// U+2028/U+2029 in a string, no escaped lone surrogate, no escape in a key, and every
    /// member noted.
    pub printable: bool,
    /// The first `count` entries of the [`Members`] are its members, in order.
    pub count: usize,
}

#[derive(Debug)]
pub enum Scan {
    Record(Record),
    /// The text ends inside the element, with nothing wrong so far: more text is needed.
    More,
    /// Invalid, not an object, too deep or too long: for serde_json to judge.
    Unsure,
}

/// Scans the element at the start of `text` (no leading whitespace), looking at no more than
/// its first `max` bytes, and notes its members in `members`.
pub fn record(text: &str, max: usize, members: &mut Members) -> Scan {
    let all = text.as_bytes();
    let max = max.min(u32::MAX as usize);
    let cut = all.len() > max;
    let mut s = Scanner {
        b: &all[..all.len().min(max)],
        i: 0,
        cut,
        printable: true,
    };
    match s.object(members) {
        Ok(count) => Scan::Record(Record {
            len: s.i,
            printable: s.printable && count <= MAX_MEMBERS,
            count: count.min(MAX_MEMBERS),
        }),
        Err(Stop::More) => Scan::More,
        Err(Stop::Unsure) => Scan::Unsure,
    }
}

enum Stop {
    More,
    Unsure,
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
    /// `b` stops short of the text (at the caller's cap).
    cut: bool,
    printable: bool,
}

/// The first byte at or after `i` that a string scan must look at, or the end of `b`: a '"',
/// a '\\', a control character (invalid in a string), or 0xE2 (U+2028 and U+2029 start with
/// it). Sixteen bytes at a time: strings are most of a record, and this loop was half of the
/// scan when it went eight bytes at a time.
#[inline]
fn next_stop(b: &[u8], i: usize) -> usize {
    let Some(rest) = b.get(i..) else {
        return b.len();
    };
    let mut chunks = rest.chunks_exact(16);
    let mut at = i;
    for chunk in &mut chunks {
        let found = stops(u8x16::new(chunk.try_into().expect("16 bytes")));
        if found != 0 {
            return at + found.trailing_zeros() as usize;
        }
        at += 16;
    }
    let tail = chunks.remainder();
    at + tail.iter().position(|&c| is_stop(c)).unwrap_or(tail.len())
}

/// One bit per lane of `x` that [`is_stop`].
#[inline]
fn stops(x: u8x16) -> u32 {
    let control = x.min(u8x16::splat(0x1F)).simd_eq(x);
    (x.simd_eq(u8x16::splat(b'"'))
        | x.simd_eq(u8x16::splat(b'\\'))
        | x.simd_eq(u8x16::splat(0xE2))
        | control)
        .to_bitmask()
}

fn is_stop(c: u8) -> bool {
    matches!(c, b'"' | b'\\' | 0xE2) || c < 0x20
}

impl Scanner<'_> {
    /// The text ran out: more may come, unless it ran out at the cap.
    fn end(&self) -> Stop {
        if self.cut { Stop::Unsure } else { Stop::More }
    }

    /// Skips JSON whitespace; returns the next byte, not consumed.
    #[inline(always)]
    fn ws(&mut self) -> Result<u8, Stop> {
        loop {
            match self.b.get(self.i) {
                Some(b' ' | b'\t') => self.i += 1,
                Some(b'\n' | b'\r') => {
                    self.printable = false;
                    self.i += 1;
                }
                Some(&c) => return Ok(c),
                None => return Err(self.end()),
            }
        }
    }

    /// Moves past the string whose opening quote is at `i`; says whether it had escapes.
    #[inline(always)]
    fn string(&mut self) -> Result<bool, Stop> {
        let b = self.b;
        let mut i = self.i + 1;
        let mut escaped = false;
        loop {
            i = next_stop(b, i);
            match b.get(i) {
                None => return Err(self.end()),
                Some(b'"') => {
                    self.i = i + 1;
                    return Ok(escaped);
                }
                Some(b'\\') => {
                    escaped = true;
                    i += match b.get(i + 1) {
                        None => return Err(self.end()),
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => 2,
                        // An escaped surrogate must pair with the next escape. Alone it is
                        // valid JSON but not Unicode: serde_json refuses to decode it, so the
                        // record goes to the general path, which reads it as U+FFFD.
                        Some(b'u') => match self.hex4(i + 2)? {
                            0xD800..=0xDBFF => match b.get(i + 6..i + 8) {
                                Some(b"\\u") if (0xDC00..=0xDFFF).contains(&self.hex4(i + 8)?) => {
                                    12
                                }
                                Some(_) => {
                                    self.printable = false;
                                    6
                                }
                                // One byte left: an escape can only begin with it.
                                None if b.get(i + 6).is_some_and(|&c| c != b'\\') => {
                                    self.printable = false;
                                    6
                                }
                                None => return Err(self.end()),
                            },
                            0xDC00..=0xDFFF => {
                                self.printable = false;
                                6
                            }
                            _ => 6,
                        },
                        Some(_) => return Err(Stop::Unsure),
                    };
                }
                Some(0xE2) => {
                    match b.get(i + 1..i + 3) {
                        Some([0x80, 0xA8 | 0xA9]) => self.printable = false,
                        Some(_) => {}
                        // A character cut by the cap (the text itself is whole UTF-8).
                        None => return Err(self.end()),
                    }
                    i += 1;
                }
                Some(c) if *c < 0x20 => return Err(Stop::Unsure),
                Some(_) => i += 1,
            }
        }
    }

    /// The four hex digits of a `\\u` escape at `at`.
    fn hex4(&self, at: usize) -> Result<u16, Stop> {
        let hex = &self.b[at.min(self.b.len())..(at + 4).min(self.b.len())];
        if !hex.iter().all(u8::is_ascii_hexdigit) {
            return Err(Stop::Unsure);
        }
        if hex.len() < 4 {
            return Err(self.end());
        }
        let text = std::str::from_utf8(hex).map_err(|_| Stop::Unsure)?;
        u16::from_str_radix(text, 16).map_err(|_| Stop::Unsure)
    }

    fn digits(&mut self) -> Result<(), Stop> {
        let start = self.i;
        while self.b.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
        match self.b.get(self.i) {
            None => Err(self.end()),
            Some(_) if self.i == start => Err(Stop::Unsure),
            Some(_) => Ok(()),
        }
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`; what follows is checked by the caller.
    fn number(&mut self) -> Result<(), Stop> {
        if self.b[self.i] == b'-' {
            self.i += 1;
        }
        match self.b.get(self.i) {
            None => return Err(self.end()),
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => self.digits()?,
            Some(_) => return Err(Stop::Unsure),
        }
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            self.digits()?;
        }
        if let Some(b'e' | b'E') = self.b.get(self.i) {
            self.i += 1;
            if let Some(b'+' | b'-') = self.b.get(self.i) {
                self.i += 1;
            }
            self.digits()?;
        }
        Ok(())
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), Stop> {
        match self.b.get(self.i..self.i + word.len()) {
            Some(w) if w == word => {
                self.i += word.len();
                Ok(())
            }
            Some(_) => Err(Stop::Unsure),
            None if word.starts_with(&self.b[self.i..]) => Err(self.end()),
            None => Err(Stop::Unsure),
        }
    }

    /// A key, the colon and the whitespace after it: leaves `i` at the value.
    #[inline(always)]
    fn key(&mut self) -> Result<bool, Stop> {
        if self.ws()? != b'"' {
            return Err(Stop::Unsure);
        }
        let escaped = self.string()?;
        if self.ws()? != b':' {
            return Err(Stop::Unsure);
        }
        self.i += 1;
        self.ws()?;
        Ok(escaped)
    }

    /// Moves past the value starting at `i` (not whitespace), nested ones included.
    fn value(&mut self) -> Result<(), Stop> {
        // Bit d: the container at depth d + 1 is an object (else an array).
        let mut objects = 0u64;
        let mut depth = 0u32;
        loop {
            let c = self.b[self.i];
            match c {
                b'"' => {
                    self.string()?;
                }
                b'{' | b'[' => {
                    self.i += 1;
                    let close = if c == b'{' { b'}' } else { b']' };
                    if self.ws()? == close {
                        self.i += 1;
                    } else {
                        if depth == 64 {
                            return Err(Stop::Unsure);
                        }
                        objects = objects << 1 | u64::from(c == b'{');
                        depth += 1;
                        if c == b'{' {
                            self.key()?;
                        }
                        continue;
                    }
                }
                b't' => self.literal(b"true")?,
                b'f' => self.literal(b"false")?,
                b'n' => self.literal(b"null")?,
                b'-' | b'0'..=b'9' => self.number()?,
                _ => return Err(Stop::Unsure),
            }
            // After a value: close the containers that end here, or go on to the next value.
            loop {
                if depth == 0 {
                    return Ok(());
                }
                let in_object = objects & 1 == 1;
                match self.ws()? {
                    b',' => {
                        self.i += 1;
                        if in_object {
                            self.key()?;
                        } else {
                            self.ws()?;
                        }
                        break;
                    }
                    b'}' if in_object => self.i += 1,
                    b']' if !in_object => self.i += 1,
                    _ => return Err(Stop::Unsure),
                }
                objects >>= 1;
                depth -= 1;
            }
        }
    }

    /// The record: an object whose members are noted.
    fn object(&mut self, members: &mut Members) -> Result<usize, Stop> {
        let mut count = 0;
        match self.b.first() {
            Some(b'{') => self.i = 1,
            Some(_) => return Err(Stop::Unsure),
            None => return Err(self.end()),
        }
        if self.ws()? == b'}' {
            self.i += 1;
            return Ok(0);
        }
        loop {
            if self.ws()? != b'"' {
                return Err(Stop::Unsure);
            }
            let key = self.i;
            if self.string()? {
                self.printable = false;
            }
            let key_end = self.i;
            if self.ws()? != b':' {
                return Err(Stop::Unsure);
            }
            self.i += 1;
            let first = self.ws()?;
            let value = self.i;
            let escaped = if first == b'"' {
                self.string()?
            } else {
                self.value()?;
                false
            };
            if let Some(m) = members.get_mut(count) {
                // Offsets fit: `b` is never longer than `u32::MAX` (see `record`).
                *m = Member {
                    key: key as u32,
                    key_end: key_end as u32,
                    value: value as u32,
                    value_end: self.i as u32,
                    escaped,
                };
            }
            count += 1;
            match self.ws()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Ok(count);
                }
                _ => return Err(Stop::Unsure),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::IgnoredAny;
    use serde_json::Value;

    /// Records covering the grammar: every escape, numbers of every shape, literals, nesting,
    /// whitespace of every kind, multi-byte characters, U+2028, empty containers.
    const SEEDS: &[&str] = &[
        r#"{"id":"a","type":"ipv4","value":"1.2.3.4","confidence":"high","tags":["c2"],"n":null}"#,
        r#"{"type":"url","value":"http://x/\"q\"\\\/\b\f\n\r\t\u00e9\uD83D\uDE00","ok":true,"no":false}"#,
        r#"{"a":0,"b":-0,"c":1.5,"d":-12.25e+3,"e":1E-7,"f":120e3,"g":0.0,"h":[1,-2,3.0e1]}"#,
        "{ \"type\" : \"domain\" ,\t\"value\":\"é日本\u{1F600}–\", \"x\" : { \"y\" : [ [ ], { } , [ {\"z\":[null]} ] ] } }",
        "{\"type\":\"url\",\n\"value\":\"a\u{2028}b\",\r\n\"k\\u0041\":1}",
        r#"{}"#,
        r#"{"":"","\\":"\\","long":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#,
    ];

    const PIECES: &[&str] = &[
        "\"", "\\", "{", "}", "[", "]", ":", ",", " ", "\n", "\t", "\r", "\u{c}", "0", "1", "-",
        "+", ".", "e", "E", "t", "f", "n", "u", "a", "\u{1}", "\u{7f}", "é", "\u{2028}", "true",
        "null", "\\u", "\\u12", "\"\"", "{}", "[]", "00", "-0.", "1e", "x",
    ];

    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n as u64) as usize
        }
    }

    fn mutate(r: &mut Rng, text: &str) -> Option<String> {
        let mut b = text.as_bytes().to_vec();
        for _ in 0..1 + r.below(3) {
            let at = r.below(b.len() + 1);
            let piece = PIECES[r.below(PIECES.len())].as_bytes();
            match r.below(4) {
                0 if at < b.len() => {
                    b.remove(at);
                }
                1 if at < b.len() => b.splice(at..at + 1, piece.iter().copied()).for_each(drop),
                2 => b.truncate(at),
                _ => b.splice(at..at, piece.iter().copied()).for_each(drop),
            }
        }
        String::from_utf8(b).ok()
    }

    /// Holds the scan of `text` to serde_json's reading of its first value. The judge of
    /// validity is serde_json's syntax check (`IgnoredAny`, as `RawValue` has it), which lets
    /// an escaped lone surrogate through as the JSON grammar does; decoding to a `Value` does
    /// not, so members are compared only where that works.
    fn check(text: &str) -> Scan {
        let mut members = Members::default();
        let scan = record(text, usize::MAX, &mut members);
        let mut it = serde_json::Deserializer::from_str(text).into_iter::<IgnoredAny>();
        let serde = it.next();
        let whole = match &serde {
            Some(Ok(_)) if text.starts_with('{') => Some(it.byte_offset()),
            _ => None,
        };
        match (&scan, &serde) {
            (Scan::Record(rec), _) => {
                assert_eq!(
                    Some(rec.len),
                    whole,
                    "accepted what serde_json did not: {text:?}"
                );
                let obj = serde_json::from_str::<Value>(&text[..rec.len]).ok();
                let obj = obj.as_ref().and_then(Value::as_object);
                if let Some(obj) = obj.filter(|o| o.len() == rec.count) {
                    for m in &members[..rec.count] {
                        let key: String =
                            serde_json::from_str(&text[m.key as usize..m.key_end as usize])
                                .unwrap();
                        let value: Value =
                            serde_json::from_str(&text[m.value as usize..m.value_end as usize])
                                .unwrap();
                        assert_eq!(obj.get(&key), Some(&value), "{text:?}");
                        let raw = &text[m.value as usize..m.value_end as usize];
                        assert_eq!(m.escaped, raw.starts_with('"') && raw.contains('\\'));
                    }
                }
                if rec.printable {
                    let t = &text[..rec.len];
                    // Printable records decode, lone surrogates and all; numbers beyond f64
                    // (1E700) are valid JSON that serde_json will not hold, printed as sent.
                    if let Err(e) = serde_json::from_str::<Value>(t) {
                        assert!(e.to_string().starts_with("number out of range"), "{text:?}");
                    }
                    assert!(
                        !t.contains(['\n', '\r', '\u{2028}', '\u{2029}']),
                        "{text:?}"
                    );
                    assert!(
                        members[..rec.count]
                            .iter()
                            .all(|m| !text[m.key as usize..m.key_end as usize].contains('\\')),
                        "{text:?}"
                    );
                }
            }
            // serde_json reports some values cut by the end of the text ("-") as invalid,
            // at their last character.
            (Scan::More, Some(Err(e))) => assert!(
                e.is_eof()
                    || (e.line() == text.split('\n').count()
                        && e.column() >= text.rsplit('\n').next().unwrap().chars().count()),
                "{text:?}: {e}"
            ),
            (Scan::More, None) => assert!(text.is_empty()),
            (Scan::More, _) => panic!("asked for more of a complete value: {text:?}"),
            (Scan::Unsure, _) => assert!(
                whole.is_none(),
                "refused an object serde_json reads: {text:?}"
            ),
        }
        scan
    }

    #[test]
    fn seeds_and_every_prefix_agree_with_serde_json() {
        for seed in SEEDS {
            assert!(matches!(check(seed), Scan::Record(r) if r.len == seed.len()));
            for end in (0..seed.len()).filter(|&e| seed.is_char_boundary(e)) {
                check(&seed[..end]);
            }
        }
    }

    #[test]
    fn mutated_records_agree_with_serde_json() {
        let mut r = Rng(0x2545_F491_4F6C_DD1D);
        let (mut records, mut unsure) = (0, 0);
        for _ in 0..60_000 {
            let seed = SEEDS[r.below(SEEDS.len())];
            let Some(text) = mutate(&mut r, seed) else {
                continue;
            };
            match check(&text) {
                Scan::Record(_) => records += 1,
                Scan::Unsure => unsure += 1,
                Scan::More => {}
            }
        }
        // Both outcomes are common, so both directions were tested.
        assert!(records > 5_000 && unsure > 5_000, "{records} {unsure}");
    }

    #[test]
    fn printable_is_what_can_be_printed_as_is() {
        let printable = |t: &str| match record(t, usize::MAX, &mut Members::default()) {
            Scan::Record(r) => r.printable,
            other => panic!("{other:?}"),
        };
        assert!(printable("{\"a\" :\t\"b\u{2013}\" , \"c\":[ 1 ]}"));
        assert!(!printable("{\"a\":\n1}"));
        assert!(!printable("{\"a\":1\r}"));
        assert!(!printable("{\"a\":\"\u{2029}\"}"));
        assert!(!printable(r#"{"\u0061":1}"#));
        assert!(printable(r#"{"a":"\u2028"}"#), "escaped, it is harmless");
        assert!(printable(r#"{"a":"\ud83d\ude00 \uDBFF\uDFFF"}"#));
        for lone in [
            r"\ud800",
            r"\udc00",
            r"\ud800x",
            r"\ud800\u0041",
            r"\ude00\ud83d",
        ] {
            assert!(!printable(&format!(r#"{{"a":"{lone}"}}"#)), "{lone}");
        }
        assert!(
            printable(r#"{"a":"\\ud800"}"#),
            "an escaped backslash, then text"
        );
    }

    #[test]
    fn members_past_the_cap_are_counted_but_not_noted() {
        let wide: Vec<String> = (0..MAX_MEMBERS + 1)
            .map(|i| format!(r#""k{i}":{i}"#))
            .collect();
        let text = format!("{{{}}}", wide.join(","));
        let Scan::Record(rec) = record(&text, usize::MAX, &mut Members::default()) else {
            panic!()
        };
        assert!(!rec.printable && rec.count == MAX_MEMBERS && rec.len == text.len());
    }

    #[test]
    fn a_record_longer_than_the_cap_or_too_deep_is_left_to_serde() {
        let text = r#"{"type":"url","value":"abcdefgh"}"#;
        assert!(matches!(
            record(text, text.len(), &mut Members::default()),
            Scan::Record(_)
        ));
        for cap in [0, 1, 10, 25, text.len() - 1] {
            assert!(
                matches!(record(text, cap, &mut Members::default()), Scan::Unsure),
                "{cap}"
            );
        }
        let deep = |n: usize| format!(r#"{{"a":{}1{}}}"#, "[".repeat(n), "]".repeat(n));
        assert!(matches!(
            record(&deep(64), usize::MAX, &mut Members::default()),
            Scan::Record(_)
        ));
        assert!(matches!(
            record(&deep(65), usize::MAX, &mut Members::default()),
            Scan::Unsure
        ));
        assert!(matches!(
            record(
                &deep(65).replace("1", ""),
                usize::MAX,
                &mut Members::default()
            ),
            Scan::Record(_)
        ));
        serde_json::from_str::<Value>(&deep(65)).expect("serde_json reads it");
    }

    #[test]
    fn string_stops_are_found_in_every_lane() {
        for lane in 0..16 {
            for stop in [b'"', b'\\', 0x00, 0x01, 0x1F, 0xE2] {
                let mut x = [b'a'; 16];
                x[lane] = stop;
                assert_eq!(stops(u8x16::new(x)), 1 << lane, "{stop:#x}");
                let mut text = vec![b'a'; 40];
                text[lane + 7] = stop;
                assert_eq!(next_stop(&text, 3), lane + 7, "{stop:#x}");
            }
            let mut x = [
                0x20u8, 0x7F, 0x80, 0xE1, 0xE3, 0xFF, b'!', b']', 0x21, 0x5B, 0x5D, 0xC2, 0x9F,
                0xA0, b'a', b'Z',
            ];
            x.rotate_left(lane);
            assert_eq!(stops(u8x16::new(x)), 0);
            assert!(x.iter().all(|&c| !is_stop(c)));
        }
        assert_eq!(next_stop(b"abc", 3), 3);
        assert_eq!(next_stop(b"abc", 9), 3);
    }
}

//! A REST record turned into an event line, in bounded memory.
//!
//! **Fast path.** The usual record is compact JSON that needs nothing but its key fields
//! moved first: while it is in the read buffer, `scan` validates it and notes where its
//! members are, and [`Raw`] prints it from its own bytes.
//!
//! **General path.** Anything else (a record longer than `max_field_bytes`, line breaks
//! between tokens, U+2028, escapes in keys, a repeated key field, a lone surrogate, more than
//! 32 members, not an object) is streamed from the body by [`general`]: key fields are kept
//! (strings up to `max_field_bytes`), the other members are written compactly as they are
//! read into a buffer that stops at [`MAX_EVENT_BYTES`], and strings are cut with a marker;
//! a record whose event would not fit keeps only its key fields (cut at [`KEY_FIELD_CAP`]).
//! Numbers are printed as sent on both paths, and a record is never held whole, so no record
//! can take more memory than that, whatever it holds.
//!
//! Both paths print the same event: key fields first (`type`, `value`, `confidence`, `id`,
//! `first_seen`, `last_seen`; a repeated one counts with its last value, as JSON parsers read
//! it), then the other members as sent, repeated ones included.

use std::borrow::Cow;
use std::io::Read;

use super::scan::{self, MAX_MEMBERS, Member, Members, Scan};
use crate::json::{self, Bounded, Error, Flags, Input};
use crate::output::event::{KEY_FIELD_CAP, KEY_FIELDS, MAX_EVENT_BYTES, TRUNCATED_FIELD};

/// A record printed from its own bytes, its members found by [`scan::record`]: the fast path
/// for the usual record, which is already compact JSON that needs no change but reordering.
pub struct Raw<'a> {
    /// The record's JSON text.
    text: &'a str,
    members: &'a [Member],
    /// For each of [`KEY_FIELDS`], the index of its member, or [`ABSENT`].
    key_at: [u8; KEY_FIELDS.len()],
    /// Bit m: member m is one of the key fields.
    key_members: u32,
}

const ABSENT: u8 = u8::MAX;

/// The index of `key` in [`KEY_FIELDS`]. It runs for every member of every record, so it
/// picks the candidate by length and compares fixed-size arrays (a load and a compare each,
/// where comparing slices calls `memcmp`).
fn key_field(key: &[u8]) -> Option<usize> {
    fn is<const N: usize>(key: &[u8], name: &[u8; N]) -> bool {
        <&[u8; N]>::try_from(key).is_ok_and(|k| k == name)
    }
    match key.len() {
        2 if is(key, b"id") => Some(3),
        4 if is(key, b"type") => Some(0),
        5 if is(key, b"value") => Some(1),
        9 if is(key, b"last_seen") => Some(5),
        10 if is(key, b"confidence") => Some(2),
        10 if is(key, b"first_seen") => Some(4),
        _ => None,
    }
}

impl<'a> Raw<'a> {
    /// The record in `text`, its `members` found by [`scan::record`], if it can be printed
    /// from its own bytes: the scan found it `printable` (no raw line break, no U+2028/U+2029,
    /// no escaped key; the scan's cap kept it within `max_field_bytes`, so no string needs
    /// cutting), no key field is repeated, and `type` and `value` are strings. Other repeated
    /// keys are printed as sent, as the general path prints them.
    pub fn new(text: &'a str, members: &'a [Member], printable: bool) -> Option<Raw<'a>> {
        if !printable {
            return None;
        }
        let bytes = text.as_bytes();
        let key = |m: &Member| &bytes[m.key as usize + 1..m.key_end as usize - 1];
        let mut key_at = [ABSENT; KEY_FIELDS.len()];
        let mut key_members = 0u32;
        for (i, m) in members.iter().enumerate() {
            match key_field(key(m)) {
                Some(f) if key_at[f] == ABSENT => {
                    key_at[f] = i as u8;
                    key_members |= 1 << i;
                }
                // A repeated key field: which one counts is for the general path.
                Some(_) => return None,
                None => {}
            }
        }
        let raw = Raw {
            text,
            members,
            key_at,
            key_members,
        };
        let is_string = |f: usize| raw.value(f).is_some_and(|v| v.starts_with('"'));
        (is_string(0) && is_string(1)).then_some(raw)
    }

    /// Parses `text` as a record for the fast path, if it qualifies (see [`Raw::new`]).
    #[cfg(test)]
    pub fn parse(
        text: &'a str,
        max_field_bytes: usize,
        members: &'a mut Members,
    ) -> Option<Raw<'a>> {
        match scan::record(text, max_field_bytes, members) {
            Scan::Record(rec) if rec.len == text.len() => {
                Raw::new(text, &members[..rec.count], rec.printable)
            }
            _ => None,
        }
    }

    /// Key field `f` (an index in [`KEY_FIELDS`]) and its JSON text.
    fn member(&self, f: usize) -> Option<(&'a Member, &'a str)> {
        // ABSENT is past the end of `members`.
        let m = self.members.get(usize::from(*self.key_at.get(f)?))?;
        Some((m, &self.text[m.value as usize..m.value_end as usize]))
    }

    fn value(&self, f: usize) -> Option<&'a str> {
        self.member(f).map(|(_, text)| text)
    }

    /// A key field's string value, decoded (only [`KEY_FIELDS`] can be asked for).
    pub fn str(&self, key: &str) -> Option<Cow<'a, str>> {
        let (m, text) = self.member(key_field(key.as_bytes())?)?;
        let inner = text.strip_prefix('"')?.strip_suffix('"')?;
        if !m.escaped {
            return Some(Cow::Borrowed(inner));
        }
        serde_json::from_str::<String>(text).ok().map(Cow::Owned)
    }

    /// The record's identity for de-duplication: `id` (a string's text, any other value's
    /// JSON as sent), or `type:value` when it has none or it is `null`.
    pub fn identity(&self) -> Cow<'a, str> {
        match self.value(3) {
            Some(v) if v.starts_with('"') => self.str("id").unwrap_or_default(),
            Some(v) if v != "null" => Cow::Borrowed(v),
            _ => Cow::Owned(format!(
                "{}:{}",
                self.str("type").unwrap_or_default(),
                self.str("value").unwrap_or_default()
            )),
        }
    }

    /// Appends the line (no newline): key fields first, then the rest in their order. Members
    /// written `"key":value` (no space around the colon) that follow each other in the text
    /// in the order they are printed are copied as one span (in the usual record, all of them
    /// after `id`).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let mut order = [0u8; MAX_MEMBERS];
        let mut n = 0;
        for &m in self.key_at.iter().filter(|&&m| m != ABSENT) {
            order[n] = m;
            n += 1;
        }
        for m in (0..self.members.len()).filter(|m| self.key_members & (1 << m) == 0) {
            order[n] = m as u8;
            n += 1;
        }
        let text = self.text.as_bytes();
        let tight = |m: &Member| m.value == m.key_end + 1;
        out.push(b'{');
        let mut i = 0;
        while i < n {
            if i > 0 {
                out.push(b',');
            }
            let m = &self.members[usize::from(order[i])];
            if tight(m) {
                let mut end = m.value_end;
                while i + 1 < n && order[i + 1] == order[i] + 1 {
                    let next = &self.members[usize::from(order[i + 1])];
                    if !(tight(next) && next.key == end + 1 && text[end as usize] == b',') {
                        break;
                    }
                    end = next.value_end;
                    i += 1;
                }
                out.extend_from_slice(&text[m.key as usize..end as usize]);
            } else {
                // Keys have no escapes here: their bytes are their JSON.
                out.extend_from_slice(&text[m.key as usize..m.key_end as usize]);
                out.push(b':');
                out.extend_from_slice(&text[m.value as usize..m.value_end as usize]);
            }
            i += 1;
        }
        out.push(b'}');
    }
}

/// Why a record was not printed.
#[derive(Debug, PartialEq, Eq)]
pub enum Skip {
    NotAnObject,
    MissingString(&'static str),
}

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Skip::NotAnObject => f.write_str("is not a JSON object"),
            Skip::MissingString(k) => write!(f, "has no string {k:?}"),
        }
    }
}

/// A record the general path turned into its event line.
#[derive(Debug)]
pub struct Encoded {
    /// The line, without its newline.
    pub line: Vec<u8>,
    pub identity: String,
    pub last_seen: String,
    /// It held escaped lone surrogates, printed as U+FFFD.
    pub surrogates: bool,
}

/// What an element of `data` became.
pub enum Found<'a> {
    /// A usual record, printable from its own bytes (see [`Raw::new`]).
    Record {
        text: &'a str,
        members: &'a [Member],
        printable: bool,
    },
    /// A record printed by the general path.
    Encoded(Encoded),
    /// An element that is not a record: `id` says which, if it had one.
    Skipped { id: String, why: Skip },
}

impl<'a> Found<'a> {
    /// The fast path's record, or `None` for the other kinds.
    pub fn raw(&self) -> Option<Raw<'a>> {
        match self {
            Found::Record {
                text,
                members,
                printable,
            } => Raw::new(text, members, *printable),
            _ => None,
        }
    }
}

/// Reads the element at the start of `inp`'s unread text (no whitespace before it), hands
/// what it became to `f`, and consumes it. A fast-path record is handed over in the read
/// buffer; anything else is streamed. An element that is not JSON fails the page.
pub fn element<R: Read>(
    inp: &mut Input<R>,
    max_field_bytes: usize,
    members: &mut Members,
    f: impl FnOnce(Found<'_>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    loop {
        match scan::record(inp.unread(), max_field_bytes, members) {
            Scan::Record(rec) => {
                let text = &inp.unread()[..rec.len];
                let members = &members[..rec.count];
                if Raw::new(text, members, rec.printable).is_some() {
                    f(Found::Record {
                        text,
                        members,
                        printable: rec.printable,
                    })?;
                    inp.pos += rec.len;
                    return Ok(());
                }
                break;
            }
            Scan::More if !inp.eof => {
                // Read as much again as is unread before asking again: an element spanning
                // many reads is then scanned a few times, not once per read.
                let want = (inp.unread().len() * 2).max(inp.unread().len() + 4096);
                inp.fill_to(want)?;
            }
            Scan::More | Scan::Unsure => break,
        }
    }
    f(general(inp, max_field_bytes)?)
}

/// A key field as read: a string (its first `max_field_bytes` and its length), or any other
/// value as compact JSON (bounded).
enum Kept {
    Str { kept: String, len: usize },
    Json(Bounded),
}

impl Kept {
    fn read<R: Read>(inp: &mut Input<R>, max: usize, flags: &mut Flags) -> Result<Kept, Error> {
        if inp.peek()? == Some(b'"') {
            let mut kept = String::new();
            let s = inp.string(&mut kept, max)?;
            flags.surrogates |= s.surrogates;
            return Ok(Kept::Str { kept, len: s.len });
        }
        let mut b = Bounded::new(MAX_EVENT_BYTES);
        inp.value(Some(&mut b), max, flags)?;
        Ok(Kept::Json(b))
    }

    fn str(&self) -> Option<&str> {
        match self {
            Kept::Str { kept, .. } => Some(kept),
            Kept::Json(_) => None,
        }
    }

    /// Writes it; `cap` cuts strings, and (`as_text`) turns any other value into a string of
    /// its JSON, cut too. True when something was cut.
    fn write(&self, out: &mut Vec<u8>, cap: usize, as_text: bool) -> bool {
        match self {
            Kept::Str { kept, len } => json::write_capped(out, kept, *len, cap),
            Kept::Json(b) if !as_text => {
                out.extend_from_slice(&b.buf);
                false
            }
            Kept::Json(b) => {
                let text = String::from_utf8_lossy(&b.buf);
                json::write_capped(out, &text, b.total, cap)
            }
        }
    }
}

/// The general path: streams the record (or other element) at the start of `inp`.
pub fn general<R: Read>(
    inp: &mut Input<R>,
    max_field_bytes: usize,
) -> Result<Found<'static>, Error> {
    let mut flags = Flags::default();
    if inp.peek()? != Some(b'{') {
        inp.value(None, 0, &mut flags)?;
        return Ok(Found::Skipped {
            id: "none".into(),
            why: Skip::NotAnObject,
        });
    }
    inp.pos += 1;
    let mut keys: [Option<Kept>; KEY_FIELDS.len()] = Default::default();
    let mut rest = Bounded::new(MAX_EVENT_BYTES);
    let mut key = String::new();
    if inp.peek()? == Some(b'}') {
        inp.pos += 1;
    } else {
        loop {
            let k = inp.key(&mut key)?;
            flags.surrogates |= k.surrogates;
            match key_field(key.as_bytes()).filter(|_| k.len == key.len()) {
                // A repeated key field counts with its last value.
                Some(f) => keys[f] = Some(Kept::read(inp, max_field_bytes, &mut flags)?),
                None => {
                    if rest.total > 0 {
                        rest.push(b',');
                    }
                    let mut enc = Vec::with_capacity(key.len() + 3);
                    flags.cut |= json::write_capped(&mut enc, &key, k.len, json::input::KEY_CAP);
                    enc.push(b':');
                    rest.extend(&enc);
                    inp.value(Some(&mut rest), max_field_bytes, &mut flags)?;
                }
            }
            match inp.peek()? {
                Some(b',') => inp.pos += 1,
                Some(b'}') => {
                    inp.pos += 1;
                    break;
                }
                Some(c) => {
                    return Err(Error::Malformed(format!(
                        "expected ',' or '}}' in a record, found {:?}",
                        c as char
                    )));
                }
                None => return Err(Error::Truncated),
            }
        }
    }
    for (f, name) in [(0, "type"), (1, "value")] {
        if keys[f].as_ref().and_then(Kept::str).is_none() {
            let id = match &keys[3] {
                Some(Kept::Str { kept, .. }) => format!("{:?}", json::prefix(kept, 80)),
                Some(Kept::Json(b)) => String::from_utf8_lossy(
                    json::prefix(&String::from_utf8_lossy(&b.buf), 80).as_bytes(),
                )
                .into_owned(),
                None => "none".into(),
            };
            return Ok(Found::Skipped {
                id,
                why: Skip::MissingString(name),
            });
        }
    }
    Ok(Found::Encoded(encode(&keys, &rest, flags, max_field_bytes)))
}

/// The event line of a record the general path read.
fn encode(
    keys: &[Option<Kept>; KEY_FIELDS.len()],
    rest: &Bounded,
    flags: Flags,
    max_field_bytes: usize,
) -> Encoded {
    let fields = |out: &mut Vec<u8>, cap: usize, as_text: bool| {
        let mut cut = false;
        for (k, name) in keys.iter().zip(KEY_FIELDS) {
            if let Some(k) = k {
                if out.len() > 1 {
                    out.push(b',');
                }
                json::write_str(out, name);
                out.push(b':');
                cut |= k.write(out, cap, as_text);
            }
        }
        cut
    };
    let mut line = Vec::with_capacity(rest.buf.len() + 512);
    line.push(b'{');
    let mut cut = fields(&mut line, max_field_bytes, false) | flags.cut;
    if rest.total > 0 {
        line.push(b',');
        line.extend_from_slice(&rest.buf);
    }
    let json_over = keys
        .iter()
        .any(|k| matches!(k, Some(Kept::Json(b)) if b.over()));
    if cut {
        line.extend_from_slice(format!(",\"{TRUNCATED_FIELD}\":true").as_bytes());
    }
    line.push(b'}');
    if rest.over() || json_over || line.len() > MAX_EVENT_BYTES {
        // Too long (many members, long arrays): keep the key fields only.
        line.clear();
        line.push(b'{');
        fields(&mut line, KEY_FIELD_CAP, true);
        line.extend_from_slice(format!(",\"{TRUNCATED_FIELD}\":true}}").as_bytes());
        cut = true;
    }
    let _ = cut;
    let text = |f: usize| keys[f].as_ref().and_then(Kept::str).unwrap_or("");
    let identity = match &keys[3] {
        Some(Kept::Str { kept, .. }) => kept.clone(),
        Some(Kept::Json(b)) if b.buf != b"null" => String::from_utf8_lossy(&b.buf).into_owned(),
        _ => format!("{}:{}", text(0), text(1)),
    };
    Encoded {
        line,
        identity,
        last_seen: text(5).to_string(),
        surrogates: flags.surrogates,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::input::Trickle;
    use serde_json::{Value, json};

    /// Whether `text` takes the fast path.
    fn fast(text: &str, max_field_bytes: usize) -> bool {
        Raw::parse(text, max_field_bytes, &mut Members::default()).is_some()
    }

    /// What [`element`] makes of `text`, read `step` bytes at a time: the line, or why not.
    pub(super) fn line_of(text: &str, step: usize, max: usize) -> Result<Vec<u8>, String> {
        let mut inp = Input::new(Trickle(text.as_bytes(), step), u64::MAX, None);
        inp.peek().map_err(|e| e.to_string())?;
        let mut members = Members::default();
        let mut got = Err("nothing".to_string());
        element(&mut inp, max, &mut members, |found| {
            got = match found {
                Found::Skipped { id, why } => Err(format!("skipped {id}: {why}")),
                Found::Encoded(e) => Ok(e.line),
                f => {
                    let mut line = Vec::new();
                    f.raw().unwrap().encode_into(&mut line);
                    Ok(line)
                }
            };
            Ok(())
        })
        .map_err(|e| format!("broken: {e}"))?;
        got
    }

    /// The general path's line for `text`, whatever the fast path would do.
    fn general_line(text: &str, max: usize) -> Result<Vec<u8>, String> {
        let mut inp = Input::new(text.as_bytes(), u64::MAX, None);
        match general(&mut inp, max).map_err(|e| e.to_string())? {
            Found::Encoded(e) => Ok(e.line),
            Found::Skipped { why, .. } => Err(why.to_string()),
            Found::Record { .. } => unreachable!(),
        }
    }

    fn enc(v: Value) -> (Vec<u8>, Value) {
        let line = general_line(&serde_json::to_string(&v).unwrap(), 8192).unwrap();
        let back = serde_json::from_slice(&line).unwrap();
        (line, back)
    }

    #[test]
    fn key_fields_first_and_unknown_fields_kept() {
        let (line, back) =
            enc(json!({"zz": {"a": [1, null]}, "value": "1.2.3.4", "type": "ipv4", "id": "x"}));
        assert!(line.starts_with(br#"{"type":"ipv4","value":"1.2.3.4","id":"x""#));
        assert_eq!(back["zz"], json!({"a": [1, null]}));
    }

    #[test]
    fn numbers_are_printed_as_sent_on_both_paths() {
        let compact = r#"{"type":"url","value":"v","a":1.10,"b":1E2,"c":1e400,"d":-0.0}"#;
        let spaced = compact.replace(',', ",\n");
        for (text, fast_path) in [(compact, true), (spaced.as_str(), false)] {
            assert_eq!(fast(text, 8192), fast_path);
            let line = line_of(text, 3, 8192).unwrap();
            assert_eq!(String::from_utf8(line).unwrap(), compact, "{text}");
        }
        // A number that is the key field `id` too, and the identity that follows from it.
        let mut inp = Input::new(
            &br#"{"id":1E2,"type":"url","value":"v","x":"\u00e9"}"#[..],
            u64::MAX,
            None,
        );
        let Found::Encoded(e) = general(&mut inp, 8192).unwrap() else {
            panic!()
        };
        assert_eq!(e.identity, "1E2");
    }

    #[test]
    fn hostile_values_stay_on_one_line() {
        let evil = "a\nb\r\0c\u{2028}d\u{2029}\"}\n{\"type\":\"ipv4\"";
        let (line, back) = enc(json!({"type": "url", "value": evil}));
        assert!(!line.iter().any(|&b| b == b'\n' || b == b'\r' || b == 0));
        assert!(!String::from_utf8(line).unwrap().contains('\u{2028}'));
        assert_eq!(back["value"], evil);
    }

    #[test]
    fn long_strings_are_cut_with_a_marker_and_events_bounded() {
        let big = "x".repeat(200_000);
        let (_, back) = enc(json!({"type": "url", "value": "v", "context": big}));
        let ctx = back["context"].as_str().unwrap();
        assert!(ctx.starts_with("xxx") && ctx.ends_with("[truncated 191808 bytes]"));
        assert_eq!(back[TRUNCATED_FIELD], true);

        let many: Vec<String> = (0..100).map(|_| "y".repeat(5000)).collect();
        let (line, back) =
            enc(json!({"type": "url", "value": "v", "id": {"x": "y"}, "tags": many}));
        assert!(line.len() <= MAX_EVENT_BYTES);
        assert_eq!(back["type"], "url");
        assert_eq!(
            back["id"], r#"{"x":"y"}"#,
            "a non-string key field kept as text"
        );
        assert!(back.get("tags").is_none());
        assert_eq!(back[TRUNCATED_FIELD], true);
        // A key field far too large itself, even with its strings cut.
        let (line, back) = enc(json!({"type": "url", "value": "v", "id": vec![big; 20]}));
        assert!(line.len() <= MAX_EVENT_BYTES);
        assert!(back["id"].as_str().unwrap().ends_with("bytes]"));
    }

    #[test]
    fn cut_never_splits_a_character() {
        let s = "é".repeat(10_000);
        let (_, back) = enc(json!({"type": "url", "value": s}));
        assert!(back["value"].as_str().unwrap().contains("[truncated"));
    }

    #[test]
    fn invalid_records_are_named_and_broken_json_fails() {
        assert_eq!(
            line_of("[1]", 1, 8192).unwrap_err(),
            "skipped none: is not a JSON object"
        );
        assert_eq!(
            line_of(r#"{"id":"k","type":4,"value":"x"}"#, 2, 8192).unwrap_err(),
            "skipped \"k\": has no string \"type\""
        );
        assert_eq!(
            line_of(r#"{"type":"ipv4"}"#, 5, 8192).unwrap_err(),
            "skipped none: has no string \"value\""
        );
        for broken in [
            r#"{"type":"ipv4","value":tru}"#,
            r#"{"type":"a" "value":"b"}"#,
            "{\"a\":\"\u{1}\"}",
        ] {
            assert!(
                line_of(broken, 3, 8192).is_err_and(|e| e.starts_with("broken: ")),
                "{broken}"
            );
        }
    }

    #[test]
    fn a_repeated_key_field_counts_with_its_last_value_and_others_print_as_sent() {
        let text = r#"{"type":"url","value":"a","type":"ipv4","k":1,"k":2}"#;
        assert!(!fast(text, 8192));
        assert_eq!(
            String::from_utf8(line_of(text, 4, 8192).unwrap()).unwrap(),
            r#"{"type":"ipv4","value":"a","k":1,"k":2}"#
        );
        // Repeated other keys stay on the fast path and print the same.
        let text = r#"{"type":"url","value":"a","k":1,"k":2}"#;
        assert!(fast(text, 8192));
        assert_eq!(
            line_of(text, 4, 8192).unwrap(),
            general_line(text, 8192).unwrap()
        );
    }

    #[test]
    fn members_copied_as_spans_print_what_the_general_path_prints() {
        // Tight runs are copied whole; spaces around ':' or ',' end a run.
        for text in [
            r#"{"id":"x","type":"url","value":"v","source":{"a":1},"tags":["t"],"n":2}"#,
            r#"{"id":"x","type":"url" ,"value":"v","k":1,"a":[1],"b" :{"c":3},"first_seen":"s"}"#,
            r#"{"id":"x","type":"url","value":"v","k":1, "a":[1],"b":{"c":3},	"first_seen":"s"}"#,
            r#"{ "type":"url","value":"v","x":true,"confidence":"high","id":7 }"#,
            r#"{"last_seen":"l","first_seen":"f","id":"i","confidence":"c","value":"v","type":"t"}"#,
        ] {
            let mut members = Members::default();
            let raw = Raw::parse(text, 8192, &mut members).expect("fast path");
            let mut fast = Vec::new();
            raw.encode_into(&mut fast);
            assert_eq!(
                String::from_utf8(fast).unwrap(),
                String::from_utf8(general_line(text, 8192).unwrap()).unwrap()
            );
        }
    }

    #[test]
    fn unusual_records_take_the_general_path() {
        let long =
            serde_json::to_string(&json!({"type": "url", "value": "x".repeat(100)})).unwrap();
        assert!(!fast(&long, 50));
        assert!(!fast(r#"{"type":"url","value":"a","type":"ipv4"}"#, 8192));
        assert!(!fast(r#"{"type":4,"value":"a"}"#, 8192));
        assert!(!fast(r#"{"type":"url"}"#, 8192));
        assert!(!fast("{\"type\":\"url\",\n\"value\":\"a\"}", 8192));
        assert!(!fast("{\"type\":\"url\",\"value\":\"a\u{2028}\"}", 8192));
        assert!(fast("{\"type\":\"url\",\"value\":\"a \u{2013} b\"}", 8192));
        assert!(fast(r#"{"type":"url", "value":"a", "n": [1, 2]}"#, 8192));
        assert!(!fast(r#"["type"]"#, 8192));
        assert!(!fast(r#"{"type":"url","value":"a","k\"ey":1}"#, 8192));
        let wide = (0..MAX_MEMBERS)
            .map(|i| format!(r#","k{i}":{i}"#))
            .collect::<String>();
        let wide = format!(r#"{{"type":"url","value":"a"{wide}}}"#);
        assert!(!fast(&wide, 8192));
        assert!(!fast(&wide.replacen(r#","k0":0"#, "", 1), 8192));
        assert!(fast(&wide.replacen(r#","k0":0,"k1":1"#, "", 1), 8192));
        // Whatever path they take, every one of them is printed in full.
        for text in [&long, &wide] {
            let line = line_of(text, 7, 8192).unwrap();
            assert_eq!(
                serde_json::from_slice::<Value>(&line).unwrap(),
                serde_json::from_str::<Value>(text).unwrap()
            );
        }
    }

    #[test]
    fn key_fields_are_matched_in_their_order() {
        for (i, k) in KEY_FIELDS.iter().enumerate() {
            assert_eq!(key_field(k.as_bytes()), Some(i));
        }
        assert_eq!(key_field(b"types"), None);
    }

    #[test]
    fn a_record_of_megabytes_is_read_in_bounded_memory() {
        // 20 MB of one string, then the key fields: nothing is held but their caps.
        let text = format!(
            r#"{{"context":"{}","type":"url","value":"v","id":"i"}}"#,
            "0".repeat(20 << 20)
        );
        let mut inp = Input::new(Trickle(text.as_bytes(), 1 << 16), u64::MAX, None);
        inp.peek().unwrap();
        let Found::Encoded(e) = general(&mut inp, 8192).unwrap() else {
            panic!()
        };
        let back: Value = serde_json::from_slice(&e.line).unwrap();
        assert!(
            back["context"]
                .as_str()
                .unwrap()
                .ends_with(&format!("[truncated {} bytes]", (20 << 20) - 8192))
        );
        assert_eq!((back["id"].as_str(), e.identity.as_str()), (Some("i"), "i"));
    }
}

/// Differential test of the whole hot path (page stream, scan, fast and general paths)
/// against serde_json on random pages: what is printed must read back as what was sent.
#[cfg(test)]
mod differential {
    use super::*;
    use crate::json::input::Trickle;
    use crate::source::rest::page;
    use serde_json::Value;

    /// xorshift64*: deterministic, no crate needed.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// The page's whitespace style: 0 compact (as APIs send), 1 spaces and tabs only (still
    /// printable as is), 2 only `\n`, 3 only `\r` (both must leave the fast path), 4 mixed.
    static STYLE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

    fn ws(r: &mut Rng) -> &'static str {
        let pick = r.below(4) as usize;
        match STYLE.load(std::sync::atomic::Ordering::Relaxed) {
            0 => "",
            1 => ["", " ", "\t", "  "][pick],
            2 => ["", "", "\n", ""][pick],
            3 => ["", "", "\r", ""][pick],
            _ => ["", " ", "\n", "\r\n  "][pick],
        }
    }

    /// No raw line break and no U+2028/U+2029 in a printed line, byte by byte.
    fn one_line(line: &[u8]) -> bool {
        !line.contains(&b'\n')
            && !line.contains(&b'\r')
            && !line
                .windows(3)
                .any(|w| w == [0xE2, 0x80, 0xA8] || w == [0xE2, 0x80, 0xA9])
    }

    fn string(r: &mut Rng) -> String {
        let with_2028 = STYLE.load(std::sync::atomic::Ordering::Relaxed) % 2 == 1;
        let sep = if with_2028 { "\u{2028}" } else { "\u{2013}" };
        let pieces = [
            "a",
            "Z9",
            "-",
            " ",
            "é",
            "日本",
            sep,
            "\u{2029}\u{2013}",
            "\"",
            "\\",
            "/",
            "\n",
            "\t",
            "\u{0}",
            "\u{1F600}",
            "x".repeat(40).leak(),
        ];
        let n = r.below(6);
        let raw: String = (0..n)
            .map(|_| pieces[r.below(pieces.len() as u64) as usize])
            .collect();
        let json = serde_json::to_string(&raw).unwrap();
        if r.below(5) == 0 {
            json.replacen('a', "\\u0061", 1)
        } else {
            json
        }
    }

    fn value(r: &mut Rng, depth: u32) -> String {
        match if depth > 2 { r.below(4) } else { r.below(7) } {
            0 | 3 => string(r),
            1 => [
                "0",
                "-12",
                "3.5e2",
                "1E-3",
                "12345678901234",
                "1.10",
                "2E+2",
            ][r.below(7) as usize]
                .to_string(),
            2 => ["true", "false", "null"][r.below(3) as usize].to_string(),
            4 | 5 => {
                let n = r.below(4);
                let items: Vec<String> = (0..n)
                    .map(|_| format!("{}{}{}", ws(r), value(r, depth + 1), ws(r)))
                    .collect();
                format!("[{}]", items.join(","))
            }
            _ => object(r, depth + 1, false),
        }
    }

    fn object(r: &mut Rng, depth: u32, record: bool) -> String {
        let mut members = Vec::new();
        if record && r.below(10) != 0 {
            let ty = if r.below(12) == 0 {
                "4".into()
            } else {
                string(r)
            };
            members.push(format!("\"type\":{ty}"));
            members.push(format!("\"value\":{}", string(r)));
            members.push(format!("\"id\":{}", string(r)));
            members.push(format!(
                "\"last_seen\":\"2026-11-2{}T00:00:0{}Z\"",
                r.below(8),
                r.below(10)
            ));
        }
        for _ in 0..r.below(4) {
            let key = if r.below(8) == 0 {
                "\"type\"".to_string()
            } else {
                string(r)
            };
            members.push(format!("{key}{}:{}{}", ws(r), ws(r), value(r, depth)));
        }
        let n = members.len();
        for i in 0..n {
            let j = r.below(n as u64) as usize;
            members.swap(i, j);
        }
        format!(
            "{{{}}}",
            members
                .iter()
                .map(|m| format!("{}{m}{}", ws(r), ws(r)))
                .collect::<Vec<_>>()
                .join(",")
        )
    }

    /// What the printed event must read back as: the record as serde_json reads it (a
    /// repeated key's last value), or `None` when it is not a record with string type and
    /// value.
    fn reference(v: &Value) -> Option<Value> {
        let o = v.as_object()?;
        (o.get("type")?.is_string() && o.get("value")?.is_string()).then(|| v.clone())
    }

    /// The number tokens of a JSON text, outside strings, sorted.
    fn numbers(text: &str) -> Vec<String> {
        let (mut out, mut cur, mut in_str, mut esc) = (Vec::new(), String::new(), false, false);
        for c in text.chars() {
            if in_str {
                match (esc, c) {
                    (true, _) => esc = false,
                    (false, '\\') => esc = true,
                    (false, '"') => in_str = false,
                    _ => {}
                }
                continue;
            }
            if c.is_ascii_digit() || "+-.eE".contains(c) {
                cur.push(c);
                continue;
            }
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            in_str = c == '"';
        }
        out.sort();
        out
    }

    #[test]
    fn streaming_paths_print_what_serde_json_reads() {
        let mut r = Rng(0x9E37_79B9_7F4A_7C15);
        let (mut fast_seen, mut general_seen) = (0, 0);
        for case in 0..400 {
            STYLE.store(case % 5, std::sync::atomic::Ordering::Relaxed);
            let n = r.below(12);
            let elements: Vec<String> = (0..n)
                .map(|_| {
                    if r.below(10) == 0 {
                        value(&mut r, 1)
                    } else {
                        object(&mut r, 0, true)
                    }
                })
                .collect();
            let body = format!(
                "{}{{\"meta\":{{\"total\":{n}}},{}\"data\"{}:{}[{}]{}}}{}",
                ws(&mut r),
                ws(&mut r),
                ws(&mut r),
                ws(&mut r),
                elements
                    .iter()
                    .map(|e| format!("{}{e}{}", ws(&mut r), ws(&mut r)))
                    .collect::<Vec<_>>()
                    .join(","),
                ws(&mut r),
                ws(&mut r)
            );
            let whole: Value = serde_json::from_str(&body)
                .unwrap_or_else(|e| panic!("case {case}: generator made bad JSON ({e}): {body}"));
            let want: Vec<Option<Value>> = whole["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(reference)
                .collect();
            let mut got = Vec::new();
            let mut m = Members::default();
            let step = 1 + (case as usize * 7919) % 300;
            let sum = page::stream(Trickle(body.as_bytes(), step), u64::MAX, None, |inp| {
                element(inp, 8192, &mut m, |found| {
                    let line = match found {
                        Found::Skipped { .. } => {
                            got.push(None);
                            return Ok(());
                        }
                        Found::Encoded(e) => {
                            general_seen += 1;
                            e.line
                        }
                        f => {
                            fast_seen += 1;
                            let raw = f.raw().unwrap();
                            let mut line = Vec::new();
                            raw.encode_into(&mut line);
                            // The general path prints the same event for it.
                            if let Found::Record { text, .. } = f {
                                let g = super::tests::line_of(text, 5, 8192).unwrap();
                                assert_eq!(
                                    serde_json::from_slice::<Value>(&g).unwrap(),
                                    serde_json::from_slice::<Value>(&line).unwrap(),
                                    "case {case}"
                                );
                            }
                            line
                        }
                    };
                    assert!(
                        one_line(&line),
                        "case {case}: {}",
                        String::from_utf8_lossy(&line)
                    );
                    got.push(Some(serde_json::from_slice::<Value>(&line).unwrap()));
                    Ok(())
                })
            })
            .unwrap_or_else(|e| panic!("case {case}: {e}\n{body}"));
            assert_eq!(sum.count, n, "case {case}");
            assert_eq!(got, want, "case {case}\n{body}");
        }
        // Numbers survive as sent on every path: checked on the elements themselves.
        let e = "{\"type\":\"u\",\"value\":\"v\",\n\"n\":[1.10,2E+2,-0.0,1e400]}";
        let line = super::tests::line_of(e, 3, 8192).unwrap();
        assert_eq!(numbers(&String::from_utf8(line).unwrap()), numbers(e));
        assert!(
            fast_seen > 100 && general_seen > 100,
            "{fast_seen} {general_seen}"
        );
    }
}

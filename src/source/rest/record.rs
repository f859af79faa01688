//! A REST record turned into an event line: the fast path prints the usual record from its
//! own bytes (its members located by `scan`), the general path parses anything else.

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::page;
use super::scan::{self, MAX_MEMBERS, Member, Members, Scan};
use crate::output::event::KEY_FIELDS;

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

/// Checks a record has what every consumer relies on: an object with string `type` and `value`.
pub fn validate(record: &Value) -> Result<&Map<String, Value>, Skip> {
    let obj = record.as_object().ok_or(Skip::NotAnObject)?;
    for key in ["type", "value"] {
        if !obj.get(key).is_some_and(Value::is_string) {
            return Err(Skip::MissingString(key));
        }
    }
    Ok(obj)
}

/// The identity of a record for de-duplication: `id`, or `type:value` when there is none.
pub fn identity(obj: &Map<String, Value>) -> String {
    match obj.get("id") {
        Some(Value::String(id)) => id.clone(),
        Some(other) if !other.is_null() => other.to_string(),
        _ => format!(
            "{}:{}",
            obj.get("type").and_then(Value::as_str).unwrap_or(""),
            obj.get("value").and_then(Value::as_str).unwrap_or("")
        ),
    }
}

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

/// One element of a page's `data`, found at the start of the unread bytes.
pub enum Element<'a> {
    /// A usual record, printable from its own bytes (see [`Raw::new`]).
    Plain(Raw<'a>),
    /// Anything else, for the general path: the element's text.
    Other(&'a str),
}

/// What the scan found at the start of the unread text: a record, with where its members are,
/// or any other element, for the general path.
pub enum Found<'a> {
    Record {
        text: &'a str,
        members: &'a [Member],
        /// See [`scan::Record::printable`].
        printable: bool,
    },
    Other(&'a str),
}

impl<'a> Found<'a> {
    /// The element, printable from its own bytes if it qualifies (see [`Raw::new`]).
    pub fn element(self) -> Element<'a> {
        match self {
            Found::Record {
                text,
                members,
                printable,
            } => match Raw::new(text, members, printable) {
                Some(raw) => Element::Plain(raw),
                None => Element::Other(text),
            },
            Found::Other(text) => Element::Other(text),
        }
    }
}

/// Finds the element at the start of `rest` in one pass, noting a record's members in
/// `members`. `Ok(None)`: `rest` does not hold all of it yet. An element that is not even
/// balanced JSON is an error for the whole page.
pub fn find<'a>(
    rest: &'a str,
    eof: bool,
    max_field_bytes: usize,
    members: &'a mut Members,
) -> Result<Option<(Found<'a>, usize)>, page::Error> {
    match scan::record(rest, max_field_bytes, members) {
        Scan::Record(rec) => Ok(Some((
            Found::Record {
                text: element(rest, rec.len)?,
                members: &members[..rec.count],
                printable: rec.printable,
            },
            rec.len,
        ))),
        Scan::More if !eof => Ok(None),
        // Not an object, not JSON, or longer than a printable record: find its extent by
        // structure and let the general path decide (an invalid record is skipped, broken
        // JSON fails the page).
        Scan::More | Scan::Unsure => {
            let start = rest.len()
                - rest
                    .trim_start_matches(|c: char| c.is_ascii_whitespace())
                    .len();
            match page::value_len(&rest[start..], eof)? {
                Some(n) => Ok(Some((Found::Other(element(rest, start + n)?), start + n))),
                None => Ok(None),
            }
        }
    }
}

/// The first `len` bytes of `rest`. A JSON value ends with an ASCII byte, so `len` is always
/// a character boundary; if it ever were not, the page is refused rather than the run panicking.
fn element(rest: &str, len: usize) -> Result<&str, page::Error> {
    rest.get(..len)
        .ok_or_else(|| page::Error::Malformed("an element ends inside a character".into()))
}

impl<'a> Raw<'a> {
    /// The record in `text`, its `members` found by [`scan::record`], if it can be printed
    /// from its own bytes: the scan found it `printable` (no raw line break, no U+2028/U+2029,
    /// no escaped key; the scan's cap kept it within `max_field_bytes`, so no string needs
    /// cutting), it has no duplicate keys, and `type` and `value` are strings.
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
                Some(_) => return None,
                None => {
                    let k = key(m);
                    let dup = members[..i]
                        .iter()
                        .enumerate()
                        .any(|(j, o)| key_members & (1 << j) == 0 && key(o) == k);
                    if dup {
                        return None;
                    }
                }
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

    /// Same as [`identity`] for a parsed record.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::event::{MAX_EVENT_BYTES, TRUNCATED_FIELD, encode_into};

    /// Encodes one record as a line (no newline), key fields first, strings capped.
    pub(super) fn encode(obj: &Map<String, Value>, max_field_bytes: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(512);
        encode_into(obj, max_field_bytes, &mut out);
        out
    }
    use serde_json::json;

    /// [`find`], then [`Found::element`], as a page's caller does.
    pub(super) fn next_element<'a>(
        rest: &'a str,
        eof: bool,
        max_field_bytes: usize,
        members: &'a mut Members,
    ) -> Result<Option<(Element<'a>, usize)>, page::Error> {
        Ok(find(rest, eof, max_field_bytes, members)?.map(|(found, n)| (found.element(), n)))
    }

    /// Whether `text` takes the fast path.
    fn fast(text: &str, max_field_bytes: usize) -> bool {
        Raw::parse(text, max_field_bytes, &mut Members::default()).is_some()
    }

    fn enc(v: Value) -> (Vec<u8>, Value) {
        let line = encode(validate(&v).unwrap(), 8192);
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
        let (line, back) = enc(json!({"type": "url", "value": "v", "tags": many}));
        assert!(line.len() <= MAX_EVENT_BYTES);
        assert_eq!(back["type"], "url");
        assert!(back.get("tags").is_none());
    }

    #[test]
    fn cut_never_splits_a_character() {
        let s = "é".repeat(10_000);
        let (_, back) = enc(json!({"type": "url", "value": s}));
        assert!(back["value"].as_str().unwrap().contains("[truncated"));
    }

    #[test]
    fn invalid_records_are_named() {
        assert_eq!(validate(&json!([1])).unwrap_err(), Skip::NotAnObject);
        assert_eq!(
            validate(&json!({"type": 4, "value": "x"})).unwrap_err(),
            Skip::MissingString("type")
        );
        assert_eq!(
            validate(&json!({"type": "ipv4"})).unwrap_err(),
            Skip::MissingString("value")
        );
    }

    #[test]
    fn the_fast_path_prints_what_the_general_path_prints() {
        let cases = [
            json!({"id": "x", "zz": {"a": [1, null, "q\\\"uote"]}, "value": "1.2.3.4", "type": "ipv4", "last_seen": "2026-01-01T00:00:00Z"}),
            json!({"type": "url", "value": "http://a/é", "k-ey": true, "n": 1.5e3, "s": "q\"\u{1}"}),
            json!({"value": "v", "type": "domain", "id": null}),
        ];
        for v in cases {
            let text = serde_json::to_string(&v).unwrap();
            let mut members = Members::default();
            let raw = Raw::parse(&text, 8192, &mut members).expect("fast path");
            let mut fast = Vec::new();
            raw.encode_into(&mut fast);
            assert_eq!(
                String::from_utf8(fast).unwrap(),
                String::from_utf8(encode(validate(&v).unwrap(), 8192)).unwrap()
            );
            assert_eq!(raw.identity(), identity(v.as_object().unwrap()));
        }
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
            let v: Value = serde_json::from_str(text).unwrap();
            let general = encode(validate(&v).unwrap(), 8192);
            assert_eq!(
                String::from_utf8(fast).unwrap(),
                String::from_utf8(general).unwrap()
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
        // An escaped key, a record with more members than the scan notes.
        assert!(!fast(r#"{"type":"url","value":"a","k\"ey":1}"#, 8192));
        let wide = (0..MAX_MEMBERS)
            .map(|i| format!(r#","k{i}":{i}"#))
            .collect::<String>();
        let wide = format!(r#"{{"type":"url","value":"a"{wide}}}"#);
        assert!(!fast(&wide, 8192));
        assert!(!fast(&wide.replacen(r#","k0":0"#, "", 1), 8192));
        assert!(fast(&wide.replacen(r#","k0":0,"k1":1"#, "", 1), 8192));
    }

    #[test]
    fn key_fields_are_matched_in_their_order() {
        for (i, k) in KEY_FIELDS.iter().enumerate() {
            assert_eq!(key_field(k.as_bytes()), Some(i));
        }
        assert_eq!(key_field(b"types"), None);
    }

    #[test]
    fn elements_are_found_in_one_pass_or_asked_for_more() {
        let mut m = Members::default();
        let buf = r#"{"type":"ipv4","value":"1.1.1.1"},{"type":4}"#;
        let Some((Element::Plain(r), n)) = next_element(buf, false, 8192, &mut m).unwrap() else {
            panic!()
        };
        assert_eq!((n, r.str("value").unwrap().as_ref()), (33, "1.1.1.1"));
        assert!(
            next_element(&buf[..20], false, 8192, &mut Members::default())
                .unwrap()
                .is_none()
        );
        // An object ends with its brace, even at the end of the bytes read so far; a number
        // there may go on in the next chunk.
        assert!(matches!(
            next_element(&buf[..33], false, 8192, &mut Members::default()).unwrap(),
            Some((Element::Plain(_), 33))
        ));
        assert!(
            next_element("12", false, 8192, &mut Members::default())
                .unwrap()
                .is_none()
        );
        assert!(matches!(
            next_element("12", true, 8192, &mut Members::default()).unwrap(),
            Some((Element::Other("12"), 2))
        ));
        let Some((Element::Other(b), n)) = next_element(&buf[34..], true, 8192, &mut m).unwrap()
        else {
            panic!()
        };
        assert_eq!((b, n), (r#"{"type":4}"#, 10));
        let Some((Element::Other(b), _)) = next_element(" [1, 2] ,", false, 8192, &mut m).unwrap()
        else {
            panic!()
        };
        assert_eq!(b, " [1, 2]");
        // Invalid UTF-8 never gets here: page::stream replaces it as it reads.
    }

    #[test]
    fn non_ascii_between_elements_fails_the_page_without_a_panic() {
        for body in [
            "{\"data\":[\u{e9}]}",
            "{\"data\":[{\"type\":\"url\",\"value\":\"v\"}\u{e9}]}",
            "{\"data\":[{\"type\":\"url\",\"value\":\"v\"} \u{1f600}, 1]}",
            "{\"data\":[1\u{2028}]}",
        ] {
            for step in [1, 3, 64] {
                let mut m = Members::default();
                let r = page::stream(
                    page::Trickle(body.as_bytes(), step),
                    u64::MAX,
                    |rest, eof| {
                        // As run.rs does: an element that is not JSON fails the page.
                        let found = next_element(rest, eof, 8192, &mut m)
                            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
                        if let Some((Element::Other(text), _)) = &found {
                            page::parse_element(text).map_err(|e| anyhow::anyhow!("{e:?}"))?;
                        }
                        Ok(found.map(|(_, n)| n))
                    },
                );
                assert!(r.is_err(), "{body:?} step {step}");
            }
        }
    }

    #[test]
    fn identity_falls_back_to_type_and_value() {
        let v = json!({"type": "ipv4", "value": "1.1.1.1"});
        assert_eq!(identity(v.as_object().unwrap()), "ipv4:1.1.1.1");
    }
}

/// Differential test of the whole hot path against plain serde_json on random pages.
#[cfg(test)]
mod differential {
    use super::super::page;
    use super::*;
    use std::io::Read;
    use tests::{encode, next_element};

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
        // U+2028 only on some pages, so pages without it reach the fast path with U+2013
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
        // sometimes escape a plain letter too, as some servers do
        if r.below(5) == 0 {
            json.replacen('a', "\\u0061", 1)
        } else {
            json
        }
    }

    fn value(r: &mut Rng, depth: u32) -> String {
        match if depth > 2 { r.below(4) } else { r.below(7) } {
            0 => string(r),
            1 => ["0", "-12", "3.5e2", "1E-3", "12345678901234"][r.below(5) as usize].to_string(),
            2 => ["true", "false", "null"][r.below(3) as usize].to_string(),
            3 => string(r),
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
            members.push(format!(
                "\"type\":{}",
                if r.below(12) == 0 {
                    "4".into()
                } else {
                    string(r)
                }
            ));
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

    struct Chunks<'a>(&'a [u8], Rng);
    impl Read for Chunks<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let n = (1 + self.1.below(300) as usize)
                .min(self.0.len())
                .min(out.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    /// What the general path prints for a record (None: skipped as invalid).
    fn reference(v: &Value) -> Option<Value> {
        let obj = validate(v).ok()?;
        Some(serde_json::from_slice(&encode(obj, 8192)).unwrap())
    }

    #[test]
    fn streaming_fast_path_matches_serde_and_the_general_path() {
        let mut r = Rng(0x9E37_79B9_7F4A_7C15);
        let mut plain_seen = 0;
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
            let sum = page::stream(
                Chunks(body.as_bytes(), Rng(case + 1)),
                u64::MAX,
                |rest, eof| {
                    let Some((el, used)) = next_element(rest, eof, 8192, &mut m)
                        .map_err(|e| anyhow::anyhow!("{e:?}"))?
                    else {
                        return Ok(None);
                    };
                    got.push(match el {
                        Element::Plain(raw) => {
                            plain_seen += 1;
                            let mut line = Vec::new();
                            raw.encode_into(&mut line);
                            assert!(
                                one_line(&line),
                                "case {case}: {}",
                                String::from_utf8_lossy(&line)
                            );
                            Some(serde_json::from_slice(&line).unwrap())
                        }
                        Element::Other(text) => {
                            let v = page::parse_element(text).unwrap();
                            if let Ok(obj) = validate(&v) {
                                assert!(one_line(&encode(obj, 8192)), "case {case}");
                            }
                            reference(&v)
                        }
                    });
                    Ok(Some(used))
                },
            )
            .unwrap_or_else(|e| panic!("case {case}: {e:?}\n{body}"));
            assert_eq!(sum.count, n, "case {case}");
            assert_eq!(got, want, "case {case}\n{body}");
        }
        assert!(
            plain_seen > 100,
            "the fast path was exercised ({plain_seen})"
        );
    }
}

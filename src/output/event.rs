//! Output events: one compact JSON object per line, always, and never longer than
//! [`MAX_EVENT_BYTES`].
//!
//! The key fields go first because Splunk's automatic JSON extraction stops after 5,000 bytes.
//! Strings are escaped so that an event is one line (newlines, `\r`, NUL, quotes, U+2028 and
//! U+2029 included); strings longer than `max_field_bytes` are cut with a marker and the event
//! gets [`TRUNCATED_FIELD`]; an event that would still exceed [`MAX_EVENT_BYTES`] keeps only
//! its key fields, so no event can exceed the sourcetype's `TRUNCATE`.

use crate::json;

/// Longest line this program prints, newline excluded. props.conf `TRUNCATE` is above it.
pub const MAX_EVENT_BYTES: usize = 90_000;
/// Marks an event in which something was cut.
pub const TRUNCATED_FIELD: &str = "socdefenders_truncated";
/// Fields printed first, in this order, and all that is kept of an oversized record.
pub const KEY_FIELDS: &[&str] = &[
    "type",
    "value",
    "confidence",
    "id",
    "first_seen",
    "last_seen",
];
/// A key field's longest value in an event cut down to its key fields.
pub const KEY_FIELD_CAP: usize = 1024;

/// An event built field by field: key fields first (in [`KEY_FIELDS`] order, whatever order
/// they are given in), then the others in the order written, strings cut at their cap.
#[derive(Clone)]
pub struct Event {
    keys: [Option<(String, usize)>; KEY_FIELDS.len()],
    body: Vec<u8>,
    cut: bool,
    max: usize,
}

impl Event {
    /// An event whose strings are cut at `max_field_bytes`.
    pub fn new(max_field_bytes: usize) -> Event {
        Event {
            keys: Default::default(),
            body: Vec::with_capacity(512),
            cut: false,
            max: max_field_bytes,
        }
    }

    /// A key field's string: `kept` is its start (all of it when `len` is its length).
    pub fn key(&mut self, name: &str, kept: &str, len: usize) {
        let at = KEY_FIELDS
            .iter()
            .position(|k| *k == name)
            .expect("a key field");
        self.keys[at] = Some((kept.to_string(), len));
    }

    fn name(&mut self, name: &str) {
        if !self.body.is_empty() {
            self.body.push(b',');
        }
        json::write_str(&mut self.body, name);
        self.body.push(b':');
    }

    /// A string field, cut at `cap` (at most the event's `max_field_bytes`).
    pub fn str_cap(&mut self, name: &str, kept: &str, len: usize, cap: usize) {
        self.name(name);
        self.cut |= json::write_capped(&mut self.body, kept, len, cap.min(self.max));
    }

    /// A string field, cut at `max_field_bytes`.
    pub fn str(&mut self, name: &str, kept: &str, len: usize) {
        self.str_cap(name, kept, len, usize::MAX);
    }

    /// A field whose value is JSON already (a number, `true`, `null`, an object written by
    /// the caller).
    pub fn raw(&mut self, name: &str, value: &[u8]) {
        self.name(name);
        self.body.extend_from_slice(value);
    }

    /// A list of strings, the items cut at `max_field_bytes`, and the list at `total` bytes
    /// (items past it are left out and the event is marked cut).
    pub fn strs<'a>(
        &mut self,
        name: &str,
        items: impl IntoIterator<Item = (&'a str, usize)>,
        total: usize,
    ) {
        self.name(name);
        self.body.push(b'[');
        let start = self.body.len();
        for (kept, len) in items {
            if self.body.len() - start >= total {
                self.cut = true;
                break;
            }
            if self.body.len() > start {
                self.body.push(b',');
            }
            self.cut |= json::write_capped(&mut self.body, kept, len, self.max);
        }
        self.body.push(b']');
    }

    /// Marks the event as cut (a part of the source was left out).
    pub fn mark_cut(&mut self) {
        self.cut = true;
    }

    fn write_keys(&self, out: &mut Vec<u8>, cap: usize) -> bool {
        let mut cut = false;
        let start = out.len();
        for (k, name) in self.keys.iter().zip(KEY_FIELDS) {
            if let Some((kept, len)) = k {
                if out.len() > start {
                    out.push(b',');
                }
                json::write_str(out, name);
                out.push(b':');
                cut |= json::write_capped(out, kept, *len, cap);
            }
        }
        cut
    }

    /// Appends the line (no newline).
    pub fn finish(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.push(b'{');
        let mut cut = self.write_keys(out, self.max) | self.cut;
        if !self.body.is_empty() {
            if out.len() > start + 1 {
                out.push(b',');
            }
            out.extend_from_slice(&self.body);
        }
        if cut {
            out.extend_from_slice(format!(",\"{TRUNCATED_FIELD}\":true").as_bytes());
        }
        out.push(b'}');
        if out.len() - start <= MAX_EVENT_BYTES {
            return;
        }
        out.truncate(start);
        out.push(b'{');
        self.write_keys(out, KEY_FIELD_CAP);
        cut = true;
        let _ = cut;
        out.extend_from_slice(format!(",\"{TRUNCATED_FIELD}\":true}}").as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_fields_first_strings_cut_and_lines_bounded() {
        let mut e = Event::new(10);
        e.str("note", "a\nb\u{2028}", 6);
        e.key("id", "i", 1);
        e.key("type", "url", 3);
        e.strs("tags", [("x", 1), ("yyyyyyyyyyyyyyy", 15)], 1000);
        e.raw("n", b"1e400");
        let mut out = Vec::new();
        e.finish(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"type":"url","id":"i","note":"a\nb\u2028","tags":["x","yyyyyyyyyy...[truncated 5 bytes]"],"n":1e400,"socdefenders_truncated":true}"#
        );
        let mut e = Event::new(8192);
        e.key("value", "v", 1);
        for i in 0..20 {
            e.str(&format!("f{i}"), &"z".repeat(8192), 8192);
        }
        let mut out = Vec::new();
        e.finish(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"value":"v","socdefenders_truncated":true}"#
        );
    }
}

//! Output events: one compact JSON object per line, always, and never longer than
//! [`MAX_EVENT_BYTES`].
//!
//! The key fields go first because Splunk's automatic JSON extraction stops after 5,000 bytes.
//! serde_json already escapes newlines, `\r`, NUL and quotes; U+2028 and U+2029 are escaped as
//! well so no consumer splits an event on them. Strings longer than `max_field_bytes` are cut
//! with a marker, and an event that would still exceed [`MAX_EVENT_BYTES`] keeps only its key
//! fields, so no event can exceed the sourcetype's `TRUNCATE`.

use std::borrow::Cow;
use std::io;

use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

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
pub const KEY_FIELD_CAP: usize = 1024;

/// Appends one record as a line (no newline) to `out`, writing straight from the parsed
/// record: no copy of it is built, which matters at 10,000 records a page.
pub fn encode_into(obj: &Map<String, Value>, max_field_bytes: usize, out: &mut Vec<u8>) {
    let start = out.len();
    let mut cut = false;
    let mut first = true;
    out.push(b'{');
    for k in KEY_FIELDS {
        if let Some(v) = obj.get(*k) {
            member(out, &mut first, k, v, max_field_bytes, &mut cut);
        }
    }
    for (k, v) in obj {
        if !KEY_FIELDS.contains(&k.as_str()) {
            member(out, &mut first, k, v, max_field_bytes, &mut cut);
        }
    }
    if cut {
        member(
            out,
            &mut first,
            TRUNCATED_FIELD,
            &Value::Bool(true),
            max_field_bytes,
            &mut cut,
        );
    }
    out.push(b'}');
    if out.len() - start <= MAX_EVENT_BYTES {
        return;
    }
    // Still too long (many fields, long arrays): keep the key fields only.
    out.truncate(start);
    let mut small = Map::new();
    for k in KEY_FIELDS {
        if let Some(v) = obj.get(*k) {
            let v = match v {
                Value::String(s) => Value::String(cap_plain(s, KEY_FIELD_CAP).into_owned()),
                other => Value::String(cap_plain(&other.to_string(), KEY_FIELD_CAP).into_owned()),
            };
            small.insert((*k).to_string(), v);
        }
    }
    small.insert(TRUNCATED_FIELD.into(), Value::Bool(true));
    out.extend_from_slice(&to_line(&Value::Object(small)));
}

fn member(out: &mut Vec<u8>, first: &mut bool, key: &str, v: &Value, max: usize, cut: &mut bool) {
    if !*first {
        out.push(b',');
    }
    *first = false;
    string(out, key, 256, cut);
    out.push(b':');
    value(out, v, max, cut);
}

fn value(out: &mut Vec<u8>, v: &Value, max: usize, cut: &mut bool) {
    match v {
        Value::String(s) => string(out, s, max, cut),
        Value::Array(a) => {
            out.push(b'[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                value(out, x, max, cut);
            }
            out.push(b']');
        }
        Value::Object(o) => {
            out.push(b'{');
            let mut first = true;
            for (k, x) in o {
                member(out, &mut first, k, x, max, cut);
            }
            out.push(b'}');
        }
        scalar => {
            let mut ser = serde_json::Serializer::with_formatter(&mut *out, LineFormatter);
            scalar
                .serialize(&mut ser)
                .expect("writing to a Vec cannot fail");
        }
    }
}

fn string(out: &mut Vec<u8>, s: &str, max: usize, cut: &mut bool) {
    let s = if s.len() > max {
        *cut = true;
        cap_plain(s, max)
    } else {
        Cow::Borrowed(s)
    };
    let mut ser = serde_json::Serializer::with_formatter(&mut *out, LineFormatter);
    ser.serialize_str(&s).expect("writing to a Vec cannot fail");
}

pub fn cap_plain(s: &str, max: usize) -> Cow<'_, str> {
    if s.len() <= max {
        return Cow::Borrowed(s);
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!(
        "{}...[truncated {} bytes]",
        &s[..end],
        s.len() - end
    ))
}

/// Compact JSON with U+2028/U+2029 escaped.
pub fn to_line(v: &Value) -> Vec<u8> {
    let mut buf = Vec::with_capacity(512);
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, LineFormatter);
    v.serialize(&mut ser).expect("a Value always serializes");
    buf
}

struct LineFormatter;

impl serde_json::ser::Formatter for LineFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut rest = fragment;
        while let Some(pos) = rest.find(['\u{2028}', '\u{2029}']) {
            w.write_all(&rest.as_bytes()[..pos])?;
            let c = rest[pos..].chars().next().expect("found a char");
            write!(w, "\\u{:04x}", c as u32)?;
            rest = &rest[pos + c.len_utf8()..];
        }
        w.write_all(rest.as_bytes())
    }
}

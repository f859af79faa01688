//! A STIX object turned into events, with bounded output.
//!
//! An indicator whose STIX pattern is made only of `OR`ed simple equalities on the paths we
//! map (`ipv4-addr:value`, `file:hashes.'SHA-256'`, ...; hashes only of their hash's shape)
//! becomes one event per value, with the REST events' `type` vocabulary; any other pattern
//! (or a pattern in another language) becomes one `stix-pattern` event carrying the pattern.
//! A vulnerability becomes one `cve` event per CVE reference. Other objects are counted, not
//! printed.
//!
//! Bounds: an object yields at most [`MAX_EVENTS`] events; an indicator with more values
//! becomes one `stix-pattern` event, with a warning. When an object yields several events,
//! each carries the pattern, `name` and `context` cut to [`SHARED_BYTES`] and each list cut
//! to [`SHARED_BYTES`] (the whole pattern is not copied into every value's event), so such an
//! event is at most about 2.5 KiB besides its value. Every event obeys the event bounds of
//! `output::event`.

use super::objects::{Obj, Text, Texts};
use super::pattern;
use crate::output::event::Event;
use crate::timeutil;

/// Most events one object yields.
pub const MAX_EVENTS: usize = 1000;
/// What each event of a several-event object keeps of the pattern, `name`, `context` and
/// each list.
pub const SHARED_BYTES: usize = 256;

/// What an object became.
pub enum Converted {
    /// Its events, written one at a time by the caller (so that an object of 1,000 values
    /// is never held whole as text).
    Events(Box<Events>),
    /// An object of a type that is not turned into events.
    Skipped(String),
    /// An indicator that is not usable: why.
    Invalid(String),
    /// Not an object, or no `id` or `type`.
    Malformed,
}

fn text(t: &Option<Text>) -> Option<(&str, usize)> {
    t.as_ref().map(|t| (t.kept.as_str(), t.len))
}

/// STIX 2.1 Appendix A, high/medium/low scale.
fn confidence_word(c: i64) -> &'static str {
    match c {
        70.. => "high",
        30..=69 => "medium",
        _ => "low",
    }
}

/// The fields every event of `o` shares; `shared` when there are several events.
fn base(o: &Obj, collection: &str, now_ms: i64, max_field: usize, shared: bool) -> Event {
    let cap = if shared { SHARED_BYTES } else { usize::MAX };
    let list = if shared { SHARED_BYTES } else { usize::MAX };
    let mut e = Event::new(max_field);
    let id = text(&o.id).unwrap_or(("", 0));
    e.key("id", id.0, id.1);
    if let Some(c) = o.confidence {
        let w = confidence_word(c);
        e.key("confidence", w, w.len());
        e.raw("confidence_score", c.to_string().as_bytes());
    }
    let first = text(&o.valid_from).or(text(&o.created));
    let last = text(&o.modified).or(text(&o.created));
    for (name, v) in [("first_seen", first), ("last_seen", last)] {
        match v {
            Some((t, n)) => e.key(name, t, n),
            None => e.key(name, "", 0),
        }
    }
    e.str("stix_id", id.0, id.1);
    let (kind, kn) = text(&o.kind).unwrap_or(("", 0));
    e.str("stix_type", kind, kn);
    e.str("collection", collection, collection.len());
    if let Some((n, len)) = text(&o.name) {
        e.str_cap("name", n, len, cap);
    }
    if let Some((d, len)) = text(&o.description).or(text(&o.name)) {
        e.str_cap("context", d, len, cap);
    }
    fn strs(t: &Texts) -> Vec<(&str, usize)> {
        t.items.iter().map(|x| (x.kept.as_str(), x.len)).collect()
    }
    e.strs("tags", strs(&o.labels), list);
    let mitre: Vec<(&str, usize)> = o
        .refs
        .iter()
        .filter(|(s, _)| s.kept.starts_with("mitre"))
        .map(|(_, x)| (x.kept.as_str(), x.len))
        .collect();
    e.strs("mitre_techniques", mitre, list);
    e.raw("revoked", if o.revoked { b"true" } else { b"false" });
    let until = text(&o.valid_until);
    if kind == "indicator" {
        for (name, v) in [("valid_from", text(&o.valid_from)), ("valid_until", until)] {
            match v {
                Some((t, n)) => e.str(name, t, n),
                None => e.raw(name, b"null"),
            }
        }
        e.strs("indicator_types", strs(&o.indicator_types), list);
    }
    let expired = until
        .and_then(|(t, _)| timeutil::parse_ms(t))
        .is_some_and(|t| t < now_ms);
    e.raw("expired", if expired { b"true" } else { b"false" });
    let mut source = Vec::new();
    source.extend_from_slice(b"{\"feed_name\":");
    crate::json::write_capped(&mut source, collection, collection.len(), 256);
    source.extend_from_slice(b",\"origin\":\"taxii\"}");
    e.raw("source", &source);
    if o.labels.dropped > 0 || o.indicator_types.dropped > 0 {
        e.mark_cut();
    }
    e
}

/// An object's events: one per (type, value, the value's full length), sharing `base`.
pub struct Events {
    base: Event,
    id: String,
    values: Vec<(&'static str, String, usize)>,
    /// A warning about the object (too many values, a pattern over the limit).
    pub note: Option<String>,
}

impl Events {
    fn new(base: Event, id: &Text, values: Vec<(&'static str, String, usize)>) -> Events {
        Events {
            base,
            id: id.kept.clone(),
            values,
            note: None,
        }
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Appends event `i`, with its newline, to `out`.
    pub fn write(&self, i: usize, out: &mut Vec<u8>) {
        let n = self.values.len();
        let (ty, v, len) = &self.values[i];
        let mut e = self.base.clone();
        e.key("type", ty, ty.len());
        e.key("value", v, *len);
        if n > 1 {
            let own = format!("{}#{i}", self.id);
            e.key("id", &own, own.len());
            e.raw("pattern_values", n.to_string().as_bytes());
        }
        e.finish(out);
        out.push(b'\n');
    }
}

/// The events of an indicator.
fn indicator(o: &Obj, collection: &str, now_ms: i64, max_field: usize) -> Converted {
    let Some(pat) = &o.pattern else {
        return Converted::Invalid("has no pattern".into());
    };
    let id = o.id.clone().unwrap_or_default();
    let pattern_type = text(&o.pattern_type).unwrap_or(("stix", 4));
    // The object as one stix-pattern event: the pattern is its value.
    let whole = |note: Option<String>| {
        let mut e = base(o, collection, now_ms, max_field, false);
        e.str("pattern", &pat.kept, pat.len);
        e.str("pattern_type", pattern_type.0, pattern_type.1);
        let mut events = Events::new(e, &id, vec![("stix-pattern", pat.kept.clone(), pat.len)]);
        events.note = note;
        Converted::Events(Box::new(events))
    };
    if pattern_type.0 != "stix" {
        return whole(None);
    }
    if pat.cut() {
        return whole(Some(format!(
            "the pattern of STIX object {} is {} bytes, over the {} KiB this input parses; it was printed as one stix-pattern event",
            id.kept,
            pat.len,
            pattern::MAX_PATTERN_BYTES / 1024
        )));
    }
    let ast = match pattern::parse(&pat.kept) {
        Ok(a) => a,
        Err(e) => return Converted::Invalid(format!("has an invalid STIX pattern ({e})")),
    };
    let Some(values) = pattern::equalities(&ast) else {
        return whole(None);
    };
    if values.len() > MAX_EVENTS {
        return whole(Some(format!(
            "STIX object {} has {} values, more than the {MAX_EVENTS} events one object may give; it was printed as one stix-pattern event",
            id.kept,
            values.len()
        )));
    }
    let shared = values.len() > 1;
    let mut e = base(o, collection, now_ms, max_field, shared);
    e.str_cap(
        "pattern",
        &pat.kept,
        pat.len,
        if shared { SHARED_BYTES } else { usize::MAX },
    );
    e.str("pattern_type", pattern_type.0, pattern_type.1);
    let values = values
        .iter()
        .map(|&(t, v)| (t, v.to_string(), v.len()))
        .collect();
    Converted::Events(Box::new(Events::new(e, &id, values)))
}

/// What the object `o` of the collection titled `collection` becomes.
pub fn convert(o: &Obj, collection: &str, now_ms: i64, max_field: usize) -> Converted {
    let (Some(kind), Some(_)) = (&o.kind, &o.id) else {
        return Converted::Malformed;
    };
    if o.not_object {
        return Converted::Malformed;
    }
    match kind.kept.as_str() {
        "indicator" => indicator(o, collection, now_ms, max_field),
        "vulnerability" => {
            let cves: Vec<(&str, String, usize)> = o
                .refs
                .iter()
                .filter(|(s, _)| s.kept == "cve")
                .map(|(_, x)| ("cve", x.kept.clone(), x.len))
                .collect();
            if cves.is_empty() {
                return Converted::Skipped("vulnerability without CVE".into());
            }
            let e = base(o, collection, now_ms, max_field, cves.len() > 1);
            Converted::Events(Box::new(Events::new(
                e,
                o.id.as_ref().expect("checked"),
                cves,
            )))
        }
        other => Converted::Skipped(crate::json::prefix(other, 64).to_string()),
    }
}

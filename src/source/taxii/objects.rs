//! A TAXII page of objects, streamed: the specification's envelope `{"more", "next",
//! "objects"}` or SOC Defenders' STIX bundle `{"type": "bundle", "objects"}`, keys in any
//! order. Each element of `objects` is read into an [`Obj`] that keeps only what the events
//! need, each part bounded, and handed on at once; nothing else of the page is held.
//!
//! Bounds per object: `pattern` up to [`MAX_PATTERN_BYTES`] (its full length is counted),
//! `name` and `description` up to `max_field_bytes`, identifiers and timestamps up to a few
//! hundred bytes, each list up to [`LIST_ITEMS`] strings and [`LIST_BYTES`] bytes, and up to
//! [`LIST_ITEMS`] external references that name a CVE or a MITRE technique.

use std::io::Read;

use crate::json::{Bounded, Error, Flags, Input};
use crate::source::taxii::pattern::MAX_PATTERN_BYTES;

/// Most strings kept of one list (labels, indicator_types), and of references kept.
pub const LIST_ITEMS: usize = 100;
/// Most bytes kept of one list.
pub const LIST_BYTES: usize = 8 * 1024;
/// Identifiers, types and timestamps are short; longer ones are cut to this.
const SHORT: usize = 256;

/// A string as read: its start, and its full length.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Text {
    pub kept: String,
    pub len: usize,
}

impl Text {
    pub fn cut(&self) -> bool {
        self.len > self.kept.len()
    }
}

/// A list of strings as read, with how many were not kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Texts {
    pub items: Vec<Text>,
    pub dropped: usize,
}

/// What the events need of one element of `objects`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Obj {
    /// The element is not a JSON object.
    pub not_object: bool,
    pub kind: Option<Text>,
    pub id: Option<Text>,
    pub created: Option<Text>,
    pub modified: Option<Text>,
    pub valid_from: Option<Text>,
    pub valid_until: Option<Text>,
    pub pattern: Option<Text>,
    pub pattern_type: Option<Text>,
    pub name: Option<Text>,
    pub description: Option<Text>,
    /// An integer `confidence`, as written.
    pub confidence: Option<i64>,
    pub revoked: bool,
    pub labels: Texts,
    pub indicator_types: Texts,
    /// `(source_name, external_id)` of external references to a CVE or a MITRE technique.
    pub refs: Vec<(Text, Text)>,
    /// Strings held escaped lone surrogates (read as U+FFFD).
    pub surrogates: bool,
}

impl Obj {
    /// The version of the object: `modified`, else `created`.
    pub fn version(&self) -> &str {
        self.modified
            .as_ref()
            .or(self.created.as_ref())
            .map_or("", |t| t.kept.as_str())
    }
}

/// What the page said besides its objects.
#[derive(Debug, Default, PartialEq)]
pub struct PageMeta {
    pub more: Option<bool>,
    pub next: Option<String>,
    /// `"type": "bundle"`: SOC Defenders' paging.
    pub bundle: bool,
    pub count: usize,
    /// Invalid UTF-8 or escaped lone surrogates were read as U+FFFD.
    pub replaced: bool,
}

/// Reads a page, handing each object to `each` as soon as it is read.
pub fn stream<R: Read>(
    r: R,
    limit: u64,
    hint: Option<usize>,
    max_field_bytes: usize,
    mut each: impl FnMut(Obj) -> anyhow::Result<()>,
) -> Result<PageMeta, Error> {
    let mut inp = Input::new(r, limit, hint);
    let mut meta = PageMeta::default();
    let mut flags = Flags::default();
    inp.members(&mut flags, |inp, key, flags| match key {
        "objects" if inp.peek()? != Some(b'[') => {
            Err(Error::Malformed("\"objects\" is not a list".into()))
        }
        "objects" => inp.items("a list", |inp| {
            let obj = object(inp, max_field_bytes, flags)?;
            meta.count += 1;
            each(obj).map_err(Error::Sink)
        }),
        "more" if matches!(inp.peek()?, Some(b't' | b'f')) => {
            let mut b = Bounded::new(8);
            inp.value(Some(&mut b), 0, flags)?;
            meta.more = Some(b.buf == b"true");
            Ok(())
        }
        "next" if inp.peek()? == Some(b'"') => {
            meta.next = Some(text(inp, 1024, flags)?.kept);
            Ok(())
        }
        "type" if inp.peek()? == Some(b'"') => {
            meta.bundle = text(inp, 16, flags)?.kept == "bundle";
            Ok(())
        }
        _ => inp.value(None, 0, flags),
    })?;
    if let Some(c) = inp.peek()? {
        return Err(Error::Malformed(format!(
            "unexpected {:?} after the JSON object",
            c as char
        )));
    }
    meta.replaced = inp.replaced || flags.surrogates;
    Ok(meta)
}

fn text<R: Read>(inp: &mut Input<R>, cap: usize, flags: &mut Flags) -> Result<Text, Error> {
    let mut kept = String::new();
    let s = inp.string(&mut kept, cap)?;
    flags.surrogates |= s.surrogates;
    Ok(Text { kept, len: s.len })
}

/// A string member, or `None` (the value skipped) when it is not a string.
fn opt_text<R: Read>(
    inp: &mut Input<R>,
    cap: usize,
    flags: &mut Flags,
) -> Result<Option<Text>, Error> {
    if inp.peek()? == Some(b'"') {
        return text(inp, cap, flags).map(Some);
    }
    inp.value(None, 0, flags)?;
    Ok(None)
}

/// A list of strings, bounded; other elements are skipped.
fn texts<R: Read>(inp: &mut Input<R>, flags: &mut Flags) -> Result<Texts, Error> {
    let mut out = Texts::default();
    if inp.peek()? != Some(b'[') {
        inp.value(None, 0, flags)?;
        return Ok(out);
    }
    let mut bytes = 0;
    inp.items("a list", |inp| {
        let room = LIST_BYTES.saturating_sub(bytes);
        if inp.peek()? != Some(b'"') || out.items.len() >= LIST_ITEMS || room == 0 {
            out.dropped += 1;
            return inp.value(None, 0, flags);
        }
        let t = text(inp, room.min(SHORT * 4), flags)?;
        bytes += t.kept.len();
        out.items.push(t);
        Ok(())
    })?;
    Ok(out)
}

/// The external references that name a CVE or a MITRE technique.
fn refs<R: Read>(inp: &mut Input<R>, flags: &mut Flags) -> Result<Vec<(Text, Text)>, Error> {
    let mut out = Vec::new();
    if inp.peek()? != Some(b'[') {
        inp.value(None, 0, flags)?;
        return Ok(out);
    }
    inp.items("a list", |inp| {
        if inp.peek()? != Some(b'{') || out.len() >= LIST_ITEMS {
            return inp.value(None, 0, flags);
        }
        let (mut source, mut ext) = (None, None);
        inp.members(flags, |inp, key, flags| {
            match key {
                "source_name" => source = opt_text(inp, 64, flags)?,
                "external_id" => ext = opt_text(inp, 128, flags)?,
                _ => inp.value(None, 0, flags)?,
            }
            Ok(())
        })?;
        if let (Some(s), Some(e)) = (source, ext)
            && (s.kept == "cve" || s.kept.starts_with("mitre"))
        {
            out.push((s, e));
        }
        Ok(())
    })?;
    Ok(out)
}

/// One element of `objects`.
fn object<R: Read>(
    inp: &mut Input<R>,
    max_field_bytes: usize,
    flags: &mut Flags,
) -> Result<Obj, Error> {
    let mut o = Obj::default();
    if inp.peek()? != Some(b'{') {
        inp.value(None, 0, flags)?;
        o.not_object = true;
        return Ok(o);
    }
    let mut own = Flags::default();
    inp.members(&mut own, |inp, key, f| {
        match key {
            "type" => o.kind = opt_text(inp, SHORT, f)?,
            "id" => o.id = opt_text(inp, SHORT, f)?,
            "created" => o.created = opt_text(inp, 64, f)?,
            "modified" => o.modified = opt_text(inp, 64, f)?,
            "valid_from" => o.valid_from = opt_text(inp, 64, f)?,
            "valid_until" => o.valid_until = opt_text(inp, 64, f)?,
            "pattern" => o.pattern = opt_text(inp, MAX_PATTERN_BYTES, f)?,
            "pattern_type" => o.pattern_type = opt_text(inp, 64, f)?,
            "name" => o.name = opt_text(inp, max_field_bytes, f)?,
            "description" => o.description = opt_text(inp, max_field_bytes, f)?,
            "labels" => o.labels = texts(inp, f)?,
            "indicator_types" => o.indicator_types = texts(inp, f)?,
            "external_references" => o.refs = refs(inp, f)?,
            "confidence" if matches!(inp.peek()?, Some(b'-' | b'0'..=b'9')) => {
                let mut n = Bounded::new(24);
                inp.number(&mut n)?;
                o.confidence = std::str::from_utf8(&n.buf)
                    .ok()
                    .and_then(|s| s.parse().ok());
            }
            "revoked" if matches!(inp.peek()?, Some(b't' | b'f')) => {
                let mut b = Bounded::new(8);
                inp.value(Some(&mut b), 0, f)?;
                o.revoked = b.buf == b"true";
            }
            _ => inp.value(None, 0, f)?,
        }
        Ok(())
    })?;
    // Reported per object, not again for the page.
    o.surrogates = own.surrogates;
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::input::Trickle;

    fn read(body: &str, step: usize) -> Result<(Vec<Obj>, PageMeta), Error> {
        let mut objs = Vec::new();
        let meta = stream(Trickle(body.as_bytes(), step), u64::MAX, None, 8192, |o| {
            objs.push(o);
            Ok(())
        })?;
        Ok((objs, meta))
    }

    #[test]
    fn envelopes_and_bundles_in_any_key_order() {
        let ind = r#"{"type":"indicator","id":"indicator--1","modified":"2026-01-01T00:00:00.000Z","pattern":"[a:b = 'c']","pattern_type":"stix","confidence":85,"labels":["c2",7,"x"],"revoked":true,"external_references":[{"source_name":"mitre-attack","external_id":"T1071","url":"u"},{"source_name":"other","external_id":"z"}],"extensions":{"x":[1,{"y":null}]}}"#;
        for body in [
            format!(r#"{{"objects":[{ind},"junk",{{}}],"more":true,"next":"tok"}}"#),
            format!(r#"{{"more":true,"next":"tok","objects":[{ind},"junk",{{}}]}}"#),
        ] {
            for step in [1, 7, 4096] {
                let (objs, meta) = read(&body, step).unwrap();
                assert_eq!(
                    meta,
                    PageMeta {
                        more: Some(true),
                        next: Some("tok".into()),
                        bundle: false,
                        count: 3,
                        replaced: false
                    }
                );
                let o = &objs[0];
                assert_eq!(o.id.as_ref().unwrap().kept, "indicator--1");
                assert_eq!(o.confidence, Some(85));
                assert!(o.revoked);
                assert_eq!(o.labels.items.len(), 2);
                assert_eq!(o.labels.dropped, 1);
                assert_eq!(o.refs.len(), 1);
                assert_eq!(o.refs[0].1.kept, "T1071");
                assert!(objs[1].not_object);
                assert_eq!(objs[2], Obj::default());
            }
        }
        let (_, meta) = read(r#"{"type":"bundle","id":"bundle--1","objects":[]}"#, 3).unwrap();
        assert!(meta.bundle && meta.more.is_none());
    }

    #[test]
    fn parts_are_bounded_and_broken_pages_fail() {
        let big = "x".repeat(1 << 20);
        let body = format!(
            r#"{{"objects":[{{"id":"i","description":"{big}","pattern":"{big}","labels":[{}]}}]}}"#,
            vec!["\"l\""; 10_000].join(",")
        );
        let (objs, _) = read(&body, 65536).unwrap();
        let o = &objs[0];
        assert_eq!(
            (
                o.description.as_ref().unwrap().kept.len(),
                o.description.as_ref().unwrap().len
            ),
            (8192, 1 << 20)
        );
        assert_eq!(o.pattern.as_ref().unwrap().kept.len(), MAX_PATTERN_BYTES);
        assert_eq!(
            (o.labels.items.len(), o.labels.dropped),
            (LIST_ITEMS, 10_000 - LIST_ITEMS)
        );
        for bad in [
            r#"{"objects":[{"id":"i"}"#,
            r#"{"objects":[1 2]}"#,
            "[1]",
            r#"{"objects":{}}"#,
            r#"{"objects":[]} x"#,
        ] {
            assert!(read(bad, 3).is_err(), "{bad}");
        }
    }
}

//! A REST page, streamed: `{"data": [ ... ], "meta": {...}, "links": {...}}` in any order.
//!
//! The body is read through a [`json::Input`]. Each element of `data` is handed to the
//! caller at its first byte, and the caller consumes exactly that element (the fast path
//! scans it in the buffer, anything else is streamed; see `record`). Of `meta`, only
//! `total` (a plain unsigned integer) and `generated_at` are kept; of `links`, whether `next`
//! names a page; anything else there, and any other key, is read only to check it is JSON,
//! so no content of `meta` or `links` can fail a page or take memory. The page fails only
//! when the body is not JSON, is cut short, or has no `data` list.
//!
//! The caller keeps the page's output aside until [`stream`] returns `Ok`, so a body that
//! turns out malformed halfway prints nothing.

use std::io::Read;

use crate::json::{self, Bounded, Flags, Input};
pub use json::Error;

/// What the page said besides its records.
#[derive(Debug, Default, PartialEq)]
pub struct Summary {
    /// Elements of `data`, records or not: they all take a position.
    pub count: u64,
    /// `meta.total`, when it is a plain unsigned integer.
    pub total: Option<u64>,
    /// `links.next`: `Some(true)` when it names a page, `Some(false)` when present but not.
    pub next: Option<bool>,
    /// `meta.generated_at`, up to 64 bytes.
    pub generated_at: Option<String>,
    /// Invalid UTF-8, or outside records an escaped lone surrogate, was read as U+FFFD.
    pub replaced_utf8: bool,
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

/// Reads a page from `r` (at most `limit` bytes; `hint`, its announced length, sizes the
/// first read). `element` is called at the first byte of each element of `data` and must
/// consume exactly that element.
pub fn stream<R: Read>(
    r: R,
    limit: u64,
    hint: Option<usize>,
    mut element: impl FnMut(&mut Input<R>) -> anyhow::Result<()>,
) -> Result<Summary, Error> {
    let mut inp = Input::new(r, limit, hint);
    let mut sum = Summary::default();
    let mut saw_data = false;
    let mut flags = Flags::default();
    inp.members(&mut flags, |inp, key, flags| match key {
        "data" => {
            data(inp, &mut sum, &mut element)?;
            saw_data = true;
            Ok(())
        }
        "meta" => meta(inp, &mut sum, flags),
        "links" => links(inp, &mut sum, flags),
        _ => inp.value(None, 0, flags),
    })?;
    if let Some(b) = inp.peek()? {
        return Err(Error::Malformed(format!(
            "unexpected {:?} after the JSON object",
            b as char
        )));
    }
    if !saw_data {
        return Err(Error::Malformed("there is no \"data\" list".into()));
    }
    sum.replaced_utf8 = inp.replaced || flags.surrogates;
    Ok(sum)
}

/// The `data` list: each element to `element`.
fn data<R: Read>(
    inp: &mut Input<R>,
    sum: &mut Summary,
    element: &mut impl FnMut(&mut Input<R>) -> anyhow::Result<()>,
) -> Result<(), Error> {
    if inp.peek()? != Some(b'[') {
        return Err(Error::Malformed("\"data\" is not a list".into()));
    }
    inp.items("data", |inp| {
        element(inp).map_err(|e| match e.downcast::<Error>() {
            Ok(json) => json,
            Err(other) => Error::Sink(other),
        })?;
        sum.count += 1;
        Ok(())
    })
}

/// The members of an object value, each handed to `member` at its value; anything that is
/// not an object is skipped.
fn members<R: Read>(
    inp: &mut Input<R>,
    flags: &mut Flags,
    member: impl FnMut(&mut Input<R>, &str, &mut Flags) -> Result<(), Error>,
) -> Result<(), Error> {
    if inp.peek()? != Some(b'{') {
        return inp.value(None, 0, flags);
    }
    inp.members(flags, member)
}

fn meta<R: Read>(inp: &mut Input<R>, sum: &mut Summary, flags: &mut Flags) -> Result<(), Error> {
    members(inp, flags, |inp, key, flags| match key {
        "total" if matches!(inp.peek()?, Some(b'0'..=b'9')) => {
            let mut n = Bounded::new(20);
            inp.number(&mut n)?;
            sum.total = (!n.over())
                .then(|| std::str::from_utf8(&n.buf).ok()?.parse().ok())
                .flatten();
            Ok(())
        }
        "generated_at" if inp.peek()? == Some(b'"') => {
            let mut s = String::new();
            let got = inp.string(&mut s, 64)?;
            flags.surrogates |= got.surrogates;
            sum.generated_at = Some(s);
            Ok(())
        }
        _ => inp.value(None, 0, flags),
    })
}

fn links<R: Read>(inp: &mut Input<R>, sum: &mut Summary, flags: &mut Flags) -> Result<(), Error> {
    members(inp, flags, |inp, key, flags| {
        if key == "next" {
            let named = if inp.peek()? == Some(b'"') {
                let got = inp.string(&mut String::new(), 0)?;
                got.len > 0
            } else {
                inp.value(None, 0, flags)?;
                false
            };
            sum.next = Some(named);
            Ok(())
        } else {
            inp.value(None, 0, flags)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::input::Trickle;

    /// Each element's compact text, and the summary.
    fn run(body: &[u8], step: usize) -> Result<(Vec<String>, Summary), Error> {
        let mut got = Vec::new();
        let s = stream(Trickle(body, step), u64::MAX, None, |inp| {
            let mut out = Bounded::new(usize::MAX);
            inp.value(Some(&mut out), 8192, &mut Flags::default())?;
            got.push(String::from_utf8(out.buf).unwrap());
            Ok(())
        })?;
        Ok((got, s))
    }

    #[test]
    fn elements_meta_and_links_in_any_order_and_any_chunking() {
        let body = br#" {"links": {"next": null, "self": "x"}, "data": [ {"a": "x,]}\"y", "n": [1, {"b": 2}]}, "s", 3 , true, null ],
            "meta": {"total": 3, "generated_at": "2026-11-01T00:00:00Z", "x": [1e400]}, "extra": [1, [2]] } "#;
        for step in [1, 2, 3, 7, 64, 100_000] {
            let (got, s) = run(body, step).unwrap();
            assert_eq!(got.len(), 5, "step {step}");
            assert_eq!(got[0], r#"{"a":"x,]}\"y","n":[1,{"b":2}]}"#);
            assert_eq!(got[2], "3");
            assert_eq!(s.total, Some(3));
            assert_eq!(s.next, Some(false));
            assert_eq!(s.generated_at.as_deref(), Some("2026-11-01T00:00:00Z"));
            assert_eq!(s.count, 5);
        }
    }

    #[test]
    fn meta_and_links_content_never_fails_a_page() {
        for body in [
            &br#"{"data":[],"meta":{"total":1e400}}"#[..],
            br#"{"data":[],"meta":{"total":-1,"n":123456789012345678901234567890}}"#,
            br#"{"data":[],"meta":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]}"#,
            br#"{"data":[],"meta":"text","links":7}"#,
            br#"{"data":[],"links":{"next":{"deep":[1,2]}}}"#,
            br#"{"data":[],"meta":{"note":"\udc00"}}"#,
        ] {
            let (_, s) =
                run(body, 3).unwrap_or_else(|e| panic!("{e}: {:?}", std::str::from_utf8(body)));
            assert_eq!(s.total, None, "{:?}", std::str::from_utf8(body));
        }
        let deep = format!(
            r#"{{"data":[],"meta":{{"x":{}1{}}}}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        assert!(run(deep.as_bytes(), 4096).is_ok());
        let (_, s) = run(br#"{"data":[],"meta":{"note":"\udc00"}}"#, 5).unwrap();
        assert!(s.replaced_utf8);
        let (_, s) = run(br#"{"data":[],"links":{"next":"https://x/y"}}"#, 5).unwrap();
        assert_eq!(s.next, Some(true));
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
            b"{\"data\":[],\"meta\":{\"total\":01}}",
        ] {
            assert!(
                matches!(run(body, 3), Err(Error::Malformed(_))),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn invalid_utf8_is_replaced_and_reported() {
        let body = b"{\"data\":[\"bad\xff\xfe\"],\"meta\":{}}";
        for step in [1, 4, 64] {
            let (got, s) = run(body, step).unwrap();
            assert_eq!(got[0], "\"bad\u{fffd}\u{fffd}\"");
            assert!(s.replaced_utf8);
        }
        // A character cut by the end of a read is joined, not replaced.
        let (got, s) = run("{\"data\":[\"é日本\"]}".as_bytes(), 1).unwrap();
        assert_eq!(got[0], "\"é日本\"");
        assert!(!s.replaced_utf8);
    }
}

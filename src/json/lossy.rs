//! Small whole documents (TAXII discovery) parsed with serde_json, escaped lone surrogates
//! read as U+FFFD.

use super::types::Error;

/// Parses one small, whole document (TAXII discovery, an error body) with serde_json,
/// reading an escaped lone UTF-16 surrogate (`"\ud800"`: valid JSON, but not Unicode, so
/// serde_json refuses the whole value) as U+FFFD; says whether it did.
pub fn parse_lossy(text: &str) -> Result<(serde_json::Value, bool), Error> {
    let parse = |t: &str| serde_json::from_str(t).map_err(|e| Error::Malformed(e.to_string()));
    match parse(text) {
        Ok(v) => Ok((v, false)),
        Err(e) => match replace_lone_surrogates(text) {
            Some(fixed) => Ok((parse(&fixed)?, true)),
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
        ] {
            let (v, replaced) = parse_lossy(text).unwrap();
            assert_eq!((v["v"].as_str(), replaced), (Some(want), true), "{text}");
        }
        let (_, replaced) = parse_lossy(r#"{"v":"\ud83d\ude00 \\ud800"}"#).unwrap();
        assert!(!replaced);
        assert!(parse_lossy(r#"{"v":tru}"#).is_err());
    }
}

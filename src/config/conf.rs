//! A reader for Splunk's `.conf` syntax, on bytes, with line numbers for every value.
//!
//! What it accepts is what splunkd accepts for the settings we read: `[stanza]` headers,
//! `key = value` lines, whole-line `#` comments, blank lines, and values continued onto the
//! next line by a trailing backslash. Settings before the first header belong to `[default]`.
//! Anything else is an error naming the line, because a line splunkd would ignore silently is
//! a setting the admin believes is in force.

use std::fmt;

/// One `key = value` with the line it started on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: String,
    pub line: usize,
}

/// A `[name]` section and its entries, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stanza {
    pub name: String,
    pub line: usize,
    pub entries: Vec<Entry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub reason: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

impl std::error::Error for ParseError {}

/// Starts (or, when repeated, resumes) the stanza of the header `[rest` on line `lineno`.
fn open_stanza(
    stanzas: &mut Vec<Stanza>,
    rest: &str,
    header: &str,
    lineno: usize,
) -> Result<(), ParseError> {
    let name = rest.strip_suffix(']').ok_or_else(|| ParseError {
        line: lineno,
        reason: format!("stanza header {:?} has no closing ']'", clip(header)),
    })?;
    let name = name.trim();
    if name.is_empty() {
        return Err(ParseError {
            line: lineno,
            reason: "empty stanza name '[]'".into(),
        });
    }
    match stanzas.iter().position(|s| s.name == name) {
        // A repeated stanza is merged, later keys winning, as splunkd does.
        Some(pos) => {
            let s = stanzas.remove(pos);
            stanzas.push(s);
        }
        None => stanzas.push(Stanza {
            name: name.to_string(),
            line: lineno,
            entries: Vec::new(),
        }),
    }
    Ok(())
}

/// Parses a whole file. Invalid UTF-8 is an error: a setting with a replaced byte is not the
/// setting the admin wrote.
pub fn parse(bytes: &[u8]) -> Result<Vec<Stanza>, ParseError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        ParseError {
            line,
            reason: "not valid UTF-8".into(),
        }
    })?;

    let mut stanzas = vec![Stanza {
        name: "default".into(),
        line: 0,
        entries: Vec::new(),
    }];
    let mut lines = text.split('\n').enumerate().peekable();
    while let Some((idx, raw)) = lines.next() {
        let lineno = idx + 1;
        let mut logical = raw.strip_suffix('\r').unwrap_or(raw).to_string();
        // A trailing backslash continues the line; splunkd keeps the line break in the value.
        while logical.ends_with('\\') {
            logical.pop();
            match lines.next() {
                Some((_, next)) => {
                    logical.push('\n');
                    logical.push_str(next.strip_suffix('\r').unwrap_or(next));
                }
                None => break,
            }
        }
        let trimmed = logical.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix('[') {
            open_stanza(&mut stanzas, rest, trimmed, lineno)?;
            continue;
        }
        let Some((key, value)) = logical.split_once('=') else {
            return Err(ParseError {
                line: lineno,
                reason: format!(
                    "expected 'key = value', a '[stanza]' or a '#' comment, found {:?}",
                    clip(trimmed)
                ),
            });
        };
        let key = key.trim();
        if key.is_empty() {
            return Err(ParseError {
                line: lineno,
                reason: "a value with no key before '='".into(),
            });
        }
        let stanza = stanzas
            .last_mut()
            .expect("the default stanza always exists");
        stanza.entries.retain(|e| e.key != key);
        stanza.entries.push(Entry {
            key: key.to_string(),
            value: value.trim().to_string(),
            line: lineno,
        });
    }
    Ok(stanzas)
}

fn clip(s: &str) -> String {
    s.chars().take(60).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get<'a>(st: &'a [Stanza], name: &str, key: &str) -> Option<&'a Entry> {
        st.iter()
            .find(|s| s.name == name)?
            .entries
            .iter()
            .find(|e| e.key == key)
    }

    #[test]
    fn stanzas_keys_comments_and_blank_lines() {
        let st = parse(b"# top\nlimit = 50\n\n[input:ips]\n  type=ipv4 \n# c = d\n").unwrap();
        assert_eq!(get(&st, "default", "limit").unwrap().value, "50");
        let e = get(&st, "input:ips", "type").unwrap();
        assert_eq!((e.value.as_str(), e.line), ("ipv4", 5));
        assert!(get(&st, "input:ips", "# c").is_none());
    }

    #[test]
    fn continuation_lines_join_with_newline() {
        let st = parse(b"[a]\nk = one \\\ntwo\nz = 1\n").unwrap();
        assert_eq!(get(&st, "a", "k").unwrap().value, "one \ntwo");
        assert_eq!(get(&st, "a", "z").unwrap().line, 4);
    }

    #[test]
    fn crlf_bom_and_empty_values() {
        let st = parse(b"\xEF\xBB\xBF[a]\r\nk = v\r\nempty =\r\n").unwrap();
        assert_eq!(get(&st, "a", "k").unwrap().value, "v");
        assert_eq!(get(&st, "a", "empty").unwrap().value, "");
    }

    #[test]
    fn later_keys_and_repeated_stanzas_win() {
        let st = parse(b"[a]\nk = 1\n[b]\n[a]\nk = 2\n").unwrap();
        assert_eq!(get(&st, "a", "k").unwrap().value, "2");
        assert_eq!(st.iter().filter(|s| s.name == "a").count(), 1);
    }

    #[test]
    fn bad_lines_name_their_line() {
        assert_eq!(parse(b"[a]\nk = 1\njunk\n").unwrap_err().line, 3);
        assert_eq!(parse(b"[a\n").unwrap_err().line, 1);
        assert_eq!(parse(b"[]\n").unwrap_err().line, 1);
        assert_eq!(parse(b"= v\n").unwrap_err().line, 1);
        assert_eq!(parse(b"k = 1\n\xff\n").unwrap_err().line, 2);
    }

    #[test]
    fn value_keeps_inner_equals_and_hashes() {
        let st = parse(b"proxy = http://u:p@h:3128/?a=b#x\n").unwrap();
        assert_eq!(
            get(&st, "default", "proxy").unwrap().value,
            "http://u:p@h:3128/?a=b#x"
        );
    }
}

//! JSON text written and scanned: strings escaped for output lines, cut with the marker,
//! and the string scanner's sixteen-byte step.

use wide::u8x16;

/// The first byte at or after `i` that a string decoder must look at, or the end of `b`: a
/// '"', a '\\' or a control character (invalid in a string). Sixteen bytes at a time.
#[inline]
pub fn next_special(b: &[u8], i: usize) -> usize {
    let Some(rest) = b.get(i..) else {
        return b.len();
    };
    let mut chunks = rest.chunks_exact(16);
    let mut at = i;
    for chunk in &mut chunks {
        let x = u8x16::new(chunk.try_into().expect("16 bytes"));
        let control = x.min(u8x16::splat(0x1F)).simd_eq(x);
        let found =
            (x.simd_eq(u8x16::splat(b'"')) | x.simd_eq(u8x16::splat(b'\\')) | control).to_bitmask();
        if found != 0 {
            return at + found.trailing_zeros() as usize;
        }
        at += 16;
    }
    let tail = chunks.remainder();
    at + tail
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
        .unwrap_or(tail.len())
}

/// Appends `s` as a JSON string: quotes, escapes as serde_json writes them (`\"`, `\\`,
/// `\n`, `\r`, `\t`, `\b`, `\f`, other controls as `\u00XX`), and U+2028/U+2029 escaped so
/// no consumer splits a line on them.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    write_str_body(out, s);
    out.push(b'"');
}

/// [`write_str`] without the quotes.
pub fn write_str_body(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    let mut from = 0;
    for (i, &c) in b.iter().enumerate() {
        let esc: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0C => b"\\f",
            0..=0x1F => {
                out.extend_from_slice(&b[from..i]);
                out.extend_from_slice(format!("\\u{c:04x}").as_bytes());
                from = i + 1;
                continue;
            }
            0xE2 if matches!(b.get(i + 1..i + 3), Some([0x80, 0xA8 | 0xA9])) => {
                out.extend_from_slice(&b[from..i]);
                out.extend_from_slice(if b[i + 2] == 0xA8 {
                    b"\\u2028"
                } else {
                    b"\\u2029"
                });
                from = i + 3;
                continue;
            }
            _ => continue,
        };
        if from <= i {
            out.extend_from_slice(&b[from..i]);
            out.extend_from_slice(esc);
            from = i + 1;
        }
    }
    if from < b.len() {
        out.extend_from_slice(&b[from..]);
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub fn prefix(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Appends a string of decoded length `len` of which `kept` is the start, cut to `max` bytes:
/// as is when it fits, else its first `max` bytes and `...[truncated N bytes]`. True when cut.
pub fn write_capped(out: &mut Vec<u8>, kept: &str, len: usize, max: usize) -> bool {
    let len = len.max(kept.len());
    if len <= max && kept.len() == len {
        write_str(out, kept);
        return false;
    }
    let head = prefix(kept, max);
    out.push(b'"');
    write_str_body(out, head);
    out.extend_from_slice(format!("...[truncated {} bytes]", len - head.len()).as_bytes());
    out.push(b'"');
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them_and_more() {
        for s in [
            "plain",
            "q\"b\\s/",
            "\n\r\t\u{8}\u{c}\u{0}\u{1f}\u{7f}",
            "é日本\u{1F600}",
            "\u{2028}x\u{2029}",
            "",
        ] {
            let mut ours = Vec::new();
            write_str(&mut ours, s);
            let serde = serde_json::to_string(s)
                .unwrap()
                .replace('\u{2028}', "\\u2028")
                .replace('\u{2029}', "\\u2029");
            assert_eq!(String::from_utf8(ours).unwrap(), serde, "{s:?}");
        }
    }

    #[test]
    fn capped_strings_keep_whole_characters_and_count_the_rest() {
        let mut out = Vec::new();
        assert!(write_capped(&mut out, "ééé", 6, 3));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\"é...[truncated 4 bytes]\""
        );
        let mut out = Vec::new();
        assert!(!write_capped(&mut out, "abc", 3, 3));
        assert_eq!(out, b"\"abc\"");
        // Only the start was kept: still cut, with the full count.
        let mut out = Vec::new();
        assert!(write_capped(&mut out, "abc", 10_000, 8192));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\"abc...[truncated 9997 bytes]\""
        );
    }

    #[test]
    fn specials_are_found_in_every_lane() {
        for lane in 0..16 {
            for stop in [b'"', b'\\', 0x00, 0x1F] {
                let mut text = vec![b'a'; 40];
                text[lane + 7] = stop;
                assert_eq!(next_special(&text, 3), lane + 7, "{stop:#x}");
            }
        }
        assert_eq!(next_special("aé\u{2028}b".as_bytes(), 0), 7);
    }
}

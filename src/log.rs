//! One line per message on stderr, in the form splunkd files at the right level.
//!
//! splunkd turns each stderr line of a scripted input into one `splunkd.log` entry
//! (`component=ExecProcessor`), at ERROR unless the line starts with the level word itself
//! (Splunk's "Set up logging" page for inputs). So every line starts with `INFO`, `WARN` or
//! `ERROR`, then the same level as `level=` (searches keep working whether or not splunkd
//! keeps the word), the input, and the quoted message:
//!
//! `WARN level=WARN input=ipv4 msg="..."`
//!
//! Every message is scrubbed of registered secrets first and only then cut to
//! [`MAX_MSG_BYTES`]: cutting first could leave a secret's prefix behind. Warnings about
//! single records go through [`note`], which prints the first few of each kind and counts the
//! rest, so a hostile page cannot flood splunkd.log.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Mutex;

use crate::secret;

/// The longest message printed, in bytes, after scrubbing.
pub const MAX_MSG_BYTES: usize = 2048;
/// Lines printed per kind of per-record warning in one run; the rest are counted.
pub const NOTES_PER_KIND: usize = 3;

static INPUT: Mutex<String> = Mutex::new(String::new());
/// Per kind: lines printed, and lines held back.
static NOTES: Mutex<BTreeMap<&'static str, (usize, usize)>> = Mutex::new(BTreeMap::new());

/// Names the input in every later line (before that, `default`).
pub fn set_input(name: &str) {
    if let Ok(mut i) = INPUT.lock() {
        *i = name.to_string();
    }
}

/// `text` made safe to embed in a message: secrets scrubbed, then cut to `max` bytes (at a
/// character boundary) with the number of bytes cut.
pub fn excerpt(text: &str, max: usize) -> String {
    let clean = secret::scrub(text);
    if clean.len() <= max {
        return clean.into_owned();
    }
    let mut end = max;
    while !clean.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...[cut {} bytes]", &clean[..end], clean.len() - end)
}

/// One quoted key=value field's worth of text: no quotes, no line breaks.
fn field(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '"' => '\'',
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => ' ',
            c => c,
        })
        .collect()
}

fn line(level: &str, extra: &str, msg: &str) -> String {
    let input = INPUT.lock().map(|i| i.clone()).unwrap_or_default();
    let input = if input.is_empty() {
        "default".into()
    } else {
        input
    };
    format!(
        "{level} level={level} input={}{extra} msg=\"{}\"",
        field(&excerpt(&input, 64)).replace(' ', "_"),
        field(&excerpt(msg, MAX_MSG_BYTES))
    )
}

fn emit(text: String) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{text}");
}

pub fn info(msg: &str) {
    emit(line("INFO", "", msg));
}

pub fn warn(msg: &str) {
    emit(line("WARN", "", msg));
}

/// The one error line of a failed run; `kind` names the exit-code class.
pub fn error(kind: &str, code: u8, msg: &str) {
    emit(line("ERROR", &format!(" error={kind} exit={code}"), msg));
}

/// A warning about one item (a record, an object) of kind `kind`: the first
/// [`NOTES_PER_KIND`] of a kind are printed, the others counted for [`flush_notes`]. `msg` is
/// only built when it is printed.
pub fn note(kind: &'static str, msg: impl FnOnce() -> String) {
    let print = match NOTES.lock() {
        Ok(mut notes) => {
            let n = notes.entry(kind).or_default();
            if n.0 < NOTES_PER_KIND {
                n.0 += 1;
                true
            } else {
                n.1 += 1;
                false
            }
        }
        Err(_) => false,
    };
    if print {
        warn(&msg());
    }
}

/// One line per kind of [`note`] that had more than it printed, with the count.
pub fn flush_notes() {
    let held: Vec<(&'static str, usize)> = match NOTES.lock() {
        Ok(mut notes) => notes
            .iter_mut()
            .filter(|(_, n)| n.1 > 0)
            .map(|(k, n)| (*k, std::mem::take(&mut n.1)))
            .collect(),
        Err(_) => Vec::new(),
    };
    for (kind, n) in held {
        warn(&format!(
            "{n} more warnings of the kind \"{kind}\" in this run were not printed (the first {NOTES_PER_KIND} are above)"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_scrubbed_before_the_cut() {
        secret::Secret::new("sk_test_scrubme".into());
        let text = format!("{}sk_test_scrubme tail", "a".repeat(10));
        // A cut inside the secret's span still shows none of it.
        for max in 0..text.len() {
            let e = excerpt(&text, max);
            assert!(!e.contains("sk_t"), "{max}: {e}");
        }
        assert_eq!(field(&excerpt("x \"y\"\nz\u{2028}", 100)), "x 'y' z ");
    }

    #[test]
    fn lines_start_with_the_level_word_splunkd_reads() {
        set_input("ips");
        let l = line("WARN", "", "a \"b\"\nc");
        assert_eq!(l, "WARN level=WARN input=ips msg=\"a 'b' c\"");
        let e = line("ERROR", " error=auth exit=3", "x");
        assert!(
            e.starts_with("ERROR level=ERROR input=ips error=auth exit=3 msg="),
            "{e}"
        );
    }

    #[test]
    fn cuts_keep_characters_whole() {
        let e = excerpt(&"é".repeat(10), 5);
        assert_eq!(e, "éé...[cut 16 bytes]");
    }
}

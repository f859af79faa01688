//! One-line, key=value messages on stderr.
//!
//! splunkd turns each stderr line of a scripted input into one `splunkd.log` entry
//! (`component=ExecProcessor`), so every message here is exactly one line, with `level=` first
//! and the message quoted. Anything that could be a secret is scrubbed before printing.

use std::io::Write;
use std::sync::{Mutex, OnceLock};

static INPUT: OnceLock<String> = OnceLock::new();
static SECRETS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Names the input in every later line.
pub fn set_input(name: &str) {
    let _ = INPUT.set(name.to_string());
}

/// Registers a secret that must never appear on stderr, whatever path an error took.
pub fn register_secret(secret: &str) {
    if secret.len() >= 4
        && let Ok(mut s) = SECRETS.lock()
    {
        s.push(secret.to_string());
    }
}

/// Replaces registered secrets and makes the text safe for one quoted key=value field.
pub fn scrub(text: &str) -> String {
    let mut out = text.to_string();
    if let Ok(secrets) = SECRETS.lock() {
        for s in secrets.iter() {
            out = out.replace(s.as_str(), "***");
        }
    }
    out.chars()
        .map(|c| match c {
            '"' => '\'',
            c if c.is_control() => ' ',
            '\u{2028}' | '\u{2029}' => ' ',
            c => c,
        })
        .collect()
}

fn line(level: &str, extra: &str, msg: &str) -> String {
    let input = INPUT.get().map(String::as_str).unwrap_or("default");
    format!(
        "level={level} input={}{extra} msg=\"{}\"",
        scrub(input).replace(' ', "_"),
        scrub(msg)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_removes_secrets_quotes_and_newlines() {
        register_secret("sk_test_scrubme");
        let s = scrub("key sk_test_scrubme said \"hi\"\nnext\u{2028}line");
        assert_eq!(s, "key *** said 'hi' next line");
    }
}

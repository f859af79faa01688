//! Where the API key comes from, and the type that keeps it out of every log line.
//!
//! Order: `--api-key-file` on the command line, `SOCDEFENDERS_API_KEY`, `api_key_file` from the
//! environment or socdefenders.conf, then Splunk's secret store through the passAuth session
//! token splunkd writes on stdin. There is deliberately no option that takes the key itself.

use std::fmt;
use std::io::{BufRead, IsTerminal};
use std::path::Path;

use anyhow::Result;

use crate::config::{Config, Source};
use crate::error::{Kind, KindExt, fail};

/// A secret that never prints: `Debug` and `Display` show only `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Secret {
        crate::log::register_secret(&s);
        Secret(s)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// First 8 characters and the length, as the SOC Defenders dashboard shows a key's prefix.
    pub fn masked(&self) -> String {
        let prefix: String = self.0.chars().take(8).collect();
        format!("{prefix}*** ({} chars)", self.0.chars().count())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

fn check_key(raw: &str, from: &str) -> Result<Secret> {
    let key = raw.trim();
    if key.is_empty() {
        return Err(fail(
            Kind::Config,
            format!("the API key from {from} is empty"),
        ));
    }
    if key.chars().any(|c| c.is_control() || c == ' ') {
        return Err(fail(
            Kind::Config,
            format!(
                "the API key from {from} contains spaces or control characters; store only the key"
            ),
        ));
    }
    Ok(Secret::new(key.to_string()))
}

fn from_file(path: &Path) -> Result<Secret> {
    let text = std::fs::read_to_string(path).kind(Kind::Config, || {
        format!(
            "cannot read api_key_file {}: check the path and that the Splunk user can read it",
            path.display()
        )
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            crate::log::warn(&format!(
                "api_key_file {} is readable by group or others (mode {:o}); run: chmod 600 {}",
                path.display(),
                meta.permissions().mode() & 0o777,
                path.display()
            ));
        }
    }
    check_key(&text, &format!("api_key_file {}", path.display()))
}

/// Reads splunkd's passAuth session token from stdin, if stdin is not a terminal and has one:
/// the first line, trimmed, an optional `sessionKey=` prefix removed, percent-decoded.
pub fn session_token() -> Option<Secret> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return None;
    }
    let mut line = Vec::new();
    let mut lock = stdin.lock();
    // Bounded: a token is a few hundred bytes.
    let mut limited = std::io::Read::take(&mut lock, 16 * 1024);
    let mut reader = std::io::BufReader::new(&mut limited);
    reader.read_until(b'\n', &mut line).ok()?;
    let text = String::from_utf8(line).ok()?;
    let text = text.trim();
    let text = text.strip_prefix("sessionKey=").unwrap_or(text);
    let token = percent_decode(text);
    (!token.is_empty()).then(|| Secret::new(token))
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The key from the command line, the environment or a key file, in that order; `None` when
/// none of them is set (the key must then come from Splunk's secret store). Touches neither
/// stdin nor splunkd.
pub fn resolve_local(cfg: &Config) -> Result<Option<(Secret, String)>> {
    let file_from_cli = cfg
        .api_key_file
        .as_ref()
        .filter(|(_, src)| *src == Source::Option);
    if let Some((path, _)) = file_from_cli {
        let from = format!("--api-key-file {}", path.display());
        return Ok(Some((from_file(path)?, from)));
    }
    if let Ok(v) = std::env::var("SOCDEFENDERS_API_KEY") {
        let key = check_key(&v, "SOCDEFENDERS_API_KEY")?;
        return Ok(Some((key, "environment SOCDEFENDERS_API_KEY".into())));
    }
    if let Some((path, src)) = &cfg.api_key_file {
        let from = format!("api_key_file {} ({src})", path.display());
        return Ok(Some((from_file(path)?, from)));
    }
    Ok(None)
}

/// The API key and a description of where it came from (never the key itself).
pub fn resolve(cfg: &Config) -> Result<(Secret, String)> {
    if let Some(found) = resolve_local(cfg)? {
        return Ok(found);
    }
    match session_token() {
        Some(token) => {
            let key = crate::splunkd::fetch_key(cfg, &token)?;
            Ok((
                check_key(key.expose(), "Splunk's secret store")?,
                format!(
                    "Splunk secret store, realm {} username {}",
                    crate::splunkd::REALM,
                    cfg.credential
                ),
            ))
        }
        None => Err(fail(
            Kind::Splunkd,
            format!(
                "no API key and no splunkd session token on stdin: store the key in Splunk's secret store (socdefenders-iocs store-key, realm {}, username {}) and run the input from splunkd with passAuth = splunk-system-user, or set SOCDEFENDERS_API_KEY or api_key_file for a manual run",
                crate::splunkd::REALM,
                cfg.credential
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_format() {
        let s = Secret::new("sk_live_abcdefgh1234".into());
        assert_eq!(format!("{s:?} {s}"), "Secret(***) ***");
        assert_eq!(s.masked(), "sk_live_*** (20 chars)");
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%2Bb%3D%3d"), "a+b==");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}

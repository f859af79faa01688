//! Where the API key comes from.
//!
//! Order: `--api-key-file` on the command line, `SOCDEFENDERS_API_KEY`, `api_key_file` from the
//! environment or socdefenders.conf, then Splunk's secret store through the passAuth session
//! token splunkd writes on stdin. There is deliberately no option that takes the key itself.

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::error::{Kind, KindExt, fail};
use crate::secret::Secret;
use crate::setting::Origin;
use crate::splunkd::{self, SplunkdSettings};

/// The settings that say where the key is.
#[derive(Debug, Clone)]
pub struct KeySettings {
    /// `api_key_file`, with where that setting came from (a file named on the command line
    /// wins over `SOCDEFENDERS_API_KEY`; one from the environment or a .conf file does not).
    pub api_key_file: Option<(PathBuf, Origin)>,
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

/// The most a key file may hold: a key is well under a kilobyte.
const KEY_FILE_CAP: u64 = 64 * 1024;

fn from_file(path: &Path) -> Result<Secret> {
    let cant = || {
        format!(
            "cannot read api_key_file {}: check the path and that the Splunk user can read it",
            path.display()
        )
    };
    let file = std::fs::File::open(path).kind(Kind::Config, cant)?;
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(&file, KEY_FILE_CAP + 1),
        &mut bytes,
    )
    .kind(Kind::Config, cant)?;
    if bytes.len() as u64 > KEY_FILE_CAP {
        return Err(fail(
            Kind::Config,
            format!(
                "api_key_file {} is larger than {KEY_FILE_CAP} bytes; it must hold only the key",
                path.display()
            ),
        ));
    }
    let text = String::from_utf8(bytes).map_err(|_| {
        fail(
            Kind::Config,
            format!("api_key_file {} is not UTF-8 text", path.display()),
        )
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = file.metadata()
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
    let token = percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned();
    (!token.is_empty()).then(|| Secret::new(token))
}

/// The key from the command line, the environment or a key file, in that order; `None` when
/// none of them is set (the key must then come from Splunk's secret store). Touches neither
/// stdin nor splunkd.
pub fn resolve_local(cfg: &KeySettings) -> Result<Option<(Secret, String)>> {
    let file_from_cli = cfg
        .api_key_file
        .as_ref()
        .filter(|(_, origin)| *origin == Origin::Option);
    if let Some((path, _)) = file_from_cli {
        let from = format!("--api-key-file {}", path.display());
        return Ok(Some((from_file(path)?, from)));
    }
    if let Ok(v) = std::env::var("SOCDEFENDERS_API_KEY") {
        let key = check_key(&v, "SOCDEFENDERS_API_KEY")?;
        return Ok(Some((key, "environment SOCDEFENDERS_API_KEY".into())));
    }
    if let Some((path, origin)) = &cfg.api_key_file {
        let from = format!("api_key_file {} ({origin})", path.display());
        return Ok(Some((from_file(path)?, from)));
    }
    Ok(None)
}

/// The API key and a description of where it came from (never the key itself).
pub fn resolve(cfg: &KeySettings, splunkd: &SplunkdSettings) -> Result<(Secret, String)> {
    if let Some(found) = resolve_local(cfg)? {
        return Ok(found);
    }
    match session_token() {
        Some(token) => {
            let key = splunkd::fetch_key(splunkd, &token)?;
            Ok((
                check_key(key.expose(), "Splunk's secret store")?,
                format!(
                    "Splunk secret store, realm {} username {}",
                    splunkd::REALM,
                    splunkd.credential
                ),
            ))
        }
        None => Err(fail(
            Kind::Splunkd,
            format!(
                "no API key and no splunkd session token on stdin: store the key in Splunk's secret store (the app's setup page, or socdefenders-iocs store-key; realm {}, username {}) and run the input from splunkd with passAuth = splunk-system-user, or set SOCDEFENDERS_API_KEY or api_key_file for a manual run",
                splunkd::REALM,
                splunkd.credential
            ),
        )),
    }
}

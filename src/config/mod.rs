//! Resolved settings: every value knows where it came from.
//!
//! Layers, highest first: command-line options, `SOCDEFENDERS_<SETTING>` environment variables,
//! `<app>/local/socdefenders.conf`, `<app>/default/socdefenders.conf`, built-in defaults. Within
//! the .conf files `[input:<name>]` overrides `[default]`, after local/ has been merged over
//! default/ as splunkd merges them. `<app>` is the folder above the `bin/` holding the binary
//! (Windows), or above the `bin/linux_<cpu>/` holding it (Linux, behind the launcher).
//!
//! Built-in defaults belong to a source: `limit` is 100 for `rest` and 1000 for `taxii`. A
//! value from a `[default]` stanza applies to every input, so one that stands in for a
//! different built-in default of the input's source is reported once per run.

pub mod conf;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;

use crate::error::{Kind, KindExt, fail};
use crate::http::NetSettings;
use crate::key::KeySettings;
use crate::setting::{Origin, Setting, Tier, Values, setting};
use crate::source::{rest, taxii};
use crate::splunkd::SplunkdSettings;
use crate::{log, timeutil};

/// The settings every input has, whatever its source.
pub const COMMON: &[Setting] = &[
    setting("input", Some("default")),
    setting("source", Some("rest")),
    setting("state_dir", None),
    setting("since", None),
    setting("tier", Some("free")),
    setting("max_pages", Some("1")),
    setting("daily_budget", None),
    setting("max_field_bytes", Some("8192")),
    setting("api_key_file", None),
    setting("credential", Some("api_key")),
    setting("ca_file", None),
    setting("proxy", None),
    setting("timeout", Some("60")),
    setting("retries", Some("2")),
    setting("max_body_bytes", Some("67108864")),
    setting("splunkd_url", Some("https://127.0.0.1:8089")),
    setting("splunkd_ca_file", None),
];

/// Each source's own settings, by the `source` value that selects it.
pub const SOURCES: &[(&str, &[Setting])] = &[("rest", rest::SETTINGS), ("taxii", taxii::SETTINGS)];

/// Every setting name, common ones first, each once.
pub fn all_keys() -> Vec<&'static str> {
    let mut keys: Vec<&'static str> = COMMON.iter().map(|s| s.key).collect();
    for (_, table) in SOURCES {
        for s in *table {
            if !keys.contains(&s.key) {
                keys.push(s.key);
            }
        }
    }
    keys
}

/// The settings of one source.
#[derive(Debug, Clone)]
pub enum SourceSettings {
    Rest(rest::Settings),
    Taxii(taxii::Settings),
}

/// Everything a run needs, validated. Each field documents its setting.
#[derive(Debug, Clone)]
pub struct Config {
    /// `input`: names the stanza and the checkpoint file.
    pub input: String,
    /// `state_dir`: where `<input>.json` checkpoints and their locks live.
    pub state_dir: PathBuf,
    /// `tier`: the lookback and the default daily budget.
    pub tier: Tier,
    /// `since`: where a first run starts (default: now minus the tier's lookback).
    pub since_ms: i64,
    /// `max_pages`: requests per run.
    pub max_pages: u32,
    /// `daily_budget`: requests per UTC day, never exceeded.
    pub daily_budget: u32,
    /// `max_field_bytes`: longer strings are cut.
    pub max_field_bytes: usize,
    pub key: KeySettings,
    pub splunkd: SplunkdSettings,
    pub net: NetSettings,
    /// `source` and that source's own settings.
    pub source: SourceSettings,
    /// Every resolved value and its origin, for `--print-config`.
    pub values: Values,
}

impl Config {
    /// The checkpoint file of this input.
    pub fn state_path(&self) -> PathBuf {
        self.state_dir.join(format!("{}.json", self.input))
    }

    pub fn source_name(&self) -> &'static str {
        self.source.name()
    }
}

/// The folder of the app holding this executable. `None` when the binary is not inside an app
/// (a development build). `SOCDEFENDERS_APP_DIR` overrides it (tests, manual runs).
pub fn app_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("SOCDEFENDERS_APP_DIR") {
        return Some(PathBuf::from(dir));
    }
    let exe = std::env::current_exe().ok()?.canonicalize().ok()?;
    app_of(&exe)
}

/// The app folder of a binary at `<app>/bin/<name>` (Windows) or `<app>/bin/linux_<cpu>/<name>`
/// (Linux, run by the `bin/socdefenders-iocs` launcher).
fn app_of(exe: &Path) -> Option<PathBuf> {
    let mut dir = exe.parent()?;
    if dir.file_name()? != "bin" {
        let platform = dir.file_name()?.to_str()?;
        if !platform.starts_with("linux_") {
            return None;
        }
        dir = dir.parent()?;
    }
    (dir.file_name()? == "bin").then(|| dir.parent().map(Path::to_path_buf))?
}

/// The .conf layers for one input, merged: key -> (value, origin).
fn conf_layer(app: Option<&Path>, input: &str) -> Result<Vec<(&'static str, String, Origin)>> {
    let Some(app) = app else {
        return Ok(Vec::new());
    };
    let keys = all_keys();
    // (stanza, key) -> (value, origin); local/ is read second so it overwrites default/.
    let mut merged: Vec<(String, &'static str, String, Origin)> = Vec::new();
    for sub in ["default", "local"] {
        let path = app.join(sub).join("socdefenders.conf");
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(e).kind(Kind::Config, || {
                    format!("cannot read {}: fix its permissions", path.display())
                });
            }
        };
        let stanzas = conf::parse(&bytes).kind(Kind::Config, || {
            format!("{} is not valid .conf syntax", path.display())
        })?;
        for st in stanzas {
            if st.name != "default" && !st.name.starts_with("input:") {
                return Err(fail(
                    Kind::Config,
                    format!(
                        "{} line {}: unknown stanza [{}]; use [default] or [input:<name>]",
                        path.display(),
                        st.line,
                        log::excerpt(&st.name, 100)
                    ),
                ));
            }
            for e in st.entries {
                let Some(key) = keys.iter().copied().find(|k| *k == e.key && *k != "input") else {
                    return Err(fail(
                        Kind::Config,
                        format!(
                            "{} line {}: unknown setting {:?} in [{}]; see README/socdefenders.conf.spec for the valid ones",
                            path.display(),
                            e.line,
                            log::excerpt(&e.key, 100),
                            log::excerpt(&st.name, 100)
                        ),
                    ));
                };
                merged.retain(|(s, k, _, _)| !(s == &st.name && *k == key));
                let origin = Origin::File {
                    path: path.clone(),
                    stanza: st.name.clone(),
                    line: e.line,
                };
                merged.push((st.name.clone(), key, e.value, origin));
            }
        }
    }
    let own = format!("input:{input}");
    let mut out = Vec::new();
    for key in keys {
        let pick = |stanza: &str| {
            merged
                .iter()
                .find(|(s, k, _, _)| s == stanza && *k == key)
                .map(|(_, _, v, o)| (key, v.clone(), o.clone()))
        };
        if let Some(hit) = pick(&own).or_else(|| pick("default")) {
            out.push(hit);
        }
    }
    Ok(out)
}

fn env_name(key: &str) -> String {
    format!("SOCDEFENDERS_{}", key.to_ascii_uppercase())
}

/// Resolves the settings for a run from the command line, environment and .conf files.
pub fn resolve(cli: &[(&'static str, &str)]) -> Result<Config> {
    // The input name decides which stanza to read, and names the input in every log line
    // from here on, settings errors included.
    let input = cli
        .iter()
        .find(|(k, _)| *k == "input")
        .map(|(_, v)| v.to_string())
        .or_else(|| std::env::var(env_name("input")).ok())
        .unwrap_or_else(|| "default".into());
    log::set_input(&input);
    if input.is_empty()
        || input.len() > 100
        || !input
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        || input.starts_with('.')
    {
        return Err(fail(
            Kind::Config,
            format!(
                "input name {:?} must be 1 to 100 letters, digits, '-', '_' or '.', not starting with '.'",
                log::excerpt(&input, 100)
            ),
        ));
    }
    let files = conf_layer(app_dir().as_deref(), &input)?;
    let lookup = |key: &'static str| -> Option<(String, Origin)> {
        let from_cli = cli
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| (v.to_string(), Origin::Option));
        let from_env = || {
            let name = env_name(key);
            std::env::var(&name).ok().map(|v| (v, Origin::Env(name)))
        };
        let from_file = || {
            files
                .iter()
                .find(|(k, _, _)| *k == key)
                .map(|(_, v, o)| (v.clone(), o.clone()))
        };
        from_cli.or_else(from_env).or_else(from_file)
    };
    // The source first: its table holds the built-in defaults of its own settings.
    let source = lookup("source")
        .map(|(v, _)| v.trim().to_string())
        .unwrap_or_else(|| "rest".into());
    let own_table = SOURCES
        .iter()
        .find(|(name, _)| *name == source)
        .map(|(_, t)| *t)
        .unwrap_or_default();
    let mut values = Values::default();
    for key in all_keys() {
        let default = COMMON
            .iter()
            .chain(own_table)
            .find(|s| s.key == key)
            .and_then(|s| s.default)
            .map(|d| (d.to_string(), Origin::BuiltIn));
        // An empty value means "not set", as in splunkd.
        if let Some((v, origin)) = lookup(key)
            .filter(|(v, _)| !v.trim().is_empty())
            .or(default)
        {
            values.0.push((key, v.trim().to_string(), origin));
        }
    }
    build(input, &source, values)
}

/// Says when a `[default]` stanza value stands in for a different built-in default of the
/// input's own source (`limit = 100` under [default] reaching a TAXII input).
fn warn_shared_defaults(values: &Values, source: &str) {
    let Some((_, own)) = SOURCES.iter().find(|(n, _)| *n == source) else {
        return;
    };
    for s in *own {
        let (Some(default), Some((v, origin))) = (s.default, values.get(s.key)) else {
            continue;
        };
        let from_default_stanza =
            matches!(origin, Origin::File { stanza, .. } if stanza == "default");
        let others_differ = SOURCES.iter().any(|(n, t)| {
            *n != source
                && t.iter()
                    .any(|o| o.key == s.key && o.default.is_some_and(|d| d != default))
        });
        if from_default_stanza && others_differ && v != default {
            log::warn(&format!(
                "{} = {v} from {origin} applies to this {source} input too, in place of the {source} default of {default}; set {} in [input:<name>] to choose explicitly",
                s.key, s.key
            ));
        }
    }
}

fn build(input: String, source: &str, values: Values) -> Result<Config> {
    let v = &values;
    let splunk_home = std::env::var_os("SPLUNK_HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from);
    let tier = v
        .choice("tier", &[("free", Tier::Free), ("pro", Tier::Pro)])?
        .unwrap_or(Tier::Free);
    let source = match source {
        "rest" => SourceSettings::Rest(rest::Settings::from_values(v, tier)?),
        "taxii" => SourceSettings::Taxii(taxii::Settings::from_values(v)?),
        _ => return Err(v.bad("source", "must be rest or taxii")),
    };
    warn_shared_defaults(v, source.name());
    let since_ms = match v.get("since") {
        Some((s, _)) => timeutil::parse_ms(s).ok_or_else(|| {
            v.bad(
                "since",
                "is not an RFC 3339 timestamp such as 2026-11-01T00:00:00Z",
            )
        })?,
        None => timeutil::now_ms() - tier.lookback().as_millis() as i64,
    };
    let net = net(v)?;
    Ok(Config {
        input,
        state_dir: state_dir(v, splunk_home.as_deref())?,
        tier,
        since_ms,
        max_pages: v.number::<u32>("max_pages", 1, 1_000)?.unwrap_or(1),
        daily_budget: v
            .number::<u32>("daily_budget", 1, 100_000_000)?
            .unwrap_or(tier.daily_requests()),
        max_field_bytes: v
            .number::<usize>("max_field_bytes", 256, 1 << 20)?
            .unwrap_or(8192),
        key: KeySettings {
            api_key_file: v
                .get("api_key_file")
                .map(|(p, o)| (crate::setting::expand_splunk_home(p), o.clone())),
        },
        splunkd: splunkd(v, splunk_home, net.timeout)?,
        net,
        source,
        values,
    })
}

fn state_dir(v: &Values, splunk_home: Option<&Path>) -> Result<PathBuf> {
    match (v.path("state_dir"), splunk_home) {
        (Some(p), _) => Ok(p),
        (None, Some(home)) => Ok(home
            .join("var")
            .join("lib")
            .join("splunk")
            .join("modinputs")
            .join("TA-socdefenders")),
        (None, None) => Err(fail(
            Kind::Config,
            "no state directory: SPLUNK_HOME is not set and state_dir is not configured; for a manual run use $SPLUNK_HOME/bin/splunk cmd <this program>, or set --state-dir or state_dir in socdefenders.conf",
        )),
    }
}

fn net(v: &Values) -> Result<NetSettings> {
    Ok(NetSettings {
        ca_file: v.path("ca_file"),
        proxy: v.url("proxy")?,
        timeout: Duration::from_secs(v.number::<u64>("timeout", 1, 600)?.unwrap_or(60)),
        retries: v.number::<u32>("retries", 0, 10)?.unwrap_or(2),
        max_body_bytes: v
            .number::<u64>("max_body_bytes", 1024, 1 << 34)?
            .unwrap_or(1 << 26),
    })
}

fn splunkd(v: &Values, splunk_home: Option<PathBuf>, timeout: Duration) -> Result<SplunkdSettings> {
    let credential = v.required("credential")?;
    if credential.is_empty()
        || credential.len() > 100
        || credential.contains([':', '/', '\\'])
        || credential.chars().any(char::is_control)
    {
        return Err(v.bad(
            "credential",
            "must be 1 to 100 characters without ':', '/', '\\' or control characters",
        ));
    }
    Ok(SplunkdSettings {
        url: v.url("splunkd_url")?.unwrap_or_default(),
        ca_file: v.path("splunkd_ca_file"),
        splunk_home,
        timeout: timeout.min(Duration::from_secs(30)),
        credential,
    })
}

impl SourceSettings {
    pub fn name(&self) -> &'static str {
        match self {
            SourceSettings::Rest(_) => "rest",
            SourceSettings::Taxii(_) => "taxii",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_app_folder_is_found_from_each_platforms_binary() {
        let app = Path::new("/opt/splunk/etc/apps/TA-socdefenders");
        for exe in [
            "bin/socdefenders-iocs",
            "bin/socdefenders-iocs.exe",
            "bin/linux_x86_64/socdefenders-iocs",
            "bin/linux_aarch64/socdefenders-iocs",
        ] {
            assert_eq!(app_of(&app.join(exe)).as_deref(), Some(app), "{exe}");
        }
        for exe in [
            "target/release/socdefenders-iocs",
            "bin/other/socdefenders-iocs",
            "bin/linux_x86_64/x/socdefenders-iocs",
        ] {
            assert_eq!(app_of(&app.join(exe)), None, "{exe}");
        }
    }
}

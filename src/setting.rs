//! The vocabulary every settings reader shares: a setting's name and built-in default, where
//! a value came from, and [`Values`], the resolved text of each setting with the checks that
//! turn it into a typed value or into one error line naming the setting, its value and its
//! origin.
//!
//! `config` resolves the layers into a [`Values`]; each source reads its own settings from it
//! (`source::rest::Settings`, `source::taxii::Settings`), so neither depends on the other.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;

use crate::error::{Kind, fail};

/// A setting name and its built-in default.
pub struct Setting {
    pub key: &'static str,
    pub default: Option<&'static str>,
}

pub const fn setting(key: &'static str, default: Option<&'static str>) -> Setting {
    Setting { key, default }
}

/// Where a value came from, for `--print-config` and for error messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The built-in default of the input's source (or of every source).
    BuiltIn,
    File {
        path: PathBuf,
        stanza: String,
        line: usize,
    },
    Env(String),
    Option,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::BuiltIn => f.write_str("built-in default"),
            Origin::File { path, stanza, line } => {
                write!(f, "{} [{stanza}] line {line}", path.display())
            }
            Origin::Env(name) => write!(f, "environment {name}"),
            Origin::Option => f.write_str("command line"),
        }
    }
}

/// The free and pro tiers differ in lookback, page cap and daily requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tier {
    Free,
    Pro,
}

impl Tier {
    pub fn lookback(self) -> Duration {
        match self {
            Tier::Free => Duration::from_secs(86_400),
            Tier::Pro => Duration::from_secs(365 * 86_400),
        }
    }
    pub fn daily_requests(self) -> u32 {
        match self {
            Tier::Free => 1_000,
            Tier::Pro => 1_000_000,
        }
    }
}

/// The resolved text of every setting that has one, with its origin.
#[derive(Debug, Clone, Default)]
pub struct Values(pub Vec<(&'static str, String, Origin)>);

impl Values {
    pub fn get(&self, key: &str) -> Option<(&str, &Origin)> {
        self.0
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|(_, v, o)| (v.as_str(), o))
    }

    pub fn string(&self, key: &str) -> Option<String> {
        self.get(key).map(|(v, _)| v.to_string())
    }

    /// A setting that always has a value (it has a built-in default).
    pub fn required(&self, key: &str) -> Result<String> {
        self.string(key)
            .ok_or_else(|| fail(Kind::Config, format!("setting {key} is not set")))
    }

    /// The error for a present value: names the setting, the value and where it came from.
    pub fn bad(&self, key: &str, why: &str) -> anyhow::Error {
        match self.get(key) {
            Some((v, origin)) => fail(
                Kind::Config,
                format!(
                    "setting {key} = {:?} (from {origin}) {why}",
                    crate::log::excerpt(v, 200)
                ),
            ),
            None => fail(Kind::Config, format!("setting {key} {why}")),
        }
    }

    pub fn number<T: std::str::FromStr + PartialOrd + fmt::Display>(
        &self,
        key: &str,
        min: T,
        max: T,
    ) -> Result<Option<T>> {
        let Some((v, _)) = self.get(key) else {
            return Ok(None);
        };
        match v.replace('_', "").parse::<T>() {
            Ok(n) if n >= min && n <= max => Ok(Some(n)),
            _ => Err(self.bad(key, &format!("must be a whole number from {min} to {max}"))),
        }
    }

    /// One of the named choices.
    pub fn choice<T: Copy>(&self, key: &str, choices: &[(&str, T)]) -> Result<Option<T>> {
        let Some((v, _)) = self.get(key) else {
            return Ok(None);
        };
        match choices.iter().find(|(name, _)| *name == v) {
            Some((_, t)) => Ok(Some(*t)),
            None => {
                let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
                Err(self.bad(key, &format!("must be {}", names.join(" or "))))
            }
        }
    }

    /// A path; `$SPLUNK_HOME` at its start is expanded, as splunkd does in inputs.conf.
    pub fn path(&self, key: &str) -> Option<PathBuf> {
        self.get(key).map(|(v, _)| expand_splunk_home(v))
    }

    /// An http(s) URL without a trailing slash.
    pub fn url(&self, key: &str) -> Result<Option<String>> {
        let Some((v, _)) = self.get(key) else {
            return Ok(None);
        };
        let url = v.trim_end_matches('/');
        let ok = (url.starts_with("https://") || url.starts_with("http://"))
            && url.len() > "https://".len()
            && !url.contains(char::is_whitespace);
        if ok {
            Ok(Some(url.to_string()))
        } else {
            Err(self.bad(key, "must be an http:// or https:// URL"))
        }
    }
}

pub fn expand_splunk_home(v: &str) -> PathBuf {
    match (
        v.strip_prefix("$SPLUNK_HOME"),
        std::env::var_os("SPLUNK_HOME"),
    ) {
        (Some(rest), Some(home)) => {
            let mut p = PathBuf::from(home);
            p.push(rest.trim_start_matches(['/', '\\']));
            p
        }
        _ => PathBuf::from(v),
    }
}

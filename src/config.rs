//! Resolved settings: every value knows where it came from.
//!
//! Layers, highest first: command-line options, `SOCDEFENDERS_<SETTING>` environment variables,
//! `<app>/local/socdefenders.conf`, `<app>/default/socdefenders.conf`, built-in defaults. Within
//! the .conf files `[input:<name>]` overrides `[default]`, after local/ has been merged over
//! default/ as splunkd merges them. `<app>` is the folder above the `bin/` holding the binary.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use time::OffsetDateTime;

use crate::conf;
use crate::error::{Kind, KindExt, fail};
use crate::timeutil;

/// A setting name and its built-in default.
pub struct Setting {
    pub key: &'static str,
    pub default: Option<&'static str>,
}

/// Every setting the program knows. A key in socdefenders.conf that is not here is an error.
pub const SETTINGS: &[Setting] = &[
    s("input", Some("default")),
    s("base_url", Some("https://socdefenders.ai")),
    s("state_dir", None),
    s("type", None),
    s("confidence", None),
    s("category", None),
    s("industry", None),
    s("limit", Some("100")),
    s("max_pages", Some("1")),
    s("since", None),
    s("tier", Some("free")),
    s("daily_budget", None),
    s("api_key_file", None),
    s("auth_header", Some("bearer")),
    s("ca_file", None),
    s("proxy", None),
    s("timeout", Some("60")),
    s("retries", Some("2")),
    s("max_body_bytes", Some("67108864")),
    s("max_field_bytes", Some("8192")),
    s("credential", Some("api_key")),
    s("splunkd_url", Some("https://127.0.0.1:8089")),
    s("splunkd_ca_file", None),
    s("source", Some("rest")),
    s("taxii_url", None),
    s("collection", None),
    s("taxii_user", Some("apikey")),
    s("taxii_auth", Some("basic")),
];

const fn s(key: &'static str, default: Option<&'static str>) -> Setting {
    Setting { key, default }
}

/// The IOC types the API documents; `mitre-attack` is the older spelling of `mitre_attack`.
pub const IOC_TYPES: &[&str] = &[
    "ipv4",
    "ipv6",
    "domain",
    "url",
    "md5",
    "sha1",
    "sha256",
    "sha512",
    "email",
    "cve",
    "mitre_attack",
];

/// Where a value came from, for `--print-config` and for error messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    BuiltIn,
    File {
        path: PathBuf,
        stanza: String,
        line: usize,
    },
    Env(String),
    Option,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::BuiltIn => f.write_str("built-in default"),
            Source::File { path, stanza, line } => {
                write!(f, "{} [{stanza}] line {line}", path.display())
            }
            Source::Env(name) => write!(f, "environment {name}"),
            Source::Option => f.write_str("command line"),
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
    pub fn max_limit(self) -> u32 {
        match self {
            Tier::Free => 100,
            Tier::Pro => 10_000,
        }
    }
    pub fn daily_requests(self) -> u32 {
        match self {
            Tier::Free => 1_000,
            Tier::Pro => 1_000_000,
        }
    }
}

/// Where indicators come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceKind {
    Rest,
    Taxii,
}

/// How the TAXII server gets the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaxiiAuth {
    /// HTTP Basic, user `taxii_user`, password the key.
    Basic,
    Bearer,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthHeader {
    Bearer,
    XApiKey,
}

/// Everything a run needs, validated. Each field documents its setting.
#[derive(Debug, Clone)]
pub struct Config {
    /// `input`: names the stanza and the checkpoint file.
    pub input: String,
    /// `base_url`: scheme, host and optional port of the API, no trailing slash.
    pub base_url: String,
    /// `state_dir`: where `<input>.json` checkpoints and their locks live.
    pub state_dir: PathBuf,
    /// `type`: IOC types, sent comma-joined; empty means all.
    pub types: Vec<String>,
    /// `confidence`, `category`, `industry`: server-side filters.
    pub confidence: Option<String>,
    pub category: Option<String>,
    pub industry: Option<String>,
    /// `limit`: IOCs per request, already clamped to the tier's cap.
    pub limit: u32,
    /// `max_pages`: requests per run.
    pub max_pages: u32,
    /// `since`: where a first run starts.
    pub since: OffsetDateTime,
    /// `tier`.
    pub tier: Tier,
    /// `daily_budget`: requests per UTC day.
    pub daily_budget: u32,
    /// `api_key_file` and where that setting came from (an option outranks the environment key).
    pub api_key_file: Option<(PathBuf, Source)>,
    /// `auth_header`.
    pub auth_header: AuthHeader,
    /// `ca_file`: extra roots for the API.
    pub ca_file: Option<PathBuf>,
    /// `proxy`: explicit proxy; when unset HTTPS_PROXY/ALL_PROXY/NO_PROXY apply.
    pub proxy: Option<String>,
    /// `timeout`: for one request, connect to last byte.
    pub timeout: Duration,
    /// `retries`: extra attempts after a transient failure.
    pub retries: u32,
    /// `max_body_bytes`: a larger response is refused.
    pub max_body_bytes: u64,
    /// `max_field_bytes`: strings longer than this are cut with a marker.
    pub max_field_bytes: usize,
    /// `credential`: username of the key in storage/passwords.
    pub credential: String,
    /// `splunkd_url`: management port for the secret store.
    pub splunkd_url: String,
    /// `splunkd_ca_file`: CA for splunkd's certificate.
    pub splunkd_ca_file: Option<PathBuf>,
    /// `source`: the REST API or a TAXII 2.1 collection.
    pub source: SourceKind,
    /// `taxii_url`: a TAXII discovery URL or API root.
    pub taxii_url: Option<String>,
    /// `collection`: TAXII collection id or title.
    pub collection: Option<String>,
    /// `taxii_user`: Basic auth user name.
    pub taxii_user: String,
    /// `taxii_auth`.
    pub taxii_auth: TaxiiAuth,
    /// `$SPLUNK_HOME`, when set.
    pub splunk_home: Option<PathBuf>,
    /// Every setting with its value and source, for `--print-config`.
    pub origins: Vec<(&'static str, String, Source)>,
}

/// Where the app folder is: `SOCDEFENDERS_APP_DIR` if set, else the folder above the `bin/`
/// holding this executable. `None` when the binary is not inside an app (a development build).
pub fn app_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("SOCDEFENDERS_APP_DIR") {
        return Some(PathBuf::from(dir));
    }
    let exe = std::env::current_exe().ok()?.canonicalize().ok()?;
    let bin = exe.parent()?;
    (bin.file_name()? == "bin").then(|| bin.parent().map(Path::to_path_buf))?
}

/// The merged .conf layers for one input: key -> (value, source).
fn conf_layer(app: Option<&Path>, input: &str) -> Result<Vec<(String, String, Source)>> {
    let Some(app) = app else {
        return Ok(Vec::new());
    };
    // (stanza, key) -> (value, source); local/ is read second so it overwrites default/.
    let mut merged: Vec<(String, String, String, Source)> = Vec::new();
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
            let known_stanza = st.name == "default" || st.name.starts_with("input:");
            if !known_stanza {
                return Err(fail(
                    Kind::Config,
                    format!(
                        "{} line {}: unknown stanza [{}]; use [default] or [input:<name>]",
                        path.display(),
                        st.line,
                        st.name
                    ),
                ));
            }
            for e in st.entries {
                if !SETTINGS.iter().any(|s| s.key == e.key) || e.key == "input" {
                    return Err(fail(
                        Kind::Config,
                        format!(
                            "{} line {}: unknown setting {:?} in [{}]; see README/socdefenders.conf.spec for the valid ones",
                            path.display(),
                            e.line,
                            e.key,
                            st.name
                        ),
                    ));
                }
                merged.retain(|(s, k, _, _)| !(s == &st.name && k == &e.key));
                let src = Source::File {
                    path: path.clone(),
                    stanza: st.name.clone(),
                    line: e.line,
                };
                merged.push((st.name.clone(), e.key, e.value, src));
            }
        }
    }
    let own = format!("input:{input}");
    let mut out = Vec::new();
    for set in SETTINGS {
        let pick = |stanza: &str| {
            merged
                .iter()
                .find(|(s, k, _, _)| s == stanza && k == set.key)
                .map(|(_, _, v, src)| (set.key.to_string(), v.clone(), src.clone()))
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
    let app = app_dir();
    // The input name decides which stanza to read, so it is resolved first.
    let input = cli
        .iter()
        .find(|(k, _)| *k == "input")
        .map(|(_, v)| v.to_string())
        .or_else(|| std::env::var(env_name("input")).ok())
        .unwrap_or_else(|| "default".into());
    if input.is_empty()
        || !input
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        || input.starts_with('.')
    {
        return Err(fail(
            Kind::Config,
            format!("input name {input:?} must be letters, digits, '-', '_' or '.'"),
        ));
    }
    let files = conf_layer(app.as_deref(), &input)?;

    let mut origins: Vec<(&'static str, String, Source)> = Vec::new();
    for set in SETTINGS {
        let from_cli = cli
            .iter()
            .find(|(k, _)| *k == set.key)
            .map(|(_, v)| (v.to_string(), Source::Option));
        let from_env = || {
            let name = env_name(set.key);
            std::env::var(&name).ok().map(|v| (v, Source::Env(name)))
        };
        let from_file = || {
            files
                .iter()
                .find(|(k, _, _)| k == set.key)
                .map(|(_, v, s)| (v.clone(), s.clone()))
        };
        let from_default = || set.default.map(|d| (d.to_string(), Source::BuiltIn));
        if let Some((v, src)) = from_cli
            .or_else(from_env)
            .or_else(from_file)
            .or_else(from_default)
        {
            // An empty value in a .conf file means "not set", as in splunkd.
            if !v.trim().is_empty() {
                origins.push((set.key, v.trim().to_string(), src));
            }
        }
    }
    build(input, origins)
}

struct Lookup<'a>(&'a [(&'static str, String, Source)]);

impl Lookup<'_> {
    fn get(&self, key: &str) -> Option<(&str, &Source)> {
        self.0
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|(_, v, s)| (v.as_str(), s))
    }
    fn string(&self, key: &str) -> Option<String> {
        self.get(key).map(|(v, _)| v.to_string())
    }
    fn bad(&self, key: &str, why: &str) -> anyhow::Error {
        let (v, src) = self.get(key).expect("only present values are validated");
        fail(
            Kind::Config,
            format!("setting {key} = {v:?} (from {src}) {why}"),
        )
    }
    fn number<T: std::str::FromStr + PartialOrd + fmt::Display>(
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
    fn path(&self, key: &str) -> Option<PathBuf> {
        self.get(key).map(|(v, _)| expand_splunk_home(v))
    }
}

/// `$SPLUNK_HOME` at the start of a path setting is expanded, as splunkd does in inputs.conf.
fn expand_splunk_home(v: &str) -> PathBuf {
    match (
        v.strip_prefix("$SPLUNK_HOME"),
        std::env::var_os("SPLUNK_HOME"),
    ) {
        (Some(rest), Some(home)) => {
            let mut p = PathBuf::from(home);
            p.push(rest.trim_start_matches('/'));
            p
        }
        _ => PathBuf::from(v),
    }
}

fn build(input: String, origins: Vec<(&'static str, String, Source)>) -> Result<Config> {
    let l = Lookup(&origins);
    let splunk_home = std::env::var_os("SPLUNK_HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from);

    let base_url = l.string("base_url").expect("has a default");
    let base_url = base_url.trim_end_matches('/').to_string();
    check_url(&l, "base_url", &base_url)?;

    let tier = match l.string("tier").as_deref() {
        Some("free") => Tier::Free,
        Some("pro") => Tier::Pro,
        _ => return Err(l.bad("tier", "must be free or pro")),
    };

    let mut types = Vec::new();
    if let Some(list) = l.string("type") {
        for t in list.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let t = if t == "mitre-attack" {
                "mitre_attack"
            } else {
                t
            };
            if !IOC_TYPES.contains(&t) {
                return Err(l.bad(
                    "type",
                    &format!("has unknown type {t:?}; valid: {}", IOC_TYPES.join(", ")),
                ));
            }
            if !types.iter().any(|x| x == t) {
                types.push(t.to_string());
            }
        }
    }
    let confidence = l.string("confidence");
    if let Some(c) = &confidence
        && !["high", "medium", "low"].contains(&c.as_str())
    {
        return Err(l.bad("confidence", "must be high, medium or low"));
    }
    for key in ["category", "industry"] {
        if let Some(v) = l.string(key)
            && !v
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_+".contains(c))
        {
            return Err(l.bad(key, "must be a slug such as threat-intel"));
        }
    }

    let source = match l.string("source").as_deref() {
        Some("rest") => SourceKind::Rest,
        Some("taxii") => SourceKind::Taxii,
        _ => return Err(l.bad("source", "must be rest or taxii")),
    };
    let mut limit = l.number::<u32>("limit", 1, 10_000)?.expect("has a default");
    if source == SourceKind::Taxii {
        // TAXII servers cap pages at 1000 (SOC Defenders documents it); 1000 is the default.
        if l.get("limit")
            .is_some_and(|(_, src)| *src == Source::BuiltIn)
        {
            limit = 1000;
        }
        if limit > 1000 {
            crate::log::warn(&format!(
                "limit {limit} is above TAXII's 1000 objects per request; using 1000"
            ));
            limit = 1000;
        }
    } else if limit > tier.max_limit() {
        crate::log::warn(&format!(
            "limit {limit} is above the {} tier's {} IOCs per request; using {}. Set tier = pro if your key is Pro",
            if tier == Tier::Free { "Free" } else { "Pro" },
            tier.max_limit(),
            tier.max_limit()
        ));
        limit = tier.max_limit();
    }
    let max_pages = l
        .number::<u32>("max_pages", 1, 1_000)?
        .expect("has a default");

    let since = match l.get("since") {
        Some((v, _)) => timeutil::parse(v).ok_or_else(|| {
            l.bad(
                "since",
                "is not an RFC 3339 timestamp such as 2026-11-01T00:00:00Z",
            )
        })?,
        None => OffsetDateTime::now_utc() - tier.lookback(),
    };
    let daily_budget = l
        .number::<u32>("daily_budget", 1, 100_000_000)?
        .unwrap_or(tier.daily_requests());

    let state_dir = match l.path("state_dir") {
        Some(p) => p,
        None => match &splunk_home {
            Some(home) => home.join("var/lib/splunk/modinputs/TA-socdefenders"),
            None => {
                return Err(fail(
                    Kind::Config,
                    "no state directory: SPLUNK_HOME is not set and state_dir is not configured; for a manual run use $SPLUNK_HOME/bin/splunk cmd <this program>, or set --state-dir or state_dir in socdefenders.conf",
                ));
            }
        },
    };

    let api_key_file = l
        .get("api_key_file")
        .map(|(v, src)| (expand_splunk_home(v), src.clone()));
    let auth_header = match l.string("auth_header").as_deref() {
        Some("bearer") => AuthHeader::Bearer,
        Some("x-api-key") => AuthHeader::XApiKey,
        _ => return Err(l.bad("auth_header", "must be bearer or x-api-key")),
    };
    let proxy = l.string("proxy");
    if let Some(p) = &proxy {
        check_url(&l, "proxy", p)?;
    }
    let timeout = Duration::from_secs(l.number::<u64>("timeout", 1, 600)?.expect("default"));
    let retries = l.number::<u32>("retries", 0, 10)?.expect("default");
    let max_body_bytes = l
        .number::<u64>("max_body_bytes", 1024, 1 << 34)?
        .expect("default");
    let max_field_bytes = l
        .number::<usize>("max_field_bytes", 256, 1 << 20)?
        .expect("default");
    let credential = l.string("credential").expect("default");
    if credential.contains(':') || credential.contains('/') {
        return Err(l.bad("credential", "must not contain ':' or '/'"));
    }
    let splunkd_url = l
        .string("splunkd_url")
        .expect("default")
        .trim_end_matches('/')
        .to_string();
    check_url(&l, "splunkd_url", &splunkd_url)?;

    let taxii_url = l
        .string("taxii_url")
        .map(|u| u.trim_end_matches('/').to_string() + "/");
    if let Some(u) = &taxii_url {
        check_url(&l, "taxii_url", u)?;
    }
    let collection = l.string("collection");
    if source == SourceKind::Taxii && (taxii_url.is_none() || collection.is_none()) {
        return Err(fail(
            Kind::Config,
            "source = taxii needs taxii_url (a discovery URL or API root, e.g. https://socdefenders.ai/api/taxii2/) and collection (an id or title)",
        ));
    }
    let taxii_auth = match l.string("taxii_auth").as_deref() {
        Some("basic") => TaxiiAuth::Basic,
        Some("bearer") => TaxiiAuth::Bearer,
        _ => return Err(l.bad("taxii_auth", "must be basic or bearer")),
    };

    Ok(Config {
        input,
        base_url,
        state_dir,
        types,
        confidence,
        category: l.string("category"),
        industry: l.string("industry"),
        limit,
        max_pages,
        since,
        tier,
        daily_budget,
        api_key_file,
        auth_header,
        ca_file: l.path("ca_file"),
        proxy,
        timeout,
        retries,
        max_body_bytes,
        max_field_bytes,
        credential,
        splunkd_url,
        splunkd_ca_file: l.path("splunkd_ca_file"),
        source,
        taxii_url,
        collection,
        taxii_user: l.string("taxii_user").expect("default"),
        taxii_auth,
        splunk_home,
        origins,
    })
}

fn check_url(l: &Lookup, key: &str, url: &str) -> Result<()> {
    let ok = (url.starts_with("https://") || url.starts_with("http://"))
        && url.len() > "https://".len()
        && !url.contains(char::is_whitespace);
    if ok {
        Ok(())
    } else if l.get(key).is_some() {
        Err(l.bad(key, "must be an http:// or https:// URL"))
    } else {
        Err(fail(Kind::Config, format!("{key} {url:?} is not a URL")))
    }
}

impl Config {
    /// A string that changes whenever the server-side filters change, so a walk in progress is
    /// not continued with offsets that belong to another result set.
    pub fn filter_fingerprint(&self) -> String {
        format!(
            "source={:?} taxii_url={} collection={} base_url={} type={} confidence={} category={} industry={}",
            self.source,
            self.taxii_url.as_deref().unwrap_or(""),
            self.collection.as_deref().unwrap_or(""),
            self.base_url,
            self.types.join(","),
            self.confidence.as_deref().unwrap_or(""),
            self.category.as_deref().unwrap_or(""),
            self.industry.as_deref().unwrap_or("")
        )
    }

    /// The checkpoint file of this input.
    pub fn state_path(&self) -> PathBuf {
        self.state_dir.join(format!("{}.json", self.input))
    }
}

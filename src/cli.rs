//! The command line, as clap sees it. Nothing here is resolved: every setting is an
//! `Option<String>` so that `config` can layer it over the environment and the .conf files and
//! validate all sources with one set of rules and one set of error messages.

use clap::{Args, Parser, Subcommand};

const AFTER_HELP: &str = "\
Settings come from, highest first: these options, SOCDEFENDERS_<SETTING> environment variables,
<app>/local/socdefenders.conf, <app>/default/socdefenders.conf, built-in defaults. In the .conf
files the [input:<name>] stanza overrides [default]. `--print-config` shows the result.

The API key comes from --api-key-file, SOCDEFENDERS_API_KEY, api_key_file in socdefenders.conf,
or, under splunkd (passAuth), from Splunk's secret store (realm TA-socdefenders). There is no
option that takes the key itself: it would be visible in `ps`.

Exit codes: 0 ok (also nothing new, waiting out a rate limit, or the daily budget spent),
1 internal error (a bug), 2 usage or settings, 3 API key refused (401/403), 4 rate limited
by the API (429), 5 network, timeout, 5xx, TLS or malformed response, 6 stdout failed or
stopped by SIGTERM while printing, 7 checkpoint state, 8 no splunkd session token, or
splunkd refused it or is unreachable, 9 credential missing from Splunk's secret store.";

/// Fetches SOC Defenders IOCs and prints them as one JSON object per line, for a Splunk
/// scripted input. Each run fetches one page and advances a checkpoint that never skips and
/// never repeats an indicator.
#[derive(Parser, Debug)]
#[command(name = "socdefenders-iocs", version, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub opts: Opts,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Validate the settings, make one request, and say in plain words what works and what to fix.
    Check,
    /// Show or reset the checkpoint of one input (--input).
    State {
        #[command(subcommand)]
        action: StateAction,
    },
    /// Store the API key in Splunk's secret store (prompts without echo for the key and for
    /// Splunk admin credentials).
    StoreKey,
}

#[derive(Subcommand, Debug)]
pub enum StateAction {
    /// Print the checkpoint as JSON.
    Show,
    /// Delete the checkpoint: the next run starts again from `since` (or the tier's lookback).
    Reset,
}

/// Every option is also a setting (the same name with underscores in socdefenders.conf).
#[derive(Args, Debug, Default)]
pub struct Opts {
    /// Which [input:<name>] stanza and checkpoint to use [default: default]
    #[arg(long, global = true, value_name = "NAME")]
    pub input: Option<String>,

    /// API base URL [default: https://socdefenders.ai]
    #[arg(long, global = true, value_name = "URL")]
    pub base_url: Option<String>,

    /// Where checkpoints live [default: $SPLUNK_HOME/var/lib/splunk/modinputs/TA-socdefenders]
    #[arg(long, global = true, value_name = "DIR")]
    pub state_dir: Option<String>,

    /// Comma-separated IOC types: ipv4, ipv6, domain, url, md5, sha1, sha256, sha512, email,
    /// cve, mitre_attack [default: all]
    #[arg(long = "type", global = true, value_name = "LIST")]
    pub r#type: Option<String>,

    /// Only this confidence: high, medium or low [default: all]
    #[arg(long, global = true, value_name = "LEVEL")]
    pub confidence: Option<String>,

    /// Only this source category, e.g. government, threat-intel, news [default: all]
    #[arg(long, global = true, value_name = "NAME")]
    pub category: Option<String>,

    /// Only this industry (CISA sector slug), e.g. energy, healthcare [default: all]
    #[arg(long, global = true, value_name = "SLUG")]
    pub industry: Option<String>,

    /// IOCs per page; Free allows 100, Pro 10,000 [default: 100]
    #[arg(long, global = true, value_name = "N")]
    pub limit: Option<String>,

    /// Pages per run; more than 1 drains a backlog faster (Pro) [default: 1]
    #[arg(long, global = true, value_name = "N")]
    pub max_pages: Option<String>,

    /// Where the first run starts, RFC 3339, e.g. 2026-11-01T00:00:00Z [default: now minus the
    /// tier's lookback]
    #[arg(long, global = true, value_name = "TIMESTAMP")]
    pub since: Option<String>,

    /// Your tier, which sets the lookback, page cap and daily budget: free or pro [default: free]
    #[arg(long, global = true, value_name = "TIER")]
    pub tier: Option<String>,

    /// Requests allowed per UTC day; never exceeded [default: 1000 on free, 1000000 on pro]
    #[arg(long, global = true, value_name = "N")]
    pub daily_budget: Option<String>,

    /// File holding the API key (should be readable by its owner only)
    #[arg(long, global = true, value_name = "PATH")]
    pub api_key_file: Option<String>,

    /// How to send the key: bearer (Authorization: Bearer) or x-api-key [default: bearer]
    #[arg(long, global = true, value_name = "HEADER")]
    pub auth_header: Option<String>,

    /// Extra trusted CA certificates (PEM), e.g. a TLS-inspecting proxy's CA; added to the
    /// system roots
    #[arg(long, global = true, value_name = "PEM")]
    pub ca_file: Option<String>,

    /// HTTP(S) proxy URL, e.g. http://proxy:3128; overrides HTTPS_PROXY/NO_PROXY
    #[arg(long, global = true, value_name = "URL")]
    pub proxy: Option<String>,

    /// Seconds allowed for one request, connect to last byte [default: 60]
    #[arg(long, global = true, value_name = "SECS")]
    pub timeout: Option<String>,

    /// Retries after a network error, timeout or 5xx, with backoff [default: 2]
    #[arg(long, global = true, value_name = "N")]
    pub retries: Option<String>,

    /// Largest response body accepted, in bytes [default: 67108864]
    #[arg(long, global = true, value_name = "BYTES")]
    pub max_body_bytes: Option<String>,

    /// Longest string value printed; longer ones are cut with a marker [default: 8192]
    #[arg(long, global = true, value_name = "BYTES")]
    pub max_field_bytes: Option<String>,

    /// Username of the API key in Splunk's secret store (realm TA-socdefenders) [default: api_key]
    #[arg(long, global = true, value_name = "NAME")]
    pub credential: Option<String>,

    /// splunkd management URL for the secret store [default: https://127.0.0.1:8089]
    #[arg(long, global = true, value_name = "URL")]
    pub splunkd_url: Option<String>,

    /// CA that signed splunkd's certificate [default: $SPLUNK_HOME/etc/auth/cacert.pem]
    #[arg(long, global = true, value_name = "PEM")]
    pub splunkd_ca_file: Option<String>,

    /// Where indicators come from: rest (the SOC Defenders API) or taxii (any TAXII 2.1
    /// collection) [default: rest]
    #[arg(long, global = true, value_name = "SOURCE")]
    pub source: Option<String>,

    /// TAXII discovery URL or API root, e.g. https://www.socdefenders.ai/api/taxii2/
    #[arg(long, global = true, value_name = "URL")]
    pub taxii_url: Option<String>,

    /// TAXII collection id or title (discovered, never hard-coded)
    #[arg(long, global = true, value_name = "ID_OR_TITLE")]
    pub collection: Option<String>,

    /// TAXII Basic-auth user name; the key is the password [default: apikey]
    #[arg(long, global = true, value_name = "USER")]
    pub taxii_user: Option<String>,

    /// How the TAXII server gets the key: basic or bearer [default: basic]
    #[arg(long, global = true, value_name = "AUTH")]
    pub taxii_auth: Option<String>,

    /// Print every effective setting with where it came from (the key masked), then exit
    #[arg(long, global = true)]
    pub print_config: bool,

    /// Fetch and print, but leave the checkpoint alone
    #[arg(long, global = true)]
    pub dry_run: bool,
}

impl Opts {
    /// The settings given on the command line, by setting name.
    pub fn settings(&self) -> Vec<(&'static str, &str)> {
        let all: [(&'static str, &Option<String>); 28] = [
            ("input", &self.input),
            ("base_url", &self.base_url),
            ("state_dir", &self.state_dir),
            ("type", &self.r#type),
            ("confidence", &self.confidence),
            ("category", &self.category),
            ("industry", &self.industry),
            ("limit", &self.limit),
            ("max_pages", &self.max_pages),
            ("since", &self.since),
            ("tier", &self.tier),
            ("daily_budget", &self.daily_budget),
            ("api_key_file", &self.api_key_file),
            ("auth_header", &self.auth_header),
            ("ca_file", &self.ca_file),
            ("proxy", &self.proxy),
            ("timeout", &self.timeout),
            ("retries", &self.retries),
            ("max_body_bytes", &self.max_body_bytes),
            ("max_field_bytes", &self.max_field_bytes),
            ("credential", &self.credential),
            ("splunkd_url", &self.splunkd_url),
            ("splunkd_ca_file", &self.splunkd_ca_file),
            ("source", &self.source),
            ("taxii_url", &self.taxii_url),
            ("collection", &self.collection),
            ("taxii_user", &self.taxii_user),
            ("taxii_auth", &self.taxii_auth),
        ];
        all.into_iter()
            .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
            .collect()
    }
}

/// The value of `--input NAME` or `--input=NAME` in raw arguments, for naming the input in a
/// usage error's line (clap refused the command line, so its parse is not there).
pub fn input_arg(args: &[std::ffi::OsString]) -> Option<String> {
    let args: Vec<&str> = args.iter().filter_map(|a| a.to_str()).collect();
    args.iter().enumerate().find_map(|(i, a)| {
        a.strip_prefix("--input=")
            .map(str::to_string)
            .or_else(|| (*a == "--input").then(|| args.get(i + 1).map(|s| s.to_string()))?)
    })
}

/// splunkd appends `-index <name>` to a scripted input's arguments unless told not to; it is
/// not an option of ours, so it is dropped before clap sees it.
pub fn strip_splunkd_index(mut args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let n = args.len();
    if n >= 3 && args[n - 2] == "-index" {
        args.truncate(n - 2);
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_valid() {
        Cli::command().debug_assert();
    }

    #[test]
    fn trailing_index_pair_is_dropped() {
        let args = ["x", "--input", "ips", "-index", "main"]
            .map(Into::into)
            .to_vec();
        let cli = Cli::parse_from(strip_splunkd_index(args));
        assert_eq!(cli.opts.input.as_deref(), Some("ips"));
    }

    #[test]
    fn every_option_is_a_setting() {
        let cmd = Cli::command();
        let opts = Opts::default();
        let names: Vec<_> = cmd
            .get_arguments()
            .filter(|a| a.get_action().takes_values())
            .map(|a| a.get_id().as_str().to_string())
            .collect();
        assert_eq!(names.len(), 28, "{names:?}");
        assert!(opts.settings().is_empty());
        for n in names {
            assert!(crate::config::all_keys().contains(&n.as_str()), "{n}");
        }
    }
}

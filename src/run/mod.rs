//! What each command does: one run of the input (the loop is in [`engine`]), `check`,
//! `state show|reset`, `store-key`, `--print-config`.

pub mod check;
pub mod engine;

use anyhow::Result;

use crate::cli::{Cli, Command, StateAction};
use crate::config::{self, Config, SourceSettings};
use crate::output::write_out;
use crate::source::Source;
use crate::source::rest::Rest;
use crate::source::taxii::Taxii;
use crate::state::{self, Store};
use crate::{key, splunkd, timeutil};

pub fn main(cli: Cli) -> Result<()> {
    let cfg = config::resolve(&cli.opts.settings())?;
    if cli.opts.print_config {
        return print_config(&cfg);
    }
    match cli.command {
        None => with_source(&cfg, Run(cli.opts.dry_run)),
        Some(Command::Check) => with_source(&cfg, Check),
        Some(Command::State { action }) => state_cmd(&cfg, action),
        Some(Command::StoreKey) => splunkd::store_key(&cfg.splunkd),
    }
}

/// Something to do with the input's source, whichever it is.
pub trait Job {
    fn go<S: Source>(self, src: S, cfg: &Config) -> Result<()>;
}

struct Run(bool);

impl Job for Run {
    fn go<S: Source>(self, src: S, cfg: &Config) -> Result<()> {
        engine::run(src, cfg, self.0)
    }
}

struct Check;

impl Job for Check {
    fn go<S: Source>(self, src: S, cfg: &Config) -> Result<()> {
        check::check(src, cfg)
    }
}

/// Builds the input's source from its settings and hands it to `job`: the one place that
/// knows every source.
pub fn with_source(cfg: &Config, job: impl Job) -> Result<()> {
    let (fields, pages) = (cfg.max_field_bytes, cfg.max_pages);
    match &cfg.source {
        SourceSettings::Rest(s) => job.go(Rest::new(s.clone(), fields, pages), cfg),
        SourceSettings::Taxii(s) => job.go(Taxii::new(s.clone(), fields, pages), cfg),
    }
}

fn mask_userinfo(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}***{}", &url[..s + 3], &url[at..]),
        _ => url.to_string(),
    }
}

fn print_config(cfg: &Config) -> Result<()> {
    let source = cfg.source_name();
    let own: Vec<&str> = config::COMMON
        .iter()
        .chain(
            config::SOURCES
                .iter()
                .filter(|(n, _)| *n == source)
                .flat_map(|(_, t)| t.iter()),
        )
        .map(|s| s.key)
        .collect();
    let mut out = String::new();
    for key in config::all_keys() {
        let used = own.contains(&key);
        match cfg.values.get(key) {
            Some((v, origin)) => {
                let v = if key == "proxy" {
                    mask_userinfo(v)
                } else {
                    v.to_string()
                };
                let note = if used {
                    String::new()
                } else {
                    format!(" (not used: this input's source is {source})")
                };
                out.push_str(&format!("{key} = {v}    # {origin}{note}\n"));
            }
            None if used => out.push_str(&format!("{key} =    # not set\n")),
            None => {}
        }
    }
    let limit = match &cfg.source {
        SourceSettings::Rest(s) => s.limit,
        SourceSettings::Taxii(s) => s.limit,
    };
    out.push_str(&format!(
        "# effective: source {source}, state file {}, limit {limit}, since for a first run {}, daily budget {}\n",
        cfg.state_path().display(),
        timeutil::format_ms(cfg.since_ms),
        cfg.daily_budget
    ));
    let key_line = match key::resolve_local(&cfg.key) {
        Ok(Some((k, from))) => format!("api_key = {}    # {from}\n", k.masked()),
        Ok(None) => format!(
            "api_key = (from Splunk's secret store at run time: realm {}, username {})\n",
            splunkd::REALM,
            cfg.splunkd.credential
        ),
        Err(e) => format!("api_key = (error: {e:#})\n"),
    };
    out.push_str(&key_line);
    write_out(out.as_bytes())
}

fn state_cmd(cfg: &Config, action: StateAction) -> Result<()> {
    let store = Store::open(&cfg.state_dir, &cfg.input)?;
    match action {
        StateAction::Show => {
            let v = match state::load(&store)? {
                None => {
                    serde_json::json!({"input": cfg.input, "path": store.path(), "state": null})
                }
                Some(state::Loaded {
                    checkpoint: c,
                    from_version,
                }) => serde_json::json!({
                    "input": cfg.input,
                    "path": store.path(),
                    "version": from_version,
                    "source": c.source,
                    "cursor": c.cursor,
                    "remembered_versions": c.recent.len(),
                    "not_before": c.not_before_ms.map(timeutil::format_ms),
                    "requests_today": if c.budget_day == timeutil::utc_day(timeutil::now_ms()) { c.budget_used } else { 0 },
                    "last_success": c.last_success,
                }),
            };
            write_out(format!("{}\n", serde_json::to_string_pretty(&v)?).as_bytes())
        }
        StateAction::Reset => {
            let existed = store.reset()?;
            write_out(
                format!(
                    "{} {}\n",
                    if existed {
                        "deleted"
                    } else {
                        "there was no checkpoint at"
                    },
                    store.path().display()
                )
                .as_bytes(),
            )
        }
    }
}

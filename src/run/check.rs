//! `check`: the settings, the checkpoint, the key, and one request, said in plain words on
//! stdout; a failure is the usual one error line.

use anyhow::Result;

use crate::config::Config;
use crate::http::{Client, Net};
use crate::output::write_out;
use crate::source::Source;
use crate::{key, state, timeutil};

/// `check` of the input's source.
pub fn check<S: Source>(mut src: S, cfg: &Config) -> Result<()> {
    let say = |s: String| write_out(format!("{s}\n").as_bytes());
    say(format!(
        "settings: OK (input {}, source {}, {}, tier {:?})",
        cfg.input,
        S::NAME,
        src.target(),
        cfg.tier
    ))?;
    match state::load_file(&cfg.state_path())? {
        None => say(format!(
            "checkpoint: none yet at {} (first run starts at {})",
            cfg.state_path().display(),
            timeutil::format_ms(cfg.since_ms)
        ))?,
        Some(l) => say(format!(
            "checkpoint: OK at {} (format {}, last page printed {})",
            cfg.state_path().display(),
            l.from_version,
            l.checkpoint.last_success.as_deref().unwrap_or("never")
        ))?,
    }
    let (api_key, from) = key::resolve(&cfg.key, &cfg.splunkd)?;
    say(format!("API key: found ({}) from {from}", api_key.masked()))?;
    let client = Client::new(&cfg.net, src.target())?;
    let mut always = || true;
    let mut net = Net::new(&client, &api_key, &mut always);
    for line in src.check(&mut net, cfg.since_ms)? {
        say(line)?;
    }
    say("all checks passed: enable the input in Settings > Data inputs > Scripts".into())
}

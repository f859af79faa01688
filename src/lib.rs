//! The library behind `socdefenders-iocs`: everything but `main`, so the pure parts (page
//! decoding, event encoding, STIX patterns, the cursors) can be benchmarked from `benches/`.
//!
//! Layout: `run` (commands and the one loop, `run::engine`) drives a `source` (`source::rest`,
//! `source::taxii`) through the shared pieces: `config` (settings), `http` (the agent and the
//! one-origin rule), `output` (events, the page held until complete), `state` (the
//! checkpoint), `key` and `splunkd` (the API key), `log` (one line per message), `error`
//! (exit codes), `secret`, `setting` and `timeutil`.

pub mod cli;
pub mod config;
pub mod error;
pub mod http;
pub mod json;
pub mod key;
pub mod log;
pub mod output;
pub mod run;
pub mod secret;
pub mod setting;
pub mod source;
pub mod splunkd;
pub mod state;
pub mod timeutil;

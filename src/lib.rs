//! The library behind `socdefenders-iocs`: everything but `main`, so the pure parts (page
//! decoding, event encoding, STIX patterns, the checkpoint) can be benchmarked from `benches/`.

pub mod cli;
pub mod conf;
pub mod config;
pub mod decode;
pub mod error;
pub mod event;
pub mod http;
pub mod key;
pub mod log;
pub mod page;
pub mod rest;
pub mod run;
pub mod scan;
pub mod spill;
pub mod splunkd;
pub mod state;
pub mod stix;
pub mod taxii;
pub mod timeutil;

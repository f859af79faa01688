//! The per-input checkpoint: the source's cursor, the versions already printed, the
//! rate-limit pause and the daily request count; and the files it lives in.
//!
//! The format is versioned JSON. Version 2 keeps the source's cursor as that source writes it
//! (`source` names the source). Version 1 (releases up to 0.1.0 at commit 95ada40) is read
//! and upgraded in memory (see [`v1`]); the next save writes version 2. A newer version is
//! refused with a clear error and left untouched, as is anything unreadable.

pub mod checkpoint;
pub mod memory;
pub mod store;
pub mod v1;

use std::io::Write;
use std::path::Path;

use anyhow::Result;
use serde_json::Value;

use crate::error::{Kind, fail};
pub use checkpoint::{Checkpoint, Loaded, VERSION};
pub use memory::Recent;
pub use store::Store;

/// The checkpoint of `store`'s input, or `None` on a first run.
pub fn load(store: &Store) -> Result<Option<Loaded>> {
    load_file(store.path())
}

/// Replaces the checkpoint atomically. It is encoded straight into the file: a memory of
/// 10,000 versions would otherwise be a 400 KB buffer on top of the run's peak.
pub fn save(store: &Store, ck: &Checkpoint) -> Result<()> {
    store.save(|w| {
        let mut w = std::io::BufWriter::with_capacity(16 * 1024, w);
        serde_json::to_writer(&mut w, ck)?;
        w.write_all(b"\n")?;
        w.flush()
    })
}

/// Reads a checkpoint file; missing is `None`; anything else wrong is a State error with the
/// fix, and the file is left as it is.
pub fn load_file(path: &Path) -> Result<Option<Loaded>> {
    let bytes = match store::read(path)? {
        Some(b) => b,
        None => return Ok(None),
    };
    let input = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let reset = format!(
        "it was left untouched; to start over run: socdefenders-iocs state reset --input {input}"
    );
    let corrupt = |e: &dyn std::fmt::Display| {
        fail(
            Kind::State,
            format!(
                "the checkpoint {} is corrupt ({}); {reset}",
                path.display(),
                crate::log::excerpt(&e.to_string(), 200)
            ),
        )
    };
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| corrupt(&e))?;
    match value.get("version").and_then(Value::as_u64) {
        Some(1) => {
            let old: v1::State = serde_json::from_value(value).map_err(|e| corrupt(&e))?;
            Ok(Some(Loaded {
                checkpoint: old.upgrade(),
                from_version: 1,
            }))
        }
        Some(v) if v == u64::from(VERSION) => {
            let ck: Checkpoint = serde_json::from_value(value).map_err(|e| corrupt(&e))?;
            Ok(Some(Loaded {
                checkpoint: ck,
                from_version: VERSION,
            }))
        }
        Some(v) => Err(fail(
            Kind::State,
            format!(
                "the checkpoint {} has version {v}, and this program reads versions 1 and {VERSION}: it was written by a newer release. Reinstall that release, or start over (repeats are possible) with: socdefenders-iocs state reset --input {input}",
                path.display()
            ),
        )),
        None => Err(fail(
            Kind::State,
            format!(
                "the checkpoint {} has no version number; {reset}",
                path.display()
            ),
        )),
    }
}

//! The files of one input's checkpoint: the lock, the checkpoint, and its temporary twin.
//!
//! The state folder is created 0700 and every file in it 0600, whatever the umask: the
//! checkpoint is not secret, but nothing else on the host needs it. The lock and the temporary
//! file are opened without following symlinks and (the temporary file) created exclusively
//! with a random name, so a link planted in the folder cannot make a run write elsewhere.
//! A run killed between creating the temporary file and renaming it leaves it behind; the
//! next run of the input removes it once it holds the lock.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::error::{Kind, KindExt, fail};

/// The largest checkpoint read: 200,000 remembered versions take about 8 MB.
const MAX_CHECKPOINT_BYTES: u64 = 32 << 20;

/// The lock and files of one input's checkpoint.
pub struct Store {
    dir: PathBuf,
    input: String,
    path: PathBuf,
    _lock: File,
}

/// Creates the state folder (0700 on unix) if it is missing.
fn create_dir(dir: &Path) -> std::io::Result<()> {
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
}

/// Opens (creating, mode 0600) a file that must not be a symlink.
fn open_no_follow(path: &Path) -> std::io::Result<File> {
    let mut o = OpenOptions::new();
    o.create(true).truncate(false).write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    #[cfg(windows)]
    {
        use std::os::windows::fs::OpenOptionsExt;
        // FILE_FLAG_OPEN_REPARSE_POINT: open a link itself, never its target.
        o.custom_flags(0x0020_0000);
    }
    o.open(path)
}

impl Store {
    /// Creates the state directory if needed, takes the input's lock, and removes temporary
    /// files that killed runs of this input left behind.
    pub fn open(dir: &Path, input: &str) -> Result<Store> {
        create_dir(dir).kind(Kind::State, || {
            format!(
                "cannot create the state directory {}: fix its permissions or set state_dir",
                dir.display()
            )
        })?;
        let lock_path = dir.join(format!("{input}.lock"));
        let lock = open_no_follow(&lock_path).kind(Kind::State, || {
            format!(
                "cannot open the lock file {} (it must be a plain file, not a link): fix the state directory's contents or permissions",
                lock_path.display()
            )
        })?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(fail(
                    Kind::State,
                    format!(
                        "another run of input {input} is still going (it holds {}); this run did nothing. If runs keep overlapping, lengthen the interval",
                        lock_path.display()
                    ),
                ));
            }
            Err(fs::TryLockError::Error(e)) => {
                return Err(e).kind(Kind::State, || {
                    format!("cannot lock {}", lock_path.display())
                });
            }
        }
        let store = Store {
            dir: dir.to_path_buf(),
            input: input.to_string(),
            path: dir.join(format!("{input}.json")),
            _lock: lock,
        };
        store.remove_stale_temps();
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `<input>.json.tmp` followed by the random part the temporary file got (or, from
    /// format 1 releases, a process id).
    fn is_temp_name(&self, name: &str) -> bool {
        name.strip_prefix(&self.input)
            .and_then(|r| r.strip_prefix(".json.tmp"))
            .is_some_and(|r| {
                (1..=16).contains(&r.len()) && r.bytes().all(|b| b.is_ascii_alphanumeric())
            })
    }

    fn remove_stale_temps(&self) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for e in entries.flatten() {
            if e.file_name().to_str().is_some_and(|n| self.is_temp_name(n)) {
                // A link is removed itself, never followed.
                let _ = fs::remove_file(e.path());
            }
        }
    }

    /// Replaces the checkpoint atomically with what `write` writes: a new temporary file
    /// (exclusive, 0600), its data synced, then renamed over the checkpoint.
    pub fn save(&self, write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> Result<()> {
        let fail_msg = || {
            format!(
                "cannot save the checkpoint {}: check free space and permissions; the next run repeats this page",
                self.path.display()
            )
        };
        // The data is synced before the rename, so a crash never leaves a torn checkpoint. The
        // folder is not synced after it: if power loss undoes the rename, the previous
        // checkpoint is still whole and the page is printed again (at least once, never
        // lost), and that saves a second sync on every run.
        let written = (|| -> std::io::Result<()> {
            let mut tmp = tempfile::Builder::new()
                .prefix(&format!("{}.json.tmp", self.input))
                .rand_bytes(8)
                .tempfile_in(&self.dir)?;
            write(tmp.as_file_mut())?;
            tmp.as_file().sync_data()?;
            tmp.persist(&self.path).map_err(|e| e.error)?;
            Ok(())
        })();
        written.kind(Kind::State, fail_msg)
    }

    /// Deletes the checkpoint.
    pub fn reset(&self) -> Result<bool> {
        match fs::remove_file(&self.path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e).kind(Kind::State, || {
                format!("cannot delete {}", self.path.display())
            }),
        }
    }
}

/// The bytes of a checkpoint file, `None` when it does not exist; bounded.
pub fn read(path: &Path) -> Result<Option<Vec<u8>>> {
    let cant = || format!("cannot read the checkpoint {}", path.display());
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).kind(Kind::State, cant),
    };
    let mut bytes = Vec::new();
    f.take(MAX_CHECKPOINT_BYTES + 1)
        .read_to_end(&mut bytes)
        .kind(Kind::State, cant)?;
    if bytes.len() as u64 > MAX_CHECKPOINT_BYTES {
        return Err(fail(
            Kind::State,
            format!(
                "the checkpoint {} is larger than {MAX_CHECKPOINT_BYTES} bytes, which no checkpoint grows to; it was left untouched. Start over with: socdefenders-iocs state reset",
                path.display()
            ),
        ));
    }
    Ok(Some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_of_this_input_only() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path(), "ips").unwrap();
        assert!(s.is_temp_name("ips.json.tmp12345"));
        assert!(s.is_temp_name("ips.json.tmpAbC123xy"));
        assert!(!s.is_temp_name("ips.json.tmp"));
        assert!(!s.is_temp_name("ips.json"));
        assert!(!s.is_temp_name("ipsx.json.tmp1"));
        assert!(!s.is_temp_name("ips.json.tmp1.json"));
    }
}

//! A page's output, held back until the page is known to be complete.
//!
//! Lines collect in memory up to a cap, then move to an unlinked temporary file in the state
//! directory, so memory stays flat whatever the page size. Only when the page parsed to the
//! end is everything copied to stdout; a page that fails halfway prints nothing.

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{Kind, KindExt};

/// Bytes kept in memory before spilling to disk.
pub const MEMORY_CAP: usize = 256 * 1024;

pub struct Spill {
    buf: Vec<u8>,
    file: Option<File>,
    dir: PathBuf,
}

impl Spill {
    pub fn new(dir: &Path) -> Spill {
        Spill {
            buf: Vec::with_capacity(16 * 1024),
            file: None,
            dir: dir.to_path_buf(),
        }
    }

    /// Lets `f` append to the buffer directly (no intermediate copy), then spills to the file
    /// if the buffer went over the cap.
    pub fn append(&mut self, f: impl FnOnce(&mut Vec<u8>)) -> anyhow::Result<()> {
        f(&mut self.buf);
        if self.buf.len() <= MEMORY_CAP {
            return Ok(());
        }
        let spilled = (|| -> io::Result<()> {
            let file = match &mut self.file {
                Some(f) => f,
                None => self.file.insert(temp_file(&self.dir)?),
            };
            file.write_all(&self.buf)
        })();
        self.buf.clear();
        spilled.kind(Kind::Output, || {
            format!(
                "cannot hold the page's events in {}: check free space; nothing was printed",
                self.dir.display()
            )
        })
    }

    /// Copies everything, in order, to `out` and flushes it.
    pub fn finish(mut self, out: &mut impl Write) -> io::Result<()> {
        if let Some(f) = &mut self.file {
            f.seek(SeekFrom::Start(0))?;
            io::copy(f, out)?;
        }
        out.write_all(&self.buf)?;
        out.flush()
    }
}

/// A file that disappears when closed (or when the process dies).
fn temp_file(dir: &Path) -> io::Result<File> {
    std::fs::create_dir_all(dir)?;
    for n in 0..100u32 {
        let path = dir.join(format!(".spill-{}-{n}", std::process::id()));
        match OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(f) => {
                std::fs::remove_file(&path)?;
                return Ok(f);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other("cannot create a spill file"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_is_kept_across_memory_and_disk_and_nothing_is_left_behind() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spill::new(dir.path());
        let mut want = Vec::new();
        for i in 0..50_000u32 {
            let line = format!("{{\"n\":{i}}}\n");
            s.append(|b| b.extend_from_slice(line.as_bytes())).unwrap();
            want.extend_from_slice(line.as_bytes());
        }
        let big = vec![b'x'; MEMORY_CAP * 2];
        s.append(|b| b.extend_from_slice(&big)).unwrap();
        want.extend_from_slice(&big);
        s.append(|b| b.extend_from_slice(b"end\n")).unwrap();
        want.extend_from_slice(b"end\n");
        for i in 0..40_000u32 {
            s.append(|b| b.extend_from_slice(format!("[{i}]\n").as_bytes()))
                .unwrap();
            want.extend_from_slice(format!("[{i}]\n").as_bytes());
        }
        let mut out = Vec::new();
        s.finish(&mut out).unwrap();
        assert_eq!(out, want);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}

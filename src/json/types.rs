//! What the readers report and where they write: errors, string facts, bounded buffers.

/// Why a body could not be read.
#[derive(Debug)]
pub enum Error {
    /// The body ended before the JSON did.
    Truncated,
    /// Not JSON, or not the shape the caller needs.
    Malformed(String),
    /// More than the configured number of bytes.
    TooLarge,
    Io(std::io::Error),
    /// The caller refused an element (for example stdout or the spill file failed).
    Sink(anyhow::Error),
}

impl std::error::Error for Error {}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Truncated => f.write_str("the JSON ends early"),
            Error::Malformed(m) => f.write_str(m),
            Error::TooLarge => f.write_str("larger than the size limit"),
            Error::Io(e) => write!(f, "{e}"),
            Error::Sink(e) => write!(f, "{e:#}"),
        }
    }
}

/// What a string held, besides the part that was kept.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Str {
    /// Its decoded length in bytes.
    pub len: usize,
    /// It had escaped lone surrogates, read as U+FFFD.
    pub surrogates: bool,
}

/// A buffer that stops growing at its cap: writes past it are counted, not kept, so a
/// caller can tell what the whole would have taken ([`Bounded::over`]).
#[derive(Debug, Default)]
pub struct Bounded {
    pub buf: Vec<u8>,
    cap: usize,
    /// Bytes written, kept or not.
    pub total: usize,
}

impl Bounded {
    pub fn new(cap: usize) -> Bounded {
        Bounded {
            buf: Vec::new(),
            cap,
            total: 0,
        }
    }

    pub fn cap(&self) -> usize {
        self.cap
    }

    /// More was written than the cap.
    pub fn over(&self) -> bool {
        self.total > self.cap
    }

    pub fn push(&mut self, b: u8) {
        self.extend(&[b]);
    }

    pub fn extend(&mut self, s: &[u8]) {
        self.total += s.len();
        if self.total <= self.cap {
            self.buf.extend_from_slice(s);
        }
    }

    pub fn clear(&mut self) {
        self.buf.clear();
        self.total = 0;
    }
}

/// Flags a copied value raised.
#[derive(Debug, Default, Clone, Copy)]
pub struct Flags {
    /// A string was longer than the cap and was cut.
    pub cut: bool,
    /// A string had escaped lone surrogates, read as U+FFFD.
    pub surrogates: bool,
}

//! Failure kinds and the exit codes they map to.
//!
//! Every error that reaches `main` is printed as one line; the outermost [`Failure`] in its
//! chain decides the exit code, so a caller that wraps an error with a kind of its own (say,
//! "splunkd could not be used" around "no CA file") decides what the operator is told to fix.
//! Errors without a kind are internal (exit 1).

use std::fmt;

/// What went wrong, as far as an operator is concerned. The numbers are documented in the
/// README and in `--help`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A bug (a panic, or an error no code path gave a kind): exit 1.
    Internal,
    /// The command line itself is wrong (clap's verdict).
    Usage,
    /// Bad setting, unreadable settings file or key file.
    Config,
    /// The API refused the key (401/403).
    Auth,
    /// The API said 429.
    RateLimit,
    /// Network failure, timeout, 5xx, or a response that is not the documented shape.
    Upstream,
    /// stdout could not be written (closed pipe, full disk), or the run was stopped while
    /// printing.
    Output,
    /// The checkpoint file is corrupt, of an unknown version, locked, or cannot be written.
    State,
    /// No session token from splunkd, or splunkd refused it, or could not be reached.
    Splunkd,
    /// The credential is not in splunkd's secret store.
    Credential,
}

impl Kind {
    pub fn exit_code(self) -> u8 {
        match self {
            Kind::Internal => 1,
            Kind::Usage | Kind::Config => 2,
            Kind::Auth => 3,
            Kind::RateLimit => 4,
            Kind::Upstream => 5,
            Kind::Output => 6,
            Kind::State => 7,
            Kind::Splunkd => 8,
            Kind::Credential => 9,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Internal => "internal",
            Kind::Usage => "usage",
            Kind::Config => "config",
            Kind::Auth => "auth",
            Kind::RateLimit => "rate_limit",
            Kind::Upstream => "upstream",
            Kind::Output => "output",
            Kind::State => "state",
            Kind::Splunkd => "splunkd",
            Kind::Credential => "credential",
        }
    }
}

/// An error with a kind and a message that already says what to do about it.
#[derive(Debug)]
pub struct Failure {
    pub kind: Kind,
    pub msg: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for Failure {}

/// Builds an `anyhow::Error` of the given kind.
pub fn fail(kind: Kind, msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Failure {
        kind,
        msg: msg.into(),
    })
}

/// Tags any error with a kind and a message, keeping the cause chain.
pub trait KindExt<T> {
    fn kind(self, kind: Kind, msg: impl FnOnce() -> String) -> anyhow::Result<T>;
}

impl<T, E> KindExt<T> for Result<T, E>
where
    E: Into<anyhow::Error>,
{
    fn kind(self, kind: Kind, msg: impl FnOnce() -> String) -> anyhow::Result<T> {
        self.map_err(|e| e.into().context(Failure { kind, msg: msg() }))
    }
}

/// The kind of an error: its outermost `Failure`. anyhow's `downcast_ref` looks at the
/// outermost context first and then inward, which is exactly that order.
pub fn kind_of(err: &anyhow::Error) -> Kind {
    err.downcast_ref::<Failure>()
        .map_or(Kind::Internal, |f| f.kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outermost_kind_decides() {
        let inner = fail(Kind::Config, "no CA file");
        let outer: anyhow::Result<()> = Err(inner).kind(Kind::Splunkd, || "splunkd".into());
        assert_eq!(kind_of(&outer.unwrap_err()), Kind::Splunkd);
        let io: Result<(), std::io::Error> = Err(std::io::Error::other("x"));
        let tagged = io.kind(Kind::State, || "state".into()).unwrap_err();
        let twice = Err::<(), _>(tagged)
            .kind(Kind::Output, || "out".into())
            .unwrap_err();
        assert_eq!(kind_of(&twice), Kind::Output);
        assert_eq!(kind_of(&anyhow::anyhow!("plain")), Kind::Internal);
        // A context without a kind over a kinded error keeps the inner kind.
        let ctx = fail(Kind::Auth, "refused").context("while fetching");
        assert_eq!(kind_of(&ctx), Kind::Auth);
    }
}

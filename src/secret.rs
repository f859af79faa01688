//! Secrets: the type that never prints, and the registry every output line is scrubbed against.
//!
//! A leaf: it imports nothing from the crate, so any module may hold a [`Secret`].

use std::borrow::Cow;
use std::fmt;
use std::sync::Mutex;

static REGISTRY: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// A secret that never prints: `Debug` and `Display` show only `***`. Creating one registers
/// it, so [`scrub`] removes it from any text whatever path that text took.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Secret {
        // Shorter strings would scrub ordinary words out of messages.
        if s.len() >= 4
            && let Ok(mut reg) = REGISTRY.lock()
            && !reg.contains(&s)
        {
            reg.push(s.clone());
        }
        Secret(s)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// First 8 characters and the length, as the SOC Defenders dashboard shows a key's prefix.
    pub fn masked(&self) -> String {
        let prefix: String = self.0.chars().take(8).collect();
        format!("{prefix}*** ({} chars)", self.0.chars().count())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// `text` with every registered secret replaced by `***`. Run it on whole text, before any
/// cut: a cut first could leave a secret's prefix that no longer matches.
pub fn scrub(text: &str) -> Cow<'_, str> {
    let Ok(reg) = REGISTRY.lock() else {
        return Cow::Borrowed(text);
    };
    let mut out = Cow::Borrowed(text);
    for s in reg.iter() {
        if out.contains(s.as_str()) {
            out = Cow::Owned(out.replace(s.as_str(), "***"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_format_and_are_scrubbed() {
        let s = Secret::new("sk_live_abcdefgh1234".into());
        assert_eq!(format!("{s:?} {s}"), "Secret(***) ***");
        assert_eq!(s.masked(), "sk_live_*** (20 chars)");
        assert_eq!(
            scrub("a sk_live_abcdefgh1234 b sk_live_abcdefgh1234"),
            "a *** b ***"
        );
        assert_eq!(scrub("sk_live_abcdefgh123"), "sk_live_abcdefgh123");
    }
}

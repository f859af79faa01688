//! The REST source's settings.

use anyhow::Result;

use crate::setting::{Setting, Tier, Values, setting};

/// The REST source's own settings and built-in defaults.
pub const SETTINGS: &[Setting] = &[
    setting("base_url", Some("https://socdefenders.ai")),
    setting("type", None),
    setting("confidence", None),
    setting("category", None),
    setting("industry", None),
    setting("limit", Some("100")),
    setting("auth_header", Some("bearer")),
];

/// The IOC types the API documents; `mitre-attack` is the older spelling of `mitre_attack`.
pub const IOC_TYPES: &[&str] = &[
    "ipv4",
    "ipv6",
    "domain",
    "url",
    "md5",
    "sha1",
    "sha256",
    "sha512",
    "email",
    "cve",
    "mitre_attack",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthHeader {
    Bearer,
    XApiKey,
}

/// Everything the REST source needs, validated. Each field documents its setting.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `base_url`: scheme, host and optional port of the API, no trailing slash.
    pub base_url: String,
    /// `type`: IOC types, sent comma-joined; empty means all.
    pub types: Vec<String>,
    /// `confidence`, `category`, `industry`: server-side filters.
    pub confidence: Option<String>,
    pub category: Option<String>,
    pub industry: Option<String>,
    /// `limit`: IOCs per request, capped at the tier's maximum.
    pub limit: u32,
    /// `auth_header`: how the key is sent.
    pub auth_header: AuthHeader,
    /// `tier`, for its lookback (the stale-checkpoint warning).
    pub tier: Tier,
}

/// The most IOCs one request may ask for on a tier.
pub fn max_limit(tier: Tier) -> u32 {
    match tier {
        Tier::Free => 100,
        Tier::Pro => 10_000,
    }
}

impl Settings {
    pub fn from_values(v: &Values, tier: Tier) -> Result<Settings> {
        let base_url = v.url("base_url")?.unwrap_or_default();
        let mut types = Vec::new();
        if let Some(list) = v.string("type") {
            for t in list.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                let t = if t == "mitre-attack" {
                    "mitre_attack"
                } else {
                    t
                };
                if !IOC_TYPES.contains(&t) {
                    return Err(v.bad(
                        "type",
                        &format!(
                            "has unknown type {:?}; valid: {}",
                            crate::log::excerpt(t, 40),
                            IOC_TYPES.join(", ")
                        ),
                    ));
                }
                if !types.iter().any(|x| x == t) {
                    types.push(t.to_string());
                }
            }
        }
        let confidence = v
            .choice(
                "confidence",
                &[("high", "high"), ("medium", "medium"), ("low", "low")],
            )?
            .map(str::to_string);
        for key in ["category", "industry"] {
            if let Some(s) = v.string(key)
                && (s.len() > 64
                    || !s
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_+".contains(c)))
            {
                return Err(v.bad(key, "must be a slug such as threat-intel"));
            }
        }
        let mut limit = v.number::<u32>("limit", 1, 10_000)?.unwrap_or(100);
        if limit > max_limit(tier) {
            crate::log::warn(&format!(
                "limit {limit} is above the {} tier's {} IOCs per request; using {}. Set tier = pro if your key is Pro",
                if tier == Tier::Free { "Free" } else { "Pro" },
                max_limit(tier),
                max_limit(tier)
            ));
            limit = max_limit(tier);
        }
        let auth_header = v
            .choice(
                "auth_header",
                &[
                    ("bearer", AuthHeader::Bearer),
                    ("x-api-key", AuthHeader::XApiKey),
                ],
            )?
            .unwrap_or(AuthHeader::Bearer);
        Ok(Settings {
            base_url,
            types,
            confidence,
            category: v.string("category"),
            industry: v.string("industry"),
            limit,
            auth_header,
            tier,
        })
    }

    /// Changes whenever the server-side filters change, so a walk in progress is not
    /// continued with offsets that belong to another result set.
    pub fn fingerprint(&self) -> String {
        format!(
            "rest base_url={} type={} confidence={} category={} industry={}",
            self.base_url,
            self.types.join(","),
            self.confidence.as_deref().unwrap_or(""),
            self.category.as_deref().unwrap_or(""),
            self.industry.as_deref().unwrap_or("")
        )
    }
}

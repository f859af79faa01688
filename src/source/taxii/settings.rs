//! The TAXII source's settings.

use anyhow::Result;

use crate::error::{Kind, fail};
use crate::setting::{Setting, Values, setting};

/// The TAXII source's own settings and built-in defaults.
pub const SETTINGS: &[Setting] = &[
    setting("taxii_url", None),
    setting("collection", None),
    setting("taxii_user", Some("apikey")),
    setting("taxii_auth", Some("basic")),
    setting("limit", Some("1000")),
];

/// TAXII servers cap pages at 1000 objects (SOC Defenders documents it).
pub const MAX_LIMIT: u32 = 1000;

/// How the TAXII server gets the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Auth {
    /// HTTP Basic, user `taxii_user`, password the key.
    Basic,
    Bearer,
}

/// Everything the TAXII source needs, validated. Each field documents its setting.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `taxii_url`: a discovery URL or an API root, with a trailing slash.
    pub url: String,
    /// `collection`: an id or a title, found by discovery.
    pub collection: String,
    /// `taxii_user`: the Basic-auth user; the key is the password.
    pub user: String,
    /// `taxii_auth`: basic or bearer.
    pub auth: Auth,
    /// `limit`: objects per request, at most [`MAX_LIMIT`].
    pub limit: u32,
}

impl Settings {
    pub fn from_values(v: &Values) -> Result<Settings> {
        let url = v.url("taxii_url")?;
        let collection = v.string("collection");
        let (Some(url), Some(collection)) = (url, collection) else {
            return Err(fail(
                Kind::Config,
                "source = taxii needs taxii_url (a discovery URL or API root, e.g. https://www.socdefenders.ai/api/taxii2/) and collection (an id or title)",
            ));
        };
        let auth = v
            .choice(
                "taxii_auth",
                &[("basic", Auth::Basic), ("bearer", Auth::Bearer)],
            )?
            .unwrap_or(Auth::Basic);
        let mut limit = v.number::<u32>("limit", 1, 10_000)?.unwrap_or(MAX_LIMIT);
        if limit > MAX_LIMIT {
            crate::log::warn(&format!(
                "limit {limit} is above TAXII's {MAX_LIMIT} objects per request; using {MAX_LIMIT}"
            ));
            limit = MAX_LIMIT;
        }
        Ok(Settings {
            url: url + "/",
            collection,
            user: v.string("taxii_user").unwrap_or_else(|| "apikey".into()),
            auth,
            limit,
        })
    }

    /// Changes whenever the collection read changes.
    pub fn fingerprint(&self) -> String {
        format!("taxii url={} collection={}", self.url, self.collection)
    }
}

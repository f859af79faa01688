//! The TAXII 2.1 source: discovery → API root → collection, and one page of objects.
//!
//! Collection ids are always discovered (by id or title), never hard-coded, and the resolved
//! objects URL is cached in the checkpoint until the settings change or it answers 404.
//! Both paging styles are read: the specification's envelope `{more, next, objects}`, and
//! SOC Defenders' STIX bundle paged by feeding `X-TAXII-Date-Added-Last` back as
//! `added_after`.
//!
//! # Cursor
//! Objects are listed by `date_added`, and `added_after` is exclusive. Many objects can share
//! one `date_added` and a page can end inside such a group, so the checkpoint is *one
//! microsecond before* the last page's `X-TAXII-Date-Added-Last`: the next run reads that
//! group again (the repeats are filtered by the version memory) and skips nothing. A group
//! bigger than a page is crossed inside one run with the server's `next` token, because
//! tokens expire long before the next run. A server with neither `next` nor room to progress
//! leaves no choice but to step past the group, and a warning says so.

use anyhow::Result;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{Config, TaxiiAuth};
use crate::error::{Kind, fail};
use crate::http::{self, Client, Response};
use crate::key::Secret;
use crate::timeutil;
use crate::{log, page};

pub const MEDIA_TYPE: &str = "application/taxii+json;version=2.1";

/// The TAXII part of the checkpoint.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TaxiiCursor {
    /// `added_after` of the next run, as the server writes timestamps (microseconds kept).
    pub added_after: String,
    /// The resolved objects URL, and the settings it was resolved from.
    pub objects_url: String,
    pub resolved_from: String,
    /// Title of the collection, for the events' `collection` field.
    pub collection_title: String,
    /// Consecutive runs that ended with objects still waiting (a backlog that one run per
    /// interval does not drain).
    #[serde(default)]
    pub behind_runs: u32,
}

/// One page of objects.
pub struct Page {
    pub objects: Vec<Value>,
    pub more: bool,
    pub next: Option<String>,
    pub date_added_last: Option<String>,
    /// The body was a STIX bundle (SOC Defenders style) rather than an envelope.
    pub bundle: bool,
}

fn auth(cfg: &Config, key: &Secret) -> String {
    match cfg.taxii_auth {
        TaxiiAuth::Basic => http::basic_auth(&cfg.taxii_user, key),
        TaxiiAuth::Bearer => format!("Bearer {}", key.expose()),
    }
}

/// Resolves a possibly relative URL against the URL it came from.
fn resolve(base: &str, link: &str) -> String {
    if link.starts_with("http://") || link.starts_with("https://") {
        return link.to_string();
    }
    let origin = http::origin(base).unwrap_or_default();
    if link.starts_with('/') {
        format!("{origin}{link}")
    } else {
        format!("{}/{link}", base.trim_end_matches('/'))
    }
}

fn check_status(resp: &Response, what: &str, url: &str) -> Result<()> {
    match resp.status {
        200 | 206 => Ok(()),
        401 | 403 => Err(fail(
            Kind::Auth,
            format!(
                "the TAXII server refused the key: HTTP {} on {what}; check the key, taxii_auth (basic or bearer) and taxii_user, and that your plan includes TAXII (SOC Defenders: Pro)",
                resp.status
            ),
        )),
        406 | 415 => Err(fail(
            Kind::Upstream,
            format!(
                "the server at {url} does not accept TAXII 2.1 (HTTP {} to Accept: {MEDIA_TYPE}); check that taxii_url points at a TAXII 2.1 server",
                resp.status
            ),
        )),
        404 => Err(fail(
            Kind::Config,
            format!("{url} answered 404 on {what}; check taxii_url and collection"),
        )),
        300..=399 => Err(fail(
            Kind::Upstream,
            format!(
                "{url} redirects (HTTP {}) to {}; redirects are not followed so the key stays with the configured host. Set taxii_url to the new location if you trust it",
                resp.status,
                resp.header("location")
                    .and_then(http::origin)
                    .unwrap_or_default()
            ),
        )),
        s => Err(fail(
            Kind::Upstream,
            format!("unexpected HTTP {s} from the TAXII server on {what}"),
        )),
    }
}

/// A TAXII response body must be TAXII 2.1 JSON: a media type naming another version is an error.
fn check_media(resp: &Response, url: &str) -> Result<()> {
    let ct = resp
        .header("content-type")
        .unwrap_or("")
        .to_ascii_lowercase();
    if let Some(v) = ct
        .split(';')
        .find_map(|p| p.trim().strip_prefix("version="))
        && v.trim() != "2.1"
    {
        return Err(fail(
            Kind::Upstream,
            format!(
                "{url} answered TAXII/STIX version {v}, not 2.1; this input speaks TAXII 2.1 only"
            ),
        ));
    }
    if ct.contains("html") {
        return Err(fail(
            Kind::Upstream,
            format!(
                "{url} answered with an HTML page, not TAXII JSON: a proxy login page? Check taxii_url and proxy"
            ),
        ));
    }
    Ok(())
}

fn json_body(resp: &Response, url: &str) -> Result<Value> {
    let text = String::from_utf8_lossy(&resp.body);
    if text.trim().is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    let (value, replaced) = page::parse_lossy(&text).map_err(|e| {
        fail(
            Kind::Upstream,
            format!("{url} sent a body that is not JSON ({e}); nothing was printed and the checkpoint did not move"),
        )
    })?;
    if replaced {
        log::warn(&format!(
            "{url} sent escaped lone UTF-16 surrogates, which are not Unicode; they are printed as U+FFFD"
        ));
    }
    Ok(value)
}

fn get_json(
    client: &Client,
    url: &str,
    auth: &str,
    what: &str,
    before_each: &mut dyn FnMut() -> Result<()>,
) -> Result<Value> {
    let resp = client.get(
        url,
        &[("Authorization", auth), ("Accept", MEDIA_TYPE)],
        what,
        before_each,
    )?;
    check_status(&resp, what, url)?;
    check_media(&resp, url)?;
    json_body(&resp, url)
}

/// Discovery (or an API root given directly) → the collection's objects URL and title.
pub fn discover(
    client: &Client,
    cfg: &Config,
    key: &Secret,
    before_each: &mut dyn FnMut() -> Result<()>,
) -> Result<(String, String)> {
    let url = cfg.taxii_url.clone().expect("checked by config");
    let wanted = cfg.collection.clone().expect("checked by config");
    let auth = auth(cfg, key);
    let first = get_json(client, &url, &auth, "TAXII discovery", before_each)?;
    let api_root = if let Some(roots) = first.get("api_roots").and_then(Value::as_array) {
        let chosen = first
            .get("default")
            .and_then(Value::as_str)
            .or_else(|| roots.first().and_then(Value::as_str))
            .ok_or_else(|| {
                fail(
                    Kind::Upstream,
                    format!("the discovery document at {url} lists no API root"),
                )
            })?;
        resolve(&url, chosen)
    } else {
        url.clone()
    };
    let api_root = format!("{}/", api_root.trim_end_matches('/'));
    let collections_url = format!("{api_root}collections/");
    let list = get_json(
        client,
        &collections_url,
        &auth,
        "TAXII collections",
        before_each,
    )?;
    let cols = list
        .get("collections")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let found = cols
        .iter()
        .find(|c| c.get("id").and_then(Value::as_str) == Some(wanted.as_str()))
        .or_else(|| {
            cols.iter().find(|c| {
                c.get("title")
                    .and_then(Value::as_str)
                    .is_some_and(|t| t.eq_ignore_ascii_case(&wanted))
            })
        });
    let Some(col) = found else {
        let names: Vec<String> = cols
            .iter()
            .map(|c| {
                format!(
                    "{} ({})",
                    c.get("id").and_then(Value::as_str).unwrap_or("?"),
                    c.get("title").and_then(Value::as_str).unwrap_or("")
                )
            })
            .collect();
        return Err(fail(
            Kind::Config,
            format!(
                "no TAXII collection with id or title {wanted:?} at {api_root}; available: {}",
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            ),
        ));
    };
    if col.get("can_read").and_then(Value::as_bool) == Some(false) {
        return Err(fail(
            Kind::Auth,
            format!(
                "the TAXII collection {wanted:?} is not readable with this key (can_read = false)"
            ),
        ));
    }
    let id = col.get("id").and_then(Value::as_str).unwrap_or_default();
    let title = col
        .get("title")
        .and_then(Value::as_str)
        .unwrap_or(id)
        .to_string();
    Ok((
        format!("{collections_url}{}/objects/", http::enc(id)),
        title,
    ))
}

/// One objects request.
pub fn fetch(
    client: &Client,
    cfg: &Config,
    key: &Secret,
    objects_url: &str,
    added_after: &str,
    next: Option<&str>,
    before_each: &mut dyn FnMut() -> Result<()>,
) -> Result<FetchedPage> {
    let mut url = format!(
        "{objects_url}?added_after={}&limit={}",
        http::enc(added_after),
        cfg.limit
    );
    if let Some(n) = next {
        url.push_str(&format!("&next={}", http::enc(n)));
    }
    let auth = auth(cfg, key);
    let resp = client.get(
        &url,
        &[("Authorization", &auth), ("Accept", MEDIA_TYPE)],
        "TAXII objects",
        before_each,
    )?;
    if resp.status == 429 {
        return Ok(FetchedPage::RateLimited(crate::rest::retry_at(
            &resp,
            crate::timeutil::now_ms(),
        )));
    }
    if resp.status == 404 {
        return Ok(FetchedPage::Gone);
    }
    check_status(&resp, "TAXII objects", objects_url)?;
    check_media(&resp, objects_url)?;
    let Value::Object(mut v) = json_body(&resp, objects_url)? else {
        return Err(fail(
            Kind::Upstream,
            format!("{objects_url} sent JSON that is not an object"),
        ));
    };
    let bundle = v.get("type").and_then(Value::as_str) == Some("bundle");
    // Taken out of the body, not copied: a page can hold 1,000 objects.
    let objects = match v.remove("objects") {
        None => Vec::new(),
        Some(Value::Array(a)) => a,
        Some(_) => {
            return Err(fail(
                Kind::Upstream,
                format!("{objects_url} sent \"objects\" that is not a list; nothing was printed"),
            ));
        }
    };
    let next = v.get("next").and_then(Value::as_str).map(str::to_string);
    let more = match v.get("more").and_then(Value::as_bool) {
        Some(m) => m,
        // A bundle has no "more": a full page means there may be more.
        None => bundle && !objects.is_empty() && objects.len() as u64 >= u64::from(cfg.limit),
    };
    Ok(FetchedPage::Page(Page {
        objects,
        more,
        next,
        date_added_last: resp.header("x-taxii-date-added-last").map(str::to_string),
        bundle,
    }))
}

pub enum FetchedPage {
    Page(Page),
    RateLimited(i64),
    /// 404: the cached objects URL is stale.
    Gone,
}

/// A timestamp one microsecond earlier, in RFC 3339 with microseconds.
pub fn just_before(ts: &str) -> Option<String> {
    let t = timeutil::parse(ts)? - time::Duration::microseconds(1);
    Some(timeutil::format_us(t))
}

/// Where the checkpoint goes after a page: just before the page's last `date_added`, but
/// never backwards. `None` when the page gives no way forward (no header, or stuck in a group).
pub fn next_added_after(current: &str, date_added_last: Option<&str>) -> Option<String> {
    let last = date_added_last?;
    let candidate = just_before(last)?;
    match (timeutil::parse(&candidate), timeutil::parse(current)) {
        (Some(c), Some(cur)) if c > cur => Some(candidate),
        (Some(_), None) => Some(candidate),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn just_before_keeps_microseconds() {
        assert_eq!(
            just_before("2026-01-01T00:00:00.000000Z").unwrap(),
            "2025-12-31T23:59:59.999999Z"
        );
        assert_eq!(
            just_before("2026-01-01T00:00:01.5Z").unwrap(),
            "2026-01-01T00:00:01.499999Z"
        );
    }

    #[test]
    fn cursor_moves_forward_only() {
        let cur = "2026-01-01T00:00:00.000000Z";
        assert_eq!(
            next_added_after(cur, Some("2026-01-01T00:00:05.000000Z")).unwrap(),
            "2026-01-01T00:00:04.999999Z"
        );
        // a page that is all one group just after the cursor: no way forward by timestamp
        assert_eq!(
            next_added_after(
                "2026-01-01T00:00:04.999999Z",
                Some("2026-01-01T00:00:05.000000Z")
            ),
            None
        );
        assert_eq!(next_added_after(cur, None), None);
    }

    #[test]
    fn relative_links_resolve() {
        assert_eq!(
            resolve("https://h.example/taxii2/", "/api1/"),
            "https://h.example/api1/"
        );
        assert_eq!(
            resolve("https://h.example/taxii2/", "https://o.example/r/"),
            "https://o.example/r/"
        );
        assert_eq!(
            resolve("https://h.example/taxii2/", "api1/"),
            "https://h.example/taxii2/api1/"
        );
    }
}

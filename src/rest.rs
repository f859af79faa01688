//! The REST source: `GET {base_url}/api/v1/iocs` for one cursor position, every status
//! mapped on purpose, and the page parsed in full before anything is printed.
//!
//! Requests are always built from the checkpoint against `base_url`; `links.next` is only read
//! as a "there is more" signal and never followed, so the key cannot be sent to another host.

use anyhow::Result;
use serde_json::Value;

use crate::config::{AuthHeader, Config};
use crate::decode;
use crate::error::{Kind, fail};
use crate::event::Found;
use crate::http::{self, Client, Response, Sent};
use crate::key::Secret;
use crate::page;
use crate::state::Cursor;
use crate::timeutil;

/// What a page held besides its records (those went to the sink).
#[derive(Debug, PartialEq)]
pub struct Page {
    /// Records in the page, valid or not: their count moves the offset.
    pub count: u64,
    pub has_more: bool,
    /// `meta.total`: records matching the query when the server answered.
    pub total: Option<u64>,
    /// The body had invalid UTF-8 that was replaced with U+FFFD.
    pub replaced_utf8: bool,
}

pub enum Fetched {
    Page(Page),
    /// 429: no request before this time (epoch ms).
    RateLimited {
        until_ms: i64,
        detail: String,
    },
}

pub fn url(cfg: &Config, cur: &Cursor) -> String {
    let mut u = format!(
        "{}/api/v1/iocs?limit={}&offset={}&since={}",
        cfg.base_url,
        cfg.limit,
        cur.offset,
        http::enc(&timeutil::format_ms(cur.since_ms))
    );
    if !cfg.types.is_empty() {
        u.push_str(&format!("&type={}", http::enc(&cfg.types.join(","))));
    }
    for (k, v) in [
        ("confidence", &cfg.confidence),
        ("category", &cfg.category),
        ("industry", &cfg.industry),
    ] {
        if let Some(v) = v {
            u.push_str(&format!("&{k}={}", http::enc(v)));
        }
    }
    u
}

/// The auth header for the API.
fn auth(cfg: &Config, key: &Secret) -> (&'static str, String) {
    match cfg.auth_header {
        AuthHeader::Bearer => ("Authorization", format!("Bearer {}", key.expose())),
        AuthHeader::XApiKey => ("X-API-Key", key.expose().to_string()),
    }
}

/// Fetches one page at `cur`, handing its elements to `each` in order as they are found (see
/// [`decode::elements`]). `before_each` runs before each attempt (budget accounting). `each`
/// should fail with [`element_error`] on a record that is not JSON.
pub fn fetch(
    client: &Client,
    cfg: &Config,
    key: &Secret,
    cur: &Cursor,
    before_each: impl FnMut() -> Result<()>,
    each: impl FnMut(Found<'_>) -> Result<()>,
) -> Result<Fetched> {
    let url = url(cfg, cur);
    let (h, v) = auth(cfg, key);
    let what = "GET /api/v1/iocs";
    let resp = match client.send(
        &url,
        &[(h, v.as_str()), ("Accept", "application/json")],
        what,
        before_each,
    )? {
        Sent::Stream(r) => r,
        Sent::Read(r) if r.status == 429 => {
            return Ok(Fetched::RateLimited {
                until_ms: retry_at(&r, timeutil::now_ms()),
                detail: api_error(&r).1,
            });
        }
        Sent::Read(r) => return Err(status_error(&r, cfg)),
    };
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    if content_type.contains("html") {
        return Err(html_error(&content_type));
    }
    let length = resp.body().content_length();
    let body = resp.into_body().into_reader();
    let sum = match decode::elements(body, length, client.max_body(), cfg.max_field_bytes, each) {
        Ok(sum) => sum,
        Err(page::Error::Io(e)) => return Err(client.describe_io(e, what)),
        Err(e) => return Err(page_error(e, client.max_body())),
    };
    Ok(Fetched::Page(summarize(&sum, cur.offset, cfg.limit)))
}

fn html_error(content_type: &str) -> anyhow::Error {
    fail(
        Kind::Upstream,
        format!(
            "the API answered HTTP 200 with an HTML page (content-type {content_type:?}), not JSON: a proxy login page or captive portal? Nothing was printed. Check base_url and proxy"
        ),
    )
}

/// The error for a record of the page that is not JSON: the whole page is refused.
pub fn element_error(e: page::Error) -> anyhow::Error {
    page_error(e, 0)
}

fn page_error(e: page::Error, max_body: u64) -> anyhow::Error {
    let msg = match e {
        page::Error::Truncated => "the API's response is truncated JSON; nothing from it was printed and the checkpoint did not move".to_string(),
        page::Error::Malformed(m) => format!(
            "the API's response is not valid JSON of the documented shape ({m}); nothing from it was printed and the checkpoint did not move. Check base_url points at the SOC Defenders API"
        ),
        page::Error::TooLarge => format!(
            "GET /api/v1/iocs: the response is larger than max_body_bytes ({max_body} bytes); nothing from it was printed. Raise max_body_bytes or lower limit"
        ),
        page::Error::Sink(e) => return e,
        page::Error::Io(e) => format!("reading the response failed ({e})"),
    };
    fail(Kind::Upstream, msg)
}

/// `has_more` and `total` from the page's links and meta: `links.next` when the server sent
/// the key, else `meta.total`, else a full page.
pub fn summarize(sum: &page::Summary, offset: u64, limit: u32) -> Page {
    let total = sum
        .meta
        .as_ref()
        .and_then(|m| m.get("total"))
        .and_then(Value::as_u64);
    let len = sum.count;
    let has_more = match sum.links.as_ref().and_then(Value::as_object) {
        Some(links) if links.contains_key("next") => {
            links["next"].as_str().is_some_and(|s| !s.is_empty())
        }
        _ => match total {
            Some(t) => offset + len < t,
            None => len >= u64::from(limit) && len > 0,
        },
    };
    Page {
        count: len,
        has_more,
        total,
        replaced_utf8: sum.replaced_utf8,
    }
}

/// When a 429 says we may retry: `Retry-After` (seconds or HTTP date), else
/// `X-RateLimit-Reset` (epoch seconds), else one minute.
pub fn retry_at(resp: &Response, now_ms: i64) -> i64 {
    if let Some(ra) = resp.header("retry-after") {
        if let Ok(secs) = ra.trim().parse::<i64>() {
            return now_ms + secs.clamp(0, 86_400) * 1000;
        }
        let rfc2822 = time::format_description::well_known::Rfc2822;
        if let Ok(t) = time::OffsetDateTime::parse(ra.trim(), &rfc2822) {
            return timeutil::to_ms(t).min(now_ms + 86_400_000);
        }
    }
    if let Some(reset) = resp.header("x-ratelimit-reset")
        && let Ok(secs) = reset.trim().parse::<i64>()
    {
        return (secs * 1000).clamp(now_ms, now_ms + 86_400_000);
    }
    now_ms + 60_000
}

/// `error.code` and a printable `error.message` from the documented error envelope.
fn api_error(resp: &Response) -> (Option<String>, String) {
    let v: Option<Value> = serde_json::from_slice(&resp.body).ok();
    let err = v.as_ref().and_then(|v| v.get("error"));
    let code = err
        .and_then(|e| e.get("code"))
        .and_then(Value::as_str)
        .map(|s| s.chars().take(64).collect());
    let message: String = err
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .chars()
        .take(300)
        .collect();
    let request_id = err
        .and_then(|e| e.get("request_id"))
        .and_then(Value::as_str)
        .map(|r| format!(" request_id={}", r.chars().take(64).collect::<String>()))
        .unwrap_or_default();
    (code, format!("{message}{request_id}"))
}

fn status_error(resp: &Response, cfg: &Config) -> anyhow::Error {
    let (code, detail) = api_error(resp);
    let code_s = code.clone().unwrap_or_else(|| "none".into());
    match resp.status {
        401 => {
            let fix = match code.as_deref() {
                Some("missing_api_key") => "the key was not sent; check auth_header",
                Some("expired_api_key") => {
                    "the key expired or was deactivated; create a new key in the SOC Defenders dashboard and store it"
                }
                Some("invalid_api_key") => {
                    "the key is unknown or revoked; create a new key in the SOC Defenders dashboard and store it"
                }
                _ => "check the stored key",
            };
            fail(
                Kind::Auth,
                format!("the API refused the key: HTTP 401 {code_s} ({detail}); {fix}"),
            )
        }
        403 => fail(
            Kind::Auth,
            format!(
                "the API refused access: HTTP 403 {code_s} ({detail}); the key's tier or scopes do not allow this request (Free keys: 100 IOCs per request, 1 day lookback). Check tier and the filters"
            ),
        ),
        400 => fail(
            Kind::Config,
            format!(
                "the API rejected a parameter: HTTP 400 {code_s} ({detail}); check type, confidence, category, industry and since"
            ),
        ),
        300..=399 => fail(
            Kind::Upstream,
            format!(
                "{} answered with a redirect (HTTP {}) to {}; redirects are not followed so the key stays with the configured host. If that host is right, set base_url to it",
                cfg.base_url,
                resp.status,
                resp.header("location")
                    .and_then(http::origin)
                    .unwrap_or_else(|| "an unnamed location".into())
            ),
        ),
        s => fail(
            Kind::Upstream,
            format!(
                "unexpected HTTP {s} {code_s} from {}/api/v1/iocs ({detail}); nothing was printed and the checkpoint did not move. If it persists check base_url or the provider's status",
                cfg.base_url
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skip(rest: &str, eof: bool) -> Result<Option<usize>> {
        page::value_len(rest, eof).map_err(element_error)
    }

    fn page_of(body: &[u8], offset: u64, limit: u32) -> Page {
        let sum = page::stream(body, u64::MAX, skip).unwrap();
        summarize(&sum, offset, limit)
    }

    #[test]
    fn has_more_from_links_total_or_count() {
        assert!(page_of(br#"{"data":[{}],"links":{"next":"https://x/y"}}"#, 0, 1).has_more);
        assert!(!page_of(br#"{"data":[{}],"links":{"next":null}}"#, 0, 1).has_more);
        assert!(page_of(br#"{"data":[{}],"meta":{"total":5}}"#, 3, 1).has_more);
        assert!(page_of(br#"{"data":[{},{}]}"#, 0, 2).has_more);
        assert!(!page_of(br#"{"data":[]}"#, 0, 2).has_more);
    }

    #[test]
    fn bad_bodies_are_upstream_errors() {
        for body in [
            &b"<html>login</html>"[..],
            b"{\"data\":[1,",
            b"[]",
            b"{\"data\":{}}",
        ] {
            let e = page::stream(body, u64::MAX, |rest, eof| {
                let n = page::value_len(rest, eof).map_err(element_error)?;
                if let Some(n) = n {
                    page::parse_element(&rest[..n]).map_err(element_error)?;
                }
                Ok(n)
            })
            .unwrap_err();
            let e = page_error(e, 1);
            assert_eq!(crate::error::kind_of(&e), Some(Kind::Upstream), "{body:?}");
        }
    }

    #[test]
    fn retry_after_wins_then_reset_then_a_minute() {
        let mk = |h: Vec<(&str, &str)>| Response {
            status: 429,
            body: vec![],
            headers: h.into_iter().map(|(a, b)| (a.into(), b.into())).collect(),
        };
        assert_eq!(retry_at(&mk(vec![("retry-after", "30")]), 1_000), 31_000);
        assert_eq!(
            retry_at(
                &mk(vec![("x-ratelimit-reset", "1716000060")]),
                1_716_000_000_000
            ),
            1_716_000_060_000
        );
        assert_eq!(retry_at(&mk(vec![]), 0), 60_000);
        let t = retry_at(
            &mk(vec![("retry-after", "Wed, 21 Oct 2026 07:28:00 GMT")]),
            1_792_566_000_000,
        );
        assert_eq!(timeutil::format_ms(t), "2026-10-21T07:28:00Z");
    }
}

//! The REST wire format: the request for a cursor position, every status mapped on purpose,
//! and the documented error envelope.
//!
//! Requests are always built from the checkpoint against `base_url`; `links.next` is only read
//! as a "there is more" signal and never followed, so the key cannot be sent to another host.

use anyhow::Result;
use serde_json::Value;

use super::cursor::Cursor;
use super::decode;
use super::page::{self, Summary};
use super::record::Found;
use super::settings::{AuthHeader, Settings};
use crate::error::{Kind, fail};
use crate::http::{self, Answer, Net, Response};
use crate::source::Fetched;
use crate::{log, timeutil};

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

pub const WHAT: &str = "GET /api/v1/iocs";

pub fn url(s: &Settings, cur: &Cursor, limit: u32) -> String {
    let mut u = format!(
        "{}/api/v1/iocs?limit={limit}&offset={}&since={}",
        s.base_url,
        cur.offset,
        http::enc(&timeutil::format_ms(cur.since_ms))
    );
    if !s.types.is_empty() {
        u.push_str(&format!("&type={}", http::enc(&s.types.join(","))));
    }
    for (k, v) in [
        ("confidence", &s.confidence),
        ("category", &s.category),
        ("industry", &s.industry),
    ] {
        if let Some(v) = v {
            u.push_str(&format!("&{k}={}", http::enc(v)));
        }
    }
    u
}

/// Fetches one page at `cur`, handing its elements to `each` in order as they are found (see
/// [`decode::elements`]).
pub fn fetch(
    net: &mut Net,
    s: &Settings,
    cur: &Cursor,
    limit: u32,
    max_field_bytes: usize,
    each: impl FnMut(Found<'_>) -> Result<()>,
) -> Result<Fetched<Page>> {
    let url = url(s, cur, limit);
    let auth = match s.auth_header {
        AuthHeader::Bearer => ("Authorization", format!("Bearer {}", net.key.expose())),
        AuthHeader::XApiKey => ("X-API-Key", net.key.expose().to_string()),
    };
    let resp = match net.get(
        &url,
        &[(auth.0, auth.1.as_str()), ("Accept", "application/json")],
        WHAT,
    )? {
        Answer::Ok(r) => r,
        Answer::Spent => return Ok(Fetched::BudgetSpent),
        Answer::Status(r) if r.status == 429 => {
            return Ok(Fetched::RateLimited {
                until_ms: http::retry_at(&r, timeutil::now_ms()),
                detail: api_error(&r).1,
            });
        }
        Answer::Status(r) => return Err(status_error(&r, s)),
    };
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    if http::is_html(&content_type) {
        return Err(fail(
            Kind::Upstream,
            format!(
                "the API answered HTTP 200 with an HTML page (content-type {:?}), not JSON: a proxy login page or captive portal? Nothing was printed. Check base_url and proxy",
                log::excerpt(&content_type, 100)
            ),
        ));
    }
    let length = resp.body().content_length();
    let body = resp.into_body().into_reader();
    let client = net.client;
    let sum = match decode::elements(body, length, client.max_body(), max_field_bytes, each) {
        Ok(sum) => sum,
        Err(page::Error::Io(e)) => return Err(client.describe_io(e, WHAT)),
        Err(e) => return Err(e.into_failure(client.max_body())),
    };
    Ok(Fetched::Page(summarize(&sum, cur.offset, limit)))
}

/// `has_more` and `total` from the page's links and meta: `links.next` when the server sent
/// the key, else `meta.total`, else a full page.
pub fn summarize(sum: &Summary, offset: u64, limit: u32) -> Page {
    let len = sum.count;
    let has_more = match (sum.next, sum.total) {
        (Some(next), _) => next,
        (None, Some(t)) => offset + len < t,
        (None, None) => len >= u64::from(limit) && len > 0,
    };
    Page {
        count: len,
        has_more,
        total: sum.total,
        replaced_utf8: sum.replaced_utf8,
    }
}

/// `error.code` and a printable `error.message` from the documented error envelope. The
/// message is scrubbed of secrets before it is cut (a cut first could leave part of a key).
fn api_error(resp: &Response) -> (Option<String>, String) {
    let v: Option<Value> = serde_json::from_slice(&resp.body).ok();
    let err = v.as_ref().and_then(|v| v.get("error"));
    let text = |k: &str, max: usize| {
        err.and_then(|e| e.get(k))
            .and_then(Value::as_str)
            .map(|s| log::excerpt(s, max))
    };
    let code = text("code", 64);
    let message = text("message", 300).unwrap_or_default();
    let request_id = text("request_id", 64)
        .map(|r| format!(" request_id={r}"))
        .unwrap_or_default();
    (code, format!("{message}{request_id}"))
}

fn status_error(resp: &Response, s: &Settings) -> anyhow::Error {
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
        st if http::is_redirect(st) => fail(
            Kind::Upstream,
            format!(
                "{} answered with a redirect (HTTP {st}) to {}; redirects are not followed so the key stays with the configured host. If that host is right, set base_url to it",
                s.base_url,
                resp.redirect_target()
            ),
        ),
        st => fail(
            Kind::Upstream,
            format!(
                "unexpected HTTP {st} {code_s} from {}/api/v1/iocs ({detail}); nothing was printed and the checkpoint did not move. If it persists check base_url or the provider's status",
                s.base_url
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page_of(body: &[u8], offset: u64, limit: u32) -> Page {
        let sum = page::stream(body, u64::MAX, None, |inp| {
            Ok(inp.value(None, 0, &mut Default::default())?)
        })
        .unwrap();
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
}

//! The TAXII 2.1 wire format: discovery → API root → collection, and one page of objects.
//!
//! Collection ids are always discovered (by id or title), never hard-coded, and the resolved
//! objects URL is kept in the checkpoint until the settings change or it answers 404.
//! Both paging styles are read: the specification's envelope `{more, next, objects}`, and
//! SOC Defenders' STIX bundle paged by feeding `X-TAXII-Date-Added-Last` back as
//! `added_after`.

use anyhow::Result;
use serde_json::Value;

use super::settings::{Auth, Settings};
use crate::error::{Kind, fail};
use crate::http::{self, Answer, Net, Response};
use crate::{log, timeutil};

pub const MEDIA_TYPE: &str = "application/taxii+json;version=2.1";
/// Discovery, API root and collection documents are small; more than this is not one.
const DOC_CAP: u64 = 1 << 20;

/// How a TAXII request ended, when it did not fail.
pub enum Got<T> {
    Ok(T),
    /// The daily request budget refused the request.
    Spent,
    /// HTTP 429 until this time (epoch ms).
    RateLimited(i64),
    /// HTTP 404 on an objects URL: the cached URL is stale.
    Gone,
}

/// An objects answer, its body not read yet.
pub struct Objects {
    pub body: Box<dyn std::io::Read + Send>,
    /// The body's announced length.
    pub length: Option<u64>,
    /// `X-TAXII-Date-Added-Last`: what SOC Defenders pages by.
    pub date_added_last: Option<String>,
}

fn auth(s: &Settings, net: &Net) -> String {
    match s.auth {
        Auth::Basic => http::basic_auth(&s.user, net.key),
        Auth::Bearer => format!("Bearer {}", net.key.expose()),
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

fn status_error(resp: &Response, what: &str, url: &str) -> anyhow::Error {
    match resp.status {
        401 | 403 => fail(
            Kind::Auth,
            format!(
                "the TAXII server refused the key: HTTP {} on {what}; check the key, taxii_auth (basic or bearer) and taxii_user, and that your plan includes TAXII (SOC Defenders: Pro)",
                resp.status
            ),
        ),
        406 | 415 => fail(
            Kind::Upstream,
            format!(
                "the server at {url} does not accept TAXII 2.1 (HTTP {} to Accept: {MEDIA_TYPE}); check that taxii_url points at a TAXII 2.1 server",
                resp.status
            ),
        ),
        404 => fail(
            Kind::Config,
            format!("{url} answered 404 on {what}; check taxii_url and collection"),
        ),
        s if http::is_redirect(s) => fail(
            Kind::Upstream,
            format!(
                "{url} redirects (HTTP {s}) to {}; redirects are not followed so the key stays with the configured host. Set taxii_url to the new location if you trust it",
                resp.redirect_target()
            ),
        ),
        s => fail(
            Kind::Upstream,
            format!("unexpected HTTP {s} from the TAXII server on {what}"),
        ),
    }
}

/// A TAXII response body must be TAXII 2.1 JSON: a media type naming another version is an
/// error, and so is an HTML page.
fn check_media(content_type: &str, url: &str) -> Result<()> {
    if let Some(v) = http::media_param(content_type, "version")
        && v != "2.1"
    {
        return Err(fail(
            Kind::Upstream,
            format!(
                "{url} answered TAXII/STIX version {}, not 2.1; this input speaks TAXII 2.1 only",
                log::excerpt(&v, 20)
            ),
        ));
    }
    if http::is_html(content_type) {
        return Err(fail(
            Kind::Upstream,
            format!(
                "{url} answered with an HTML page, not TAXII JSON: a proxy login page? Check taxii_url and proxy"
            ),
        ));
    }
    Ok(())
}

fn json_body(body: &[u8], url: &str) -> Result<Value> {
    let text = String::from_utf8_lossy(body);
    if text.trim().is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    let (value, replaced) = crate::json::parse_lossy(&text).map_err(|e| {
        fail(
            Kind::Upstream,
            format!(
                "{url} sent a body that is not JSON ({}); nothing was printed and the checkpoint did not move",
                log::excerpt(&e.to_string(), 200)
            ),
        )
    })?;
    if replaced {
        log::warn(&format!(
            "{url} sent escaped lone UTF-16 surrogates, which are not Unicode; they are printed as U+FFFD"
        ));
    }
    Ok(value)
}

/// One authenticated TAXII GET: the response to read, or what stands in the way (429, 404,
/// the daily budget); any other status is an error naming `shown` (the URL without query).
fn get(
    net: &mut Net,
    s: &Settings,
    url: &str,
    what: &str,
    shown: &str,
) -> Result<Got<ureq::http::Response<ureq::Body>>> {
    let auth = auth(s, net);
    match net.get(
        url,
        &[("Authorization", &auth), ("Accept", MEDIA_TYPE)],
        what,
    )? {
        Answer::Ok(r) => Ok(Got::Ok(r)),
        Answer::Spent => Ok(Got::Spent),
        Answer::Status(r) if r.status == 429 => {
            Ok(Got::RateLimited(http::retry_at(&r, timeutil::now_ms())))
        }
        Answer::Status(r) if r.status == 404 => Ok(Got::Gone),
        Answer::Status(r) => Err(status_error(&r, what, shown)),
    }
}

/// GETs a TAXII document of at most `cap` bytes.
fn get_json(
    net: &mut Net,
    s: &Settings,
    url: &str,
    what: &str,
    cap: u64,
) -> Result<Got<(Value, http::Headers)>> {
    let resp = match get(net, s, url, what, url)? {
        Got::Ok(r) => r,
        Got::Spent => return Ok(Got::Spent),
        Got::RateLimited(t) => return Ok(Got::RateLimited(t)),
        Got::Gone => return Ok(Got::Gone),
    };
    let (body, headers) = http::read_small(net.client, resp, cap, what)?;
    let ct = headers
        .iter()
        .find(|(k, _)| k == "content-type")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    check_media(ct, url)?;
    Ok(Got::Ok((json_body(&body, url)?, headers)))
}

/// The API root a discovery document names (its `default`, else its first), or the URL
/// itself when it is an API root already.
fn api_root(first: &Value, url: &str) -> Result<String> {
    let Some(roots) = first.get("api_roots").and_then(Value::as_array) else {
        return Ok(format!("{}/", url.trim_end_matches('/')));
    };
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
    Ok(format!("{}/", resolve(url, chosen).trim_end_matches('/')))
}

/// The collection named by id, else by title (case-insensitive): its id and title.
fn pick_collection(list: &Value, wanted: &str, api_root: &str) -> Result<(String, String)> {
    let cols = list
        .get("collections")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let found = cols
        .iter()
        .find(|c| c.get("id").and_then(Value::as_str) == Some(wanted))
        .or_else(|| {
            cols.iter().find(|c| {
                c.get("title")
                    .and_then(Value::as_str)
                    .is_some_and(|t| t.eq_ignore_ascii_case(wanted))
            })
        });
    let Some(col) = found else {
        let names: Vec<String> = cols
            .iter()
            .take(20)
            .map(|c| {
                format!(
                    "{} ({})",
                    log::excerpt(c.get("id").and_then(Value::as_str).unwrap_or("?"), 80),
                    log::excerpt(c.get("title").and_then(Value::as_str).unwrap_or(""), 80)
                )
            })
            .collect();
        return Err(fail(
            Kind::Config,
            format!(
                "no TAXII collection with id or title {:?} at {api_root}; available: {}",
                log::excerpt(wanted, 100),
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
                "the TAXII collection {:?} is not readable with this key (can_read = false)",
                log::excerpt(wanted, 100)
            ),
        ));
    }
    let id = col.get("id").and_then(Value::as_str).unwrap_or_default();
    let title = col.get("title").and_then(Value::as_str).unwrap_or(id);
    Ok((id.to_string(), title.to_string()))
}

/// Discovery (or an API root given directly) → the collection's objects URL and title.
pub fn discover(net: &mut Net, s: &Settings) -> Result<Got<(String, String)>> {
    let url = s.url.clone();
    let first = match get_json(net, s, &url, "TAXII discovery", DOC_CAP)? {
        Got::Ok((v, _)) => v,
        Got::Gone => {
            return Err(fail(
                Kind::Config,
                format!("{url} answered 404 on TAXII discovery; check taxii_url"),
            ));
        }
        Got::Spent => return Ok(Got::Spent),
        Got::RateLimited(t) => return Ok(Got::RateLimited(t)),
    };
    let api_root = api_root(&first, &url)?;
    // The key goes to taxii_url's origin only: a discovery answer (spoofed, or from a
    // compromised server) must not be able to send it elsewhere, or over plain http.
    let root_origin = http::origin(&api_root).unwrap_or_else(|| "an unparsable URL".into());
    if root_origin != net.client.origin() {
        return Err(fail(
            Kind::Config,
            format!(
                "the TAXII discovery document at {url} names its API root at {root_origin}, another origin than taxii_url ({}); the key is only sent to taxii_url's origin. If you trust that server, set taxii_url to the API root itself: {}",
                net.client.origin(),
                log::excerpt(&api_root, 300)
            ),
        ));
    }
    let collections_url = format!("{api_root}collections/");
    let list = match get_json(net, s, &collections_url, "TAXII collections", DOC_CAP)? {
        Got::Ok((v, _)) => v,
        Got::Gone => {
            return Err(fail(
                Kind::Config,
                format!("{collections_url} answered 404 on TAXII collections; check taxii_url"),
            ));
        }
        Got::Spent => return Ok(Got::Spent),
        Got::RateLimited(t) => return Ok(Got::RateLimited(t)),
    };
    let (id, title) = pick_collection(&list, &s.collection, &api_root)?;
    Ok(Got::Ok((
        format!("{collections_url}{}/objects/", http::enc(&id)),
        title,
    )))
}

/// One objects request; the page is streamed by the caller (`objects::stream`).
pub fn objects(
    net: &mut Net,
    s: &Settings,
    objects_url: &str,
    added_after: &str,
    next: Option<&str>,
    limit: u32,
) -> Result<Got<Objects>> {
    let mut url = format!(
        "{objects_url}?added_after={}&limit={limit}",
        http::enc(added_after),
    );
    if let Some(n) = next {
        url.push_str(&format!("&next={}", http::enc(n)));
    }
    let resp = match get(net, s, &url, "TAXII objects", objects_url)? {
        Got::Ok(r) => r,
        Got::Spent => return Ok(Got::Spent),
        Got::RateLimited(t) => return Ok(Got::RateLimited(t)),
        Got::Gone => return Ok(Got::Gone),
    };
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    check_media(&header("content-type").unwrap_or_default(), objects_url)?;
    let date_added_last = header("x-taxii-date-added-last").map(|v| log::excerpt(&v, 64));
    let length = resp.body().content_length();
    Ok(Got::Ok(Objects {
        body: Box::new(resp.into_body().into_reader()),
        length,
        date_added_last,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

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

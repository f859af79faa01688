//! The one place an HTTP agent is built (timeouts, TLS roots: system plus `ca_file`, never
//! off; proxy; no redirects), the retry loop, and the rule that credentials go to one origin.
//!
//! A [`Client`] is made for one target and remembers its origin (scheme, host, port); every
//! request it sends must be to that origin, so no redirect, `next` link or discovery answer
//! can carry the key elsewhere. Redirects are not followed: an API that moved is better fixed
//! in the settings than followed blindly. Statuses are returned, not turned into errors, so
//! each source maps every status on purpose. Error bodies are read only as far as needed to
//! classify them.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Result;
use base64::Engine;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use ureq::http::Uri;
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

use crate::error::{Kind, KindExt, fail};
use crate::secret::Secret;
use crate::{log, timeutil};

/// The network settings every source shares.
#[derive(Debug, Clone)]
pub struct NetSettings {
    /// `ca_file`: extra trusted CAs (PEM), added to the system roots.
    pub ca_file: Option<PathBuf>,
    /// `proxy`: overrides the `*_PROXY` environment when set.
    pub proxy: Option<String>,
    /// `timeout`: one request, connect to last byte.
    pub timeout: Duration,
    /// `retries`: after a network error, timeout or 5xx.
    pub retries: u32,
    /// `max_body_bytes`: the largest response body accepted.
    pub max_body_bytes: u64,
}

/// An answer other than 200: its status, the headers callers read, and the start of its body.
pub struct Response {
    pub status: u16,
    /// At most [`ERROR_BODY_CAP`] bytes of the body.
    pub body: Vec<u8>,
    /// Headers the callers care about, lower-cased names.
    pub headers: Headers,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The `Location` of a redirect, as an origin only (never a path that could hold a token).
    pub fn redirect_target(&self) -> String {
        self.header("location")
            .and_then(origin)
            .unwrap_or_else(|| "an unnamed location".into())
    }
}

/// The statuses that mean "go elsewhere".
pub fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

/// Header names (lower-cased) and values.
pub type Headers = Vec<(String, String)>;

/// Headers the callers read, lower-cased.
const KEPT_HEADERS: &[&str] = &[
    "content-type",
    "location",
    "retry-after",
    "x-ratelimit-reset",
    "x-taxii-date-added-last",
];
/// What is read of an error body: enough for the documented error envelope.
pub const ERROR_BODY_CAP: u64 = 64 * 1024;

/// What a request got.
pub enum Answer {
    /// HTTP 200, body unread, for streaming.
    Ok(ureq::http::Response<ureq::Body>),
    /// Any other status.
    Status(Response),
    /// The daily request budget refused the request; nothing was sent.
    Spent,
}

pub struct Client {
    agent: ureq::Agent,
    max_body: u64,
    retries: u32,
    /// Total time the retries of one request may take, so a run ends well inside its interval.
    budget: Duration,
    /// The only origin requests (and so credentials) may go to.
    origin: String,
}

/// Reads the PEM certificates of a CA file; a file without any is an error.
pub fn read_ca_file(path: &Path, setting: &str) -> Result<Vec<Certificate<'static>>> {
    let pem = std::fs::read(path).kind(Kind::Config, || {
        format!(
            "cannot read {setting} {}: check the path and permissions",
            path.display()
        )
    })?;
    let certs = pem_certificates(&pem);
    if certs.is_empty() {
        return Err(fail(
            Kind::Config,
            format!(
                "{setting} {} holds no PEM certificate ('-----BEGIN CERTIFICATE-----')",
                path.display()
            ),
        ));
    }
    Ok(certs)
}

fn pem_certificates(pem: &[u8]) -> Vec<Certificate<'static>> {
    ureq::tls::parse_pem(pem)
        .filter_map(|item| match item {
            Ok(PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect()
}

/// The system's trusted roots. `SSL_CERT_FILE`/`SSL_CERT_DIR` win, as in OpenSSL; otherwise
/// the distribution's bundle file alone (reading every file of `/etc/ssl/certs` as well costs
/// ~10 ms a run for the same certificates); a certificate folder only when there is no bundle.
fn system_roots() -> Vec<Certificate<'static>> {
    let from_env =
        std::env::var_os("SSL_CERT_FILE").is_some() || std::env::var_os("SSL_CERT_DIR").is_some();
    let bundle = (!from_env)
        .then(|| openssl_probe::probe().cert_file)
        .flatten();
    if let Some(pem) = bundle.and_then(|path| std::fs::read(path).ok()) {
        return pem_certificates(&pem);
    }
    rustls_native_certs::load_native_certs()
        .certs
        .into_iter()
        .map(|c| Certificate::from_der(c.as_ref()).to_owned())
        .collect()
}

/// Roots for the API: the system's plus `ca_file`. Plain-http targets never verify a
/// certificate, so the system store is not read for them (`ca_file` is still checked).
fn roots(ca_file: Option<&Path>, https: bool) -> Result<RootCerts> {
    let mut certs = if https { system_roots() } else { Vec::new() };
    if let Some(path) = ca_file {
        certs.extend(read_ca_file(path, "ca_file")?);
    } else if certs.is_empty() {
        // No system store (a minimal container, Windows), or plain http: Mozilla's roots,
        // compiled in.
        return Ok(RootCerts::WebPki);
    }
    Ok(RootCerts::from(certs))
}

/// ureq's resolver starts a thread for every lookup when a timeout is set, so that a slow DNS
/// answer can be abandoned. A host that is already an IP address (a proxy or an air-gapped
/// API host given by address) needs no lookup, so no thread: it is answered directly.
#[derive(Debug)]
struct LiteralFirst;

impl Resolver for LiteralFirst {
    fn resolve(
        &self,
        uri: &Uri,
        config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> std::result::Result<ResolvedSocketAddrs, ureq::Error> {
        let host = uri
            .host()
            .map(|h| h.trim_start_matches('[').trim_end_matches(']'));
        let port = uri.port_u16().or(match uri.scheme_str() {
            Some("https") => Some(443),
            Some("http") => Some(80),
            _ => None,
        });
        if let (Some(Ok(ip)), Some(port)) = (host.map(str::parse::<std::net::IpAddr>), port) {
            let mut addrs = self.empty();
            addrs.push(std::net::SocketAddr::new(ip, port));
            return Ok(addrs);
        }
        DefaultResolver::default().resolve(uri, config, timeout)
    }
}

impl Client {
    /// A client for requests to `target`'s origin only.
    pub fn new(net: &NetSettings, target: &str) -> Result<Client> {
        let origin = origin(target)
            .ok_or_else(|| fail(Kind::Config, format!("{target:?} is not an http(s) URL")))?;
        let proxy = match &net.proxy {
            Some(p) => Some(ureq::Proxy::new(p).kind(Kind::Config, || {
                "setting proxy is not a valid proxy URL (http://host:port)".to_string()
            })?),
            None => ureq::Proxy::try_from_env(),
        };
        let tls = TlsConfig::builder()
            .root_certs(roots(net.ca_file.as_deref(), origin.starts_with("https:"))?)
            .build();
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .max_redirects_will_error(false)
            .timeout_global(Some(net.timeout))
            .timeout_connect(Some(net.timeout.min(Duration::from_secs(20))))
            .user_agent(concat!("socdefenders-iocs/", env!("CARGO_PKG_VERSION")))
            // ureq zeroes both buffers per connection (and per TLS or proxy layer). Requests
            // are one short GET, so 16 KiB of output is ample; 64 KiB of input is the most a
            // response head may take (max_response_header_size) and a good read size.
            .output_buffer_size(16 * 1024)
            .input_buffer_size(64 * 1024)
            .proxy(proxy)
            .tls_config(tls)
            .build();
        let agent = ureq::Agent::with_parts(agent, DefaultConnector::default(), LiteralFirst);
        Ok(Client {
            agent,
            max_body: net.max_body_bytes,
            retries: net.retries,
            budget: (net.timeout * 3).min(Duration::from_secs(300)),
            origin,
        })
    }

    /// `scheme://host[:port]` of the target, the only place requests go.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    pub fn max_body(&self) -> u64 {
        self.max_body
    }

    fn call(
        &self,
        url: &str,
        headers: &[(&str, &str)],
    ) -> Result<ureq::http::Response<ureq::Body>, ureq::Error> {
        let mut req = self.agent.get(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.call()
    }

    /// The head of a non-200 answer and the start of its body: the rest is left unread (a
    /// 429 with a 5 MB body still sets its pause).
    fn head(resp: ureq::http::Response<ureq::Body>) -> Result<Response, ureq::Error> {
        let status = resp.status().as_u16();
        let headers = kept_headers(&resp);
        let mut body = Vec::new();
        let mut reader = resp.into_body().into_reader().take(ERROR_BODY_CAP);
        if let Err(e) = reader.read_to_end(&mut body) {
            // What arrived before the connection broke is still enough to classify it.
            if body.is_empty() && status >= 500 {
                return Err(ureq::Error::Io(e));
            }
        }
        Ok(Response {
            status,
            body,
            headers,
        })
    }

    /// Explains an error met while reading a streamed body.
    pub fn describe_io(&self, e: std::io::Error, what: &str) -> anyhow::Error {
        match e.into_inner().map(|inner| inner.downcast::<ureq::Error>()) {
            Some(Ok(ureq_err)) => self.describe(*ureq_err, what),
            Some(Err(other)) => fail(
                Kind::Upstream,
                format!(
                    "{what}: reading the response failed ({}); nothing was printed and the checkpoint did not move",
                    log::excerpt(&other.to_string(), 300)
                ),
            ),
            None => fail(
                Kind::Upstream,
                format!(
                    "{what}: reading the response failed; nothing was printed and the checkpoint did not move"
                ),
            ),
        }
    }

    fn describe(&self, e: ureq::Error, what: &str) -> anyhow::Error {
        let msg = match &e {
            ureq::Error::BodyExceedsLimit(_) => format!(
                "{what}: the response is larger than max_body_bytes ({} bytes); nothing from it was printed. Raise max_body_bytes or lower limit",
                self.max_body
            ),
            ureq::Error::Timeout(t) => format!(
                "{what}: timed out ({t}); nothing was printed and the checkpoint did not move. Check the network path or raise timeout"
            ),
            e if is_tls(e) => format!(
                "{what}: TLS failed ({}); if a proxy inspects TLS, set ca_file to its CA certificate (PEM)",
                log::excerpt(&e.to_string(), 300)
            ),
            e if is_host_not_found(e) => format!(
                "{what}: host not found for {}; check the URL setting, DNS, or set proxy for hosts without direct internet access",
                self.origin
            ),
            e if is_refused(e) => format!(
                "{what}: could not connect to {}; nothing was printed and the checkpoint did not move. Check the URL setting, the network path, or set proxy",
                self.origin
            ),
            _ => format!(
                "{what}: {}; nothing was printed and the checkpoint did not move. Check the network, proxy settings and the URL setting",
                log::excerpt(&e.to_string(), 300)
            ),
        };
        anyhow::Error::new(e).context(crate::error::Failure {
            kind: Kind::Upstream,
            msg,
        })
    }
}

fn kept_headers(resp: &ureq::http::Response<ureq::Body>) -> Headers {
    resp.headers()
        .iter()
        .filter(|(k, _)| KEPT_HEADERS.contains(&k.as_str()))
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect()
}

/// A client, the key, and the daily budget's gate: what a source needs to make requests.
pub struct Net<'a> {
    pub client: &'a Client,
    pub key: &'a Secret,
    /// Counts one request against the daily budget; false (nothing counted) when it is spent.
    gate: &'a mut dyn FnMut() -> bool,
}

impl<'a> Net<'a> {
    pub fn new(client: &'a Client, key: &'a Secret, gate: &'a mut dyn FnMut() -> bool) -> Self {
        Net { client, key, gate }
    }

    /// GET with retries on network errors, timeouts and 5xx, with exponential backoff inside
    /// a total time budget. Every attempt passes the budget gate first. `url` must be at the
    /// client's origin.
    pub fn get(&mut self, url: &str, headers: &[(&str, &str)], what: &str) -> Result<Answer> {
        let c = self.client;
        if origin(url).as_deref() != Some(c.origin.as_str()) {
            return Err(fail(
                Kind::Upstream,
                format!(
                    "{what}: refusing to send the key to {} (only {} is trusted)",
                    origin(url).unwrap_or_else(|| "an unparsable URL".into()),
                    c.origin
                ),
            ));
        }
        let start = Instant::now();
        let mut attempt = 0;
        loop {
            if !(self.gate)() {
                return Ok(Answer::Spent);
            }
            let result = match c.call(url, headers) {
                Ok(r) if r.status().as_u16() == 200 => return Ok(Answer::Ok(r)),
                Ok(r) => Client::head(r),
                Err(e) => Err(e),
            };
            let retryable = match &result {
                Ok(r) => (500..=599).contains(&r.status),
                Err(e) => is_transient(e),
            };
            let backoff = Duration::from_millis(500 << attempt.min(6));
            if !retryable || attempt >= c.retries || start.elapsed() + backoff > c.budget {
                return result.map(Answer::Status).map_err(|e| c.describe(e, what));
            }
            let why = match &result {
                Ok(r) => format!("HTTP {}", r.status),
                Err(e) => log::excerpt(&e.to_string(), 200),
            };
            log::warn(&format!(
                "{what}: {why}; retry {} of {} in {} ms",
                attempt + 1,
                c.retries,
                backoff.as_millis()
            ));
            std::thread::sleep(backoff);
            attempt += 1;
        }
    }
}

/// Reads a whole 200 body of at most `limit` bytes (small documents: TAXII discovery).
pub fn read_small(
    client: &Client,
    resp: ureq::http::Response<ureq::Body>,
    limit: u64,
    what: &str,
) -> Result<(Vec<u8>, Headers)> {
    let headers = kept_headers(&resp);
    let mut body = Vec::new();
    let read = resp
        .into_body()
        .into_reader()
        .take(limit + 1)
        .read_to_end(&mut body);
    if let Err(e) = read {
        return Err(client.describe_io(e, what));
    }
    if body.len() as u64 > limit {
        return Err(fail(
            Kind::Upstream,
            format!(
                "{what}: the answer is larger than {limit} bytes, far more than such a document needs; check the URL setting"
            ),
        ));
    }
    Ok((body, headers))
}

/// Nothing listens where the URL points (or a firewall says so).
fn is_refused(e: &ureq::Error) -> bool {
    match e {
        ureq::Error::ConnectionFailed => true,
        ureq::Error::Io(io) => io.kind() == std::io::ErrorKind::ConnectionRefused,
        _ => false,
    }
}

/// A name that does not resolve: ureq's own error, or the system resolver's through `Io`.
fn is_host_not_found(e: &ureq::Error) -> bool {
    match e {
        ureq::Error::HostNotFound => true,
        ureq::Error::Io(io) => io
            .to_string()
            .starts_with("failed to lookup address information"),
        _ => false,
    }
}

fn is_transient(e: &ureq::Error) -> bool {
    matches!(
        e,
        ureq::Error::Io(_) | ureq::Error::Timeout(_) | ureq::Error::ConnectionFailed
    ) && !is_tls(e)
}

/// Certificate and handshake failures; rustls errors can arrive wrapped in `Io`.
fn is_tls(e: &ureq::Error) -> bool {
    match e {
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) => true,
        ureq::Error::Io(io) => io
            .get_ref()
            .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some()),
        _ => false,
    }
}

/// `scheme://host[:port]` of an http(s) URL, lower-cased, user info dropped, the scheme's
/// default port left out: two URLs may share credentials only if these are equal.
pub fn origin(url: &str) -> Option<String> {
    let uri: Uri = url.trim().parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let default = match scheme.as_str() {
        "https" => 443,
        "http" => 80,
        _ => return None,
    };
    let host = uri.host()?.to_ascii_lowercase();
    if host.is_empty() {
        return None;
    }
    Some(match uri.port_u16() {
        Some(p) if p != default => format!("{scheme}://{host}:{p}"),
        _ => format!("{scheme}://{host}"),
    })
}

/// The media type of a `Content-Type`, lower-cased, without parameters.
pub fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// A media-type parameter (`version` of `application/taxii+json;version=2.1`), lower-cased.
pub fn media_param(content_type: &str, name: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"').to_ascii_lowercase())
    })
}

/// An HTML page where JSON was expected: a proxy login or captive portal.
pub fn is_html(content_type: &str) -> bool {
    matches!(
        media_type(content_type).as_str(),
        "text/html" | "application/xhtml+xml"
    )
}

/// When a 429 says we may retry: `Retry-After` (seconds or HTTP date), else
/// `X-RateLimit-Reset` (epoch seconds), else one minute; never more than a day ahead.
pub fn retry_at(resp: &Response, now_ms: i64) -> i64 {
    if let Some(ra) = resp.header("retry-after") {
        if let Ok(secs) = ra.trim().parse::<i64>() {
            return now_ms + secs.clamp(0, 86_400) * 1000;
        }
        let rfc2822 = time::format_description::well_known::Rfc2822;
        if let Ok(t) = time::OffsetDateTime::parse(ra.trim(), &rfc2822) {
            return timeutil::to_ms(t).clamp(now_ms, now_ms + 86_400_000);
        }
    }
    if let Some(reset) = resp.header("x-ratelimit-reset")
        && let Ok(secs) = reset.trim().parse::<i64>()
    {
        return secs.saturating_mul(1000).clamp(now_ms, now_ms + 86_400_000);
    }
    now_ms + 60_000
}

/// An `Authorization: Basic` value; the password never appears anywhere else.
pub fn basic_auth(user: &str, password: &Secret) -> String {
    let raw = format!("{user}:{}", password.expose());
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// Everything but RFC 3986's unreserved characters is percent-encoded.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes a query value or path segment.
pub fn enc(v: &str) -> String {
    utf8_percent_encode(v, QUERY_VALUE).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_literal_hosts_resolve_to_themselves_and_names_are_looked_up() {
        let config = ureq::config::Config::default();
        let resolve = |url: &str, timeout: NextTimeout| {
            let uri: Uri = url.parse().unwrap();
            let addrs = LiteralFirst.resolve(&uri, &config, timeout).unwrap();
            addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>()
        };
        // A lookup budget already spent: ureq's resolver would time out, so these answers
        // can only come from the literal itself.
        let spent = NextTimeout {
            after: std::time::Duration::ZERO.into(),
            reason: ureq::Timeout::Resolve,
            per_read: None,
            per_write: None,
        };
        assert_eq!(
            resolve("http://127.0.0.1:8089/api", spent),
            ["127.0.0.1:8089"]
        );
        assert_eq!(resolve("https://10.1.2.3/", spent), ["10.1.2.3:443"]);
        assert_eq!(resolve("http://[::1]/", spent), ["[::1]:80"]);
        // A name goes to ureq's resolver (localhost is answered from /etc/hosts).
        let named = resolve("http://localhost:8089/", NextTimeout::default());
        assert!(
            !named.is_empty() && named.iter().all(|a| a.ends_with(":8089")),
            "{named:?}"
        );
    }

    #[test]
    fn origins_compare_scheme_host_and_port() {
        assert_eq!(
            origin("https://User@Socdefenders.ai:443/api?x").as_deref(),
            Some("https://socdefenders.ai")
        );
        assert_eq!(
            origin("http://127.0.0.1:8080/a").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_ne!(origin("https://a.example/x"), origin("https://b.example/x"));
        assert_ne!(origin("https://a.example/x"), origin("http://a.example/x"));
        assert_ne!(
            origin("https://a.example/x"),
            origin("https://a.example:8443/x")
        );
        assert_eq!(
            origin("https://[::1]:9/").as_deref(),
            Some("https://[::1]:9")
        );
        assert_eq!(origin("ftp://x"), None);
        assert_eq!(origin("/relative"), None);
    }

    #[test]
    fn basic_auth_is_rfc7617() {
        let s = Secret::new("pa:ss".into());
        assert_eq!(basic_auth("apikey", &s), "Basic YXBpa2V5OnBhOnNz");
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(enc("2026-01-01T00:00:00Z"), "2026-01-01T00%3A00%3A00Z");
        assert_eq!(enc("a b&c/é~"), "a%20b%26c%2F%C3%A9~");
    }

    #[test]
    fn media_types_ignore_case_and_parameters() {
        assert!(is_html("TEXT/HTML; charset=utf-8"));
        assert!(!is_html("application/json; note=html"));
        assert_eq!(
            media_param("application/taxii+json; Version=2.1", "version").as_deref(),
            Some("2.1")
        );
        assert!(is_redirect(302) && !is_redirect(304) && !is_redirect(300));
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
        // Absurd values are bounded to a day.
        assert_eq!(
            retry_at(&mk(vec![("x-ratelimit-reset", "99999999999999")]), 0),
            86_400_000
        );
    }
}

//! The one place an HTTP agent for the API is built: timeouts, TLS roots (system plus
//! `ca_file`, never off), proxy, body cap, no redirects; and the retry loop.
//!
//! Redirects are not followed: the key must reach only the configured host, and an API that
//! moved is better fixed in `base_url` than followed blindly. Statuses are returned, not
//! turned into errors, so each caller maps every status on purpose.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;
use ureq::http::Uri;
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

use crate::error::{Kind, KindExt, fail};

/// A response read in full, within the body cap.
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
    /// Headers the callers care about, lower-cased names.
    pub headers: Vec<(String, String)>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Headers the callers read, lower-cased.
const KEPT_HEADERS: &[&str] = &[
    "content-type",
    "location",
    "retry-after",
    "x-ratelimit-reset",
    "x-ratelimit-remaining",
    "x-ratelimit-limit",
    "x-taxii-date-added-last",
];
/// Error bodies are read only for their message.
const ERROR_BODY_CAP: u64 = 1 << 20;

/// What `send` got.
pub enum Sent {
    /// HTTP 200, body unread.
    Stream(ureq::http::Response<ureq::Body>),
    /// Any other status, body read.
    Read(Response),
}

pub struct Client {
    agent: ureq::Agent,
    max_body: u64,
    retries: u32,
    /// Total time the retries of one request may take, so a run ends well inside its interval.
    budget: Duration,
}

/// Reads the PEM certificates of a CA file; a file without any is an error.
pub fn read_ca_file(path: &Path, setting: &str) -> Result<Vec<Certificate<'static>>> {
    let pem = std::fs::read(path).kind(Kind::Config, || {
        format!(
            "cannot read {setting} {}: check the path and permissions",
            path.display()
        )
    })?;
    let certs: Vec<Certificate<'static>> = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect();
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
        return ureq::tls::parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect();
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
        // No system store (a minimal container), or plain http: Mozilla's roots, compiled in.
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
    /// `https`: whether the target is https (see [`roots`]).
    pub fn new(
        https: bool,
        ca_file: Option<&Path>,
        proxy: Option<&str>,
        timeout: Duration,
        max_body: u64,
        retries: u32,
    ) -> Result<Client> {
        let proxy = match proxy {
            Some(p) => Some(ureq::Proxy::new(p).kind(Kind::Config, || {
                "setting proxy is not a valid proxy URL (http://host:port)".to_string()
            })?),
            None => ureq::Proxy::try_from_env(),
        };
        let tls = TlsConfig::builder()
            .root_certs(roots(ca_file, https)?)
            .build();
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .max_redirects_will_error(false)
            .timeout_global(Some(timeout))
            .timeout_connect(Some(timeout.min(Duration::from_secs(20))))
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
            max_body,
            retries,
            budget: (timeout * 3).min(Duration::from_secs(300)),
        })
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

    /// Reads a response in full, within `limit` bytes.
    fn collect(
        mut resp: ureq::http::Response<ureq::Body>,
        limit: u64,
    ) -> Result<Response, ureq::Error> {
        let status = resp.status().as_u16();
        let headers: Vec<(String, String)> = resp
            .headers()
            .iter()
            .filter(|(k, _)| KEPT_HEADERS.contains(&k.as_str()))
            .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
            .collect();
        let body = resp.body_mut().with_config().limit(limit).read_to_vec()?;
        Ok(Response {
            status,
            body,
            headers,
        })
    }

    /// GET with retries on network errors, timeouts and 5xx, with exponential backoff inside a
    /// total time budget. `before_each` runs before every attempt (it counts the request
    /// against the daily budget and may refuse it). A 200 comes back unread, for streaming;
    /// any other status comes back read (error bodies are small).
    pub fn send(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        what: &str,
        mut before_each: impl FnMut() -> Result<()>,
    ) -> Result<Sent> {
        let start = Instant::now();
        let mut attempt = 0;
        loop {
            before_each()?;
            let result = match self.call(url, headers) {
                Ok(r) if r.status().as_u16() == 200 => return Ok(Sent::Stream(r)),
                Ok(r) => Self::collect(r, ERROR_BODY_CAP),
                Err(e) => Err(e),
            };
            let retryable = match &result {
                Ok(r) => (500..=599).contains(&r.status),
                Err(e) => is_transient(e),
            };
            let backoff = Duration::from_millis(500 << attempt.min(6));
            if !retryable || attempt >= self.retries || start.elapsed() + backoff > self.budget {
                return result.map(Sent::Read).map_err(|e| self.describe(e, what));
            }
            let why = match &result {
                Ok(r) => format!("HTTP {}", r.status),
                Err(e) => e.to_string(),
            };
            crate::log::warn(&format!(
                "{what}: {why}; retry {} of {} in {} ms",
                attempt + 1,
                self.retries,
                backoff.as_millis()
            ));
            std::thread::sleep(backoff);
            attempt += 1;
        }
    }

    /// `send`, with a 200 read in full within `max_body_bytes`.
    pub fn get(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        what: &str,
        before_each: impl FnMut() -> Result<()>,
    ) -> Result<Response> {
        match self.send(url, headers, what, before_each)? {
            Sent::Read(r) => Ok(r),
            Sent::Stream(r) => Self::collect(r, self.max_body).map_err(|e| self.describe(e, what)),
        }
    }

    pub fn max_body(&self) -> u64 {
        self.max_body
    }

    /// Explains an error met while reading a streamed body.
    pub fn describe_io(&self, e: std::io::Error, what: &str) -> anyhow::Error {
        match e.into_inner().map(|inner| inner.downcast::<ureq::Error>()) {
            Some(Ok(ureq_err)) => self.describe(*ureq_err, what),
            Some(Err(other)) => fail(
                Kind::Upstream,
                format!(
                    "{what}: reading the response failed ({other}); nothing was printed and the checkpoint did not move"
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
                "{what}: TLS failed ({e}); if a proxy inspects TLS, set ca_file to its CA certificate (PEM)"
            ),
            ureq::Error::HostNotFound => format!(
                "{what}: host not found; check base_url, DNS, or set proxy for hosts without direct internet access"
            ),
            _ => format!(
                "{what}: {e}; nothing was printed and the checkpoint did not move. Check the network, proxy settings and base_url"
            ),
        };
        anyhow::Error::new(e).context(crate::error::Failure {
            kind: Kind::Upstream,
            msg,
        })
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

/// The host (and port) part of an http(s) URL, lower-cased, for same-host checks.
pub fn origin(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("https://")
        .map(|r| ("https", r))
        .or_else(|| url.strip_prefix("http://").map(|r| ("http", r)))?;
    let host = rest.1.split(['/', '?', '#']).next()?;
    let host = host.rsplit('@').next()?;
    Some(format!("{}://{}", rest.0, host.to_ascii_lowercase()))
}

/// An `Authorization: Basic` value; the password never appears anywhere else.
pub fn basic_auth(user: &str, password: &crate::key::Secret) -> String {
    format!(
        "Basic {}",
        base64(format!("{user}:{}", password.expose()).as_bytes())
    )
}

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Percent-encodes a query value.
pub fn enc(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
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
            Some("https://socdefenders.ai:443")
        );
        assert_ne!(origin("https://a.example/x"), origin("https://b.example/x"));
        assert_eq!(origin("ftp://x"), None);
    }

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(enc("2026-01-01T00:00:00Z"), "2026-01-01T00%3A00%3A00Z");
        assert_eq!(enc("a b&c"), "a%20b%26c");
    }
}

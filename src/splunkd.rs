//! Splunk's secret store: read the API key with splunkd's passAuth token, or store it.
//!
//! splunkd serves its management port with a certificate from Splunk's own CA
//! (`$SPLUNK_HOME/etc/auth/cacert.pem`) whose CN matches no host name. We verify the chain
//! against that CA (or `splunkd_ca_file`) and relax only the host-name check, and only for
//! loopback. The session token is never sent to another host unless a CA file for it is
//! configured. ureq cannot take a custom certificate verifier, so this module speaks minimal
//! HTTP/1.1 over rustls itself: one request per connection, `Connection: close`.

use std::io::{Read, Write};
use std::net::{IpAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use serde_json::Value;

use crate::error::{Kind, KindExt, fail};
use crate::http;
use crate::secret::Secret;

/// The storage/passwords realm of our credential.
pub const REALM: &str = "TA-socdefenders";
const APP: &str = "TA-socdefenders";
const MAX_RESPONSE: u64 = 4 << 20;

/// How to reach splunkd's management port, and which credential to read or store.
#[derive(Debug, Clone)]
pub struct SplunkdSettings {
    /// `splunkd_url`: scheme, host and port, no trailing slash.
    pub url: String,
    /// `splunkd_ca_file`: the CA of splunkd's certificate.
    pub ca_file: Option<PathBuf>,
    /// `$SPLUNK_HOME`, for the default CA file.
    pub splunk_home: Option<PathBuf>,
    /// Bounded by the request timeout, at most 30 s.
    pub timeout: Duration,
    /// `credential`: the username of the key in storage/passwords.
    pub credential: String,
}

/// scheme, host, port of `splunkd_url`.
struct Target {
    tls: bool,
    host: String,
    port: u16,
    loopback: bool,
}

fn target(url: &str) -> Result<Target> {
    let bad = || {
        fail(
            Kind::Config,
            format!("splunkd_url {url:?} must look like https://127.0.0.1:8089"),
        )
    };
    let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else {
        return Err(bad());
    };
    let hostport = rest.split('/').next().unwrap_or("");
    let (host, port) = if let Some(h) = hostport.strip_prefix('[') {
        let (h, p) = h.split_once(']').ok_or_else(bad)?;
        (h.to_string(), p.strip_prefix(':').unwrap_or("8089"))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p),
            None => (hostport.to_string(), "8089"),
        }
    };
    let port: u16 = port.parse().map_err(|_| bad())?;
    if host.is_empty() {
        return Err(bad());
    }
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    Ok(Target {
        tls,
        host,
        port,
        loopback,
    })
}

/// Accepts a chain that verifies against our CA; on loopback a name mismatch is forgiven,
/// because splunkd's default certificate names no host.
#[derive(Debug)]
struct SplunkdVerifier {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    loopback: bool,
}

impl ServerCertVerifier for SplunkdVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            // webpki checks the chain before the name, so a name error means the chain is good.
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if self.loopback => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The CA file for splunkd: `splunkd_ca_file`, else `$SPLUNK_HOME/etc/auth/cacert.pem`.
fn ca_path(cfg: &SplunkdSettings) -> Option<PathBuf> {
    cfg.ca_file.clone().or_else(|| {
        cfg.splunk_home
            .as_ref()
            .map(|h| h.join("etc/auth/cacert.pem"))
    })
}

fn tls_config(cfg: &SplunkdSettings, t: &Target) -> Result<Arc<rustls::ClientConfig>> {
    let path = ca_path(cfg).ok_or_else(|| {
        fail(
            Kind::Splunkd,
            "cannot verify splunkd's certificate: SPLUNK_HOME is not set and splunkd_ca_file is not configured",
        )
    })?;
    let certs = http::read_ca_file(&path, "splunkd_ca_file").map_err(|e| {
        e.context(crate::error::Failure {
            kind: Kind::Splunkd,
            msg: format!(
                "cannot verify splunkd's certificate: no usable CA at {}; set splunkd_ca_file",
                path.display()
            ),
        })
    })?;
    let mut roots = rustls::RootCertStore::empty();
    for c in certs {
        roots
            .add(CertificateDer::from(c.der().to_vec()))
            .kind(Kind::Splunkd, || {
                format!("{} holds a certificate rustls cannot use", path.display())
            })?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .kind(Kind::Splunkd, || "cannot build the splunkd verifier".into())?;
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .kind(Kind::Splunkd, || "TLS setup failed".into())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(SplunkdVerifier {
            inner,
            loopback: t.loopback,
        }))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The TCP connection to splunkd, after checking the session token may go there: to
/// loopback, or elsewhere only with a CA file for its certificate and over https.
fn connect(cfg: &SplunkdSettings, t: &Target) -> Result<TcpStream> {
    if !t.loopback && cfg.ca_file.is_none() {
        return Err(fail(
            Kind::Splunkd,
            format!(
                "splunkd_url {} is not a loopback address; the session token is only sent there when splunkd_ca_file names the CA of its certificate",
                cfg.url
            ),
        ));
    }
    if !t.tls && !t.loopback {
        return Err(fail(
            Kind::Splunkd,
            "splunkd_url uses http:// to a non-loopback host; use https://",
        ));
    }
    let unreachable = || {
        format!(
            "cannot reach splunkd at {}: is splunkd running, and is that its management port (server.conf [settings] mgmtHostPort)? Set splunkd_url if not",
            cfg.url
        )
    };
    let addr = (t.host.as_str(), t.port)
        .to_socket_addrs()
        .kind(Kind::Splunkd, unreachable)?
        .next()
        .ok_or_else(|| fail(Kind::Splunkd, unreachable()))?;
    let tcp = TcpStream::connect_timeout(&addr, cfg.timeout).kind(Kind::Splunkd, unreachable)?;
    tcp.set_read_timeout(Some(cfg.timeout)).ok();
    tcp.set_write_timeout(Some(cfg.timeout)).ok();
    Ok(tcp)
}

/// The text of one HTTP/1.1 request, `Connection: close`.
fn request_text(t: &Target, method: &str, path: &str, auth: &str, form: Option<&str>) -> String {
    let host_header = if t.host.contains(':') {
        format!("[{}]:{}", t.host, t.port)
    } else {
        format!("{}:{}", t.host, t.port)
    };
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host_header}\r\nAuthorization: {auth}\r\nUser-Agent: socdefenders-iocs/{}\r\nAccept: application/json\r\nConnection: close\r\n",
        env!("CARGO_PKG_VERSION")
    );
    if let Some(body) = form {
        req.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ));
    } else {
        req.push_str("\r\n");
    }
    req
}

/// One HTTP/1.1 request to splunkd; returns status and body.
fn request(
    cfg: &SplunkdSettings,
    method: &str,
    path: &str,
    auth: &str,
    form: Option<&str>,
) -> Result<(u16, Vec<u8>)> {
    let t = target(&cfg.url)?;
    let tcp = connect(cfg, &t)?;
    let req = request_text(&t, method, path, auth, form);
    let mut raw = Vec::new();
    let io = if t.tls {
        let server_name = ServerName::try_from(t.host.clone()).kind(Kind::Config, || {
            format!("splunkd_url host {:?} is not valid", t.host)
        })?;
        let conn = rustls::ClientConnection::new(tls_config(cfg, &t)?, server_name)
            .kind(Kind::Splunkd, || "TLS setup failed".into())?;
        let mut s = rustls::StreamOwned::new(conn, tcp);
        exchange(&mut s, req.as_bytes(), &mut raw)
    } else {
        let mut s = tcp;
        exchange(&mut s, req.as_bytes(), &mut raw)
    };
    io.kind(Kind::Splunkd, || {
        format!(
            "talking to splunkd at {} failed; if the certificate is not from Splunk's default CA set splunkd_ca_file",
            cfg.url
        )
    })?;
    parse_response(&raw).ok_or_else(|| {
        fail(
            Kind::Splunkd,
            format!("splunkd at {} sent a response that is not HTTP", cfg.url),
        )
    })
}

fn exchange<S: Read + Write>(s: &mut S, req: &[u8], out: &mut Vec<u8>) -> std::io::Result<()> {
    s.write_all(req)?;
    s.flush()?;
    match s.take(MAX_RESPONSE).read_to_end(out) {
        Ok(_) => Ok(()),
        // Servers that close without TLS close_notify: what arrived is complete for us.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !out.is_empty() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Status and body of a raw HTTP/1.1 response (Content-Length, chunked, or close-delimited).
fn parse_response(raw: &[u8]) -> Option<(u16, Vec<u8>)> {
    let head_end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..head_end]).ok()?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let mut chunked = false;
    let mut length = None;
    for l in lines {
        let (k, v) = l.split_once(':')?;
        match k.trim().to_ascii_lowercase().as_str() {
            "transfer-encoding" => chunked = v.to_ascii_lowercase().contains("chunked"),
            "content-length" => length = v.trim().parse::<usize>().ok(),
            _ => {}
        }
    }
    let body = &raw[head_end + 4..];
    let body = if chunked {
        let mut out = Vec::new();
        let mut rest = body;
        loop {
            let nl = rest.windows(2).position(|w| w == b"\r\n")?;
            let size_s = std::str::from_utf8(&rest[..nl]).ok()?;
            let size = usize::from_str_radix(size_s.split(';').next()?.trim(), 16).ok()?;
            rest = &rest[nl + 2..];
            if size == 0 {
                break;
            }
            out.extend_from_slice(rest.get(..size)?);
            rest = rest.get(size + 2..)?;
        }
        out
    } else if let Some(n) = length {
        body.get(..n)?.to_vec()
    } else {
        body.to_vec()
    };
    Some((status, body))
}

fn entity_path(user: &str) -> String {
    format!(
        "/servicesNS/nobody/{APP}/storage/passwords/{}:{}:",
        http::enc(REALM),
        http::enc(user)
    )
}

/// Reads the API key from storage/passwords with the passAuth session token.
pub fn fetch_key(cfg: &SplunkdSettings, token: &Secret) -> Result<Secret> {
    let path = format!("{}?output_mode=json", entity_path(&cfg.credential));
    let auth = format!("Splunk {}", token.expose());
    let (status, body) = request(cfg, "GET", &path, &auth, None)?;
    let who = format!("realm {REALM} username {}", cfg.credential);
    match status {
        200 => {
            let v: Value = serde_json::from_slice(&body).map_err(|_| {
                fail(
                    Kind::Splunkd,
                    "splunkd's storage/passwords answer is not JSON",
                )
            })?;
            let pw = v
                .pointer("/entry/0/content/clear_password")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    fail(
                        Kind::Credential,
                        format!("splunkd returned no clear_password for {who}; store the key again with: socdefenders-iocs store-key"),
                    )
                })?;
            Ok(Secret::new(pw.to_string()))
        }
        401 => Err(fail(
            Kind::Splunkd,
            format!(
                "splunkd refused the session token (HTTP 401: missing or expired) while reading {who}; check that the input has passAuth = splunk-system-user"
            ),
        )),
        403 => Err(fail(
            Kind::Splunkd,
            format!(
                "splunkd denied reading {who} (HTTP 403); the passAuth user needs the list_storage_passwords capability (passAuth = splunk-system-user has it)"
            ),
        )),
        404 => Err(fail(
            Kind::Credential,
            format!(
                "no API key in Splunk's secret store for {who} in app {APP}; store it with: $SPLUNK_HOME/etc/apps/{APP}/bin/socdefenders-iocs store-key (or the curl call in the README)"
            ),
        )),
        s => Err(fail(
            Kind::Splunkd,
            format!("splunkd answered HTTP {s} while reading {who}; see splunkd.log"),
        )),
    }
}

fn prompt(label: &str, secret: bool) -> Result<String> {
    let v = if secret {
        rpassword::prompt_password(label)
    } else {
        read_tty_line(label)
    };
    let v = v.kind(Kind::Config, || {
        "store-key needs a terminal to prompt on".into()
    })?;
    Ok(v.trim().to_string())
}

/// Reads one echoed line from the terminal itself, a byte at a time: a buffered reader would
/// swallow the lines after it (a pasted password) before the no-echo prompt reads them.
fn read_tty_line(label: &str) -> std::io::Result<String> {
    let mut tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")?;
    tty.write_all(label.as_bytes())?;
    tty.flush()?;
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match tty.read(&mut byte)? {
            0 if line.is_empty() => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "no input",
                ));
            }
            0 => break,
            _ if byte[0] == b'\n' => break,
            _ => line.push(byte[0]),
        }
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

/// Interactive: asks for the key and a Splunk admin's credentials, then creates or updates
/// the credential.
pub fn store_key(cfg: &SplunkdSettings) -> Result<()> {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        return Err(fail(
            Kind::Config,
            "store-key prompts on a terminal; for scripts use the curl call in the README",
        ));
    }
    let key = Secret::new(prompt("SOC Defenders API key (not echoed): ", true)?);
    if key.expose().is_empty() {
        return Err(fail(Kind::Config, "no key entered"));
    }
    let user = prompt("Splunk admin username: ", false)?;
    let pass = Secret::new(prompt("Splunk password (not echoed): ", true)?);
    let basic = http::basic_auth(&user, &pass);
    let create = format!(
        "name={}&password={}&realm={}",
        http::enc(&cfg.credential),
        http::enc(key.expose()),
        http::enc(REALM)
    );
    let base = format!("/servicesNS/nobody/{APP}/storage/passwords?output_mode=json");
    let (mut status, _) = request(cfg, "POST", &base, &basic, Some(&create))?;
    if status == 409 {
        let update = format!("password={}", http::enc(key.expose()));
        let path = format!("{}?output_mode=json", entity_path(&cfg.credential));
        status = request(cfg, "POST", &path, &basic, Some(&update))?.0;
    }
    match status {
        200 | 201 => {
            eprintln!(
                "Stored the key in Splunk's secret store: app {APP}, realm {REALM}, username {}.",
                cfg.credential
            );
            Ok(())
        }
        401 => Err(fail(
            Kind::Splunkd,
            "splunkd rejected that username or password",
        )),
        403 => Err(fail(
            Kind::Splunkd,
            "that Splunk user may not write storage/passwords (needs admin_all_objects or edit_storage_passwords)",
        )),
        s => Err(fail(
            Kind::Splunkd,
            format!("splunkd answered HTTP {s} while storing the key"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t = target("https://127.0.0.1:8089").unwrap();
        assert!(t.tls && t.loopback && t.port == 8089);
        let t = target("https://[::1]:9000/").unwrap();
        assert!(t.loopback && t.port == 9000 && t.host == "::1");
        assert!(!target("https://splunk.example:8089").unwrap().loopback);
        assert!(target("ftp://x").is_err());
    }

    #[test]
    fn responses_chunked_and_plain() {
        let r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        assert_eq!(parse_response(r), Some((200, b"abcde".to_vec())));
        let r = b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nhiXX";
        assert_eq!(parse_response(r), Some((404, b"hi".to_vec())));
        assert_eq!(parse_response(b"garbage"), None);
    }
}

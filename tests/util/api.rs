//! A loopback HTTP(S) server, and on it a SOC Defenders API that follows the documented
//! behaviour: both auth headers, `type`/`confidence` filters, `since` (inclusive or exclusive),
//! `offset`/`limit` with the tier cap, `links.next` null on the last page, either sort order,
//! and a fault queue for everything that can go wrong.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// The request target as sent (absolute-form when it came through as a proxy request).
    pub target: String,
    pub path: String,
    pub query: HashMap<String, String>,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

pub enum Reply {
    Http {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Bytes written as they are, then the connection is closed.
    Raw(Vec<u8>),
    /// Wait, then reply.
    Slow(Duration, Box<Reply>),
}

pub fn json_reply(status: u16, v: &Value) -> Reply {
    Reply::Http {
        status,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: serde_json::to_vec(v).unwrap(),
    }
}

type Handler = Arc<dyn Fn(&Request) -> Reply + Send + Sync>;

pub struct Server {
    pub url: String,
    pub port: u16,
    pub requests: Arc<Mutex<Vec<Request>>>,
}

impl Server {
    pub fn start(tls: Option<Arc<rustls::ServerConfig>>, handler: Handler) -> Server {
        Server::start_on("127.0.0.1", tls, handler)
    }

    pub fn start_on(ip: &str, tls: Option<Arc<rustls::ServerConfig>>, handler: Handler) -> Server {
        let listener = TcpListener::bind((ip, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let reqs = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (handler, reqs, tls) = (handler.clone(), reqs.clone(), tls.clone());
                std::thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                    match tls {
                        Some(cfg) => {
                            let Ok(conn) = rustls::ServerConnection::new(cfg) else {
                                return;
                            };
                            let mut s = rustls::StreamOwned::new(conn, stream);
                            serve(&mut s, &handler, &reqs);
                            s.conn.send_close_notify();
                            let _ = s.flush();
                        }
                        None => {
                            let mut s = stream;
                            serve(&mut s, &handler, &reqs);
                        }
                    }
                });
            }
        });
        Server {
            url: format!("http://{ip}:{port}"),
            port,
            requests,
        }
    }

    pub fn count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }

    pub fn last(&self) -> Request {
        self.requests
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("no request")
    }
}

fn serve<S: Read + Write>(s: &mut S, handler: &Handler, reqs: &Mutex<Vec<Request>>) {
    let mut reader = BufReader::new(&mut *s);
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    let _ = reader.read_exact(&mut body);
    drop(reader);
    let path_query = match target.find("://") {
        Some(i) => target[i + 3..]
            .find('/')
            .map(|j| &target[i + 3 + j..])
            .unwrap_or("/"),
        None => target.as_str(),
    };
    let (path, q) = path_query.split_once('?').unwrap_or((path_query, ""));
    let query = q
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect();
    let req = Request {
        method,
        target: target.clone(),
        path: path.to_string(),
        query,
        headers,
        body,
    };
    reqs.lock().unwrap().push(req.clone());
    let reply = handler(&req);
    write_reply(s, reply);
}

fn write_reply<S: Write>(s: &mut S, reply: Reply) {
    match reply {
        Reply::Slow(d, inner) => {
            std::thread::sleep(d);
            write_reply(s, *inner);
        }
        Reply::Raw(bytes) => {
            let _ = s.write_all(&bytes);
            let _ = s.flush();
        }
        Reply::Http {
            status,
            headers,
            body,
        } => {
            let mut head = format!(
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            for (k, v) in headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("\r\n");
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&body);
            let _ = s.flush();
        }
    }
}

pub fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            out.push(
                u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap(), 16).unwrap(),
            );
            i += 3;
        } else {
            out.push(if b[i] == b'+' { b' ' } else { b[i] });
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

// ---------------------------------------------------------------------------------------------

/// One IOC in the fake feed.
#[derive(Clone, Debug)]
pub struct Rec {
    pub id: String,
    pub typ: String,
    pub value: String,
    pub last_seen_ms: i64,
    pub extra: Value,
}

/// Faults, consumed one per request.
pub enum Fault {
    Status(u16, Value, Vec<(&'static str, String)>),
    Html200,
    Malformed,
    Truncated,
    /// About this many bytes of valid records, then the connection closes short of the
    /// Content-Length it announced (past the size where the body is decoded on a thread).
    TruncatedLarge(usize),
    Huge(usize),
    Slow(Duration),
    Redirect(String),
    BadUtf8,
    /// Close the connection without an answer.
    Close,
    /// A page with these records instead of the feed (raw JSON values).
    Records(Vec<Value>),
    /// A page of exactly this text (for JSON that serde_json does not write).
    Body(String),
    /// A 200 with exactly these headers and body bytes.
    Answer(Vec<(String, String)>, Vec<u8>),
}

/// A change applied to the feed before each request is answered.
pub type During = Box<dyn FnMut(&mut Feed) + Send>;

pub struct Feed {
    pub recs: Vec<Rec>,
    pub desc: bool,
    pub inclusive: bool,
    pub cap: usize,
    /// The server's clock, epoch ms; updates and additions get the next second.
    pub clock_ms: i64,
    pub faults: VecDeque<Fault>,
    /// `links.next` points here instead of at the server itself.
    pub next_base: Option<String>,
    /// Called before each /api/v1/iocs request is answered: a feed that changes mid-walk.
    pub during: Option<During>,
    /// Every (id, last_seen) version ever served.
    pub served: Vec<(String, String)>,
    pub next_id: usize,
}

/// The REST API's timestamps: RFC 3339 UTC, whole seconds.
pub fn ts(ms: i64) -> String {
    super::utc(ms.div_euclid(1000) * 1_000_000, false)
}

const TYPES: &[(&str, &str)] = &[
    ("ipv4", "198.51.100."),
    ("domain", "evil-"),
    ("sha256", "e3b0c44298fc1c149afbf4c8996fb924"),
    ("url", "https://bad.example/"),
];

impl Feed {
    /// A feed whose clock starts 12 hours ago, so a Free first run (1 day back) sees it all.
    pub fn new() -> Feed {
        let now = (time::OffsetDateTime::now_utc().unix_timestamp()) * 1000;
        Feed::at(now - 12 * 3_600_000)
    }

    /// A feed whose clock starts at `clock_ms`: the same records on every run of a test.
    pub fn at(clock_ms: i64) -> Feed {
        Feed {
            recs: Vec::new(),
            desc: true,
            inclusive: true,
            cap: 100,
            clock_ms,
            faults: VecDeque::new(),
            next_base: None,
            during: None,
            served: Vec::new(),
            next_id: 0,
        }
    }

    /// Adds `n` IOCs, `per_second` sharing each last_seen second.
    pub fn add(&mut self, n: usize, per_second: usize) {
        for i in 0..n {
            if i % per_second.max(1) == 0 {
                self.clock_ms += 1000;
            }
            let k = self.next_id;
            self.next_id += 1;
            let (typ, prefix) = TYPES[k % TYPES.len()];
            self.recs.push(Rec {
                id: format!("00000000-0000-4000-8000-{k:012}"),
                typ: typ.into(),
                value: format!("{prefix}{k}"),
                last_seen_ms: self.clock_ms,
                extra: json!({}),
            });
        }
    }

    /// Re-sees the IOC at `idx` now (a new version of it).
    pub fn touch(&mut self, idx: usize) {
        self.clock_ms += 1000;
        self.recs[idx].last_seen_ms = self.clock_ms;
    }

    pub fn record_json(r: &Rec) -> Value {
        let mut v = json!({
            "id": r.id,
            "type": r.typ,
            "value": r.value,
            "confidence": "high",
            "first_seen": "2026-01-01T00:00:00Z",
            "last_seen": ts(r.last_seen_ms),
            "source": {"feed_name": "URLhaus", "category": "threat-intel", "origin": "feed", "reference_url": null},
            "context": "seen in a test",
            "tags": ["c2", "test"],
            "mitre_techniques": ["T1071"],
            "future_field": {"nested": [1, 2, {"x": true}]},
        });
        if let (Value::Object(o), Value::Object(extra)) = (&mut v, &r.extra) {
            for (k, x) in extra {
                o.insert(k.clone(), x.clone());
            }
        }
        v
    }

    /// The current versions, as (id, last_seen).
    pub fn versions(&self) -> Vec<(String, String)> {
        self.recs
            .iter()
            .map(|r| (r.id.clone(), ts(r.last_seen_ms)))
            .collect()
    }

    fn answer(&mut self, req: &Request, base: &str) -> Reply {
        let key = req
            .headers
            .get("authorization")
            .and_then(|a| a.strip_prefix("Bearer "))
            .or(req.headers.get("x-api-key").map(String::as_str));
        match key {
            None => {
                return json_reply(
                    401,
                    &json!({"error": {"code": "missing_api_key", "message": "API key is required.", "request_id": "req_1"}}),
                );
            }
            Some(k) if k != super::KEY => {
                return json_reply(
                    401,
                    &json!({"error": {"code": "invalid_api_key", "message": "Invalid API key", "request_id": "req_2"}}),
                );
            }
            _ => {}
        }
        if let Some(mut during) = self.during.take() {
            during(self);
            self.during = Some(during);
        }
        if let Some(f) = self.faults.pop_front() {
            match f {
                Fault::Status(code, body, headers) => {
                    let mut r = json_reply(code, &body);
                    if let Reply::Http { headers: h, .. } = &mut r {
                        h.extend(headers.into_iter().map(|(k, v)| (k.to_string(), v)));
                    }
                    return r;
                }
                Fault::Html200 => {
                    return Reply::Http {
                        status: 200,
                        headers: vec![("Content-Type".into(), "text/html".into())],
                        body: b"<html><body>Proxy login</body></html>".to_vec(),
                    };
                }
                Fault::Malformed => return Reply::Raw(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 22\r\n\r\n{\"data\":[{\"type\":\"ip\"}".to_vec()),
                Fault::Truncated => {
                    return Reply::Raw(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n{\"data\":[{\"type\":\"ipv4\",\"value\":\"1.2.3.4\"},".to_vec());
                }
                Fault::TruncatedLarge(n) => {
                    let rec = br#"{"id":"t","type":"ipv4","value":"192.0.2.1","last_seen":"2026-01-01T00:00:00Z"},"#;
                    let mut body = b"{\"data\":[".to_vec();
                    while body.len() < n {
                        body.extend_from_slice(rec);
                    }
                    let mut raw = format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n", body.len() + 1000).into_bytes();
                    raw.extend_from_slice(&body);
                    return Reply::Raw(raw);
                }
                Fault::Huge(n) => {
                    let mut body = b"{\"data\":[{\"type\":\"url\",\"value\":\"".to_vec();
                    body.extend(std::iter::repeat_n(b'a', n));
                    body.extend_from_slice(b"\"}],\"links\":{\"next\":null}}");
                    return Reply::Http { status: 200, headers: vec![("Content-Type".into(), "application/json".into())], body };
                }
                Fault::Slow(d) => return Reply::Slow(d, Box::new(self.page(req, base))),
                Fault::Redirect(loc) => {
                    return Reply::Http { status: 302, headers: vec![("Location".into(), loc)], body: Vec::new() };
                }
                Fault::BadUtf8 => {
                    let body = b"{\"data\":[{\"id\":\"u1\",\"type\":\"domain\",\"value\":\"bad\xff\xfe.example\",\"last_seen\":\"2026-01-01T00:00:00Z\"}],\"links\":{\"next\":null}}".to_vec();
                    return Reply::Http { status: 200, headers: vec![("Content-Type".into(), "application/json".into())], body };
                }
                Fault::Close => return Reply::Raw(Vec::new()),
                Fault::Records(recs) => {
                    return json_reply(200, &json!({"data": recs, "meta": {"total": recs.len()}, "links": {"next": null}}));
                }
                Fault::Body(text) => {
                    return Reply::Http { status: 200, headers: vec![("Content-Type".into(), "application/json".into())], body: text.into_bytes() };
                }
                Fault::Answer(headers, body) => return Reply::Http { status: 200, headers, body },
            }
        }
        self.page(req, base)
    }

    fn page(&mut self, req: &Request, base: &str) -> Reply {
        let q = &req.query;
        let since = q
            .get("since")
            .map(|s| super::parse_us(s) / 1000)
            .unwrap_or(i64::MIN);
        let limit: usize = q
            .get("limit")
            .and_then(|v| v.parse().ok())
            .unwrap_or(100)
            .min(self.cap);
        let offset: usize = q.get("offset").and_then(|v| v.parse().ok()).unwrap_or(0);
        let types: Option<Vec<String>> = q
            .get("type")
            .map(|t| t.split(',').map(|x| x.replace('-', "_")).collect());
        let mut matching: Vec<&Rec> = self
            .recs
            .iter()
            .filter(|r| {
                if self.inclusive {
                    r.last_seen_ms >= since
                } else {
                    r.last_seen_ms > since
                }
            })
            .filter(|r| types.as_ref().is_none_or(|t| t.contains(&r.typ)))
            .collect();
        matching.sort_by(|a, b| (a.last_seen_ms, &a.id).cmp(&(b.last_seen_ms, &b.id)));
        if self.desc {
            matching.reverse();
        }
        let total = matching.len();
        let page: Vec<Value> = matching
            .iter()
            .skip(offset)
            .take(limit)
            .map(|r| Feed::record_json(r))
            .collect();
        for p in &page {
            self.served.push((
                p["id"].as_str().unwrap().into(),
                p["last_seen"].as_str().unwrap().into(),
            ));
        }
        let more = offset + page.len() < total;
        let next_base = self.next_base.clone().unwrap_or_else(|| base.to_string());
        let next = more.then(|| {
            format!(
                "{next_base}/api/v1/iocs?limit={limit}&offset={}",
                offset + page.len()
            )
        });
        json_reply(
            200,
            &json!({
                "data": page,
                "meta": {"total": total, "limit": limit, "offset": offset, "generated_at": ts(self.clock_ms), "filters": {"type": "all"}},
                "links": {"self": format!("{base}/api/v1/iocs"), "next": next},
            }),
        )
    }
}

/// Starts the API on loopback (plain HTTP, or TLS with the given config).
pub fn start(feed: Feed, tls: Option<Arc<rustls::ServerConfig>>) -> (Server, Arc<Mutex<Feed>>) {
    let feed = Arc::new(Mutex::new(feed));
    let f = feed.clone();
    let base = Arc::new(Mutex::new(String::new()));
    let b = base.clone();
    let server = Server::start(
        tls.clone(),
        Arc::new(move |req: &Request| {
            if req.path != "/api/v1/iocs" {
                return json_reply(
                    404,
                    &json!({"error": {"code": "not_found", "message": "no route"}}),
                );
            }
            let base = b.lock().unwrap().clone();
            f.lock().unwrap().answer(req, &base)
        }),
    );
    let url = if tls.is_some() {
        format!("https://localhost:{}", server.port)
    } else {
        server.url.clone()
    };
    *base.lock().unwrap() = url.clone();
    (
        Server {
            url,
            port: server.port,
            requests: server.requests,
        },
        feed,
    )
}

/// An HTTP CONNECT proxy on loopback that tunnels to any target and records the targets.
pub fn connect_proxy() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut client) = stream else { continue };
            let seen = s2.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(client.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                        break;
                    }
                }
                let target = line.split_whitespace().nth(1).unwrap_or("").to_string();
                seen.lock().unwrap().push(target.clone());
                let Ok(upstream) = std::net::TcpStream::connect(&target) else {
                    let _ =
                        client.write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
                    return;
                };
                client
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .unwrap();
                let (mut up_r, mut up_w) = (upstream.try_clone().unwrap(), upstream);
                let mut cl_w = client.try_clone().unwrap();
                let t = std::thread::spawn(move || {
                    let _ = std::io::copy(&mut up_r, &mut cl_w);
                    let _ = cl_w.shutdown(std::net::Shutdown::Write);
                });
                let _ = std::io::copy(&mut reader, &mut up_w);
                let _ = up_w.shutdown(std::net::Shutdown::Write);
                let _ = t.join();
            });
        }
    });
    (url, seen)
}

//! A loopback TAXII 2.1 server in SOC Defenders' style: discovery at /api/taxii2/, API root
//! /api/taxii2/api/, objects answered as a STIX *bundle* (not an envelope) and paged only by
//! the X-TAXII-Date-Added-Last header fed back as added_after. Basic (user apikey or blank)
//! and Bearer auth; a Free key gets 403.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::api::{Reply, Request, Server, json_reply};

pub const FREE_KEY: &str = "sk_test_FREEKEY0000";

pub struct Obj {
    pub collection: String,
    pub date_added_us: i64,
    pub body: Value,
}

pub struct Taxii {
    pub objects: Vec<Obj>,
    /// Microseconds since the epoch; each `add` batch shares one date_added.
    pub clock_us: i64,
    pub accept_seen: Vec<String>,
    pub force_status: Option<u16>,
    pub answer_version: Option<&'static str>,
    /// Objects pages carry U+FFFD characters as escaped lone surrogates (`\ud800`).
    pub raw_surrogate: bool,
    /// The bundle's own id.
    pub bundle_id: String,
    /// Discovery names its API root under this base URL instead of its own (another origin).
    pub root_at: Option<String>,
    /// Sends every matching object in one page, whatever `limit` asks (servers may).
    pub ignore_limit: bool,
}

/// TAXII's timestamps: RFC 3339 UTC with microseconds.
pub fn ts_us(us: i64) -> String {
    super::utc(us, true)
}

impl Taxii {
    pub fn new() -> Taxii {
        Taxii::at((time::OffsetDateTime::now_utc().unix_timestamp() - 3600) * 1_000_000)
    }

    /// A server whose clock starts at `clock_us`: the same date_added values on every run.
    pub fn at(clock_us: i64) -> Taxii {
        Taxii {
            objects: Vec::new(),
            clock_us,
            accept_seen: Vec::new(),
            force_status: None,
            answer_version: None,
            raw_surrogate: false,
            bundle_id: "bundle--5d0092c5-5f74-4287-9642-33f4c354e56d".into(),
            root_at: None,
            ignore_limit: false,
        }
    }

    /// Adds objects that all share one date_added.
    pub fn add(&mut self, collection: &str, objs: Vec<Value>) {
        self.clock_us += 1_000_000;
        for body in objs {
            self.objects.push(Obj {
                collection: collection.into(),
                date_added_us: self.clock_us,
                body,
            });
        }
    }

    fn answer(&mut self, req: &Request, base: &str) -> Reply {
        self.accept_seen
            .push(req.headers.get("accept").cloned().unwrap_or_default());
        let auth = req
            .headers
            .get("authorization")
            .cloned()
            .unwrap_or_default();
        let key = if let Some(b) = auth.strip_prefix("Bearer ") {
            b.to_string()
        } else if let Some(b) = auth.strip_prefix("Basic ") {
            let raw = decode_b64(b);
            match raw.split_once(':') {
                Some(("apikey" | "", pw)) => pw.to_string(),
                _ => String::new(),
            }
        } else {
            String::new()
        };
        if key == FREE_KEY {
            return json_reply(
                403,
                &json!({"error": {"code": "forbidden", "message": "TAXII requires a Pro subscription"}}),
            );
        }
        if key != super::KEY {
            return json_reply(
                401,
                &json!({"error": {"code": "invalid_api_key", "message": "Invalid API key"}}),
            );
        }
        if let Some(s) = self.force_status {
            return json_reply(s, &json!({"title": "forced"}));
        }
        let media = format!(
            "application/taxii+json;version={}",
            self.answer_version.unwrap_or("2.1")
        );
        let surrogate = self.raw_surrogate;
        let taxii = |status: u16, v: &Value, extra: Vec<(String, String)>| {
            let mut headers = vec![("Content-Type".to_string(), media.clone())];
            headers.extend(extra);
            let mut body = serde_json::to_string(v).unwrap();
            if surrogate {
                body = body.replace('\u{fffd}', "\\ud800");
            }
            Reply::Http {
                status,
                headers,
                body: body.into_bytes(),
            }
        };
        let root_base = self.root_at.clone().unwrap_or_else(|| base.to_string());
        match req.path.as_str() {
            "/api/taxii2/" => taxii(
                200,
                &json!({
                    "title": "SOC Defenders TAXII Server",
                    "description": "Threat intelligence feed aggregated by SOC Defenders",
                    "contact": "support@socdefenders.ai",
                    "default": format!("{root_base}/api/taxii2/api/"),
                    "api_roots": [format!("{root_base}/api/taxii2/api/")],
                }),
                vec![],
            ),
            "/api/taxii2/api/" => taxii(
                200,
                &json!({"title": "SOC Defenders", "versions": ["application/taxii+json;version=2.1"], "max_content_length": 10485760}),
                vec![],
            ),
            "/api/taxii2/api/collections/" => taxii(
                200,
                &json!({"collections": [
                    {"id": "soc-defenders-all", "title": "All IOCs", "can_read": true, "can_write": false, "media_types": ["application/stix+json;version=2.1"]},
                    {"id": "soc-defenders-network", "title": "IPs only", "can_read": true, "can_write": false, "media_types": ["application/stix+json;version=2.1"]},
                ]}),
                vec![],
            ),
            p if p.starts_with("/api/taxii2/api/collections/") && p.ends_with("/objects/") => {
                let col = p
                    .trim_start_matches("/api/taxii2/api/collections/")
                    .trim_end_matches("/objects/");
                let after = req
                    .query
                    .get("added_after")
                    .map(|s| super::parse_us(s))
                    .unwrap_or(i64::MIN);
                let limit: usize = if self.ignore_limit {
                    usize::MAX
                } else {
                    req.query
                        .get("limit")
                        .and_then(|l| l.parse().ok())
                        .unwrap_or(1000)
                        .min(1000)
                };
                let mut matching: Vec<&Obj> = self
                    .objects
                    .iter()
                    .filter(|o| o.collection == col && o.date_added_us > after)
                    .collect();
                matching.sort_by_key(|o| o.date_added_us);
                let page: Vec<&Obj> = matching.into_iter().take(limit).collect();
                let mut headers = vec![];
                if let (Some(f), Some(l)) = (page.first(), page.last()) {
                    headers.push((
                        "X-TAXII-Date-Added-First".to_string(),
                        ts_us(f.date_added_us),
                    ));
                    headers.push((
                        "X-TAXII-Date-Added-Last".to_string(),
                        ts_us(l.date_added_us),
                    ));
                }
                let objects: Vec<Value> = page.iter().map(|o| o.body.clone()).collect();
                taxii(
                    200,
                    &json!({"type": "bundle", "id": self.bundle_id, "objects": objects}),
                    headers,
                )
            }
            _ => json_reply(404, &json!({"title": "not found"})),
        }
    }
}

fn decode_b64(s: &str) -> String {
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .unwrap_or_default();
    String::from_utf8_lossy(&raw).into_owned()
}

pub fn start(t: Taxii) -> (Server, Arc<Mutex<Taxii>>) {
    start_on("127.0.0.1", t)
}

/// The same server listening on another loopback address (another origin).
pub fn start_on(ip: &str, t: Taxii) -> (Server, Arc<Mutex<Taxii>>) {
    let t = Arc::new(Mutex::new(t));
    let t2 = t.clone();
    let base = Arc::new(Mutex::new(String::new()));
    let b2 = base.clone();
    let server = Server::start_on(
        ip,
        None,
        Arc::new(move |req: &Request| {
            let base = b2.lock().unwrap().clone();
            t2.lock().unwrap().answer(req, &base)
        }),
    );
    *base.lock().unwrap() = server.url.clone();
    (server, t)
}

/// An indicator with a simple pattern.
pub fn indicator(id: usize, pattern: &str, modified: &str) -> Value {
    json!({
        "type": "indicator", "spec_version": "2.1",
        "id": format!("indicator--00000000-0000-4000-8000-{id:012}"),
        "created": "2026-01-01T00:00:00.000Z", "modified": modified,
        "name": format!("indicator {id}"), "indicator_types": ["malicious-activity"],
        "pattern": pattern, "pattern_type": "stix", "valid_from": "2026-01-01T00:00:00Z",
        "confidence": 85, "labels": ["c2"],
    })
}

//! STIX 2.1: a patterning parser and the conversion of STIX objects to output events.
//!
//! The parser follows the STIX 2.1 patterning grammar (observation expressions joined by
//! `AND`/`OR`/`FOLLOWEDBY` with `WITHIN`/`REPEATS`/`START ... STOP` qualifiers; comparison
//! expressions of property tests joined by `AND`/`OR`; `NOT`, `EXISTS`, every comparison
//! operator, quoted path components, list indexes, and the string, integer, float, boolean,
//! `t''`, `h''` and `b''` literals with their escapes). Input size and nesting are bounded, and
//! every malformed pattern is an `Err`, never a panic.
//!
//! An indicator whose pattern is one or more observations of simple equalities on the paths
//! below, joined only by `OR`, becomes one event per value, with the REST events' `type`
//! vocabulary. Any other pattern becomes one `stix-pattern` event carrying the pattern, so
//! nothing is dropped silently.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

/// Patterns longer than this are refused (the parser is linear, the bound keeps events sane).
pub const MAX_PATTERN_BYTES: usize = 256 * 1024;
const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Timestamp(String),
    Hex(String),
    Binary(String),
    Set(Vec<Lit>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathStep {
    Key(String),
    Index(Option<u64>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Test {
    pub object_type: String,
    pub path: Vec<PathStep>,
    pub negated: bool,
    /// `=`, `!=`, `<`, `<=`, `>`, `>=`, `IN`, `LIKE`, `MATCHES`, `ISSUBSET`, `ISSUPERSET`, `EXISTS`.
    pub op: String,
    pub value: Option<Lit>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Comparison {
    Test(Test),
    And(Vec<Comparison>),
    Or(Vec<Comparison>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Observation {
    Single(Comparison),
    And(Vec<Observation>),
    Or(Vec<Observation>),
    FollowedBy(Vec<Observation>),
    Qualified(Box<Observation>, String),
}

#[derive(Debug, PartialEq, Eq)]
pub struct PatternError(pub String);

impl std::fmt::Display for PatternError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    depth: usize,
}

type R<T> = Result<T, PatternError>;

impl<'a> Parser<'a> {
    fn err<T>(&self, what: &str) -> R<T> {
        Err(PatternError(format!("{what} at byte {}", self.pos)))
    }
    fn ws(&mut self) {
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }
    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.pos).copied()
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, c: u8) -> R<()> {
        if self.eat(c) {
            Ok(())
        } else {
            self.err(&format!("expected '{}'", c as char))
        }
    }
    /// A keyword (case-sensitive, as the grammar), only at a word boundary.
    fn keyword(&mut self, kw: &str) -> bool {
        self.ws();
        let end = self.pos + kw.len();
        if self.s.get(self.pos..end) == Some(kw.as_bytes())
            && !self
                .s
                .get(end)
                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
        {
            self.pos = end;
            true
        } else {
            false
        }
    }
    fn enter(&mut self) -> R<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.err("pattern nested too deeply");
        }
        Ok(())
    }

    // observation expressions: FOLLOWEDBY < OR < AND < qualified primary
    fn observations(&mut self) -> R<Observation> {
        self.enter()?;
        let mut parts = vec![self.obs_or()?];
        while self.keyword("FOLLOWEDBY") {
            parts.push(self.obs_or()?);
        }
        self.depth -= 1;
        Ok(if parts.len() == 1 {
            parts.pop().expect("one part")
        } else {
            Observation::FollowedBy(parts)
        })
    }
    fn obs_or(&mut self) -> R<Observation> {
        let mut parts = vec![self.obs_and()?];
        while self.keyword("OR") {
            parts.push(self.obs_and()?);
        }
        Ok(if parts.len() == 1 {
            parts.pop().expect("one part")
        } else {
            Observation::Or(parts)
        })
    }
    fn obs_and(&mut self) -> R<Observation> {
        let mut parts = vec![self.obs_qualified()?];
        while self.keyword("AND") {
            parts.push(self.obs_qualified()?);
        }
        Ok(if parts.len() == 1 {
            parts.pop().expect("one part")
        } else {
            Observation::And(parts)
        })
    }
    fn obs_qualified(&mut self) -> R<Observation> {
        let mut obs = self.obs_primary()?;
        loop {
            if self.keyword("WITHIN") {
                let n = self.number()?;
                if !matches!(n, Lit::Int(i) if i > 0) && !matches!(n, Lit::Float(f) if f > 0.0) {
                    return self.err("WITHIN needs a positive number");
                }
                if !self.keyword("SECONDS") {
                    return self.err("expected SECONDS");
                }
                obs = Observation::Qualified(Box::new(obs), "WITHIN".into());
            } else if self.keyword("REPEATS") {
                if !matches!(self.number()?, Lit::Int(i) if i > 0) {
                    return self.err("REPEATS needs a positive integer");
                }
                if !self.keyword("TIMES") {
                    return self.err("expected TIMES");
                }
                obs = Observation::Qualified(Box::new(obs), "REPEATS".into());
            } else if self.keyword("START") {
                if !matches!(self.literal()?, Lit::Timestamp(_)) {
                    return self.err("START needs a t'...' timestamp");
                }
                if !self.keyword("STOP") {
                    return self.err("expected STOP");
                }
                if !matches!(self.literal()?, Lit::Timestamp(_)) {
                    return self.err("STOP needs a t'...' timestamp");
                }
                obs = Observation::Qualified(Box::new(obs), "START".into());
            } else {
                return Ok(obs);
            }
        }
    }
    fn obs_primary(&mut self) -> R<Observation> {
        if self.eat(b'[') {
            let c = self.comparisons()?;
            self.expect(b']')?;
            Ok(Observation::Single(c))
        } else if self.eat(b'(') {
            let o = self.observations()?;
            self.expect(b')')?;
            Ok(o)
        } else {
            self.err("expected '[' or '('")
        }
    }

    // comparison expressions: OR < AND < primary
    fn comparisons(&mut self) -> R<Comparison> {
        self.enter()?;
        let mut parts = vec![self.comp_and()?];
        while self.keyword("OR") {
            parts.push(self.comp_and()?);
        }
        self.depth -= 1;
        Ok(if parts.len() == 1 {
            parts.pop().expect("one part")
        } else {
            Comparison::Or(parts)
        })
    }
    fn comp_and(&mut self) -> R<Comparison> {
        let mut parts = vec![self.comp_primary()?];
        while self.keyword("AND") {
            parts.push(self.comp_primary()?);
        }
        Ok(if parts.len() == 1 {
            parts.pop().expect("one part")
        } else {
            Comparison::And(parts)
        })
    }
    fn comp_primary(&mut self) -> R<Comparison> {
        if self.eat(b'(') {
            let c = self.comparisons()?;
            self.expect(b')')?;
            return Ok(c);
        }
        if self.keyword("EXISTS") {
            let (object_type, path) = self.object_path()?;
            return Ok(Comparison::Test(Test {
                object_type,
                path,
                negated: false,
                op: "EXISTS".into(),
                value: None,
            }));
        }
        let (object_type, path) = self.object_path()?;
        let negated = self.keyword("NOT");
        let op = self.operator()?;
        let value = if op == "IN" {
            self.set()?
        } else {
            self.literal()?
        };
        let ok = match op.as_str() {
            "LIKE" | "MATCHES" => matches!(value, Lit::Str(_)),
            "ISSUBSET" | "ISSUPERSET" => matches!(value, Lit::Str(_)),
            "<" | "<=" | ">" | ">=" => !matches!(value, Lit::Bool(_) | Lit::Set(_)),
            _ => true,
        };
        if !ok {
            return self.err(&format!("a value of that kind cannot follow {op}"));
        }
        Ok(Comparison::Test(Test {
            object_type,
            path,
            negated,
            op,
            value: Some(value),
        }))
    }
    fn operator(&mut self) -> R<String> {
        self.ws();
        for op in ["!=", "<=", ">=", "=", "<", ">"] {
            if self.s[self.pos..].starts_with(op.as_bytes()) {
                self.pos += op.len();
                return Ok(op.to_string());
            }
        }
        for kw in ["IN", "LIKE", "MATCHES", "ISSUBSET", "ISSUPERSET"] {
            if self.keyword(kw) {
                return Ok(kw.to_string());
            }
        }
        self.err("expected a comparison operator")
    }
    fn ident(&mut self, allow_dash: bool) -> R<String> {
        self.ws();
        let start = self.pos;
        while let Some(&c) = self.s.get(self.pos) {
            if c.is_ascii_alphanumeric() || c == b'_' || (allow_dash && c == b'-') {
                self.pos += 1;
            } else {
                break;
            }
        }
        if start == self.pos {
            return self.err("expected a name");
        }
        Ok(String::from_utf8_lossy(&self.s[start..self.pos]).into_owned())
    }
    fn object_path(&mut self) -> R<(String, Vec<PathStep>)> {
        let object_type = self.ident(true)?;
        if self.s.get(self.pos) != Some(&b':') {
            return self.err("expected ':' after the object type");
        }
        self.pos += 1;
        let mut path = vec![self.path_component()?];
        loop {
            match self.s.get(self.pos) {
                Some(b'.') => {
                    self.pos += 1;
                    path.push(self.path_component()?);
                }
                Some(b'[') => {
                    self.pos += 1;
                    let step = if self.eat(b'*') {
                        PathStep::Index(None)
                    } else {
                        match self.number()? {
                            Lit::Int(i) if i >= 0 => PathStep::Index(Some(i as u64)),
                            _ => {
                                return self
                                    .err("a list index must be a non-negative integer or *");
                            }
                        }
                    };
                    self.expect(b']')?;
                    path.push(step);
                }
                _ => return Ok((object_type, path)),
            }
        }
    }
    fn path_component(&mut self) -> R<PathStep> {
        if self.s.get(self.pos) == Some(&b'\'') {
            Ok(PathStep::Key(self.quoted()?))
        } else {
            Ok(PathStep::Key(self.ident(true)?))
        }
    }
    /// A `'...'` string; `\'` and `\\` are the only escapes.
    fn quoted(&mut self) -> R<String> {
        if self.s.get(self.pos) != Some(&b'\'') {
            return self.err("expected a quoted string");
        }
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            match self.s.get(self.pos) {
                None => return self.err("unterminated string"),
                Some(b'\'') => {
                    self.pos += 1;
                    break;
                }
                Some(b'\\') => match self.s.get(self.pos + 1) {
                    Some(&c @ (b'\'' | b'\\')) => {
                        out.push(c);
                        self.pos += 2;
                    }
                    _ => return self.err("bad escape in string (only \\' and \\\\ are allowed)"),
                },
                Some(&c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
        String::from_utf8(out).map_err(|_| PatternError("string is not UTF-8".into()))
    }
    fn number(&mut self) -> R<Lit> {
        self.ws();
        let start = self.pos;
        if matches!(self.s.get(self.pos), Some(b'-' | b'+')) {
            self.pos += 1;
        }
        let digits = self.pos;
        while self.s.get(self.pos).is_some_and(u8::is_ascii_digit) {
            self.pos += 1;
        }
        if self.pos == digits {
            return self.err("expected a number");
        }
        let mut float = false;
        if self.s.get(self.pos) == Some(&b'.') {
            float = true;
            self.pos += 1;
            let frac = self.pos;
            while self.s.get(self.pos).is_some_and(u8::is_ascii_digit) {
                self.pos += 1;
            }
            if frac == self.pos {
                return self.err("expected digits after '.'");
            }
        }
        let text = std::str::from_utf8(&self.s[start..self.pos]).expect("ASCII");
        if float {
            text.parse()
                .map(Lit::Float)
                .or_else(|_| self.err("bad number"))
        } else {
            text.parse()
                .map(Lit::Int)
                .or_else(|_| self.err("integer out of range"))
        }
    }
    fn literal(&mut self) -> R<Lit> {
        match self.peek() {
            Some(b'\'') => self.quoted().map(Lit::Str),
            Some(b't') if self.s.get(self.pos + 1) == Some(&b'\'') => {
                self.pos += 1;
                let t = self.quoted()?;
                if crate::timeutil::parse(&t).is_none() || !t.ends_with('Z') {
                    return self.err("t'...' must be an RFC 3339 UTC timestamp");
                }
                Ok(Lit::Timestamp(t))
            }
            Some(b'h') if self.s.get(self.pos + 1) == Some(&b'\'') => {
                self.pos += 1;
                let h = self.quoted()?;
                if h.len() % 2 != 0 || !h.bytes().all(|c| c.is_ascii_hexdigit()) {
                    return self.err("h'...' must be pairs of hex digits");
                }
                Ok(Lit::Hex(h))
            }
            Some(b'b') if self.s.get(self.pos + 1) == Some(&b'\'') => {
                self.pos += 1;
                let b = self.quoted()?;
                if !b
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"+/=".contains(&c))
                {
                    return self.err("b'...' must be base64");
                }
                Ok(Lit::Binary(b))
            }
            Some(b't') if self.keyword("true") => Ok(Lit::Bool(true)),
            Some(b'f') if self.keyword("false") => Ok(Lit::Bool(false)),
            Some(c) if c.is_ascii_digit() || c == b'-' || c == b'+' => self.number(),
            _ => self.err("expected a value"),
        }
    }
    fn set(&mut self) -> R<Lit> {
        self.expect(b'(')?;
        let mut items = vec![self.literal()?];
        while self.eat(b',') {
            items.push(self.literal()?);
        }
        self.expect(b')')?;
        Ok(Lit::Set(items))
    }
}

/// Parses a whole STIX pattern.
pub fn parse(pattern: &str) -> Result<Observation, PatternError> {
    if pattern.len() > MAX_PATTERN_BYTES {
        return Err(PatternError(format!(
            "pattern of {} bytes is over the {MAX_PATTERN_BYTES}-byte limit",
            pattern.len()
        )));
    }
    let mut p = Parser {
        s: pattern.as_bytes(),
        pos: 0,
        depth: 0,
    };
    let obs = p.observations()?;
    p.ws();
    if p.pos != p.s.len() {
        return p.err("unexpected text after the pattern");
    }
    Ok(obs)
}

/// The REST `type` of a simple equality on `path`, if it is one we map.
fn ioc_type(t: &Test) -> Option<&'static str> {
    let keys: Vec<&str> = t
        .path
        .iter()
        .map(|s| match s {
            PathStep::Key(k) => Some(k.as_str()),
            PathStep::Index(_) => None,
        })
        .collect::<Option<_>>()?;
    Some(match (t.object_type.as_str(), keys.as_slice()) {
        ("ipv4-addr", ["value"]) => "ipv4",
        ("ipv6-addr", ["value"]) => "ipv6",
        ("domain-name", ["value"]) => "domain",
        ("url", ["value"]) => "url",
        ("email-addr", ["value"]) => "email",
        ("file", ["name"]) => "file_name",
        ("file", ["hashes", algo]) => {
            match algo.to_ascii_uppercase().replace(['-', '_'], "").as_str() {
                "MD5" => "md5",
                "SHA1" => "sha1",
                "SHA256" => "sha256",
                "SHA512" => "sha512",
                _ => return None,
            }
        }
        _ => return None,
    })
}

fn comparison_values(c: &Comparison, out: &mut Vec<(&'static str, String)>) -> bool {
    match c {
        Comparison::Test(t) if !t.negated => {
            let Some(ty) = ioc_type(t) else { return false };
            match (t.op.as_str(), &t.value) {
                ("=", Some(Lit::Str(v))) => {
                    out.push((ty, v.clone()));
                    true
                }
                ("IN", Some(Lit::Set(items))) => items.iter().all(|i| match i {
                    Lit::Str(v) => {
                        out.push((ty, v.clone()));
                        true
                    }
                    _ => false,
                }),
                _ => false,
            }
        }
        Comparison::Or(parts) => parts.iter().all(|p| comparison_values(p, out)),
        _ => false,
    }
}

/// The (type, value) pairs of a pattern made only of `OR`ed simple equalities, else `None`.
pub fn equalities(obs: &Observation) -> Option<Vec<(&'static str, String)>> {
    fn walk(o: &Observation, out: &mut Vec<(&'static str, String)>) -> bool {
        match o {
            Observation::Single(c) => comparison_values(c, out),
            Observation::Or(parts) => parts.iter().all(|p| walk(p, out)),
            _ => false,
        }
    }
    let mut out = Vec::new();
    if !walk(obs, &mut out) {
        return None;
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|(t, v)| seen.insert((*t, v.clone())));
    Some(out)
}

/// STIX 2.1 Appendix A, high/medium/low scale.
fn confidence_word(c: i64) -> &'static str {
    match c {
        70.. => "high",
        30..=69 => "medium",
        _ => "low",
    }
}

/// The events of one STIX object version: (id, version, events).
pub type ObjectEvents = (String, String, Vec<Map<String, Value>>);

/// What a page of STIX objects gave.
#[derive(Debug, Default)]
pub struct Converted {
    /// One entry per STIX object version turned into events: (id, version, events).
    pub objects: Vec<ObjectEvents>,
    /// Objects of other types, by type.
    pub skipped: HashMap<String, usize>,
    /// Indicators whose pattern did not parse: (id, reason).
    pub invalid: Vec<(String, String)>,
    /// Objects that are not objects or have no id/type.
    pub malformed: usize,
}

fn str_of<'a>(o: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    o.get(k).and_then(Value::as_str)
}

fn mitre_ids(o: &Map<String, Value>) -> Vec<Value> {
    o.get("external_references")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|r| {
            r.get("source_name")
                .and_then(Value::as_str)
                .is_some_and(|s| s.starts_with("mitre"))
        })
        .filter_map(|r| r.get("external_id").cloned())
        .collect()
}

fn base_event(o: &Map<String, Value>, collection: &str, now_ms: i64) -> Map<String, Value> {
    let id = str_of(o, "id").unwrap_or_default();
    // Room for every member below and the observable's (22 at most): no regrowth.
    let mut e = Map::with_capacity(24);
    if let Some(c) = o.get("confidence").and_then(Value::as_i64) {
        e.insert("confidence".into(), json!(confidence_word(c)));
        e.insert("confidence_score".into(), json!(c));
    }
    e.insert("id".into(), json!(id));
    let first = str_of(o, "valid_from").or(str_of(o, "created"));
    let last = str_of(o, "modified").or(str_of(o, "created"));
    e.insert("first_seen".into(), json!(first));
    e.insert("last_seen".into(), json!(last));
    e.insert("stix_id".into(), json!(id));
    e.insert("stix_type".into(), json!(str_of(o, "type")));
    e.insert("collection".into(), json!(collection));
    if let Some(n) = str_of(o, "name") {
        e.insert("name".into(), json!(n));
    }
    if let Some(d) = str_of(o, "description").or(str_of(o, "name")) {
        e.insert("context".into(), json!(d));
    }
    e.insert(
        "tags".into(),
        o.get("labels").cloned().unwrap_or_else(|| json!([])),
    );
    e.insert("mitre_techniques".into(), Value::Array(mitre_ids(o)));
    let revoked = o.get("revoked").and_then(Value::as_bool).unwrap_or(false);
    e.insert("revoked".into(), json!(revoked));
    let until = str_of(o, "valid_until");
    let expired = until
        .and_then(crate::timeutil::parse_ms)
        .is_some_and(|t| t < now_ms);
    if str_of(o, "type") == Some("indicator") {
        e.insert("valid_from".into(), json!(str_of(o, "valid_from")));
        e.insert("valid_until".into(), json!(until));
        e.insert(
            "indicator_types".into(),
            o.get("indicator_types")
                .cloned()
                .unwrap_or_else(|| json!([])),
        );
    }
    e.insert("expired".into(), json!(expired));
    e.insert(
        "source".into(),
        json!({"feed_name": collection, "origin": "taxii"}),
    );
    e
}

/// Turns the objects of one page into events. Several versions of one id: the newest
/// `modified` wins within the page.
pub fn convert(objects: &[Value], collection: &str, now_ms: i64) -> Converted {
    let mut out = Converted::default();
    let mut newest: Vec<&Map<String, Value>> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for v in objects {
        let Some(o) = v.as_object() else {
            out.malformed += 1;
            continue;
        };
        let (Some(id), Some(_)) = (str_of(o, "id"), str_of(o, "type")) else {
            out.malformed += 1;
            continue;
        };
        let version = str_of(o, "modified").or(str_of(o, "created")).unwrap_or("");
        match index.get(id) {
            Some(&i) => {
                let old = str_of(newest[i], "modified")
                    .or(str_of(newest[i], "created"))
                    .unwrap_or("");
                let (a, b) = (
                    crate::timeutil::parse_ms(version),
                    crate::timeutil::parse_ms(old),
                );
                if a > b || (a == b && version > old) {
                    newest[i] = o;
                }
            }
            None => {
                index.insert(id, newest.len());
                newest.push(o);
            }
        }
    }
    for o in newest {
        let id = str_of(o, "id").expect("checked").to_string();
        let version = str_of(o, "modified")
            .or(str_of(o, "created"))
            .unwrap_or("")
            .to_string();
        let ty = str_of(o, "type").expect("checked");
        let events = match ty {
            "indicator" => match indicator_events(o, collection, now_ms) {
                Ok(ev) => ev,
                Err(why) => {
                    out.invalid.push((id, why));
                    continue;
                }
            },
            "vulnerability" => {
                let cves: Vec<String> = o
                    .get("external_references")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter(|r| r.get("source_name").and_then(Value::as_str) == Some("cve"))
                    .filter_map(|r| r.get("external_id").and_then(Value::as_str))
                    .map(str::to_string)
                    .collect();
                if cves.is_empty() {
                    *out.skipped
                        .entry("vulnerability without CVE".into())
                        .or_default() += 1;
                    continue;
                }
                let n = cves.len();
                cves.into_iter()
                    .enumerate()
                    .map(|(i, cve)| {
                        let mut e = base_event(o, collection, now_ms);
                        e.insert("type".into(), json!("cve"));
                        e.insert("value".into(), json!(cve));
                        if n > 1 {
                            e.insert("id".into(), json!(format!("{id}#{i}")));
                        }
                        e
                    })
                    .collect()
            }
            other => {
                *out.skipped.entry(other.to_string()).or_default() += 1;
                continue;
            }
        };
        out.objects.push((id, version, events));
    }
    out
}

fn indicator_events(
    o: &Map<String, Value>,
    collection: &str,
    now_ms: i64,
) -> Result<Vec<Map<String, Value>>, String> {
    let id = str_of(o, "id").unwrap_or_default();
    let pattern = str_of(o, "pattern").ok_or("has no pattern")?;
    let pattern_type = str_of(o, "pattern_type").unwrap_or("stix");
    let mut base = base_event(o, collection, now_ms);
    base.insert("pattern".into(), json!(pattern));
    base.insert("pattern_type".into(), json!(pattern_type));
    if pattern_type != "stix" {
        base.insert("type".into(), json!("stix-pattern"));
        base.insert("value".into(), json!(pattern));
        return Ok(vec![base]);
    }
    let ast = parse(pattern).map_err(|e| format!("has an invalid STIX pattern ({e})"))?;
    let Some(values) = equalities(&ast) else {
        base.insert("type".into(), json!("stix-pattern"));
        base.insert("value".into(), json!(pattern));
        return Ok(vec![base]);
    };
    let n = values.len();
    let mut events = Vec::with_capacity(n);
    for (i, (ty, v)) in values.into_iter().enumerate() {
        // The last value takes the base itself; only earlier ones need a copy.
        let mut e = if i + 1 == n {
            std::mem::take(&mut base)
        } else {
            base.clone()
        };
        e.insert("type".into(), json!(ty));
        e.insert("value".into(), json!(v));
        if n > 1 {
            e.insert("id".into(), json!(format!("{id}#{i}")));
        }
        events.push(e);
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eq(p: &str) -> Option<Vec<(&'static str, String)>> {
        equalities(&parse(p).unwrap_or_else(|e| panic!("{p}: {e}")))
    }

    #[test]
    fn specification_examples_parse() {
        // From STIX 2.1 section 9 (patterning) examples.
        for p in [
            "[file:hashes.'SHA-256' = 'aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f']",
            "[email-message:from_ref.value MATCHES '.+\\\\@example\\\\.com$' AND email-message:body_multipart[*].body_raw_ref.name MATCHES '^Final Report.+\\\\.exe$']",
            "[file:hashes.'SHA-256' = 'aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f' OR file:hashes.MD5 = 'cead3f77f6cda6ec00f57d76c9a6879f']",
            "([file:hashes.MD5 = '79054025255fb1a26e4bc422aef54eb4'] FOLLOWEDBY [windows-registry-key:key = 'HKEY_LOCAL_MACHINE\\\\foo\\\\bar']) WITHIN 300 SECONDS",
            "[user-account:account_type = 'unix' AND user-account:user_id = '1007' AND user-account:account_login = 'Peter'] AND [user-account:account_type = 'unix' AND user-account:user_id = '1008' AND user-account:account_login = 'Paul']",
            "[artifact:mime_type = 'application/vnd.tcpdump.pcap' AND artifact:payload_bin MATCHES '\\\\xd4\\\\xc3\\\\xb2\\\\xa1\\\\x02\\\\x00\\\\x04\\\\x00']",
            "[file:name = 'foo.dll' AND file:parent_directory_ref.path = 'C:\\\\Windows\\\\System32']",
            "[file:extensions.'windows-pebinary-ext'.sections[*].entropy > 7.0]",
            "[file:mime_type = 'image/bmp' AND file:magic_number_hex = h'ffd8']",
            "[network-traffic:dst_ref.type = 'ipv4-addr' AND network-traffic:dst_ref.value = '203.0.113.33/32']",
            "[domain-name:value = 'www.5z8.info' AND domain-name:resolves_to_refs[*].value = '198.51.100.1/32']",
            "[url:value = 'http://example.com/foo' OR url:value = 'http://example.com/bar']",
            "[x509-certificate:issuer = 'CN=WEBMAIL' AND x509-certificate:serial_number = '4c:0b:1d:19:74:86:a7:66:b4:1a:bf:40:27:21:76:28']",
            "[windows-registry-key:key = 'HKEY_CURRENT_USER\\\\Software\\\\CryptoLocker\\\\Files' OR windows-registry-key:key = 'HKEY_CURRENT_USER\\\\Software\\\\Microsoft\\\\CurrentVersion\\\\Run\\\\CryptoLocker_0388']",
            "[(file:name = 'pdf.exe' OR file:size = 371712) AND file:created = t'2014-01-13T07:03:17Z']",
            "[email-message:sender_ref.value = 'jdoe@example.com' AND email-message:subject = 'Conference Info']",
            "[x-usb-device:usbdrive.serial_number = '575833314133343231313937']",
            "[process:command_line MATCHES '^.+>-add GlobalSign.cer -c -s -r localMachineRoot Root$'] FOLLOWEDBY [process:command_line MATCHES '^.+>-add GlobalSign.cer -c -s -r localMachineTrustedPublisher TrustedPublisher$'] WITHIN 300 SECONDS",
            "[network-traffic:src_ref.value ISSUBSET '2001:0db8:dead:beef:0000:0000:0000:0000/64']",
            "[file:hashes.MD5 = 'cead3f77f6cda6ec00f57d76c9a6879f'] REPEATS 5 TIMES WITHIN 1800 SECONDS",
            "[ipv4-addr:value = '198.51.100.1/32'] START t'2016-06-01T00:00:00Z' STOP t'2016-07-01T00:00:00Z'",
            "[file:size NOT IN (1, 2, 3)]",
            "[EXISTS windows-registry-key:values]",
            "[artifact:payload_bin = b'dGhpcyBpcyBhIHRlc3Q=']",
            "[x-x:flag = true AND x-x:n != -4]",
        ] {
            parse(p).unwrap_or_else(|e| panic!("{p}: {e}"));
        }
    }

    #[test]
    fn simple_equalities_become_values() {
        assert_eq!(
            eq("[ipv4-addr:value = '1.2.3.4']"),
            Some(vec![("ipv4", "1.2.3.4".into())])
        );
        assert_eq!(
            eq("[ipv6-addr:value = '2001:db8::/32']"),
            Some(vec![("ipv6", "2001:db8::/32".into())])
        );
        assert_eq!(
            eq(
                "[domain-name:value = 'a.example' OR url:value = 'http://x/'] OR [email-addr:value = 'm@x.example']"
            ),
            Some(vec![
                ("domain", "a.example".into()),
                ("url", "http://x/".into()),
                ("email", "m@x.example".into())
            ])
        );
        assert_eq!(eq("[file:hashes.'SHA-256' = 'ab'] OR [file:hashes.MD5 = 'cd'] OR [file:hashes.'SHA-1' = 'ef'] OR [file:hashes.'SHA-512' = '01'] OR [file:name = 'x.exe']").unwrap().iter().map(|x| x.0).collect::<Vec<_>>(), vec!["sha256", "md5", "sha1", "sha512", "file_name"]);
        assert_eq!(
            eq("[domain-name:value IN ('a.example', 'b.example')]")
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            eq("[url:value = 'it\\'s \\\\ here']"),
            Some(vec![("url", "it's \\ here".into())])
        );
    }

    #[test]
    fn other_patterns_are_not_reduced() {
        for p in [
            "[ipv4-addr:value = '1.2.3.4' AND domain-name:value = 'a.example']",
            "[ipv4-addr:value = '1.2.3.4'] AND [domain-name:value = 'a.example']",
            "[ipv4-addr:value = '1.2.3.4'] FOLLOWEDBY [domain-name:value = 'a.example']",
            "[ipv4-addr:value = '1.2.3.4'] REPEATS 2 TIMES",
            "[ipv4-addr:value != '1.2.3.4']",
            "[ipv4-addr:value NOT = '1.2.3.4']",
            "[domain-name:value LIKE '%.example']",
            "[file:hashes.'SHA-3' = 'ab']",
            "[process:name = 'x']",
        ] {
            assert_eq!(eq(p), None, "{p}");
        }
    }

    #[test]
    fn hostile_patterns_are_errors_not_panics() {
        let deep = "(".repeat(10_000) + "[a:b = 'c']" + &")".repeat(10_000);
        let big = format!("[url:value = '{}']", "a".repeat(2 * 1024 * 1024));
        let many_or = (0..5_000)
            .map(|i| format!("[ipv4-addr:value = '10.0.{}.{}']", i / 256, i % 256))
            .collect::<Vec<_>>()
            .join(" OR ");
        for p in [
            "",
            "[",
            "]",
            "[ipv4-addr:value = '1.2.3.4'",
            "ipv4-addr:value = '1.2.3.4']",
            "[ipv4-addr:value = '1.2.3.4]",
            "[ipv4-addr:value = 'a\\nb']",
            "[ipv4-addr:value == 'x']",
            "[ipv4-addr = 'x']",
            "[:value = 'x']",
            "[a:b = 'c'] WITHIN -5 SECONDS",
            "[a:b = 'c'] REPEATS 0 TIMES",
            "[a:b = 'c'] START t'bad' STOP t'2016-07-01T00:00:00Z'",
            "[a:b = h'abc']",
            "[a:b[-1] = 'c']",
            "[a:b = 'c'] trailing",
            "[a:b = 99999999999999999999]",
            "[a:b LIKE 5]",
            &deep,
            &big,
            "\u{0}\u{ffff}",
            "[a:b = '\u{e9}'",
        ] {
            assert!(parse(p).is_err(), "{:.60}", p);
        }
        assert!(many_or.len() < MAX_PATTERN_BYTES);
        assert_eq!(equalities(&parse(&many_or).unwrap()).unwrap().len(), 5_000);
    }

    #[test]
    fn objects_become_events_and_the_newest_version_wins() {
        let objs = vec![
            json!({"type": "identity", "id": "identity--1", "name": "x"}),
            json!({"type": "marking-definition", "id": "marking-definition--1"}),
            json!({"type": "indicator", "id": "indicator--a", "created": "2026-01-01T00:00:00Z", "modified": "2026-01-01T00:00:00Z",
                   "pattern": "[ipv4-addr:value = '198.51.100.1']", "pattern_type": "stix", "valid_from": "2026-01-01T00:00:00Z", "confidence": 85, "labels": ["c2"]}),
            json!({"type": "indicator", "id": "indicator--a", "created": "2026-01-01T00:00:00Z", "modified": "2026-02-01T00:00:00Z",
                   "pattern": "[ipv4-addr:value = '198.51.100.2']", "pattern_type": "stix", "valid_from": "2026-01-01T00:00:00Z", "confidence": 40, "revoked": true}),
            json!({"type": "indicator", "id": "indicator--b", "modified": "2026-01-01T00:00:00Z", "pattern": "[ipv4-addr:value = ", "pattern_type": "stix", "valid_from": "2026-01-01T00:00:00Z"}),
            json!({"type": "indicator", "id": "indicator--c", "modified": "2026-01-01T00:00:00Z", "pattern": "[a:b = 'c'] AND [d:e = 'f']", "pattern_type": "stix",
                   "valid_from": "2020-01-01T00:00:00Z", "valid_until": "2021-01-01T00:00:00Z"}),
            json!({"type": "vulnerability", "id": "vulnerability--v", "modified": "2026-01-01T00:00:00Z", "name": "CVE-2026-1",
                   "external_references": [{"source_name": "cve", "external_id": "CVE-2026-1"}]}),
            json!("not an object"),
        ];
        let c = convert(
            &objs,
            "All IOCs",
            crate::timeutil::parse_ms("2026-06-01T00:00:00Z").unwrap(),
        );
        assert_eq!(c.skipped.values().sum::<usize>(), 2);
        assert_eq!(c.malformed, 1);
        assert_eq!(c.invalid.len(), 1);
        assert_eq!(c.invalid[0].0, "indicator--b");
        let all: Vec<&Map<String, Value>> = c.objects.iter().flat_map(|(_, _, e)| e).collect();
        assert_eq!(all.len(), 3);
        assert_eq!(all[0]["value"], "198.51.100.2");
        assert_eq!(all[0]["revoked"], true);
        assert_eq!(all[0]["confidence"], "medium");
        assert_eq!(all[1]["type"], "stix-pattern");
        assert_eq!(all[1]["expired"], true);
        assert_eq!(all[2]["type"], "cve");
        assert_eq!(all[2]["value"], "CVE-2026-1");
    }
}

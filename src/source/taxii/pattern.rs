//! STIX 2.1 patterns, as the OASIS reference validator (`stix2-patterns`) reads them.
//!
//! A lexer and a recursive-descent parser that follow the specification's ANTLR grammar
//! (`STIXPattern.g4` of stix2-patterns 2.1.2): the lexer takes the longest token at each
//! place, the rule listed first winning a tie, so `AND` is a keyword and `ANDx` a name,
//! `.5` a float, `h'abc'` a name followed by a string; keywords are upper case only, except
//! `true` and `false`; whitespace is every character the grammar lists (U+00A0, U+2028, ...);
//! `/* */` and `//` comments are skipped. On top of the grammar, the validator's own checks:
//! the pattern must start with `[` after any `(` and whitespace; a value compared with a
//! known hash (`file:hashes.'SHA-256'`) must have that hash's shape; a qualifier may not
//! repeat directly on a bracketed observation. Where the validator fails instead of
//! answering (a negative list index, a list index right after `hashes`), the pattern is
//! refused too.
//!
//! Limits of this parser, beyond the grammar: a pattern of at most [`MAX_PATTERN_BYTES`], and
//! at most [`MAX_DEPTH`] nested parentheses (observations and comparisons together).
//! Qualifier chains and `AND`/`OR`/`FOLLOWEDBY` chains are flat lists, so no other shape
//! deepens the tree.

use std::borrow::Cow;

/// Patterns longer than this are refused.
pub const MAX_PATTERN_BYTES: usize = 256 * 1024;
/// Most nested parentheses.
pub const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    IntNeg,
    IntPos,
    FloatNeg,
    FloatPos,
    Hex,
    Binary,
    Str,
    Bool,
    Timestamp,
    And,
    Or,
    Not,
    FollowedBy,
    Like,
    Matches,
    IsSuperset,
    IsSubset,
    Exists,
    Last,
    In,
    Start,
    Stop,
    Seconds,
    Within,
    Repeats,
    Times,
    Ident,
    IdentHyphen,
    Eq,
    Neq,
    Lt,
    Le,
    Gt,
    Ge,
    Quote,
    Colon,
    Dot,
    Comma,
    RParen,
    LParen,
    RBrack,
    LBrack,
    Plus,
    Minus,
    Power,
    Divide,
    Asterisk,
    Invalid,
}

const KEYWORDS: &[(&str, Tok)] = &[
    ("AND", Tok::And),
    ("OR", Tok::Or),
    ("NOT", Tok::Not),
    ("FOLLOWEDBY", Tok::FollowedBy),
    ("LIKE", Tok::Like),
    ("MATCHES", Tok::Matches),
    ("ISSUPERSET", Tok::IsSuperset),
    ("ISSUBSET", Tok::IsSubset),
    ("EXISTS", Tok::Exists),
    ("LAST", Tok::Last),
    ("IN", Tok::In),
    ("START", Tok::Start),
    ("STOP", Tok::Stop),
    ("SECONDS", Tok::Seconds),
    ("WITHIN", Tok::Within),
    ("REPEATS", Tok::Repeats),
    ("TIMES", Tok::Times),
];

/// The grammar's whitespace (its `WS` rule).
fn is_ws(c: char) -> bool {
    matches!(
        c,
        ' ' | '\t' | '\r' | '\n' | '\u{b}' | '\u{c}' | '\u{85}' | '\u{a0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200a}' | '\u{2028}' | '\u{2029}' | '\u{202f}' | '\u{205f}' | '\u{3000}'
    )
}

/// Python's `str.isspace`, which the validator's bracket check uses.
fn is_python_space(c: char) -> bool {
    is_ws(c) || matches!(c, '\u{1c}'..='\u{1f}')
}

#[derive(Debug, Clone, Copy)]
struct Token<'a> {
    kind: Tok,
    text: &'a str,
    /// Its byte offset in the pattern.
    at: usize,
}

/// Length of a run of bytes satisfying `f` in `b` from `i`.
fn run(b: &[u8], i: usize, f: impl Fn(u8) -> bool) -> usize {
    b[i.min(b.len())..].iter().take_while(|&&c| f(c)).count()
}

/// `'0' | [1-9][0-9]*` at `i`: its length, or 0.
fn unsigned_int(b: &[u8], i: usize) -> usize {
    match b.get(i) {
        Some(b'0') => 1,
        Some(b'1'..=b'9') => 1 + run(b, i + 1, |c| c.is_ascii_digit()),
        _ => 0,
    }
}

/// `[0-9]* '.' [0-9]+` at `i`: its length, or 0.
fn unsigned_float(b: &[u8], i: usize) -> usize {
    let whole = run(b, i, |c| c.is_ascii_digit());
    if b.get(i + whole) != Some(&b'.') {
        return 0;
    }
    let frac = run(b, i + whole + 1, |c| c.is_ascii_digit());
    if frac == 0 { 0 } else { whole + 1 + frac }
}

/// `'...'` with only `\'` and `\\` as escapes, at `i` (a quote): its length, or 0.
fn string_len(b: &[u8], i: usize) -> usize {
    if b.get(i) != Some(&b'\'') {
        return 0;
    }
    let mut j = i + 1;
    while j < b.len() {
        match b[j] {
            b'\'' => return j + 1 - i,
            b'\\' => match b.get(j + 1) {
                Some(b'\'' | b'\\') => j += 2,
                _ => return 0,
            },
            _ => j += 1,
        }
    }
    0
}

/// `h'(hex hex)*'` at `i`.
fn hex_len(b: &[u8], i: usize) -> usize {
    if b.get(i..i + 2) != Some(b"h'") {
        return 0;
    }
    let n = run(b, i + 2, |c| c.is_ascii_hexdigit());
    let n = n - n % 2;
    if b.get(i + 2 + n) == Some(&b'\'') {
        n + 3
    } else {
        0
    }
}

/// `b'` base64 in groups of four, the last one padded or not, `'` at `i`.
fn binary_len(b: &[u8], i: usize) -> usize {
    if b.get(i..i + 2) != Some(b"b'") {
        return 0;
    }
    let b64 = |c: u8| c.is_ascii_alphanumeric() || c == b'+' || c == b'/';
    let n = run(b, i + 2, b64);
    // The longest form that ends with the closing quote: n chars in groups of 4, or a last
    // group of 3 chars and '=', or of 2 chars and '=='.
    let at = i + 2 + n;
    let ok = match (n % 4, b.get(at)) {
        (0, Some(b'\'')) if n > 0 => return n + 3,
        (3, Some(b'=')) => {
            b.get(at + 1) == Some(&b'\'') && {
                return n + 4;
            }
        }
        (2, Some(b'=')) => {
            b.get(at + 1..at + 3) == Some(b"='") && {
                return n + 5;
            }
        }
        _ => false,
    };
    let _ = ok;
    0
}

/// `t'YYYY-MM-DDTHH:MM:SS(.f+)?Z'` with the grammar's ranges, at `i`.
fn timestamp_len(b: &[u8], i: usize) -> usize {
    if b.get(i..i + 2) != Some(b"t'") {
        return 0;
    }
    let d = |k: usize| b.get(i + 2 + k).copied().filter(u8::is_ascii_digit);
    let at = |k: usize, c: u8| b.get(i + 2 + k) == Some(&c);
    let two = |k: usize| Some((d(k)? - b'0') * 10 + (d(k + 1)? - b'0'));
    let ok = (0..4).all(|k| d(k).is_some())
        && at(4, b'-')
        && two(5).is_some_and(|m| (1..=12).contains(&m))
        && at(7, b'-')
        && two(8).is_some_and(|m| (1..=31).contains(&m))
        && at(10, b'T')
        && two(11).is_some_and(|h| h <= 23)
        && at(13, b':')
        && two(14).is_some_and(|m| m <= 59)
        && at(16, b':')
        && two(17).is_some_and(|s| s <= 60);
    if !ok {
        return 0;
    }
    let mut k = 19;
    if at(k, b'.') {
        let n = run(b, i + 2 + k + 1, |c| c.is_ascii_digit());
        if n == 0 {
            return 0;
        }
        k += 1 + n;
    }
    if at(k, b'Z') && at(k + 1, b'\'') {
        k + 4
    } else {
        0
    }
}

/// The tokens of a pattern, whitespace and comments dropped, made one at a time: the
/// parser holds at most two, so a pattern's tokens never take memory in proportion to it.
struct Lexer<'a> {
    p: &'a str,
    i: usize,
}

impl<'a> Lexer<'a> {
    fn new(p: &'a str) -> Lexer<'a> {
        Lexer { p, i: 0 }
    }
}

impl<'a> Iterator for Lexer<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        let (p, b) = (self.p, self.p.as_bytes());
        while self.i < b.len() {
            let i = self.i;
            let c = p[i..].chars().next().expect("a char");
            if is_ws(c) {
                self.i += c.len_utf8();
                continue;
            }
            if b[i..].starts_with(b"//") {
                self.i += run(b, i, |c| c != b'\r' && c != b'\n');
                continue;
            }
            if b[i..].starts_with(b"/*")
                && let Some(end) = p[i + 2..].find("*/")
            {
                self.i += end + 4;
                continue;
            }
            let (kind, len) = longest(b, i, c);
            self.i += len;
            return Some(Token {
                kind,
                text: &p[i..i + len],
                at: i,
            });
        }
        None
    }
}

/// The longest token at `i` (`c` is the character there), the earliest rule on a tie.
fn longest(b: &[u8], i: usize, c: char) -> (Tok, usize) {
    let mut best = (Tok::Invalid, c.len_utf8());
    let mut offer = |kind: Tok, len: usize| {
        if len > best.1 || (len == best.1 && best.0 == Tok::Invalid && len > 0) {
            best = (kind, len);
        }
    };
    // In the grammar's order, so that `offer` keeps the first of equal lengths.
    if b[i] == b'-' {
        let n = unsigned_int(b, i + 1);
        if n > 0 {
            offer(Tok::IntNeg, n + 1);
        }
    }
    let sign = usize::from(b[i] == b'+');
    let n = unsigned_int(b, i + sign);
    if n > 0 {
        offer(Tok::IntPos, n + sign);
    }
    if b[i] == b'-' {
        let n = unsigned_float(b, i + 1);
        if n > 0 {
            offer(Tok::FloatNeg, n + 1);
        }
    }
    let n = unsigned_float(b, i + sign);
    if n > 0 {
        offer(Tok::FloatPos, n + sign);
    }
    offer(Tok::Hex, hex_len(b, i));
    offer(Tok::Binary, binary_len(b, i));
    offer(Tok::Str, string_len(b, i));
    for w in ["true", "false"] {
        if b[i..].starts_with(w.as_bytes()) {
            offer(Tok::Bool, w.len());
        }
    }
    offer(Tok::Timestamp, timestamp_len(b, i));
    for (w, t) in KEYWORDS {
        if b[i..].starts_with(w.as_bytes()) {
            offer(*t, w.len());
        }
    }
    if b[i].is_ascii_alphabetic() || b[i] == b'_' {
        let plain = 1 + run(b, i + 1, |c| c.is_ascii_alphanumeric() || c == b'_');
        offer(Tok::Ident, plain);
        let hyph = 1 + run(b, i + 1, |c| {
            c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
        });
        offer(Tok::IdentHyphen, hyph);
    }
    let two = b.get(i..i + 2);
    match two {
        Some(b"==") => offer(Tok::Eq, 2),
        Some(b"!=" | b"<>") => offer(Tok::Neq, 2),
        Some(b"<=") => offer(Tok::Le, 2),
        Some(b">=") => offer(Tok::Ge, 2),
        _ => {}
    }
    let one = punctuation(b[i]);
    if let Some(t) = one {
        offer(t, 1);
    }
    best
}

/// The one-character token `c` is, if any.
fn punctuation(c: u8) -> Option<Tok> {
    match c {
        b'=' => Some(Tok::Eq),
        b'<' => Some(Tok::Lt),
        b'>' => Some(Tok::Gt),
        b'\'' => Some(Tok::Quote),
        b':' => Some(Tok::Colon),
        b'.' => Some(Tok::Dot),
        b',' => Some(Tok::Comma),
        b')' => Some(Tok::RParen),
        b'(' => Some(Tok::LParen),
        b']' => Some(Tok::RBrack),
        b'[' => Some(Tok::LBrack),
        b'+' => Some(Tok::Plus),
        b'-' => Some(Tok::Minus),
        b'^' => Some(Tok::Power),
        b'/' => Some(Tok::Divide),
        b'*' => Some(Tok::Asterisk),
        _ => None,
    }
}

/// A literal of a comparison, borrowed from the pattern where it can be.
#[derive(Debug, Clone, PartialEq)]
pub enum Lit<'a> {
    /// A string, unescaped.
    Str(Cow<'a, str>),
    /// Any other literal, as written.
    Other(&'a str),
    Set(Vec<Lit<'a>>),
}

/// One step of an object path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step<'a> {
    Key(Cow<'a, str>),
    Index(Option<i64>),
}

/// A property test: `object_type:path op value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Test<'a> {
    pub object_type: &'a str,
    pub path: Vec<Step<'a>>,
    pub negated: bool,
    /// `=`, `!=`, `<`, `<=`, `>`, `>=`, `IN`, `LIKE`, `MATCHES`, `ISSUBSET`, `ISSUPERSET`,
    /// `EXISTS` (`==` is `=`, `<>` is `!=`).
    pub op: &'static str,
    pub value: Option<Lit<'a>>,
    /// The value as written (whitespace and comments included).
    value_src: &'a str,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Comparison<'a> {
    Test(Test<'a>),
    And(Vec<Comparison<'a>>),
    Or(Vec<Comparison<'a>>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qualifier {
    Within,
    Repeats,
    StartStop,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Observation<'a> {
    /// `[comparison]` and the qualifiers applied to it directly.
    Single(Comparison<'a>, Vec<Qualifier>),
    /// `(observations)` and the qualifiers applied to it.
    Group(Box<Observation<'a>>, Vec<Qualifier>),
    And(Vec<Observation<'a>>),
    Or(Vec<Observation<'a>>),
    FollowedBy(Vec<Observation<'a>>),
}

#[derive(Debug, PartialEq, Eq)]
pub struct PatternError(pub String);

impl std::fmt::Display for PatternError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

type R<T> = Result<T, PatternError>;

struct Parser<'a> {
    lex: Lexer<'a>,
    /// The current token, and the one after it once asked for.
    cur: Option<Token<'a>>,
    second: Option<Option<Token<'a>>>,
    /// How many tokens were taken, and where the last one ended.
    pos: usize,
    last_end: usize,
    depth: usize,
}

impl<'a> Parser<'a> {
    fn new(pattern: &'a str) -> Parser<'a> {
        let mut lex = Lexer::new(pattern);
        let cur = lex.next();
        Parser {
            lex,
            cur,
            second: None,
            pos: 0,
            last_end: 0,
            depth: 0,
        }
    }

    fn peek(&self) -> Option<Tok> {
        self.cur.map(|t| t.kind)
    }

    fn peek_second(&mut self) -> Option<Tok> {
        if self.second.is_none() {
            self.second = Some(self.lex.next());
        }
        self.second.flatten().map(|t| t.kind)
    }

    /// Takes the current token.
    fn bump(&mut self) -> Option<Token<'a>> {
        let t = self.cur.take()?;
        self.cur = match self.second.take() {
            Some(s) => s,
            None => self.lex.next(),
        };
        self.pos += 1;
        self.last_end = t.at + t.text.len();
        Some(t)
    }

    fn err<T>(&self, what: &str) -> R<T> {
        let found = self
            .cur
            .map_or("the end".to_string(), |t| format!("{:?}", t.text));
        Err(PatternError(format!(
            "{what}, found {} at token {}",
            crate::json::prefix(&found, 40),
            self.pos
        )))
    }

    fn eat(&mut self, k: Tok) -> Option<&'a str> {
        if self.peek() == Some(k) {
            self.bump().map(|t| t.text)
        } else {
            None
        }
    }

    fn expect(&mut self, k: Tok, what: &str) -> R<&'a str> {
        match self.eat(k) {
            Some(t) => Ok(t),
            None => self.err(&format!("expected {what}")),
        }
    }

    fn enter(&mut self) -> R<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(PatternError(format!(
                "more than {MAX_DEPTH} nested parentheses"
            )));
        }
        Ok(())
    }

    /// `a X b X c` as a flat list.
    fn chain<T>(
        &mut self,
        op: Tok,
        mut item: impl FnMut(&mut Self) -> R<T>,
        join: impl FnOnce(Vec<T>) -> T,
    ) -> R<T> {
        let mut parts = vec![item(self)?];
        while self.eat(op).is_some() {
            parts.push(item(self)?);
        }
        Ok(if parts.len() == 1 {
            parts.pop().expect("one part")
        } else {
            join(parts)
        })
    }

    fn observations(&mut self) -> R<Observation<'a>> {
        self.chain(
            Tok::FollowedBy,
            |p| {
                p.chain(
                    Tok::Or,
                    |p| p.chain(Tok::And, Self::observation, Observation::And),
                    Observation::Or,
                )
            },
            Observation::FollowedBy,
        )
    }

    fn observation(&mut self) -> R<Observation<'a>> {
        let obs = if self.eat(Tok::LBrack).is_some() {
            let c = self.comparisons()?;
            self.expect(Tok::RBrack, "']'")?;
            Observation::Single(c, Vec::new())
        } else if self.eat(Tok::LParen).is_some() {
            self.enter()?;
            let o = self.observations()?;
            self.depth -= 1;
            self.expect(Tok::RParen, "')'")?;
            Observation::Group(Box::new(o), Vec::new())
        } else {
            return self.err("expected '[' or '('");
        };
        let mut quals = Vec::new();
        loop {
            if self.eat(Tok::Within).is_some() {
                if self
                    .eat(Tok::IntPos)
                    .or_else(|| self.eat(Tok::FloatPos))
                    .is_none()
                {
                    return self.err("expected a positive number after WITHIN");
                }
                self.expect(Tok::Seconds, "SECONDS")?;
                quals.push(Qualifier::Within);
            } else if self.eat(Tok::Repeats).is_some() {
                self.expect(Tok::IntPos, "a positive integer after REPEATS")?;
                self.expect(Tok::Times, "TIMES")?;
                quals.push(Qualifier::Repeats);
            } else if self.eat(Tok::Start).is_some() {
                self.expect(Tok::Timestamp, "a t'...' timestamp after START")?;
                self.expect(Tok::Stop, "STOP")?;
                self.expect(Tok::Timestamp, "a t'...' timestamp after STOP")?;
                quals.push(Qualifier::StartStop);
            } else {
                break;
            }
        }
        Ok(match obs {
            Observation::Single(c, _) => Observation::Single(c, quals),
            Observation::Group(o, _) => Observation::Group(o, quals),
            _ => unreachable!("built above"),
        })
    }

    fn comparisons(&mut self) -> R<Comparison<'a>> {
        self.chain(
            Tok::Or,
            |p| p.chain(Tok::And, Self::prop_test, Comparison::And),
            Comparison::Or,
        )
    }

    fn prop_test(&mut self) -> R<Comparison<'a>> {
        if self.eat(Tok::LParen).is_some() {
            self.enter()?;
            let c = self.comparisons()?;
            self.depth -= 1;
            self.expect(Tok::RParen, "')'")?;
            return Ok(c);
        }
        if self.peek() == Some(Tok::Exists)
            || (self.peek() == Some(Tok::Not) && self.peek_second() == Some(Tok::Exists))
        {
            let negated = self.eat(Tok::Not).is_some();
            self.bump();
            let (object_type, path) = self.object_path()?;
            return Ok(Comparison::Test(Test {
                object_type,
                path,
                negated,
                op: "EXISTS",
                value: None,
                value_src: "",
            }));
        }
        let (object_type, path) = self.object_path()?;
        let negated = self.eat(Tok::Not).is_some();
        let op = match self.peek() {
            Some(
                k @ (Tok::Eq
                | Tok::Neq
                | Tok::Lt
                | Tok::Le
                | Tok::Gt
                | Tok::Ge
                | Tok::In
                | Tok::Like
                | Tok::Matches
                | Tok::IsSubset
                | Tok::IsSuperset),
            ) => k,
            _ => return self.err("expected a comparison operator"),
        };
        self.bump();
        let start = self.cur.map_or(self.lex.p.len(), |t| t.at);
        let (op, value) = match op {
            Tok::Eq => ("=", self.literal(true)?),
            Tok::Neq => ("!=", self.literal(true)?),
            Tok::Lt => ("<", self.literal(false)?),
            Tok::Le => ("<=", self.literal(false)?),
            Tok::Gt => (">", self.literal(false)?),
            Tok::Ge => (">=", self.literal(false)?),
            Tok::In => ("IN", self.set()?),
            Tok::Like => ("LIKE", self.string()?),
            Tok::Matches => ("MATCHES", self.string()?),
            Tok::IsSubset => ("ISSUBSET", self.string()?),
            Tok::IsSuperset => ("ISSUPERSET", self.string()?),
            _ => unreachable!("an operator, checked above"),
        };
        let value_src = &self.lex.p[start..self.last_end.max(start)];
        Ok(Comparison::Test(Test {
            object_type,
            path,
            negated,
            op,
            value: Some(value),
            value_src,
        }))
    }

    fn string(&mut self) -> R<Lit<'a>> {
        let t = self.expect(Tok::Str, "a string")?;
        Ok(Lit::Str(unquote(t)))
    }

    /// A primitive literal (`bool`: booleans allowed), or an orderable one.
    fn literal(&mut self, bool: bool) -> R<Lit<'a>> {
        let Some(tok) = self.cur else {
            return self.err("expected a value");
        };
        let t = tok.text;
        let lit = match tok.kind {
            Tok::Str => Lit::Str(unquote(t)),
            Tok::IntPos
            | Tok::IntNeg
            | Tok::FloatPos
            | Tok::FloatNeg
            | Tok::Binary
            | Tok::Hex
            | Tok::Timestamp => Lit::Other(t),
            Tok::Bool if bool => Lit::Other(t),
            _ => return self.err("expected a value"),
        };
        self.bump();
        Ok(lit)
    }

    fn set(&mut self) -> R<Lit<'a>> {
        self.expect(Tok::LParen, "'(' after IN")?;
        let mut items = Vec::new();
        if self.eat(Tok::RParen).is_some() {
            return Ok(Lit::Set(items));
        }
        loop {
            items.push(self.literal(true)?);
            if self.eat(Tok::Comma).is_none() {
                break;
            }
        }
        self.expect(Tok::RParen, "')'")?;
        Ok(Lit::Set(items))
    }

    fn object_path(&mut self) -> R<(&'a str, Vec<Step<'a>>)> {
        let object_type = match self.cur {
            Some(
                t @ Token {
                    kind: Tok::Ident | Tok::IdentHyphen,
                    ..
                },
            ) => t.text,
            _ => return self.err("expected an object type"),
        };
        self.bump();
        self.expect(Tok::Colon, "':' after the object type")?;
        let mut path = vec![self.key_step("a property name")?];
        loop {
            if self.eat(Tok::Dot).is_some() {
                path.push(self.key_step("a property name after '.'")?);
            } else if self.eat(Tok::LBrack).is_some() {
                let step = if self.eat(Tok::Asterisk).is_some() {
                    Step::Index(None)
                } else if let Some(t) = self.eat(Tok::IntPos) {
                    Step::Index(Some(
                        t.parse()
                            .map_err(|_| PatternError("list index out of range".into()))?,
                    ))
                } else if self.eat(Tok::IntNeg).is_some() {
                    // The grammar takes it; the reference validator fails on it.
                    return Err(PatternError("a negative list index".into()));
                } else {
                    return self.err("expected a list index or '*'");
                };
                self.expect(Tok::RBrack, "']'")?;
                path.push(step);
            } else {
                return Ok((object_type, path));
            }
        }
    }

    fn key_step(&mut self, what: &str) -> R<Step<'a>> {
        if let Some(t) = self.eat(Tok::Ident) {
            return Ok(Step::Key(Cow::Borrowed(t)));
        }
        if let Some(t) = self.eat(Tok::Str) {
            return Ok(Step::Key(unquote(t)));
        }
        self.err(&format!("expected {what}"))
    }
}

/// A string literal's text unquoted and unescaped (borrowed when it has no escapes).
fn unquote(t: &str) -> Cow<'_, str> {
    let inner = &t[1..t.len() - 1];
    if inner.contains('\\') {
        Cow::Owned(inner.replace("\\'", "'").replace("\\\\", "\\"))
    } else {
        Cow::Borrowed(inner)
    }
}

/// The validator's hash check: a comparison on a path through `hashes` whose last step
/// names a known hash must compare with a value of that hash's shape (its regular
/// expressions, applied as Python's `re.match` applies them).
fn check_hash(t: &Test) -> R<()> {
    if t.op == "EXISTS"
        || !t
            .path
            .iter()
            .any(|s| matches!(s, Step::Key(k) if k == "hashes"))
    {
        return Ok(());
    }
    let name = match t.path.last() {
        Some(Step::Key(k)) => k.to_uppercase().replace(['-', '\''], ""),
        Some(Step::Index(None)) => return Ok(()),
        // The validator fails on a numbered index here.
        _ => return Err(PatternError("a list index right after hashes".into())),
    };
    // The value's text without whitespace or comments, as the validator's check sees it.
    let v: String = Lexer::new(t.value_src)
        .flat_map(|t| t.text.chars())
        .filter(|&c| c != '\'')
        .collect();
    // `$` also matches before a final newline.
    let body = v.strip_suffix('\n').unwrap_or(&v);
    let hex_of = |n: usize| body.len() == n && body.bytes().all(|c| c.is_ascii_hexdigit());
    let ok = match name.as_str() {
        "MD5" => hex_of(32),
        "RIPEMD160" | "SHA1" => hex_of(40),
        "SHA224" | "SHA3224" => hex_of(56),
        "SHA256" | "SHA3256" => hex_of(64),
        "SHA384" | "SHA3384" => hex_of(96),
        "SHA512" | "SHA3512" | "WHIRLPOOL" => hex_of(128),
        // Its expression is an alternation anchored only at its ends: in effect, 32 hex
        // digits at the start, or four spaces and 64 hex digits.
        "MD6" => {
            v.len() >= 32 && v.as_bytes()[..32].iter().all(u8::is_ascii_hexdigit)
                || v.len() >= 68
                    && v.starts_with("    ")
                    && v.as_bytes()[4..68].iter().all(u8::is_ascii_hexdigit)
        }
        "SSDEEP" => {
            (1..=128).contains(&body.chars().count())
                && body
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"/+:.".contains(&c))
        }
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(PatternError(format!(
            "{:?} is not a valid {} hash",
            crate::json::prefix(&v, 80),
            crate::json::prefix(&name, 20)
        )))
    }
}

/// The validator's other checks, over the whole tree.
fn check(o: &Observation) -> R<()> {
    fn comparison(c: &Comparison) -> R<()> {
        match c {
            Comparison::Test(t) => check_hash(t),
            Comparison::And(v) | Comparison::Or(v) => v.iter().try_for_each(comparison),
        }
    }
    match o {
        Observation::Single(c, quals) => {
            // A qualifier may not repeat directly on a bracketed observation.
            for (i, q) in quals.iter().enumerate() {
                if quals[..i].contains(q) {
                    return Err(PatternError(format!("the {q:?} qualifier twice")));
                }
            }
            comparison(c)
        }
        Observation::Group(o, _) => check(o),
        Observation::And(v) | Observation::Or(v) | Observation::FollowedBy(v) => {
            v.iter().try_for_each(check)
        }
    }
}

/// Parses a whole STIX pattern.
pub fn parse(pattern: &str) -> Result<Observation<'_>, PatternError> {
    if pattern.len() > MAX_PATTERN_BYTES {
        return Err(PatternError(format!(
            "pattern of {} bytes is over the {MAX_PATTERN_BYTES}-byte limit",
            pattern.len()
        )));
    }
    // The validator's first check: '[' after any '(' and whitespace.
    if pattern.chars().find(|&c| c != '(' && !is_python_space(c)) != Some('[') {
        return Err(PatternError("the pattern does not start with '['".into()));
    }
    let mut p = Parser::new(pattern);
    let obs = p.observations()?;
    if p.cur.is_some() {
        return p.err("expected the end of the pattern");
    }
    check(&obs)?;
    Ok(obs)
}

/// The event `type` of a simple equality on `path`, if it is one we map.
fn ioc_type(t: &Test) -> Option<&'static str> {
    let keys: Vec<&str> = t
        .path
        .iter()
        .map(|s| match s {
            Step::Key(k) => Some(k.as_ref()),
            Step::Index(_) => None,
        })
        .collect::<Option<_>>()?;
    Some(match (t.object_type, keys.as_slice()) {
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

/// A hash of the type's length and alphabet: only such values are printed as hash IOCs.
fn shaped(ty: &str, v: &str) -> bool {
    let hex_of = |n: usize| v.len() == n && v.bytes().all(|c| c.is_ascii_hexdigit());
    match ty {
        "md5" => hex_of(32),
        "sha1" => hex_of(40),
        "sha256" => hex_of(64),
        "sha512" => hex_of(128),
        _ => true,
    }
}

fn comparison_values<'b>(c: &'b Comparison, out: &mut Vec<(&'static str, &'b str)>) -> bool {
    match c {
        Comparison::Test(t) if !t.negated => {
            let Some(ty) = ioc_type(t) else { return false };
            let mut take = |v: &'b str| {
                let ok = shaped(ty, v);
                if ok {
                    out.push((ty, v));
                }
                ok
            };
            match (t.op, &t.value) {
                ("=", Some(Lit::Str(v))) => take(v),
                ("IN", Some(Lit::Set(items))) if !items.is_empty() => {
                    items.iter().all(|i| match i {
                        Lit::Str(v) => take(v),
                        _ => false,
                    })
                }
                _ => false,
            }
        }
        Comparison::Or(parts) => parts.iter().all(|p| comparison_values(p, out)),
        _ => false,
    }
}

/// The (type, value) pairs of a pattern made only of `OR`ed simple equalities on the paths
/// we map (hashes of their hash's shape), each once; else `None`.
pub fn equalities<'b>(obs: &'b Observation) -> Option<Vec<(&'static str, &'b str)>> {
    fn walk<'b>(o: &'b Observation, out: &mut Vec<(&'static str, &'b str)>) -> bool {
        match o {
            Observation::Single(c, q) if q.is_empty() => comparison_values(c, out),
            Observation::Group(o, q) if q.is_empty() => walk(o, out),
            Observation::Or(parts) => parts.iter().all(|p| walk(p, out)),
            _ => false,
        }
    }
    let mut out = Vec::new();
    if !walk(obs, &mut out) {
        return None;
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|&pair| seen.insert(pair));
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eq(p: &str) -> Option<Vec<(&'static str, String)>> {
        let obs = parse(p).unwrap_or_else(|e| panic!("{p}: {e}"));
        equalities(&obs).map(|v| v.into_iter().map(|(t, v)| (t, v.to_string())).collect())
    }

    #[test]
    fn the_lexer_takes_the_longest_token_and_the_first_rule_on_a_tie() {
        let kinds = |p: &str| Lexer::new(p).map(|t| t.kind).collect::<Vec<_>>();
        assert_eq!(kinds("AND ANDx and"), [Tok::And, Tok::Ident, Tok::Ident]);
        assert_eq!(kinds("true truex"), [Tok::Bool, Tok::Ident]);
        assert_eq!(
            kinds(".5 1. -0 +3 -x"),
            [
                Tok::FloatPos,
                Tok::IntPos,
                Tok::Dot,
                Tok::IntNeg,
                Tok::IntPos,
                Tok::Minus,
                Tok::Ident
            ]
        );
        assert_eq!(
            kinds("h'ab' h'abc' b'YQ==' b'===='"),
            [
                Tok::Hex,
                Tok::Ident,
                Tok::Str,
                Tok::Binary,
                Tok::Ident,
                Tok::Str
            ]
        );
        assert_eq!(
            kinds("file ipv4-addr a-5"),
            [Tok::Ident, Tok::IdentHyphen, Tok::IdentHyphen]
        );
        assert_eq!(
            kinds("a /* c */ b // x\n c"),
            [Tok::Ident, Tok::Ident, Tok::Ident]
        );
        assert_eq!(kinds("/* open"), [Tok::Divide, Tok::Asterisk, Tok::Ident]);
        assert_eq!(
            kinds("=  == != <> < <= > >="),
            [
                Tok::Eq,
                Tok::Eq,
                Tok::Neq,
                Tok::Neq,
                Tok::Lt,
                Tok::Le,
                Tok::Gt,
                Tok::Ge
            ]
        );
        assert_eq!(
            kinds("t'2016-06-01T00:00:00Z' t'2016-06-01t00:00:00Z'"),
            [Tok::Timestamp, Tok::Ident, Tok::Str]
        );
    }

    #[test]
    fn valid_as_the_reference_validator_reads_them() {
        for p in [
            "[file:size == 1280]",
            "[file:size <> 1280]",
            "[x:y = .5]",
            "[file:name IN ()]",
            "[NOT EXISTS file:name]",
            "[ file : name . 'x' [ 0 ] = 'a' ]",
            "[a:b\u{a0}=\u{2028}'c']",
            "[a:b = 'c'] /* comment */ AND // line\n [d:e = 'f']",
            "[a:b = 'c'] WITHIN 0 SECONDS",
            "[a:b = 'c'] REPEATS 0 TIMES",
            "([a:b = 'c'] WITHIN 5 SECONDS) WITHIN 6 SECONDS",
            "[file:hashes[*] = '8665c8d477534008b3058b72e2dae8ae']",
            "[a:b = 01.5]",
            "[a:b = t'2024-02-31T12:00:60.5Z']",
            "[x-y:z = h''] START t'2016-06-01T00:00:00Z' STOP t'2016-07-01T00:00:00Z'",
        ] {
            parse(p).unwrap_or_else(|e| panic!("{p}: {e}"));
        }
    }

    #[test]
    fn invalid_as_the_reference_validator_reads_them() {
        for p in [
            "",
            "file:size = 1280",
            "/* c */ [a:b = 1]",
            "[a:b = b'====']",
            "[a:b = t'2016-06-01t00:00:00Z']",
            "[a:b = t'2016-06-01 00:00:00Z']",
            "[a:b-c = 1]",
            "[a:OR = 'x']",
            "[a:1b = 'x']",
            "[a:b = 007]",
            "[a:b = 1.]",
            "[file:hashes.'SHA-256' = 'f00']",
            "[file:hashes.MD5 = 'not-a-hash']",
            "[file:hashes.MD5 IN ('cead3f77f6cda6ec00f57d76c9a6879f')]",
            "[a:b = 1] WITHIN 5 SECONDS WITHIN 6 SECONDS",
            "([a:b = 1] REPEATS 2 TIMES REPEATS 3 TIMES)",
            "[a:b[-1] = 1]",
            "[file:hashes[0] = 'x']",
            "[a:b = 'c'] within 2 seconds",
            "[a:b = 'c\\n']",
        ] {
            assert!(parse(p).is_err(), "{p:?}");
        }
    }

    #[test]
    fn every_recursive_shape_is_bounded() {
        let deep_obs = "(".repeat(10_000) + "[a:b = 'c']" + &")".repeat(10_000);
        let deep_cmp =
            "[".to_string() + &"(".repeat(10_000) + "a:b = 'c'" + &")".repeat(10_000) + "]";
        let quals = "[a:b = 'c']".to_string() + &" WITHIN 1 SECONDS".repeat(10_000);
        for p in [&deep_obs, &deep_cmp] {
            assert!(parse(p).unwrap_err().0.contains("nested parentheses"));
        }
        // A long chain of qualifiers is flat: it parses (and is refused for the repeat).
        assert!(parse(&quals).unwrap_err().0.contains("twice"));
        let ok = (0..63).fold("[a:b = 'c']".to_string(), |p, _| format!("({p})"));
        parse(&ok).unwrap();
    }

    #[test]
    fn simple_equalities_become_values_and_hashes_need_their_shape() {
        assert_eq!(
            eq("[ipv4-addr:value = '1.2.3.4']"),
            Some(vec![("ipv4", "1.2.3.4".into())])
        );
        assert_eq!(
            eq(
                "[domain-name:value = 'a.example' OR url:value == 'http://x/'] OR [email-addr:value = 'm@x.example']"
            ),
            Some(vec![
                ("domain", "a.example".into()),
                ("url", "http://x/".into()),
                ("email", "m@x.example".into())
            ])
        );
        let md5 = "cead3f77f6cda6ec00f57d76c9a6879f";
        assert_eq!(
            eq(&format!("[file:hashes.MD5 = '{md5}']")),
            Some(vec![("md5", md5.into())])
        );
        // A hash name the validator does not check, of the wrong shape: kept as a pattern.
        assert_eq!(eq("[file:hashes.sha_256 = 'f00']"), None);
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
        for p in [
            "[ipv4-addr:value = '1.2.3.4' AND domain-name:value = 'a.example']",
            "[ipv4-addr:value = '1.2.3.4'] FOLLOWEDBY [domain-name:value = 'a.example']",
            "[ipv4-addr:value = '1.2.3.4'] REPEATS 2 TIMES",
            "[ipv4-addr:value != '1.2.3.4']",
            "[ipv4-addr:value NOT = '1.2.3.4']",
            "[domain-name:value IN ()]",
            "[process:name = 'x']",
        ] {
            assert_eq!(eq(p), None, "{p}");
        }
    }
}

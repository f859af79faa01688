//! `stix_verdicts < patterns.jsonl`: for each JSON string on stdin (one STIX pattern), one
//! JSON line on stdout: `{"ok": true, "values": [[type, value], ...] | null}` or
//! `{"ok": false, "error": "..."}`. `tools/stix_conformance.py` compares these verdicts with
//! the OASIS reference validator's.

use std::io::{BufRead, Write};

use socdefenders_iocs::source::taxii::pattern;

fn main() {
    let stdin = std::io::stdin();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for line in stdin.lock().lines() {
        let line = line.expect("stdin");
        let p: String = serde_json::from_str(&line).expect("a JSON string per line");
        let v = match pattern::parse(&p) {
            Ok(obs) => serde_json::json!({"ok": true, "values": pattern::equalities(&obs)}),
            Err(e) => serde_json::json!({"ok": false, "error": e.0}),
        };
        writeln!(out, "{v}").expect("stdout");
    }
}

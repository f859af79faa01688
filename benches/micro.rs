//! Micro-benchmarks of the pure parts, so regressions show: page decoding (streaming),
//! event encoding, and STIX pattern parsing. `cargo bench --bench micro` (or `make bench`);
//! `cargo bench --bench micro -- NAME` runs the cases whose name contains NAME.
//! No harness crate: each case runs until it has taken about a second, in batches, and the
//! median batch is reported.

use std::hint::black_box;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use socdefenders_iocs::source::rest::{page, record, scan};
use socdefenders_iocs::source::taxii::pattern as stix;

fn record(i: usize) -> Value {
    json!({
        "id": format!("00000000-0000-4000-8000-{i:012}"), "type": "domain", "value": format!("login-portal-{i}.example"),
        "confidence": "high", "first_seen": "2026-11-01T08:00:00Z", "last_seen": "2026-11-26T23:59:59Z",
        "source": {"article_id": "0b7c2f4e-9a51-4d8e-b1a3-6c2d8e9f0a11", "article_title": "Threat actor expands phishing infrastructure",
                   "article_url": "https://socdefenders.ai/item/0b7c2f4e-9a51-4d8e-b1a3-6c2d8e9f0a11", "reference_url": null,
                   "feed_name": "URLhaus", "category": "threat-intel", "origin": "feed"},
        "context": "Observed as command-and-control infrastructure in a campaign delivering loader malware.",
        "tags": ["c2", "loader", "phishing"], "mitre_techniques": ["T1071", "T1566"],
    })
}

/// Runs `f` in batches for about a second; returns the median time per call. Skipped unless
/// its name contains the first argument, if any (`cargo bench --bench micro -- scan`).
fn bench(name: &str, bytes: usize, mut f: impl FnMut()) {
    if let Some(filter) = std::env::args().nth(1).filter(|a| a != "--bench")
        && !name.contains(&filter)
    {
        return;
    }
    let start = Instant::now();
    let mut per_call = Vec::new();
    let mut batch = 1u32;
    while start.elapsed() < Duration::from_secs(1) || per_call.len() < 5 {
        let t = Instant::now();
        for _ in 0..batch {
            f();
        }
        let took = t.elapsed();
        per_call.push(took / batch);
        if took < Duration::from_millis(10) {
            batch *= 2;
        }
    }
    per_call.sort();
    let med = per_call[per_call.len() / 2];
    let rate = if bytes > 0 {
        format!("  {:>8.0} MB/s", bytes as f64 / med.as_secs_f64() / 1e6)
    } else {
        String::new()
    };
    println!("{name:<48} {:>12.3} µs{rate}", med.as_secs_f64() * 1e6);
}

fn main() {
    let records: Vec<Value> = (0..10_000).map(record).collect();
    let body = serde_json::to_vec(
        &json!({"data": records, "meta": {"total": 10_000}, "links": {"next": null}}),
    )
    .unwrap();
    bench(
        "page::stream, each element skipped (structure only), 10,000 records",
        body.len(),
        || {
            let mut n = 0;
            page::stream(black_box(&body[..]), u64::MAX, None, |inp| {
                n += 1;
                Ok(inp.value(None, 0, &mut Default::default())?)
            })
            .unwrap();
            assert!(n >= 10_000);
        },
    );
    let mut out = Vec::with_capacity(8 << 20);
    let mut members = scan::Members::default();
    let texts: Vec<String> = records.iter().map(|r| r.to_string()).collect();
    bench(
        "scan::record alone, 10,000 records",
        texts.iter().map(String::len).sum(),
        || {
            for t in &texts {
                assert!(matches!(
                    scan::record(black_box(t), 8192, &mut members),
                    scan::Scan::Record(_)
                ));
            }
        },
    );
    bench(
        "page::stream + element + fast path, 10,000 records",
        body.len(),
        || {
            out.clear();
            page::stream(black_box(&body[..]), u64::MAX, None, |inp| {
                record::element(inp, 8192, &mut members, |found| {
                    let raw = found.raw().expect("plain records");
                    raw.encode_into(&mut out);
                    out.push(b'\n');
                    black_box(raw.identity());
                    Ok(())
                })
            })
            .unwrap();
        },
    );
    // The same page with a line break after each record's first member: every record takes
    // the general path.
    let broken = String::from_utf8(body.clone())
        .unwrap()
        .replace("\"type\":", "\n\"type\":")
        .into_bytes();
    bench(
        "page::stream + element, general path, 10,000 records",
        broken.len(),
        || {
            out.clear();
            page::stream(black_box(&broken[..]), u64::MAX, None, |inp| {
                record::element(inp, 8192, &mut members, |found| {
                    let record::Found::Encoded(e) = found else {
                        panic!("general path")
                    };
                    out.extend_from_slice(&e.line);
                    out.push(b'\n');
                    Ok(())
                })
            })
            .unwrap();
        },
    );
    let simple: Vec<String> = (0..1000)
        .map(|i| format!("[ipv4-addr:value = '198.51.{}.{}']", i / 250, i % 250))
        .collect();
    bench("stix::parse + equalities, 1,000 simple patterns", 0, || {
        for p in &simple {
            black_box(stix::equalities(&stix::parse(black_box(p)).unwrap()));
        }
    });
    let complex = "([file:hashes.'SHA-256' = 'aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f' OR file:hashes.MD5 = 'cead3f77f6cda6ec00f57d76c9a6879f'] AND [network-traffic:dst_ref.value ISSUBSET '198.51.100.0/24']) FOLLOWEDBY [process:command_line MATCHES '^.+\\\\.exe$'] WITHIN 300 SECONDS";
    bench("stix::parse, one compound pattern", complex.len(), || {
        black_box(stix::parse(black_box(complex)).unwrap());
    });
}

//! TAXII events obey the event bounds, output per object is bounded, and pages are read in
//! flat memory (issue: "TAXII events obey the event bounds").

use super::*;

/// The documented bound of one event line (README "Events").
const MAX_LINE: usize = 90_000;
/// The documented bound of one event of a several-value object, besides its value.
const SHARED_EVENT: usize = 4096;

/// `[ipv4-addr:value = '10.a.b.c'] OR ...` with `n` distinct values, and the pattern's size.
fn ored_ips(n: usize) -> String {
    let parts: Vec<String> = (0..n)
        .map(|i| {
            format!(
                "[ipv4-addr:value = '10.{}.{}.{}']",
                i >> 16,
                (i >> 8) & 255,
                i & 255
            )
        })
        .collect();
    parts.join(" OR ")
}

/// An indicator whose every shared part is as large as the object bounds let it be.
fn loud_indicator(id: usize, pattern: &str) -> Value {
    let mut o = tx::indicator(id, pattern, "2026-01-01T00:00:00.000Z");
    o["name"] = json!("n".repeat(100_000));
    o["description"] = json!("d\n\u{0}".repeat(100_000));
    o["labels"] = json!(
        (0..500)
            .map(|i| format!("label-{i}-{}", "l".repeat(200)))
            .collect::<Vec<_>>()
    );
    o["indicator_types"] = json!(vec!["malicious-activity"; 300]);
    o["external_references"] = json!(
        (0..300)
            .map(|i| json!({"source_name": "mitre-attack", "external_id": format!("T{i:04}")}))
            .collect::<Vec<_>>()
    );
    o
}

fn served_page_bytes(t: &Taxii) -> usize {
    let objects: Vec<&Value> = t.objects.iter().map(|o| &o.body).collect();
    serde_json::to_vec(&json!({"type": "bundle", "id": t.bundle_id, "objects": objects}))
        .unwrap()
        .len()
}

#[test]
fn an_indicator_of_7000_ored_values_is_one_bounded_event() {
    let pattern = ored_ips(7000);
    assert!(
        pattern.len() > 240_000 && pattern.len() < 256 * 1024,
        "{}",
        pattern.len()
    );
    let mut t = Taxii::new();
    t.add(
        "soc-defenders-all",
        vec![
            tx::indicator(1, &pattern, "2026-01-01T00:00:00.000Z"),
            tx::indicator(2, &pattern, "2026-01-01T00:00:00.000Z"),
        ],
    );
    let page = served_page_bytes(&t);
    let (srv, _t) = tx::start(t);
    let out = taxii_env(&srv, "All IOCs").run(&[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let ev = out.events();
    assert_eq!(ev.len(), 2, "one event per object");
    for e in &ev {
        assert_eq!(e["type"], "stix-pattern");
        assert_eq!(e["socdefenders_truncated"], true);
        assert!(
            e["value"].as_str().unwrap().ends_with("bytes]"),
            "{}",
            e["value"]
        );
    }
    assert!(out.stdout.lines().all(|l| l.len() <= MAX_LINE));
    // Output is a fraction of the input here: at most the page's size (a multiple of 1).
    assert!(out.stdout.len() <= page, "{} > {page}", out.stdout.len());
    assert!(
        out.has_level(
            "WARN",
            "has 7000 values, more than the 1000 events one object may give"
        ),
        "{}",
        out.stderr
    );
}

#[test]
fn a_several_value_indicator_shares_a_bounded_part_in_each_event() {
    let values: Vec<String> = (0..1000).map(|i| format!("'{}.example'", i)).collect();
    let in_list = format!("[domain-name:value IN ({})]", values.join(","));
    let mut t = Taxii::new();
    t.add(
        "soc-defenders-all",
        vec![
            loud_indicator(1, &in_list),
            loud_indicator(2, &ored_ips(1001)),
        ],
    );
    let (srv, _t) = tx::start(t);
    let out = taxii_env(&srv, "All IOCs").run(&[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let ev = out.events();
    // 1000 values is the most one object gives; 1001 becomes one stix-pattern event.
    assert_eq!(ev.len(), 1001);
    let domains: Vec<&Value> = ev.iter().filter(|e| e["type"] == "domain").collect();
    assert_eq!(domains.len(), 1000);
    let mut ids = std::collections::HashSet::new();
    for (e, line) in ev.iter().zip(out.stdout.lines()) {
        if e["type"] == "domain" {
            let value = e["value"].as_str().unwrap();
            assert!(
                line.len() <= SHARED_EVENT + value.len(),
                "{} bytes: {line:.300}",
                line.len()
            );
            assert_eq!(e["pattern_values"], 1000);
            assert!(e["pattern"].as_str().unwrap().len() <= 256 + 40);
            assert_eq!(e["socdefenders_truncated"], true);
            assert!(ids.insert(e["id"].as_str().unwrap().to_string()));
            // key fields first
            assert!(
                line.starts_with("{\"type\":\"domain\",\"value\":"),
                "{line:.100}"
            );
        } else {
            assert_eq!(e["type"], "stix-pattern");
            assert!(line.len() <= MAX_LINE);
        }
    }
    assert!(out.has_level("WARN", "has 1001 values"), "{}", out.stderr);
    // The whole object's output: at most 1000 × (SHARED_EVENT + value), whatever its size.
    let total: usize = out.stdout.lines().map(|l| l.len() + 1).sum();
    assert!(total <= 1000 * (SHARED_EVENT + 16) + MAX_LINE, "{total}");
}

#[test]
fn a_pattern_over_the_parse_limit_is_one_event() {
    let pattern = ored_ips(9000); // ~320 KB, over 256 KiB
    assert!(pattern.len() > 256 * 1024);
    let mut t = Taxii::new();
    t.add(
        "soc-defenders-all",
        vec![tx::indicator(1, &pattern, "2026-01-01T00:00:00.000Z")],
    );
    let (srv, _t) = tx::start(t);
    let out = taxii_env(&srv, "All IOCs").run(&[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let ev = out.events();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["type"], "stix-pattern");
    assert!(out.stdout.len() <= MAX_LINE);
    assert!(
        out.has_level("WARN", "over the 256 KiB this input parses"),
        "{}",
        out.stderr
    );
}

/// One measured run over a page of these objects.
fn page_rss(bin: &std::path::Path, objects: Vec<Value>) -> util::Out {
    let mut t = Taxii::new();
    t.add("soc-defenders-all", objects);
    let (srv, _t) = tx::start(t);
    util::run_measured(bin, &[], &taxii_env(&srv, "All IOCs"))
}

/// TAXII pages stream: a 10,000-object page (from a server that ignores `limit`) takes at most
/// 1.5× the memory of a 100-object page and under 8 MiB; the 7,000-value objects stay there
/// too. Run by `make hostile` with the release binary.
#[test]
#[ignore = "measures the release binary: make hostile runs it"]
fn taxii_pages_are_read_in_flat_memory() {
    let bin = std::env::var_os("SOCDEFENDERS_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_socdefenders-iocs").into());
    let ips = |n: usize| -> Vec<Value> {
        (0..n)
            .map(|i| {
                tx::indicator(
                    i,
                    &format!(
                        "[ipv4-addr:value = '10.{}.{}.{}']",
                        i >> 16,
                        (i >> 8) & 255,
                        i & 255
                    ),
                    "2026-01-01T00:00:00.000Z",
                )
            })
            .collect()
    };
    let one_page = |n: usize| {
        // A server that ignores `limit` and sends all n objects in one page.
        let mut t = Taxii::new();
        t.ignore_limit = true;
        for chunk in ips(n).chunks(10) {
            t.add("soc-defenders-all", chunk.to_vec());
        }
        let (srv, _t) = tx::start(t);
        util::run_measured(&bin, &[], &taxii_env(&srv, "All IOCs"))
    };
    // The least of three runs each: a run's peak varies by a page or two (ASLR).
    let least = |n: usize| {
        (0..3)
            .map(|_| one_page(n))
            .min_by_key(|o| o.max_rss_kib)
            .unwrap()
    };
    let small = least(100);
    let large = least(10_000);
    assert_eq!(small.events().len(), 100);
    assert_eq!(large.events().len(), 10_000, "{}", large.stderr);
    eprintln!(
        "100 objects: {} KiB; 10,000 objects: {} KiB",
        small.max_rss_kib, large.max_rss_kib
    );
    assert!(large.max_rss_kib * 2 <= small.max_rss_kib * 3);
    assert!(large.max_rss_kib < 8 * 1024);
    let hostile = page_rss(
        &bin,
        vec![
            loud_indicator(1, &ored_ips(7000)),
            loud_indicator(2, &ored_ips(7000)),
            loud_indicator(3, &ored_ips(1000)),
        ],
    );
    eprintln!("7,000-value objects: {} KiB", hostile.max_rss_kib);
    assert_eq!(hostile.code, 0, "{}", hostile.stderr);
    assert_eq!(hostile.events().len(), 1002);
    assert!(hostile.max_rss_kib < 8 * 1024);
}

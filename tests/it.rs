//! Integration tests: the real binary against loopback servers, in temp dirs, with a scrubbed
//! environment. Assertions are on parsed stdout (events), parsed stderr (key=value lines),
//! exit codes, the state file and what the servers saw.

mod util;

#[path = "it/errors.rs"]
mod errors;
#[path = "it/hostile.rs"]
mod hostile;
#[path = "it/platforms.rs"]
mod platforms;
#[path = "it/taxii_bounds.rs"]
mod taxii_bounds;

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};
use util::api::{self, Fault, Feed, Server};
use util::{Env, KEY};

fn api_env(server: &Server) -> Env {
    let mut e = Env::new();
    e.set("SOCDEFENDERS_BASE_URL", &server.url);
    e.set("SOCDEFENDERS_RETRIES", "0");
    e
}

fn feed_with(n: usize) -> Feed {
    let mut f = Feed::new();
    f.add(n, 1);
    f
}

#[test]
fn one_run_prints_a_page_and_keeps_every_field() {
    let (srv, _feed) = api::start(feed_with(5), None);
    let env = api_env(&srv);
    let out = env.run(&["-index", "main"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let ev = out.events();
    assert_eq!(ev.len(), 5);
    assert_eq!(
        ev[0]["future_field"],
        json!({"nested": [1, 2, {"x": true}]})
    );
    assert_eq!(ev[0]["source"]["reference_url"], Value::Null);
    assert!(out.stdout.lines().all(|l| l.starts_with("{\"type\":")));
    let req = srv.last();
    assert_eq!(req.headers["authorization"], format!("Bearer {KEY}"));
    assert_eq!(req.query["limit"], "100");
    assert_eq!(req.query["offset"], "0");
    assert!(env.state_file("default").exists());
    // Nothing new: nothing printed, exit 0.
    let again = env.run(&[]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(again.events().is_empty());
}

#[test]
fn filters_and_x_api_key_are_sent() {
    let (srv, _feed) = api::start(feed_with(8), None);
    let env = api_env(&srv);
    let out = env.run(&[
        "--type",
        "ipv4,mitre-attack",
        "--confidence",
        "high",
        "--category",
        "threat-intel",
        "--industry",
        "energy",
        "--auth-header",
        "x-api-key",
        "--limit",
        "3",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let req = srv.last();
    assert_eq!(req.query["type"], "ipv4,mitre_attack");
    assert_eq!(req.query["confidence"], "high");
    assert_eq!(req.query["category"], "threat-intel");
    assert_eq!(req.query["industry"], "energy");
    assert_eq!(req.headers["x-api-key"], KEY);
    assert!(!req.headers.contains_key("authorization"));
    assert!(out.events().iter().all(|e| e["type"] == "ipv4"));
}

/// Walks a feed that grows and changes between and during runs; every version the server
/// holds at the end is printed exactly once.
fn walk(desc: bool, inclusive: bool, per_second: usize) {
    let mut feed = Feed::new();
    feed.desc = desc;
    feed.inclusive = inclusive;
    feed.cap = 7;
    feed.add(40, per_second);
    let mut calls = 0;
    feed.during = Some(Box::new(move |f: &mut Feed| {
        calls += 1;
        if calls < 40 {
            if calls % 3 == 0 {
                f.add(2, per_second);
            }
            if calls % 4 == 0 {
                let n = f.recs.len();
                f.touch((calls * 7) % n);
            }
        }
    }));
    let (srv, feed) = api::start(feed, None);
    let env = api_env(&srv);
    let mut printed: HashMap<(String, String), usize> = HashMap::new();
    let mut quiet_runs = 0;
    for run in 0..200 {
        let out = env.run(&["--limit", "7", "--max-pages", "2"]);
        assert_eq!(out.code, 0, "run {run}: {}", out.stderr);
        let ev = out.events();
        for e in &ev {
            let k = (
                e["id"].as_str().unwrap().to_string(),
                e["last_seen"].as_str().unwrap().to_string(),
            );
            *printed.entry(k).or_default() += 1;
        }
        quiet_runs = if ev.is_empty() { quiet_runs + 1 } else { 0 };
        if quiet_runs >= 3 {
            break;
        }
    }
    let f = feed.lock().unwrap();
    let repeated: Vec<_> = printed.iter().filter(|(_, n)| **n > 1).collect();
    assert!(repeated.is_empty(), "repeated: {repeated:?}");
    let missing: Vec<_> = f
        .versions()
        .into_iter()
        .filter(|v| !printed.contains_key(v))
        .collect();
    assert!(
        missing.is_empty(),
        "missing {} of {}: {missing:?}",
        missing.len(),
        f.recs.len()
    );
    let never_printed: Vec<_> = f
        .served
        .iter()
        .filter(|v| !printed.contains_key(*v))
        .collect();
    assert!(
        never_printed.is_empty(),
        "served but not printed: {never_printed:?}"
    );
    assert!(f.recs.len() > 50);
}

#[test]
fn walk_descending_inclusive() {
    walk(true, true, 1);
}
#[test]
fn walk_descending_exclusive_with_shared_seconds() {
    walk(true, false, 5);
}
#[test]
fn walk_ascending_inclusive() {
    walk(false, true, 1);
}
#[test]
fn walk_ascending_exclusive_with_shared_seconds() {
    walk(false, false, 9);
}

#[test]
fn crash_between_print_and_save_repeats_the_page_and_loses_nothing() {
    let mut feed = feed_with(12);
    feed.cap = 5;
    let (srv, _feed) = api::start(feed, None);
    let mut env = api_env(&srv);
    assert_eq!(env.run(&["--limit", "5"]).events().len(), 5);
    let before = std::fs::read(env.state_file("default")).unwrap();
    env.set("SOCDEFENDERS_TEST_CRASH_AFTER_PRINT", "1");
    let crashed = env.run(&["--limit", "5"]);
    assert_ne!(crashed.code, 0);
    let crashed_ids: Vec<_> = crashed.events().iter().map(|e| e["id"].clone()).collect();
    assert_eq!(crashed_ids.len(), 5);
    assert_eq!(std::fs::read(env.state_file("default")).unwrap(), before);
    env.unset("SOCDEFENDERS_TEST_CRASH_AFTER_PRINT");
    let again = env.run(&["--limit", "5"]);
    let again_ids: Vec<_> = again.events().iter().map(|e| e["id"].clone()).collect();
    assert_eq!(
        again_ids, crashed_ids,
        "the page is printed again after a crash"
    );
    let rest = env.run(&["--limit", "5"]);
    assert_eq!(rest.events().len(), 2);
}

fn assert_failed(out: &util::Out, code: i32, kind: &str) -> HashMap<String, String> {
    assert_eq!(out.code, code, "{}", out.stderr);
    let errs = out.errors();
    assert_eq!(errs.len(), 1, "exactly one ERROR line: {}", out.stderr);
    assert_eq!(errs[0]["error"], kind);
    assert_eq!(errs[0]["exit"], code.to_string());
    assert_eq!(errs[0]["input"], "default");
    errs[0].clone()
}

#[test]
fn auth_failures_name_the_cause_and_do_not_retry() {
    let (srv, _feed) = api::start(feed_with(3), None);
    let mut env = api_env(&srv);
    env.set("SOCDEFENDERS_RETRIES", "3");
    env.set("SOCDEFENDERS_API_KEY", "sk_test_WRONGKEY00");
    let out = env.run(&[]);
    let e = assert_failed(&out, 3, "auth");
    assert!(e["msg"].contains("invalid_api_key"), "{}", e["msg"]);
    assert!(!out.stderr.contains("sk_test_WRONGKEY00"));
    assert_eq!(srv.count(), 1);
    assert!(out.stdout.is_empty());

    let (srv, feed) = api::start(feed_with(3), None);
    let env = api_env(&srv);
    for (code, body) in [
        (
            401,
            json!({"error": {"code": "expired_api_key", "message": "expired"}}),
        ),
        (
            403,
            json!({"error": {"code": "forbidden", "message": "Pro only"}}),
        ),
    ] {
        feed.lock()
            .unwrap()
            .faults
            .push_back(Fault::Status(code, body.clone(), vec![]));
        let out = env.run(&[]);
        let e = assert_failed(&out, 3, "auth");
        assert!(e["msg"].contains(body["error"]["code"].as_str().unwrap()));
    }
    assert!(!env.state_file("default").exists() || env.state("default")["cursor"].is_null());
}

#[test]
fn rate_limit_sets_not_before_and_later_runs_send_nothing() {
    let (srv, feed) = api::start(feed_with(3), None);
    let env = api_env(&srv);
    feed.lock().unwrap().faults.push_back(Fault::Status(
        429,
        json!({"error": {"code": "rate_limit_exceeded", "message": "slow down"}}),
        vec![("Retry-After", "3600".into())],
    ));
    let out = env.run(&[]);
    let e = assert_failed(&out, 4, "rate_limit");
    assert!(e["msg"].contains("429"));
    let n = srv.count();
    let quiet = env.run(&[]);
    assert_eq!(quiet.code, 0);
    assert!(quiet.has_level("INFO", "rate limited"), "{}", quiet.stderr);
    assert_eq!(srv.count(), n, "no request while rate limited");
    assert!(quiet.stdout.is_empty());

    // X-RateLimit-Reset in the past: the next run goes ahead.
    let (srv, feed) = api::start(feed_with(3), None);
    let env = api_env(&srv);
    feed.lock().unwrap().faults.push_back(Fault::Status(
        429,
        json!({}),
        vec![("X-RateLimit-Reset", "1".into())],
    ));
    assert_eq!(env.run(&[]).code, 4);
    assert_eq!(env.run(&[]).events().len(), 3);
}

#[test]
fn daily_budget_is_never_exceeded() {
    let mut feed = feed_with(30);
    feed.cap = 2;
    let (srv, _feed) = api::start(feed, None);
    let mut env = api_env(&srv);
    // The program's clock, pinned: the runs cannot straddle a UTC midnight.
    env.set("SOCDEFENDERS_TEST_NOW", "2026-12-02T23:59:59Z");
    let args = [
        "--limit",
        "2",
        "--daily-budget",
        "3",
        "--since",
        "2026-01-01T00:00:00Z",
    ];
    let out = env.run(&[&args[..], &["--max-pages", "5"]].concat());
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.events().len(), 6);
    assert_eq!(srv.count(), 3);
    let out = env.run(&args);
    assert_eq!(out.code, 0);
    assert!(out.has_level("INFO", "budget"), "{}", out.stderr);
    assert_eq!(srv.count(), 3);
    // The next UTC day brings a new budget.
    env.set("SOCDEFENDERS_TEST_NOW", "2026-12-03T00:00:01Z");
    assert_eq!(env.run(&args).events().len(), 2);
    assert_eq!(srv.count(), 4);
}

#[test]
fn server_errors_are_retried_then_fail_without_moving_the_checkpoint() {
    let (srv, feed) = api::start(feed_with(4), None);
    let mut env = api_env(&srv);
    env.set("SOCDEFENDERS_RETRIES", "2");
    assert_eq!(env.run(&["--limit", "2"]).events().len(), 2);
    let before = std::fs::read(env.state_file("default")).unwrap();
    {
        let mut f = feed.lock().unwrap();
        f.faults.push_back(Fault::Status(503, json!({}), vec![]));
        f.faults.push_back(Fault::Close);
    }
    let ok = env.run(&["--limit", "2"]);
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert_eq!(ok.events().len(), 2);
    assert_eq!(
        ok.log().iter().filter(|l| l["level"] == "WARN").count(),
        2,
        "{}",
        ok.stderr
    );

    let n = srv.count();
    let before2 = std::fs::read(env.state_file("default")).unwrap();
    assert_ne!(before, before2);
    for _ in 0..3 {
        feed.lock()
            .unwrap()
            .faults
            .push_back(Fault::Status(500, json!({}), vec![]));
    }
    let out = env.run(&["--limit", "2"]);
    assert_failed(&out, 5, "upstream");
    assert_eq!(srv.count(), n + 3);
    let st: Value =
        serde_json::from_slice(&std::fs::read(env.state_file("default")).unwrap()).unwrap();
    let st2: Value = serde_json::from_slice(&before2).unwrap();
    assert_eq!(st["cursor"], st2["cursor"]);
    assert_eq!(st["recent"], st2["recent"]);
}

#[test]
fn timeouts_fail_cleanly() {
    let (srv, feed) = api::start(feed_with(2), None);
    let env = api_env(&srv);
    feed.lock()
        .unwrap()
        .faults
        .push_back(Fault::Slow(Duration::from_secs(4)));
    let out = env.run(&["--timeout", "1"]);
    let e = assert_failed(&out, 5, "upstream");
    assert!(e["msg"].contains("timed out"), "{}", e["msg"]);
    assert!(out.stdout.is_empty());
}

#[test]
fn bad_bodies_print_nothing_and_keep_the_checkpoint() {
    let (srv, feed) = api::start(feed_with(3), None);
    let env = api_env(&srv);
    for (fault, needle) in [
        (Fault::Malformed, "JSON"),
        (Fault::Html200, "HTML"),
        (Fault::Truncated, "truncated JSON"),
        (Fault::TruncatedLarge(900_000), "truncated JSON"),
        (Fault::Huge(2_000_000), "max_body_bytes"),
    ] {
        feed.lock().unwrap().faults.push_back(fault);
        let out = env.run(&["--max-body-bytes", "1000000"]);
        let e = assert_failed(&out, 5, "upstream");
        assert!(e["msg"].contains(needle), "{}", e["msg"]);
        assert!(out.stdout.is_empty());
        assert!(!env.state_file("default").exists() || env.state("default")["cursor"].is_null());
    }
    assert_eq!(env.run(&[]).events().len(), 3);
}

#[test]
fn invalid_utf8_is_ingested_with_a_warning() {
    let (srv, feed) = api::start(feed_with(0), None);
    let env = api_env(&srv);
    feed.lock().unwrap().faults.push_back(Fault::BadUtf8);
    let out = env.run(&[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.events()[0]["value"], "bad\u{fffd}\u{fffd}.example");
    assert!(out.has_level("WARN", "UTF-8"));
}

#[test]
fn invalid_records_are_skipped_by_name_and_the_rest_ingested() {
    let (srv, feed) = api::start(feed_with(0), None);
    let env = api_env(&srv);
    feed.lock().unwrap().faults.push_back(Fault::Records(vec![
        json!({"id": "a", "type": "ipv4", "value": "192.0.2.1", "last_seen": "2026-01-01T00:00:00Z"}),
        json!("just a string"),
        json!({"id": "bad-type", "type": 7, "value": "x"}),
        json!({"id": "no-value", "type": "ipv4"}),
        json!({"id": "b", "type": "domain", "value": "ok.example", "last_seen": "2026-01-01T00:00:00Z"}),
    ]));
    let out = env.run(&[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let ids: Vec<_> = out.events().iter().map(|e| e["id"].clone()).collect();
    assert_eq!(ids, vec![json!("a"), json!("b")]);
    assert!(out.has_level("WARN", "bad-type"));
    assert!(out.has_level("WARN", "no-value"));
    assert_eq!(out.log().iter().filter(|l| l["level"] == "WARN").count(), 3);
}

#[test]
fn lone_surrogates_are_ingested_as_replacement_characters() {
    let (srv, feed) = api::start(feed_with(0), None);
    let env = api_env(&srv);
    // Valid JSON but not Unicode. None has an id, so each is known by its type and value; the
    // second has a line break between tokens, as records for the general path do.
    let rec = |v: &str, sep: &str| {
        format!(r#"{{"type":"url",{sep}"value":"http://{v}","last_seen":"2026-01-01T00:00:00Z"}}"#)
    };
    let body = format!(
        r#"{{"data":[{},{},{}],"links":{{"next":null}}}}"#,
        rec(r"a/\ud800", ""),
        rec(r"b/\udc00", "\n"),
        rec(r"c/\ud800", "")
    );
    feed.lock().unwrap().faults.push_back(Fault::Body(body));
    let out = env.run(&[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let values: Vec<_> = out.events().iter().map(|e| e["value"].clone()).collect();
    assert_eq!(
        values,
        vec![
            json!("http://a/\u{fffd}"),
            json!("http://b/\u{fffd}"),
            json!("http://c/\u{fffd}")
        ]
    );
    let warned = out.log().iter().filter(|l| l["level"] == "WARN").count();
    assert_eq!(warned, 3, "{}", out.stderr);
    assert!(out.has_level("WARN", "surrogate"));
}

#[test]
fn hostile_values_keep_one_event_per_line() {
    let (srv, feed) = api::start(feed_with(0), None);
    let env = api_env(&srv);
    let evil = "x\ny\r\0z\u{2028}w\"}\n{\"type\":\"ipv4\",\"value\":\"6.6.6.6\"}";
    let big = "B".repeat(200_000);
    feed.lock().unwrap().faults.push_back(Fault::Records(vec![
        json!({"id": "h1", "type": "url", "value": evil, "context": big, "last_seen": "2026-01-01T00:00:00Z"}),
        json!({"id": "h2", "type": "domain", "value": "fine.example", "last_seen": "2026-01-01T00:00:00Z"}),
    ]));
    let out = env.run(&["--max-field-bytes", "8192"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let ev = out.events();
    assert_eq!(ev.len(), 2);
    assert_eq!(ev[0]["value"], evil);
    let ctx = ev[0]["context"].as_str().unwrap();
    assert!(ctx.len() < 8300 && ctx.ends_with("[truncated 191808 bytes]"));
    assert_eq!(ev[0]["socdefenders_truncated"], true);
    assert!(out.stdout.lines().all(|l| l.len() <= 90_000));
    assert!(!out.stdout.contains('\u{2028}'));
}

#[test]
fn closed_stdout_fails_and_keeps_the_checkpoint() {
    let (srv, feed) = api::start(feed_with(50), None);
    let mut env = api_env(&srv);
    feed.lock()
        .unwrap()
        .faults
        .push_back(Fault::Slow(Duration::from_millis(300)));
    env.close_stdout = true;
    let out = env.run(&[]);
    assert_failed(&out, 6, "output");
    assert!(!env.state_file("default").exists() || env.state("default")["cursor"].is_null());
}

#[test]
fn the_key_never_follows_a_redirect_or_a_foreign_next_link() {
    let other = api::start(feed_with(0), None).0;
    let (srv, feed) = api::start(feed_with(10), None);
    let env = api_env(&srv);
    let foreign = other.url.replace("127.0.0.1", "localhost");
    feed.lock()
        .unwrap()
        .faults
        .push_back(Fault::Redirect(format!("{foreign}/api/v1/iocs")));
    let out = env.run(&[]);
    let e = assert_failed(&out, 5, "upstream");
    assert!(e["msg"].contains("redirect"));
    assert_eq!(other.count(), 0);

    feed.lock().unwrap().next_base = Some(foreign);
    let out = env.run(&["--limit", "3", "--max-pages", "4"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.events().len(), 10);
    assert_eq!(
        other.count(),
        0,
        "links.next on another host is never requested"
    );
    assert!(
        srv.requests
            .lock()
            .unwrap()
            .iter()
            .all(|r| r.headers.contains_key("authorization"))
    );
}

#[test]
fn tls_is_verified_and_ca_file_adds_a_root() {
    let ca = util::tls::Ca::new("Corp Inspection CA");
    let (srv, _feed) = api::start(feed_with(2), Some(ca.server("localhost", &["localhost"])));
    let mut env = api_env(&srv);
    let empty = env.dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    env.set("SSL_CERT_FILE", "/nonexistent/none.pem");
    let out = env.run(&[]);
    let e = assert_failed(&out, 5, "upstream");
    assert!(e["msg"].contains("ca_file"), "{}", e["msg"]);
    let pem = env.dir.path().join("ca.pem");
    std::fs::write(&pem, &ca.pem).unwrap();
    let out = env.run(&["--ca-file", pem.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.events().len(), 2);
    // The system store (SSL_CERT_FILE) is honoured too.
    let mut env2 = api_env(&srv);
    env2.set("SSL_CERT_FILE", pem.to_str().unwrap());
    assert_eq!(env2.run(&[]).events().len(), 2);
    let out = env.run(&["--ca-file", empty.to_str().unwrap()]);
    assert_failed(&out, 2, "config");
}

#[test]
fn a_large_page_over_tls_arrives_whole_through_the_decode_thread() {
    // A body of 256 KiB or more is read and scanned on a thread of its own: here rustls
    // decrypts there.
    let ca = util::tls::Ca::new("Corp Inspection CA");
    let mut feed = feed_with(3000);
    feed.cap = 10_000; // a Pro key's page size
    let (srv, _feed) = api::start(feed, Some(ca.server("localhost", &["localhost"])));
    let env = api_env(&srv);
    let pem = env.dir.path().join("ca.pem");
    std::fs::write(&pem, &ca.pem).unwrap();
    let ca_file = pem.to_str().unwrap();
    let out = env.run(&["--ca-file", ca_file, "--tier", "pro", "--limit", "3000"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let ev = out.events();
    assert_eq!(ev.len(), 3000);
    let ids: std::collections::HashSet<_> = ev.iter().map(|e| e["id"].to_string()).collect();
    assert_eq!(ids.len(), 3000);
    let bytes: usize = out.stdout.lines().map(|l| l.len() + 1).sum();
    assert!(
        bytes > 2 * 256 * 1024,
        "the page must pass the decode thread's threshold: {bytes}"
    );
}

#[test]
fn proxies_from_env_and_option_and_no_proxy() {
    let (proxy, tunnels) = api::connect_proxy();
    let (direct, _df) = api::start(feed_with(2), None);
    let target = direct.url.trim_start_matches("http://").to_string();
    let mut env = api_env(&direct);
    env.set("HTTPS_PROXY", &proxy);
    let out = env.run(&["--dry-run"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.events().len(), 2);
    assert_eq!(*tunnels.lock().unwrap(), vec![target.clone()]);
    env.set("NO_PROXY", "127.0.0.1");
    assert_eq!(env.run(&["--dry-run"]).code, 0);
    assert_eq!(
        tunnels.lock().unwrap().len(),
        1,
        "NO_PROXY bypasses the proxy"
    );
    assert_eq!(direct.count(), 2);
    env.unset("NO_PROXY");
    env.set("HTTPS_PROXY", "http://127.0.0.1:9");
    let out = env.run(&["--dry-run", "--proxy", &proxy]);
    assert_eq!(out.code, 0, "--proxy wins: {}", out.stderr);
    assert_eq!(tunnels.lock().unwrap().len(), 2);
}

#[test]
fn settings_layer_and_report_their_source() {
    let (srv, _feed) = api::start(feed_with(1), None);
    let mut env = api_env(&srv);
    env.unset("SOCDEFENDERS_BASE_URL");
    env.write_conf("default", "[default]\nbase_url = http://127.0.0.1:9\nlimit = 50\ntimeout = 30\n\n[input:ips]\ntype = ipv4\n");
    env.write_conf(
        "local",
        &format!(
            "[default]\nbase_url = {}\n[input:ips]\nlimit = 20\n",
            srv.url
        ),
    );
    env.set("SOCDEFENDERS_TIMEOUT", "40");
    let out = env.run(&["--input", "ips", "--print-config", "--max-pages", "3"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lines: HashMap<String, String> = out
        .stdout
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            l.split_once(" = ")
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect();
    assert!(lines["base_url"].starts_with(&srv.url) && lines["base_url"].contains("local"));
    assert!(lines["limit"].starts_with("20 ") && lines["limit"].contains("[input:ips]"));
    assert!(lines["type"].starts_with("ipv4 ") && lines["type"].contains("default"));
    assert!(
        lines["timeout"].starts_with("40 ") && lines["timeout"].contains("SOCDEFENDERS_TIMEOUT")
    );
    assert!(lines["max_pages"].starts_with("3 ") && lines["max_pages"].contains("command line"));
    assert!(lines["api_key"].starts_with("sk_test_***"));
    let run = env.run(&["--input", "ips"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(srv.last().query["limit"], "20");
    assert!(env.state_file("ips").exists());
}

#[test]
fn unknown_settings_and_bad_values_are_errors_naming_file_and_line() {
    let env = Env::new();
    env.write_conf("local", "[default]\nlimit = 5\n\n[input:x]\nlimt = 9\n");
    let out = env.run(&["--print-config"]);
    let e = assert_failed(&out, 2, "config");
    assert!(
        e["msg"].contains("local/socdefenders.conf line 5") && e["msg"].contains("limt"),
        "{}",
        e["msg"]
    );
    let env = Env::new();
    env.write_conf("default", "[default]\nthis is not a setting\n");
    assert!(assert_failed(&env.run(&[]), 2, "config")["msg"].contains("line 2"));
    let env = Env::new();
    for args in [
        &["--limit", "0"][..],
        &["--since", "yesterday"],
        &["--type", "ipv5"],
        &["--tier", "gold"],
    ] {
        assert_failed(&env.run(args), 2, "config");
    }
    let mut env = Env::new();
    env.unset("SOCDEFENDERS_STATE_DIR");
    let e = assert_failed(&env.run(&[]), 2, "config");
    assert!(e["msg"].contains("SPLUNK_HOME"));
    env.set(
        "SPLUNK_HOME",
        env.dir.path().join("splunk").to_str().unwrap(),
    );
    let out = env.run(&["--print-config"]);
    assert!(
        out.stdout
            .contains("var/lib/splunk/modinputs/TA-socdefenders/default.json"),
        "{}",
        out.stdout
    );
}

#[test]
fn corrupt_or_unknown_state_is_left_untouched() {
    let (srv, _feed) = api::start(feed_with(2), None);
    let env = api_env(&srv);
    std::fs::create_dir_all(env.state_dir()).unwrap();
    for body in [&b"{not json"[..], b"{\"version\":99}", b"{\"input\":\"x\"}"] {
        std::fs::write(env.state_file("default"), body).unwrap();
        let out = env.run(&[]);
        let e = assert_failed(&out, 7, "state");
        assert!(
            e["msg"].contains("state reset --input default"),
            "{}",
            e["msg"]
        );
        assert_eq!(std::fs::read(env.state_file("default")).unwrap(), body);
        assert_eq!(srv.count(), 0);
    }
    let out = env.run(&["state", "reset"]);
    assert_eq!(out.code, 0);
    assert!(!env.state_file("default").exists());
    assert_eq!(env.run(&[]).events().len(), 2);
    let show: Value = serde_json::from_str(&env.run(&["state", "show"]).stdout).unwrap();
    assert_eq!(show["remembered_versions"], 2);
}

#[test]
fn a_second_run_of_the_same_input_is_locked_out() {
    let (srv, _feed) = api::start(feed_with(2), None);
    let env = api_env(&srv);
    std::fs::create_dir_all(env.state_dir()).unwrap();
    let lock = std::fs::File::create(env.state_dir().join("default.lock")).unwrap();
    lock.lock().unwrap();
    let out = env.run(&[]);
    let e = assert_failed(&out, 7, "state");
    assert!(e["msg"].contains("still going"));
    assert_eq!(srv.count(), 0);
    drop(lock);
    assert_eq!(env.run(&[]).code, 0);
}

#[test]
fn key_file_is_read_and_loose_permissions_warned() {
    use std::os::unix::fs::PermissionsExt;
    let (srv, _feed) = api::start(feed_with(1), None);
    let mut env = api_env(&srv);
    env.unset("SOCDEFENDERS_API_KEY");
    let out = env.run(&[]);
    let e = assert_failed(&out, 8, "splunkd");
    assert!(
        e["msg"].contains("no API key")
            && e["msg"].contains("realm TA-socdefenders, username api_key"),
        "{}",
        e["msg"]
    );
    let f = env.dir.path().join("key");
    std::fs::write(&f, format!("{KEY}\n")).unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = env.run(&["--api-key-file", f.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.has_level("WARN", "chmod 600"));
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = env.run(&["--api-key-file", f.to_str().unwrap()]);
    assert!(!out.has_level("WARN", "chmod"));
    assert_eq!(srv.last().headers["authorization"], format!("Bearer {KEY}"));
}

#[test]
fn check_says_what_works() {
    let (srv, _feed) = api::start(feed_with(4), None);
    let env = api_env(&srv);
    let out = env.run(&["check"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("the key is accepted"));
    assert!(out.stdout.contains("4 IOCs"));
    assert!(!env.state_file("default").exists());
    let mut bad = api_env(&srv);
    bad.set("SOCDEFENDERS_API_KEY", "sk_test_nope");
    assert_failed(&bad.run(&["check"]), 3, "auth");
}

#[test]
fn dry_run_leaves_the_checkpoint_alone() {
    let (srv, _feed) = api::start(feed_with(3), None);
    let env = api_env(&srv);
    assert_eq!(env.run(&["--dry-run"]).events().len(), 3);
    assert!(!env.state_file("default").exists());
    assert_eq!(env.run(&[]).events().len(), 3);
}

#[test]
fn stale_checkpoint_and_growing_backlog_warn() {
    let mut feed = feed_with(10);
    feed.cap = 2;
    let mut n = 0;
    feed.during = Some(Box::new(move |f: &mut Feed| {
        n += 1;
        if n > 1 {
            f.add(5, 1);
        }
    }));
    let (srv, _feed) = api::start(feed, None);
    let env = api_env(&srv);
    assert_eq!(env.run(&["--limit", "2"]).code, 0);
    let out = env.run(&["--limit", "2"]);
    assert!(
        out.has_level("WARN", "backlog is growing"),
        "{}",
        out.stderr
    );
    assert!(out.has_level("WARN", "max_pages"));
    let env2 = api_env(&srv);
    let out = env2.run(&["--limit", "2", "--since", "2020-01-01T00:00:00Z"]);
    assert_eq!(out.code, 0);
    let out = env2.run(&["--limit", "2"]);
    assert!(out.has_level("WARN", "lookback"), "{}", out.stderr);
}

#[test]
fn help_explains_every_option() {
    let env = Env::new();
    let out = env.run(&["--help"]);
    assert_eq!(out.code, 0);
    for opt in [
        "--base-url",
        "--input",
        "--state-dir",
        "--type",
        "--confidence",
        "--category",
        "--industry",
        "--limit",
        "--max-pages",
        "--since",
        "--api-key-file",
        "--ca-file",
        "--proxy",
        "--timeout",
        "--print-config",
        "--dry-run",
        "Exit codes",
    ] {
        assert!(out.stdout.contains(opt), "{opt}");
    }
}

// --- Splunk's secret store -------------------------------------------------------------------

const TOKEN: &str = "splunkd-session-TOKEN-1234567890";

/// A loopback HTTPS server playing splunkd's management port: certificate from a private CA,
/// CN SplunkServerDefaultCert and no subject alt name, as Splunk's default certificate.
struct Splunkd {
    server: Server,
    ca: util::tls::Ca,
}

fn splunkd(status: u16) -> Splunkd {
    let ca = util::tls::Ca::new("SplunkCommonCA");
    let server = Server::start(
        Some(ca.server("SplunkServerDefaultCert", &[])),
        std::sync::Arc::new(move |req: &api::Request| {
            let ok_auth = req.headers.get("authorization").map(String::as_str)
                == Some(&format!("Splunk {TOKEN}"));
            let path_ok = req.path
                == "/servicesNS/nobody/TA-socdefenders/storage/passwords/TA-socdefenders:api_key:";
            let status = if !ok_auth {
                401
            } else if !path_ok {
                404
            } else {
                status
            };
            api::json_reply(
                status,
                &json!({"entry": [{"name": "TA-socdefenders:api_key:", "content": {"realm": "TA-socdefenders", "username": "api_key", "clear_password": KEY}}]}),
            )
        }),
    );
    Splunkd { server, ca }
}

fn splunk_env(api: &Server, sd: &Splunkd) -> Env {
    let mut env = api_env(api);
    env.unset("SOCDEFENDERS_API_KEY");
    let home = env.dir.path().join("splunk");
    std::fs::create_dir_all(home.join("etc/auth")).unwrap();
    std::fs::write(home.join("etc/auth/cacert.pem"), &sd.ca.pem).unwrap();
    env.set("SPLUNK_HOME", home.to_str().unwrap());
    env.set(
        "SOCDEFENDERS_SPLUNKD_URL",
        &format!("https://127.0.0.1:{}", sd.server.port),
    );
    env.stdin = Some(format!("{TOKEN}\n").into_bytes());
    env
}

#[test]
fn key_comes_from_the_secret_store_with_the_passauth_token() {
    let (srv, _feed) = api::start(feed_with(2), None);
    let sd = splunkd(200);
    let mut env = splunk_env(&srv, &sd);
    let out = env.run(&["-index", "main"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.events().len(), 2);
    assert_eq!(srv.last().headers["authorization"], format!("Bearer {KEY}"));
    assert_eq!(sd.server.count(), 1);
    assert!(!out.stderr.contains(TOKEN));
    // sessionKey= prefix and percent-encoding, as some splunkd versions send it.
    env.stdin = Some(b"sessionKey=splunkd-session-TOKEN%2D1234567890\n".to_vec());
    assert_eq!(env.run(&[]).code, 0);
    // An explicit key still wins and splunkd is not asked.
    env.set("SOCDEFENDERS_API_KEY", KEY);
    assert_eq!(env.run(&[]).code, 0);
    assert_eq!(sd.server.count(), 2);
}

#[test]
fn secret_store_failures_name_realm_user_and_fix() {
    let (srv, _feed) = api::start(feed_with(2), None);
    for (status, code, kind, needle) in [
        (403, 8, "splunkd", "list_storage_passwords"),
        (404, 9, "credential", "store-key"),
    ] {
        let sd = splunkd(status);
        let env = splunk_env(&srv, &sd);
        let e = assert_failed(&env.run(&[]), code, kind);
        assert!(
            e["msg"].contains(needle) && e["msg"].contains("username api_key"),
            "{}",
            e["msg"]
        );
    }
    let sd = splunkd(200);
    let mut env = splunk_env(&srv, &sd);
    env.stdin = Some(b"expired-token\n".to_vec());
    let e = assert_failed(&env.run(&[]), 8, "splunkd");
    assert!(
        e["msg"].contains("401") && e["msg"].contains("passAuth"),
        "{}",
        e["msg"]
    );
    // A certificate from another CA is refused even on loopback.
    let other = util::tls::Ca::new("Someone Else");
    let home = env.dir.path().join("splunk");
    std::fs::write(home.join("etc/auth/cacert.pem"), &other.pem).unwrap();
    env.stdin = Some(format!("{TOKEN}\n").into_bytes());
    assert_failed(&env.run(&[]), 8, "splunkd");
    // The token is never sent to a non-loopback splunkd_url without a CA file for it.
    env.set("SOCDEFENDERS_SPLUNKD_URL", "https://splunk.invalid:8089");
    let e = assert_failed(&env.run(&[]), 8, "splunkd");
    assert!(e["msg"].contains("loopback"));
    assert_eq!(srv.count(), 0, "the API is never called without a key");
}

/// `make splunkd-run`: the packaged app, extracted into a temporary $SPLUNK_HOME and started
/// as splunkd starts it: from the app folder, hostile LD_LIBRARY_PATH, token on stdin,
/// trailing `-index main`, settings only from the app's own .conf files.
#[test]
#[ignore = "needs the .spl: run by `make splunkd-run` with SOCDEFENDERS_SPL set"]
fn package_runs_like_splunkd() {
    let (srv, _feed) = api::start(feed_with(3), None);
    let sd = splunkd(200);
    let mut env = splunk_env(&srv, &sd);
    let home = env.dir.path().join("splunk");
    let app = platforms::unpack_app(&env);
    std::fs::create_dir_all(app.join("local")).unwrap();
    std::fs::write(
        app.join("local/socdefenders.conf"),
        format!(
            "[default]\nbase_url = {}\nsplunkd_url = https://127.0.0.1:{}\n",
            srv.url, sd.server.port
        ),
    )
    .unwrap();
    // splunkd hands its children LD_LIBRARY_PATH=$SPLUNK_HOME/lib, which holds Splunk's own
    // libssl, libcrypto and the like (never a libc: Splunk uses the system's). The launcher
    // is /bin/sh, like the inputs of Splunk's own add-on for Unix, and must run with them;
    // the static binary must not even look at a libc there.
    let splunk_libs = env.dir.path().join("splunk-libs");
    let junk = env.dir.path().join("junk-libs");
    for (dir, libs) in [
        (
            &splunk_libs,
            &["libssl.so.3", "libcrypto.so.3", "libz.so.1"][..],
        ),
        (
            &junk,
            &[
                "libc.so.6",
                "libssl.so.3",
                "libcrypto.so.3",
                "ld-linux-x86-64.so.2",
            ][..],
        ),
    ] {
        std::fs::create_dir_all(dir).unwrap();
        for lib in libs {
            std::fs::write(dir.join(lib), b"not a library").unwrap();
        }
    }
    // Only what splunkd gives a scripted input: no state dir, no app dir override, no key.
    for k in [
        "SOCDEFENDERS_STATE_DIR",
        "SOCDEFENDERS_APP_DIR",
        "SOCDEFENDERS_BASE_URL",
        "SOCDEFENDERS_SPLUNKD_URL",
        "SOCDEFENDERS_RETRIES",
    ] {
        env.unset(k);
    }
    let bin = app.join("bin/socdefenders-iocs");
    env.set("LD_LIBRARY_PATH", junk.to_str().unwrap());
    let direct = util::run_bin(
        &app.join("bin/linux_x86_64/socdefenders-iocs"),
        &["--version"],
        &env,
    );
    assert_eq!(direct.code, 0, "{}", direct.stderr);
    env.set("LD_LIBRARY_PATH", splunk_libs.to_str().unwrap());
    let out = util::run_bin(&bin, &["-index", "main"], &env);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.events().len(), 3);
    assert_eq!(srv.last().headers["authorization"], format!("Bearer {KEY}"));
    let state = home.join("var/lib/splunk/modinputs/TA-socdefenders/default.json");
    assert!(
        state.exists(),
        "state under $SPLUNK_HOME/var/lib/splunk/modinputs/TA-socdefenders/"
    );
    let st: Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert_eq!(st["version"], 2);
    assert!(st["cursor"]["since_ms"].is_i64());
    assert_eq!(
        util::run_bin(&bin, &["-index", "main"], &env)
            .events()
            .len(),
        0
    );
    // A per-type input from inputs.conf reads its own stanza.
    let out = util::run_bin(&bin, &["--input", "ipv4", "-index", "main"], &env);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(srv.last().query["type"], "ipv4");
    assert!(out.events().iter().all(|e| e["type"] == "ipv4"));
    // The shipped TAXII input asks for TAXII's full page, from the server on www.
    let out = util::run_bin(&bin, &["--print-config", "--input", "taxii"], &env);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let setting = |k: &str| {
        out.stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{k} = ")))
            .unwrap_or_else(|| panic!("{k} missing: {}", out.stdout))
            .to_string()
    };
    assert!(
        setting("limit").starts_with("1000 "),
        "{}",
        setting("limit")
    );
    assert!(
        setting("taxii_url").starts_with("https://www.socdefenders.ai/api/taxii2/ "),
        "{}",
        setting("taxii_url")
    );
    assert!(!out.stderr.contains("WARN"), "{}", out.stderr);
    // The REST inputs keep their own default of 100.
    let out = util::run_bin(&bin, &["--print-config", "--input", "ipv4"], &env);
    assert!(out.stdout.contains("\nlimit = 100 "), "{}", out.stdout);
}

// --- TAXII 2.1 in SOC Defenders' style (bundle + header paging) -------------------------------

use util::taxii::{self as tx, Taxii};

fn taxii_env(srv: &Server, collection: &str) -> Env {
    let mut env = Env::new();
    env.set("SOCDEFENDERS_SOURCE", "taxii");
    env.set(
        "SOCDEFENDERS_TAXII_URL",
        &format!("{}/api/taxii2/", srv.url),
    );
    env.set("SOCDEFENDERS_COLLECTION", collection);
    env.set("SOCDEFENDERS_RETRIES", "0");
    env
}

fn ip_indicators(from: usize, n: usize) -> Vec<Value> {
    (from..from + n)
        .map(|i| {
            tx::indicator(
                i,
                &format!("[ipv4-addr:value = '198.51.100.{}']", i % 250),
                "2026-01-01T00:00:00.000Z",
            )
        })
        .collect()
}

#[test]
fn taxii_bundle_paging_walks_groups_without_gaps_or_repeats() {
    let mut t = Taxii::new();
    // Groups of equal date_added, bigger and smaller than a page of 4.
    t.add("soc-defenders-all", ip_indicators(0, 3));
    t.add("soc-defenders-all", ip_indicators(3, 3));
    t.add("soc-defenders-all", ip_indicators(6, 2));
    t.add("soc-defenders-all", ip_indicators(8, 1));
    let (srv, t) = tx::start(t);
    let env = taxii_env(&srv, "All IOCs");
    let mut printed: HashMap<String, usize> = HashMap::new();
    let mut next_id = 9;
    for run in 0..30 {
        let out = env.run(&["--limit", "4"]);
        assert_eq!(out.code, 0, "run {run}: {}", out.stderr);
        for e in out.events() {
            assert_eq!(e["type"], "ipv4");
            assert_eq!(e["collection"], "All IOCs");
            *printed
                .entry(e["stix_id"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
        if run < 10 && run % 2 == 0 {
            t.lock()
                .unwrap()
                .add("soc-defenders-all", ip_indicators(next_id, 3));
            next_id += 3;
        }
    }
    let repeated: Vec<_> = printed.iter().filter(|(_, n)| **n > 1).collect();
    assert!(repeated.is_empty(), "{repeated:?}");
    assert_eq!(printed.len(), next_id, "every indicator once");
    let accept = t.lock().unwrap().accept_seen.clone();
    assert!(
        accept
            .iter()
            .all(|a| a == "application/taxii+json;version=2.1"),
        "{accept:?}"
    );
    // discovery, API root listing and collections were asked once, then cached
    let discovery = srv
        .requests
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.path == "/api/taxii2/")
        .count();
    assert_eq!(discovery, 1);
}

#[test]
fn taxii_auth_basic_bearer_and_free_tier() {
    let mut t = Taxii::new();
    t.add("soc-defenders-network", ip_indicators(0, 2));
    let (srv, _t) = tx::start(t);
    let env = taxii_env(&srv, "soc-defenders-network");
    let out = env.run(&[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.events().len(), 2);
    let auth = srv.last().headers["authorization"].clone();
    assert!(auth.starts_with("Basic "));
    assert_eq!(auth, format!("Basic {}", b64(&format!("apikey:{KEY}"))));
    let mut env = taxii_env(&srv, "soc-defenders-network");
    env.set("SOCDEFENDERS_TAXII_AUTH", "bearer");
    assert_eq!(env.run(&[]).code, 0);
    assert_eq!(srv.last().headers["authorization"], format!("Bearer {KEY}"));
    env.set("SOCDEFENDERS_API_KEY", tx::FREE_KEY);
    env.set(
        "SOCDEFENDERS_STATE_DIR",
        env.dir.path().join("s2").to_str().unwrap(),
    );
    let out = env.run(&[]);
    let e = assert_failed(&out, 3, "auth");
    assert!(
        e["msg"].contains("403") && e["msg"].contains("Pro"),
        "{}",
        e["msg"]
    );
    assert!(!out.stderr.contains(tx::FREE_KEY));
}

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[test]
fn taxii_collections_are_discovered_by_id_or_title() {
    let (srv, _t) = tx::start(Taxii::new());
    let env = taxii_env(&srv, "no such feed");
    let e = assert_failed(&env.run(&[]), 2, "config");
    assert!(
        e["msg"].contains("soc-defenders-all (All IOCs)")
            && e["msg"].contains("soc-defenders-network (IPs only)"),
        "{}",
        e["msg"]
    );
    let env = taxii_env(&srv, "ips ONLY");
    assert_eq!(env.run(&["--since", "2026-01-02T03:04:05Z"]).code, 0);
    // a first run asks for exactly what was added after `since`
    assert_eq!(
        srv.last().query["added_after"],
        "2026-01-02T03:04:05.000000Z"
    );
    assert!(
        srv.last()
            .path
            .contains("/collections/soc-defenders-network/objects/")
    );
    let out = env.run(&["check"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("IPs only"));
}

#[test]
fn taxii_discovery_naming_another_origin_gets_no_key() {
    // Another loopback address is another origin: it must see no request at all.
    let mut elsewhere = Taxii::new();
    elsewhere.add("soc-defenders-all", ip_indicators(0, 2));
    let (other, _o) = tx::start_on("127.0.0.2", elsewhere);
    let mut t = Taxii::new();
    t.root_at = Some(other.url.clone());
    let (srv, _t) = tx::start(t);
    let env = taxii_env(&srv, "All IOCs");
    let out = env.run(&[]);
    let e = assert_failed(&out, 2, "config");
    assert!(
        e["msg"].contains(&other.url) && e["msg"].contains("set taxii_url to the API root"),
        "{}",
        e["msg"]
    );
    assert!(out.stdout.is_empty());
    assert!(
        other.requests.lock().unwrap().is_empty(),
        "no request elsewhere"
    );
    assert!(!out.stderr.contains(KEY));
    // http on the same host and port is another origin too (scheme), and so is another port.
    let mut t = Taxii::new();
    t.root_at = Some(srv.url.replace("http://", "https://"));
    let (srv2, _t2) = tx::start(t);
    let e = assert_failed(&taxii_env(&srv2, "All IOCs").run(&[]), 2, "config");
    assert!(e["msg"].contains("another origin"), "{}", e["msg"]);
    // The remedy works: taxii_url set to that API root itself reads it (with its own key).
    let mut env = taxii_env(&other, "All IOCs");
    env.set(
        "SOCDEFENDERS_TAXII_URL",
        &format!("{}/api/taxii2/api/", other.url),
    );
    let out = env.run(&[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.events().len(), 2);
}

#[test]
fn taxii_wrong_version_and_406_are_clear_errors() {
    let (srv, t) = tx::start(Taxii::new());
    let env = taxii_env(&srv, "All IOCs");
    t.lock().unwrap().answer_version = Some("2.0");
    let e = assert_failed(&env.run(&[]), 5, "upstream");
    assert!(
        e["msg"].contains("2.0") && e["msg"].contains("2.1"),
        "{}",
        e["msg"]
    );
    t.lock().unwrap().answer_version = None;
    t.lock().unwrap().force_status = Some(406);
    let e = assert_failed(&env.run(&[]), 5, "upstream");
    assert!(
        e["msg"].contains("406") && e["msg"].contains("TAXII 2.1"),
        "{}",
        e["msg"]
    );
}

#[test]
fn taxii_objects_map_to_events() {
    let mut t = Taxii::new();
    t.add("soc-defenders-all", vec![
        json!({"type": "identity", "id": "identity--f8e75d96-8e4c-4b1a-9e3d-4f8a7b6c5d3e", "name": "SOC Defenders"}),
        json!({"type": "marking-definition", "id": "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"}),
        tx::indicator(1, "[ipv4-addr:value = '203.0.113.1']", "2026-01-01T00:00:00.000Z"),
        tx::indicator(1, "[ipv4-addr:value = '203.0.113.9']", "2026-02-01T00:00:00.000Z"),
        tx::indicator(2, "[domain-name:value = 'a.example'] OR [url:value = 'http://b.example/x']", "2026-01-01T00:00:00.000Z"),
        tx::indicator(3, "[file:hashes.'SHA-256' = 'aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f' AND file:name = 'x.exe']", "2026-01-01T00:00:00.000Z"),
        tx::indicator(4, "[ipv4-addr:value = ", "2026-01-01T00:00:00.000Z"),
        // Hashes of the wrong shape are invalid STIX (as OASIS' validator says): never IOCs.
        tx::indicator(5, "[file:hashes.'SHA-256' = 'f00']", "2026-01-01T00:00:00.000Z"),
        tx::indicator(6, "[file:hashes.MD5 = 'not-a-hash']", "2026-01-01T00:00:00.000Z"),
        json!({"type": "vulnerability", "id": "vulnerability--1", "created": "2026-01-01T00:00:00Z", "modified": "2026-01-01T00:00:00Z", "name": "CVE-2026-0001",
               "external_references": [{"source_name": "cve", "external_id": "CVE-2026-0001"}]}),
    ]);
    let (srv, _t) = tx::start(t);
    let env = taxii_env(&srv, "All IOCs");
    let out = env.run(&[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let got: Vec<(String, String)> = out
        .events()
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap().into(),
                e["value"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("ipv4".into(), "203.0.113.9".into()),
            ("domain".into(), "a.example".into()),
            ("url".into(), "http://b.example/x".into()),
            (
                "stix-pattern".into(),
                "[file:hashes.'SHA-256' = 'aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f' AND file:name = 'x.exe']".into()
            ),
            ("cve".into(), "CVE-2026-0001".into()),
        ]
    );
    let ev = out.events();
    assert_eq!(ev[0]["confidence"], "high");
    assert_eq!(ev[0]["confidence_score"], 85);
    assert_eq!(ev[0]["tags"], json!(["c2"]));
    assert_eq!(ev[0]["revoked"], false);
    assert_eq!(ev[0]["indicator_types"], json!(["malicious-activity"]));
    assert_ne!(
        ev[1]["id"], ev[2]["id"],
        "one id per value so lookups keep both"
    );
    for n in [4, 5, 6] {
        assert!(
            out.has_level(
                "WARN",
                &format!("indicator--00000000-0000-4000-8000-00000000000{n}")
            ),
            "{}",
            out.stderr
        );
    }
    assert!(
        out.has_level("WARN", "is not a valid SHA256 hash"),
        "{}",
        out.stderr
    );
    assert!(out.has_level("INFO", "identity=1"), "{}", out.stderr);
}

#[test]
fn an_oversized_page_is_printed_whole_with_bounded_memory() {
    let (srv, feed) = api::start(feed_with(0), None);
    let env = api_env(&srv);
    let recs: Vec<Value> = (0..3000)
        .map(|i| json!({"id": format!("o{i}"), "type": "ipv4", "value": format!("10.1.{}.{}", i / 250, i % 250),
                        "last_seen": api::ts(1_790_000_000_000 + i as i64 * 1000)}))
        .collect();
    feed.lock().unwrap().faults.push_back(Fault::Records(recs));
    let out = env.run(&["--limit", "100"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let ids: std::collections::HashSet<String> = out
        .events()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 3000);
    assert_eq!(out.events().len(), 3000);
    let remembered = env.state("default")["recent"].as_array().unwrap().len();
    assert!(
        remembered <= 2,
        "only the newest second is remembered: {remembered}"
    );
}

#[test]
fn every_setting_is_documented_in_the_spec_and_the_readme() {
    let root = env!("CARGO_MANIFEST_DIR");
    let spec =
        std::fs::read_to_string(format!("{root}/app/README/socdefenders.conf.spec")).unwrap();
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let shipped = std::fs::read_to_string(format!("{root}/default/socdefenders.conf")).unwrap();
    for key in socdefenders_iocs::config::all_keys()
        .into_iter()
        .filter(|k| *k != "input")
    {
        assert!(
            spec.lines().any(|l| l.starts_with(&format!("{key} = "))),
            "{key} missing from the .conf.spec"
        );
        assert!(
            readme.contains(&format!("| `{key}` |")),
            "{key} missing from the README settings table"
        );
    }
    // The shipped file itself is valid for the program: every key it sets is a known setting.
    for line in shipped
        .lines()
        .filter(|l| l.contains(" = ") && !l.starts_with('#'))
    {
        let key = line.split(" = ").next().unwrap().trim();
        assert!(
            socdefenders_iocs::config::all_keys().contains(&key),
            "{key}"
        );
    }
}

/// `store-key` prompts on a terminal (the key without echo); driven here through a
/// pseudo-terminal the test makes itself (util::pty). A second store updates the existing
/// credential.
#[test]
fn store_key_creates_then_updates_the_credential() {
    let ca = util::tls::Ca::new("SplunkCommonCA");
    let created = std::sync::Arc::new(std::sync::Mutex::new(false));
    let c2 = created.clone();
    let server = Server::start(
        Some(ca.server("SplunkServerDefaultCert", &[])),
        std::sync::Arc::new(move |req: &api::Request| {
            let basic = format!("Basic {}", b64("admin:changeme"));
            if req.headers.get("authorization") != Some(&basic) {
                return api::json_reply(401, &json!({"messages": [{"text": "unauthorized"}]}));
            }
            let mut done = c2.lock().unwrap();
            if req.path == "/servicesNS/nobody/TA-socdefenders/storage/passwords" && !*done {
                *done = true;
                api::json_reply(201, &json!({"entry": []}))
            } else if req.path == "/servicesNS/nobody/TA-socdefenders/storage/passwords" {
                api::json_reply(409, &json!({"messages": [{"text": "exists"}]}))
            } else {
                api::json_reply(200, &json!({"entry": []}))
            }
        }),
    );
    let mut env = Env::new();
    env.unset("SOCDEFENDERS_API_KEY");
    let home = env.dir.path().join("splunk");
    std::fs::create_dir_all(home.join("etc/auth")).unwrap();
    std::fs::write(home.join("etc/auth/cacert.pem"), &ca.pem).unwrap();
    env.set("SPLUNK_HOME", home.to_str().unwrap());
    env.set(
        "SOCDEFENDERS_SPLUNKD_URL",
        &format!("https://127.0.0.1:{}", server.port),
    );
    let bin = env!("CARGO_BIN_EXE_socdefenders-iocs");
    for round in 0..2 {
        let cmd = util::command(bin.as_ref(), &["store-key"], &env);
        let (screen, code) = util::pty::run(cmd, b"sk_test_STORED0001\nadmin\nchangeme\n");
        assert_eq!(code, 0, "round {round}: {screen}");
        assert!(screen.contains("Stored the key"), "{screen}");
        // Typed without echo: the key and the password never appear on the terminal.
        assert!(
            !screen.contains("sk_test_STORED0001") && !screen.contains("changeme"),
            "{screen}"
        );
        assert!(screen.contains("admin"), "the username is echoed: {screen}");
    }
    let reqs = server.requests.lock().unwrap();
    let forms: Vec<String> = reqs
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect();
    assert_eq!(reqs[0].method, "POST");
    assert_eq!(
        forms[0],
        "name=api_key&password=sk_test_STORED0001&realm=TA-socdefenders"
    );
    assert_eq!(
        reqs[2].path,
        "/servicesNS/nobody/TA-socdefenders/storage/passwords/TA-socdefenders:api_key:"
    );
    assert_eq!(forms[2], "password=sk_test_STORED0001");
    assert_eq!(reqs.len(), 3);
}

#[test]
fn taxii_backlog_that_keeps_growing_is_warned() {
    let mut t = Taxii::new();
    for k in 0..10 {
        t.add("soc-defenders-all", ip_indicators(k * 3, 3));
    }
    let (srv, _t) = tx::start(t);
    let env = taxii_env(&srv, "All IOCs");
    let mut warned = Vec::new();
    for _ in 0..4 {
        let out = env.run(&["--limit", "3", "--max-pages", "1"]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        warned.push(out.has_level("WARN", "keeps growing faster than it is read"));
    }
    assert_eq!(warned, vec![false, false, true, true]);
    // Once a run drains it, the count starts over.
    let out = env.run(&["--limit", "1000"]);
    assert!(!out.has_level("WARN", "keeps growing"));
    assert_eq!(env.state("default")["cursor"]["behind_runs"], 0);
}

// --- Checkpoints written by the previous release (format version 1) --------------------------

/// The feeds the upgrade scenarios walk: fixed clocks, so the release that wrote the fixtures
/// and the program under test see the same records.
const UPGRADE_CLOCK_MS: i64 = 1_793_000_000_000;
const UPGRADE_SINCE: &str = "2026-10-26T00:00:00Z";

fn upgrade_feed(desc: bool) -> Feed {
    let mut f = Feed::at(UPGRADE_CLOCK_MS);
    f.desc = desc;
    f.cap = 7;
    f.add(40, 3);
    f
}

fn upgrade_taxii() -> Taxii {
    let mut t = Taxii::at(UPGRADE_CLOCK_MS * 1000);
    for k in 0..8 {
        t.add("soc-defenders-all", ip_indicators(k * 3, 3));
    }
    t
}

/// The scenarios: name, REST feed (descending?) or TAXII, and runs made by the old release.
const UPGRADE_SCENARIOS: &[(&str, Option<bool>, usize)] = &[
    ("rest-descending", Some(true), 3),
    ("rest-ascending", Some(false), 3),
    ("taxii", None, 3),
];

fn upgrade_printed(out: &util::Out) -> Vec<Value> {
    out.events()
        .iter()
        .map(|e| json!([e["id"], e["last_seen"]]))
        .collect()
}

/// Writes tests/fixtures/v1/<scenario>.json with the binary named by SOCDEFENDERS_V1_BIN: the
/// checkpoint it left after its runs (server URL replaced by {BASE}) and what it printed.
/// Run once with the previous release's binary; see tests/fixtures/v1/README.md.
#[test]
#[ignore = "writes fixtures with SOCDEFENDERS_V1_BIN, the previous release's binary"]
fn write_v1_fixtures() {
    let bin = std::env::var("SOCDEFENDERS_V1_BIN").expect("SOCDEFENDERS_V1_BIN");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, rest, runs) in UPGRADE_SCENARIOS {
        let (srv, env) = match rest {
            Some(desc) => {
                let (srv, _f) = api::start(upgrade_feed(*desc), None);
                let env = api_env(&srv);
                (srv, env)
            }
            None => {
                let (srv, _t) = tx::start(upgrade_taxii());
                let env = taxii_env(&srv, "All IOCs");
                (srv, env)
            }
        };
        let mut printed = Vec::new();
        for _ in 0..*runs {
            let out = util::run_bin(
                bin.as_ref(),
                &[
                    "--limit",
                    if rest.is_some() { "7" } else { "4" },
                    "--since",
                    UPGRADE_SINCE,
                ],
                &env,
            );
            assert_eq!(out.code, 0, "{}", out.stderr);
            printed.extend(upgrade_printed(&out));
        }
        let state = std::fs::read_to_string(env.state_file("default"))
            .unwrap()
            .replace(&srv.url, "{BASE}");
        let fixture = json!({"state": state, "printed": printed});
        std::fs::write(
            dir.join(format!("{name}.json")),
            serde_json::to_string_pretty(&fixture).unwrap() + "\n",
        )
        .unwrap();
    }
}

/// A checkpoint written by the previous release is read, and its walk continues: with what
/// that release printed, every version is printed exactly once, and the feed may grow on the
/// way. The first new run must not restart the walk (the settings did not change).
#[test]
fn checkpoints_of_the_previous_release_continue_their_walk() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1");
    for (name, rest, _) in UPGRADE_SCENARIOS {
        let fixture: Value =
            serde_json::from_slice(&std::fs::read(dir.join(format!("{name}.json"))).unwrap())
                .unwrap();
        let (srv, env, feed) = match rest {
            Some(desc) => {
                let (srv, f) = api::start(upgrade_feed(*desc), None);
                let env = api_env(&srv);
                (srv, env, Some(f))
            }
            None => {
                let (srv, _t) = tx::start(upgrade_taxii());
                let env = taxii_env(&srv, "All IOCs");
                (srv, env, None)
            }
        };
        std::fs::create_dir_all(env.state_dir()).unwrap();
        let state = fixture["state"]
            .as_str()
            .unwrap()
            .replace("{BASE}", &srv.url);
        assert!(state.contains("\"version\":1"));
        std::fs::write(env.state_file("default"), &state).unwrap();
        if let Some(f) = &feed {
            // The feed moves on after the upgrade: new IOCs, and an old one seen again.
            let mut f = f.lock().unwrap();
            f.add(9, 2);
            f.touch(3);
        }
        let mut printed: HashMap<Value, usize> = HashMap::new();
        for p in fixture["printed"].as_array().unwrap() {
            *printed.entry(p.clone()).or_default() += 1;
        }
        let limit = if rest.is_some() { "7" } else { "4" };
        let mut quiet = 0;
        for run in 0..60 {
            let out = env.run(&["--limit", limit, "--since", UPGRADE_SINCE]);
            assert_eq!(out.code, 0, "{name} run {run}: {}", out.stderr);
            assert!(
                !out.has_level("WARN", "changed"),
                "{name}: the walk restarted: {}",
                out.stderr
            );
            let got = upgrade_printed(&out);
            quiet = if got.is_empty() { quiet + 1 } else { 0 };
            for p in got {
                *printed.entry(p).or_default() += 1;
            }
            if quiet == 3 {
                break;
            }
        }
        let repeated: Vec<_> = printed.iter().filter(|(_, n)| **n > 1).collect();
        assert!(repeated.is_empty(), "{name}: printed twice: {repeated:?}");
        let want: Vec<Value> = match &feed {
            Some(f) => f
                .lock()
                .unwrap()
                .versions()
                .into_iter()
                .map(|(id, seen)| json!([id, seen]))
                .collect(),
            None => (0..24)
                .map(|i| {
                    json!([
                        format!("indicator--00000000-0000-4000-8000-{i:012}"),
                        "2026-01-01T00:00:00.000Z"
                    ])
                })
                .collect(),
        };
        let missing: Vec<_> = want.iter().filter(|v| !printed.contains_key(v)).collect();
        assert!(missing.is_empty(), "{name}: never printed: {missing:?}");
        assert_eq!(env.state("default")["version"], 2, "{name}");
    }
}

#[test]
fn a_checkpoint_from_a_newer_release_is_refused_and_kept() {
    let (srv, _feed) = api::start(feed_with(2), None);
    let env = api_env(&srv);
    std::fs::create_dir_all(env.state_dir()).unwrap();
    let body = br#"{"version":3,"input":"default","source":"rest","future":true}"#;
    std::fs::write(env.state_file("default"), body).unwrap();
    let e = assert_failed(&env.run(&[]), 7, "state");
    assert!(
        e["msg"].contains("version 3") && e["msg"].contains("newer release"),
        "{}",
        e["msg"]
    );
    assert_eq!(std::fs::read(env.state_file("default")).unwrap(), body);
    assert_eq!(srv.count(), 0);
}

//! Hostile pages and failure paths: bounded memory, no stall, bounded and scrubbed log lines,
//! files that cannot be turned against the host.

use super::*;

/// The binary these memory tests measure: SOCDEFENDERS_BIN (the release binary, as `make
/// test` runs them) or the tests' debug build.
fn measured_bin() -> std::path::PathBuf {
    std::env::var_os("SOCDEFENDERS_BIN")
        .map(Into::into)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_socdefenders-iocs").into())
}

type Headers = Vec<(String, String)>;

/// A gzip body whose JSON record holds `n` zeros in one string.
fn gzip_record(n: usize) -> (Headers, Vec<u8>) {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let mut write = |b: &[u8]| std::io::Write::write_all(&mut gz, b).unwrap();
    write(br#"{"data":[{"id":"h1","type":"url","value":"v","x":""#);
    let zeros = vec![b'0'; 1 << 20];
    for _ in 0..n >> 20 {
        write(&zeros);
    }
    write(br#""}],"links":{"next":null}}"#);
    let headers = vec![
        ("Content-Type".to_string(), "application/json".to_string()),
        ("Content-Encoding".into(), "gzip".into()),
    ];
    (headers, gz.finish().unwrap())
}

/// Bodies of up to max_body_bytes (64 MiB) that once took far more memory than they hold,
/// one at a time (name, headers, body, events expected).
fn hostile_body(i: usize) -> Option<(&'static str, Headers, Vec<u8>, usize)> {
    let json = vec![("Content-Type".to_string(), "application/json".to_string())];
    let fill = |n: usize, unit: &str| {
        let mut s = String::with_capacity(n + 16);
        while s.len() + unit.len() < n {
            s.push_str(unit);
            s.push(',');
        }
        s.push_str(unit);
        s
    };
    let big = 60 << 20;
    let rec = |x: &str| {
        format!(r#"{{"data":[{{"id":"h1","type":"url","value":"v","last_seen":"2026-01-01T00:00:00Z","x":{x}}}],"links":{{"next":null}}}}"#).into_bytes()
    };
    Some(match i {
        0 => (
            "a 60 MB string in a record",
            json,
            rec(&format!("\"{}\"", "0".repeat(big))),
            1,
        ),
        1 => (
            "60 MB of [] in a record",
            json,
            rec(&format!("[{}]", fill(big, "[]"))),
            1,
        ),
        2 => (
            "60 MB of {} in a record",
            json,
            rec(&format!("[{}]", fill(big, "{}"))),
            1,
        ),
        3 => (
            "a record nested 30 million deep",
            json,
            rec(&format!("{}1{}", "[".repeat(big / 2), "]".repeat(big / 2))),
            1,
        ),
        4 => ("a 60 MB number in a record", json, rec(&"9".repeat(big)), 1),
        5 => (
            "millions of tiny elements",
            json,
            format!(r#"{{"data":[{}],"links":{{"next":null}}}}"#, fill(big, "1")).into_bytes(),
            0,
        ),
        6 => (
            "a 60 MB string in meta",
            json,
            format!(r#"{{"data":[],"meta":{{"note":"{}"}}}}"#, "m".repeat(big)).into_bytes(),
            0,
        ),
        7 => {
            let (h, b) = gzip_record((64 << 20) - (1 << 20));
            ("a gzip body inflating to 63 MiB", h, b, 1)
        }
        _ => return None,
    })
}

/// Every hostile page is read in bounded memory (32 MiB for the release binary, as `make
/// test` runs this with SOCDEFENDERS_BIN; the debug build's baseline is higher), prints its
/// record (cut to the event bounds), and writes a bounded number of lines. Slow on the debug
/// build, so `make hostile` runs it with the release binary.
#[test]
#[ignore = "slow on the debug build: make hostile runs it with the release binary"]
fn hostile_pages_are_read_in_bounded_memory() {
    let bin = measured_bin();
    let limit_kib = if std::env::var_os("SOCDEFENDERS_BIN").is_some() {
        32 * 1024
    } else {
        48 * 1024
    };
    let mut failed = Vec::new();
    for i in 0.. {
        let Some((name, headers, body, events)) = hostile_body(i) else {
            break;
        };
        let (srv, feed) = api::start(feed_with(0), None);
        let env = api_env(&srv);
        feed.lock()
            .unwrap()
            .faults
            .push_back(Fault::Answer(headers, body));
        let out = util::run_measured(&bin, &[], &env);
        eprintln!(
            "{name}: exit {}, peak RSS {} KiB, {} stderr lines",
            out.code,
            out.max_rss_kib,
            out.stderr.lines().count()
        );
        let ok = out.code == 0
            && out.max_rss_kib < limit_kib
            && out.stderr.lines().count() <= 10
            && out.events().len() == events
            && out
                .events()
                .iter()
                .all(|e| e["id"] == "h1" && e["socdefenders_truncated"] == true)
            && out.stdout.lines().all(|l| l.len() <= 90_000);
        if !ok {
            failed.push(format!(
                "{name}: exit {} rss {} KiB\n{}",
                out.code, out.max_rss_kib, out.stderr
            ));
        }
    }
    // Past max_body_bytes, a gzip bomb is refused, still in bounded memory.
    let (srv, feed) = api::start(feed_with(0), None);
    let env = api_env(&srv);
    let (h, b) = gzip_record(200 << 20);
    feed.lock().unwrap().faults.push_back(Fault::Answer(h, b));
    let out = util::run_measured(&bin, &[], &env);
    if out.code != 5 || !out.stderr.contains("max_body_bytes") || out.max_rss_kib >= limit_kib {
        failed.push(format!(
            "gzip bomb: exit {} rss {} KiB {}",
            out.code, out.max_rss_kib, out.stderr
        ));
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

/// A key the server echoes in its error message, at every offset around each cut (the
/// message at 300 characters, the code and request id at 64, the whole line at 2,048): no
/// fragment of it (4 characters or more) reaches the log, beyond those the same line shows
/// with the key replaced by other characters.
#[test]
fn no_fragment_of_the_key_reaches_the_log() {
    let (srv, feed) = api::start(feed_with(1), None);
    let env = api_env(&srv);
    let fragments: Vec<&str> = (4..=KEY.len())
        .flat_map(|n| (0..=KEY.len() - n).map(move |i| &KEY[i..i + n]))
        .collect();
    let run = |field: &str, at: usize, secret: &str| {
        let text = format!("{}{secret}{}", "x".repeat(at), "y".repeat(40));
        let mut err = json!({"code": "invalid_api_key", "message": "m", "request_id": "r"});
        err[field] = json!(text);
        feed.lock()
            .unwrap()
            .faults
            .push_back(Fault::Status(401, json!({ "error": err }), vec![]));
        let out = env.run(&[]);
        assert_eq!(out.code, 3);
        out.stderr
    };
    let mut runs = 0;
    for (field, cut) in [
        ("message", 300usize),
        ("code", 64),
        ("request_id", 64),
        ("message", 2048),
    ] {
        for at in cut.saturating_sub(KEY.len() + 2)..=cut + 2 {
            let with_key = run(field, at, KEY);
            let without = run(field, at, &"z".repeat(KEY.len()));
            runs += 1;
            for f in &fragments {
                assert!(
                    !with_key.contains(f) || without.contains(f),
                    "{field} at {at}: {f:?} in {with_key}"
                );
            }
        }
    }
    assert_eq!(runs, 4 * (KEY.len() + 5));
}

/// A 429 whose body is far larger than an error needs still sets the pause.
#[test]
fn a_rate_limit_with_a_huge_body_still_pauses() {
    let (srv, feed) = api::start(feed_with(2), None);
    let env = api_env(&srv);
    let huge = json!({"error": {"code": "rate_limit_exceeded", "message": "x".repeat(5 << 20)}});
    feed.lock().unwrap().faults.push_back(Fault::Status(
        429,
        huge,
        vec![("Retry-After", "600".into())],
    ));
    let out = env.run(&[]);
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert!(out.stderr.len() < 2500, "{}", out.stderr.len());
    let n = srv.count();
    assert!(
        env.run(&[])
            .has_level("INFO", "rate limited by the API until")
    );
    assert_eq!(srv.count(), n, "no request during the pause");
}

/// Header values are cut, media types are compared without regard to case, and a 304 is not
/// called a redirect.
#[test]
fn headers_and_statuses_are_reported_as_they_are() {
    let (srv, feed) = api::start(feed_with(2), None);
    let env = api_env(&srv);
    let html = |ct: &str| {
        Fault::Answer(
            vec![("Content-Type".into(), ct.into())],
            b"<html>login</html>".to_vec(),
        )
    };
    for ct in [
        "TEXT/HTML",
        "text/html; charset=UTF-8",
        &format!("text/html; x={}", "a".repeat(60_000)),
    ] {
        feed.lock().unwrap().faults.push_back(html(ct));
        let out = env.run(&[]);
        assert_eq!(out.code, 5, "{ct:.40}: {}", out.stderr);
        assert!(out.has_level("ERROR", "HTML page"), "{}", out.stderr);
        assert!(out.stderr.len() < 700, "{} bytes", out.stderr.len());
    }
    feed.lock()
        .unwrap()
        .faults
        .push_back(Fault::Status(304, json!({}), vec![]));
    let out = env.run(&[]);
    assert_eq!(out.code, 5);
    assert!(
        out.has_level("ERROR", "unexpected HTTP 304"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("redirect"));
}

#[test]
fn settings_errors_name_the_input_they_belong_to() {
    let env = Env::new();
    for args in [
        &["--input", "ips", "--limit", "0"][..],
        &["--input", "ips", "--bogus"],
    ] {
        let out = env.run(args);
        assert_eq!(out.code, 2);
        assert_eq!(out.errors()[0]["input"], "ips", "{}", out.stderr);
    }
    env.write_conf("local", "[input:ips]\nlimit = 0\n");
    let out = env.run(&["--input", "ips"]);
    assert_eq!(out.errors()[0]["input"], "ips", "{}", out.stderr);
}

/// A page of 100,000 malformed elements writes a handful of lines, with the count.
#[test]
fn warnings_about_records_are_summarised() {
    let (srv, feed) = api::start(feed_with(0), None);
    let env = api_env(&srv);
    let recs: Vec<Value> = (0..100_000)
        .map(|i| json!({"id": format!("bad{i}")}))
        .collect();
    feed.lock().unwrap().faults.push_back(Fault::Records(recs));
    let out = env.run(&[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.lines().count() <= 6, "{}", out.stderr);
    assert!(
        out.has_level("WARN", "99997 more warnings of the kind 'skipped record'"),
        "{}",
        out.stderr
    );
    assert!(
        out.has_level("INFO", "100000 invalid records skipped"),
        "{}",
        out.stderr
    );
}

/// Valid JSON never stalls the feed: what cannot be an event is skipped with a warning, and
/// the cursor moves on.
#[test]
fn a_valid_json_page_never_stalls_the_feed() {
    let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
    let body = format!(
        r#"{{"meta":{{"total":3,"x":1e400,"y":{deep}}},"data":[
            {{"id":"a","type":"url",
              "value":"http://a/","n":1e400,"last_seen":"2026-01-01T00:00:00Z"}},
            {{"id":"b","type":"url","value":"http://b/","deep":{deep},"last_seen":"2026-01-01T00:00:01Z"}},
            {{"id":"c","type":["not","a","string"],"value":"v"}}
        ],"links":{{"next":null}}}}"#
    );
    let (srv, feed) = api::start(feed_with(0), None);
    let env = api_env(&srv);
    feed.lock().unwrap().faults.push_back(Fault::Body(body));
    let out = env.run(&[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // serde_json cannot hold 1e400, so the lines are checked as text.
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[0].starts_with(r#"{"type":"url","value":"http://a/","id":"a""#));
    assert!(
        lines[0].ends_with(r#","n":1e400}"#),
        "numbers as sent: {}",
        lines[0]
    );
    assert!(
        lines[1].contains(&format!(r#""deep":{deep}"#)),
        "{}",
        lines[1]
    );
    assert!(out.has_level("WARN", "has no string 'type'"));
    assert!(
        env.state("default")["cursor"].is_object(),
        "the checkpoint moved"
    );
}

/// A last_seen far in the future is printed but never moves the cursor past now.
#[test]
fn a_future_last_seen_does_not_move_the_cursor_past_now() {
    let (srv, feed) = api::start(feed_with(0), None);
    let mut env = api_env(&srv);
    env.set("SOCDEFENDERS_TEST_NOW", "2026-12-02T12:00:00Z");
    feed.lock().unwrap().faults.push_back(Fault::Records(vec![
        json!({"id": "old", "type": "url", "value": "a", "last_seen": "2026-12-01T00:00:00Z"}),
        json!({"id": "future", "type": "url", "value": "b", "last_seen": "9999-12-31T23:59:59Z"}),
    ]));
    let out = env.run(&["--since", "2026-11-30T00:00:00Z"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.events().len(), 2);
    assert!(out.has_level(
        "WARN",
        "1 records in this run had a last_seen more than 5 minutes ahead"
    ));
    let since = env.state("default")["cursor"]["since_ms"].as_i64().unwrap();
    let now = 1_796_212_800_000i64; // 2026-12-02T12:00:00Z
    assert!(since <= now, "the cursor went past now: {since}");
}

/// Files in the state folder cannot be turned against the host: a link planted where the
/// temporary checkpoint goes is removed (its target untouched), temporary files of killed
/// runs are removed, and modes do not follow a permissive umask.
#[test]
fn state_files_cannot_be_turned_against_the_host() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
    let (srv, _feed) = api::start(feed_with(2), None);
    let mut env = api_env(&srv);
    env.umask = Some(0);
    let state = env.state_dir();
    std::fs::create_dir_all(env.dir.path()).unwrap();
    // A fresh state folder, made by the program under umask 000.
    let out = env.run(&[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().mode() & 0o777;
    assert_eq!(mode(&state), 0o700);
    assert_eq!(mode(&env.state_file("default")), 0o600);
    assert_eq!(mode(&state.join("default.lock")), 0o600);
    // Leftovers of killed runs: the name format 1 used (a pid), and one of a planted link.
    let victim = env.dir.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(state.join("default.json.tmp4242"), "stale").unwrap();
    symlink(&victim, state.join("default.json.tmp4243")).unwrap();
    let out = env.run(&[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    let left: Vec<String> = std::fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// "Daily budget spent" is one outcome everywhere: exit 0 and an INFO line, also when it runs
/// out during TAXII discovery (which takes two requests before the first page).
#[test]
fn a_spent_budget_ends_a_run_quietly_on_every_path() {
    let mut t = Taxii::new();
    t.add("soc-defenders-all", ip_indicators(0, 2));
    let (srv, _t) = tx::start(t);
    let env = taxii_env(&srv, "All IOCs");
    let out = env.run(&["--daily-budget", "1"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.has_level("INFO", "daily request budget (1) is spent"),
        "{}",
        out.stderr
    );
    assert_eq!(srv.count(), 1);
    let out = env.run(&["--daily-budget", "1"]);
    assert_eq!(out.code, 0);
    assert_eq!(srv.count(), 1, "no request once it is spent");
}

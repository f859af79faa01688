//! Every row of the README's error table, produced by a scenario and checked against the
//! table itself: the message (`...` stands for what varies), its level, and the exit code.
//! Every exit code is produced by at least one row.

use super::*;
use std::io::Read as _;
use util::Out;

/// One row of the README's "Errors and what to do" table.
struct Row {
    key: String,
    level: &'static str,
    exit: i32,
}

fn readme_rows() -> Vec<Row> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme
        .find("| Message (contains) | Exit |")
        .expect("the error table");
    readme[start..]
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.split(" | ").collect();
            let first = cells[0].trim_start_matches("| ");
            let key = first
                .split('`')
                .nth(1)
                .expect("a backticked message")
                .to_string();
            let level = if first.contains("(WARN)") {
                "WARN"
            } else if first.contains("(INFO)") {
                "INFO"
            } else {
                "ERROR"
            };
            Row {
                key,
                level,
                exit: cells[1].trim().parse().expect("an exit code"),
            }
        })
        .collect()
}

/// `msg` contains the parts of `key` between its `...`, in order.
fn matches(msg: &str, key: &str) -> bool {
    let mut rest = msg;
    for part in key.split("...").filter(|p| !p.is_empty()) {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

fn api(feed: Feed) -> (Server, std::sync::Arc<std::sync::Mutex<Feed>>, Env) {
    let (srv, f) = api::start(feed, None);
    let env = api_env(&srv);
    (srv, f, env)
}

/// A run against a feed of three IOCs whose next answer is `fault`.
fn fault(fault: Fault, args: &[&str]) -> Out {
    let (_srv, f, env) = api(feed_with(3));
    f.lock().unwrap().faults.push_back(fault);
    env.run(args)
}

fn status(code: u16, err_code: &str) -> Out {
    fault(
        Fault::Status(
            code,
            json!({"error": {"code": err_code, "message": "m"}}),
            vec![],
        ),
        &[],
    )
}

fn with_conf(text: &str) -> Out {
    let (_srv, _f, env) = api(feed_with(1));
    env.write_conf("local", text);
    env.run(&[])
}

fn taxii_run(t: Taxii, collection: &str, args: &[&str]) -> Out {
    let (srv, _t) = tx::start(t);
    taxii_env(&srv, collection).run(args)
}

fn taxii_forced(code: u16) -> Out {
    let (srv, t) = tx::start(Taxii::new());
    t.lock().unwrap().force_status = Some(code);
    taxii_env(&srv, "All IOCs").run(&[])
}

fn splunkd_answer(status: u16) -> Out {
    let (srv, _f) = api::start(feed_with(1), None);
    let sd = splunkd(status);
    splunk_env(&srv, &sd).run(&[])
}

/// A 5,000-IOC page read through a pipe that is drained slowly, and a SIGTERM while the
/// program blocks printing it.
fn sigterm_while_printing() -> Out {
    let mut feed = feed_with(5000);
    feed.cap = 10_000;
    let (_srv, _f, env) = api(feed);
    let mut child = util::command(
        env!("CARGO_BIN_EXE_socdefenders-iocs").as_ref(),
        &["--tier", "pro", "--limit", "5000"],
        &env,
    )
    .stdin(std::process::Stdio::null())
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = vec![0u8; 1000];
    stdout.read_exact(&mut first).unwrap();
    // The program is now printing, and blocked on the full pipe.
    std::thread::sleep(Duration::from_millis(200));
    // SAFETY: signals our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let mut rest = Vec::new();
    stdout.read_to_end(&mut rest).unwrap();
    first.extend(rest);
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let code = child.wait().unwrap().code().unwrap_or(-1);
    let stdout = String::from_utf8(first).unwrap();
    // Whole lines only, fewer than the page, and no checkpoint.
    assert!(stdout.ends_with('\n'), "ends inside a line");
    let n = stdout.lines().inspect(|l| {
        serde_json::from_str::<Value>(l).unwrap();
    });
    assert!(n.count() < 5000);
    assert!(!env.state_file("default").exists());
    Out {
        code,
        stdout,
        stderr,
        max_rss_kib: 0,
    }
}

/// A README row's message and the run that produces it.
type Scenario = (&'static str, Box<dyn Fn() -> Out>);

fn scenarios() -> Vec<Scenario> {
    let tls_ca = || util::tls::Ca::new("Corp Inspection CA");
    vec![
        (
            "internal error, a bug in socdefenders-iocs",
            Box::new(|| {
                let mut env = Env::new();
                env.set("SOCDEFENDERS_TEST_PANIC", "1");
                env.run(&[])
            }),
        ),
        (
            "...; see socdefenders-iocs --help",
            Box::new(|| Env::new().run(&["--no-such-option"])),
        ),
        (
            "setting ... = ... (from ...) must ...",
            Box::new(|| Env::new().run(&["--limit", "0"])),
        ),
        (
            "setting ... = ... (from ...) is not ...",
            Box::new(|| Env::new().run(&["--since", "yesterday"])),
        ),
        (
            "setting ... = ... (from ...) has unknown type ...",
            Box::new(|| Env::new().run(&["--type", "ipv5"])),
        ),
        (
            "... line ...: unknown setting ...",
            Box::new(|| with_conf("[default]\nlimt = 5\n")),
        ),
        (
            "... line ...: unknown stanza [...]",
            Box::new(|| with_conf("[inputs:x]\nlimit = 5\n")),
        ),
        (
            "... is not valid .conf syntax",
            Box::new(|| with_conf("[default]\nthis is not a setting\n")),
        ),
        (
            "no state directory: SPLUNK_HOME is not set",
            Box::new(|| {
                let mut env = Env::new();
                env.unset("SOCDEFENDERS_STATE_DIR");
                env.run(&[])
            }),
        ),
        (
            "source = taxii needs taxii_url ... and collection",
            Box::new(|| Env::new().run(&["--source", "taxii"])),
        ),
        (
            "the API rejected a parameter: HTTP 400",
            Box::new(|| status(400, "invalid_parameter")),
        ),
        (
            "no TAXII collection with id or title '...' at ...; available: ...",
            Box::new(|| taxii_run(Taxii::new(), "nope", &[])),
        ),
        (
            "the API refused the key: HTTP 401 invalid_api_key",
            Box::new(|| status(401, "invalid_api_key")),
        ),
        (
            "the API refused the key: HTTP 401 expired_api_key",
            Box::new(|| status(401, "expired_api_key")),
        ),
        (
            "the API refused the key: HTTP 401 missing_api_key",
            Box::new(|| status(401, "missing_api_key")),
        ),
        (
            "the API refused access: HTTP 403",
            Box::new(|| status(403, "forbidden")),
        ),
        (
            "the TAXII server refused the key: HTTP ...",
            Box::new(|| taxii_forced(401)),
        ),
        (
            "the API rate-limited this key (HTTP 429 ...)",
            Box::new(|| status(429, "rate_limit_exceeded")),
        ),
        (
            "...: timed out (...)",
            Box::new(|| fault(Fault::Slow(Duration::from_secs(3)), &["--timeout", "1"])),
        ),
        (
            "...: TLS failed (...); if a proxy inspects TLS, set ca_file",
            Box::new(move || {
                let ca = tls_ca();
                let (srv, _f) =
                    api::start(feed_with(1), Some(ca.server("localhost", &["localhost"])));
                let mut env = api_env(&srv);
                env.set("SSL_CERT_FILE", "/nonexistent/none.pem");
                env.run(&[])
            }),
        ),
        (
            "...: host not found for ...",
            Box::new(|| {
                Env::new().run(&[
                    "--base-url",
                    "https://nonexistent.invalid",
                    "--retries",
                    "0",
                ])
            }),
        ),
        (
            "...: could not connect to ...",
            Box::new(|| {
                // A port nothing listens on: bound, then closed.
                let port = std::net::TcpListener::bind("127.0.0.1:0")
                    .unwrap()
                    .local_addr()
                    .unwrap()
                    .port();
                Env::new().run(&[
                    "--base-url",
                    &format!("http://127.0.0.1:{port}"),
                    "--retries",
                    "0",
                ])
            }),
        ),
        (
            "... answered with a redirect (HTTP ...) to ...",
            Box::new(|| fault(Fault::Redirect("https://elsewhere.example/x".into()), &[])),
        ),
        (
            "the API answered HTTP 200 with an HTML page",
            Box::new(|| fault(Fault::Html200, &[])),
        ),
        (
            "the API's response is truncated JSON",
            Box::new(|| fault(Fault::Truncated, &[])),
        ),
        (
            "the API's response is not valid JSON of the documented shape",
            Box::new(|| fault(Fault::Body("{\"data\":[1 2]}".into()), &[])),
        ),
        (
            "...: the response is larger than max_body_bytes",
            Box::new(|| fault(Fault::Huge(2_000_000), &["--max-body-bytes", "1000000"])),
        ),
        (
            "unexpected HTTP ... from ...",
            Box::new(|| status(500, "internal")),
        ),
        (
            "... does not accept TAXII 2.1 (HTTP ...",
            Box::new(|| taxii_forced(406)),
        ),
        (
            "... answered TAXII/STIX version ..., not 2.1",
            Box::new(|| {
                let (srv, t) = tx::start(Taxii::new());
                t.lock().unwrap().answer_version = Some("2.0");
                taxii_env(&srv, "All IOCs").run(&[])
            }),
        ),
        (
            "cannot write to stdout",
            Box::new(|| {
                let (_srv, f, mut env) = api(feed_with(50));
                f.lock()
                    .unwrap()
                    .faults
                    .push_back(Fault::Slow(Duration::from_millis(300)));
                env.close_stdout = true;
                env.run(&[])
            }),
        ),
        (
            "stopped by SIGTERM while printing",
            Box::new(sigterm_while_printing),
        ),
        (
            "the checkpoint ... is corrupt",
            Box::new(|| {
                let (_srv, _f, env) = api(feed_with(1));
                std::fs::create_dir_all(env.state_dir()).unwrap();
                std::fs::write(env.state_file("default"), "{not json").unwrap();
                env.run(&[])
            }),
        ),
        (
            "the checkpoint ... has version ..., and this program reads versions 1 and 2",
            Box::new(|| {
                let (_srv, _f, env) = api(feed_with(1));
                std::fs::create_dir_all(env.state_dir()).unwrap();
                std::fs::write(env.state_file("default"), r#"{"version":3}"#).unwrap();
                env.run(&[])
            }),
        ),
        (
            "another run of input ... is still going",
            Box::new(|| {
                let (_srv, _f, env) = api(feed_with(1));
                std::fs::create_dir_all(env.state_dir()).unwrap();
                let lock = std::fs::File::create(env.state_dir().join("default.lock")).unwrap();
                lock.lock().unwrap();
                env.run(&[])
            }),
        ),
        (
            "cannot save the checkpoint",
            Box::new(|| {
                let (_srv, _f, mut env) = api(feed_with(1));
                env.file_size_limit = Some(0);
                env.run(&[])
            }),
        ),
        (
            "cannot open the lock file ... (it must be a plain file, not a link)",
            Box::new(|| {
                let (_srv, _f, env) = api(feed_with(1));
                std::fs::create_dir_all(env.state_dir()).unwrap();
                let target = env.dir.path().join("planted-target");
                std::os::unix::fs::symlink(&target, env.state_dir().join("default.lock")).unwrap();
                let out = env.run(&[]);
                assert!(!target.exists(), "the link's target was created");
                out
            }),
        ),
        (
            "no API key and no splunkd session token on stdin",
            Box::new(|| {
                let (_srv, _f, mut env) = api(feed_with(1));
                env.unset("SOCDEFENDERS_API_KEY");
                env.run(&[])
            }),
        ),
        (
            "splunkd refused the session token (HTTP 401",
            Box::new(|| {
                let (srv, _f) = api::start(feed_with(1), None);
                let sd = splunkd(200);
                let mut env = splunk_env(&srv, &sd);
                env.stdin = Some(b"expired-token\n".to_vec());
                env.run(&[])
            }),
        ),
        (
            "splunkd denied reading ... (HTTP 403)",
            Box::new(|| splunkd_answer(403)),
        ),
        (
            "cannot reach splunkd at ...",
            Box::new(|| {
                let (srv, _f) = api::start(feed_with(1), None);
                let sd = splunkd(200);
                let mut env = splunk_env(&srv, &sd);
                let port = std::net::TcpListener::bind("127.0.0.1:0")
                    .unwrap()
                    .local_addr()
                    .unwrap()
                    .port();
                env.set(
                    "SOCDEFENDERS_SPLUNKD_URL",
                    &format!("https://127.0.0.1:{port}"),
                );
                env.run(&[])
            }),
        ),
        (
            "cannot verify splunkd's certificate",
            Box::new(|| {
                let (srv, _f) = api::start(feed_with(1), None);
                let sd = splunkd(200);
                let mut env = splunk_env(&srv, &sd);
                env.unset("SPLUNK_HOME");
                env.run(&[])
            }),
        ),
        (
            "talking to splunkd at ... failed",
            Box::new(|| {
                let (srv, _f) = api::start(feed_with(1), None);
                let sd = splunkd(200);
                let env = splunk_env(&srv, &sd);
                let other = util::tls::Ca::new("Someone Else");
                std::fs::write(
                    env.dir.path().join("splunk/etc/auth/cacert.pem"),
                    &other.pem,
                )
                .unwrap();
                env.run(&[])
            }),
        ),
        (
            "splunkd_url ... is not a loopback address",
            Box::new(|| {
                let (srv, _f) = api::start(feed_with(1), None);
                let sd = splunkd(200);
                let mut env = splunk_env(&srv, &sd);
                env.set("SOCDEFENDERS_SPLUNKD_URL", "https://splunk.invalid:8089");
                env.run(&[])
            }),
        ),
        (
            "no API key in Splunk's secret store for realm TA-socdefenders username ...",
            Box::new(|| splunkd_answer(404)),
        ),
        (
            "printed ... IOCs (...)",
            Box::new(|| api(feed_with(2)).2.run(&[])),
        ),
        (
            "printed ... STIX objects as events",
            Box::new(|| {
                let mut t = Taxii::new();
                t.add("soc-defenders-all", ip_indicators(0, 2));
                taxii_run(t, "All IOCs", &[])
            }),
        ),
        (
            "rate limited by the API until ...; no request sent this run",
            Box::new(|| {
                let (_srv, f, env) = api(feed_with(1));
                f.lock().unwrap().faults.push_back(Fault::Status(
                    429,
                    json!({}),
                    vec![("Retry-After", "600".into())],
                ));
                assert_eq!(env.run(&[]).code, 4);
                env.run(&[])
            }),
        ),
        (
            "the daily request budget (...) is spent",
            Box::new(|| {
                let (_srv, _f, env) = api(feed_with(1));
                assert_eq!(env.run(&["--daily-budget", "1"]).code, 0);
                env.run(&["--daily-budget", "1"])
            }),
        ),
        (
            "... more warnings of the kind '...' in this run were not printed",
            Box::new(|| {
                fault(
                    Fault::Records(
                        (0..50)
                            .map(|i| json!({"id": format!("bad{i}"), "type": "url"}))
                            .collect(),
                    ),
                    &[],
                )
            }),
        ),
        (
            "skipped record ... of the page at offset ... (id ...): it ...",
            Box::new(|| {
                fault(
                    Fault::Records(vec![json!({"id": "no-value", "type": "ipv4"})]),
                    &[],
                )
            }),
        ),
        (
            "record ... holds an escaped lone UTF-16 surrogate",
            Box::new(|| {
                fault(Fault::Body(r#"{"data":[{"type":"url","value":"http://a/\ud800"}],"links":{"next":null}}"#.into()), &[])
            }),
        ),
        (
            "the page held invalid UTF-8",
            Box::new(|| fault(Fault::BadUtf8, &[])),
        ),
        (
            "... records in this run had a last_seen more than ... minutes ahead of this host's clock",
            Box::new(|| {
                fault(
                    Fault::Records(vec![
                        json!({"id": "f", "type": "url", "value": "v", "last_seen": "9999-12-31T23:59:59Z"}),
                    ]),
                    &[],
                )
            }),
        ),
        (
            "the server sent ... records in a page of limit ...",
            Box::new(|| {
                let recs: Vec<Value> = (0..1100)
                    .map(|i| {
                        json!({"id": format!("o{i}"), "type": "ipv4", "value": "10.0.0.1",
                                "last_seen": api::ts(1_790_000_000_000 - i as i64 * 1000)})
                    })
                    .collect();
                let (_srv, f, env) = api(feed_with(0));
                f.lock().unwrap().faults.push_back(Fault::Answer(
                    vec![("Content-Type".into(), "application/json".into())],
                    serde_json::to_vec(&json!({"data": recs, "meta": {"total": 5000}})).unwrap(),
                ));
                env.run(&["--limit", "10"])
            }),
        ),
        (
            "the backlog is growing: ... IOCs still to fetch",
            Box::new(|| {
                let mut feed = feed_with(10);
                feed.cap = 2;
                let mut n = 0;
                feed.during = Some(Box::new(move |f: &mut Feed| {
                    n += 1;
                    if n > 1 {
                        f.add(5, 1);
                    }
                }));
                let (_srv, _f, env) = api(feed);
                assert_eq!(env.run(&["--limit", "2"]).code, 0);
                env.run(&["--limit", "2"])
            }),
        ),
        (
            "the checkpoint (since=...) is older than the tier's ...-day lookback",
            Box::new(|| {
                let (_srv, _f, env) = api(feed_with(0));
                assert_eq!(env.run(&["--since", "2020-01-01T00:00:00Z"]).code, 0);
                env.run(&[])
            }),
        ),
        (
            "the filters changed since the last run",
            Box::new(|| {
                let (_srv, _f, env) = api(feed_with(3));
                assert_eq!(env.run(&["--limit", "1"]).code, 0);
                env.run(&["--limit", "1", "--confidence", "high"])
            }),
        ),
        (
            "this input's source changed from ... to ...",
            Box::new(|| {
                let mut t = Taxii::new();
                t.add("soc-defenders-all", ip_indicators(0, 1));
                let (tsrv, _t) = tx::start(t);
                let (_srv, _f, mut env) = api(feed_with(1));
                assert_eq!(env.run(&[]).code, 0);
                env.set("SOCDEFENDERS_SOURCE", "taxii");
                env.set(
                    "SOCDEFENDERS_TAXII_URL",
                    &format!("{}/api/taxii2/", tsrv.url),
                );
                env.set("SOCDEFENDERS_COLLECTION", "All IOCs");
                env.run(&[])
            }),
        ),
        (
            "forgot the ... oldest remembered versions",
            Box::new(|| {
                let (_srv, _f, env) = api(feed_with(3));
                std::fs::create_dir_all(env.state_dir()).unwrap();
                // A memory already at its cap, of versions that can still be served again.
                let recent: Vec<Value> = (0..200_000u64)
                    .map(|h| json!([4_102_444_800_000i64, h]))
                    .collect();
                let ck = json!({"version": 2, "input": "default", "source": "rest", "filters": "",
                            "cursor": null, "recent": recent, "not_before_ms": null,
                            "budget_day": "", "budget_used": 0, "last_success": null});
                std::fs::write(env.state_file("default"), ck.to_string()).unwrap();
                env.run(&[])
            }),
        ),
        (
            "limit ... is above the ... tier's ... IOCs per request",
            Box::new(|| api(feed_with(1)).2.run(&["--limit", "500"])),
        ),
        (
            "limit ... is above TAXII's 1000 objects per request",
            Box::new(|| taxii_run(Taxii::new(), "All IOCs", &["--limit", "5000"])),
        ),
        (
            "... = ... from ... applies to this ... input too, in place of the ... default of ...",
            Box::new(|| {
                let (srv, _t) = tx::start(Taxii::new());
                let env = taxii_env(&srv, "All IOCs");
                env.write_conf("local", "[default]\nlimit = 100\n");
                env.run(&[])
            }),
        ),
        (
            "...: HTTP ...; retry ... of ... in ... ms",
            Box::new(|| fault(Fault::Status(503, json!({}), vec![]), &["--retries", "1"])),
        ),
        (
            "api_key_file ... is readable by group or others",
            Box::new(|| {
                use std::os::unix::fs::PermissionsExt;
                let (_srv, _f, mut env) = api(feed_with(1));
                env.unset("SOCDEFENDERS_API_KEY");
                let f = env.dir.path().join("key");
                std::fs::write(&f, KEY).unwrap();
                std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
                env.run(&["--api-key-file", f.to_str().unwrap()])
            }),
        ),
        (
            "skipped STIX object ...: it ...",
            Box::new(|| {
                let mut t = Taxii::new();
                t.add(
                    "soc-defenders-all",
                    vec![tx::indicator(
                        1,
                        "[ipv4-addr:value = ",
                        "2026-01-01T00:00:00.000Z",
                    )],
                );
                taxii_run(t, "All IOCs", &[])
            }),
        ),
        (
            "skipped ... TAXII entries that are not STIX objects",
            Box::new(|| {
                let mut t = Taxii::new();
                t.add("soc-defenders-all", vec![json!("not an object")]);
                taxii_run(t, "All IOCs", &[])
            }),
        ),
        (
            "STIX object ... holds escaped lone UTF-16 surrogates",
            Box::new(|| {
                let mut t = Taxii::new();
                t.add(
                    "soc-defenders-all",
                    vec![tx::indicator(
                        1,
                        "[url:value = 'http://x/\u{fffd}']",
                        "2026-01-01T00:00:00.000Z",
                    )],
                );
                t.raw_surrogate = true;
                taxii_run(t, "All IOCs", &[])
            }),
        ),
        (
            "... sent invalid UTF-8 or escaped lone UTF-16 surrogates",
            Box::new(|| {
                let mut t = Taxii::new();
                t.add("soc-defenders-all", ip_indicators(0, 1));
                t.raw_surrogate = true;
                t.bundle_id = "bundle--\u{fffd}".into();
                taxii_run(t, "All IOCs", &[])
            }),
        ),
        (
            "STIX object ... has ... values, more than the ... events one object may give",
            Box::new(|| {
                let values: Vec<String> = (0..1001).map(|i| format!("'{i}.example'")).collect();
                let pattern = format!("[domain-name:value IN ({})]", values.join(","));
                let mut t = Taxii::new();
                let o = tx::indicator(1, &pattern, "2026-01-01T00:00:00.000Z");
                t.add("soc-defenders-all", vec![o]);
                taxii_run(t, "All IOCs", &[])
            }),
        ),
        (
            "the pattern of STIX object ... is ... bytes, over the ... KiB this input parses",
            Box::new(|| {
                let pattern = format!("[url:value = '{}']", "u".repeat(300_000));
                let mut t = Taxii::new();
                let o = tx::indicator(1, &pattern, "2026-01-01T00:00:00.000Z");
                t.add("soc-defenders-all", vec![o]);
                taxii_run(t, "All IOCs", &[])
            }),
        ),
        (
            "the TAXII discovery document at ... names its API root at ..., another origin than taxii_url",
            Box::new(|| {
                let mut t = Taxii::new();
                t.root_at = Some("https://taxii.elsewhere.invalid".into());
                taxii_run(t, "All IOCs", &[])
            }),
        ),
        (
            "a full page of objects all added at ..., and the server offers no next token",
            Box::new(|| {
                let mut t = Taxii::new();
                t.add("soc-defenders-all", ip_indicators(0, 5));
                taxii_run(t, "All IOCs", &["--limit", "3", "--max-pages", "5"])
            }),
        ),
        (
            "the collection keeps growing faster than it is read",
            Box::new(|| {
                let mut t = Taxii::new();
                for k in 0..10 {
                    t.add("soc-defenders-all", ip_indicators(k * 3, 3));
                }
                let (srv, _t) = tx::start(t);
                let env = taxii_env(&srv, "All IOCs");
                for _ in 0..2 {
                    assert_eq!(env.run(&["--limit", "3"]).code, 0);
                }
                env.run(&["--limit", "3"])
            }),
        ),
    ]
}

#[test]
fn every_row_of_the_readme_error_table_is_produced() {
    let rows = readme_rows();
    let scenarios = scenarios();
    let mut keys: Vec<&str> = scenarios.iter().map(|(k, _)| *k).collect();
    keys.sort_unstable();
    let mut table: Vec<&str> = rows.iter().map(|r| r.key.as_str()).collect();
    table.sort_unstable();
    assert_eq!(table, keys, "README rows and scenarios differ");
    let mut exits = std::collections::BTreeSet::new();
    let mut failed = Vec::new();
    for (key, run) in scenarios {
        let row = rows.iter().find(|r| r.key == key).unwrap();
        let out = run();
        let log = out.log();
        let hit = log
            .iter()
            .find(|l| l["level"] == row.level && matches(&l["msg"], key));
        if out.code != row.exit || hit.is_none() {
            failed.push(format!(
                "{key}: exit {} (README {}), level {}:\n{}",
                out.code, row.exit, row.level, out.stderr
            ));
        }
        if row.level == "ERROR" {
            let errors = log.iter().filter(|l| l["level"] == "ERROR").count();
            if errors != 1 || log.last().is_some_and(|l| l["level"] != "ERROR") {
                failed.push(format!(
                    "{key}: the ERROR line must be the one and last line:\n{}",
                    out.stderr
                ));
            }
            if let Some(h) = hit
                && h.get("exit").map(String::as_str) != Some(&out.code.to_string())
            {
                failed.push(format!("{key}: exit= says {:?}", h.get("exit")));
            }
        }
        exits.insert(out.code);
    }
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
    assert_eq!(
        exits.into_iter().collect::<Vec<_>>(),
        (0..=9).collect::<Vec<_>>()
    );
}

/// The README's exit code table says what `--help` says, code for code.
#[test]
fn exit_codes_are_the_same_in_the_readme_and_help() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme.find("| Code | Meaning |").unwrap();
    let codes: Vec<u8> = readme[start..]
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            l.split(" | ")
                .next()
                .unwrap()
                .trim_start_matches("| ")
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(codes, (0..=9).collect::<Vec<u8>>());
    let help = Env::new().run(&["--help"]).stdout;
    let tail = &help[help.find("Exit codes:").unwrap()..];
    for c in 0..=9 {
        assert!(
            tail.contains(&format!("{c} ")),
            "--help lacks exit code {c}"
        );
    }
    assert!(
        tail.contains(
            "0 ok (also nothing new, waiting out a rate limit, or the daily budget spent)"
        )
    );
}

//! Test helpers: a loopback server that follows the documented SOC Defenders API (and injects
//! faults), TLS certificates from a private CA, and a runner for the real binary with a
//! scrubbed environment.

#![allow(dead_code)]

pub mod api;
pub mod pty;
pub mod taxii;
pub mod tls;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

/// Fake key used everywhere; the runner fails any test whose output contains it.
pub const KEY: &str = "sk_test_FAKEKEY0000";

pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// The run's peak resident memory, KiB, when it ran under [`run_measured`].
    pub max_rss_kib: u64,
}

impl Out {
    /// stdout parsed as one JSON object per line.
    pub fn events(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line {l:?}: {e}")))
            .collect()
    }
    /// stderr lines parsed as `key=value` maps (the quoted msg included).
    pub fn log(&self) -> Vec<HashMap<String, String>> {
        self.stderr.lines().map(parse_kv).collect()
    }
    pub fn errors(&self) -> Vec<HashMap<String, String>> {
        self.log()
            .into_iter()
            .filter(|l| l["level"] == "ERROR")
            .collect()
    }
    pub fn has_level(&self, level: &str, needle: &str) -> bool {
        self.log()
            .iter()
            .any(|l| l["level"] == level && l.get("msg").is_some_and(|m| m.contains(needle)))
    }
}

/// RFC 3339 in UTC from epoch microseconds, whole seconds or with microseconds. Written here on
/// purpose rather than borrowed from the crate, so the test servers do not share its bugs.
pub fn utc(us: i64, micros: bool) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000).unwrap();
    let base = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    if micros {
        format!("{base}.{:06}Z", t.microsecond())
    } else {
        format!("{base}Z")
    }
}

/// Epoch microseconds of an RFC 3339 timestamp.
pub fn parse_us(s: &str) -> i64 {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap();
    (t.unix_timestamp_nanos() / 1000) as i64
}

/// Parses `LEVEL level=LEVEL input=Y msg="..."`; panics on a line that is not of that form.
/// The leading level word is what splunkd files the line at (unless a line starts with it,
/// splunkd logs it as an ERROR), so it must be there and agree with `level=`.
pub fn parse_kv(line: &str) -> HashMap<String, String> {
    let mut map = HashMap::new();
    let (word, mut rest) = line
        .split_once(' ')
        .unwrap_or_else(|| panic!("no level word: {line:?}"));
    assert!(
        ["INFO", "WARN", "ERROR"].contains(&word),
        "the line must start with INFO, WARN or ERROR: {line:?}"
    );
    while !rest.is_empty() {
        let (k, after) = rest
            .split_once('=')
            .unwrap_or_else(|| panic!("not key=value: {line:?}"));
        let (v, next) = if let Some(q) = after.strip_prefix('"') {
            let end = q
                .find('"')
                .unwrap_or_else(|| panic!("unterminated quote: {line:?}"));
            (&q[..end], q[end + 1..].trim_start())
        } else {
            match after.split_once(' ') {
                Some((v, n)) => (v, n),
                None => (after, ""),
            }
        };
        map.insert(k.trim().to_string(), v.to_string());
        rest = next;
    }
    assert!(
        map.contains_key("level") && map.contains_key("msg"),
        "{line:?}"
    );
    assert_eq!(map["level"], word, "{line:?}");
    map
}

/// A temp folder with a state dir, and the environment a run gets.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub vars: Vec<(String, String)>,
    pub stdin: Option<Vec<u8>>,
    pub close_stdout: bool,
    /// RLIMIT_FSIZE for the run (with SIGXFSZ ignored, so writes fail with EFBIG): makes
    /// every file write fail, even for root.
    pub file_size_limit: Option<u64>,
    /// The umask the run starts with.
    pub umask: Option<u32>,
}

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let mut e = Env {
            dir,
            vars: Vec::new(),
            stdin: None,
            close_stdout: false,
            file_size_limit: None,
            umask: None,
        };
        let state = e.state_dir();
        e.set("SOCDEFENDERS_STATE_DIR", state.to_str().unwrap());
        e.set("SOCDEFENDERS_API_KEY", KEY);
        // An app folder with no .conf files, so the developer's files never leak in.
        let app = e.dir.path().join("app");
        std::fs::create_dir_all(&app).unwrap();
        e.set("SOCDEFENDERS_APP_DIR", app.to_str().unwrap());
        e
    }
    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }
    pub fn app_dir(&self) -> PathBuf {
        self.dir.path().join("app")
    }
    pub fn set(&mut self, k: &str, v: &str) -> &mut Env {
        self.vars.retain(|(a, _)| a != k);
        self.vars.push((k.into(), v.into()));
        self
    }
    pub fn unset(&mut self, k: &str) -> &mut Env {
        self.vars.retain(|(a, _)| a != k);
        self
    }
    pub fn state_file(&self, input: &str) -> PathBuf {
        self.state_dir().join(format!("{input}.json"))
    }
    pub fn state(&self, input: &str) -> Value {
        serde_json::from_slice(&std::fs::read(self.state_file(input)).unwrap()).unwrap()
    }
    pub fn write_conf(&self, sub: &str, text: &str) {
        let d = self.app_dir().join(sub);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("socdefenders.conf"), text).unwrap();
    }

    /// Runs the binary with exactly these variables (plus PATH) and checks the key never leaks.
    pub fn run(&self, args: &[&str]) -> Out {
        run_bin(env!("CARGO_BIN_EXE_socdefenders-iocs").as_ref(), args, self)
    }
}

/// The command for a run of `bin` in `env`.
pub fn command(bin: &Path, args: &[&str], env: &Env) -> Command {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(bin);
    cmd.args(args).env_clear().env("PATH", "/usr/bin:/bin");
    for (k, v) in &env.vars {
        cmd.env(k, v);
    }
    let (fsize, umask) = (env.file_size_limit, env.umask);
    if fsize.is_some() || umask.is_some() {
        // SAFETY: only async-signal-safe calls (setrlimit, signal, umask) between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if let Some(n) = fsize {
                    let lim = libc::rlimit {
                        rlim_cur: n,
                        rlim_max: n,
                    };
                    libc::setrlimit(libc::RLIMIT_FSIZE, &lim);
                    libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                }
                if let Some(m) = umask {
                    libc::umask(m as libc::mode_t);
                }
                Ok(())
            });
        }
    }
    cmd
}

pub fn run_bin(bin: &Path, args: &[&str], env: &Env) -> Out {
    let mut cmd = command(bin, args, env);
    cmd.stdin(if env.stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(input) = &env.stdin {
        let mut si = child.stdin.take().unwrap();
        si.write_all(input).unwrap();
    }
    let mut stdout = String::new();
    if env.close_stdout {
        drop(child.stdout.take());
    } else {
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut stdout)
            .unwrap();
    }
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let code = child.wait().unwrap().code().unwrap_or(-1);
    for text in [&stdout, &stderr] {
        assert!(!text.contains(KEY), "the API key leaked:\n{text}");
    }
    Out {
        code,
        stdout,
        stderr,
        max_rss_kib: 0,
    }
}

/// [`run_bin`] through the `peak_rss` example (a small launcher: see its header for why),
/// with the run's own peak RSS in `max_rss_kib`.
pub fn run_measured(bin: &Path, args: &[&str], env: &Env) -> Out {
    let launcher = std::env::current_exe()
        .unwrap()
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("examples/peak_rss");
    assert!(
        launcher.exists(),
        "{} is built by cargo test",
        launcher.display()
    );
    let report = env.dir.path().join("peak_rss.txt");
    let mut full = vec![report.to_str().unwrap(), bin.to_str().unwrap()];
    full.extend_from_slice(args);
    let mut out = run_bin(&launcher, &full, env);
    let text = std::fs::read_to_string(&report).unwrap();
    let field = |k: &str| {
        text.split_whitespace()
            .find_map(|f| f.strip_prefix(k))
            .unwrap()
            .trim()
            .to_string()
    };
    out.code = field("exit=").parse().unwrap();
    out.max_rss_kib = field("peak_rss_kib=").parse().unwrap();
    out
}

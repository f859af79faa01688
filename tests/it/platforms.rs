//! The other platforms' binaries, run here from the packaged app: Linux aarch64 under QEMU
//! user-mode emulation (Debian's `qemu-user-static`; no binfmt registration, so QEMU is
//! called explicitly), Windows x86_64 under Wine (Debian's `wine64`, with a stand-in
//! `bcryptprimitives.dll` built from `tests/platform/processprng.c`: Wine 8 lacks that DLL,
//! which every Rust 1.78+ program imports), and the Linux launcher's choice of binary.
//! `make platforms` runs them with SOCDEFENDERS_SPL (the .spl), SOCDEFENDERS_PRNG_DLL and
//! SOCDEFENDERS_WINEPREFIX (a Wine prefix kept between runs: making one takes 10-30 s).

use super::*;
use std::path::{Path, PathBuf};
use util::Out;

/// The packaged app, extracted under `env`'s folder as `$SPLUNK_HOME/etc/apps`.
pub fn unpack_app(env: &Env) -> PathBuf {
    let spl = std::env::var("SOCDEFENDERS_SPL").expect("SOCDEFENDERS_SPL names the .spl to test");
    let apps = env.dir.path().join("splunk/etc/apps");
    std::fs::create_dir_all(&apps).unwrap();
    let st = std::process::Command::new("tar")
        .args(["-xzf", &spl, "-C"])
        .arg(&apps)
        .status()
        .unwrap();
    assert!(st.success());
    apps.join("TA-socdefenders")
}

/// An environment whose binary finds its own app (no SOCDEFENDERS_APP_DIR) and the API.
fn platform_env(srv: &Server) -> Env {
    let mut env = api_env(srv);
    env.unset("SOCDEFENDERS_APP_DIR");
    env
}

/// What every platform must do with the same loopback API: one page printed and the
/// checkpoint saved; a second run printing nothing new; a 401 as exit 3 in one line.
fn the_same_runs(name: &str, run: &dyn Fn(&Env, &[&str]) -> Out, env_for: &dyn Fn(&Server) -> Env) {
    let (srv, _feed) = api::start(feed_with(3), None);
    let env = env_for(&srv);
    let out = run(&env, &["-index", "main"]);
    assert_eq!(out.code, 0, "{name}: {}", out.stderr);
    assert_eq!(out.events().len(), 3, "{name}: {}", out.stdout);
    assert!(!out.stdout.contains('\r'), "{name}: CR in events");
    assert!(
        out.has_level("INFO", "printed 3 IOCs"),
        "{name}: {}",
        out.stderr
    );
    assert!(!out.stderr.contains('\r'), "{name}: CR in log lines");
    let state = env.state("default");
    assert_eq!(state["version"], 2, "{name}");
    let out = run(&env, &["-index", "main"]);
    assert_eq!(out.code, 0, "{name}: {}", out.stderr);
    assert_eq!(out.events().len(), 0, "{name}: nothing new");
    let mut wrong = env_for(&srv);
    wrong.set("SOCDEFENDERS_API_KEY", "sk_test_WRONGKEY000");
    let out = run(&wrong, &[]);
    assert_eq!(out.code, 3, "{name}: {}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{name}: {}", out.stderr);
    assert_eq!(out.errors()[0]["error"], "auth", "{name}");
    assert!(out.stdout.is_empty());
}

#[test]
#[ignore = "needs the .spl and qemu-user-static: make platforms"]
fn aarch64_binary_under_qemu() {
    let qemu = Path::new("/usr/bin/qemu-aarch64-static");
    assert!(qemu.exists(), "qemu-user-static is not installed");
    let holder = Env::new();
    let app = unpack_app(&holder);
    let bin = app.join("bin/linux_aarch64/socdefenders-iocs");
    let run = |env: &Env, args: &[&str]| {
        let mut full = vec![bin.to_str().unwrap()];
        full.extend_from_slice(args);
        util::run_bin(qemu, &full, env)
    };
    the_same_runs("aarch64", &run, &platform_env);
    // The binary found its app from its own place (bin/linux_aarch64/): the shipped settings.
    let (srv, _feed) = api::start(feed_with(1), None);
    let out = run(&platform_env(&srv), &["--print-config", "--input", "taxii"]);
    assert!(out.stdout.contains("limit = 1000 "), "{}", out.stdout);
}

/// `path` as Windows sees it under Wine (drive Z: is the Unix root).
fn windows_path(path: &Path) -> String {
    format!("Z:{}", path.to_str().unwrap().replace('/', "\\"))
}

/// A Wine prefix, made once and kept (SOCDEFENDERS_WINEPREFIX).
fn wine_prefix() -> PathBuf {
    let prefix = PathBuf::from(
        std::env::var("SOCDEFENDERS_WINEPREFIX").expect("SOCDEFENDERS_WINEPREFIX: a folder"),
    );
    if !prefix.join("system.reg").exists() {
        let st = std::process::Command::new(WINE)
            .arg("wineboot")
            .arg("--init")
            .env("WINEPREFIX", &prefix)
            .env("WINEDEBUG", "-all")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "wineboot failed");
    }
    prefix
}

const WINE: &str = "/usr/lib/wine/wine64";

#[test]
#[ignore = "needs the .spl, wine64 and the stand-in DLL: make platforms"]
fn windows_binary_under_wine() {
    assert!(Path::new(WINE).exists(), "wine64 is not installed");
    let prefix = wine_prefix();
    let holder = Env::new();
    let app = unpack_app(&holder);
    let exe = app.join("bin/socdefenders-iocs.exe");
    // Test-only, beside the binary (the application folder is searched first).
    let dll = std::env::var("SOCDEFENDERS_PRNG_DLL").expect("SOCDEFENDERS_PRNG_DLL");
    std::fs::copy(dll, app.join("bin/bcryptprimitives.dll")).unwrap();
    let exe_win = windows_path(&exe);
    let run = |env: &Env, args: &[&str]| {
        let mut full = vec![exe_win.as_str()];
        full.extend_from_slice(args);
        util::run_bin(Path::new(WINE), &full, env)
    };
    let env_for = |srv: &Server| {
        let mut env = platform_env(srv);
        env.set("WINEPREFIX", prefix.to_str().unwrap());
        env.set("WINEDEBUG", "-all");
        let home = env.dir.path().to_str().unwrap().to_string();
        env.set("HOME", &home);
        // Windows paths, as splunkd on Windows gives them.
        let state = windows_path(&env.state_dir());
        env.set("SOCDEFENDERS_STATE_DIR", &state);
        env
    };
    the_same_runs("windows", &run, &env_for);
    // $SPLUNK_HOME in Windows form: the checkpoint goes under var\lib\splunk\modinputs, and
    // the binary reads the app's own default\socdefenders.conf.
    let (srv, _feed) = api::start(feed_with(2), None);
    let mut env = env_for(&srv);
    env.unset("SOCDEFENDERS_STATE_DIR");
    let home = env.dir.path().join("splunk");
    env.set("SPLUNK_HOME", &windows_path(&home));
    let out = run(&env, &["--input", "ipv4"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        home.join("var/lib/splunk/modinputs/TA-socdefenders/ipv4.json")
            .exists(),
        "{}",
        out.stderr
    );
    assert_eq!(
        srv.last().query["type"],
        "ipv4",
        "[input:ipv4] of the app's own .conf"
    );
}

#[test]
#[ignore = "needs the .spl and qemu-user-static: make platforms"]
fn the_launcher_picks_the_hosts_binary() {
    let (srv, _feed) = api::start(feed_with(2), None);
    let mut env = platform_env(&srv);
    let app = unpack_app(&env);
    let launcher = app.join("bin/socdefenders-iocs");
    // This host (x86_64): the x86_64 binary, with the arguments, stdout and exit code.
    let out = util::run_bin(&launcher, &["-index", "main"], &env);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.events().len(), 2);
    // A host that says it is aarch64 (a stand-in uname): the aarch64 binary, run here by
    // QEMU through a wrapper that leaves a mark.
    let fake = env.dir.path().join("fakebin");
    std::fs::create_dir_all(&fake).unwrap();
    let uname = |m: &str| {
        let f = fake.join("uname");
        std::fs::write(
            &f,
            format!("#!/bin/sh\ncase \"$1\" in -m) echo {m} ;; *) echo Linux ;; esac\n"),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    let arm = app.join("bin/linux_aarch64");
    std::fs::rename(
        arm.join("socdefenders-iocs"),
        arm.join("socdefenders-iocs.real"),
    )
    .unwrap();
    let mark = env.dir.path().join("ran-aarch64");
    std::fs::write(
        arm.join("socdefenders-iocs"),
        format!(
            "#!/bin/sh\necho > {}\nexec /usr/bin/qemu-aarch64-static \"${{0%/*}}/socdefenders-iocs.real\" \"$@\"\n",
            mark.display()
        ),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            arm.join("socdefenders-iocs"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
    }
    // Both ways the launcher learns the CPU: /proc/sys/kernel/arch (played by a file), and
    // `uname -m` where that file does not exist (kernels before 6.1).
    env.set("PATH", &format!("{}:/usr/bin:/bin", fake.display()));
    let arch_file = env.dir.path().join("arch");
    for via_uname in [false, true] {
        let _ = std::fs::remove_file(&mark);
        if via_uname {
            uname("aarch64");
            env.set("SOCDEFENDERS_ARCH_FILE", "/nonexistent");
        } else {
            uname("x86_64");
            std::fs::write(&arch_file, "aarch64\n").unwrap();
            env.set("SOCDEFENDERS_ARCH_FILE", arch_file.to_str().unwrap());
        }
        let out = util::run_bin(&launcher, &["--input", "ipv4", "-index", "main"], &env);
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(
            mark.exists(),
            "the aarch64 binary ran (via uname: {via_uname})"
        );
        assert_eq!(srv.last().query["type"], "ipv4");
    }
    // A CPU with no binary: one ERROR line naming the input, exit 2.
    uname("s390x");
    let out = util::run_bin(&launcher, &["--input", "ipv4"], &env);
    assert_eq!(out.code, 2, "{}", out.stderr);
    let errs = out.errors();
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert_eq!(errs[0]["input"], "ipv4");
    assert_eq!(errs[0]["exit"], "2");
    assert!(
        errs[0]["msg"].contains("no socdefenders-iocs binary for this platform (Linux s390x)"),
        "{}",
        errs[0]["msg"]
    );
}

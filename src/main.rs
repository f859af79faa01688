//! `socdefenders-iocs`: a Splunk scripted input for SOC Defenders IOCs.
//!
//! `main` only turns the result of `run` into an exit code and, on failure, one stderr line:
//! usage errors, settings and runtime errors, and panics (a bug) alike.

use std::process::ExitCode;

use socdefenders_iocs::{cli, error, log, output, run};

use clap::Parser;

/// musl's allocator hands memory back to the kernel as soon as a size class empties, so a
/// short run spends much of its time in mmap, munmap and the page faults after them (about
/// 60 of each on a run with nothing to do). dlmalloc (the allocator Rust's own std uses on
/// wasm) keeps freed memory for reuse: a third less time for a 100-IOC run. See BENCHMARKS.md.
#[global_allocator]
static ALLOC: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

/// A panic is a bug: one ERROR line that says so, and exit 1 (not an abort's core dump and
/// several lines in splunkd.log).
fn on_panic(info: &std::panic::PanicHookInfo<'_>) {
    let payload = info.payload();
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into());
    let at = info
        .location()
        .map(|l| format!(" at {}:{}", l.file(), l.line()))
        .unwrap_or_default();
    log::flush_notes();
    log::error(
        error::Kind::Internal.name(),
        1,
        &format!(
            "internal error, a bug in socdefenders-iocs: {what}{at}; the checkpoint did not move. Please report this line"
        ),
    );
    std::process::exit(1);
}

/// A command line clap refused: one ERROR line with clap's first line.
fn usage_error(e: &clap::Error, args: &[std::ffi::OsString]) -> ExitCode {
    if let Some(input) = cli::input_arg(args) {
        log::set_input(&input);
    }
    let text = e.to_string();
    let first = text.lines().next().unwrap_or("invalid command line");
    let first = first.strip_prefix("error: ").unwrap_or(first);
    let kind = error::Kind::Usage;
    log::error(
        kind.name(),
        kind.exit_code(),
        &format!("{first}; see socdefenders-iocs --help"),
    );
    ExitCode::from(kind.exit_code())
}

/// The error and its causes on one line, each cause only if the text so far does not
/// already say it (messages often quote their cause).
fn one_line(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let c = cause.to_string();
        if text.is_empty() {
            text = c;
        } else if !text.contains(&c) {
            text = format!("{text}: {c}");
        }
    }
    text
}

fn main() -> ExitCode {
    std::panic::set_hook(Box::new(on_panic));
    output::term::install();
    let args = cli::strip_splunkd_index(std::env::args_os().collect());
    let cli = match cli::Cli::try_parse_from(&args) {
        Ok(c) => c,
        // --help and --version: clap prints them on stdout.
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => return usage_error(&e, &args),
    };
    #[cfg(debug_assertions)]
    if std::env::var_os("SOCDEFENDERS_TEST_PANIC").is_some() {
        // Test hook, absent from release builds.
        panic!("test panic");
    }
    let result = run::main(cli);
    log::flush_notes();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let kind = error::kind_of(&err);
            let code = kind.exit_code();
            log::error(kind.name(), code, &one_line(&err));
            ExitCode::from(code)
        }
    }
}

//! `socdefenders-iocs`: a Splunk scripted input for SOC Defenders IOCs.
//!
//! `main` only turns the result of `run` into an exit code and, on failure, one stderr line.

use std::process::ExitCode;

use socdefenders_iocs::{cli, error, log, run};

use clap::Parser;

/// musl's allocator hands memory back to the kernel as soon as a size class empties, so a
/// short run spends much of its time in mmap, munmap and the page faults after them (about
/// 60 of each on a run with nothing to do). dlmalloc (the allocator Rust's own std uses on
/// wasm) keeps freed memory for reuse: a third less time for a 100-IOC run. See BENCHMARKS.md.
#[global_allocator]
static ALLOC: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

fn main() -> ExitCode {
    let args = cli::strip_splunkd_index(std::env::args_os().collect());
    let cli = match cli::Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match run::main(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let kind = error::kind_of(&err);
            let code = kind.exit_code();
            log::error(kind.name(), code, &format!("{err:#}"));
            ExitCode::from(code)
        }
    }
}

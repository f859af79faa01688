//! `peak_rss OUT_FILE CMD [ARGS...]`: runs CMD with this process's stdio and environment and
//! writes `exit=<code> peak_rss_kib=<n>` to OUT_FILE, n being CMD's own peak resident memory.
//!
//! Linux carries a process's memory high-water mark into the children it spawns, so a large
//! parent (a test harness holding the bodies it serves) cannot measure a child with
//! getrusage or wait4 directly. This launcher is small, so what CMD inherits from it is too.
//! The integration tests run the binary through it for their memory bounds.

use std::process::Command;

fn main() {
    let mut args = std::env::args_os().skip(1);
    let (Some(out), Some(cmd)) = (args.next(), args.next()) else {
        eprintln!("usage: peak_rss OUT_FILE CMD [ARGS...]");
        std::process::exit(2);
    };
    let child = Command::new(cmd).args(args).spawn().expect("spawn");
    let mut status = 0;
    // SAFETY: rusage is plain data that wait4 fills; the pid is our own unreaped child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4: {}", std::io::Error::last_os_error());
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    std::fs::write(
        out,
        format!("exit={code} peak_rss_kib={}\n", usage.ru_maxrss),
    )
    .expect("write");
    std::process::exit(0);
}

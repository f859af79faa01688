//! A pseudo-terminal for a child, made with the C library's own calls (no `script` or other
//! tool): the child gets it as its controlling terminal and stdio, so `/dev/tty` works.

use std::ffi::CStr;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

/// Runs `cmd` on a new pseudo-terminal, types `input` into it, and returns what it printed
/// there (stdout and stderr together, with the terminal's \r\n) and its exit code.
pub fn run(mut cmd: Command, input: &[u8]) -> (String, i32) {
    // SAFETY: plain libc calls on fds this function owns; pre_exec only makes
    // async-signal-safe calls.
    let (master, slave) = unsafe {
        let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
        assert!(m >= 0, "posix_openpt: {}", std::io::Error::last_os_error());
        assert_eq!(libc::grantpt(m), 0);
        assert_eq!(libc::unlockpt(m), 0);
        let mut name = [0 as libc::c_char; 128];
        assert_eq!(libc::ptsname_r(m, name.as_mut_ptr(), name.len()), 0);
        let path = CStr::from_ptr(name.as_ptr());
        let s = libc::open(path.as_ptr(), libc::O_RDWR | libc::O_NOCTTY);
        assert!(s >= 0, "open slave: {}", std::io::Error::last_os_error());
        (OwnedFd::from_raw_fd(m), OwnedFd::from_raw_fd(s))
    };
    cmd.stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave));
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    drop(cmd);
    let mut master = std::fs::File::from(master);
    let mut writer = master.try_clone().unwrap();
    let typed = input.to_vec();
    let typist = std::thread::spawn(move || {
        // One line at a time, as a person types, each after the program had time to ask.
        for line in typed.split_inclusive(|&b| b == b'\n') {
            std::thread::sleep(std::time::Duration::from_millis(300));
            if writer.write_all(line).is_err() {
                break;
            }
        }
    });
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    // The read ends with EIO once the child closed its side.
    while let Ok(n) = master.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    let code = child.wait().unwrap().code().unwrap_or(-1);
    let _ = typist.join();
    (String::from_utf8_lossy(&out).into_owned(), code)
}

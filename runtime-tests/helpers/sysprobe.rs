//! `sysprobe PROBE...`: a static helper the tests copy into a container's
//! rootfs (busybox has no way to make an arbitrary system call). Built by
//! `build.rs` with `-C target-feature=+crt-static`, without any crate.
//!
//! Each probe prints one line, `PROBE: RESULT`:
//! - a number `N`: `syscall(N, 0, 0, 0, 0, 0, 0)`, e.g. `1000: errno 38`;
//! - `clone3`: `clone3(NULL, 0)` (the kernel itself answers EINVAL, so
//!   anything else is the seccomp filter's answer);
//! - `thread`: starts and joins a thread (glibc tries clone3 first and falls
//!   back to clone only on ENOSYS): `thread: ok` or `thread: errno N`;
//! - `mkdir:PATH`: `mkdir(PATH, 0755)`: `ok` or `errno N`.

use std::ffi::CString;
use std::io::Error;

unsafe extern "C" {
    fn syscall(number: i64, ...) -> i64;
    fn mkdir(path: *const std::ffi::c_char, mode: u32) -> i32;
}

const SYS_CLONE3: i64 = 435;

fn answer(ret: i64) -> String {
    if ret == -1 {
        format!("errno {}", Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        format!("ok {ret}")
    }
}

fn probe(what: &str) -> String {
    if let Ok(nr) = what.parse::<i64>() {
        // SAFETY: all-zero arguments; only unknown or harmless numbers are probed.
        return answer(unsafe { syscall(nr, 0i64, 0i64, 0i64, 0i64, 0i64, 0i64) });
    }
    if what == "clone3" {
        // SAFETY: a NULL clone_args of size 0 is refused by the kernel (EINVAL).
        return answer(unsafe { syscall(SYS_CLONE3, 0i64, 0i64) });
    }
    if what == "thread" {
        return match std::thread::Builder::new().spawn(|| 7) {
            Ok(handle) => match handle.join() {
                Ok(7) => "ok".to_string(),
                _ => "joined badly".to_string(),
            },
            Err(err) => format!("errno {}", err.raw_os_error().unwrap_or(0)),
        };
    }
    if let Some(path) = what.strip_prefix("mkdir:") {
        let path = CString::new(path).expect("no NUL in the path");
        // SAFETY: a valid NUL-terminated path.
        let ret = unsafe { mkdir(path.as_ptr(), 0o755) };
        return if ret == 0 { "ok".to_string() } else { answer(-1) };
    }
    format!("unknown probe {what:?}")
}

fn main() {
    for what in std::env::args().skip(1) {
        println!("{what}: {}", probe(&what));
    }
}

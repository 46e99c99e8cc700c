//! Builds `helpers/sysprobe.rs` into a static executable (glibc's `libc.a`,
//! which every machine that links Rust has) that the tests put into a
//! container's rootfs; the tests embed it with `include_bytes!`, so the test
//! binaries stay self-contained (the cgroup v2 VM run copies only them).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let src = "helpers/sysprobe.rs";
    println!("cargo:rerun-if-changed={src}");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR")).join("sysprobe");
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let status = Command::new(rustc)
        .args([
            "--edition",
            "2024",
            "--crate-name",
            "sysprobe",
            "-O",
            "-C",
            "target-feature=+crt-static",
            "-C",
            "panic=abort",
            "-C",
            "strip=symbols",
            "-o",
        ])
        .arg(&out)
        .arg(src)
        .status()
        .expect("run rustc for helpers/sysprobe.rs");
    assert!(status.success(), "building helpers/sysprobe.rs failed");
}

//! Link options for the runvz binary (not its dependencies), each used only
//! where a probe shows the toolchain takes it and the result runs: the
//! options are lld's and glibc's, and another linker or an older glibc still
//! builds a working runvz, only a larger one.
//!
//! Why: a runvz process lives for milliseconds, and its resident memory is
//! mostly the pages of its own binary that the kernel maps for it (make bench,
//! "peak RSS of run").
use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let hot = manifest.join("hack/hot-functions.txt");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed={}", hot.display());

    let gnu_linux = env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu");
    if !gnu_linux {
        return;
    }
    // Packed relative relocations (DT_RELR, glibc >= 2.36): a position-
    // independent binary's relocation table is read whole at every start;
    // packed, it is 3 pages instead of 190.
    let relr = "-Wl,-z,pack-relative-relocs".to_string();
    // The functions a start runs, placed first and together (hack/layout.sh):
    // the kernel maps 64 KiB around each page touched, so hot code spread
    // over the whole .text makes nearly all of it resident. Names the linker
    // does not find (a stale list) are skipped without a warning.
    let order = format!("-Wl,--symbol-ordering-file={}", hot.display());
    let quiet = "-Wl,--no-warn-symbol-ordering".to_string();

    if links_and_runs(std::slice::from_ref(&relr)) {
        println!("cargo:rustc-link-arg-bins={relr}");
    }
    if hot.exists() && links_and_runs(&[order.clone(), quiet.clone()]) {
        println!("cargo:rustc-link-arg-bins={order}");
        println!("cargo:rustc-link-arg-bins={quiet}");
    }
}

/// Whether an empty program linked with `args` builds and runs here.
fn links_and_runs(args: &[String]) -> bool {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    let src = out.join("probe.rs");
    let bin = out.join("probe");
    if std::fs::write(&src, "fn main() {}\n").is_err() {
        return false;
    }
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let mut cmd = Command::new(rustc);
    cmd.arg("--edition=2021").arg("-o").arg(&bin).arg(&src);
    if let Ok(target) = env::var("TARGET") {
        cmd.arg("--target").arg(target);
    }
    for a in args {
        cmd.arg("-C").arg(format!("link-arg={a}"));
    }
    let built = cmd.output().map(|o| o.status.success()).unwrap_or(false);
    built && runs(&bin)
}

fn runs(bin: &Path) -> bool {
    Command::new(bin)
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

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
    if links_and_runs(std::slice::from_ref(&relr)) {
        println!("cargo:rustc-link-arg-bins={relr}");
    }
    // The functions a start runs, placed first and together (hack/layout.sh):
    // the kernel maps 64 KiB around each page touched, so hot code spread
    // over the whole .text makes nearly all of it resident.
    if let Ok(list) = std::fs::read_to_string(&hot) {
        let args = hot_layout(&list);
        if links_and_runs(&args) {
            for arg in args {
                println!("cargo:rustc-link-arg-bins={arg}");
            }
        }
    }
}

/// Link arguments that place the listed functions first. Most names are
/// exact: the linker's symbol ordering, which skips names it does not find
/// (a stale list) without a warning. A name ThinLTO gave a `.llvm.<module
/// hash>` suffix changes with any change to its module, so those are matched
/// without the suffix, in a section of their own just before .text, where the
/// ordered functions begin.
fn hot_layout(list: &str) -> Vec<String> {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    let (mut exact, mut script) = (
        String::new(),
        String::from("SECTIONS {\n  .text.runvz_hot : {\n"),
    );
    for name in list
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        match name.split_once(".llvm.") {
            Some((stem, _)) => script.push_str(&format!(
                "    *(.text.{stem}.llvm.* .text.unlikely.{stem}.llvm.*)\n"
            )),
            None => {
                exact.push_str(name);
                exact.push('\n');
            }
        }
    }
    script.push_str("  }\n}\nINSERT BEFORE .text;\n");
    let (order, ld) = (
        out.join("hot-functions.order"),
        out.join("hot-functions.ld"),
    );
    if std::fs::write(&order, exact).is_err() || std::fs::write(&ld, script).is_err() {
        return Vec::new();
    }
    vec![
        format!("-Wl,--symbol-ordering-file={}", order.display()),
        "-Wl,--no-warn-symbol-ordering".to_string(),
        format!("-Wl,-T,{}", ld.display()),
    ]
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

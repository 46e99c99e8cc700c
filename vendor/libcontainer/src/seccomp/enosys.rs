//! runvz: runc's "-ENOSYS stub" (runc 1.1's `patchbpf`), written anew.
//!
//! A profile whose default action denies (errno, kill, trap) makes every
//! system call it does not name fail with that action, including calls newer
//! than the profile. C libraries probe new calls and fall back only on ENOSYS
//! (glibc's `pthread_create` and `posix_spawn` try `clone3` first, then
//! `clone`), so a denied new call must look like one the kernel lacks. runc
//! therefore puts a short program in front of libseccomp's: per architecture
//! the profile lists, a call whose number is larger than the largest number
//! the profile names on that architecture returns ENOSYS; everything else
//! goes on to the profile's own filter. No stub is made for a permissive
//! default action (allow, log, trace), nor when the profile lists no
//! architectures, nor when the default already answers ENOSYS.
//!
//! The filter is then loaded by `seccomp(2)` here rather than by libseccomp,
//! which cannot load a program it did not generate.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::{FromRawFd, RawFd};

use libseccomp::{ScmpArch, ScmpFilterContext, ScmpSyscall};
use oci_spec::runtime::{Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag};

use super::{SeccompError, translate_arch};

type Result<T> = std::result::Result<T, SeccompError>;

const SECCOMP_DATA_NR: u32 = 0;
const SECCOMP_DATA_ARCH: u32 = 4;
/// An x32 call on x86_64 has this bit set in its number.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;
const RET_ENOSYS: u32 = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;

const OP_LD_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const OP_JA: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;
const OP_JEQ: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const OP_JGT: u16 = (libc::BPF_JMP | libc::BPF_JGT | libc::BPF_K) as u16;
const OP_JSET: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
const OP_RET: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

// AUDIT_ARCH_* (<linux/audit.h>): what the kernel puts in seccomp_data.arch.
const EM_64: u32 = 0x8000_0000;
const EM_LE: u32 = 0x4000_0000;
const MIPS64_N32: u32 = 0x2000_0000;
const AUDIT_ARCH_X86_64: u32 = 62 | EM_64 | EM_LE;
const AUDIT_ARCH_S390: u32 = 22;
const AUDIT_ARCH_S390X: u32 = 22 | EM_64;

/// The AUDIT_ARCH value of a libseccomp architecture (x32 shares x86_64's).
fn audit_arch(arch: ScmpArch) -> Option<u32> {
    Some(match arch {
        ScmpArch::X86 => 3 | EM_LE,
        ScmpArch::X8664 | ScmpArch::X32 => AUDIT_ARCH_X86_64,
        ScmpArch::Arm => 40 | EM_LE,
        ScmpArch::Aarch64 => 183 | EM_64 | EM_LE,
        ScmpArch::Mips => 8,
        ScmpArch::Mips64 => 8 | EM_64,
        ScmpArch::Mips64N32 => 8 | EM_64 | MIPS64_N32,
        ScmpArch::Mipsel => 8 | EM_LE,
        ScmpArch::Mipsel64 => 8 | EM_64 | EM_LE,
        ScmpArch::Mipsel64N32 => 8 | EM_64 | EM_LE | MIPS64_N32,
        ScmpArch::Ppc => 20,
        ScmpArch::Ppc64 => 21 | EM_64,
        ScmpArch::Ppc64Le => 21 | EM_64 | EM_LE,
        ScmpArch::S390 => AUDIT_ARCH_S390,
        ScmpArch::S390X => AUDIT_ARCH_S390X,
        ScmpArch::Parisc => 15,
        ScmpArch::Parisc64 => 15 | EM_64,
        ScmpArch::Riscv64 => 243 | EM_64 | EM_LE,
        ScmpArch::Loongarch64 => 258 | EM_64 | EM_LE,
        ScmpArch::M68k => 4,
        ScmpArch::Sh => 42 | EM_LE,
        ScmpArch::Sheb => 42,
        _ => return None,
    })
}

/// The largest syscall numbers the profile names on one AUDIT_ARCH: x86_64
/// keeps its x86_64 calls and its x32 calls (number bit 30 set) apart.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct ArchLimits {
    audit: u32,
    /// Largest number of a call without the x32 bit (every arch but x32).
    native: Option<u32>,
    /// x86_64 only: largest number of an x32 call (the bit included).
    x32: Option<u32>,
}

/// Largest syscall number named in the profile, per architecture it lists
/// (names unknown on an architecture are ignored, as libseccomp ignores them).
fn last_syscalls(seccomp: &LinuxSeccomp) -> Vec<ArchLimits> {
    let mut limits: Vec<ArchLimits> = Vec::new();
    let names: Vec<&String> = seccomp
        .syscalls()
        .iter()
        .flatten()
        .flat_map(|rule| rule.names())
        .collect();
    for &arch in seccomp.architectures().iter().flatten() {
        let arch = match arch {
            Arch::ScmpArchNative => ScmpArch::native(),
            other => translate_arch(other),
        };
        let Some(audit) = audit_arch(arch) else {
            tracing::warn!(?arch, "no -ENOSYS stub for an unknown architecture");
            continue;
        };
        let largest = names
            .iter()
            .filter_map(|name| ScmpSyscall::from_name_by_arch(name, arch).ok())
            .map(|sc| sc.as_raw_syscall())
            .filter(|&nr| nr > 0)
            .max()
            .map(|nr| nr as u32);
        let Some(largest) = largest else {
            tracing::warn!(?arch, "the seccomp profile names no syscall of this arch");
            continue;
        };
        let idx = match limits.iter().position(|l| l.audit == audit) {
            Some(idx) => idx,
            None => {
                limits.push(ArchLimits {
                    audit,
                    ..Default::default()
                });
                limits.len() - 1
            }
        };
        let slot = if arch == ScmpArch::X32 {
            &mut limits[idx].x32
        } else {
            &mut limits[idx].native
        };
        *slot = Some(slot.map_or(largest, |have| have.max(largest)));
    }
    limits
}

/// Where a jump goes: the next instruction, or a label.
#[derive(Clone, Copy)]
enum To {
    Next,
    Label(usize),
}

enum Insn {
    Stmt(u16, u32),
    Jump(u16, u32, To, To),
    Always(usize),
    Label(usize),
}

/// A tiny assembler: conditional jumps may only go a short way forward (they
/// stay inside one architecture's section); `Always` jumps are unlimited.
#[derive(Default)]
struct Asm {
    insns: Vec<Insn>,
    labels: usize,
}

impl Asm {
    fn label(&mut self) -> usize {
        self.labels += 1;
        self.labels - 1
    }

    fn place(&mut self, label: usize) {
        self.insns.push(Insn::Label(label));
    }

    fn push(&mut self, insn: Insn) {
        self.insns.push(insn);
    }

    /// The program; `end` (a label never placed) is the instruction after it.
    fn assemble(self, end: usize) -> Vec<libc::sock_filter> {
        let mut at = vec![usize::MAX; self.labels];
        let mut pc = 0;
        for insn in &self.insns {
            match insn {
                Insn::Label(l) => at[*l] = pc,
                _ => pc += 1,
            }
        }
        at[end] = pc;
        let mut out = Vec::with_capacity(pc);
        for insn in self.insns {
            let here = out.len();
            let rel = |to: To| -> u8 {
                match to {
                    To::Next => 0,
                    To::Label(l) => u8::try_from(at[l] - here - 1)
                        .expect("a conditional jump stays inside its section"),
                }
            };
            let (code, jt, jf, k) = match insn {
                Insn::Label(_) => continue,
                Insn::Stmt(code, k) => (code, 0, 0, k),
                Insn::Jump(code, k, t, f) => (code, rel(t), rel(f), k),
                Insn::Always(l) => (OP_JA, 0, 0, (at[l] - here - 1) as u32),
            };
            out.push(libc::sock_filter { code, jt, jf, k });
        }
        out
    }
}

/// The stub to put in front of the profile's program (empty when none is
/// needed): per listed architecture, numbers above the profile's largest
/// return ENOSYS, everything else jumps to the profile's program.
fn stub(limits: &[ArchLimits]) -> Vec<libc::sock_filter> {
    if limits.is_empty() {
        return Vec::new();
    }
    let mut asm = Asm::default();
    let filter = asm.label();
    let sections: Vec<usize> = limits.iter().map(|_| asm.label()).collect();
    asm.push(Insn::Stmt(OP_LD_ABS, SECCOMP_DATA_ARCH));
    for (limit, &section) in limits.iter().zip(&sections) {
        let other = asm.label();
        asm.push(Insn::Jump(OP_JEQ, limit.audit, To::Next, To::Label(other)));
        asm.push(Insn::Always(section));
        asm.place(other);
    }
    asm.push(Insn::Always(filter));
    for (limit, &section) in limits.iter().zip(&sections) {
        let to_filter = asm.label();
        let enosys = asm.label();
        asm.place(section);
        asm.push(Insn::Stmt(OP_LD_ABS, SECCOMP_DATA_NR));
        if limit.audit == AUDIT_ARCH_S390 || limit.audit == AUDIT_ARCH_S390X {
            // An unknown large call reaches s390's filter as number 0 (the
            // multiplexer, never used otherwise): it is unknown, so ENOSYS.
            asm.push(Insn::Jump(OP_JEQ, 0, To::Label(enosys), To::Next));
        }
        match (limit.audit == AUDIT_ARCH_X86_64, limit.native, limit.x32) {
            (true, native, x32) => {
                let x32_check = asm.label();
                asm.push(Insn::Jump(
                    OP_JSET,
                    X32_SYSCALL_BIT,
                    if x32.is_some() {
                        To::Label(x32_check)
                    } else {
                        To::Label(to_filter)
                    },
                    if native.is_some() {
                        To::Next
                    } else {
                        To::Label(to_filter)
                    },
                ));
                if let Some(max) = native {
                    asm.push(Insn::Jump(
                        OP_JGT,
                        max,
                        To::Label(enosys),
                        To::Label(to_filter),
                    ));
                }
                asm.place(x32_check);
                if let Some(max) = x32 {
                    asm.push(Insn::Jump(
                        OP_JGT,
                        max,
                        To::Label(enosys),
                        To::Label(to_filter),
                    ));
                }
            }
            (false, Some(max), _) => {
                asm.push(Insn::Jump(
                    OP_JGT,
                    max,
                    To::Label(enosys),
                    To::Label(to_filter),
                ));
            }
            (false, None, _) => {}
        }
        asm.place(to_filter);
        asm.push(Insn::Always(filter));
        asm.place(enosys);
        asm.push(Insn::Stmt(OP_RET, RET_ENOSYS));
    }
    asm.assemble(filter)
}

/// Whether the profile gets the stub (runc: not for a permissive default,
/// and pointless when the default already answers ENOSYS).
fn wants_stub(seccomp: &LinuxSeccomp) -> bool {
    match seccomp.default_action() {
        LinuxSeccompAction::ScmpActAllow
        | LinuxSeccompAction::ScmpActLog
        | LinuxSeccompAction::ScmpActTrace => false,
        LinuxSeccompAction::ScmpActErrno => {
            seccomp.default_errno_ret() != Some(libc::ENOSYS as u32)
        }
        _ => true,
    }
}

/// libseccomp's program for `ctx`, as the kernel takes it.
fn export(ctx: &ScmpFilterContext) -> Result<Vec<libc::sock_filter>> {
    let io = |source| SeccompError::ExportBpf { source };
    // SAFETY: a constant NUL-terminated name; the fd is checked and owned.
    let fd = unsafe { libc::memfd_create(c"runvz-seccomp".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(io(std::io::Error::last_os_error()));
    }
    // SAFETY: a new fd nobody else owns.
    let mut file = unsafe { File::from_raw_fd(fd) };
    ctx.export_bpf(&file)
        .map_err(|err| SeccompError::ExportContext { source: err })?;
    let mut bytes = Vec::new();
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    file.read_to_end(&mut bytes).map_err(io)?;
    const SIZE: usize = std::mem::size_of::<libc::sock_filter>();
    if bytes.len() % SIZE != 0 {
        return Err(io(std::io::Error::other(
            "libseccomp exported a partial BPF instruction",
        )));
    }
    Ok(bytes
        .chunks_exact(SIZE)
        .map(|c| libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect())
}

/// Loads libseccomp's program for `ctx`, behind runc's -ENOSYS stub where the
/// profile gets one, with the profile's flags; returns the listener fd when
/// the profile notifies.
pub(super) fn load(
    ctx: &ScmpFilterContext,
    seccomp: &LinuxSeccomp,
    notify: bool,
) -> Result<Option<RawFd>> {
    let mut program = if wants_stub(seccomp) {
        stub(&last_syscalls(seccomp))
    } else {
        Vec::new()
    };
    if !program.is_empty() {
        tracing::debug!(
            len = program.len(),
            "seccomp: -ENOSYS stub before the filter"
        );
    }
    program.extend(export(ctx)?);

    let mut flags: libc::c_ulong = 0;
    for flag in seccomp.flags().iter().flatten() {
        flags |= match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => libc::SECCOMP_FILTER_FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
            }
        };
    }
    if notify {
        flags |= libc::SECCOMP_FILTER_FLAG_NEW_LISTENER;
        if flags & libc::SECCOMP_FILTER_FLAG_TSYNC != 0 {
            // The kernel takes TSYNC with a listener only in this form.
            flags |= libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
        }
    }

    let len = u16::try_from(program.len()).map_err(|_| SeccompError::LoadFilter {
        source: std::io::Error::from_raw_os_error(libc::EINVAL),
    })?;
    let prog = libc::sock_fprog {
        len,
        filter: program.as_mut_ptr(),
    };
    // SAFETY: `prog` points at `program`, alive for the whole call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            &prog as *const libc::sock_fprog,
        )
    };
    if ret < 0 {
        return Err(SeccompError::LoadFilter {
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(notify.then_some(ret as RawFd))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(program: &[libc::sock_filter], arch: u32, nr: u32) -> u32 {
        // A minimal cBPF interpreter for what the stub uses.
        let mut pc = 0;
        let mut a = 0;
        loop {
            let i = program[pc];
            pc += 1;
            match i.code {
                OP_LD_ABS => a = if i.k == SECCOMP_DATA_ARCH { arch } else { nr },
                OP_JA => pc += i.k as usize,
                OP_JEQ | OP_JGT | OP_JSET => {
                    let hit = match i.code {
                        OP_JEQ => a == i.k,
                        OP_JGT => a > i.k,
                        _ => a & i.k != 0,
                    };
                    pc += if hit { i.jt } else { i.jf } as usize;
                }
                OP_RET => return i.k,
                code => panic!("unexpected opcode {code:#x}"),
            }
            if pc == program.len() {
                return u32::MAX; // fell through into the profile's filter
            }
        }
    }

    #[test]
    fn numbers_above_the_largest_get_enosys_per_arch() {
        const FILTER: u32 = u32::MAX;
        let limits = vec![
            ArchLimits {
                audit: AUDIT_ARCH_X86_64,
                native: Some(300),
                x32: Some(X32_SYSCALL_BIT | 200),
            },
            ArchLimits {
                audit: 3 | EM_LE,
                native: Some(400),
                x32: None,
            },
            ArchLimits {
                audit: AUDIT_ARCH_S390X,
                native: Some(100),
                x32: None,
            },
        ];
        let p = stub(&limits);
        assert_eq!(run(&p, AUDIT_ARCH_X86_64, 300), FILTER);
        assert_eq!(run(&p, AUDIT_ARCH_X86_64, 301), RET_ENOSYS);
        assert_eq!(run(&p, AUDIT_ARCH_X86_64, 1000), RET_ENOSYS);
        assert_eq!(run(&p, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT | 200), FILTER);
        assert_eq!(
            run(&p, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT | 201),
            RET_ENOSYS
        );
        assert_eq!(run(&p, 3 | EM_LE, 350), FILTER);
        assert_eq!(run(&p, 3 | EM_LE, 401), RET_ENOSYS);
        assert_eq!(run(&p, AUDIT_ARCH_S390X, 0), RET_ENOSYS);
        assert_eq!(run(&p, AUDIT_ARCH_S390X, 5), FILTER);
        assert_eq!(run(&p, AUDIT_ARCH_S390X, 101), RET_ENOSYS);
        // An architecture the profile does not list: the filter decides.
        assert_eq!(run(&p, 183 | EM_64 | EM_LE, 5000), FILTER);

        // x86_64 without x32: x32 calls go to the filter (bad arch there).
        let p = stub(&[ArchLimits {
            audit: AUDIT_ARCH_X86_64,
            native: Some(300),
            x32: None,
        }]);
        assert_eq!(run(&p, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT | 999), FILTER);
        assert_eq!(run(&p, AUDIT_ARCH_X86_64, 999), RET_ENOSYS);
        // x32 alone: x86_64 calls go to the filter.
        let p = stub(&[ArchLimits {
            audit: AUDIT_ARCH_X86_64,
            native: None,
            x32: Some(X32_SYSCALL_BIT | 10),
        }]);
        assert_eq!(run(&p, AUDIT_ARCH_X86_64, 999), FILTER);
        assert_eq!(run(&p, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT | 11), RET_ENOSYS);
        assert!(stub(&[]).is_empty());
    }
}

//! A small classic-BPF assembler with labels, enough for seccomp filters: loads from
//! `seccomp_data`, forward jumps, returns. Conditional jumps reach at most 255
//! instructions; the code generator only aims them at nearby labels and uses `goto` (a
//! 32-bit jump) for anything far, so assembling either succeeds or reports a bug.

use seccompiler::sock_filter;

// linux/bpf_common.h
const BPF_LD: u16 = 0x00;
const BPF_W: u16 = 0x00;
const BPF_ABS: u16 = 0x20;
const BPF_JMP: u16 = 0x05;
const BPF_JA: u16 = 0x00;
const BPF_K: u16 = 0x00;
const BPF_RET: u16 = 0x06;

/// Conditions of a conditional jump (against the constant).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cond {
    /// A == k
    Eq = 0x10,
    /// A > k (unsigned)
    Gt = 0x20,
    /// A & k != 0
    Set = 0x40,
}

/// Offsets in `struct seccomp_data`.
pub const NR_OFFSET: u32 = 0;
pub const ARCH_OFFSET: u32 = 4;

/// The kernel's limit on a filter's length (BPF_MAXINSNS).
pub const MAX_INSNS: usize = 4096;

/// A place in the program, marked once, jumped to from before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Label(u32);

enum Item {
    /// Instructions whose jumps are already relative and stay inside them.
    Fixed(sock_filter),
    /// A conditional jump; None goes on with the next instruction.
    Jump {
        cond: Cond,
        k: u32,
        then: Option<Label>,
        otherwise: Option<Label>,
    },
    Goto(Label),
    Mark(Label),
}

/// A program being written.
#[derive(Default)]
pub struct Asm {
    items: Vec<Item>,
    labels: u32,
}

impl Asm {
    /// An empty program with room for about `n` instructions.
    pub fn with_capacity(n: usize) -> Self {
        Self {
            items: Vec::with_capacity(n),
            labels: 0,
        }
    }

    /// A new label, to be marked later.
    pub fn label(&mut self) -> Label {
        self.labels += 1;
        Label(self.labels - 1)
    }

    /// Put `label` here.
    pub fn mark(&mut self, label: Label) {
        self.items.push(Item::Mark(label));
    }

    /// A = the 32-bit word at `offset` of seccomp_data.
    pub fn load(&mut self, offset: u32) {
        self.items
            .push(Item::Fixed(stmt(BPF_LD | BPF_W | BPF_ABS, offset)));
    }

    /// Return `value` (a SECCOMP_RET_* action).
    pub fn ret(&mut self, value: u32) {
        self.items.push(Item::Fixed(stmt(BPF_RET | BPF_K, value)));
    }

    /// If `cond` holds go to `then`, else to `otherwise` (None: the next instruction).
    /// Both must be near (within 255 instructions).
    pub fn jump(&mut self, cond: Cond, k: u32, then: Option<Label>, otherwise: Option<Label>) {
        self.items.push(Item::Jump {
            cond,
            k,
            then,
            otherwise,
        });
    }

    /// Go to `label`, however far.
    pub fn goto(&mut self, label: Label) {
        self.items.push(Item::Goto(label));
    }

    /// Instructions with their own relative jumps (a compiled seccompiler rule).
    pub fn fixed(&mut self, code: impl IntoIterator<Item = sock_filter>) {
        self.items.extend(code.into_iter().map(Item::Fixed));
    }

    /// Resolve the labels into offsets. Errors name what does not fit.
    pub fn assemble(self) -> Result<Vec<sock_filter>, String> {
        let mut at = vec![None; self.labels as usize];
        let mut pc = 0usize;
        for item in &self.items {
            match item {
                Item::Mark(label) => at[label.0 as usize] = Some(pc),
                _ => pc += 1,
            }
        }
        let mut out = Vec::with_capacity(pc);
        for item in self.items {
            let here = out.len();
            let offset = |label: Option<Label>| -> Result<u32, String> {
                let Some(label) = label else { return Ok(0) };
                let target = at[label.0 as usize].ok_or("jump to a label never marked")?;
                target
                    .checked_sub(here + 1)
                    .and_then(|d| u32::try_from(d).ok())
                    .ok_or_else(|| "backward jump".to_string())
            };
            match item {
                Item::Mark(_) => {}
                Item::Fixed(insn) => out.push(insn),
                Item::Goto(label) => out.push(stmt(BPF_JMP | BPF_JA, offset(Some(label))?)),
                Item::Jump {
                    cond,
                    k,
                    then,
                    otherwise,
                } => {
                    let near = |d: u32| {
                        u8::try_from(d).map_err(|_| format!("conditional jump of {d} instructions"))
                    };
                    out.push(sock_filter {
                        code: BPF_JMP | cond as u16 | BPF_K,
                        jt: near(offset(then)?)?,
                        jf: near(offset(otherwise)?)?,
                        k,
                    });
                }
            }
        }
        Ok(out)
    }
}

fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

/// A classic-BPF interpreter for what seccomp filters use, to check generated programs
/// in tests without loading them. It refuses what the kernel's checker refuses: jumps out
/// of the program, reads outside seccomp_data, running off the end.
#[cfg(test)]
pub mod interp {
    use super::*;

    /// `struct seccomp_data`, the filter's input.
    #[derive(Debug, Clone, Copy, Default)]
    pub struct Data {
        pub nr: u32,
        pub arch: u32,
        pub args: [u64; 6],
    }

    impl Data {
        fn word(&self, offset: u32) -> Result<u32, String> {
            let mut bytes = [0u8; 64];
            bytes[0..4].copy_from_slice(&self.nr.to_le_bytes());
            bytes[4..8].copy_from_slice(&self.arch.to_le_bytes());
            for (i, arg) in self.args.iter().enumerate() {
                bytes[16 + 8 * i..24 + 8 * i].copy_from_slice(&arg.to_le_bytes());
            }
            let o = offset as usize;
            if o % 4 != 0 || o + 4 > bytes.len() {
                return Err(format!("load at {offset}"));
            }
            Ok(u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap()))
        }
    }

    /// Run `program` on `data`: the value it returns, and how many instructions ran.
    pub fn run(program: &[sock_filter], data: &Data) -> Result<(u32, usize), String> {
        let (mut a, mut pc, mut steps) = (0u32, 0usize, 0usize);
        loop {
            let insn = program.get(pc).ok_or(format!("ran off the end at {pc}"))?;
            steps += 1;
            pc += 1;
            match insn.code {
                c if c == BPF_LD | BPF_W | BPF_ABS => a = data.word(insn.k)?,
                c if c == BPF_RET | BPF_K => return Ok((insn.k, steps)),
                c if c == BPF_JMP | BPF_JA => pc += insn.k as usize,
                // ALU AND K (seccompiler's masked comparisons).
                0x54 => a &= insn.k,
                c if c & 0x07 == BPF_JMP => {
                    let hit = match c & 0xf0 {
                        0x10 => a == insn.k,
                        0x20 => a > insn.k,
                        0x30 => a >= insn.k,
                        0x40 => a & insn.k != 0,
                        other => return Err(format!("jump op {other:#x}")),
                    };
                    pc += usize::from(if hit { insn.jt } else { insn.jf });
                }
                other => return Err(format!("instruction {other:#x} at {}", pc - 1)),
            }
            if pc > program.len() {
                return Err(format!("jump past the end to {pc}"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::interp::{run, Data};
    use super::*;

    #[test]
    fn labels_become_offsets() {
        let mut asm = Asm::default();
        let (hit, far) = (asm.label(), asm.label());
        asm.load(NR_OFFSET);
        asm.jump(Cond::Eq, 7, Some(hit), None);
        asm.jump(Cond::Gt, 100, None, Some(far));
        asm.ret(1);
        asm.mark(hit);
        asm.ret(2);
        asm.mark(far);
        asm.ret(3);
        let program = asm.assemble().unwrap();
        assert_eq!(program.len(), 6);
        assert_eq!((program[1].jt, program[1].jf), (2, 0));
        assert_eq!((program[2].jt, program[2].jf), (0, 2));
        let ret = |nr| {
            run(
                &program,
                &Data {
                    nr,
                    ..Data::default()
                },
            )
            .unwrap()
            .0
        };
        assert_eq!((ret(7), ret(101), ret(50)), (2, 1, 3));
    }

    #[test]
    fn far_targets_need_a_goto() {
        let mut asm = Asm::default();
        let end = asm.label();
        asm.jump(Cond::Set, 1, Some(end), None);
        for _ in 0..300 {
            asm.ret(0);
        }
        asm.mark(end);
        asm.ret(1);
        assert!(asm
            .assemble()
            .unwrap_err()
            .contains("conditional jump of 300"));

        let mut asm = Asm::default();
        let end = asm.label();
        asm.goto(end);
        for _ in 0..300 {
            asm.ret(0);
        }
        asm.mark(end);
        asm.ret(1);
        let program = asm.assemble().unwrap();
        assert_eq!(run(&program, &Data::default()).unwrap(), (1, 2));
    }

    #[test]
    fn the_interpreter_refuses_what_the_kernel_refuses() {
        let off_end = [stmt(BPF_LD | BPF_W | BPF_ABS, 0)];
        assert!(run(&off_end, &Data::default()).is_err());
        let bad_load = [stmt(BPF_LD | BPF_W | BPF_ABS, 64), stmt(BPF_RET | BPF_K, 0)];
        assert!(run(&bad_load, &Data::default()).is_err());
        let data = Data {
            args: [0x1_0000_0002, 0, 0, 0, 0, 0],
            ..Data::default()
        };
        // args[0]'s low and high halves, little-endian.
        let lo = [stmt(BPF_LD | BPF_W | BPF_ABS, 16), stmt(BPF_RET | 0x10, 0)];
        assert!(
            run(&lo, &data).is_err(),
            "RET A is not used by seccomp filters here"
        );
        let mut asm = Asm::default();
        let yes = asm.label();
        asm.load(20);
        asm.jump(Cond::Eq, 1, Some(yes), None);
        asm.ret(0);
        asm.mark(yes);
        asm.ret(9);
        assert_eq!(run(&asm.assemble().unwrap(), &data).unwrap().0, 9);
    }
}

//! The control-flow graph a code object is compiled into, and the passes CPython 3.11 runs over
//! it before it becomes bytecode (rule CO-3 of `spec/compile.md`). The passes are those of 3.11's
//! `Python/compile.c` `assemble()`, in its order: peepholes and jump threading
//! (`optimize_basic_block`), NOP removal (`clean_basic_block`), copying small exit blocks into
//! jumps (`extend_block`), dead-block removal (`mark_reachable`, `eliminate_empty_basic_blocks`),
//! `remove_redundant_jumps`, `duplicate_exits_without_lineno`, `propagate_line_numbers`,
//! `guarantee_lineno_for_exits`, and the choice of forward or backward jump opcodes
//! (`normalize_jumps`). Getting these right is what makes gilcheck's bytecode CPython's, line
//! numbers included, so that each version's switch points fall where CPython's do.
//!
//! Exception handlers are blocks of the graph like any other, entered through the `SETUP_*`
//! pseudo-instructions (`Op::Setup`) that push them and the `POP_BLOCK`s that pop them. After
//! the passes, 3.11's `stackdepth` and `label_exception_targets` give every instruction its
//! handler, the pseudo-instructions become NOPs, and `assemble_exception_table` writes the
//! ranges into the code's exception table (CO-6).

use crate::vm::code::{Code, Const, ExcEntry, Instr};

/// An operation of the graph: a finished instruction, or one whose target or form is decided
/// when the code is assembled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    /// An instruction without a jump target.
    Real(Instr),
    /// An unconditional jump (`JUMP_FORWARD` or `JUMP_BACKWARD`).
    Jump,
    /// `POP_JUMP_{FORWARD,BACKWARD}_IF_{TRUE,FALSE}`: jumps when the truth equals the flag.
    PopJumpIf(bool),
    /// `POP_JUMP_*_IF_NONE` (true) or `…_IF_NOT_NONE` (false), made by the peephole.
    PopJumpIfNone(bool),
    /// `JUMP_IF_TRUE_OR_POP` (true) or `JUMP_IF_FALSE_OR_POP` (false): `and`/`or` and chained
    /// comparisons used as values. Forward only.
    JumpIfOrPop(bool),
    ForIter,
    /// Pushes an exception handler (`SETUP_FINALLY`, `SETUP_CLEANUP`, `SETUP_WITH`): a NOP once
    /// assembled.
    Setup(SetupKind),
    /// Pops an exception handler: a NOP once assembled.
    PopBlock,
}

/// Which `SETUP_*` pushed a handler: how deep the stack is where it starts, and whether the
/// raising instruction's index is pushed below the exception (`lasti`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetupKind {
    Finally,
    Cleanup,
    With,
}

impl SetupKind {
    /// The stack effect of the jump to the handler (3.11's `stack_effect` with `jump`).
    fn jump_effect(self) -> i32 {
        match self {
            SetupKind::Finally | SetupKind::With => 1,
            SetupKind::Cleanup => 2,
        }
    }

    fn lasti(self) -> bool {
        self != SetupKind::Finally
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Ins {
    pub op: Op,
    pub target: Option<usize>,
    /// Source line, or -1 for none yet (CPython's artificial instructions).
    pub line: i32,
    /// The block of the handler an exception raised here goes to (`i_except`), set by
    /// `label_exception_targets` when the code is assembled.
    pub handler: Option<usize>,
}

impl Ins {
    fn is_jump(&self) -> bool {
        matches!(
            self.op,
            Op::Jump | Op::PopJumpIf(_) | Op::PopJumpIfNone(_) | Op::JumpIfOrPop(_) | Op::ForIter
        )
    }
    /// A jump, or a handler push (whose target is reached by exceptions).
    fn has_target(&self) -> bool {
        self.target.is_some()
    }
    fn exits(&self) -> bool {
        matches!(
            self.op,
            Op::Real(Instr::ReturnValue | Instr::RaiseVarargs(_) | Instr::Reraise(_))
        )
    }
    fn ends_block(&self) -> bool {
        self.exits() || self.op == Op::Jump
    }
    fn nop(line: i32) -> Ins {
        Ins {
            op: Op::Real(Instr::Nop),
            target: None,
            line,
            handler: None,
        }
    }
    fn is_nop(&self) -> bool {
        self.op == Op::Real(Instr::Nop)
    }
}

#[derive(Debug, Clone, Default)]
pub struct Block {
    pub instrs: Vec<Ins>,
}

/// Where an instruction fails to compile in the graph passes (a construct gilcheck's VM does not
/// run yet), with the line it is on.
#[derive(Debug)]
pub struct FlowError {
    pub what: String,
    pub line: i32,
}

/// The graph of one code object under construction. Blocks are laid out in the order they are
/// first used, as CPython's `compiler_use_next_block` links them.
#[derive(Debug, Default)]
pub struct Flow {
    pub blocks: Vec<Block>,
    /// The layout: block indices in code order.
    pub order: Vec<usize>,
    pub current: usize,
}

impl Flow {
    pub fn new() -> Self {
        let mut f = Flow::default();
        let b = f.new_block();
        f.use_block(b);
        f
    }

    pub fn new_block(&mut self) -> usize {
        self.blocks.push(Block::default());
        self.blocks.len() - 1
    }

    /// Appends `b` to the layout and makes it current (`compiler_use_next_block`).
    pub fn use_block(&mut self, b: usize) {
        self.order.push(b);
        self.current = b;
    }

    pub fn emit(&mut self, op: Op, target: Option<usize>, line: i32) {
        self.blocks[self.current].instrs.push(Ins {
            op,
            target,
            line,
            handler: None,
        });
        // A block ends at every jump, return or raise (3.11's `NEXT_BLOCK` after a
        // conditional jump, and the blocks `normalize_basic_block` insists on); what follows
        // goes to a new block.
        if target.is_some()
            || matches!(
                op,
                Op::Jump
                    | Op::Real(Instr::ReturnValue | Instr::RaiseVarargs(_) | Instr::Reraise(_))
            )
        {
            let b = self.new_block();
            self.use_block(b);
        }
    }

    fn next_in_layout(&self, pos: usize) -> Option<usize> {
        self.order.get(pos + 1).copied()
    }

    fn falls_through(&self, b: usize) -> bool {
        !self.blocks[b].instrs.last().is_some_and(Ins::ends_block)
    }

    /// The first instruction of the first non-empty block from `b` on in layout order.
    fn first_real(&self, b: usize) -> Option<(usize, Ins)> {
        let pos = self.order.iter().position(|&x| x == b)?;
        self.order[pos..]
            .iter()
            .find_map(|&x| self.blocks[x].instrs.first().map(|i| (x, *i)))
    }

    /// `optimize_basic_block`: the peepholes of 3.11 that apply to what gilcheck compiles.
    fn optimize_block(&mut self, b: usize, consts: &mut Vec<Const>) -> Result<(), FlowError> {
        let mut i = 0;
        while i < self.blocks[b].instrs.len() {
            let ins = self.blocks[b].instrs[i];
            let next = self.blocks[b].instrs.get(i + 1).copied();
            match (ins.op, next.map(|n| n.op)) {
                (
                    Op::Real(Instr::PushNull),
                    Some(Op::Real(Instr::LoadGlobal { name, null: false })),
                ) => {
                    self.blocks[b].instrs[i].op = Op::Real(Instr::Nop);
                    self.blocks[b].instrs[i + 1].op =
                        Op::Real(Instr::LoadGlobal { name, null: true });
                }
                // `a, b = b, a`: the tuple is never built.
                (Op::Real(Instr::BuildTuple(n)), Some(Op::Real(Instr::UnpackSequence(m))))
                    if n == m && (1..=3).contains(&n) =>
                {
                    self.blocks[b].instrs[i].op = Op::Real(Instr::Nop);
                    self.blocks[b].instrs[i + 1].op =
                        Op::Real(if n == 1 { Instr::Nop } else { Instr::Swap(n) });
                }
                (Op::Real(Instr::Swap(n)), _) if n >= 2 => self.apply_static_swaps(b, i),
                // `fold_tuple_on_constants`: a tuple built from constants is a constant.
                (Op::Real(Instr::BuildTuple(n)), _) if n > 0 && i >= n as usize => {
                    let instrs = &self.blocks[b].instrs;
                    let items: Option<Vec<Const>> = instrs[i - n as usize..i]
                        .iter()
                        .map(|x| match x.op {
                            Op::Real(Instr::LoadConst(k)) => Some(consts[k as usize].clone()),
                            _ => None,
                        })
                        .collect();
                    if let Some(items) = items {
                        let t = Const::Tuple(items);
                        let k = match consts.iter().position(|c| c == &t) {
                            Some(k) => k,
                            None => {
                                consts.push(t);
                                consts.len() - 1
                            }
                        };
                        let instrs = &mut self.blocks[b].instrs;
                        for x in &mut instrs[i - n as usize..i] {
                            x.op = Op::Real(Instr::Nop);
                        }
                        instrs[i].op = Op::Real(Instr::LoadConst(k as u32));
                    }
                }
                (Op::Real(Instr::LoadConst(k)), Some(Op::PopJumpIf(on))) => {
                    self.blocks[b].instrs[i].op = Op::Real(Instr::Nop);
                    if consts[k as usize].truth() == on {
                        self.blocks[b].instrs[i + 1].op = Op::Jump;
                        // What followed the jump in this block can never run.
                        self.blocks[b].instrs.truncate(i + 2);
                    } else {
                        self.blocks[b].instrs[i + 1].op = Op::Real(Instr::Nop);
                        self.blocks[b].instrs[i + 1].target = None;
                    }
                }
                (Op::Real(Instr::LoadConst(k)), Some(Op::JumpIfOrPop(on))) => {
                    if consts[k as usize].truth() == on {
                        // The constant is the value: jump with it.
                        self.blocks[b].instrs[i + 1].op = Op::Jump;
                        self.blocks[b].instrs.truncate(i + 2);
                    } else {
                        self.blocks[b].instrs[i].op = Op::Real(Instr::Nop);
                        self.blocks[b].instrs[i + 1].op = Op::Real(Instr::Nop);
                        self.blocks[b].instrs[i + 1].target = None;
                    }
                }
                (Op::JumpIfOrPop(on), _) => {
                    // 3.11's threading of JUMP_IF_{FALSE,TRUE}_OR_POP (`jump_thread`: same line,
                    // a different target).
                    let t = ins.target.expect("a jump has a target");
                    if let Some((tb, first)) = self.first_real(t) {
                        let same_line = first.line == ins.line;
                        let thread = same_line && first.target != ins.target;
                        let me = &mut self.blocks[b].instrs[i];
                        match first.op {
                            // The value is popped there on the same truth: pop it here.
                            Op::PopJumpIf(x) if x == on && thread => {
                                me.op = Op::PopJumpIf(on);
                                me.target = first.target;
                                continue;
                            }
                            Op::Jump if thread => {
                                me.target = first.target;
                                continue;
                            }
                            Op::JumpIfOrPop(x) if x == on && thread => {
                                me.target = first.target;
                                continue;
                            }
                            // There the value decides the other way: pop it here and go on
                            // after that jump.
                            Op::JumpIfOrPop(x) | Op::PopJumpIf(x) if x != on && same_line => {
                                let pos = self.positions()[tb];
                                if let Some(after) = self.next_in_layout(pos) {
                                    let me = &mut self.blocks[b].instrs[i];
                                    me.op = Op::PopJumpIf(on);
                                    me.target = Some(after);
                                    continue;
                                }
                            }
                            _ => {}
                        }
                    }
                }
                (Op::Real(Instr::LoadConst(k)), Some(Op::Real(Instr::IsOp(invert))))
                    if consts[k as usize] == Const::None =>
                {
                    // `x is None` / `x is not None` as a condition: one fused jump.
                    if let Some(Op::PopJumpIf(on_true)) =
                        self.blocks[b].instrs.get(i + 2).map(|n| n.op)
                    {
                        let instrs = &mut self.blocks[b].instrs;
                        instrs[i].op = Op::Real(Instr::Nop);
                        instrs[i + 1].op = Op::Real(Instr::Nop);
                        // Jump when the value is None: `is` and jump-if-true, or `is not` and
                        // jump-if-false.
                        instrs[i + 2].op = Op::PopJumpIfNone(invert != on_true);
                    }
                }
                (Op::PopJumpIf(_) | Op::Jump, _) => {
                    let t = ins.target.expect("a jump has a target");
                    if let Some((_, first)) = self.first_real(t)
                        && first.op == Op::Jump
                        && first.line == ins.line
                        && first.target != ins.target
                    {
                        self.blocks[b].instrs[i].target = first.target;
                        continue; // thread again from the new target
                    }
                }
                _ => {}
            }
            i += 1;
        }
        Ok(())
    }

    /// 3.11's `apply_static_swaps`: a `SWAP` followed by stores to fast locals (or `POP_TOP`s)
    /// on one line becomes a NOP, and the stores trade places.
    fn apply_static_swaps(&mut self, b: usize, from: usize) {
        let swappable = |i: &Ins| matches!(i.op, Op::Real(Instr::StoreFast(_) | Instr::PopTop));
        let next = |instrs: &[Ins], mut i: usize, line: Option<i32>| -> Option<usize> {
            loop {
                i += 1;
                let ins = instrs.get(i)?;
                if line.is_some_and(|l| ins.line != l) {
                    return None;
                }
                if ins.is_nop() {
                    continue;
                }
                return swappable(ins).then_some(i);
            }
        };
        let mut i = from as isize;
        while i >= 0 {
            let instrs = &self.blocks[b].instrs;
            let at = i as usize;
            let Op::Real(Instr::Swap(n)) = instrs[at].op else {
                if instrs[at].is_nop() || swappable(&instrs[at]) {
                    i -= 1;
                    continue;
                }
                return;
            };
            let Some(j) = next(instrs, at, None) else {
                return;
            };
            let line = instrs[j].line;
            let mut k = j;
            for _ in 1..n {
                match next(instrs, k, Some(line)) {
                    Some(x) => k = x,
                    None => return,
                }
            }
            let instrs = &mut self.blocks[b].instrs;
            instrs[at].op = Op::Real(Instr::Nop);
            instrs.swap(j, k);
            i -= 1;
        }
    }

    /// `clean_basic_block`: removes NOPs that carry no line of their own.
    fn clean_block(&mut self, pos: usize) {
        let b = self.order[pos];
        let next_first_line = self.order[pos + 1..]
            .iter()
            .find_map(|&x| self.blocks[x].instrs.first().map(|i| i.line));
        let src = std::mem::take(&mut self.blocks[b].instrs);
        let mut out: Vec<Ins> = Vec::with_capacity(src.len());
        let mut prev_line = -1;
        let n = src.len();
        let mut src = src;
        for k in 0..n {
            let ins = src[k];
            let line = ins.line;
            if ins.is_nop() {
                if line < 0 || prev_line == line {
                    continue;
                }
                if k + 1 < n {
                    let nl = src[k + 1].line;
                    if nl < 0 || nl == line {
                        src[k + 1].line = line;
                        continue;
                    }
                } else if next_first_line == Some(line) {
                    continue;
                }
            }
            out.push(ins);
            prev_line = line;
        }
        self.blocks[b].instrs = out;
    }

    fn clean_all(&mut self) {
        for pos in 0..self.order.len() {
            self.clean_block(pos);
        }
    }

    /// `extend_block`: a jump to a small block that returns or raises becomes a copy of it.
    fn extend_block(&mut self, b: usize) {
        let Some(last) = self.blocks[b].instrs.last().copied() else {
            return;
        };
        if last.op != Op::Jump {
            return;
        }
        let t = last.target.expect("a jump has a target");
        let target = &self.blocks[t].instrs;
        // CPython's size counts the PRECALL before each CALL, which gilcheck folds into it.
        let size = target.len()
            + target
                .iter()
                .filter(|i| matches!(i.op, Op::Real(Instr::Call(_))))
                .count();
        // 3.11 copies only an exit block without line numbers (an implicit `return None`): one
        // with lines of its own stays a jump target.
        let lineless = target.iter().all(|i| i.line < 0);
        if target.last().is_some_and(Ins::exits) && size <= 4 && lineless {
            let copy = target.clone();
            let instrs = &mut self.blocks[b].instrs;
            let n = instrs.len();
            instrs[n - 1] = Ins::nop(last.line);
            instrs.extend(copy);
        }
    }

    /// Predecessor counts over ordinary and exception edges, for the blocks reachable from the
    /// entry (`mark_reachable`); unreachable blocks count 0.
    fn predecessors(&self) -> Vec<usize> {
        let mut preds = vec![0usize; self.blocks.len()];
        let mut seen = vec![false; self.blocks.len()];
        let entry = self.order[0];
        seen[entry] = true;
        let mut work = vec![entry];
        let pos_of = self.positions();
        while let Some(b) = work.pop() {
            let mut succ = Vec::new();
            if self.falls_through(b)
                && let Some(n) = self.next_in_layout(pos_of[b])
            {
                succ.push(n);
            }
            for ins in &self.blocks[b].instrs {
                if let Some(t) = ins.target
                    && ins.has_target()
                {
                    succ.push(t);
                }
            }
            for s in succ {
                preds[s] += 1;
                if !seen[s] {
                    seen[s] = true;
                    work.push(s);
                }
            }
        }
        // Mark reachability in a way callers can read: the entry counts as reached.
        let mut out = preds;
        for (i, s) in seen.iter().enumerate() {
            if !s {
                out[i] = usize::MAX; // unreachable
            }
        }
        out
    }

    fn positions(&self) -> Vec<usize> {
        let mut pos = vec![usize::MAX; self.blocks.len()];
        for (p, &b) in self.order.iter().enumerate() {
            pos[b] = p;
        }
        pos
    }

    /// `eliminate_empty_basic_blocks`: drops empty blocks from the layout and points jumps at
    /// the next non-empty block.
    fn eliminate_empty(&mut self) {
        let order = self.order.clone();
        let redirect = |b: usize, blocks: &[Block]| -> usize {
            let pos = order.iter().position(|&x| x == b).expect("in layout");
            order[pos..]
                .iter()
                .copied()
                .find(|&x| !blocks[x].instrs.is_empty())
                .unwrap_or(b)
        };
        let mut fixes = Vec::new();
        for &b in &order {
            for (k, ins) in self.blocks[b].instrs.iter().enumerate() {
                if let Some(t) = ins.target {
                    fixes.push((b, k, redirect(t, &self.blocks)));
                }
            }
        }
        for (b, k, t) in fixes {
            self.blocks[b].instrs[k].target = Some(t);
        }
        let entry = order[0];
        self.order
            .retain(|&b| b == entry || !self.blocks[b].instrs.is_empty());
    }

    /// `remove_redundant_jumps`: a jump to the next block in layout becomes a NOP.
    fn remove_redundant_jumps(&mut self) {
        let mut removed = false;
        for pos in 0..self.order.len() {
            let b = self.order[pos];
            let next = self.order.get(pos + 1).copied();
            if let Some(last) = self.blocks[b].instrs.last_mut()
                && last.op == Op::Jump
                && last.target == next
            {
                *last = Ins::nop(last.line);
                removed = true;
            }
        }
        if removed {
            self.eliminate_empty();
        }
    }

    fn is_exit_without_line(&self, b: usize) -> bool {
        let ins = &self.blocks[b].instrs;
        ins.last().is_some_and(Ins::exits) && ins.iter().all(|i| i.line < 0)
    }

    /// `duplicate_exits_without_lineno`: an exit block without a line that is the target of
    /// several jumps gets a copy per jump, which takes the jump's line.
    fn duplicate_exits(&mut self) {
        let mut preds = self.predecessors();
        let mut pos = 0;
        while pos < self.order.len() {
            let b = self.order[pos];
            if let Some(last) = self.blocks[b].instrs.last().copied()
                && last.is_jump()
            {
                let t = last.target.expect("a jump has a target");
                if self.is_exit_without_line(t) && preds[t] != usize::MAX && preds[t] > 1 {
                    let mut copy = self.blocks[t].clone();
                    copy.instrs[0].line = last.line;
                    self.blocks.push(copy);
                    let nb = self.blocks.len() - 1;
                    preds.push(1);
                    preds[t] -= 1;
                    let n = self.blocks[b].instrs.len();
                    self.blocks[b].instrs[n - 1].target = Some(nb);
                    let tpos = self.order.iter().position(|&x| x == t).expect("in layout");
                    self.order.insert(tpos + 1, nb);
                }
            }
            pos += 1;
        }
        // The remaining exits without a line are reached by falling through only.
        for pos in 0..self.order.len() {
            let b = self.order[pos];
            if let Some(&n) = self.order.get(pos + 1)
                && self.falls_through(b)
                && !self.blocks[b].instrs.is_empty()
                && self.is_exit_without_line(n)
            {
                let line = self.blocks[b].instrs.last().expect("non-empty").line;
                self.blocks[n].instrs[0].line = line;
            }
        }
    }

    /// `propagate_line_numbers`: an instruction without a line takes the line before it, and a
    /// block with one predecessor starts with that predecessor's last line.
    fn propagate_lines(&mut self) {
        let preds = self.predecessors();
        for pos in 0..self.order.len() {
            let b = self.order[pos];
            if self.blocks[b].instrs.is_empty() {
                continue;
            }
            let mut prev = -1;
            for ins in &mut self.blocks[b].instrs {
                if ins.line < 0 {
                    ins.line = prev;
                } else {
                    prev = ins.line;
                }
            }
            if self.falls_through(b)
                && let Some(&n) = self.order.get(pos + 1)
                && preds[n] == 1
                && let Some(first) = self.blocks[n].instrs.first_mut()
                && first.line < 0
            {
                first.line = prev;
            }
            let last = *self.blocks[b].instrs.last().expect("non-empty");
            if last.is_jump() {
                let t = last.target.expect("a jump has a target");
                if preds[t] == 1
                    && let Some(first) = self.blocks[t].instrs.first_mut()
                    && first.line < 0
                {
                    first.line = prev;
                }
            }
        }
    }

    /// `guarantee_lineno_for_exits`: a return block still without a line takes the last line
    /// seen before it in layout (the code's first line at the start).
    fn guarantee_exit_lines(&mut self, first_line: i32) {
        let mut line = first_line;
        for &b in &self.order {
            let Some(last) = self.blocks[b].instrs.last().copied() else {
                continue;
            };
            if last.line < 0 {
                if last.op == Op::Real(Instr::ReturnValue) {
                    for ins in &mut self.blocks[b].instrs {
                        ins.line = line;
                    }
                }
            } else {
                line = last.line;
            }
        }
    }

    /// Runs 3.11's passes and writes the ordinary path into `code` (whose tables the caller has
    /// filled): jumps resolved to instruction indices in their forward or backward form, the
    /// exception handlers left out.
    pub fn assemble(mut self, code: &mut Code, first_line: i32) -> Result<(), FlowError> {
        let mut consts = std::mem::take(&mut code.consts);
        for pos in 0..self.order.len() {
            let b = self.order[pos];
            self.optimize_block(b, &mut consts)?;
            self.clean_block(pos);
        }
        code.consts = consts;
        for pos in 0..self.order.len() {
            let b = self.order[pos];
            self.extend_block(b);
        }
        let preds = self.predecessors();
        for (b, &p) in preds.iter().enumerate() {
            if p == usize::MAX {
                self.blocks[b].instrs.clear();
            }
        }
        self.eliminate_empty();
        self.clean_all();
        self.remove_redundant_jumps();
        self.duplicate_exits();
        self.propagate_lines();
        self.guarantee_exit_lines(first_line);
        let depths = self.stack_depths()?;
        let handlers = self.label_exception_targets();
        for b in &mut self.blocks {
            for ins in &mut b.instrs {
                if matches!(ins.op, Op::Setup(_) | Op::PopBlock) {
                    *ins = Ins::nop(ins.line);
                }
            }
        }
        self.clean_all();

        let pos_of = self.positions();
        // Warm code: what the entry reaches without an exception edge; the rest is the
        // handlers' (cold) code, which 3.12 lays out at the end (`push_cold_blocks_to_end`).
        let mut warm = vec![false; self.blocks.len()];
        let mut work = vec![self.order[0]];
        while let Some(b) = work.pop() {
            if warm[b] {
                continue;
            }
            warm[b] = true;
            if self.falls_through(b)
                && let Some(n) = self.next_in_layout(pos_of[b])
            {
                work.push(n);
            }
            for ins in &self.blocks[b].instrs {
                if ins.is_jump() {
                    work.push(ins.target.expect("a jump has a target"));
                }
            }
        }
        let kept: Vec<usize> = self
            .order
            .iter()
            .copied()
            .filter(|&b| !self.blocks[b].instrs.is_empty())
            .collect();
        let mut start = vec![usize::MAX; self.blocks.len()];
        let mut at = 0;
        for &b in &kept {
            start[b] = at;
            at += self.blocks[b].instrs.len();
        }
        // A jump target emptied by the passes resolves to the next kept block.
        let resolve = |t: usize| -> usize {
            let pos = pos_of[t];
            self.order[pos..]
                .iter()
                .find_map(|&x| (start[x] != usize::MAX).then_some(start[x]))
                .unwrap_or(at)
        };
        let mut handler_of: Vec<Option<usize>> = Vec::new();
        for &b in &kept {
            for ins in &self.blocks[b].instrs {
                let here = code.instrs.len();
                let target = ins.target.map(resolve);
                let instr = match ins.op {
                    Op::Real(i) => i,
                    Op::Jump => {
                        let t = target.expect("a jump has a target") as u32;
                        if (t as usize) > here {
                            Instr::JumpForward(t)
                        } else {
                            Instr::JumpBackward(t)
                        }
                    }
                    Op::PopJumpIf(on) => {
                        let t = target.expect("a jump has a target") as u32;
                        match ((t as usize) > here, on) {
                            (true, true) => Instr::PopJumpForwardIfTrue(t),
                            (true, false) => Instr::PopJumpForwardIfFalse(t),
                            (false, true) => Instr::PopJumpBackwardIfTrue(t),
                            (false, false) => Instr::PopJumpBackwardIfFalse(t),
                        }
                    }
                    Op::PopJumpIfNone(on_none) => {
                        let t = target.expect("a jump has a target") as u32;
                        match ((t as usize) > here, on_none) {
                            (true, true) => Instr::PopJumpForwardIfNone(t),
                            (true, false) => Instr::PopJumpForwardIfNotNone(t),
                            (false, true) => Instr::PopJumpBackwardIfNone(t),
                            (false, false) => Instr::PopJumpBackwardIfNotNone(t),
                        }
                    }
                    Op::JumpIfOrPop(on) => {
                        let t = target.expect("a jump has a target") as u32;
                        if (t as usize) <= here {
                            return Err(FlowError {
                                what: "a backward JUMP_IF_*_OR_POP (a gilcheck compiler bug)"
                                    .into(),
                                line: ins.line,
                            });
                        }
                        if on {
                            Instr::JumpIfTrueOrPop(t)
                        } else {
                            Instr::JumpIfFalseOrPop(t)
                        }
                    }
                    Op::ForIter => Instr::ForIter(target.expect("a jump has a target") as u32),
                    Op::Setup(_) | Op::PopBlock => {
                        return Err(FlowError {
                            what:
                                "a SETUP or POP_BLOCK left after assembly (a gilcheck compiler bug)"
                                    .into(),
                            line: ins.line,
                        });
                    }
                };
                code.instrs.push(instr);
                code.lines.push(ins.line.max(0) as u32);
                code.cold.push(!warm[b]);
                handler_of.push(ins.handler);
            }
        }
        // 3.11's `assemble_exception_table`: one entry per run of instructions with the same
        // handler.
        let mut run: Option<(usize, usize)> = None; // (start, handler block)
        let entry = |start: usize, end: usize, h: usize| -> Result<ExcEntry, FlowError> {
            let (kind, d) = handlers[h].zip(depths[h]).ok_or_else(|| FlowError {
                what: "an exception handler without a depth (a gilcheck compiler bug)".into(),
                line: -1,
            })?;
            let depth = d - 1 - i32::from(kind.lasti());
            Ok(ExcEntry {
                start: start as u32,
                end: end as u32,
                target: resolve(h) as u32,
                depth: depth.max(0) as u32,
                lasti: kind.lasti(),
            })
        };
        for (i, &h) in handler_of.iter().enumerate() {
            if run.map(|r| r.1) != h {
                if let Some((start, hb)) = run {
                    code.exceptions.push(entry(start, i, hb)?);
                }
                run = h.map(|hb| (i, hb));
            }
        }
        if let Some((start, hb)) = run {
            code.exceptions.push(entry(start, handler_of.len(), hb)?);
        }
        Ok(())
    }

    /// 3.11's `stackdepth`: the stack depth where each reachable block starts, with a handler
    /// starting as deep as its `SETUP_*`'s jump leaves the stack.
    fn stack_depths(&self) -> Result<Vec<Option<i32>>, FlowError> {
        let pos_of = self.positions();
        let mut depth: Vec<Option<i32>> = vec![None; self.blocks.len()];
        let mut work = vec![(self.order[0], 0i32)];
        let bug = |line: i32| FlowError {
            what: "the stack depth goes below zero (a gilcheck compiler bug)".into(),
            line,
        };
        while let Some((b, d)) = work.pop() {
            if depth[b].is_some() {
                continue;
            }
            depth[b] = Some(d);
            let mut d = d;
            let mut falls = true;
            for ins in &self.blocks[b].instrs {
                let (next, jump) = match ins.op {
                    Op::Real(i) => (d + i.stack_effect(), None),
                    Op::Jump => (d, Some(d)),
                    Op::PopJumpIf(_) | Op::PopJumpIfNone(_) => (d - 1, Some(d - 1)),
                    Op::JumpIfOrPop(_) => (d - 1, Some(d)),
                    Op::ForIter => (d + 1, Some(d - 1)),
                    Op::Setup(kind) => (d, Some(d + kind.jump_effect())),
                    Op::PopBlock => (d, None),
                };
                if next < 0 || jump.is_some_and(|j| j < 0) {
                    return Err(bug(ins.line));
                }
                if let (Some(j), Some(t)) = (jump, ins.target) {
                    work.push((t, j));
                }
                d = next;
                if ins.ends_block() {
                    falls = false;
                    break;
                }
            }
            if falls && let Some(n) = self.next_in_layout(pos_of[b]) {
                work.push((n, d));
            }
        }
        Ok(depth)
    }

    /// 3.11's `label_exception_targets`: walks the graph with the stack of handlers the
    /// `SETUP_*`s push and the `POP_BLOCK`s pop, giving each instruction the handler on top
    /// (the pseudo-instructions themselves get none). Returns, per block, the kind of `SETUP_*`
    /// that made it a handler.
    fn label_exception_targets(&mut self) -> Vec<Option<SetupKind>> {
        let pos_of = self.positions();
        let n = self.blocks.len();
        let mut kinds: Vec<Option<SetupKind>> = vec![None; n];
        let mut stacks: Vec<Option<Vec<usize>>> = vec![None; n];
        let mut visited = vec![false; n];
        let entry = self.order[0];
        visited[entry] = true;
        stacks[entry] = Some(Vec::new());
        let mut todo = vec![entry];
        while let Some(b) = todo.pop() {
            let mut stack = stacks[b].take().expect("set when first reached");
            for k in 0..self.blocks[b].instrs.len() {
                let ins = self.blocks[b].instrs[k];
                match ins.op {
                    Op::Setup(kind) => {
                        let t = ins.target.expect("a SETUP has a target");
                        if !visited[t] {
                            visited[t] = true;
                            stacks[t] = Some(stack.clone());
                            todo.push(t);
                        }
                        kinds[t] = Some(kind);
                        stack.push(t);
                    }
                    Op::PopBlock => {
                        stack.pop();
                    }
                    _ => {
                        self.blocks[b].instrs[k].handler = stack.last().copied();
                        if ins.is_jump() {
                            let t = ins.target.expect("a jump has a target");
                            if !visited[t] {
                                visited[t] = true;
                                stacks[t] = Some(stack.clone());
                                todo.push(t);
                            }
                        }
                    }
                }
            }
            if self.falls_through(b)
                && let Some(next) = self.next_in_layout(pos_of[b])
                && !visited[next]
            {
                visited[next] = true;
                stacks[next] = Some(stack);
                todo.push(next);
            }
        }
        kinds
    }
}

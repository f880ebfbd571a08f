//! Executing a parsed template against a value, with Go's semantics: truth, field and
//! key lookup (struct fields are required, map keys yield `<no value>` or, with
//! `missingkey=error`, an error), variables and their scopes, range over lists, maps
//! (sorted keys) and integers, break/continue, nested templates, and errors that say
//! where, as Go says it: `template: :1:2: executing "" at <.Nope>: ...`.

use super::funcs;
use super::parse::{Arg, Branch, Cmd, Node, Pipe, Tree};
use super::value::{sorted, NilKind, Value};

/// What a missing map key does (Go's `missingkey` option).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingKey {
    /// `<no value>`.
    Default,
    /// An error naming the key.
    Error,
}

/// How a walk ended early.
enum Flow {
    Break,
    Continue,
    Error(String),
}

impl From<String> for Flow {
    fn from(e: String) -> Self {
        Flow::Error(e)
    }
}

/// Go's limit on nested template calls.
const MAX_DEPTH: usize = 10_000;

struct State<'a> {
    tree: &'a Tree,
    /// The template being run (its name goes into errors).
    name: String,
    vars: Vec<(String, Value)>,
    out: String,
    missing: MissingKey,
    depth: usize,
    /// The node being evaluated, for errors: (offset, text).
    at: (usize, String),
    funcs: &'a dyn funcs::Table,
}

/// Runs `tree` with `data`; the output, or Go's error text.
pub fn execute(
    tree: &Tree,
    data: &Value,
    missing: MissingKey,
    funcs: &dyn funcs::Table,
) -> Result<String, String> {
    match execute_partial(tree, data, missing, funcs) {
        (out, None) => Ok(out),
        (_, Some(e)) => Err(e),
    }
}

/// As [`execute`], also giving what was written before an error: Go's templates write
/// as they go, so a command that executes straight to its output (docker's `version`
/// and `info`) shows that part.
pub fn execute_partial(
    tree: &Tree,
    data: &Value,
    missing: MissingKey,
    funcs: &dyn funcs::Table,
) -> (String, Option<String>) {
    let mut s = State {
        tree,
        name: tree.name.clone(),
        vars: vec![("$".to_string(), data.clone())],
        out: String::new(),
        missing,
        depth: 0,
        at: (0, String::new()),
        funcs,
    };
    match s.walk_list(data, &tree.root) {
        Ok(()) => (s.out, None),
        Err(Flow::Error(e)) => (s.out, Some(e)),
        // The parser refuses break/continue outside range.
        Err(Flow::Break | Flow::Continue) => (s.out, None),
    }
}

impl State<'_> {
    /// Go's `state.errorf`: the location and the node, then the message.
    fn err(&self, msg: impl std::fmt::Display) -> String {
        let (pos, text) = &self.at;
        let src = &self.tree.source;
        let upto = &src[..(*pos).min(src.len())];
        let line = 1 + upto.matches('\n').count();
        let col = pos - upto.rfind('\n').map_or(0, |i| i + 1);
        format!(
            "template: {}:{line}:{col}: executing \"{}\" at <{text}>: {msg}",
            self.tree.name, self.name
        )
    }

    fn at(&mut self, pos: usize, text: String) {
        self.at = (pos, text);
    }

    fn walk_list(&mut self, dot: &Value, list: &[Node]) -> Result<(), Flow> {
        for n in list {
            self.walk(dot, n)?;
        }
        Ok(())
    }

    fn walk(&mut self, dot: &Value, node: &Node) -> Result<(), Flow> {
        match node {
            Node::Text(t) => {
                self.out.push_str(t);
                Ok(())
            }
            Node::Action(pipe) => {
                let v = self.eval_pipeline(dot, pipe)?;
                if pipe.decl.is_empty() {
                    self.out.push_str(&v.print());
                }
                Ok(())
            }
            Node::If(b) => self.walk_if_with(dot, b, false),
            Node::With(b) => self.walk_if_with(dot, b, true),
            Node::Range(b) => self.walk_range(dot, b),
            Node::Break => Err(Flow::Break),
            Node::Continue => Err(Flow::Continue),
            Node::Template { pos, name, pipe } => {
                self.at(*pos, format!("template {name:?}"));
                let Some((_, body)) = self.tree.defines.iter().rev().find(|(n, _)| n == name)
                else {
                    return Err(self
                        .err(format!(
                            "template: no template {name:?} associated with template {:?}",
                            self.tree.name
                        ))
                        .into());
                };
                let data = match pipe {
                    Some(p) => self.eval_pipeline(dot, p)?,
                    None => Value::Nil(NilKind::Pointer),
                };
                if self.depth >= MAX_DEPTH {
                    return Err(self
                        .err(format!("exceeded maximum template depth ({MAX_DEPTH})"))
                        .into());
                }
                let saved_vars =
                    std::mem::replace(&mut self.vars, vec![("$".into(), data.clone())]);
                let saved_name = std::mem::replace(&mut self.name, name.clone());
                self.depth += 1;
                let r = self.walk_list(&data, body);
                self.depth -= 1;
                self.vars = saved_vars;
                self.name = saved_name;
                match r {
                    Err(Flow::Break | Flow::Continue) => Ok(()),
                    other => other,
                }
            }
        }
    }

    fn walk_if_with(&mut self, dot: &Value, b: &Branch, with: bool) -> Result<(), Flow> {
        let mark = self.vars.len();
        let v = self.eval_pipeline(dot, &b.pipe)?;
        let r = if v.truth() {
            if with {
                self.walk_list(&v, &b.list)
            } else {
                self.walk_list(dot, &b.list)
            }
        } else if let Some(e) = &b.else_list {
            self.walk_list(dot, e)
        } else {
            Ok(())
        };
        self.vars.truncate(mark);
        r
    }

    fn walk_range(&mut self, dot: &Value, b: &Branch) -> Result<(), Flow> {
        let mark = self.vars.len();
        // The range's variables are set per element, not from the pipeline.
        let mut pipe = b.pipe.clone();
        let decl = std::mem::take(&mut pipe.decl);
        let v = self.eval_pipeline(dot, &pipe)?;
        let items: Vec<(Value, Value)> = match &v {
            Value::List(l) => l
                .iter()
                .enumerate()
                .map(|(i, e)| (Value::Int(i as i64), e.clone()))
                .collect(),
            Value::Map(m) => sorted(m)
                .into_iter()
                .map(|(k, v)| (Value::Str(k.clone()), v.clone()))
                .collect(),
            Value::Int(n) => (0..*n).map(|i| (Value::Int(i), Value::Int(i))).collect(),
            Value::Missing | Value::Nil(_) => Vec::new(),
            other => {
                // As Go: the error is placed at the last node the pipeline evaluated.
                return Err(self
                    .err(format!("range can't iterate over {}", other.print()))
                    .into());
            }
        };
        if items.is_empty() {
            let r = match &b.else_list {
                Some(e) => self.walk_list(dot, e),
                None => Ok(()),
            };
            self.vars.truncate(mark);
            return r;
        }
        for (k, e) in items {
            match decl.len() {
                1 => self.set_or_push(&decl[0], e.clone(), b.pipe.is_assign, mark),
                2 => {
                    self.set_or_push(&decl[0], k, b.pipe.is_assign, mark);
                    self.set_or_push(&decl[1], e.clone(), b.pipe.is_assign, mark);
                }
                _ => {}
            }
            let r = self.walk_list(&e, &b.list);
            self.vars
                .truncate(mark + if b.pipe.is_assign { 0 } else { decl.len() });
            match r {
                Ok(()) | Err(Flow::Continue) => {}
                Err(Flow::Break) => break,
                Err(e) => {
                    self.vars.truncate(mark);
                    return Err(e);
                }
            }
            // Fresh variables for the next element.
            self.vars.truncate(mark);
        }
        self.vars.truncate(mark);
        Ok(())
    }

    fn set_or_push(&mut self, name: &str, v: Value, assign: bool, _mark: usize) {
        if assign {
            if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                slot.1 = v;
            }
        } else {
            self.vars.push((name.to_string(), v));
        }
    }

    fn eval_pipeline(&mut self, dot: &Value, pipe: &Pipe) -> Result<Value, Flow> {
        self.at(pipe.pos, pipe.to_string());
        let mut value: Option<Value> = None;
        for c in &pipe.cmds {
            value = Some(self.eval_command(dot, c, value)?);
        }
        let v = value.unwrap_or(Value::Missing);
        for name in &pipe.decl {
            if pipe.is_assign {
                if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                    slot.1 = v.clone();
                }
            } else {
                self.vars.push((name.clone(), v.clone()));
            }
        }
        Ok(v)
    }

    fn eval_command(&mut self, dot: &Value, cmd: &Cmd, fin: Option<Value>) -> Result<Value, Flow> {
        let first = &cmd.args[0];
        let rest = &cmd.args[1..];
        match first {
            Arg::Field(pos, names) => {
                self.at(*pos, first.to_string());
                Ok(self.eval_field_chain(dot, dot.clone(), names, rest, fin)?)
            }
            Arg::Chain(pos, node, names) => {
                self.at(*pos, first.to_string());
                let recv = self.eval_arg(dot, node)?;
                Ok(self.eval_field_chain(dot, recv, names, rest, fin)?)
            }
            Arg::Variable(pos, name, names) => {
                self.at(*pos, first.to_string());
                let v = self.var(name)?;
                if names.is_empty() {
                    self.no_args(first, rest, &fin)?;
                    return Ok(v);
                }
                Ok(self.eval_field_chain(dot, v, names, rest, fin)?)
            }
            Arg::Ident(pos, name) => {
                self.at(*pos, name.clone());
                self.call(dot, cmd, name, rest, fin)
            }
            Arg::Pipe(_, p) => {
                self.no_args(first, rest, &fin)?;
                self.eval_pipeline(dot, p)
            }
            Arg::Nil(pos) => {
                self.at(*pos, "nil".into());
                Err(self.err("nil is not a command").into())
            }
            other => {
                self.no_args(other, rest, &fin)?;
                Ok(self.constant(dot, other))
            }
        }
    }

    fn no_args(&mut self, node: &Arg, rest: &[Arg], fin: &Option<Value>) -> Result<(), Flow> {
        if !rest.is_empty() || fin.is_some() {
            self.at(node.pos(), node.to_string());
            return Err(self
                .err(format!("can't give argument to non-function {node}"))
                .into());
        }
        Ok(())
    }

    fn constant(&self, dot: &Value, a: &Arg) -> Value {
        match a {
            Arg::Dot(_) => dot.clone(),
            Arg::Bool(_, b) => Value::Bool(*b),
            Arg::Str(_, s, _) => Value::Str(s.clone()),
            Arg::Number(_, n) => {
                if n.is_float {
                    Value::Float(n.float.unwrap_or(0.0))
                } else if let Some(i) = n.int {
                    Value::Int(i)
                } else {
                    Value::Float(n.float.unwrap_or(0.0))
                }
            }
            _ => Value::Nil(NilKind::Pointer),
        }
    }

    fn var(&self, name: &str) -> Result<Value, String> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| self.err(format!("undefined variable: {name}")))
    }

    /// An argument's value (fields without arguments, nested pipelines, constants).
    fn eval_arg(&mut self, dot: &Value, a: &Arg) -> Result<Value, Flow> {
        match a {
            Arg::Field(pos, names) => {
                self.at(*pos, a.to_string());
                Ok(self.eval_field_chain(dot, dot.clone(), names, &[], None)?)
            }
            Arg::Variable(pos, name, names) => {
                self.at(*pos, a.to_string());
                let v = self.var(name)?;
                if names.is_empty() {
                    return Ok(v);
                }
                Ok(self.eval_field_chain(dot, v, names, &[], None)?)
            }
            Arg::Chain(pos, node, names) => {
                self.at(*pos, a.to_string());
                let recv = self.eval_arg(dot, node)?;
                Ok(self.eval_field_chain(dot, recv, names, &[], None)?)
            }
            Arg::Pipe(_, p) => self.eval_pipeline(dot, p),
            Arg::Ident(pos, name) => {
                self.at(*pos, name.clone());
                let cmd = Cmd {
                    pos: *pos,
                    args: vec![a.clone()],
                };
                self.call(dot, &cmd, name, &[], None)
            }
            Arg::Nil(_) => Ok(Value::Nil(NilKind::Pointer)),
            other => Ok(self.constant(dot, other)),
        }
    }

    fn eval_field_chain(
        &mut self,
        dot: &Value,
        mut recv: Value,
        names: &[String],
        args: &[Arg],
        fin: Option<Value>,
    ) -> Result<Value, String> {
        let n = names.len();
        for (i, name) in names.iter().enumerate() {
            if i + 1 < n {
                recv = self.eval_field(dot, name, recv, &[], None)?;
            } else {
                return self.eval_field(dot, name, recv, args, fin);
            }
        }
        Ok(recv)
    }

    fn eval_field(
        &mut self,
        dot: &Value,
        name: &str,
        recv: Value,
        args: &[Arg],
        fin: Option<Value>,
    ) -> Result<Value, String> {
        let has_args = !args.is_empty() || fin.is_some();
        match &recv {
            Value::Missing => {
                if self.missing == MissingKey::Error {
                    return Err(self.err(format!("nil data; no entry for key \"{name}\"")));
                }
                Ok(Value::Missing)
            }
            Value::Struct(s) => {
                if let Some((_, m)) = s.methods.iter().find(|(n, _)| *n == name) {
                    let mut vals = Vec::new();
                    for a in args {
                        vals.push(self.eval_arg(dot, a).map_err(|f| match f {
                            Flow::Error(e) => e,
                            _ => String::new(),
                        })?);
                    }
                    if let Some(f) = fin {
                        vals.push(f);
                    }
                    return m(s, &vals).map_err(|e| self.err(e));
                }
                match s.field(name) {
                    Some(v) if has_args => {
                        let _ = v;
                        Err(self.err(format!(
                            "{name} has arguments but cannot be invoked as function"
                        )))
                    }
                    Some(v) => Ok(v.clone()),
                    None if s.map_like => Ok(Value::Missing),
                    None => Err(self.err(format!(
                        "can't evaluate field {name} in type {}",
                        s.type_name
                    ))),
                }
            }
            Value::Map(m) => {
                if has_args {
                    return Err(self.err(format!("{name} is not a method but has arguments")));
                }
                match m.iter().find(|(k, _)| k == name) {
                    Some((_, v)) => Ok(v.clone()),
                    None if self.missing == MissingKey::Error => {
                        Err(self.err(format!("map has no entry for key \"{name}\"")))
                    }
                    None => Ok(Value::Missing),
                }
            }
            Value::Nil(NilKind::Map) => {
                if self.missing == MissingKey::Error {
                    return Err(self.err(format!("map has no entry for key \"{name}\"")));
                }
                Ok(Value::Missing)
            }
            Value::Nil(NilKind::Pointer) => Err(self.err(format!(
                "nil pointer evaluating {}.{name}",
                recv.type_name()
            ))),
            other => Err(self.err(format!(
                "can't evaluate field {name} in type {}",
                other.type_name()
            ))),
        }
    }

    /// Calls a function; `and`/`or` evaluate their arguments only as needed.
    fn call(
        &mut self,
        dot: &Value,
        cmd: &Cmd,
        name: &str,
        rest: &[Arg],
        fin: Option<Value>,
    ) -> Result<Value, Flow> {
        let cmd_text = cmd.to_string();
        if name == "and" || name == "or" {
            if rest.is_empty() && fin.is_none() {
                self.at(cmd.pos, cmd_text);
                return Err(self
                    .err(format!(
                        "wrong number of args for {name}: want at least 1 got 0"
                    ))
                    .into());
            }
            let mut last = Value::Missing;
            for a in rest {
                last = self.eval_arg(dot, a)?;
                let t = last.truth();
                if (name == "and" && !t) || (name == "or" && t) {
                    return Ok(last);
                }
            }
            if let Some(f) = fin {
                last = f;
            }
            return Ok(last);
        }
        let mut vals = Vec::with_capacity(rest.len() + 1);
        for a in rest {
            vals.push(self.eval_arg(dot, a)?);
        }
        if let Some(f) = fin {
            vals.push(f);
        }
        self.at(cmd.pos, cmd_text);
        match self.funcs.call(name, &vals) {
            Ok(v) => Ok(v),
            Err(funcs::CallError::Arity(msg)) | Err(funcs::CallError::Type(msg)) => {
                Err(self.err(msg).into())
            }
            Err(funcs::CallError::Failed(msg)) => {
                Err(self.err(format!("error calling {name}: {msg}")).into())
            }
        }
    }
}

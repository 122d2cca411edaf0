//! Evaluation scope: which names exist (`var.*`, `local.*`, `path.*`, functions), checking an
//! expression's references with their exact positions, and evaluating it with hcl-rs.

use std::collections::{BTreeMap, HashSet};
use std::ops::Range;
use std::path::PathBuf;

use hcl::edit::expr::{Expression, ForExpr, FuncCall, Traversal, TraversalOperator};
use hcl::edit::template::ForDirective;
use hcl::edit::visit::{self, Visit};
use hcl::edit::Span;
use hcl::eval::{Context, Evaluate};
use hcl::Value;

use super::diagnostics::{suggest, Diagnostics, SourceFile};
use super::functions;

/// The byte span of anything hcl-edit parsed (always present for parsed input).
pub(crate) fn span_of(x: &impl Span) -> Range<usize> {
    x.span().unwrap_or(0..0)
}

/// A name an expression uses: `root.attr` (e.g. `var.region`) or a function.
#[derive(Debug)]
pub(crate) enum Use {
    Ref {
        root: String,
        attr: Option<String>,
        span: Range<usize>,
    },
    Func {
        name: String,
        span: Range<usize>,
    },
}

/// Collects the names an expression uses, skipping `for` iteration variables.
#[derive(Default)]
struct Collector {
    uses: Vec<Use>,
    bound: Vec<String>,
}

impl Collector {
    fn root_ref(&mut self, root: &Expression, attr: Option<String>, span: Range<usize>) -> bool {
        if let Expression::Variable(v) = root {
            let name = v.as_str().to_string();
            if !self.bound.contains(&name) {
                self.uses.push(Use::Ref {
                    root: name,
                    attr,
                    span,
                });
            }
            true
        } else {
            false
        }
    }
}

impl Visit for Collector {
    fn visit_traversal(&mut self, node: &Traversal) {
        let attr = match node.operators.first().map(|o| o.value()) {
            Some(TraversalOperator::GetAttr(id)) => Some(id.as_str().to_string()),
            _ => None,
        };
        // Underline `var.name`, not the whole `var.name[0].x` chain.
        let span = match node.operators.first() {
            Some(op) if attr.is_some() => {
                span_of(&node.expr).start..span_of(op).end.max(span_of(&node.expr).end)
            }
            _ => span_of(&node.expr),
        };
        if !self.root_ref(&node.expr, attr, span) {
            self.visit_expr(&node.expr);
        }
        for op in &node.operators {
            if let TraversalOperator::Index(e) = op.value() {
                self.visit_expr(e);
            }
        }
    }

    fn visit_expr(&mut self, node: &Expression) {
        if let Expression::Variable(v) = node {
            self.root_ref(node, None, span_of(v));
        } else {
            visit::visit_expr(self, node);
        }
    }

    fn visit_func_call(&mut self, node: &FuncCall) {
        let name = if node.name.namespace.is_empty() {
            node.name.name.as_str().to_string()
        } else {
            let mut parts: Vec<&str> = node.name.namespace.iter().map(|n| n.as_str()).collect();
            parts.push(node.name.name.as_str());
            parts.join("::")
        };
        self.uses.push(Use::Func {
            name,
            span: span_of(&node.name.name),
        });
        visit::visit_func_args(self, &node.args);
    }

    fn visit_for_expr(&mut self, node: &ForExpr) {
        // The collection is evaluated outside the loop's scope.
        self.visit_expr(&node.intro.collection_expr);
        let n = self.bound.len();
        self.bound.push(node.intro.value_var.as_str().to_string());
        if let Some(k) = &node.intro.key_var {
            self.bound.push(k.as_str().to_string());
        }
        if let Some(k) = &node.key_expr {
            self.visit_expr(k);
        }
        self.visit_expr(&node.value_expr);
        if let Some(c) = &node.cond {
            self.visit_expr(&c.expr);
        }
        self.bound.truncate(n);
    }

    fn visit_for_directive(&mut self, node: &ForDirective) {
        let f = &node.for_expr;
        self.visit_expr(&f.collection_expr);
        let n = self.bound.len();
        self.bound.push(f.value_var.as_str().to_string());
        if let Some(k) = &f.key_var {
            self.bound.push(k.as_str().to_string());
        }
        self.visit_template(&f.template);
        self.bound.truncate(n);
    }
}

/// Every reference and function call in `expr`.
pub(crate) fn uses(expr: &Expression) -> Vec<Use> {
    let mut c = Collector::default();
    c.visit_expr(expr);
    c.uses
}

/// Names and values visible to expressions, plus the file they come from.
pub(crate) struct Scope {
    pub file: SourceFile,
    /// The template's directory: relative paths and `file()` resolve against it.
    pub base_dir: PathBuf,
    /// Declared variable names (known before their values).
    pub var_names: Vec<String>,
    /// Declared local names.
    pub local_names: Vec<String>,
    pub vars: BTreeMap<String, Value>,
    pub locals: BTreeMap<String, Value>,
    pub sensitive_vars: HashSet<String>,
    pub sensitive_locals: HashSet<String>,
    /// Variables and locals whose value is unknown because of a reported error. Expressions
    /// that read them are skipped, so one mistake is not reported again at every use.
    pub failed: HashSet<(String, String)>,
    ctx: Context<'static>,
}

impl Scope {
    pub fn new(file: SourceFile, base_dir: PathBuf) -> Self {
        let mut s = Scope {
            file,
            base_dir,
            var_names: Vec::new(),
            local_names: Vec::new(),
            vars: BTreeMap::new(),
            locals: BTreeMap::new(),
            sensitive_vars: HashSet::new(),
            sensitive_locals: HashSet::new(),
            failed: HashSet::new(),
            ctx: Context::new(),
        };
        s.rebuild();
        s
    }

    /// Refreshes the evaluation context after `vars` or `locals` changed.
    pub fn rebuild(&mut self) {
        let mut ctx = Context::new();
        functions::declare(&mut ctx);
        let obj = |m: &BTreeMap<String, Value>| {
            Value::Object(m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        };
        ctx.declare_var("var", obj(&self.vars));
        ctx.declare_var("local", obj(&self.locals));
        let cwd = std::env::current_dir().unwrap_or_default();
        let mut path = hcl::Map::new();
        path.insert(
            "root".to_string(),
            Value::from(self.base_dir.display().to_string()),
        );
        path.insert("cwd".to_string(), Value::from(cwd.display().to_string()));
        ctx.declare_var("path", Value::Object(path));
        self.ctx = ctx;
    }

    /// Reports every unknown reference or function in `expr`; true when there is none.
    pub fn check_refs(&self, expr: &Expression, d: &mut Diagnostics) -> bool {
        let mut ok = true;
        for u in uses(expr) {
            if let Err(msg) = self.check_use(&u) {
                let span = match &u {
                    Use::Ref { span, .. } | Use::Func { span, .. } => span.clone(),
                };
                d.push(self.file.error(span, msg));
                ok = false;
            }
        }
        ok
    }

    fn check_use(&self, u: &Use) -> Result<(), String> {
        match u {
            Use::Func { name, .. } => {
                if functions::NAMES.contains(&name.as_str()) {
                    Ok(())
                } else {
                    let hint = suggest(name, &functions::NAMES)
                        .map(|s| format!(" (did you mean `{s}`?)"))
                        .unwrap_or_default();
                    Err(format!(
                        "unknown function `{name}`{hint}; available: {}",
                        functions::NAMES.join(", ")
                    ))
                }
            }
            Use::Ref { root, attr, .. } => {
                let (what, names): (&str, Vec<&str>) = match root.as_str() {
                    "var" => (
                        "variable",
                        self.var_names.iter().map(|s| s.as_str()).collect(),
                    ),
                    "local" => (
                        "local",
                        self.local_names.iter().map(|s| s.as_str()).collect(),
                    ),
                    "path" => ("path", vec!["root", "cwd"]),
                    other => {
                        let hint = suggest(other, &["var", "local", "path"])
                            .map(|s| format!(" (did you mean `{s}`?)"))
                            .unwrap_or_default();
                        return Err(format!(
                            "unknown name `{other}`{hint}; expected var.NAME, local.NAME, path.root or path.cwd"
                        ));
                    }
                };
                let Some(attr) = attr else {
                    return Err(format!(
                        "`{root}` must be followed by a name, as in `{root}.NAME`"
                    ));
                };
                if names.contains(&attr.as_str()) {
                    return Ok(());
                }
                let hint = suggest(attr, &names)
                    .map(|s| format!(" (did you mean `{root}.{s}`?)"))
                    .unwrap_or_default();
                Err(match root.as_str() {
                    "path" => format!("unknown `path.{attr}`; expected path.root or path.cwd"),
                    _ => format!("reference to undeclared {what} `{root}.{attr}`{hint}"),
                })
            }
        }
    }

    /// Whether `expr` reads a variable or local whose error is already reported.
    pub fn reads_failed(&self, expr: &Expression) -> bool {
        !self.failed.is_empty()
            && uses(expr).into_iter().any(|u| match u {
                Use::Ref {
                    root,
                    attr: Some(a),
                    ..
                } => self.failed.contains(&(root, a)),
                _ => false,
            })
    }

    /// Whether `expr` reads a sensitive variable or local.
    pub fn is_sensitive(&self, expr: &Expression) -> bool {
        uses(expr).iter().any(|u| match u {
            Use::Ref {
                root,
                attr: Some(a),
                ..
            } => {
                (root == "var" && self.sensitive_vars.contains(a))
                    || (root == "local" && self.sensitive_locals.contains(a))
            }
            _ => false,
        })
    }

    /// Evaluates `expr` (its references must already be checked).
    pub fn eval(&self, expr: &Expression) -> Result<Value, String> {
        let e: hcl::Expression = expr.clone().into();
        functions::with_base_dir(&self.base_dir, || e.evaluate(&self.ctx)).map_err(|err| {
            // hcl-rs pretty-prints values over several lines; a diagnostic is one line.
            let msg = err
                .kind()
                .to_string()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            // Messages quote the values involved: hide sensitive ones.
            if self.is_sensitive(expr) {
                super::model::redact(&self.sensitive_strings(), &msg)
            } else {
                msg
            }
        })
    }

    /// Every string inside a sensitive variable or local known so far.
    fn sensitive_strings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for n in &self.sensitive_vars {
            if let Some(v) = self.vars.get(n) {
                leaf_strings(v, &mut out);
            }
        }
        for n in &self.sensitive_locals {
            if let Some(v) = self.locals.get(n) {
                leaf_strings(v, &mut out);
            }
        }
        out
    }
}

/// The kind of a value, for messages ("expected a number, found a string").
pub(crate) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Every string inside a value (for redaction of sensitive values).
pub(crate) fn leaf_strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| leaf_strings(x, out)),
        Value::Object(o) => o.values().for_each(|x| leaf_strings(x, out)),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

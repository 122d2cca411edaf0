//! `variable` blocks: types, values with Packer's precedence, validation rules, sensitivity.
//!
//! Precedence, lowest to highest (later wins): `default`, `FORGE_VAR_<name>` environment
//! variables, `-var-file` files in the order given, `-var name=value` in the order given.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

use hcl::edit::expr::Expression;
use hcl::edit::structure::{Attribute, Block, Body};
use hcl::Value;

use super::decode::Reader;
use super::diagnostics::{suggest, Diagnostic, Diagnostics, SourceFile};
use super::eval::{kind_of, leaf_strings, span_of, uses, Scope, Use};
use super::parse;
use super::LoadOptions;

/// Prefix of environment variables that set template variables.
pub const ENV_PREFIX: &str = "FORGE_VAR_";

/// A variable's declared type.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum VarType {
    Any,
    String,
    Number,
    Bool,
    List(Box<VarType>),
    Map(Box<VarType>),
}

impl fmt::Display for VarType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VarType::Any => f.write_str("any"),
            VarType::String => f.write_str("string"),
            VarType::Number => f.write_str("number"),
            VarType::Bool => f.write_str("bool"),
            VarType::List(t) => write!(f, "list({t})"),
            VarType::Map(t) => write!(f, "map({t})"),
        }
    }
}

/// Parses a type expression: `string`, `number`, `bool`, `any`, `list(T)`, `set(T)`, `map(T)`.
fn parse_type(e: &Expression) -> Result<VarType, String> {
    match e {
        Expression::Variable(v) => match v.as_str() {
            "string" => Ok(VarType::String),
            "number" => Ok(VarType::Number),
            "bool" => Ok(VarType::Bool),
            "any" => Ok(VarType::Any),
            other => Err(format!("unknown type `{other}`")),
        },
        Expression::FuncCall(c) if c.args.len() == 1 => {
            let inner = parse_type(c.args.iter().next().unwrap_or(e))?;
            match c.name.name.as_str() {
                "list" | "set" => Ok(VarType::List(Box::new(inner))),
                "map" => Ok(VarType::Map(Box::new(inner))),
                other => Err(format!("unknown type constructor `{other}`")),
            }
        }
        _ => Err("not a type".into()),
    }
    .map_err(|why| {
        format!("{why}; expected string, number, bool, any, list(TYPE), set(TYPE) or map(TYPE)")
    })
}

/// The type a default implies when `type` is not given.
fn infer_type(v: &Value) -> VarType {
    match v {
        Value::String(_) => VarType::String,
        Value::Number(_) => VarType::Number,
        Value::Bool(_) => VarType::Bool,
        _ => VarType::Any,
    }
}

/// Converts `v` to `ty` with cty's safe conversions (number ↔ numeric string, bool ↔
/// "true"/"false").
pub(crate) fn convert(v: Value, ty: &VarType) -> Result<Value, String> {
    let fail = |v: &Value| Err(format!("expected {ty}, found {}", kind_of(v)));
    match (ty, v) {
        (VarType::Any, v) | (_, v @ Value::Null) => Ok(v),
        (VarType::String, Value::String(s)) => Ok(Value::String(s)),
        (VarType::String, Value::Number(n)) => Ok(Value::String(n.to_string())),
        (VarType::String, Value::Bool(b)) => Ok(Value::String(b.to_string())),
        (VarType::Number, Value::Number(n)) => Ok(Value::Number(n)),
        (VarType::Number, Value::String(s)) => match hcl::edit::parser::parse_expr(s.trim()) {
            Ok(Expression::Number(n)) => Ok(Value::Number(*n.value())),
            _ => Err(format!("expected number, found the string \"{s}\"")),
        },
        (VarType::Bool, Value::Bool(b)) => Ok(Value::Bool(b)),
        (VarType::Bool, Value::String(s)) if s == "true" || s == "false" => {
            Ok(Value::Bool(s == "true"))
        }
        (VarType::List(t), Value::Array(xs)) => xs
            .into_iter()
            .enumerate()
            .map(|(i, x)| convert(x, t).map_err(|e| format!("element {i}: {e}")))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        (VarType::Map(t), Value::Object(o)) => o
            .into_iter()
            .map(|(k, x)| {
                let r = convert(x, t).map_err(|e| format!("key \"{k}\": {e}"));
                r.map(|x| (k, x))
            })
            .collect::<Result<hcl::Map<_, _>, _>>()
            .map(Value::Object),
        (_, v) => fail(&v),
    }
}

/// Where a variable's final value came from, for messages.
#[derive(Debug, Clone)]
enum Origin {
    Default,
    Env(String),
    VarFile(String),
    Cli,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("its default"),
            Origin::Env(n) => write!(f, "environment variable {n}"),
            Origin::VarFile(p) => write!(f, "var file {p}"),
            Origin::Cli => f.write_str("-var"),
        }
    }
}

/// A declared variable while values are being gathered.
pub(crate) struct Decl<'a> {
    pub name: String,
    pub block: &'a Block,
    pub ty: VarType,
    pub description: Option<String>,
    pub sensitive: bool,
    value: Option<(Value, Origin)>,
    /// Its value is unknown or wrong, and that is already reported.
    failed: bool,
    validations: Vec<(&'a Attribute, Option<String>)>,
}

/// Reads every `variable` block (names, types, defaults, flags) and records the names in `scope`.
pub(crate) fn declare<'a>(scope: &mut Scope, body: &'a Body, d: &mut Diagnostics) -> Vec<Decl<'a>> {
    let mut decls: Vec<Decl<'a>> = Vec::new();
    for block in body.blocks().filter(|b| b.ident.as_str() == "variable") {
        let [label] = block.labels.as_slice() else {
            d.push(scope.file.error(
                super::decode::head_span(block),
                "a variable block takes exactly one label, its name: variable \"NAME\" { ... }",
            ));
            continue;
        };
        let name = label.as_str().to_string();
        if let Some(first) = decls.iter().find(|x| x.name == name) {
            let (line, _) = scope.file.locate(span_of(first.block).start);
            d.push(scope.file.error(
                span_of(label),
                format!("variable `{name}` is declared twice (first on line {line})"),
            ));
            continue;
        }
        let mut r = Reader::new(scope, block, d);
        let ty = match r.attr("type") {
            Some(a) => match parse_type(&a.value) {
                Ok(t) => Some(t),
                Err(msg) => {
                    d.push(
                        scope
                            .file
                            .error(span_of(&a.value), format!("`type`: {msg}")),
                    );
                    None
                }
            },
            None => None,
        };
        let default = match r.attr("default") {
            // A default is a constant: it may call functions but not read other values.
            Some(a) => {
                if let Some(span) = first_ref(&a.value) {
                    d.push(scope.file.error(
                        span,
                        "a variable's default cannot refer to other values; use a local instead",
                    ));
                    None
                } else {
                    r.value("default", d).map(|(v, _)| (v, a))
                }
            }
            None => None,
        };
        let description = r.string("description", d);
        let sensitive = r.bool("sensitive", d).unwrap_or(false);
        let mut validations = Vec::new();
        r.blocks("validation");
        for v in block
            .body
            .blocks()
            .filter(|b| b.ident.as_str() == "validation")
        {
            let mut vr = Reader::new(scope, v, d);
            // Taken from the block itself: it outlives the reader (and its borrow of `scope`).
            vr.attr("condition");
            let cond = v.body.get_attribute("condition");
            let msg = vr.string("error_message", d);
            if cond.is_none() {
                vr.missing("condition", d);
            }
            vr.finish(d);
            if let Some(c) = cond {
                validations.push((c, msg));
            }
        }
        r.finish(d);
        let ty = ty.unwrap_or_else(|| {
            default
                .as_ref()
                .map_or(VarType::Any, |(v, _)| infer_type(v))
        });
        let value = match default.clone() {
            Some((v, a)) => match convert(v, &ty) {
                Ok(v) => Some((v, Origin::Default)),
                Err(msg) => {
                    d.push(
                        scope
                            .file
                            .error(span_of(&a.value), format!("`default`: {msg}")),
                    );
                    None
                }
            },
            None => None,
        };
        decls.push(Decl {
            name,
            block,
            ty,
            description,
            sensitive,
            failed: default.is_some() && value.is_none(),
            value,
            validations,
        });
    }
    scope.var_names = decls.iter().map(|x| x.name.clone()).collect();
    decls
}

/// Converts a raw string from `-var` or the environment: strings stay as they are, other types
/// are parsed as HCL expressions (`-var 'tags=["a","b"]'`).
fn from_raw(raw: &str, ty: &VarType, sensitive: bool) -> Result<Value, String> {
    from_raw_inner(raw, ty).map_err(|msg| {
        if sensitive {
            super::model::redact(&[raw.to_string()], &msg)
        } else {
            msg
        }
    })
}

fn from_raw_inner(raw: &str, ty: &VarType) -> Result<Value, String> {
    match ty {
        VarType::String | VarType::Any => Ok(Value::String(raw.to_string())),
        _ => {
            let e = hcl::edit::parser::parse_expr(raw)
                .map_err(|e| format!("\"{raw}\" is not a valid {ty}: {}", e.message()))?;
            let v = hcl::eval::Evaluate::evaluate(
                &hcl::Expression::from(e),
                &hcl::eval::Context::new(),
            )
            .map_err(|e| format!("\"{raw}\" is not a valid {ty}: {}", e.kind()))?;
            convert(v, ty)
        }
    }
}

/// Applies env, var files and `-var` values over the defaults, then checks that every variable
/// has a value and passes its validation rules. Fills `scope.vars`.
pub(crate) fn assign(
    scope: &mut Scope,
    decls: &mut [Decl],
    opts: &LoadOptions,
    d: &mut Diagnostics,
) {
    for (key, raw) in &opts.env {
        let Some(name) = key.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        // Unknown FORGE_VAR_ names are ignored (as Packer): the environment is shared.
        if let Some(decl) = decls.iter_mut().find(|x| x.name == name) {
            match from_raw(raw, &decl.ty, decl.sensitive) {
                Ok(v) => decl.value = Some((v, Origin::Env(key.clone()))),
                Err(msg) => {
                    decl.failed = true;
                    d.push(Diagnostic::unlocated(
                        format!("environment variable {key}"),
                        format!("variable `{name}`: {msg}"),
                    ))
                }
            }
        }
    }
    for path in &opts.var_files {
        let shown = path.display().to_string();
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                d.push(Diagnostic::input(
                    shown,
                    format!("cannot read var file: {e}"),
                ));
                continue;
            }
        };
        let file = SourceFile::new(shown.clone(), text);
        let body = match parse::parse(&file) {
            Ok(b) => b,
            Err(diag) => {
                d.push(diag);
                continue;
            }
        };
        // Var files hold constants; functions are allowed, references are not.
        let consts = Scope::new(file, scope.base_dir.clone());
        for b in body.blocks() {
            d.push(consts.file.error(
                span_of(&b.ident),
                "a var file holds only `name = value` assignments, not blocks",
            ));
        }
        for a in body.attributes() {
            let name = a.key.as_str();
            let Some(decl) = decls.iter_mut().find(|x| x.name == name) else {
                let names: Vec<&str> = scope.var_names.iter().map(|s| s.as_str()).collect();
                let hint = suggest(name, &names)
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                d.push(consts.file.error(
                    span_of(&a.key),
                    format!("var file sets undeclared variable `{name}`{hint}"),
                ));
                continue;
            };
            if let Some(span) = first_ref(&a.value) {
                decl.failed = true;
                d.push(consts.file.error(
                    span,
                    "a var file holds constants; it cannot refer to other values",
                ));
                continue;
            }
            if !consts.check_refs(&a.value, d) {
                decl.failed = true;
                continue;
            }
            let v = consts.eval(&a.value).and_then(|v| {
                let mut strings = Vec::new();
                leaf_strings(&v, &mut strings);
                convert(v, &decl.ty).map_err(|msg| match decl.sensitive {
                    true => super::model::redact(&strings, &msg),
                    false => msg,
                })
            });
            match v {
                Ok(v) => decl.value = Some((v, Origin::VarFile(shown.clone()))),
                Err(msg) => {
                    decl.failed = true;
                    d.push(
                        consts
                            .file
                            .error(span_of(&a.value), format!("variable `{name}`: {msg}")),
                    )
                }
            }
        }
    }
    for arg in &opts.vars {
        let Some((name, raw)) = arg.split_once('=') else {
            d.push(Diagnostic::input(
                "-var",
                format!("`{arg}` is not NAME=VALUE"),
            ));
            continue;
        };
        let Some(decl) = decls.iter_mut().find(|x| x.name == name) else {
            d.push(Diagnostic::unlocated(
                "-var",
                format!("`-var {name}=...` sets an undeclared variable `{name}`"),
            ));
            continue;
        };
        match from_raw(raw, &decl.ty, decl.sensitive) {
            Ok(v) => decl.value = Some((v, Origin::Cli)),
            Err(msg) => {
                decl.failed = true;
                d.push(Diagnostic::unlocated(
                    "-var",
                    format!("variable `{name}`: {msg}"),
                ))
            }
        }
    }

    for decl in decls.iter_mut() {
        match &decl.value {
            Some((v, _)) => {
                scope.vars.insert(decl.name.clone(), v.clone());
            }
            None if decl.failed => {}
            None => {
                decl.failed = true;
                d.push(scope.file.error(
                    super::decode::head_span(decl.block),
                    format!(
                        "variable `{n}` has no value; give it a default, or set it with -var {n}=VALUE, a -var-file, or {ENV_PREFIX}{n}",
                        n = decl.name
                    ),
                ));
            }
        }
        if decl.sensitive {
            scope.sensitive_vars.insert(decl.name.clone());
        }
    }
    scope.rebuild();

    // Validation rules see the final values.
    for decl in decls.iter_mut() {
        if decl.failed {
            continue;
        }
        for (cond, msg) in &decl.validations {
            if !check_self_refs(scope, &decl.name, &cond.value, d) {
                continue;
            }
            match scope.eval(&cond.value) {
                Ok(Value::Bool(true)) => {}
                Ok(Value::Bool(false)) => {
                    let origin = decl
                        .value
                        .as_ref()
                        .map(|(_, o)| o.to_string())
                        .unwrap_or_default();
                    let shown = match (&decl.value, decl.sensitive) {
                        (Some((Value::String(s), _)), false) => format!(" \"{s}\""),
                        _ => String::new(),
                    };
                    decl.failed = true;
                    d.push(scope.file.error(
                        span_of(&cond.value),
                        format!(
                            "invalid value{shown} for variable `{}` (from {origin}): {}",
                            decl.name,
                            msg.as_deref().unwrap_or("the validation condition is false")
                        ),
                    ));
                }
                Ok(other) => d.push(scope.file.error(
                    span_of(&cond.value),
                    format!("`condition` must be a bool, found {}", kind_of(&other)),
                )),
                Err(e) => d.push(
                    scope
                        .file
                        .error(span_of(&cond.value), format!("`condition`: {e}")),
                ),
            }
        }
    }
    for decl in decls.iter().filter(|x| x.failed) {
        scope.failed.insert(("var".to_string(), decl.name.clone()));
    }
}

/// The span of the first variable/local reference in `e`, if any.
fn first_ref(e: &Expression) -> Option<Range<usize>> {
    uses(e).into_iter().find_map(|u| match u {
        Use::Ref { span, .. } => Some(span),
        Use::Func { .. } => None,
    })
}

/// A validation condition may only read the variable it belongs to.
fn check_self_refs(scope: &Scope, name: &str, e: &Expression, d: &mut Diagnostics) -> bool {
    let mut ok = scope.check_refs(e, d);
    for u in uses(e) {
        if let Use::Ref { root, attr, span } = u {
            if !(root == "var" && attr.as_deref() == Some(name)) && ok {
                d.push(scope.file.error(
                    span,
                    format!("a validation condition may only refer to `var.{name}`"),
                ));
                ok = false;
            }
        }
    }
    ok
}

/// The final variables for the model, and every sensitive string for redaction.
pub(crate) fn finish(
    decls: Vec<Decl>,
    scope: &Scope,
) -> (BTreeMap<String, super::model::Variable>, Vec<String>) {
    let mut sensitive = Vec::new();
    let mut out = BTreeMap::new();
    for decl in decls {
        let Some(value) = scope.vars.get(&decl.name).cloned() else {
            continue;
        };
        if decl.sensitive {
            leaf_strings(&value, &mut sensitive);
        }
        out.insert(
            decl.name,
            super::model::Variable {
                description: decl.description,
                sensitive: decl.sensitive,
                value,
            },
        );
    }
    for name in &scope.sensitive_locals {
        if let Some(v) = scope.locals.get(name) {
            leaf_strings(v, &mut sensitive);
        }
    }
    (out, sensitive)
}

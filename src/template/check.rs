//! The whole check, in order: parse, variables, locals, sources, builds. Every stage reports all
//! of its problems and the next stage still runs where it can, so one run shows everything.

use std::path::{Path, PathBuf};

use hcl::edit::structure::Body;

use super::diagnostics::Diagnostics;
use super::eval::{span_of, Scope};
use super::model::{Local, SourceRef, Template};
use super::{build, locals, parse, source, vars, LoadOptions};

const TOP_LEVEL: [&str; 4] = ["variable", "locals", "source", "build"];

/// Parses and checks the template; the typed template when there are no problems.
pub(crate) fn run(
    path: &Path,
    opts: &LoadOptions,
    syntax_only: bool,
) -> (Option<Template>, Diagnostics) {
    let mut d = Diagnostics::new();
    let file = match parse::read(path) {
        Ok(f) => f,
        Err(e) => {
            d.push(e);
            return (None, d);
        }
    };
    let body = match parse::parse(&file) {
        Ok(b) => b,
        Err(e) => {
            d.push(e);
            return (None, d);
        }
    };
    if syntax_only {
        return (None, d);
    }
    let base_dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut scope = Scope::new(file, base_dir);
    let t = semantic(path, &body, &mut scope, opts, &mut d);
    (t.filter(|_| d.is_empty()), d)
}

fn semantic(
    path: &Path,
    body: &Body,
    scope: &mut Scope,
    opts: &LoadOptions,
    d: &mut Diagnostics,
) -> Option<Template> {
    top_level(scope, body, d);
    let mut decls = vars::declare(scope, body, d);
    vars::assign(scope, &mut decls, opts, d);
    let sensitivity = locals::evaluate(scope, body, d);

    // Sources first: builds refer to them. A source with errors is still "declared", so a
    // build naming it gets no second, misleading error.
    let mut declared: Vec<SourceRef> = Vec::new();
    let mut sources = Vec::new();
    for block in body.blocks().filter(|b| b.ident.as_str() == "source") {
        if let [k, n] = block.labels.as_slice() {
            if let Some(kind) = super::model::SourceKind::from_label(k.as_str()) {
                let r = SourceRef {
                    kind,
                    name: n.as_str().to_string(),
                };
                if declared.contains(&r) {
                    d.push(scope.file.error(
                        span_of(n),
                        format!(
                            "source \"{}\" \"{}\" is declared twice",
                            k.as_str(),
                            n.as_str()
                        ),
                    ));
                    continue;
                }
                declared.push(r);
            }
        }
        if let Some(s) = source::decode(scope, block, d) {
            sources.push(s);
        }
    }
    let mut builds = Vec::new();
    for block in body.blocks().filter(|b| b.ident.as_str() == "build") {
        if let Some(b) = build::decode(scope, block, &declared, d) {
            builds.push(b);
        }
    }
    if builds.is_empty() && d.is_empty() {
        d.push(
            scope
                .file
                .error(0..0, "the template has no `build` block; nothing to build"),
        );
    }

    let (variables, sensitive) = vars::finish(decls, scope);
    let locals = scope
        .locals
        .iter()
        .map(|(k, v)| {
            let l = Local {
                sensitive: sensitivity.get(k).copied().unwrap_or(false),
                value: v.clone(),
            };
            (k.clone(), l)
        })
        .collect();
    Some(Template {
        path: path.to_path_buf(),
        variables,
        locals,
        sources,
        builds,
        sensitive,
    })
}

/// Only `variable`, `locals`, `source` and `build` blocks may appear at the top.
fn top_level(scope: &Scope, body: &Body, d: &mut Diagnostics) {
    for a in body.attributes() {
        d.push(scope.file.error(
            span_of(&a.key),
            format!(
                "unexpected attribute `{}` at the top level; expected {} blocks",
                a.key.as_str(),
                TOP_LEVEL.join(", ")
            ),
        ));
    }
    for b in body.blocks() {
        let id = b.ident.as_str();
        if !TOP_LEVEL.contains(&id) {
            let hint = super::diagnostics::suggest(id, &TOP_LEVEL)
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            d.push(scope.file.error(
                span_of(&b.ident),
                format!(
                    "unknown block `{id}`{hint}; expected {}",
                    TOP_LEVEL.join(", ")
                ),
            ));
        }
    }
}

//! `build` blocks: `sources`, `provisioner "validators" | "shell"`, `post-processor "manifest"`,
//! `retention`.

use std::collections::BTreeMap;

use hcl::edit::expr::{Expression, ObjectKey, TraversalOperator};
use hcl::edit::structure::Block;

use super::decode::{head_span, to_string, Reader};
use super::diagnostics::{suggest, Diagnostic, Diagnostics};
use super::eval::{span_of, Scope};
use super::model::{
    Argument, Build, PostProcessor, Provisioner, Retention, ShellProvisioner, SourceKind,
    SourceRef, ValidatorsProvisioner,
};

/// Decodes one `build` block; `declared` lists the template's sources. `None` when it has errors.
pub(crate) fn decode(
    scope: &Scope,
    block: &Block,
    declared: &[SourceRef],
    d: &mut Diagnostics,
) -> Option<Build> {
    let before = d.len();
    if !block.labels.is_empty() {
        d.push(scope.file.error(
            head_span(block),
            "a build block takes no labels; name it with `name = \"...\"` inside",
        ));
    }
    let mut r = Reader::new(scope, block, d);
    let name = r.string("name", d);
    let sources = match r.attr("sources") {
        Some(a) => sources(scope, &a.value, declared, d),
        None => {
            r.missing("sources", d);
            Vec::new()
        }
    };
    let mut provisioners = Vec::new();
    for p in r.blocks("provisioner") {
        if let Some(p) = provisioner(scope, p, d) {
            provisioners.push(p);
        }
    }
    let mut post_processors = Vec::new();
    for p in r.blocks("post-processor") {
        if let Some(p) = post_processor(scope, p, d) {
            post_processors.push(p);
        }
    }
    let retention = match r.blocks("retention").as_slice() {
        [] => None,
        [one, rest @ ..] => {
            for extra in rest {
                let (line, _) = scope.file.locate(span_of(&one.ident).start);
                d.push(scope.file.error(
                    span_of(&extra.ident),
                    format!("a build block takes one `retention` block (first on line {line})"),
                ));
            }
            retention(scope, one, d)
        }
    };
    r.finish(d);
    (d.len() == before).then_some(Build {
        name,
        sources,
        provisioners,
        post_processors,
        retention,
    })
}

/// `sources = [source.openstack.NAME, "source.image-file.NAME"]`: traversals or strings, each
/// naming a declared source. Not evaluated: these are references, not values.
fn sources(
    scope: &Scope,
    e: &Expression,
    declared: &[SourceRef],
    d: &mut Diagnostics,
) -> Vec<SourceRef> {
    let Expression::Array(items) = e else {
        d.push(scope.file.error(
            span_of(e),
            "`sources` must be a list such as [source.openstack.NAME]",
        ));
        return Vec::new();
    };
    let mut out = Vec::new();
    for item in items.iter() {
        let parts: Option<Vec<String>> = match item {
            Expression::Traversal(t) => match &t.expr {
                Expression::Variable(v) => {
                    let mut p = vec![v.as_str().to_string()];
                    for op in &t.operators {
                        match op.value() {
                            TraversalOperator::GetAttr(id) => p.push(id.as_str().to_string()),
                            _ => p.push(String::new()),
                        }
                    }
                    Some(p)
                }
                _ => None,
            },
            Expression::String(s) => Some(s.split('.').map(str::to_string).collect()),
            _ => None,
        };
        let span = span_of(item);
        let Some(parts) = parts else {
            d.push(scope.file.error(
                span,
                "expected a source reference such as source.openstack.NAME",
            ));
            continue;
        };
        let (kind, name) = match parts.as_slice() {
            [root, kind, name] if root == "source" => (kind.as_str(), name.as_str()),
            _ => {
                d.push(scope.file.error(
                    span,
                    format!(
                        "`{}` is not a source reference; expected source.TYPE.NAME",
                        parts.join(".")
                    ),
                ));
                continue;
            }
        };
        let Some(kind) = SourceKind::from_label(kind) else {
            d.push(scope.file.error(
                span,
                format!("unknown source type `{kind}` in `source.{kind}.{name}`; expected openstack or image-file"),
            ));
            continue;
        };
        let r = SourceRef {
            kind,
            name: name.to_string(),
        };
        if declared.contains(&r) {
            out.push(r);
        } else {
            let same_kind: Vec<&str> = declared
                .iter()
                .filter(|s| s.kind == kind)
                .map(|s| s.name.as_str())
                .collect();
            let hint = suggest(name, &same_kind)
                .map(|s| format!(" (did you mean `source.{}.{s}`?)", kind.label()))
                .unwrap_or_default();
            d.push(scope.file.error(
                span,
                format!(
                    "reference to undeclared source `source.{}.{name}`{hint}",
                    kind.label()
                ),
            ));
        }
    }
    if out.is_empty() && items.is_empty() {
        d.push(
            scope
                .file
                .error(span_of(e), "`sources` is empty; name at least one source"),
        );
    }
    out
}

fn one_label<'b>(
    scope: &Scope,
    block: &'b Block,
    what: &str,
    types: &str,
    d: &mut Diagnostics,
) -> Option<&'b str> {
    match block.labels.as_slice() {
        [l] => Some(l.as_str()),
        _ => {
            d.push(scope.file.error(
                head_span(block),
                format!("a {what} block takes one label, its type ({types})"),
            ));
            None
        }
    }
}

fn provisioner(scope: &Scope, block: &Block, d: &mut Diagnostics) -> Option<Provisioner> {
    let kind = one_label(
        scope,
        block,
        "provisioner",
        "\"validators\" or \"shell\"",
        d,
    )?;
    let mut r = Reader::new(scope, block, d);
    let out = match kind {
        "validators" => validators(&mut r, d).map(Provisioner::Validators),
        "shell" => shell(&mut r, d).map(Provisioner::Shell),
        other => {
            d.push(scope.file.error(
                span_of(&block.labels[0]),
                format!(
                    "unknown provisioner type \"{other}\"; expected \"validators\" or \"shell\""
                ),
            ));
            return None;
        }
    };
    r.finish(d);
    out
}

fn validators(r: &mut Reader, d: &mut Diagnostics) -> Option<ValidatorsProvisioner> {
    let spec = match r.attr("spec") {
        Some(_) => r.path("spec", d),
        None => {
            r.missing("spec", d);
            None
        }
    };
    if let Some((p, a)) = &spec {
        if let Err(msg) = check_spec(p, d) {
            d.push(r.scope.file.error(span_of(&a.value), msg));
        }
    }
    let test_only = r.bool("test_only", d).unwrap_or(false);
    let mut arguments = BTreeMap::new();
    if let Some(a) = r.attr("arguments") {
        let sensitive_keys = sensitive_keys(r.scope, &a.value);
        if let Some((v, _)) = r.value("arguments", d) {
            let map: Option<BTreeMap<String, Argument>> = v.as_object().and_then(|o| {
                o.iter()
                    .map(|(k, v)| {
                        let sensitive = sensitive_keys.as_ref().is_none_or(|ks| ks.contains(k));
                        to_string(v).map(|value| (k.clone(), Argument { value, sensitive }))
                    })
                    .collect()
            });
            match map {
                Some(m) => arguments = m,
                None => d.push(r.scope.file.error(
                    span_of(&a.value),
                    "`arguments` must be a map of strings, e.g. { java_distro = \"openjdk\" }",
                )),
            }
        }
    }
    Some(ValidatorsProvisioner {
        spec: spec?.0,
        arguments,
        test_only,
    })
}

/// Which keys of an `arguments = { ... }` literal read a sensitive value. `None` when that cannot
/// be told key by key (not a literal, computed keys): then every argument counts as sensitive
/// if the expression reads anything sensitive.
fn sensitive_keys(scope: &Scope, e: &Expression) -> Option<Vec<String>> {
    let whole = scope.is_sensitive(e);
    let Expression::Object(obj) = e else {
        return (!whole).then(Vec::new);
    };
    let mut keys = Vec::new();
    for (k, v) in obj.iter() {
        let key = match k {
            ObjectKey::Ident(id) => id.as_str().to_string(),
            ObjectKey::Expression(Expression::String(s)) => s.as_str().to_string(),
            ObjectKey::Expression(other) if !scope.is_sensitive(other) => continue,
            ObjectKey::Expression(_) => return None,
        };
        if scope.is_sensitive(v.expr()) {
            keys.push(key);
        }
    }
    Some(keys)
}

/// Checks the spec a validators provisioner names. Only existence for now: the spec loader
/// (`forge::spec::load`) is wired in here when the validator-language branch lands.
/// The spec must exist (reported at the template's `spec =`) and load, with every script it
/// names (its problems are reported where they are, in the spec file).
fn check_spec(path: &std::path::Path, d: &mut Diagnostics) -> Result<(), String> {
    if !path.is_file() {
        return Err(format!("spec file {} does not exist", path.display()));
    }
    if let Err(e) = crate::spec::load(path, &[]) {
        for p in e.problems() {
            let mut diag = Diagnostic::unlocated(p.file.display().to_string(), p.message.clone());
            if let Some((line, column)) = p.position {
                diag.line = Some(line);
                diag.column = Some(column);
            }
            d.push(diag);
        }
    }
    Ok(())
}

fn shell(r: &mut Reader, d: &mut Diagnostics) -> Option<ShellProvisioner> {
    match (r.attr("inline"), r.attr("script")) {
        (Some(_), Some(s)) => {
            d.push(r.scope.file.error(
                span_of(&s.key),
                "`script` conflicts with `inline`: set only one of inline, script",
            ));
            None
        }
        (Some(_), None) => r.strings("inline", d).map(ShellProvisioner::Inline),
        (None, Some(_)) => {
            let (p, a) = r.path("script", d)?;
            if p.is_file() {
                Some(ShellProvisioner::Script(p))
            } else {
                d.push(r.scope.file.error(
                    span_of(&a.value),
                    format!("script {} does not exist", p.display()),
                ));
                None
            }
        }
        (None, None) => {
            d.push(r.scope.file.error(
                r.head.clone(),
                format!(
                    "{} needs `inline` (a list of commands) or `script` (a file)",
                    r.what
                ),
            ));
            None
        }
    }
}

fn post_processor(scope: &Scope, block: &Block, d: &mut Diagnostics) -> Option<PostProcessor> {
    let kind = one_label(scope, block, "post-processor", "\"manifest\"", d)?;
    if kind != "manifest" {
        d.push(scope.file.error(
            span_of(&block.labels[0]),
            format!("unknown post-processor type \"{kind}\"; expected \"manifest\""),
        ));
        return None;
    }
    let mut r = Reader::new(scope, block, d);
    let output = match r.attr("output") {
        Some(_) => r.path("output", d).map(|(p, _)| p),
        None => Some(scope.base_dir.join("forge-manifest.json")),
    };
    r.finish(d);
    output.map(|output| PostProcessor::Manifest { output })
}

/// Most images one build keeps; a bound so a typo (`keep = 10000000`) is caught, not obeyed.
const MAX_KEEP: u64 = 1000;

/// `retention { keep = N, hide_older = BOOL, delete_unused_after = "30d" }`.
fn retention(scope: &Scope, block: &Block, d: &mut Diagnostics) -> Option<Retention> {
    if !block.labels.is_empty() {
        d.push(
            scope
                .file
                .error(head_span(block), "a retention block takes no labels"),
        );
    }
    let before = d.len();
    let mut r = Reader::new(scope, block, d);
    // At least 1: retention runs after a build, and must never remove the image just built.
    let keep = match r.attr("keep") {
        Some(_) => r.integer("keep", 1, MAX_KEEP, d),
        None => {
            r.missing("keep", d);
            None
        }
    };
    let hide_older = r.bool("hide_older", d).unwrap_or(false);
    let delete_unused_after = match r.value("delete_unused_after", d) {
        None => None,
        Some((v, a)) => match v.as_str().map(super::decode::parse_age) {
            Some(Ok(age)) => Some(age),
            Some(Err(why)) => {
                d.push(scope.file.error(
                    span_of(&a.value),
                    format!(
                        "`delete_unused_after`: {why}; expected an age such as \"30d\", \"12h\" \
                         or \"1d12h\" (units d, h, m, s, ms)"
                    ),
                ));
                None
            }
            None => {
                d.push(scope.file.error(
                    span_of(&a.value),
                    "`delete_unused_after` must be an age string such as \"30d\"",
                ));
                None
            }
        },
    };
    r.finish(d);
    (d.len() == before).then_some(Retention {
        keep: keep? as u32,
        hide_older,
        delete_unused_after,
    })
}

//! `locals` blocks: evaluated in dependency order, cycles reported, sensitivity inherited from
//! the variables and locals they read.

use std::collections::{BTreeMap, HashSet};

use hcl::edit::structure::{Attribute, Body};

use super::diagnostics::Diagnostics;
use super::eval::{span_of, uses, Scope, Use};

/// Evaluates every `locals` block in dependency order; a local that reads a sensitive variable
/// or local is sensitive. Fills `scope.locals`.
pub(crate) fn evaluate(
    scope: &mut Scope,
    body: &Body,
    d: &mut Diagnostics,
) -> BTreeMap<String, bool> {
    let mut pending: Vec<&Attribute> = Vec::new();
    for block in body.blocks().filter(|b| b.ident.as_str() == "locals") {
        if !block.labels.is_empty() {
            d.push(scope.file.error(
                super::decode::head_span(block),
                "a locals block takes no labels: locals { NAME = VALUE }",
            ));
        }
        for b in block.body.blocks() {
            d.push(scope.file.error(
                span_of(&b.ident),
                "a locals block holds only `name = value` assignments, not blocks",
            ));
        }
        for a in block.body.attributes() {
            if let Some(first) = pending.iter().find(|x| x.key.as_str() == a.key.as_str()) {
                let (line, _) = scope.file.locate(span_of(&first.key).start);
                d.push(scope.file.error(
                    span_of(&a.key),
                    format!(
                        "local `{}` is defined twice (first on line {line})",
                        a.key.as_str()
                    ),
                ));
                continue;
            }
            pending.push(a);
        }
    }
    scope.local_names = pending.iter().map(|a| a.key.as_str().to_string()).collect();
    // Report bad references once, up front; those locals are dropped.
    pending.retain(|a| scope.check_refs(&a.value, d));
    // Locals reading a failed variable fail silently: that variable's error is reported.
    pending.retain(|a| {
        let bad = scope.reads_failed(&a.value);
        if bad {
            scope
                .failed
                .insert(("local".to_string(), a.key.as_str().to_string()));
        }
        !bad
    });

    let local_deps = |a: &Attribute| -> Vec<String> {
        uses(&a.value)
            .into_iter()
            .filter_map(|u| match u {
                Use::Ref {
                    root,
                    attr: Some(n),
                    ..
                } if root == "local" => Some(n),
                _ => None,
            })
            .collect()
    };
    let mut sensitivity = BTreeMap::new();
    let mut failed: HashSet<String> = scope
        .local_names
        .iter()
        .filter(|n| !pending.iter().any(|a| a.key.as_str() == n.as_str()))
        .cloned()
        .collect();
    loop {
        let ready = pending.iter().position(|a| {
            local_deps(a)
                .iter()
                .all(|n| scope.locals.contains_key(n) || failed.contains(n))
        });
        let Some(i) = ready else { break };
        let a = pending.remove(i);
        let name = a.key.as_str().to_string();
        if local_deps(a).iter().any(|n| failed.contains(n)) {
            failed.insert(name);
            continue; // its dependency's error is already reported
        }
        match scope.eval(&a.value) {
            Ok(v) => {
                let sensitive = scope.is_sensitive(&a.value);
                if sensitive {
                    scope.sensitive_locals.insert(name.clone());
                }
                sensitivity.insert(name.clone(), sensitive);
                scope.locals.insert(name, v);
                scope.rebuild();
            }
            Err(msg) => {
                d.push(
                    scope
                        .file
                        .error(span_of(&a.value), format!("local `{name}`: {msg}")),
                );
                failed.insert(name);
            }
        }
    }
    for a in &pending {
        failed.insert(a.key.as_str().to_string());
    }
    for n in failed {
        scope.failed.insert(("local".to_string(), n));
    }
    for a in pending {
        d.push(scope.file.error(
            span_of(&a.key),
            format!(
                "local `{}` depends on itself (through {})",
                a.key.as_str(),
                local_deps(a)
                    .iter()
                    .map(|n| format!("local.{n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    sensitivity
}

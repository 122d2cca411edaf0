//! YAML → [`Spec`]: every accepted form of `sahara-reference.md` §2–3 with forge's fixes, scripts
//! resolved eagerly against the resource roots. Problems are collected (not just the first) so one
//! `forge validate` run shows everything wrong with a spec.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::error::{Problem, SpecError};
use super::model::{
    Argument, Case, CopyScript, Location, Package, Script, ScriptSource, Spec, Validator,
    ValidatorKind,
};
use super::yaml::{self, Kind, Node, Pos, ScalarType};

/// Names forge sets itself; a spec may not declare them.
const RESERVED: [&str; 2] = ["distro", "test_only"];

const VALIDATOR_TYPES: &str =
    "package, script, copy_script, all, any, os_case, argument_case, argument_set";

/// Load the spec at `path`. Scripts are looked up under `[spec's directory, extra_roots...]`; the
/// first non-empty regular file wins. Every script is read now, so a missing one in a branch that
/// would never run is still an error.
pub fn load(path: &Path, extra_roots: &[PathBuf]) -> Result<Spec, SpecError> {
    let bytes = std::fs::read(path)
        .map_err(|e| SpecError::single(path, None, format!("cannot read the spec: {e}")))?;
    let sha256 = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&bytes))
    };
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
            let col = valid.len() - valid.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            return Err(SpecError::single(
                path,
                Some((line, col + 1)),
                "the spec is not valid UTF-8".into(),
            ));
        }
    };
    let docs = yaml::parse(&text).map_err(|e| {
        SpecError::single(
            path,
            Some((e.pos.line, e.pos.column)),
            format!("invalid YAML: {}", e.message),
        )
    })?;

    let spec_dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut roots = vec![spec_dir];
    roots.extend(extra_roots.iter().cloned());
    let mut loader = Loader {
        file: path,
        roots,
        problems: Vec::new(),
        scripts: HashMap::new(),
    };
    let (arguments, validators) = loader.document(&docs);
    if loader.problems.is_empty() {
        Ok(Spec {
            path: path.to_path_buf(),
            sha256,
            arguments,
            validators,
        })
    } else {
        Err(SpecError::new(loader.problems))
    }
}

struct Loader<'a> {
    file: &'a Path,
    roots: Vec<PathBuf>,
    problems: Vec<Problem>,
    /// Scripts already resolved, by the path written in the spec (corpus specs reuse scripts).
    scripts: HashMap<String, Option<(PathBuf, Vec<u8>)>>,
}

fn loc(pos: Pos) -> Location {
    Location {
        line: pos.line,
        column: pos.column,
    }
}

impl Loader<'_> {
    fn problem(&mut self, pos: Pos, message: impl Into<String>) {
        self.problems.push(Problem {
            file: self.file.to_path_buf(),
            position: Some((pos.line, pos.column)),
            message: message.into(),
        });
    }

    fn document(&mut self, docs: &[Node]) -> (Vec<Argument>, Vec<Validator>) {
        let Some(root) = docs.first() else {
            self.problem(
                Pos { line: 1, column: 1 },
                "the spec is empty: expected a mapping with a `validators` list",
            );
            return Default::default();
        };
        if let Some(extra) = docs.get(1) {
            self.problem(
                extra.pos,
                "a second YAML document: a spec is exactly one document",
            );
        }
        let Kind::Map(entries) = &root.kind else {
            self.problem(
                root.pos,
                format!(
                    "expected a mapping with `arguments` and `validators`, found {}",
                    root.describe()
                ),
            );
            return Default::default();
        };
        let mut arguments = Vec::new();
        let mut validators = None;
        for (key, value) in entries {
            // Other top-level keys are ignored, as Sahara does.
            match self.key_text(key).as_deref() {
                Some("arguments") => arguments = self.arguments(value),
                Some("validators") => validators = Some(self.validator_list(value, "validators")),
                _ => {}
            }
        }
        let validators = validators.unwrap_or_else(|| {
            self.problem(
                root.pos,
                "missing `validators`: expected a list of validators",
            );
            Vec::new()
        });
        (arguments, validators)
    }

    /// The text of a mapping key; keys must be scalars.
    fn key_text(&mut self, key: &Node) -> Option<String> {
        match &key.kind {
            Kind::Scalar(s) => Some(s.text.clone()),
            _ => {
                self.problem(
                    key.pos,
                    format!("expected a plain key, found {}", key.describe()),
                );
                None
            }
        }
    }

    /// A non-empty YAML string (not a number or boolean: `version: 8` is an error, as in Sahara).
    fn string(&mut self, node: &Node, what: &str) -> Option<String> {
        match &node.kind {
            Kind::Scalar(s) if s.ty == ScalarType::Str && !s.text.is_empty() => {
                Some(s.text.clone())
            }
            Kind::Scalar(s) if s.ty == ScalarType::Str => {
                self.problem(node.pos, format!("{what}: expected a non-empty string"));
                None
            }
            Kind::Scalar(s) if s.ty != ScalarType::Null => {
                self.problem(
                    node.pos,
                    format!(
                        "{what}: expected a string, found {} (quote it: \"{}\")",
                        s.ty.describe(),
                        s.text
                    ),
                );
                None
            }
            _ => {
                self.problem(
                    node.pos,
                    format!("{what}: expected a string, found {}", node.describe()),
                );
                None
            }
        }
    }

    /// Any scalar's text (numbers keep their spelling); `None` for null.
    fn scalar_text(&mut self, node: &Node, what: &str) -> Option<String> {
        match &node.kind {
            Kind::Scalar(s) if s.ty == ScalarType::Null => None,
            Kind::Scalar(s) => Some(s.text.clone()),
            _ => {
                self.problem(
                    node.pos,
                    format!("{what}: expected a single value, found {}", node.describe()),
                );
                None
            }
        }
    }

    fn boolean(&mut self, node: &Node, what: &str) -> bool {
        match &node.kind {
            Kind::Scalar(s) => match s.ty {
                ScalarType::Bool(b) => b,
                ScalarType::Null => false,
                _ => {
                    self.problem(
                        node.pos,
                        format!("{what}: expected true or false, found {}", node.describe()),
                    );
                    false
                }
            },
            _ => {
                self.problem(
                    node.pos,
                    format!("{what}: expected true or false, found {}", node.describe()),
                );
                false
            }
        }
    }

    // ---- arguments (sahara-reference §2.1) ----

    fn arguments(&mut self, node: &Node) -> Vec<Argument> {
        let Kind::Map(entries) = &node.kind else {
            self.problem(
                node.pos,
                format!(
                    "`arguments`: expected a mapping of argument names to definitions, found {}",
                    node.describe()
                ),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for (key, def) in entries {
            let Some(name) = self.key_text(key) else {
                continue;
            };
            if let Some(arg) = self.argument(name, key.pos, def) {
                out.push(arg);
            }
        }
        out
    }

    fn argument(&mut self, name: String, key_pos: Pos, def: &Node) -> Option<Argument> {
        if RESERVED.contains(&name.as_str()) {
            self.problem(
                key_pos,
                format!("argument name `{name}` is reserved: forge sets `distro` and `test_only` itself"),
            );
            return None;
        }
        if name.is_empty() || name.contains(['=', '\0']) || name.starts_with('-') {
            self.problem(
                key_pos,
                format!("argument name `{name}`: expected a non-empty name without `=` that does not start with `-`"),
            );
            return None;
        }
        let Kind::Map(fields) = &def.kind else {
            self.problem(
                def.pos,
                format!(
                    "argument `{name}`: expected a mapping (description, default, required, choices), found {}",
                    def.describe()
                ),
            );
            return None;
        };
        let mut arg = Argument {
            name: name.clone(),
            description: None,
            default: None,
            required: false,
            choices: Vec::new(),
            hidden: false,
        };
        let mut default_node: Option<&Node> = None;
        for (key, value) in fields {
            let Some(field) = self.key_text(key) else {
                continue;
            };
            let what = format!("argument `{name}` {field}");
            match field.as_str() {
                "description" => arg.description = self.scalar_text(value, &what),
                "default" => {
                    arg.default = self.scalar_text(value, &what);
                    default_node = Some(value);
                }
                "required" => arg.required = self.boolean(value, &what),
                "hidden" => arg.hidden = self.boolean(value, &what),
                "choices" => arg.choices = self.choices(value, &what),
                // `target_variable` and anything else: accepted and ignored, as Sahara does.
                _ => {}
            }
        }
        let default_truthy =
            matches!(default_node, Some(Node { kind: Kind::Scalar(s), .. }) if s.truthy());
        if !default_truthy && !arg.required {
            self.problem(
                default_node.map_or(def.pos, |n| n.pos),
                format!("argument `{name}` is not required and must specify a default value"),
            );
        }
        if let (true, true, Some(default)) = (default_truthy, !arg.choices.is_empty(), &arg.default)
        {
            if !arg.choices.contains(default) {
                self.problem(
                    default_node.map_or(def.pos, |n| n.pos),
                    format!(
                        "argument `{name}`: default `{default}` is not one of its choices ({})",
                        arg.choices.join(", ")
                    ),
                );
            }
        }
        Some(arg)
    }

    fn choices(&mut self, node: &Node, what: &str) -> Vec<String> {
        match &node.kind {
            Kind::Seq(items) => items
                .iter()
                .filter_map(|item| {
                    let text = self.scalar_text(item, what);
                    if text.is_none() && item.is_null() {
                        self.problem(item.pos, format!("{what}: a choice may not be null"));
                    }
                    text
                })
                .collect(),
            Kind::Scalar(s) if s.ty == ScalarType::Null => Vec::new(),
            _ => {
                self.problem(
                    node.pos,
                    format!(
                        "{what}: expected a list of values, found {}",
                        node.describe()
                    ),
                );
                Vec::new()
            }
        }
    }

    // ---- validators (sahara-reference §3) ----

    /// A list of validator items, each a mapping with exactly one key.
    fn validator_list(&mut self, node: &Node, what: &str) -> Vec<Validator> {
        let Kind::Seq(items) = &node.kind else {
            self.problem(
                node.pos,
                format!(
                    "{what}: expected a list of validators, found {}",
                    node.describe()
                ),
            );
            return Vec::new();
        };
        items
            .iter()
            .filter_map(|item| self.validator(item))
            .collect()
    }

    fn validator(&mut self, item: &Node) -> Option<Validator> {
        let entries = match &item.kind {
            Kind::Map(entries) if entries.len() == 1 => entries,
            Kind::Map(entries) => {
                self.problem(
                    item.pos,
                    format!(
                        "expected a validator (a mapping with exactly one key, the validator type), found a mapping with {} keys",
                        entries.len()
                    ),
                );
                return None;
            }
            _ => {
                self.problem(
                    item.pos,
                    format!(
                        "expected a validator (a mapping with exactly one key, the validator type), found {}",
                        item.describe()
                    ),
                );
                return None;
            }
        };
        let (key, value) = &entries[0];
        let ty = self.key_text(key)?;
        let kind = match ty.as_str() {
            "package" => self.package(value).map(ValidatorKind::Package),
            "script" => self.script(value).map(ValidatorKind::Script),
            "copy_script" => self.copy_script(value).map(ValidatorKind::CopyScript),
            "all" => Some(ValidatorKind::All(self.validator_list(value, "all"))),
            "any" => Some(ValidatorKind::Any(self.validator_list(value, "any"))),
            "os_case" => self.os_case(value).map(ValidatorKind::OsCase),
            "argument_case" => self.argument_case(value),
            "argument_set" => self.argument_set(value),
            other => {
                self.problem(
                    key.pos,
                    format!("unknown validator type `{other}`; expected one of {VALIDATOR_TYPES}"),
                );
                None
            }
        }?;
        Some(Validator {
            location: loc(key.pos),
            kind,
        })
    }

    // -- package (§3.1) --

    fn package(&mut self, node: &Node) -> Option<Vec<Package>> {
        match &node.kind {
            Kind::Seq(items) if items.is_empty() => {
                self.problem(
                    node.pos,
                    "package: expected at least one package, found an empty list",
                );
                None
            }
            Kind::Seq(items) => {
                let mut out = Vec::new();
                let mut ok = true;
                for item in items {
                    if matches!(item.kind, Kind::Seq(_)) {
                        self.problem(
                            item.pos,
                            "package: expected a package name or a {name: {version: ...}} mapping, found a nested list",
                        );
                        ok = false;
                        continue;
                    }
                    match self.one_package(item) {
                        Some(p) => out.push(p),
                        None => ok = false,
                    }
                }
                ok.then_some(out)
            }
            _ => self.one_package(node).map(|p| vec![p]),
        }
    }

    fn one_package(&mut self, node: &Node) -> Option<Package> {
        let (name_node, props) = match &node.kind {
            Kind::Map(entries) if entries.len() == 1 => (&entries[0].0, Some(&entries[0].1)),
            Kind::Map(entries) => {
                self.problem(
                    node.pos,
                    format!("package: expected one package per mapping ({{name: {{version: ...}}}}), found {} keys", entries.len()),
                );
                return None;
            }
            _ => (node, None),
        };
        let name = self.string(name_node, "package name")?;
        if !valid_word(&name) {
            self.problem(
                name_node.pos,
                format!("package name `{name}`: expected a name without spaces or control characters that does not start with `-`"),
            );
            return None;
        }
        let mut version = None;
        if let Some(props) = props {
            let Kind::Map(fields) = &props.kind else {
                self.problem(
                    props.pos,
                    format!(
                        "package `{name}`: expected a mapping of properties (version), found {}",
                        props.describe()
                    ),
                );
                return None;
            };
            for (key, value) in fields {
                if self.key_text(key).as_deref() == Some("version") {
                    let v = self.string(value, &format!("package `{name}` version"))?;
                    if !valid_word(&v) {
                        self.problem(
                            value.pos,
                            format!("package `{name}` version `{v}`: expected no spaces or control characters"),
                        );
                        return None;
                    }
                    version = Some(v);
                }
            }
        }
        Some(Package { name, version })
    }

    // -- script and copy_script (§3.2, §3.3, §7.1) --

    /// The common shape: `path` or `{path: {props}}`. Returns the path node and the props.
    fn script_form<'n>(
        &mut self,
        node: &'n Node,
        what: &str,
    ) -> Option<(&'n Node, Vec<(String, &'n Node)>)> {
        match &node.kind {
            Kind::Scalar(_) => Some((node, Vec::new())),
            Kind::Map(entries) if entries.len() == 1 => {
                let (path, props) = &entries[0];
                let Kind::Map(fields) = &props.kind else {
                    self.problem(
                        props.pos,
                        format!(
                            "{what}: expected a mapping of properties (env_vars, output, inline), found {}",
                            props.describe()
                        ),
                    );
                    return None;
                };
                let mut out = Vec::new();
                for (k, v) in fields {
                    if let Some(k) = self.key_text(k) {
                        out.push((k, v));
                    }
                }
                Some((path, out))
            }
            _ => {
                self.problem(
                    node.pos,
                    format!(
                        "{what}: expected a script path or a {{path: {{properties}}}} mapping, found {}",
                        node.describe()
                    ),
                );
                None
            }
        }
    }

    fn script(&mut self, node: &Node) -> Option<Script> {
        let (path_node, props) = self.script_form(node, "script")?;
        let name = self.string(path_node, "script path")?;
        let mut env_vars = Vec::new();
        let mut output = None;
        let mut inline = None;
        let mut ok = true;
        for (key, value) in props {
            match key.as_str() {
                "env_vars" => match self.env_vars(value) {
                    Some(v) => env_vars = v,
                    None => ok = false,
                },
                "output" => match self.string(value, "script output") {
                    Some(v) => output = Some(v),
                    None => ok = false,
                },
                "inline" => match self.string(value, "script inline") {
                    Some(v) => inline = Some(v),
                    None => ok = false,
                },
                // Other keys are ignored, as Sahara does.
                _ => {}
            }
        }
        let (source, content) = self.script_content(&name, path_node.pos, inline)?;
        ok.then_some(Script {
            name,
            source,
            content,
            env_vars,
            output,
        })
    }

    fn copy_script(&mut self, node: &Node) -> Option<CopyScript> {
        let (path_node, props) = self.script_form(node, "copy_script")?;
        let name = self.string(path_node, "copy_script path")?;
        let mut inline = None;
        for (key, value) in props {
            // `output` and `env_vars` are accepted and mean nothing here, as in Sahara.
            if key == "inline" {
                inline = Some(self.string(value, "copy_script inline")?);
            }
        }
        // forge fix 5: the destination is the basename (Sahara takes the third path component).
        let base = name.rsplit('/').next().unwrap_or_default();
        if base.is_empty() || base == "." || base == ".." {
            self.problem(
                path_node.pos,
                format!("copy_script `{name}`: expected a path that ends in a file name"),
            );
            return None;
        }
        let destination = format!("/tmp/{base}");
        let (source, content) = self.script_content(&name, path_node.pos, inline)?;
        Some(CopyScript {
            name,
            source,
            content,
            destination,
        })
    }

    fn env_vars(&mut self, node: &Node) -> Option<Vec<String>> {
        let Kind::Seq(items) = &node.kind else {
            if node.is_null() {
                return Some(Vec::new());
            }
            self.problem(
                node.pos,
                format!(
                    "env_vars: expected a list of argument names, found {}",
                    node.describe()
                ),
            );
            return None;
        };
        let mut out = Vec::new();
        for item in items {
            let name = self.string(item, "env_vars entry")?;
            // Passed to the script as `env 'NAME=VALUE'`: a `=` or a leading `-` would change
            // what env(1) sees.
            if name.contains(['=', '\0']) || name.starts_with('-') {
                self.problem(
                    item.pos,
                    format!("env_vars entry `{name}`: expected a name without `=` that does not start with `-`"),
                );
                return None;
            }
            out.push(name);
        }
        Some(out)
    }

    /// Inline text, or the first non-empty regular file `root/path` over the resource roots.
    fn script_content(
        &mut self,
        name: &str,
        pos: Pos,
        inline: Option<String>,
    ) -> Option<(ScriptSource, Vec<u8>)> {
        if let Some(text) = inline {
            return Some((ScriptSource::Inline, text.into_bytes()));
        }
        if Path::new(name).is_absolute() {
            self.problem(
                pos,
                format!("script `{name}`: expected a path relative to a resource root"),
            );
            return None;
        }
        if let Some(found) = self.scripts.get(name) {
            return found
                .clone()
                .map(|(path, bytes)| (ScriptSource::File(path), bytes));
        }
        let mut found = None;
        let mut problem = None;
        for root in &self.roots {
            let candidate = root.join(name);
            match std::fs::metadata(&candidate) {
                Ok(m) if m.is_file() => match std::fs::read(&candidate) {
                    // Sahara counts an empty file as missing and tries the next root.
                    Ok(bytes) if bytes.is_empty() => continue,
                    Ok(bytes) => {
                        found = Some((candidate, bytes));
                        break;
                    }
                    Err(e) => {
                        problem = Some(format!(
                            "script `{name}`: cannot read {}: {e}",
                            candidate.display()
                        ));
                        break;
                    }
                },
                _ => continue,
            }
        }
        if found.is_none() {
            let message = problem.unwrap_or_else(|| {
                let searched: Vec<String> = self
                    .roots
                    .iter()
                    .map(|r| r.display().to_string())
                    .collect();
                format!(
                    "script `{name}` not found (as a non-empty regular file) in any resource root; searched: {}",
                    searched.join(", ")
                )
            });
            self.problem(pos, message);
        }
        self.scripts.insert(name.to_string(), found.clone());
        found.map(|(path, bytes)| (ScriptSource::File(path), bytes))
    }

    // -- os_case, argument_case, argument_set (§3.5–3.7) --

    fn os_case(&mut self, node: &Node) -> Option<Vec<Case>> {
        let Kind::Seq(items) = &node.kind else {
            self.problem(
                node.pos,
                format!(
                    "os_case: expected a list of single-key mappings (- ubuntu: [...]), found {}",
                    node.describe()
                ),
            );
            return None;
        };
        let mut cases = Vec::new();
        for item in items {
            match &item.kind {
                Kind::Map(entries) if entries.len() == 1 => {
                    let (key, value) = &entries[0];
                    let Some(key) = self.key_text(key) else {
                        continue;
                    };
                    let validators = self.validator_list(value, &format!("os_case `{key}`"));
                    cases.push(Case { key, validators });
                }
                _ => self.problem(
                    item.pos,
                    format!(
                        "os_case: expected a mapping with exactly one key (a distro or family), found {}",
                        describe_entries(item)
                    ),
                ),
            }
        }
        Some(cases)
    }

    fn argument_case(&mut self, node: &Node) -> Option<ValidatorKind> {
        let fields = self.closed_mapping(node, "argument_case", &["argument_name", "cases"])?;
        let argument = match fields[0] {
            Some(n) => self.string(n, "argument_case argument_name"),
            None => {
                self.problem(node.pos, "argument_case: missing `argument_name`");
                None
            }
        };
        let cases = match fields[1] {
            None => {
                self.problem(node.pos, "argument_case: missing `cases`");
                None
            }
            Some(n) => match &n.kind {
                Kind::Map(entries) if !entries.is_empty() => {
                    let mut cases: Vec<Case> = Vec::new();
                    for (key, value) in entries {
                        // forge fix 10: keys are compared as strings (`8:` matches "8").
                        let Some(text) = self.key_text(key) else {
                            continue;
                        };
                        if cases.iter().any(|c| c.key == text) {
                            self.problem(
                                key.pos,
                                format!("argument_case: duplicate case `{text}` (cases are compared as strings)"),
                            );
                            continue;
                        }
                        let validators =
                            self.validator_list(value, &format!("argument_case `{text}`"));
                        cases.push(Case {
                            key: text,
                            validators,
                        });
                    }
                    Some(cases)
                }
                _ => {
                    self.problem(
                        n.pos,
                        format!(
                            "argument_case cases: expected a mapping of values to validator lists with at least one entry, found {}",
                            describe_entries(n)
                        ),
                    );
                    None
                }
            },
        };
        Some(ValidatorKind::ArgumentCase {
            argument: argument?,
            cases: cases?,
        })
    }

    fn argument_set(&mut self, node: &Node) -> Option<ValidatorKind> {
        let fields = self.closed_mapping(node, "argument_set", &["argument_name", "value"])?;
        let argument = match fields[0] {
            Some(n) => self.string(n, "argument_set argument_name"),
            None => {
                self.problem(node.pos, "argument_set: missing `argument_name`");
                None
            }
        };
        let value = match fields[1] {
            Some(n) => self.string(n, "argument_set value"),
            None => {
                self.problem(node.pos, "argument_set: missing `value`");
                None
            }
        };
        Some(ValidatorKind::ArgumentSet {
            argument: argument?,
            value: value?,
        })
    }

    /// A mapping that allows only the keys in `allowed`; returns their values indexed like
    /// `allowed` (`None` = absent).
    fn closed_mapping<'n>(
        &mut self,
        node: &'n Node,
        what: &str,
        allowed: &[&str],
    ) -> Option<Vec<Option<&'n Node>>> {
        let Kind::Map(entries) = &node.kind else {
            self.problem(
                node.pos,
                format!(
                    "{what}: expected a mapping with {}, found {}",
                    allowed.join(" and "),
                    node.describe()
                ),
            );
            return None;
        };
        let mut slots: Vec<Option<&Node>> = vec![None; allowed.len()];
        let mut ok = true;
        for (key, value) in entries {
            let Some(k) = self.key_text(key) else {
                ok = false;
                continue;
            };
            match allowed.iter().position(|a| *a == k) {
                Some(i) => slots[i] = Some(value),
                None => {
                    self.problem(
                        key.pos,
                        format!(
                            "{what}: unknown key `{k}`; expected only {}",
                            allowed.join(" and ")
                        ),
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(slots)
    }
}

fn describe_entries(node: &Node) -> String {
    match &node.kind {
        Kind::Map(entries) => format!("a mapping with {} keys", entries.len()),
        _ => node.describe().to_string(),
    }
}

/// A package name or version that passes through a shell safely once quoted and cannot be taken
/// for an option by rpm/dpkg/apt: no whitespace or control characters, no leading `-`.
fn valid_word(s: &str) -> bool {
    !s.starts_with('-') && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

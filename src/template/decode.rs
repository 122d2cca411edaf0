//! Reading one block's body into typed values: every attribute is looked up by name, checked for
//! references, evaluated and converted; what was never asked for is reported as unknown.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use hcl::edit::structure::{Attribute, Block, Body};
use hcl::Value;

use super::diagnostics::{suggest, Diagnostics};
use super::eval::{kind_of, span_of, Scope};
use super::model::Visibility;

/// A typed view of one block body. Call the getters, then [`Reader::finish`].
pub(crate) struct Reader<'a> {
    pub scope: &'a Scope,
    body: &'a Body,
    /// How the block is named in messages, e.g. `source "openstack" "nightly"`.
    pub what: String,
    /// Span of the block header (identifier and labels), for "missing" errors.
    pub head: Range<usize>,
    known_attrs: Vec<&'static str>,
    known_blocks: Vec<&'static str>,
}

/// The header of a block: its identifier through its last label.
pub(crate) fn head_span(block: &Block) -> Range<usize> {
    let start = span_of(&block.ident).start;
    let end = block
        .labels
        .last()
        .map_or(span_of(&block.ident).end, |l| span_of(l).end);
    start..end
}

/// `ident "label" "label"` as written, for messages.
pub(crate) fn describe(block: &Block) -> String {
    let mut s = block.ident.as_str().to_string();
    for l in &block.labels {
        s.push_str(&format!(" \"{}\"", l.as_str()));
    }
    s
}

impl<'a> Reader<'a> {
    /// Reads `block`, reporting attributes set twice.
    pub fn new(scope: &'a Scope, block: &'a Block, d: &mut Diagnostics) -> Self {
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for a in block.body.attributes() {
            let key = a.key.as_str();
            if let Some(first) = seen.get(key) {
                let (line, _) = scope.file.locate(*first);
                d.push(scope.file.error(
                    span_of(&a.key),
                    format!("attribute `{key}` is set twice (first on line {line})"),
                ));
            } else {
                seen.insert(key, span_of(&a.key).start);
            }
        }
        Reader {
            scope,
            body: &block.body,
            what: describe(block),
            head: head_span(block),
            known_attrs: Vec::new(),
            known_blocks: Vec::new(),
        }
    }

    /// The attribute, if set; marks the name as known.
    pub fn attr(&mut self, name: &'static str) -> Option<&'a Attribute> {
        self.known_attrs.push(name);
        self.body.attributes().find(|a| a.key.as_str() == name)
    }

    /// Nested blocks named `name`; marks the name as known.
    pub fn blocks(&mut self, name: &'static str) -> Vec<&'a Block> {
        self.known_blocks.push(name);
        self.body
            .blocks()
            .filter(|b| b.ident.as_str() == name)
            .collect()
    }

    /// Reports a missing required attribute at the block header.
    pub fn missing(&self, name: &str, d: &mut Diagnostics) {
        d.push(self.scope.file.error(
            self.head.clone(),
            format!("missing required attribute `{name}` in {}", self.what),
        ));
    }

    fn wrong(&self, a: &Attribute, expected: &str, v: &Value, d: &mut Diagnostics) {
        let shown = match v {
            Value::String(s) if s.len() <= 40 && !self.scope.is_sensitive(&a.value) => {
                format!(" \"{s}\"")
            }
            _ => String::new(),
        };
        d.push(self.scope.file.error(
            span_of(&a.value),
            format!(
                "`{}` must be {expected}, found {}{shown}",
                a.key.as_str(),
                kind_of(v)
            ),
        ));
    }

    /// The evaluated value of `name`, with its attribute. Reference and evaluation errors are
    /// reported here; `None` then means "already reported" (or absent).
    pub fn value(
        &mut self,
        name: &'static str,
        d: &mut Diagnostics,
    ) -> Option<(Value, &'a Attribute)> {
        let a = self.attr(name)?;
        if !self.scope.check_refs(&a.value, d) || self.scope.reads_failed(&a.value) {
            return None;
        }
        match self.scope.eval(&a.value) {
            Ok(v) => Some((v, a)),
            Err(msg) => {
                d.push(
                    self.scope
                        .file
                        .error(span_of(&a.value), format!("`{name}`: {msg}")),
                );
                None
            }
        }
    }

    pub fn string(&mut self, name: &'static str, d: &mut Diagnostics) -> Option<String> {
        let (v, a) = self.value(name, d)?;
        match to_string(&v) {
            Some(s) => Some(s),
            None => {
                self.wrong(a, "a string", &v, d);
                None
            }
        }
    }

    /// A string that must be set; reports it missing otherwise.
    pub fn required_string(&mut self, name: &'static str, d: &mut Diagnostics) -> Option<String> {
        if self.body.attributes().all(|a| a.key.as_str() != name) {
            self.known_attrs.push(name);
            self.missing(name, d);
            return None;
        }
        self.string(name, d)
    }

    pub fn bool(&mut self, name: &'static str, d: &mut Diagnostics) -> Option<bool> {
        let (v, a) = self.value(name, d)?;
        match &v {
            Value::Bool(b) => Some(*b),
            // cty's conversion rules, as Packer: "true"/"false" strings are bools.
            Value::String(s) if s == "true" => Some(true),
            Value::String(s) if s == "false" => Some(false),
            _ => {
                self.wrong(a, "a bool (true or false)", &v, d);
                None
            }
        }
    }

    /// A whole number within `min..=max`.
    pub fn integer(
        &mut self,
        name: &'static str,
        min: u64,
        max: u64,
        d: &mut Diagnostics,
    ) -> Option<u64> {
        let (v, a) = self.value(name, d)?;
        let n = match &v {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse::<u64>().ok(),
            _ => None,
        };
        match n {
            Some(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                self.wrong(a, &format!("a whole number from {min} to {max}"), &v, d);
                None
            }
        }
    }

    /// A Go-style duration string such as `"90s"`, `"5m"`, `"1h30m"`.
    pub fn duration(&mut self, name: &'static str, d: &mut Diagnostics) -> Option<Duration> {
        let (v, a) = self.value(name, d)?;
        let parsed = v.as_str().map(parse_duration);
        match parsed {
            Some(Ok(dur)) => Some(dur),
            Some(Err(why)) => {
                d.push(self.scope.file.error(
                    span_of(&a.value),
                    format!(
                        "`{name}`: {why}; expected a duration such as \"90s\", \"5m\" or \"1h30m\""
                    ),
                ));
                None
            }
            None => {
                self.wrong(a, "a duration string such as \"5m\"", &v, d);
                None
            }
        }
    }

    pub fn strings(&mut self, name: &'static str, d: &mut Diagnostics) -> Option<Vec<String>> {
        let (v, a) = self.value(name, d)?;
        let list = v
            .as_array()
            .and_then(|xs| xs.iter().map(to_string).collect());
        if list.is_none() {
            self.wrong(a, "a list of strings", &v, d);
        }
        list
    }

    pub fn string_map(
        &mut self,
        name: &'static str,
        d: &mut Diagnostics,
    ) -> Option<BTreeMap<String, String>> {
        let (v, a) = self.value(name, d)?;
        let map = v.as_object().and_then(|o| {
            o.iter()
                .map(|(k, v)| to_string(v).map(|s| (k.clone(), s)))
                .collect()
        });
        if map.is_none() {
            self.wrong(a, "a map of strings", &v, d);
        }
        map
    }

    /// A path, resolved against the template's directory.
    pub fn path(
        &mut self,
        name: &'static str,
        d: &mut Diagnostics,
    ) -> Option<(PathBuf, &'a Attribute)> {
        let s = self.string(name, d)?;
        let a = self.attr(name)?;
        if s.is_empty() {
            d.push(
                self.scope
                    .file
                    .error(span_of(&a.value), format!("`{name}` must not be empty")),
            );
            return None;
        }
        Some((self.scope.base_dir.join(s), a))
    }

    /// One of public, private, shared, community.
    pub fn visibility(&mut self, name: &'static str, d: &mut Diagnostics) -> Option<Visibility> {
        let s = self.string(name, d)?;
        let a = self.attr(name)?;
        let v = s.parse::<Visibility>().ok();
        if v.is_none() {
            d.push(self.scope.file.error(
                span_of(&a.value),
                format!(
                    "`{name}` must be one of {}, found \"{s}\"",
                    Visibility::NAMES.join(", ")
                ),
            ));
        }
        v
    }

    /// Reports every attribute and block that no getter asked for.
    pub fn finish(self, d: &mut Diagnostics) {
        for a in self.body.attributes() {
            let key = a.key.as_str();
            if !self.known_attrs.contains(&key) {
                let hint = suggest(key, &self.known_attrs)
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                d.push(self.scope.file.error(
                    span_of(&a.key),
                    format!("unknown attribute `{key}` in {}{hint}", self.what),
                ));
            }
        }
        for b in self.body.blocks() {
            let id = b.ident.as_str();
            if !self.known_blocks.contains(&id) {
                let expected = if self.known_blocks.is_empty() {
                    "it takes no blocks".to_string()
                } else {
                    format!("expected {}", self.known_blocks.join(", "))
                };
                d.push(self.scope.file.error(
                    span_of(&b.ident),
                    format!("unknown block `{id}` in {}; {expected}", self.what),
                ));
            }
        }
    }
}

/// cty's string conversion: numbers and bools become strings, nothing else does.
pub(crate) fn to_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Parses Go's `time.ParseDuration` syntax (what Packer templates use): a sequence of decimal
/// numbers with units `ms`, `s`, `m`, `h`, e.g. `"1h30m"`, `"1.5h"`, `"300ms"`. Hand-written
/// because the common crates accept a different syntax (humantime wants spaces and more units).
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    parse_duration_units(s, false)
}

/// An age such as `"30d"`, `"12h"` or `"1d12h"`: Go's duration syntax plus `d` (24 hours), for
/// retention limits that are naturally counted in days.
pub fn parse_age(s: &str) -> Result<Duration, String> {
    parse_duration_units(s, true)
}

fn parse_duration_units(s: &str, days: bool) -> Result<Duration, String> {
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err("empty duration".into());
    }
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..num_len]
            .parse()
            .map_err(|_| format!("invalid duration \"{s}\""))?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" if days => 86400.0,
            "" => return Err(format!("missing unit in duration \"{s}\"")),
            u => return Err(format!("unknown unit \"{u}\" in duration \"{s}\"")),
        };
        rest = &rest[unit_len..];
        total += number * seconds;
    }
    // `from_secs_f64` panics on values it cannot hold; a template must not crash forge.
    Duration::try_from_secs_f64(total).map_err(|_| format!("duration \"{s}\" is too long"))
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("5 minutes").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("m5").is_err());
        assert!(parse_duration("1d").is_err());
        assert!(parse_duration(&format!("{}h", "9".repeat(400))).is_err());
    }

    #[test]
    fn ages_take_days() {
        use super::parse_age;
        assert_eq!(parse_age("30d"), Ok(Duration::from_secs(30 * 86400)));
        assert_eq!(parse_age("1d12h"), Ok(Duration::from_secs(36 * 3600)));
        assert_eq!(parse_age("90s"), Ok(Duration::from_secs(90)));
        assert!(parse_age("-1d").is_err());
        assert!(parse_age("30 days").is_err());
        assert!(parse_age("1w").is_err());
    }
}

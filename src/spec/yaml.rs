//! A small positioned YAML tree for the loader.
//!
//! `saphyr` parses (with anchors, aliases, duplicate-key detection and an alias budget); this
//! module turns its marked nodes into a tree that keeps every node's line and column and every
//! scalar's source text. Scalars are not given a type by saphyr (`early_parse(false)`): Sahara specs
//! are written for PyYAML, so [`classify`] resolves plain scalars with YAML 1.1 rules (`yes` is a
//! boolean, `1.10` keeps its text instead of becoming the float `1.1`).

use saphyr::{MarkedYaml, ScalarStyle, YamlData, YamlLoader};
use saphyr_parser::{Event, Marker, Parser, Span, SpannedEventReceiver};

/// How deeply lists and mappings may nest. Real specs nest about ten levels; a hostile file
/// with thousands would overflow the stack in the recursive tree walks (conversion, the
/// loader, even dropping the tree), so it is refused with a located error instead.
pub const MAX_DEPTH: usize = 128;

/// 1-based line and column of a node in the spec file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

/// The YAML 1.1 type of a scalar, as PyYAML would resolve it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalarType {
    Null,
    Bool(bool),
    Int,
    Float,
    Str,
}

impl ScalarType {
    /// How error messages name the type.
    pub fn describe(self) -> &'static str {
        match self {
            ScalarType::Null => "null",
            ScalarType::Bool(_) => "a boolean",
            ScalarType::Int => "an integer",
            ScalarType::Float => "a number",
            ScalarType::Str => "a string",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Scalar {
    /// The scalar's text after YAML unescaping and folding (`'8'` → `8`).
    pub text: String,
    pub ty: ScalarType,
}

impl Scalar {
    /// Python truthiness of the value, as Sahara's argument checks use it.
    pub fn truthy(&self) -> bool {
        match self.ty {
            ScalarType::Null => false,
            ScalarType::Bool(b) => b,
            ScalarType::Str => !self.text.is_empty(),
            ScalarType::Int | ScalarType::Float => {
                // Zero in any spelling (`0`, `-0`, `0.0`, `0x0`, `0_0`) is falsy.
                let digits = self
                    .text
                    .trim_start_matches(['+', '-'])
                    .trim_start_matches("0x")
                    .trim_start_matches("0b");
                digits.chars().any(|c| c.is_ascii_digit() && c != '0')
            }
        }
    }
}

#[derive(Debug, Clone)]
pub enum Kind {
    Scalar(Scalar),
    Seq(Vec<Node>),
    /// Entries in document order.
    Map(Vec<(Node, Node)>),
}

#[derive(Debug, Clone)]
pub struct Node {
    pub pos: Pos,
    pub kind: Kind,
}

impl Node {
    /// How error messages name what was found here.
    pub fn describe(&self) -> &'static str {
        match &self.kind {
            Kind::Scalar(s) => s.ty.describe(),
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(&self.kind, Kind::Scalar(s) if s.ty == ScalarType::Null)
    }
}

/// A YAML syntax error with its position.
#[derive(Debug, Clone)]
pub struct SyntaxError {
    pub pos: Pos,
    pub message: String,
}

/// Parse `text` as a YAML stream; returns its documents.
pub fn parse(text: &str) -> Result<Vec<Node>, SyntaxError> {
    let mut loader: YamlLoader<'_, MarkedYaml<'_>> = YamlLoader::default();
    loader.early_parse(false);
    let mut guard = DepthGuard {
        inner: &mut loader,
        depth: 0,
        too_deep: None,
    };
    // Events are fed one by one: saphyr's own `Parser::load` recurses once per nesting level,
    // which a hostile file turns into a stack overflow before any check could run.
    let mut scan = Ok(());
    for event in Parser::new_from_str(text) {
        match event {
            Ok((ev, span)) => guard.on_event(ev, span),
            Err(e) => {
                scan = Err(e);
                break;
            }
        }
        if guard.too_deep.is_some() {
            break;
        }
    }
    if let Some(at) = guard.too_deep {
        return Err(too_deep(pos_of_marker(at)));
    }
    let err = match scan {
        Err(e) => Some(e),
        Ok(()) => loader.error().cloned(),
    };
    if let Some(e) = err {
        return Err(SyntaxError {
            pos: pos_of_marker(*e.marker()),
            message: e.info().to_string(),
        });
    }
    loader
        .into_documents()
        .iter()
        .map(|d| convert(d, 0))
        .collect()
}

fn too_deep(pos: Pos) -> SyntaxError {
    SyntaxError {
        pos,
        message: format!("lists and mappings nest more than {MAX_DEPTH} levels deep here"),
    }
}

/// Passes parser events to saphyr's loader until the nesting passes [`MAX_DEPTH`], then
/// remembers where, so the loader never builds a tree too deep to walk.
struct DepthGuard<'l, 'input> {
    inner: &'l mut YamlLoader<'input, MarkedYaml<'input>>,
    depth: usize,
    too_deep: Option<Marker>,
}

impl<'input> SpannedEventReceiver<'input> for DepthGuard<'_, 'input> {
    fn on_event(&mut self, ev: Event<'input>, span: Span) {
        match ev {
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    self.too_deep = Some(span.start);
                    return;
                }
            }
            Event::SequenceEnd | Event::MappingEnd => self.depth = self.depth.saturating_sub(1),
            _ => {}
        }
        self.inner.on_event(ev, span);
    }
}

fn pos_of_marker(m: Marker) -> Pos {
    Pos {
        line: m.line(),
        column: m.col() + 1,
    }
}

fn pos_of(node: &MarkedYaml<'_>) -> Pos {
    Pos {
        line: node.span.start.line(),
        column: node.span.start.col() + 1,
    }
}

/// The positioned tree of `node`. Aliases can still nest an anchor's tree inside another
/// (saphyr bounds their total size, not their depth), so the depth is checked here too.
fn convert(node: &MarkedYaml<'_>, depth: usize) -> Result<Node, SyntaxError> {
    let pos = pos_of(node);
    if depth > MAX_DEPTH {
        return Err(too_deep(pos));
    }
    let kind = match &node.data {
        YamlData::Representation(text, style, tag) => {
            let tag = tag.as_ref().map(|t| (t.handle.as_str(), t.suffix.as_str()));
            Kind::Scalar(Scalar {
                ty: classify(text, *style, tag),
                text: text.to_string(),
            })
        }
        YamlData::Sequence(items) => Kind::Seq(
            items
                .iter()
                .map(|i| convert(i, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        YamlData::Mapping(map) => Kind::Map(
            map.iter()
                .map(|(k, v)| Ok((convert(k, depth + 1)?, convert(v, depth + 1)?)))
                .collect::<Result<_, _>>()?,
        ),
        // A non-core tag on a collection (`!foo [..]`): the tag means nothing to a spec.
        YamlData::Tagged(_, inner) => return convert(inner, depth),
        // Only reachable with early parsing (off here), for an empty document, or for an alias
        // saphyr could not resolve (it reports those as errors first): treat as null.
        YamlData::Value(v) => Kind::Scalar(Scalar {
            text: format!("{v:?}"),
            ty: ScalarType::Null,
        }),
        YamlData::BadValue | YamlData::Alias(_) => Kind::Scalar(Scalar {
            text: String::new(),
            ty: ScalarType::Null,
        }),
    };
    Ok(Node { pos, kind })
}

/// Resolve a scalar's type the way PyYAML (YAML 1.1) does: quoted and block scalars are strings;
/// plain scalars may be null, booleans, integers or floats. A core-schema tag (`!!str 8`) wins.
pub fn classify(text: &str, style: ScalarStyle, tag: Option<(&str, &str)>) -> ScalarType {
    if let Some((handle, suffix)) = tag {
        if handle == "tag:yaml.org,2002:" || handle == "!!" {
            return match suffix {
                "null" => ScalarType::Null,
                "bool" => ScalarType::Bool(is_true(text)),
                "int" => ScalarType::Int,
                "float" => ScalarType::Float,
                _ => ScalarType::Str,
            };
        }
        return ScalarType::Str;
    }
    if style != ScalarStyle::Plain {
        return ScalarType::Str;
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return ScalarType::Null,
        "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" | "y" | "Y" => {
            return ScalarType::Bool(true)
        }
        "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" | "n" | "N" => {
            return ScalarType::Bool(false)
        }
        _ => {}
    }
    if is_int(text) {
        ScalarType::Int
    } else if is_float(text) {
        ScalarType::Float
    } else {
        ScalarType::Str
    }
}

fn is_true(text: &str) -> bool {
    matches!(
        text,
        "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" | "y" | "Y"
    )
}

/// YAML 1.1 int: decimal, `0x`, `0b`, octal `0..`, with `_` separators; sign allowed.
fn is_int(text: &str) -> bool {
    let t = text.strip_prefix(['+', '-']).unwrap_or(text);
    let all = |s: &str, f: fn(char) -> bool| !s.is_empty() && s.chars().all(|c| f(c) || c == '_');
    if let Some(h) = t.strip_prefix("0x") {
        return all(h, |c| c.is_ascii_hexdigit());
    }
    if let Some(b) = t.strip_prefix("0b") {
        return all(b, |c| c == '0' || c == '1');
    }
    t.starts_with(|c: char| c.is_ascii_digit()) && all(t, |c| c.is_ascii_digit())
}

/// YAML 1.1 float: `[-+]?([0-9][0-9_]*)?\.[0-9_]*([eE][-+][0-9]+)?`, `.inf`, `.nan`.
fn is_float(text: &str) -> bool {
    if matches!(
        text,
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" | "-.inf" | "-.Inf" | "-.INF"
    ) || matches!(text, ".nan" | ".NaN" | ".NAN")
    {
        return true;
    }
    let t = text.strip_prefix(['+', '-']).unwrap_or(text);
    let (mantissa, exponent) = match t.find(['e', 'E']) {
        Some(i) => (&t[..i], Some(&t[i + 1..])),
        None => (t, None),
    };
    let Some((int_part, frac_part)) = mantissa.split_once('.') else {
        return false;
    };
    let int_ok = int_part.is_empty()
        || (int_part.starts_with(|c: char| c.is_ascii_digit())
            && int_part.chars().all(|c| c.is_ascii_digit() || c == '_'));
    let frac_ok = frac_part.chars().all(|c| c.is_ascii_digit() || c == '_');
    let has_digit = mantissa.chars().any(|c| c.is_ascii_digit());
    let exp_ok = match exponent {
        None => true,
        Some(e) => {
            let digits = e.strip_prefix(['+', '-']);
            matches!(digits, Some(d) if !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()))
        }
    };
    int_ok && frac_ok && has_digit && exp_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(t: &str) -> ScalarType {
        classify(t, ScalarStyle::Plain, None)
    }

    #[test]
    fn plain_scalars_resolve_like_pyyaml() {
        assert_eq!(plain("1"), ScalarType::Int);
        assert_eq!(plain("-0x1F"), ScalarType::Int);
        assert_eq!(plain("1.7"), ScalarType::Float);
        assert_eq!(plain("1e5"), ScalarType::Str); // YAML 1.1 floats need a dot
        assert_eq!(plain("1.0e+5"), ScalarType::Float);
        assert_eq!(plain("2.6.2.0"), ScalarType::Str);
        assert_eq!(plain("5.13.0"), ScalarType::Str);
        assert_eq!(plain("openjdk"), ScalarType::Str);
        assert_eq!(plain("True"), ScalarType::Bool(true));
        assert_eq!(plain("no"), ScalarType::Bool(false));
        assert_eq!(plain("~"), ScalarType::Null);
        assert_eq!(plain("."), ScalarType::Str);
        assert_eq!(
            classify("8", ScalarStyle::SingleQuoted, None),
            ScalarType::Str
        );
        assert_eq!(
            classify("8", ScalarStyle::Plain, Some(("tag:yaml.org,2002:", "str"))),
            ScalarType::Str
        );
    }

    #[test]
    fn truthiness_matches_python() {
        let s = |text: &str| Scalar {
            text: text.into(),
            ty: plain(text),
        };
        assert!(!s("0").truthy());
        assert!(!s("0.0").truthy());
        assert!(!s("false").truthy());
        assert!(!s("~").truthy());
        assert!(s("1").truthy());
        assert!(s("0.5").truthy());
        assert!(s("x").truthy());
    }

    #[test]
    fn positions_are_one_based() {
        let docs = parse("a:\n  - b\n").unwrap();
        let Kind::Map(entries) = &docs[0].kind else {
            panic!("expected a mapping")
        };
        assert_eq!(entries[0].0.pos, Pos { line: 1, column: 1 });
        let Kind::Seq(items) = &entries[0].1.kind else {
            panic!("expected a list")
        };
        assert_eq!(items[0].pos, Pos { line: 2, column: 5 });
    }
}

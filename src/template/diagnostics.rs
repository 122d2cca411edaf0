//! Located problems: `FILE:LINE:COL: error: MESSAGE`, then the offending line with a caret.

use std::fmt;
use std::ops::Range;

use serde::Serialize;

/// A file's text with a line index, to turn byte offsets into line and column.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The name shown in diagnostics (the path as the user gave it).
    pub name: String,
    pub text: String,
    line_starts: Vec<usize>,
}

impl SourceFile {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        let text = text.into();
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        SourceFile {
            name: name.into(),
            text,
            line_starts,
        }
    }

    /// One-based line and column (in characters) of a byte offset.
    pub fn locate(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset) - 1;
        let start = self.line_starts[line];
        let col = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count());
        (line + 1, col + 1)
    }

    fn line_text(&self, line: usize) -> &str {
        let start = self.line_starts[line - 1];
        let end = self
            .line_starts
            .get(line)
            .map_or(self.text.len(), |&e| e.saturating_sub(1));
        self.text
            .get(start..end)
            .unwrap_or("")
            .trim_end_matches('\r')
    }

    /// An error at `span` (byte range) of this file.
    pub fn error(&self, span: Range<usize>, message: impl Into<String>) -> Diagnostic {
        let (line, column) = self.locate(span.start);
        let text = self.line_text(line).to_string();
        // Underline the span, but never past the end of its first line.
        let first_line_end = self
            .line_starts
            .get(line)
            .map_or(self.text.len(), |&e| e.saturating_sub(1));
        let end = span.end.min(first_line_end).max(span.start);
        let width = self
            .text
            .get(span.start..end)
            .map_or(1, |s| s.chars().count())
            .max(1);
        Diagnostic {
            file: self.name.clone(),
            line: Some(line),
            column: Some(column),
            severity: Severity::Error,
            message: message.into(),
            kind: Kind::Template,
            snippet: Some(Snippet { text, width }),
        }
    }
}

/// How bad a problem is. Only errors exist today; the field keeps the JSON stable for warnings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
}

/// Whether a problem is in the template (exit 1) or in how forge was called (exit 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The template, a var file or a variable value is wrong.
    Template,
    /// A file could not be read, or a command-line value is malformed.
    Input,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Snippet {
    text: String,
    width: usize,
}

/// One problem, with its place when it has one.
#[derive(Debug, Clone, Serialize)]
pub struct Diagnostic {
    pub file: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub severity: Severity,
    pub message: String,
    #[serde(skip)]
    pub kind: Kind,
    #[serde(skip)]
    snippet: Option<Snippet>,
}

impl Diagnostic {
    /// A problem without a position (an unreadable file, a malformed `-var`).
    pub fn input(file: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.into(),
            line: None,
            column: None,
            severity: Severity::Error,
            message: message.into(),
            kind: Kind::Input,
            snippet: None,
        }
    }

    /// A template problem without a position in a file (an environment variable's value).
    pub fn unlocated(file: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic {
            kind: Kind::Template,
            ..Diagnostic::input(file, message)
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "{}:{l}:{c}: error: {}", self.file, self.message)?,
            _ => write!(f, "{}: error: {}", self.file, self.message)?,
        }
        if let (Some(s), Some(line), Some(col)) = (&self.snippet, self.line, self.column) {
            let gutter = " ".repeat(line.to_string().len());
            // Tabs keep their width so the caret lines up under them.
            let pad: String = s
                .text
                .chars()
                .take(col - 1)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            write!(
                f,
                "\n{gutter} |\n{line} | {}\n{gutter} | {pad}{}",
                s.text,
                "^".repeat(s.width)
            )?;
        }
        Ok(())
    }
}

/// Every problem found in one run, sorted by file and position.
#[derive(Debug, Clone, Default)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn push(&mut self, d: Diagnostic) {
        self.items.push(d);
    }
    pub fn extend(&mut self, other: Diagnostics) {
        self.items.extend(other.items);
    }
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
    pub fn len(&self) -> usize {
        self.items.len()
    }
    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.items.iter()
    }

    /// Sorted by file, line, column; input problems first.
    pub fn sorted(mut self) -> Self {
        self.items.sort_by(|a, b| {
            (a.kind != Kind::Input, &a.file, a.line, a.column).cmp(&(
                b.kind != Kind::Input,
                &b.file,
                b.line,
                b.column,
            ))
        });
        self
    }

    /// 2 when any problem is an input/usage error, otherwise 1 (0 when there is none).
    pub fn exit_code(&self) -> u8 {
        if self.items.is_empty() {
            0
        } else if self.items.iter().any(|d| d.kind == Kind::Input) {
            2
        } else {
            1
        }
    }

    /// `{"valid": bool, "errors": N, "diagnostics": [{file, line, column, severity, message}]}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "valid": self.items.is_empty(),
            "errors": self.items.len(),
            "diagnostics": self.items,
        })
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.items.iter().enumerate() {
            if i > 0 {
                f.write_str("\n\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

impl From<Diagnostic> for Diagnostics {
    fn from(d: Diagnostic) -> Self {
        Diagnostics { items: vec![d] }
    }
}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

/// "did you mean" for a misspelt name: the closest candidate within a small edit distance.
pub(crate) fn suggest<'a>(name: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (edit_distance(name, c), *c))
        .filter(|(d, c)| *d <= (c.len() / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Optimal-string-alignment distance: Levenshtein plus adjacent transpositions ("nmae").
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locate_counts_characters_not_bytes() {
        let f = SourceFile::new("t", "a = 1\nné = \"x\"\n");
        assert_eq!(f.locate(0), (1, 1));
        assert_eq!(f.locate(6), (2, 1));
        // "né " is 4 bytes, 3 characters: '=' is column 4.
        assert_eq!(f.locate(10), (2, 4));
    }

    #[test]
    fn renders_header_line_and_caret() {
        let f = SourceFile::new("t.hcl", "x {\n  flavour = 1\n}\n");
        let d = f.error(6..13, "unknown attribute `flavour`");
        assert_eq!(
            d.to_string(),
            "t.hcl:2:3: error: unknown attribute `flavour`\n  |\n2 |   flavour = 1\n  |   ^^^^^^^"
        );
    }

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(suggest("flavour", &["flavor", "networks"]), Some("flavor"));
        assert_eq!(suggest("zzz", &["flavor", "networks"]), None);
        assert_eq!(suggest("nmae", &["name", "owner"]), Some("name"));
    }
}

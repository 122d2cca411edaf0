//! Reading a template file and parsing it with hcl-edit (which keeps every span).

use std::path::Path;

use hcl::edit::structure::Body;

use super::diagnostics::{Diagnostic, SourceFile};

/// Reads `path`; an unreadable file is an input error (exit 2).
pub(crate) fn read(path: &Path) -> Result<SourceFile, Diagnostic> {
    let name = path.display().to_string();
    match std::fs::read(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => Ok(SourceFile::new(name, text)),
            Err(_) => Err(Diagnostic::input(name, "the file is not valid UTF-8")),
        },
        Err(e) => Err(Diagnostic::input(
            name,
            format!("cannot read template: {e}"),
        )),
    }
}

/// Parses HCL syntax. The parser stops at the first syntax error, so at most one is reported.
pub(crate) fn parse(file: &SourceFile) -> Result<Body, Diagnostic> {
    hcl::edit::parser::parse_body(&file.text).map_err(|e| {
        let at = e.location().offset();
        if at >= file.text.trim_end().len() {
            // The parser only knows it hit the end; point at the brace that was never closed.
            if let Some(open) = unclosed_brace(&file.text) {
                return file.error(
                    open..open + 1,
                    "syntax error: this `{` is never closed (expected `}` before the end of the file)",
                );
            }
        }
        file.error(at..at + 1, format!("syntax error: {}", e.message()))
    })
}

/// The byte offset of the outermost `{` left open at the end of `text`, skipping comments,
/// strings (with their `${...}` interpolations) and heredocs. A heuristic for a better message
/// only: the parser has already rejected the file.
fn unclosed_brace(text: &str) -> Option<usize> {
    let b = text.as_bytes();
    let mut stack: Vec<usize> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'#' => i = skip_line(b, i),
            b'/' if b.get(i + 1) == Some(&b'/') => i = skip_line(b, i),
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i = text[i + 2..].find("*/").map_or(b.len(), |e| i + 2 + e + 2);
            }
            b'"' => i = skip_string(b, i + 1),
            b'<' if b.get(i + 1) == Some(&b'<') => i = skip_heredoc(text, i),
            b'{' => {
                stack.push(i);
                i += 1;
            }
            b'}' => {
                stack.pop();
                i += 1;
            }
            _ => i += 1,
        }
    }
    stack.first().copied()
}

fn skip_line(b: &[u8], i: usize) -> usize {
    b[i..]
        .iter()
        .position(|&c| c == b'\n')
        .map_or(b.len(), |e| i + e)
}

/// From just after an opening quote to just after the closing one.
fn skip_string(b: &[u8], mut i: usize) -> usize {
    let mut depth = 0usize; // open `${` / `%{` interpolations
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'"' if depth == 0 => return i + 1,
            b'\n' if depth == 0 => return i, // strings cannot span lines
            b'$' | b'%' if b.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth > 0 => depth -= 1,
            b'"' => i = skip_string(b, i + 1) - 1,
            _ => {}
        }
        i += 1;
    }
    i
}

/// `<<EOF` / `<<-EOF` up to the line holding only the delimiter.
fn skip_heredoc(text: &str, i: usize) -> usize {
    let rest = &text[i + 2..];
    let rest_trim = rest.strip_prefix('-').unwrap_or(rest);
    let delim: String = rest_trim
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    if delim.is_empty() {
        return i + 2;
    }
    let body_start = text[i..].find('\n').map_or(text.len(), |e| i + e + 1);
    let mut pos = body_start;
    for line in text[body_start..].split_inclusive('\n') {
        pos += line.len();
        if line.trim() == delim {
            return pos;
        }
    }
    text.len()
}

#[cfg(test)]
mod tests {
    use super::unclosed_brace;

    #[test]
    fn finds_the_outermost_unclosed_brace() {
        let t = "a {\n  x = \"}\"\n  # }\n  b {\n  }\n";
        assert_eq!(unclosed_brace(t), Some(2));
        assert_eq!(unclosed_brace("a {\n  y = \"${lower(\"}\")}\"\n}\n"), None);
        assert_eq!(unclosed_brace("a {\n  y = <<EOF\n}\nEOF\n}\n"), None);
        assert_eq!(unclosed_brace("a {}\n"), None);
    }
}

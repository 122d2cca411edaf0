//! Load-time errors: everything wrong with a spec file, each with its location.

use std::fmt;
use std::path::{Path, PathBuf};

/// One thing wrong with a spec: where, and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    /// 1-based line and column; `None` when the problem has no position (the file cannot be read).
    pub position: Option<(usize, usize)>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some((line, col)) => write!(
                f,
                "{}:{line}:{col}: error: {}",
                self.file.display(),
                self.message
            ),
            None => write!(f, "{}: error: {}", self.file.display(), self.message),
        }
    }
}

/// A spec that cannot be loaded. Display prints one line per problem:
/// `FILE:LINE:COL: error: MESSAGE`.
#[derive(Debug, Clone)]
pub struct SpecError {
    problems: Vec<Problem>,
}

impl SpecError {
    pub(crate) fn new(problems: Vec<Problem>) -> Self {
        debug_assert!(!problems.is_empty());
        SpecError { problems }
    }

    pub(crate) fn single(file: &Path, position: Option<(usize, usize)>, message: String) -> Self {
        SpecError::new(vec![Problem {
            file: file.to_path_buf(),
            position,
            message,
        }])
    }

    /// Every problem found, in document order.
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SpecError {}

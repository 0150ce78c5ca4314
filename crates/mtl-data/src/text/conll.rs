//! CoNLL-style column files: one token per line with its columns separated by
//! whitespace (or a chosen character), sentences separated by blank lines,
//! `-DOCSTART-` lines (document boundaries in CoNLL-2000/2003) skipped. The word and
//! the label are read from configurable columns.

use crate::text::example::{TextExample, TextLabels};
use crate::text::read_utf8;
use mtl_core::{Error, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Which column holds the label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LabelColumn {
    /// The last column of each line (the NER tag in CoNLL-2003, the chunk tag in
    /// CoNLL-2000). The default.
    #[default]
    Last,
    /// Column `i`, from 0.
    Index(usize),
}

/// How to read a column file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConllSpec {
    /// The column of the word (0).
    pub word_column: usize,
    /// The column of the label ([`LabelColumn::Last`]).
    pub label_column: LabelColumn,
    /// The column separator; `None` (the default) splits on runs of whitespace, which
    /// CoNLL-2000/2003 use. CoNLL-U needs `Some('\t')`, as its columns may hold spaces.
    pub separator: Option<char>,
    /// Skip lines starting with `#` (CoNLL-U comments). Off by default: in CoNLL-2000
    /// `#` is a token (the pound sign).
    pub skip_comments: bool,
}

impl Default for ConllSpec {
    fn default() -> Self {
        ConllSpec {
            word_column: 0,
            label_column: LabelColumn::Last,
            separator: None,
            skip_comments: false,
        }
    }
}

/// Reads the sentences of a column file: each a [`TextExample`] with its words and
/// [`TextLabels::Tokens`], `line` its first line. Errors name the file and line: not
/// UTF-8 ([`Error::Format`] with the byte offset), a line without the word or label
/// column ([`Error::Parse`] with the columns found).
pub fn read_conll(path: impl AsRef<Path>, spec: &ConllSpec) -> Result<Vec<TextExample>> {
    let path = path.as_ref();
    parse_conll(path, &read_utf8(path)?, spec)
}

/// [`read_conll`] over text already read; `path` names it in errors.
pub fn parse_conll(
    path: impl Into<PathBuf>,
    text: &str,
    spec: &ConllSpec,
) -> Result<Vec<TextExample>> {
    let source: Arc<Path> = Arc::from(path.into());
    let mut out = Vec::new();
    let mut words = Vec::new();
    let mut labels = Vec::new();
    let mut start = 0;
    let mut flush = |words: &mut Vec<String>, labels: &mut Vec<String>, start: u64| {
        if !words.is_empty() {
            out.push(TextExample {
                source: source.clone(),
                line: start,
                words: std::mem::take(words),
                raw: None,
                labels: TextLabels::Tokens(std::mem::take(labels)),
            });
        }
    };
    for (i, line) in text.lines().enumerate() {
        let number = i as u64 + 1;
        let trimmed = line.trim();
        if trimmed.is_empty() {
            flush(&mut words, &mut labels, start);
            continue;
        }
        if trimmed.starts_with("-DOCSTART-") || (spec.skip_comments && trimmed.starts_with('#')) {
            continue;
        }
        let columns: Vec<&str> = match spec.separator {
            None => trimmed.split_whitespace().collect(),
            Some(c) => line.trim_end_matches(['\r', '\n']).split(c).collect(),
        };
        let label_at = match spec.label_column {
            LabelColumn::Last if columns.len() >= 2 => Some(columns.len() - 1),
            LabelColumn::Last => None,
            LabelColumn::Index(k) => Some(k),
        };
        let (word, label) = match (
            columns.get(spec.word_column),
            label_at.and_then(|k| columns.get(k)),
        ) {
            (Some(w), Some(l)) => (w, l),
            _ => {
                return Err(Error::Parse {
                    path: source.to_path_buf(),
                    line: number,
                    message: format!(
                        "{} column(s), but the word is column {} and the label {}",
                        columns.len(),
                        spec.word_column,
                        match spec.label_column {
                            LabelColumn::Last => "the last (a second column is needed)".to_string(),
                            LabelColumn::Index(k) => format!("column {k}"),
                        }
                    ),
                })
            }
        };
        if word.trim().is_empty() || label.trim().is_empty() {
            return Err(Error::Parse {
                path: source.to_path_buf(),
                line: number,
                message: "an empty word or label column".into(),
            });
        }
        if words.is_empty() {
            start = number;
        }
        words.push(word.trim().to_string());
        labels.push(label.trim().to_string());
    }
    flush(&mut words, &mut labels, start);
    Ok(out)
}

//! JSON Lines: one JSON object per line, its text in one field and its label(s) in
//! another — one label for the record (classification) or a list with one label per
//! word (tagging). Blank lines are skipped.

use crate::text::example::{EmptyText, TextExample, TextLabels};
use crate::text::read_utf8;
use mtl_core::{Error, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How to read a JSON Lines file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonlSpec {
    /// The field holding the text: a string (split into words on whitespace) or a list
    /// of words. `"text"` by default.
    pub text_field: String,
    /// The field holding the labels: a string or integer (one label for the record) or
    /// a list of them, one per word. `"label"` by default.
    pub label_field: String,
    /// What to do with an empty or whitespace-only text ([`EmptyText::Refuse`] by
    /// default).
    pub empty: EmptyText,
}

impl Default for JsonlSpec {
    fn default() -> Self {
        JsonlSpec {
            text_field: "text".into(),
            label_field: "label".into(),
            empty: EmptyText::Refuse,
        }
    }
}

impl JsonlSpec {
    /// Reads the text from `text` and the labels from `label`.
    pub fn fields(text: impl Into<String>, label: impl Into<String>) -> Self {
        JsonlSpec {
            text_field: text.into(),
            label_field: label.into(),
            ..Self::default()
        }
    }

    /// Sets what happens to empty texts.
    pub fn empty(mut self, empty: EmptyText) -> Self {
        self.empty = empty;
        self
    }
}

/// Reads the records of a JSON Lines file as [`TextExample`]s. Errors name the file
/// and line: not UTF-8 ([`Error::Format`] with the byte offset), a line that is not a
/// JSON object, a missing field or one of the wrong type, a label list whose length is
/// not the number of words (both lengths), an empty text under [`EmptyText::Refuse`]
/// ([`Error::Parse`]).
pub fn read_jsonl(path: impl AsRef<Path>, spec: &JsonlSpec) -> Result<Vec<TextExample>> {
    let path = path.as_ref();
    parse_jsonl(path, &read_utf8(path)?, spec)
}

/// [`read_jsonl`] over text already read; `path` names it in errors.
pub fn parse_jsonl(
    path: impl Into<PathBuf>,
    text: &str,
    spec: &JsonlSpec,
) -> Result<Vec<TextExample>> {
    let source: Arc<Path> = Arc::from(path.into());
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let number = i as u64 + 1;
        if line.trim().is_empty() {
            continue;
        }
        let fail = |message: String| Error::Parse {
            path: source.to_path_buf(),
            line: number,
            message,
        };
        let value: Value = serde_json::from_str(line)
            .map_err(|e| fail(format!("not JSON (column {}): {e}", e.column())))?;
        let Value::Object(record) = value else {
            return Err(fail("not a JSON object".into()));
        };
        let field = |name: &str| {
            record.get(name).ok_or_else(|| {
                let known: Vec<&str> = record.keys().map(String::as_str).collect();
                fail(format!(
                    "no field `{name}` (the record has {})",
                    known.join(", ")
                ))
            })
        };
        let (raw, words) = match field(&spec.text_field)? {
            Value::String(s) => (
                Some(s.clone()),
                s.split_whitespace().map(str::to_string).collect::<Vec<_>>(),
            ),
            Value::Array(items) => (
                None,
                items
                    .iter()
                    .map(|v| scalar(v).ok_or(()))
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|_| {
                        fail(format!(
                            "field `{}` must hold strings when it is a list",
                            spec.text_field
                        ))
                    })?,
            ),
            other => {
                return Err(fail(format!(
                    "field `{}` must be a string or a list of words, not {}",
                    spec.text_field,
                    kind(other)
                )))
            }
        };
        if words.iter().all(|w| w.trim().is_empty()) {
            match spec.empty {
                EmptyText::Skip => continue,
                EmptyText::Refuse => {
                    return Err(fail(format!(
                        "field `{}` is empty or whitespace only (skip such records with \
                         `EmptyText::Skip`)",
                        spec.text_field
                    )))
                }
            }
        }
        let labels = match field(&spec.label_field)? {
            Value::Array(items) => {
                let labels = items
                    .iter()
                    .map(|v| scalar(v).ok_or(()))
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|_| {
                        fail(format!(
                            "field `{}` must hold strings or integers",
                            spec.label_field
                        ))
                    })?;
                if labels.len() != words.len() {
                    return Err(fail(format!(
                        "{} labels in `{}` but {} words in `{}`",
                        labels.len(),
                        spec.label_field,
                        words.len(),
                        spec.text_field
                    )));
                }
                TextLabels::Tokens(labels)
            }
            v => TextLabels::Sentence(scalar(v).ok_or_else(|| {
                fail(format!(
                    "field `{}` must be a string, an integer or a list of them, not {}",
                    spec.label_field,
                    kind(v)
                ))
            })?),
        };
        out.push(TextExample {
            source: source.clone(),
            line: number,
            words,
            raw,
            labels,
        });
    }
    Ok(out)
}

/// A string or an integer as a label or word; anything else is not one.
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        _ => None,
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

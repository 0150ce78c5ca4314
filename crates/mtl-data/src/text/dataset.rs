//! Loaded text examples as a one-task [`TensorDataset`]: token ids as features, the
//! labels as class ids by a [`LabelVocab`] fitted on the training split.

use crate::tensor_dataset::{TensorDataset, TensorTask};
use crate::text::example::{TextExample, TextLabels};
use crate::text::tokenizer::{Alignment, EncodeReport, TextTokenizer, Truncation};
use mtl_core::{Error, Result};
use std::collections::{BTreeSet, HashMap};
use tch::Tensor;

/// The classes of a task: label names and their ids (0, 1, … in sorted name order, so
/// the same training labels give the same ids whatever the order of the rows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelVocab {
    names: Vec<String>,
    index: HashMap<String, i64>,
}

impl LabelVocab {
    /// The labels of `examples` (the training split): their sentence labels or their
    /// token labels. Fails on no examples, or on examples mixing the two kinds (naming
    /// the first example of the other kind).
    pub fn fit(examples: &[TextExample]) -> Result<Self> {
        let first = examples
            .first()
            .ok_or_else(|| Error::config("LabelVocab::fit: no examples"))?;
        let mut names = BTreeSet::new();
        for e in examples {
            match (&e.labels, &first.labels) {
                (TextLabels::Sentence(l), TextLabels::Sentence(_)) => {
                    names.insert(l.clone());
                }
                (TextLabels::Tokens(ls), TextLabels::Tokens(_)) => {
                    names.extend(ls.iter().cloned());
                }
                _ => {
                    return Err(Error::config(format!(
                        "{}: {} labels, but {} has {} labels; a task has one kind",
                        e.place(),
                        kind(&e.labels),
                        first.place(),
                        kind(&first.labels)
                    )))
                }
            }
        }
        Self::from_names(names.into_iter().collect())
    }

    /// The labels `names`, in that id order (to keep the ids of a saved model). Fails
    /// on a repeated name.
    pub fn from_names(names: Vec<String>) -> Result<Self> {
        let mut index = HashMap::with_capacity(names.len());
        for (i, n) in names.iter().enumerate() {
            if index.insert(n.clone(), i as i64).is_some() {
                return Err(Error::config(format!("label `{n}` is listed twice")));
            }
        }
        Ok(LabelVocab { names, index })
    }

    /// The label names in id order (for `SequenceHead::with_bio_tags`, reports).
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The number of classes.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether there are no classes.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The id of `label`.
    pub fn id(&self, label: &str) -> Option<i64> {
        self.index.get(label).copied()
    }

    /// The id of `label` of `example`, or an error naming the label, the example's file
    /// and line, and the known labels: a label the training split never had cannot be
    /// predicted and would be scored as a silent miss.
    fn require(&self, label: &str, example: &TextExample) -> Result<i64> {
        self.id(label).ok_or_else(|| Error::Parse {
            path: example.source.to_path_buf(),
            line: example.line,
            message: format!(
                "label `{label}` is not among the training labels ({})",
                self.names.join(", ")
            ),
        })
    }
}

fn kind(labels: &TextLabels) -> &'static str {
    match labels {
        TextLabels::Sentence(_) => "sentence",
        TextLabels::Tokens(_) => "token",
    }
}

/// How [`text_dataset`] encodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextDatasetConfig {
    /// Tokens per row, special tokens included: the id tensor's width.
    pub max_len: usize,
    /// What to do with longer texts ([`Truncation::Truncate`] by default).
    pub truncation: Truncation,
    /// Which sub-words carry a word's label ([`Alignment::FirstSubword`] by default).
    pub alignment: Alignment,
}

impl TextDatasetConfig {
    /// Rows of `max_len` tokens, truncating, labels on first sub-words.
    pub fn new(max_len: usize) -> Self {
        TextDatasetConfig {
            max_len,
            truncation: Truncation::Truncate,
            alignment: Alignment::FirstSubword,
        }
    }

    /// Sets the truncation.
    pub fn truncation(mut self, truncation: Truncation) -> Self {
        self.truncation = truncation;
        self
    }

    /// Sets the label alignment.
    pub fn alignment(mut self, alignment: Alignment) -> Self {
        self.alignment = alignment;
        self
    }
}

/// A text task's dataset and what encoding did.
#[derive(Debug)]
pub struct TextData {
    /// Features `Int64 [N, max_len]` (token ids, padded with the tokenizer's pad id);
    /// one task, named as asked: `Int64 [N]` class ids for sentence labels, or
    /// `Int64 [N, max_len]` tags with
    /// [`TOKEN_PADDING_LABEL`](crate::text::TOKEN_PADDING_LABEL) where a token has none.
    pub dataset: TensorDataset,
    /// Truncations, unknown tokens, lost word labels.
    pub report: EncodeReport,
}

/// Encodes `examples` (all with sentence labels, or all with token labels) with
/// `tokenizer` into a one-task dataset named `task`, the labels mapped by `labels`
/// (fitted on the training split: use the same one for validation and test).
///
/// Errors name the example's file and line: a label not in `labels`, an example of the
/// other label kind, and the tokenizer's refusals (an empty text, a text over
/// `max_len` under [`Truncation::Refuse`]).
pub fn text_dataset(
    task: &str,
    tokenizer: &TextTokenizer,
    examples: &[TextExample],
    labels: &LabelVocab,
    config: &TextDatasetConfig,
) -> Result<TextData> {
    let first = examples
        .first()
        .ok_or_else(|| Error::config(format!("text_dataset `{task}`: no examples")))?;
    let name = |i: usize| format!("the sentence at {}", examples[i].place());
    let (encoded, values) = match &first.labels {
        TextLabels::Sentence(_) => {
            let mut ids = Vec::with_capacity(examples.len());
            for e in examples {
                match &e.labels {
                    TextLabels::Sentence(l) => ids.push(labels.require(l, e)?),
                    other => return Err(mixed(task, e, other)),
                }
            }
            let texts: Vec<_> = examples.iter().map(TextExample::text).collect();
            let encoded =
                tokenizer.encode_named(&texts, config.max_len, config.truncation, &name)?;
            (encoded, Tensor::from_slice(&ids))
        }
        TextLabels::Tokens(_) => {
            let mut tags = Vec::with_capacity(examples.len());
            for e in examples {
                match &e.labels {
                    TextLabels::Tokens(ls) => tags.push(
                        ls.iter()
                            .map(|l| labels.require(l, e))
                            .collect::<Result<Vec<_>>>()?,
                    ),
                    other => return Err(mixed(task, e, other)),
                }
            }
            let words: Vec<Vec<&str>> = examples
                .iter()
                .map(|e| e.words.iter().map(String::as_str).collect())
                .collect();
            let mut encoded = tokenizer.encode_words_named(
                &words,
                &tags,
                config.max_len,
                config.truncation,
                config.alignment,
                &name,
            )?;
            let values = encoded
                .labels
                .take()
                .ok_or_else(|| Error::config("encode_words returned no labels".to_string()))?;
            (encoded, values)
        }
    };
    let dataset = TensorDataset::new(encoded.ids, vec![TensorTask::new(task, values)])?;
    Ok(TextData {
        dataset,
        report: encoded.report,
    })
}

fn mixed(task: &str, e: &TextExample, labels: &TextLabels) -> Error {
    Error::config(format!(
        "text_dataset `{task}`: {} has {} labels, unlike the first example",
        e.place(),
        kind(labels)
    ))
}

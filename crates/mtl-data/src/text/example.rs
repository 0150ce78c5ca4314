//! One loaded text example — its words, its labels, and where it came from — as both
//! loaders produce it.

use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;

/// What a loader does with a text that is empty or only whitespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EmptyText {
    /// Fail, naming the file and line: an empty record is usually a broken export, and
    /// dropping it silently would shift every later row. The default.
    #[default]
    Refuse,
    /// Leave it out of the examples.
    Skip,
}

/// The labels of one example.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextLabels {
    /// One label for the whole text (classification).
    Sentence(String),
    /// One label per word (tagging), as many as the words.
    Tokens(Vec<String>),
}

/// A text and its labels, with the file and line it was read from so later errors can
/// name them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextExample {
    /// The file it came from.
    pub source: Arc<Path>,
    /// The 1-based line: the record's line in JSON Lines, the sentence's first line in a
    /// column file.
    pub line: u64,
    /// The words (whitespace-separated pieces of a text string, or the given tokens).
    pub words: Vec<String>,
    /// The text as given, when it was given as one string; `None` when the example came
    /// as words.
    pub raw: Option<String>,
    /// The labels.
    pub labels: TextLabels,
}

impl TextExample {
    /// The text: as given, or the words joined by single spaces.
    pub fn text(&self) -> Cow<'_, str> {
        match &self.raw {
            Some(t) => Cow::Borrowed(t),
            None => Cow::Owned(self.words.join(" ")),
        }
    }

    /// `file:line`, for messages.
    pub fn place(&self) -> String {
        format!("{}:{}", self.source.display(), self.line)
    }
}

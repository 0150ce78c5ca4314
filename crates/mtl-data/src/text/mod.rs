//! Text for multi-task learning: sub-word tokenization ([`TextTokenizer`], over the
//! Hugging Face `tokenizers` crate), loaders for CoNLL-style column files
//! ([`read_conll`]) and JSON Lines ([`read_jsonl`]), the shipped Brown corpus
//! ([`BrownCorpus`]: a genre per document, a universal part-of-speech tag per word),
//! and [`text_dataset`], which turns
//! loaded examples into a one-task [`TensorDataset`](crate::TensorDataset) of token ids
//! — sentence labels `Int64 [N]` or token labels `Int64 [N, T]` — ready for the
//! `TransformerEncoder` and, task by task, for
//! [`MultiInputData`](crate::MultiInputData) ("D₁ for classification, D₂ for tagging").
//!
//! Every loader error names the file and the line (and, for bytes that are not UTF-8,
//! the byte offset); a label list of another length than the words names the line and
//! both lengths; a label seen in evaluation data but not in training data is an error
//! naming it.
//!
//! ```
//! use mtl_data::text::{
//!     parse_conll, parse_jsonl, text_dataset, Alignment, ConllSpec, JsonlSpec, LabelVocab,
//!     TextDatasetConfig, TextTokenizer,
//! };
//! use mtl_data::JointData;
//!
//! // D1: sentence classification from JSON Lines.
//! let reviews = parse_jsonl(
//!     "reviews.jsonl",
//!     "{\"text\": \"a fine film\", \"label\": \"pos\"}\n\
//!      {\"text\": \"a dull film\", \"label\": \"neg\"}\n",
//!     &JsonlSpec::default(),
//! )?;
//! // D2: tagging from a CoNLL file (word, POS, chunk: the label is the last column).
//! let chunks = parse_conll(
//!     "chunks.txt",
//!     "-DOCSTART- -X- O\n\nthe DT B-NP\nfilm NN I-NP\n\nfine JJ B-ADJP\n",
//!     &ConllSpec::default(),
//! )?;
//! let corpus = reviews.iter().chain(&chunks).map(|e| e.text());
//! let tokenizer = TextTokenizer::train_wordpiece(corpus.collect::<Vec<_>>(), 60)?;
//! let config = TextDatasetConfig::new(8).alignment(Alignment::FirstSubword);
//!
//! let sentiment = LabelVocab::fit(&reviews)?;
//! let d1 = text_dataset("sentiment", &tokenizer, &reviews, &sentiment, &config)?;
//! let tags = LabelVocab::fit(&chunks)?;
//! let d2 = text_dataset("chunks", &tokenizer, &chunks, &tags, &config)?;
//! assert_eq!(d1.dataset.features().size(), [2, 8]);
//! assert_eq!(d1.dataset.tasks()[0].values.size(), [2]);
//! assert_eq!(d2.dataset.tasks()[0].values.size(), [2, 8]);
//! assert_eq!(tags.names(), ["B-ADJP", "B-NP", "I-NP"]);
//!
//! let data = mtl_data::MultiInputData::from_tensor_datasets(vec![d1.dataset, d2.dataset])?;
//! assert_eq!(data.task_names(), ["sentiment", "chunks"]);
//! # Ok::<(), mtl_core::Error>(())
//! ```

mod brown;
mod conll;
mod dataset;
mod example;
mod jsonl;
mod subword_trainer;
mod tokenizer;

pub use brown::{
    universal_tag, BrownCorpus, BrownGenre, BrownSentence, CoarseGenre, UniversalTag, BROWN_FILE,
};
pub use conll::{parse_conll, read_conll, ConllSpec, LabelColumn};
pub use dataset::{text_dataset, LabelVocab, TextData, TextDatasetConfig};
pub use example::{EmptyText, TextExample, TextLabels};
pub use jsonl::{parse_jsonl, read_jsonl, JsonlSpec};
pub use tokenizer::{
    Alignment, EncodeReport, EncodedBatch, SubwordModel, TextTokenizer, TokenizerConfig,
    Truncation, SPECIAL_TOKENS, TOKEN_PADDING_LABEL,
};

use mtl_core::{Error, Result};
use std::path::Path;

/// The file at `path` as text; bytes that are not UTF-8 are an [`Error::Format`] naming
/// the file, the byte offset and its line.
pub(crate) fn read_utf8(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    utf8(path, bytes)
}

/// `bytes` (the content of `path`) as text, or the error [`read_utf8`] describes.
pub(crate) fn utf8(path: &Path, bytes: Vec<u8>) -> Result<String> {
    String::from_utf8(bytes).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        let bytes = e.as_bytes();
        let line = 1 + bytes[..offset].iter().filter(|&&b| b == b'\n').count();
        let shown: Vec<String> = bytes[offset..]
            .iter()
            .take(4)
            .map(|b| format!("0x{b:02x}"))
            .collect();
        Error::Format {
            path: path.to_path_buf(),
            offset: offset as u64,
            expected: "UTF-8 text".into(),
            found: format!("bytes {} (line {line})", shown.join(" ")),
        }
    })
}

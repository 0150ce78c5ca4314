//! Sub-word tokenization over the Hugging Face `tokenizers` crate: train a WordPiece or
//! BPE vocabulary on a corpus, or load a `tokenizer.json`; encode sentences (or
//! pre-split words with their labels) into padded id tensors for
//! [`TransformerEncoder`](https://docs.rs/mtl-core) and per-token label tensors for a
//! sequence head.
//!
//! Trained tokenizers are BERT-shaped: BERT's normaliser (control characters removed,
//! accents stripped and lower-cased unless [`TokenizerConfig::lowercase`] is off), BERT's
//! pre-tokeniser (whitespace and punctuation), the sub-word model, and `[CLS] … [SEP]`
//! around every sentence. The special tokens come first in the vocabulary, in the order
//! of [`SPECIAL_TOKENS`], so `[PAD]` is id 0 — the encoder's default `pad_id`.
//!
//! Training is our own and deterministic (one corpus, one vocabulary; see
//! [`TextTokenizer::train`]); the result is an ordinary `tokenizers` WordPiece or BPE
//! model, saved as a `tokenizer.json` that Hugging Face `tokenizers` loads.
//!
//! Encoding runs `tokenizers`' own `encode_batch`, which spreads the sentences over the
//! global rayon pool (the one the rest of this crate uses); `TOKENIZERS_PARALLELISM=false`
//! turns it off.

use crate::text::read_utf8;
use crate::text::subword_trainer::SubwordTrainer;
use mtl_core::{Error, Result};
use sha2::{Digest, Sha256};
use std::path::Path;
use tch::Tensor;
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{EncodeInput, Encoding, PostProcessor, Tokenizer};

/// The special tokens of a trained tokenizer, in id order: `[PAD]` is 0.
pub const SPECIAL_TOKENS: [&str; 5] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];

/// The label of tokens that carry none — special tokens, padding and, with
/// [`Alignment::FirstSubword`], the later sub-words of a word. It is −1, the default
/// padding label of `mtl_heads::SequenceHead` (and [`MLM_IGNORE`](crate::MLM_IGNORE)),
/// so a sequence head built with its defaults skips these tokens.
pub const TOKEN_PADDING_LABEL: i64 = -1;

/// Which sub-word model a tokenizer is trained with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubwordModel {
    /// BERT's WordPiece (continuation pieces prefixed `##`).
    WordPiece,
    /// Byte-pair encoding over characters, with `[UNK]` for unseen characters.
    Bpe,
}

/// Settings for training a tokenizer.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenizerConfig {
    /// The sub-word model.
    pub model: SubwordModel,
    /// The vocabulary size to reach, special tokens included. The corpus may yield
    /// fewer; it yields more only when its characters alone (with their `##` forms for
    /// WordPiece) outnumber it, since the alphabet is kept whole.
    pub vocab_size: usize,
    /// Pieces seen fewer times are not merged.
    pub min_frequency: u64,
    /// Lower-case and strip accents before splitting (BERT uncased); off keeps case.
    pub lowercase: bool,
}

impl TokenizerConfig {
    /// WordPiece with `vocab_size` entries, lower-cased, pieces seen at least twice.
    pub fn wordpiece(vocab_size: usize) -> Self {
        TokenizerConfig {
            model: SubwordModel::WordPiece,
            vocab_size,
            min_frequency: 2,
            lowercase: true,
        }
    }

    /// BPE with `vocab_size` entries, lower-cased, pieces seen at least twice.
    pub fn bpe(vocab_size: usize) -> Self {
        TokenizerConfig {
            model: SubwordModel::Bpe,
            ..Self::wordpiece(vocab_size)
        }
    }
}

/// What to do with a sentence longer than the maximum length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Truncation {
    /// Keep its first tokens (and the closing `[SEP]`); the [`EncodeReport`] lists it,
    /// and one warning line per call says how many were cut.
    #[default]
    Truncate,
    /// Fail with an error naming the sentence and its length.
    Refuse,
}

/// Which tokens of a word carry its label in [`TextTokenizer::encode_words`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Alignment {
    /// Only the first sub-word; the others get [`TOKEN_PADDING_LABEL`] (the usual choice
    /// for NER: one prediction per word).
    #[default]
    FirstSubword,
    /// Every sub-word of the word.
    AllSubwords,
}

/// Sentences as padded tensors.
#[derive(Debug)]
pub struct EncodedBatch {
    /// `Int64 [N, T]` token ids, padded with the tokenizer's pad id after each
    /// sentence; `T` is the `max_len` asked for, so every split (and every task encoded
    /// alike) has one width.
    pub ids: Tensor,
    /// `Bool [N, T]`: true on real tokens (special ones included), false on padding.
    pub attention_mask: Tensor,
    /// `Int64 [N, T]` per-token labels from [`TextTokenizer::encode_words`]
    /// ([`TOKEN_PADDING_LABEL`] where a token has none); `None` for plain sentences.
    pub labels: Option<Tensor>,
    /// What happened on the way.
    pub report: EncodeReport,
}

/// What encoding did to the input: which sentences were truncated, how many tokens fell
/// back to `[UNK]`, how many word labels were lost.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EncodeReport {
    /// The number of sentences.
    pub sentences: usize,
    /// The maximum length encoded to.
    pub max_len: usize,
    /// The indices of the sentences that were cut to `max_len`.
    pub truncated: Vec<usize>,
    /// The longest sentence, in tokens with the special ones, before any cut.
    pub longest: usize,
    /// Tokens that are the unknown token (characters outside the vocabulary).
    pub unknown_tokens: usize,
    /// Word labels that no token carries: the word was cut off by truncation, or it
    /// normalised to nothing (control characters only).
    pub dropped_labels: usize,
}

impl EncodeReport {
    /// One line saying what was truncated, or `None` when nothing was.
    pub fn warning(&self) -> Option<String> {
        let first = self.truncated.first()?;
        Some(format!(
            "{} of {} sentences are longer than max_len {} and were truncated (the first is \
             sentence {first}; the longest has {} tokens){}",
            self.truncated.len(),
            self.sentences,
            self.max_len,
            self.longest,
            match self.dropped_labels {
                0 => String::new(),
                n => format!("; {n} word labels were cut off"),
            }
        ))
    }
}

/// A sub-word tokenizer with BERT's special tokens, producing tensors; see the
/// [module docs](crate::text).
#[derive(Debug, Clone)]
pub struct TextTokenizer {
    inner: Tokenizer,
    pad_id: u32,
    unk_id: Option<u32>,
}

/// A `tokenizers` error as ours.
fn tok_err(context: &str) -> impl Fn(tokenizers::Error) -> Error + '_ {
    move |e| Error::config(format!("{context}: {e}"))
}

impl TextTokenizer {
    /// Trains a WordPiece vocabulary of `vocab_size` entries on `corpus` (one text per
    /// item), lower-cased; see [`TextTokenizer::train`].
    pub fn train_wordpiece<S: AsRef<str> + Send>(
        corpus: impl IntoIterator<Item = S, IntoIter: Send>,
        vocab_size: usize,
    ) -> Result<Self> {
        Self::train(corpus, &TokenizerConfig::wordpiece(vocab_size))
    }

    /// Trains a BPE vocabulary of `vocab_size` entries on `corpus`, lower-cased; see
    /// [`TextTokenizer::train`].
    pub fn train_bpe<S: AsRef<str> + Send>(
        corpus: impl IntoIterator<Item = S, IntoIter: Send>,
        vocab_size: usize,
    ) -> Result<Self> {
        Self::train(corpus, &TokenizerConfig::bpe(vocab_size))
    }

    /// Trains a tokenizer on `corpus` (one text per item). The vocabulary starts with
    /// [`SPECIAL_TOKENS`] (`[PAD]` = 0, `[UNK]` = 1, `[CLS]` = 2, `[SEP]` = 3,
    /// `[MASK]` = 4), then the corpus's characters, then the learned pieces. Fails when
    /// the vocabulary size cannot even hold the special tokens.
    ///
    /// Deterministic: one corpus and one config give one vocabulary, byte for byte the
    /// same `tokenizer.json` and [`vocab_fingerprint`](Self::vocab_fingerprint), whatever
    /// the order of the texts or the number of rayon threads. Words are split by the
    /// normaliser and pre-tokeniser that encoding uses; merges follow a fixed rule
    /// (highest count, ties to the lexicographically first pair), described in the
    /// trainer's notes in the source (`text/subword_trainer.rs`). The result loads in
    /// Hugging Face `tokenizers` as any WordPiece or BPE `tokenizer.json`.
    pub fn train<S: AsRef<str> + Send>(
        corpus: impl IntoIterator<Item = S, IntoIter: Send>,
        config: &TokenizerConfig,
    ) -> Result<Self> {
        if config.vocab_size <= SPECIAL_TOKENS.len() {
            return Err(Error::config(format!(
                "tokenizer vocab_size {} leaves no room beside the {} special tokens",
                config.vocab_size,
                SPECIAL_TOKENS.len()
            )));
        }
        let unk = SPECIAL_TOKENS[1];
        let mut trainer = SubwordTrainer::new(
            config.model,
            config.vocab_size,
            config.min_frequency,
            &SPECIAL_TOKENS,
            unk,
        );
        // The trainer replaces this placeholder with the trained model.
        let model = WordPiece::builder()
            .unk_token(unk.to_string())
            .build()
            .map_err(tok_err("WordPiece"))?;
        let mut inner = Tokenizer::new(model);
        inner
            .with_normalizer(Some(BertNormalizer::new(
                true,
                true,
                Some(config.lowercase),
                config.lowercase,
            )))
            .map_err(tok_err("tokenizer normaliser"))?;
        inner.with_pre_tokenizer(Some(BertPreTokenizer));
        if config.model == SubwordModel::WordPiece {
            inner.with_decoder(Some(tokenizers::decoders::wordpiece::WordPiece::default()));
        }
        inner
            .train(&mut trainer, corpus.into_iter())
            .map_err(tok_err("training the tokenizer"))?;
        // The ids are known only now: the template names them.
        let id = |t: &str| {
            inner
                .token_to_id(t)
                .ok_or_else(|| Error::config(format!("the trained vocabulary lacks {t}")))
        };
        let (cls, sep) = (id("[CLS]")?, id("[SEP]")?);
        let template = TemplateProcessing::builder()
            .try_single("[CLS] $A [SEP]")
            .map_err(|e| Error::config(format!("tokenizer template: {e}")))?
            .try_pair("[CLS] $A [SEP] $B:1 [SEP]:1")
            .map_err(|e| Error::config(format!("tokenizer template: {e}")))?
            .special_tokens(vec![("[CLS]", cls), ("[SEP]", sep)])
            .build()
            .map_err(|e| Error::config(format!("tokenizer template: {e}")))?;
        inner.with_post_processor(Some(template));
        Self::wrap(inner, "[PAD]", "the trained tokenizer")
    }

    /// Loads a `tokenizer.json` (as written by [`save`](Self::save) or by Hugging Face
    /// `tokenizers`), whose padding token is `[PAD]`; see
    /// [`from_file_with_pad`](Self::from_file_with_pad).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        Self::from_file_with_pad(path, "[PAD]")
    }

    /// Loads a `tokenizer.json` whose padding token is `pad_token`. Errors name the
    /// file: unreadable ([`Error::Io`]), not UTF-8 ([`Error::Format`] with the byte
    /// offset), not a tokenizer ([`Error::Parse`] with the line), or without
    /// `pad_token`. A pad id other than 0 works, but the encoder must then be told
    /// (`TransformerConfig::pad_id`).
    pub fn from_file_with_pad(path: impl AsRef<Path>, pad_token: &str) -> Result<Self> {
        let path = path.as_ref();
        let text = read_utf8(path)?;
        let inner: Tokenizer = text.parse().map_err(|e: tokenizers::Error| {
            // A JSON error knows its line; anything else is about the file as a whole.
            let line = e
                .downcast_ref::<serde_json::Error>()
                .map_or(0, |j| j.line() as u64);
            Error::Parse {
                path: path.to_path_buf(),
                line,
                message: format!("not a tokenizer.json: {e}"),
            }
        })?;
        Self::wrap(inner, pad_token, &path.display().to_string())
    }

    fn wrap(mut inner: Tokenizer, pad_token: &str, what: &str) -> Result<Self> {
        let pad_id = inner.token_to_id(pad_token).ok_or_else(|| {
            Error::config(format!(
                "{what} has no padding token `{pad_token}` in its vocabulary"
            ))
        })?;
        // Padding and truncation are ours (fixed width, reported cuts): a file's own
        // settings would pad or cut behind our back.
        inner.with_padding(None);
        inner
            .with_truncation(None)
            .map_err(tok_err("clearing the tokenizer's truncation"))?;
        let unk_id = inner.token_to_id("[UNK]");
        Ok(TextTokenizer {
            inner,
            pad_id,
            unk_id,
        })
    }

    /// Writes the tokenizer as `tokenizer.json` at `path`, atomically.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let json = self
            .inner
            .to_string(true)
            .map_err(tok_err("serialising the tokenizer"))?;
        mtl_core::files::write_atomically(path.as_ref(), json.as_bytes())
    }

    /// The id of the padding token (0 for trained tokenizers).
    pub fn pad_id(&self) -> i64 {
        i64::from(self.pad_id)
    }

    /// The vocabulary size, special and added tokens included: the encoder's `vocab`.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The id of `token`, if it is in the vocabulary.
    pub fn token_id(&self, token: &str) -> Option<i64> {
        self.inner.token_to_id(token).map(i64::from)
    }

    /// The SHA-256 (hex) of the vocabulary — every token with its id, in id order — so
    /// a checkpoint or bundle can record it and refuse a tokenizer of another
    /// vocabulary, whose ids would mean other tokens to the trained embedding.
    pub fn vocab_fingerprint(&self) -> String {
        let mut vocab: Vec<(u32, String)> = self
            .inner
            .get_vocab(true)
            .into_iter()
            .map(|(t, i)| (i, t))
            .collect();
        vocab.sort_unstable();
        let mut h = Sha256::new();
        for (id, token) in &vocab {
            h.update(id.to_le_bytes());
            h.update((token.len() as u64).to_le_bytes());
            h.update(token.as_bytes());
        }
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Fails with [`Error::VocabularyMismatch`] naming both fingerprints unless
    /// `fingerprint` is this tokenizer's [`vocab_fingerprint`](Self::vocab_fingerprint):
    /// `what` says where the expected one came from (a checkpoint's path).
    pub fn check_fingerprint(&self, fingerprint: &str, what: &str) -> Result<()> {
        let own = self.vocab_fingerprint();
        match own == fingerprint {
            true => Ok(()),
            false => Err(Error::VocabularyMismatch {
                what: what.to_string(),
                expected: fingerprint.to_string(),
                found: own,
            }),
        }
    }

    /// The underlying `tokenizers` tokenizer.
    pub fn inner(&self) -> &Tokenizer {
        &self.inner
    }

    /// Encodes `texts` into `[N, max_len]` ids and attention mask, one row per text
    /// (with `[CLS]`/`[SEP]` when the tokenizer adds them).
    ///
    /// Errors: `max_len` too small for the special tokens; an empty or whitespace-only
    /// text (naming its index: drop or fill it before); with [`Truncation::Refuse`] a
    /// text longer than `max_len` (naming it and its length). Truncated texts are listed
    /// in the report and summed up in one warning line.
    pub fn encode_batch<S: AsRef<str> + Sync>(
        &self,
        texts: &[S],
        max_len: usize,
        truncation: Truncation,
    ) -> Result<EncodedBatch> {
        self.encode_named(texts, max_len, truncation, &|i| format!("sentence {i}"))
    }

    /// [`encode_batch`](Self::encode_batch), naming sentence `i` in errors as `name(i)`.
    pub(crate) fn encode_named<S: AsRef<str> + Sync>(
        &self,
        texts: &[S],
        max_len: usize,
        truncation: Truncation,
        name: &dyn Fn(usize) -> String,
    ) -> Result<EncodedBatch> {
        if let Some(i) = texts.iter().position(|t| t.as_ref().trim().is_empty()) {
            return Err(Error::config(format!(
                "{} is empty or whitespace only; skip it when loading \
                 (`EmptyText::Skip`) or give it content",
                name(i)
            )));
        }
        let inputs: Vec<EncodeInput<'_>> = texts.iter().map(|t| t.as_ref().into()).collect();
        self.encode_inputs(inputs, max_len, truncation, None, name)
    }

    /// Encodes sentences given as words, with one label per word, into ids and per-token
    /// labels (`Int64 [N, max_len]`): a word's label goes on its first sub-word or on
    /// all of them (`alignment`); special tokens, padding and unlabelled sub-words get
    /// [`TOKEN_PADDING_LABEL`].
    ///
    /// Errors: as [`encode_batch`](Self::encode_batch); a sentence without words; a
    /// label list whose length is not the sentence's word count (naming the sentence and
    /// both lengths); a negative label.
    pub fn encode_words<W: AsRef<str> + Sync>(
        &self,
        sentences: &[Vec<W>],
        labels: &[Vec<i64>],
        max_len: usize,
        truncation: Truncation,
        alignment: Alignment,
    ) -> Result<EncodedBatch> {
        let name = |i| format!("sentence {i}");
        self.encode_words_named(sentences, labels, max_len, truncation, alignment, &name)
    }

    /// [`encode_words`](Self::encode_words), naming sentence `i` in errors as `name(i)`.
    pub(crate) fn encode_words_named<W: AsRef<str> + Sync>(
        &self,
        sentences: &[Vec<W>],
        labels: &[Vec<i64>],
        max_len: usize,
        truncation: Truncation,
        alignment: Alignment,
        name: &dyn Fn(usize) -> String,
    ) -> Result<EncodedBatch> {
        if sentences.len() != labels.len() {
            return Err(Error::RowCount {
                what: "word labels (sentences)".into(),
                expected: sentences.len(),
                got: labels.len(),
            });
        }
        for (i, (words, tags)) in sentences.iter().zip(labels).enumerate() {
            if words.iter().all(|w| w.as_ref().trim().is_empty()) {
                return Err(Error::config(format!(
                    "{} has no words; skip it when loading",
                    name(i)
                )));
            }
            if words.len() != tags.len() {
                return Err(Error::shape(
                    format!("labels of {}", name(i)),
                    format!("{} (one per word)", words.len()),
                    tags.len(),
                ));
            }
            if let Some(bad) = tags.iter().find(|&&l| l < 0) {
                return Err(Error::config(format!(
                    "{} has label {bad}; labels are class ids from 0",
                    name(i)
                )));
            }
        }
        let inputs: Vec<EncodeInput<'_>> = sentences
            .iter()
            .map(|words| {
                let words: Vec<&str> = words.iter().map(AsRef::as_ref).collect();
                words.into()
            })
            .collect();
        self.encode_inputs(inputs, max_len, truncation, Some((labels, alignment)), name)
    }

    fn encode_inputs(
        &self,
        inputs: Vec<EncodeInput<'_>>,
        max_len: usize,
        truncation: Truncation,
        labels: Option<(&[Vec<i64>], Alignment)>,
        name: &dyn Fn(usize) -> String,
    ) -> Result<EncodedBatch> {
        let specials = self
            .inner
            .get_post_processor()
            .map_or(0, |p| p.added_tokens(false));
        if max_len <= specials {
            return Err(Error::config(format!(
                "max_len {max_len} leaves no room for text beside the {specials} special tokens"
            )));
        }
        let n = inputs.len();
        // Encoded in full: the report needs the true lengths, and refusal names them.
        let encodings = self
            .inner
            .encode_batch(inputs, true)
            .map_err(tok_err("encoding"))?;
        let mut report = EncodeReport {
            sentences: n,
            max_len,
            ..EncodeReport::default()
        };
        let width = max_len as i64;
        let mut ids = vec![self.pad_id as i64; n * max_len];
        let mut mask = vec![false; n * max_len];
        let mut tags = labels.map(|_| vec![TOKEN_PADDING_LABEL; n * max_len]);
        for (i, mut enc) in encodings.into_iter().enumerate() {
            report.longest = report.longest.max(enc.len());
            if enc.len() > max_len {
                if truncation == Truncation::Refuse {
                    return Err(Error::config(format!(
                        "{} has {} tokens, over max_len {max_len} (truncation is set to \
                         refuse)",
                        name(i),
                        enc.len()
                    )));
                }
                report.truncated.push(i);
                enc = self.truncate(enc, max_len, specials)?;
            }
            let row = i * max_len;
            for (j, &id) in enc.get_ids().iter().enumerate() {
                ids[row + j] = i64::from(id);
                mask[row + j] = true;
                report.unknown_tokens += usize::from(Some(id) == self.unk_id);
            }
            if let (Some(tags), Some((labels, alignment))) = (tags.as_mut(), labels) {
                let words = &labels[i];
                let mut carried = vec![false; words.len()];
                let mut previous = None;
                for (j, word) in enc.get_word_ids().iter().enumerate() {
                    let Some(w) = *word else {
                        previous = None;
                        continue;
                    };
                    let w = w as usize;
                    let first = previous != Some(w);
                    previous = Some(w);
                    if first || alignment == Alignment::AllSubwords {
                        if let Some(&label) = words.get(w) {
                            tags[row + j] = label;
                            carried[w] = true;
                        }
                    }
                }
                report.dropped_labels += carried.iter().filter(|c| !**c).count();
            }
        }
        if let Some(line) = report.warning() {
            tracing::warn!("{line}");
        }
        let shape = [n as i64, width];
        Ok(EncodedBatch {
            ids: Tensor::from_slice(&ids).f_reshape(shape)?,
            attention_mask: Tensor::from_slice(&mask).f_reshape(shape)?,
            labels: tags
                .map(|t| Tensor::from_slice(&t).f_reshape(shape))
                .transpose()?,
            report,
        })
    }

    /// `enc` cut to `max_len` tokens: the text's first tokens, then the special tokens
    /// the post-processor adds, re-applied so `[SEP]` still closes the sentence.
    fn truncate(&self, enc: Encoding, max_len: usize, specials: usize) -> Result<Encoding> {
        let mut keep = Vec::with_capacity(max_len);
        let special = enc.get_special_tokens_mask();
        // The text's tokens are the non-special ones, in order; their word ids and
        // offsets come along.
        let text: Vec<usize> = (0..enc.len()).filter(|&j| special[j] == 0).collect();
        keep.extend(text.into_iter().take(max_len - specials));
        let tokens: Vec<tokenizers::Token> = keep
            .iter()
            .map(|&j| {
                tokenizers::Token::new(
                    enc.get_ids()[j],
                    enc.get_tokens()[j].clone(),
                    enc.get_offsets()[j],
                )
            })
            .collect();
        let words: Vec<Option<u32>> = keep.iter().map(|&j| enc.get_word_ids()[j]).collect();
        let mut cut = Encoding::from_tokens(tokens, 0);
        cut.get_word_ids_mut().copy_from_slice(&words);
        self.inner
            .post_process(cut, None, true)
            .map_err(tok_err("truncating"))
    }
}

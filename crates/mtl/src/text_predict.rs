//! Predictions on raw strings for a text model: the strings split into words at
//! whitespace (as the text loaders split them), tokenized by the tokenizer the model was
//! trained with, run through the model, and each task's output read back in words — a
//! label per string for a sentence task, a tag per word (and the entity spans, for BIO
//! tags) for a tagging task. Saved and loaded as a [`Bundle`] that also holds the
//! tokenizer, whose vocabulary fingerprint is checked at load.

use crate::bundle::{Bundle, TextInput};
use crate::model::MultiTaskModel;
use crate::predict::{Preprocessing, TargetEncoding};
use crate::spec::HeadSpec;
use mtl_core::{Error, Result};
use mtl_data::text::{Alignment, LabelVocab, TextTokenizer, Truncation, TOKEN_PADDING_LABEL};
use mtl_heads::{bio_spans, Prediction, Span};
use ndarray::Array2;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

/// Texts per forward pass: bounds the memory a long input list takes.
const PREDICT_CHUNK: usize = 512;

/// A text model with its tokenizer and label names, predicting from raw strings.
///
/// Input: any number of strings. An empty list gives every task an empty answer; a
/// string that is empty or only whitespace is an [`Error::Config`] naming its index
/// (there is no word to label, and dropping it would shift every later answer). Words
/// past the encoding length (`max_len` tokens, special ones included) are cut off as in
/// training, and get no tag (`None`).
///
/// ```
/// use mtl::prelude::*;
/// use mtl::core::{Pooling, TransformerConfig};
/// use mtl::data::text::{parse_jsonl, text_dataset, JsonlSpec, LabelVocab, TextDatasetConfig, TextExample, TextLabels, TextTokenizer};
/// use mtl::{ArchSpec, TextOutput, TextPredictor};
///
/// // D1: is the sentence about a person; D2: tag the person's name.
/// let about = parse_jsonl("about.jsonl", "{\"text\": \"ada smith ran home\", \"label\": \"person\"}\n\
///     {\"text\": \"the rain fell\", \"label\": \"weather\"}\n", &JsonlSpec::default())?;
/// let words = |w: &str, t: &str| TextExample {
///     source: std::path::Path::new("ner").into(), line: 1,
///     words: w.split(' ').map(String::from).collect(), raw: None,
///     labels: TextLabels::Tokens(t.split(' ').map(String::from).collect()),
/// };
/// let ner = vec![words("bob jones ran", "B-PER I-PER O"), words("the sun shone", "O O O")];
/// let corpus = about.iter().chain(&ner).map(|e| e.text().into_owned()).collect::<Vec<_>>();
/// let tokenizer = TextTokenizer::train_wordpiece(&corpus, 60)?;
/// let (topics, tags) = (LabelVocab::fit(&about)?, LabelVocab::fit(&ner)?);
/// let config = TextDatasetConfig::new(8);
/// let d1 = text_dataset("about", &tokenizer, &about, &topics, &config)?.dataset;
/// let d2 = text_dataset("ner", &tokenizer, &ner, &tags, &config)?.dataset;
///
/// // A small encoder shared by a sentence head and a BIO tagging head, a few steps.
/// let spec = ModelSpec {
///     architecture: ArchSpec::Transformer {
///         encoder: TransformerConfig::new(tokenizer.vocab_size() as i64, 8).d_model(16).layers(1),
///     },
///     heads: vec![
///         HeadSpec::Sentence { name: "about".into(), classes: 2, pooling: Pooling::Cls },
///         HeadSpec::Entities { name: "ner".into(), tags: tags.names().to_vec() },
///     ],
///     input: None,
/// };
/// seed_everything(0);
/// let mut model = MultiTaskModel::from_spec(&spec, tch::Device::Cpu)?;
/// let data = MultiInputData::from_tensor_datasets(vec![d1, d2])?;
/// Trainer::new(TrainerConfig::default().epochs(3).progress(false))?
///     .fit_multi_input(&mut model, &data, None, TaskSampling::All)?;
///
/// // Save it with its tokenizer, load it as another process would, predict raw strings.
/// let predictor = TextPredictor::new(model, tokenizer, 8, vec![topics, tags])?;
/// let dir = std::env::temp_dir().join(format!("mtl-text-doc-{}", std::process::id()));
/// predictor.save(&dir, "ew")?;
/// let loaded = TextPredictor::load(&dir)?;
/// let texts = ["ada jones ran home", "the  rain"];
/// let out = loaded.predict(&texts)?;
/// assert_eq!(out, predictor.predict(&texts)?);
/// let TextOutput::Sentences { labels, .. } = &out[0].output else { unreachable!() };
/// assert_eq!(labels.len(), 2);
/// let TextOutput::Words { words, tags, .. } = &out[1].output else { unreachable!() };
/// assert_eq!((words[1].len(), tags[1].len()), (2, 2)); // "the", "rain"
/// assert!(loaded.predict(&["  "]).is_err()); // nothing to label
/// std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), mtl::core::Error>(())
/// ```
#[derive(Debug)]
pub struct TextPredictor {
    model: MultiTaskModel,
    tokenizer: TextTokenizer,
    max_len: usize,
    /// What each task answers, read from its head's spec.
    kinds: Vec<Answer>,
}

/// What a text task answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// A class per text.
    Sentence,
    /// A tag per word; `bio`: entity spans are read from the tags.
    Words { bio: bool },
}

/// One task's answers for every input string.
#[derive(Debug, Clone, PartialEq)]
pub struct TextPrediction {
    /// The task's name.
    pub task: String,
    /// The answers.
    pub output: TextOutput,
}

/// What a text task predicts for `n` strings.
#[derive(Debug, Clone, PartialEq)]
pub enum TextOutput {
    /// A sentence task: one label per string, and the class probabilities `[n, C]`
    /// (class i is label i of the task's label names).
    Sentences {
        /// The most probable label of each string.
        labels: Vec<String>,
        /// Each row sums to 1.
        probabilities: Array2<f32>,
    },
    /// A tagging task: per string, its words (split at whitespace), the tag of each
    /// word (read at its first sub-word; `None` for a word cut off by the encoding
    /// length or that normalises to nothing), and, for BIO entity tags, the entities
    /// as word spans (`start..end`; empty for other tags).
    Words {
        /// The words of each string.
        words: Vec<Vec<String>>,
        /// One tag per word.
        tags: Vec<Vec<Option<String>>>,
        /// The entities of each string, over word indices.
        spans: Vec<Vec<Span>>,
    },
}

impl TextPredictor {
    /// A predictor for `model` (built from a [`ModelSpec`](crate::ModelSpec) over token
    /// ids, so it can be saved), trained on texts encoded by `tokenizer` to `max_len`
    /// tokens, whose task k's class (or tag) names are `labels[k]`: the label
    /// vocabularies fitted on the training data. They are recorded in the model's
    /// [`Preprocessing`] as each task's label encoding.
    ///
    /// Errors: a label list per task is missing ([`Error::TaskCount`]); a model
    /// without a spec, a head that predicts neither a class per text (sentence or
    /// classification heads) nor a tag per token (sequence or entity heads), a head
    /// whose class count differs from its labels', BIO tags other than the head's, or
    /// an encoder whose vocabulary or length cannot hold the tokenizer's ids
    /// ([`Error::Config`]).
    pub fn new(
        mut model: MultiTaskModel,
        tokenizer: TextTokenizer,
        max_len: usize,
        labels: Vec<LabelVocab>,
    ) -> Result<Self> {
        if labels.len() != model.num_tasks() {
            return Err(Error::TaskCount {
                context: "TextPredictor label vocabularies".into(),
                expected: model.num_tasks(),
                got: labels.len(),
            });
        }
        let spec = model.spec().ok_or_else(|| {
            Error::config(
                "TextPredictor needs a model built from a ModelSpec (MultiTaskModel::from_spec), \
                 which says what each head answers and lets the model be saved",
            )
        })?;
        let kinds = check_spec(spec, &tokenizer, max_len, &labels)?;
        let preprocessing = Preprocessing {
            targets: labels
                .iter()
                .map(|l| TargetEncoding::Labels {
                    labels: l.names().to_vec(),
                })
                .collect(),
            ..model.preprocessing().clone()
        };
        model.set_preprocessing(preprocessing)?;
        Ok(TextPredictor {
            model,
            tokenizer,
            max_len,
            kinds,
        })
    }

    /// Saves the model, its tokenizer (`tokenizer.json`) and label names as a
    /// [`Bundle`] in `dir`, recording the tokenizer's vocabulary fingerprint and the
    /// encoding length; `method` names the method it was trained with. Returns the
    /// files written. Errors as [`Bundle::save`].
    pub fn save(&self, dir: impl AsRef<Path>, method: &str) -> Result<Vec<PathBuf>> {
        Bundle::save_with_text(
            dir.as_ref(),
            &self.model,
            method,
            Some((&self.tokenizer, self.max_len)),
        )
    }

    /// Loads a text model's bundle from `dir` with the tokenizer saved in it, on the
    /// CPU.
    ///
    /// Errors: those of [`Bundle::load`]; a bundle without a tokenizer (not a text
    /// model's) or without label names ([`Error::Config`]); a `tokenizer.json` whose
    /// vocabulary is not the one recorded ([`Error::VocabularyMismatch`], naming both
    /// fingerprints: a replaced file).
    pub fn load(dir: impl AsRef<Path>) -> Result<Self> {
        let bundle = Bundle::load(dir)?;
        let text = text_input(&bundle)?;
        let path = bundle.dir().join(&text.tokenizer);
        let tokenizer = TextTokenizer::from_file(&path)?;
        Self::from_bundle(bundle, tokenizer)
    }

    /// Loads the bundle in `dir` with `tokenizer` in place of the one saved in it (the
    /// same vocabulary, loaded elsewhere).
    ///
    /// Errors: as [`TextPredictor::load`]; a tokenizer of another vocabulary is
    /// [`Error::VocabularyMismatch`] naming both fingerprints, since its ids would mean
    /// other tokens to the trained embedding.
    pub fn load_with_tokenizer(dir: impl AsRef<Path>, tokenizer: TextTokenizer) -> Result<Self> {
        Self::from_bundle(Bundle::load(dir)?, tokenizer)
    }

    fn from_bundle(bundle: Bundle, tokenizer: TextTokenizer) -> Result<Self> {
        let text = text_input(&bundle)?.clone();
        let what = format!("the bundle in {}", bundle.dir().display());
        tokenizer.check_fingerprint(&text.vocab_fingerprint, &what)?;
        let model = bundle.into_model();
        let labels = (0..model.num_tasks())
            .map(|k| match model.preprocessing().target(k) {
                TargetEncoding::Labels { labels } => LabelVocab::from_names(labels.clone()),
                _ => Err(Error::config(format!(
                    "{what}: task `{}` has no label names; a text model's bundle records them",
                    model.task_names()[k]
                ))),
            })
            .collect::<Result<Vec<_>>>()?;
        Self::new(model, tokenizer, text.max_len, labels)
    }

    /// The model.
    pub fn model(&self) -> &MultiTaskModel {
        &self.model
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &TextTokenizer {
        &self.tokenizer
    }

    /// Tokens per encoded text, special tokens included.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// The task names, in order.
    pub fn task_names(&self) -> Vec<String> {
        self.model.task_names()
    }

    /// Every task's answers for `texts`, in task order; see [`TextPredictor`] for
    /// empty input.
    pub fn predict<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<TextPrediction>> {
        let tasks: Vec<usize> = (0..self.model.num_tasks()).collect();
        self.predict_tasks(texts, &tasks)
    }

    /// Task `task`'s answers for `texts`. An unknown task name is [`Error::Unknown`].
    pub fn predict_task<S: AsRef<str>>(&self, texts: &[S], task: &str) -> Result<TextPrediction> {
        let names = self.model.task_names();
        let k = names
            .iter()
            .position(|n| n == task)
            .ok_or_else(|| Error::Unknown {
                kind: "task",
                name: task.to_string(),
                known: names.join(", "),
            })?;
        let mut out = self.predict_tasks(texts, &[k])?;
        Ok(out.remove(0))
    }

    fn predict_tasks<S: AsRef<str>>(
        &self,
        texts: &[S],
        tasks: &[usize],
    ) -> Result<Vec<TextPrediction>> {
        if let Some(i) = texts.iter().position(|t| t.as_ref().trim().is_empty()) {
            return Err(Error::config(format!(
                "text {i} is empty or whitespace only: there is no word to label"
            )));
        }
        let words: Vec<Vec<String>> = texts
            .iter()
            .map(|t| t.as_ref().split_whitespace().map(String::from).collect())
            .collect();
        let mut answers: Vec<Answers> = tasks.iter().map(|_| Answers::default()).collect();
        for chunk in words.chunks(PREDICT_CHUNK) {
            // Each word's label is its index, so the label tensor says which word each
            // first sub-word starts (and −1 on every other token).
            let index: Vec<Vec<i64>> = chunk
                .iter()
                .map(|w| (0..w.len() as i64).collect())
                .collect();
            let encoded = self.tokenizer.encode_words(
                chunk,
                &index,
                self.max_len,
                Truncation::Truncate,
                Alignment::FirstSubword,
            )?;
            let word_at = encoded
                .labels
                .ok_or_else(|| Error::config("encode_words returned no word labels"))?;
            let outputs = tch::no_grad(|| -> Result<Vec<Tensor>> {
                let ids = encoded.ids.f_to_device(self.model.device())?;
                let fwd = self.model.forward_t(&ids, false)?;
                tasks
                    .iter()
                    .map(|&k| {
                        let o = &fwd.outputs[k];
                        Ok(match self.kinds[k] {
                            Answer::Words { .. } => o.f_argmax(-1, false)?,
                            Answer::Sentence => match self.model.heads()[k].predict(o)? {
                                Prediction::Classes(p) => p,
                                other => {
                                    return Err(Error::shape(
                                        format!("task `{}` predictions", self.task_names()[k]),
                                        "class probabilities [texts, classes]",
                                        format!("{:?}", other.tensor().size()),
                                    ))
                                }
                            },
                        })
                    })
                    .collect()
            })?;
            for ((answer, &k), out) in answers.iter_mut().zip(tasks).zip(outputs) {
                let labels = self.labels(k);
                match self.kinds[k] {
                    Answer::Sentence => answer.add_sentences(&out, labels)?,
                    Answer::Words { .. } => answer.add_words(chunk, &word_at, &out, labels)?,
                }
            }
        }
        tasks
            .iter()
            .zip(answers)
            .map(|(&k, a)| {
                Ok(TextPrediction {
                    task: self.model.heads()[k].name().to_string(),
                    output: a.finish(self.kinds[k], self.labels(k).len())?,
                })
            })
            .collect()
    }

    /// Task k's class names (set by [`TextPredictor::new`]).
    fn labels(&self, k: usize) -> &[String] {
        match self.model.preprocessing().target(k) {
            TargetEncoding::Labels { labels } => labels,
            _ => &[],
        }
    }
}

fn text_input(bundle: &Bundle) -> Result<&TextInput> {
    bundle.text_input().ok_or_else(|| {
        Error::config(format!(
            "the bundle in {} is not a text model's: it records no tokenizer (save it with \
             TextPredictor::save)",
            bundle.dir().display()
        ))
    })
}

/// Checks a spec against the tokenizer, the length and the labels it will predict with;
/// returns what each task answers.
fn check_spec(
    spec: &crate::ModelSpec,
    tokenizer: &TextTokenizer,
    max_len: usize,
    labels: &[LabelVocab],
) -> Result<Vec<Answer>> {
    if let crate::ArchSpec::Transformer { encoder } = &spec.architecture {
        if (encoder.vocab as usize) < tokenizer.vocab_size() || encoder.max_len < max_len as i64 {
            return Err(Error::config(format!(
                "the encoder reads {} ids of at most {} tokens; the tokenizer has {} ids and \
                 texts are encoded to {max_len} tokens",
                encoder.vocab,
                encoder.max_len,
                tokenizer.vocab_size()
            )));
        }
    }
    let mut kinds = Vec::with_capacity(labels.len());
    for (head, l) in spec.heads.iter().zip(labels) {
        let (classes, kind) = match head {
            HeadSpec::Entities { tags, .. } if tags.as_slice() != l.names() => {
                return Err(Error::config(format!(
                    "task `{}`: the head's tags {tags:?} are not the labels {:?}",
                    head.name(),
                    l.names()
                )))
            }
            HeadSpec::Entities { tags, .. } => (tags.len() as i64, Answer::Words { bio: true }),
            HeadSpec::Sequence { classes, .. } => (*classes, Answer::Words { bio: false }),
            HeadSpec::Sentence { classes, .. } | HeadSpec::Classification { classes, .. } => {
                (*classes, Answer::Sentence)
            }
            other => {
                return Err(Error::config(format!(
                    "task `{}`: a {other:?} head answers neither a class per text nor a tag \
                     per token",
                    other.name()
                )))
            }
        };
        if classes != l.len() as i64 {
            return Err(Error::config(format!(
                "task `{}`: {classes} classes but {} label names",
                head.name(),
                l.len()
            )));
        }
        kinds.push(kind);
    }
    Ok(kinds)
}

/// One task's answers, gathered chunk by chunk.
#[derive(Default)]
struct Answers {
    labels: Vec<String>,
    probabilities: Vec<f32>,
    words: Vec<Vec<String>>,
    tags: Vec<Vec<Option<String>>>,
}

/// Class `c`'s name, or `c` itself when there are no names.
fn name(labels: &[String], c: i64) -> String {
    labels
        .get(c as usize)
        .cloned()
        .unwrap_or_else(|| c.to_string())
}

impl Answers {
    /// Probabilities `[n, C]`.
    fn add_sentences(&mut self, p: &Tensor, labels: &[String]) -> Result<()> {
        let p = p.f_to_device(Device::Cpu)?.f_to_kind(Kind::Float)?;
        let best = Vec::<i64>::try_from(&p.f_argmax(-1, false)?)?;
        self.labels
            .extend(best.into_iter().map(|c| name(labels, c)));
        self.probabilities
            .extend(Vec::<f32>::try_from(&p.f_contiguous()?.f_view([-1])?)?);
        Ok(())
    }

    /// Tag ids `[n, T]`; `word_at` `[n, T]` gives the word each first sub-word starts.
    fn add_words(
        &mut self,
        words: &[Vec<String>],
        word_at: &Tensor,
        tags: &Tensor,
        labels: &[String],
    ) -> Result<()> {
        let t = tags.size().get(1).copied().unwrap_or(0) as usize;
        let tags = Vec::<i64>::try_from(&tags.f_to_device(Device::Cpu)?.f_reshape([-1])?)?;
        let at = Vec::<i64>::try_from(&word_at.f_reshape([-1])?)?;
        for (i, w) in words.iter().enumerate() {
            let mut row = vec![None; w.len()];
            for j in 0..t {
                let word = at[i * t + j];
                if word != TOKEN_PADDING_LABEL {
                    if let Some(slot) = row.get_mut(word as usize) {
                        *slot = Some(name(labels, tags[i * t + j]));
                    }
                }
            }
            self.words.push(w.clone());
            self.tags.push(row);
        }
        Ok(())
    }

    fn finish(self, kind: Answer, classes: usize) -> Result<TextOutput> {
        let bio = match kind {
            Answer::Sentence => {
                let n = self.labels.len();
                let got = self.probabilities.len();
                return Ok(TextOutput::Sentences {
                    labels: self.labels,
                    probabilities: Array2::from_shape_vec((n, classes), self.probabilities)
                        .map_err(|_| {
                            Error::shape("text predictions", format!("[{n}, {classes}]"), got)
                        })?,
                });
            }
            Answer::Words { bio } => bio,
        };
        let spans = self
            .tags
            .iter()
            .map(|row| match bio {
                true => bio_spans(
                    &row.iter()
                        .map(|t| t.as_deref().unwrap_or("O"))
                        .collect::<Vec<_>>(),
                ),
                false => Vec::new(),
            })
            .collect();
        Ok(TextOutput::Words {
            words: self.words,
            tags: self.tags,
            spans,
        })
    }
}

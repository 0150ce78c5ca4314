//! Predictions on raw strings from a saved text model: the bundle round trip (saved and
//! loaded, the same answers as the model in memory), the tokenizer's vocabulary checked
//! at load, and empty input.

mod common;

use common::torch_lock;
use mtl::core::{Pooling, TransformerConfig};
use mtl::data::text::{
    text_dataset, LabelVocab, TextDatasetConfig, TextExample, TextLabels, TextTokenizer,
    TokenizerConfig,
};
use mtl::prelude::*;
use mtl::{ArchSpec, TextOutput, TextPredictor};
use std::path::{Path, PathBuf};

const MAX_LEN: usize = 16;

/// Sentences about a person (a two-word name, tagged PER) or about the weather.
fn examples() -> (Vec<TextExample>, Vec<TextExample>) {
    let names = [
        "ada lovelace",
        "alan turing",
        "grace hopper",
        "edsger dijkstra",
    ];
    let verbs = ["visited", "praised", "left", "wrote to"];
    let weather = [
        "the rain fell all day",
        "a cold wind blew",
        "the sun shone at noon",
    ];
    let source: std::sync::Arc<Path> = Path::new("fixture").into();
    let mut topics = Vec::new();
    let mut tagged = Vec::new();
    for i in 0..48 {
        let (words, tags, topic) = if i % 2 == 0 {
            let name = names[i / 2 % 4];
            let other = names[(i / 2 + 1) % 4];
            let text = format!("{name} {} {other}", verbs[(i / 8) % 4]);
            let words: Vec<String> = text.split(' ').map(String::from).collect();
            let mut tags = vec!["B-PER", "I-PER"];
            tags.extend(std::iter::repeat_n("O", words.len() - 4));
            tags.extend(["B-PER", "I-PER"]);
            (words, tags, "person")
        } else {
            let words: Vec<String> = weather[i % 3].split(' ').map(String::from).collect();
            let tags = vec!["O"; words.len()];
            (words, tags, "weather")
        };
        let example = |labels| TextExample {
            source: source.clone(),
            line: i as u64 + 1,
            words: words.clone(),
            raw: None,
            labels,
        };
        topics.push(example(TextLabels::Sentence(topic.into())));
        tagged.push(example(TextLabels::Tokens(
            tags.into_iter().map(String::from).collect(),
        )));
    }
    (topics, tagged)
}

/// A small model trained briefly on both tasks, as a predictor.
fn trained() -> TextPredictor {
    let (topics, tagged) = examples();
    let corpus: Vec<String> = topics.iter().map(|e| e.text().into_owned()).collect();
    let tokenizer = TextTokenizer::train_wordpiece(&corpus, 80).unwrap();
    let labels = vec![
        LabelVocab::fit(&topics).unwrap(),
        LabelVocab::fit(&tagged).unwrap(),
    ];
    let config = TextDatasetConfig::new(MAX_LEN);
    let d1 = text_dataset("about", &tokenizer, &topics, &labels[0], &config).unwrap();
    let d2 = text_dataset("ner", &tokenizer, &tagged, &labels[1], &config).unwrap();
    let spec = ModelSpec {
        architecture: ArchSpec::Transformer {
            encoder: TransformerConfig::new(tokenizer.vocab_size() as i64, MAX_LEN as i64)
                .d_model(32)
                .layers(1)
                .dropout(0.0),
        },
        heads: vec![
            HeadSpec::Sentence {
                name: "about".into(),
                classes: 2,
                pooling: Pooling::Mean,
            },
            HeadSpec::Entities {
                name: "ner".into(),
                tags: labels[1].names().to_vec(),
            },
        ],
        input: None,
    };
    tch::manual_seed(0);
    let mut model = MultiTaskModel::from_spec(&spec, tch::Device::Cpu).unwrap();
    let data = MultiInputData::from_tensor_datasets(vec![d1.dataset, d2.dataset]).unwrap();
    Trainer::new(
        TrainerConfig::default()
            .epochs(15)
            .batch_size(16)
            .optimizer(OptimizerConfig::adam(3e-3))
            .method("pcgrad")
            .seed(1)
            .progress(false),
    )
    .unwrap()
    .fit_multi_input(&mut model, &data, None, TaskSampling::All)
    .unwrap();
    TextPredictor::new(model, tokenizer, MAX_LEN, labels).unwrap()
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mtl-text-predict-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

const TEXTS: [&str; 3] = [
    "Grace Hopper wrote to Alan Turing",
    "the rain fell at noon",
    "Ada   Lovelace praised Edsger Dijkstra",
];

#[test]
fn a_saved_text_model_predicts_raw_strings_as_in_memory() {
    let _torch = torch_lock();
    let predictor = trained();
    let dir = temp("round-trip");
    let files = predictor.save(&dir, "pcgrad").unwrap();
    assert!(files.iter().any(|f| f.ends_with(mtl::TOKENIZER_FILE)));
    let loaded = TextPredictor::load(&dir).unwrap();
    assert_eq!(loaded.task_names(), ["about", "ner"]);
    assert_eq!(loaded.max_len(), MAX_LEN);

    let before = predictor.predict(&TEXTS).unwrap();
    let after = loaded.predict(&TEXTS).unwrap();
    assert_eq!(before, after);
    // One task alone is the same answer.
    assert_eq!(loaded.predict_task(&TEXTS, "ner").unwrap(), after[1]);

    // The answers: a topic per string; a tag per whitespace-separated word, read back
    // as entity spans over the words.
    let TextOutput::Sentences {
        labels,
        probabilities,
    } = &after[0].output
    else {
        panic!("{after:?}")
    };
    // Tokenizer training is deterministic and the model seeded, so what a few steps of
    // training learn is fixed: the topics and the people.
    assert_eq!(labels, &["person", "weather", "person"]);
    assert_eq!(probabilities.dim(), (3, 2));
    let TextOutput::Words { words, tags, spans } = &after[1].output else {
        panic!("{after:?}")
    };
    assert_eq!(
        words[2],
        ["Ada", "Lovelace", "praised", "Edsger", "Dijkstra"]
    );
    assert!(tags.iter().zip(words).all(|(t, w)| t.len() == w.len()));
    let people: Vec<(usize, usize)> = spans[0].iter().map(|s| (s.start, s.end)).collect();
    assert_eq!(people, [(0, 2), (4, 6)], "{tags:?}");
    assert!(spans[1].is_empty(), "{tags:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_tokenizer_of_another_vocabulary_is_refused_by_fingerprint() {
    let _torch = torch_lock();
    let predictor = trained();
    let dir = temp("fingerprint");
    predictor.save(&dir, "pcgrad").unwrap();
    let saved = predictor.tokenizer().vocab_fingerprint();
    // Another vocabulary: BPE on the same sentences.
    let (topics, _) = examples();
    let corpus: Vec<String> = topics.iter().map(|e| e.text().into_owned()).collect();
    let other = TextTokenizer::train(&corpus, &TokenizerConfig::bpe(80)).unwrap();
    let theirs = other.vocab_fingerprint();
    assert_ne!(saved, theirs);

    let err = TextPredictor::load_with_tokenizer(&dir, other.clone()).unwrap_err();
    let message = err.to_string();
    match err {
        Error::VocabularyMismatch {
            expected, found, ..
        } => assert_eq!((expected, found), (saved.clone(), theirs.clone())),
        other => panic!("{other:?}"),
    }
    assert!(
        message.contains(&saved) && message.contains(&theirs),
        "{message}"
    );

    // The same tokenizer loads; a replaced tokenizer.json is refused the same way.
    TextPredictor::load_with_tokenizer(&dir, predictor.tokenizer().clone()).unwrap();
    other.save(dir.join(mtl::TOKENIZER_FILE)).unwrap();
    assert!(matches!(
        TextPredictor::load(&dir),
        Err(Error::VocabularyMismatch { .. })
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn empty_input_is_defined_and_blank_strings_are_errors() {
    let _torch = torch_lock();
    let predictor = trained();
    // No strings: every task answers nothing.
    let none = predictor.predict::<&str>(&[]).unwrap();
    assert_eq!(none.len(), 2);
    assert!(
        matches!(&none[0].output, TextOutput::Sentences { labels, probabilities } if labels.is_empty() && probabilities.dim() == (0, 2))
    );
    assert!(matches!(&none[1].output, TextOutput::Words { words, .. } if words.is_empty()));
    // An empty or blank string has nothing to label: an error naming it, not a panic.
    for blank in ["", "  \t\n"] {
        let err = predictor
            .predict(&["the rain fell", blank])
            .unwrap_err()
            .to_string();
        assert!(err.contains("text 1") && err.contains("empty"), "{err}");
    }
    assert!(matches!(
        predictor.predict_task(&TEXTS, "sentiment"),
        Err(Error::Unknown { .. })
    ));
}

#[test]
fn a_bundle_without_a_tokenizer_is_not_a_text_model() {
    let _torch = torch_lock();
    let spec = ModelSpec::hard_sharing(
        3,
        &[4],
        vec![HeadSpec::Classification {
            name: "kind".into(),
            classes: 2,
        }],
    );
    tch::manual_seed(0);
    let model = spec.build(tch::Device::Cpu).unwrap();
    let dir = temp("not-text");
    Bundle::save(&dir, &model, "ew").unwrap();
    let err = TextPredictor::load(&dir).unwrap_err().to_string();
    assert!(err.contains("not a text model"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A plain tagging head (`HeadSpec::Sequence`, part-of-speech tags, no BIO): the model
/// is scored by token accuracy, and the predictor answers one tag name per word and no
/// entity spans, through a saved bundle.
#[test]
fn a_plain_tagger_answers_a_tag_per_word_without_spans() {
    let _torch = torch_lock();
    let (nouns, verbs) = (["dog", "cat", "bird", "horse"], ["sees", "likes", "chases"]);
    let source: std::sync::Arc<Path> = Path::new("pos").into();
    let tagged: Vec<TextExample> = (0..48)
        .map(|i| {
            let text = format!(
                "the {} {} a {} .",
                nouns[i % 4],
                verbs[i % 3],
                nouns[(i / 4) % 4]
            );
            TextExample {
                source: source.clone(),
                line: i as u64 + 1,
                words: text.split(' ').map(String::from).collect(),
                raw: None,
                labels: TextLabels::Tokens(
                    ["DET", "NOUN", "VERB", "DET", "NOUN", "."]
                        .map(String::from)
                        .to_vec(),
                ),
            }
        })
        .collect();
    let corpus: Vec<String> = tagged.iter().map(|e| e.text().into_owned()).collect();
    let tokenizer = TextTokenizer::train_wordpiece(&corpus, 60).unwrap();
    let labels = LabelVocab::fit(&tagged).unwrap();
    assert_eq!(labels.names(), [".", "DET", "NOUN", "VERB"]);
    let data = text_dataset(
        "pos",
        &tokenizer,
        &tagged,
        &labels,
        &TextDatasetConfig::new(MAX_LEN),
    )
    .unwrap();
    let spec = ModelSpec {
        architecture: ArchSpec::Transformer {
            encoder: TransformerConfig::new(tokenizer.vocab_size() as i64, MAX_LEN as i64)
                .d_model(32)
                .layers(1)
                .dropout(0.0),
        },
        heads: vec![HeadSpec::Sequence {
            name: "pos".into(),
            classes: labels.len() as i64,
            padding_label: Some(mtl::data::text::TOKEN_PADDING_LABEL),
        }],
        input: None,
    };
    tch::manual_seed(0);
    let mut model = MultiTaskModel::from_spec(&spec, tch::Device::Cpu).unwrap();
    let data = MultiInputData::from_tensor_datasets(vec![data.dataset]).unwrap();
    Trainer::new(
        TrainerConfig::default()
            .epochs(15)
            .batch_size(16)
            .optimizer(OptimizerConfig::adam(3e-3))
            .seed(1)
            .progress(false),
    )
    .unwrap()
    .fit_multi_input(&mut model, &data, None, TaskSampling::All)
    .unwrap();
    let scores = evaluate_multi_input(&model, &data, 64).unwrap();
    let accuracy = scores.metric(0, "token_accuracy").unwrap();
    assert!(accuracy > 0.95, "token accuracy {accuracy}");
    assert_eq!(scores.metric(0, "span_f1"), None);

    let predictor = TextPredictor::new(model, tokenizer, MAX_LEN, vec![labels]).unwrap();
    let dir = temp("plain-tagger");
    predictor.save(&dir, "ew").unwrap();
    let loaded = TextPredictor::load(&dir).unwrap();
    let texts = ["The cat chases a dog .", "the  bird likes a horse ."];
    let out = loaded.predict(&texts).unwrap();
    assert_eq!(out, predictor.predict(&texts).unwrap());
    let TextOutput::Words { words, tags, spans } = &out[0].output else {
        panic!("{out:?}")
    };
    assert_eq!(words[1], ["the", "bird", "likes", "a", "horse", "."]);
    let want = ["DET", "NOUN", "VERB", "DET", "NOUN", "."];
    for row in tags {
        let got: Vec<&str> = row.iter().map(|t| t.as_deref().unwrap_or("?")).collect();
        assert_eq!(got, want);
    }
    assert!(spans.iter().all(Vec::is_empty), "{spans:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

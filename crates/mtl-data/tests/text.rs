//! Text: tokenization and label alignment, the CoNLL and JSON Lines loaders with their
//! refusals, text datasets and their trip through `MultiInputData`.

use mtl_core::Error;
use mtl_data::text::{
    parse_conll, parse_jsonl, read_conll, read_jsonl, text_dataset, Alignment, ConllSpec,
    EmptyText, JsonlSpec, LabelColumn, LabelVocab, TextDatasetConfig, TextLabels, TextTokenizer,
    TokenizerConfig, Truncation, TOKEN_PADDING_LABEL,
};
use mtl_data::{MultiInputData, ScheduleConfig, TaskSampling};
use std::path::PathBuf;
use tch::Kind;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/text")
        .join(name)
}

fn corpus() -> Vec<String> {
    let mut lines: Vec<String> = read_conll(fixture("chunks.conll"), &ConllSpec::default())
        .unwrap()
        .iter()
        .map(|e| e.text().into_owned())
        .collect();
    lines.extend(
        read_jsonl(fixture("reviews.jsonl"), &JsonlSpec::default())
            .unwrap()
            .iter()
            .map(|e| e.text().into_owned()),
    );
    // Repeated so common pieces pass the minimum frequency.
    let n = lines.len();
    lines.into_iter().cycle().take(3 * n).collect()
}

fn wordpiece() -> TextTokenizer {
    TextTokenizer::train_wordpiece(corpus(), 70).unwrap()
}

fn values(t: &tch::Tensor) -> Vec<i64> {
    Vec::<i64>::try_from(t.flatten(0, -1)).unwrap()
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mtl-text-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn special_tokens_come_first_and_pad_is_zero() {
    let tok = wordpiece();
    assert_eq!(tok.pad_id(), 0);
    let ids: Vec<Option<i64>> = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        .iter()
        .map(|t| tok.token_id(t))
        .collect();
    assert_eq!(ids, [Some(0), Some(1), Some(2), Some(3), Some(4)]);
    assert!(tok.vocab_size() <= 70 && tok.vocab_size() > 5);
}

/// The pieces of `word` alone, without special tokens.
fn pieces(tok: &TextTokenizer, word: &str) -> usize {
    tok.inner().encode(word, false).unwrap().len()
}

#[test]
fn word_labels_land_on_first_or_all_subwords() {
    let tok = wordpiece();
    let words = vec!["the", "unbelievably", "fox"];
    let split = pieces(&tok, "unbelievably");
    assert!(
        split >= 2,
        "the test needs a word of several pieces, got {split}"
    );
    let labels = vec![vec![4i64, 7, 9]];
    let max_len = 32;
    let counts: Vec<usize> = words.iter().map(|w| pieces(&tok, w)).collect();
    let expect = |all: bool| {
        let mut row = vec![TOKEN_PADDING_LABEL]; // [CLS]
        for (&n, &l) in counts.iter().zip(&labels[0]) {
            row.push(l);
            row.extend(std::iter::repeat_n(
                if all { l } else { TOKEN_PADDING_LABEL },
                n - 1,
            ));
        }
        row.push(TOKEN_PADDING_LABEL); // [SEP]
        row.resize(max_len, TOKEN_PADDING_LABEL); // padding
        row
    };
    for (alignment, all) in [
        (Alignment::FirstSubword, false),
        (Alignment::AllSubwords, true),
    ] {
        let enc = tok
            .encode_words(
                std::slice::from_ref(&words),
                &labels,
                max_len,
                Truncation::Refuse,
                alignment,
            )
            .unwrap();
        assert_eq!(
            values(enc.labels.as_ref().unwrap()),
            expect(all),
            "{alignment:?}"
        );
        assert_eq!(enc.labels.as_ref().unwrap().kind(), Kind::Int64);
        let ids = values(&enc.ids);
        assert_eq!(ids[0], tok.token_id("[CLS]").unwrap());
        let real = counts.iter().sum::<usize>() + 2;
        assert_eq!(ids[real - 1], tok.token_id("[SEP]").unwrap());
        assert!(ids[real..].iter().all(|&i| i == 0));
        assert_eq!(enc.report.dropped_labels, 0);
    }
}

#[test]
fn attention_mask_is_true_exactly_on_real_tokens() {
    let tok = wordpiece();
    let enc = tok
        .encode_batch(
            &["the fox", "the lazy dog sleeps too"],
            10,
            Truncation::Truncate,
        )
        .unwrap();
    assert_eq!(enc.ids.size(), [2, 10]);
    assert_eq!(enc.attention_mask.kind(), Kind::Bool);
    let padding = enc.ids.eq(tok.pad_id());
    assert!(
        enc.attention_mask
            .eq_tensor(&padding.logical_not())
            .all()
            .int64_value(&[])
            == 1
    );
    let real: Vec<i64> = values(&enc.attention_mask.sum_dim_intlist(1, false, Kind::Int64));
    assert_eq!(real[0], 4); // [CLS] the fox [SEP]
    assert!(enc.labels.is_none());
}

#[test]
fn truncation_is_reported_once_or_refused() {
    let tok = wordpiece();
    let texts = [
        "the quick fox jumps over the lazy dog",
        "dogs sleep",
        "the lazy dog sleeps and sleeps and sleeps",
    ];
    let enc = tok.encode_batch(&texts, 6, Truncation::Truncate).unwrap();
    assert_eq!(enc.report.truncated, [0, 2]);
    assert!(enc.report.longest > 6);
    let warning = enc.report.warning().unwrap();
    assert!(!warning.contains('\n'), "{warning}");
    assert!(warning.starts_with("2 of 3 sentences"), "{warning}");
    // A cut sentence still closes with [SEP] and fills the row.
    let ids = values(&enc.ids);
    assert_eq!(ids[5], tok.token_id("[SEP]").unwrap());
    assert!(ids[..6].iter().all(|&i| i != 0));
    // Nothing cut: no warning.
    let short = tok
        .encode_batch(&["dogs sleep"], 6, Truncation::Truncate)
        .unwrap();
    assert_eq!(short.report.warning(), None);

    let err = tok.encode_batch(&texts, 6, Truncation::Refuse).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("sentence 0") && msg.contains("max_len 6"),
        "{msg}"
    );

    // Word labels cut off by truncation are counted.
    let words = vec![vec![
        "the", "quick", "fox", "jumps", "over", "the", "lazy", "dog",
    ]];
    let enc = tok
        .encode_words(
            &words,
            &[vec![0; 8]],
            6,
            Truncation::Truncate,
            Alignment::FirstSubword,
        )
        .unwrap();
    assert!(enc.report.dropped_labels > 0);
    assert_eq!(values(enc.labels.as_ref().unwrap())[5], TOKEN_PADDING_LABEL);
}

#[test]
fn bad_text_input_is_refused_with_its_name() {
    let tok = wordpiece();
    let msg = tok
        .encode_batch(&["the fox", "   "], 8, Truncation::Truncate)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("sentence 1") && msg.contains("empty"), "{msg}");
    let msg = tok
        .encode_words(
            &[vec!["the", "fox"]],
            &[vec![0]],
            8,
            Truncation::Truncate,
            Alignment::FirstSubword,
        )
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("sentence 0") && msg.contains("2 (one per word)") && msg.contains("got 1"),
        "{msg}"
    );
    assert!(tok
        .encode_batch(&["the fox"], 2, Truncation::Truncate)
        .is_err());
}

#[test]
fn characters_outside_the_vocabulary_become_unknown_tokens() {
    for config in [TokenizerConfig::wordpiece(70), TokenizerConfig::bpe(70)] {
        let tok = TextTokenizer::train(corpus(), &config).unwrap();
        let enc = tok
            .encode_batch(&["the fox 日本"], 10, Truncation::Refuse)
            .unwrap();
        assert!(enc.report.unknown_tokens >= 1, "{config:?}");
        assert!(values(&enc.ids).contains(&tok.token_id("[UNK]").unwrap()));
    }
}

#[test]
fn a_saved_tokenizer_loads_with_the_same_ids_and_fingerprint() {
    let dir = temp("save");
    let texts = ["Unbelievably, the quick fox sleeps.", "A dull dog"];
    for config in [TokenizerConfig::wordpiece(70), TokenizerConfig::bpe(70)] {
        let tok = TextTokenizer::train(corpus(), &config).unwrap();
        let path = dir.join("tokenizer.json");
        tok.save(&path).unwrap();
        let back = TextTokenizer::from_file(&path).unwrap();
        let (a, b) = (
            tok.encode_batch(&texts, 48, Truncation::Refuse).unwrap(),
            back.encode_batch(&texts, 48, Truncation::Refuse).unwrap(),
        );
        assert_eq!(values(&a.ids), values(&b.ids), "{config:?}");
        assert_eq!(tok.vocab_fingerprint(), back.vocab_fingerprint());
        assert_eq!(tok.vocab_fingerprint().len(), 64);
        back.check_fingerprint(&tok.vocab_fingerprint(), "the checkpoint")
            .unwrap();
    }
    // Another vocabulary: another fingerprint, refused by name.
    let (wp, bpe) = (
        TextTokenizer::train(corpus(), &TokenizerConfig::wordpiece(70)).unwrap(),
        TextTokenizer::train(corpus(), &TokenizerConfig::bpe(70)).unwrap(),
    );
    assert_ne!(wp.vocab_fingerprint(), bpe.vocab_fingerprint());
    let msg = bpe
        .check_fingerprint(&wp.vocab_fingerprint(), "ckpt.safetensors")
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("ckpt.safetensors") && msg.contains(&wp.vocab_fingerprint()),
        "{msg}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_file_that_is_not_a_tokenizer_is_named() {
    let dir = temp("badtok");
    let path = dir.join("tokenizer.json");
    std::fs::write(&path, "{\n  \"version\": \"1.0\",\n  \"model\": 3\n}\n").unwrap();
    match TextTokenizer::from_file(&path) {
        Err(Error::Parse { path: p, .. }) => assert_eq!(p, path),
        other => panic!("{other:?}"),
    }
    std::fs::write(&path, b"{\"a\": \"\xff\"}").unwrap();
    match TextTokenizer::from_file(&path) {
        Err(Error::Format {
            path: p, offset, ..
        }) => assert_eq!((p, offset), (path.clone(), 7)),
        other => panic!("{other:?}"),
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn conll_sentences_skip_docstart_and_read_chosen_columns() {
    let s = read_conll(fixture("chunks.conll"), &ConllSpec::default()).unwrap();
    assert_eq!(s.len(), 3);
    assert_eq!(s[0].line, 3);
    assert_eq!(s[1].words, ["Dogs", "sleep", "."]);
    assert_eq!(
        s[1].labels,
        TextLabels::Tokens(vec!["B-NP".into(), "B-VP".into(), "O".into()])
    );
    assert_eq!(s[2].line, 17);
    let pos = ConllSpec {
        label_column: LabelColumn::Index(1),
        ..ConllSpec::default()
    };
    let s = read_conll(fixture("chunks.conll"), &pos).unwrap();
    assert_eq!(
        s[1].labels,
        TextLabels::Tokens(vec!["NNS".into(), "VBP".into(), ".".into()])
    );
    // `#` is a word unless comments are asked for; tabs keep spaces inside a column.
    let text = "# a comment\n1\tNew York\tB-LOC\n";
    let tabs = ConllSpec {
        word_column: 1,
        separator: Some('\t'),
        skip_comments: true,
        ..ConllSpec::default()
    };
    let s = parse_conll("u.conllu", text, &tabs).unwrap();
    assert_eq!(
        (s[0].words.clone(), s[0].line),
        (vec!["New York".to_string()], 2)
    );
}

#[test]
fn conll_refusals_name_the_file_line_and_byte() {
    let err = parse_conll("x.conll", "a B\nlonely\n", &ConllSpec::default()).unwrap_err();
    match &err {
        Error::Parse {
            path,
            line,
            message,
        } => {
            assert_eq!((path.to_str().unwrap(), *line), ("x.conll", 2));
            assert!(message.contains("1 column"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let spec = ConllSpec {
        label_column: LabelColumn::Index(3),
        ..ConllSpec::default()
    };
    assert!(parse_conll("x.conll", "a B C\n", &spec)
        .unwrap_err()
        .to_string()
        .contains("x.conll:1"));

    let dir = temp("conll");
    let path = dir.join("bad.conll");
    std::fs::write(&path, b"the DT B-NP\ncaf\xe9 NN I-NP\n").unwrap();
    match read_conll(&path, &ConllSpec::default()) {
        Err(Error::Format {
            path: p,
            offset,
            found,
            ..
        }) => {
            assert_eq!((p, offset), (path.clone(), 15));
            assert!(
                found.contains("0xe9") && found.contains("line 2"),
                "{found}"
            );
        }
        other => panic!("{other:?}"),
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn jsonl_reads_sentence_and_token_labels() {
    let r = read_jsonl(fixture("reviews.jsonl"), &JsonlSpec::default()).unwrap();
    assert_eq!(r.len(), 4);
    assert_eq!(
        (r[2].line, r[2].labels.clone()),
        (4, TextLabels::Sentence("pos".into()))
    );
    assert_eq!(r[0].text(), "The quick fox is a delight.");
    let t = read_jsonl(fixture("tags.jsonl"), &JsonlSpec::fields("tokens", "tags")).unwrap();
    assert_eq!(t[1].words, ["Dogs", "sleep"]);
    assert_eq!(
        t[1].labels,
        TextLabels::Tokens(vec!["B-NP".into(), "B-VP".into()])
    );
    // Integer labels and a text string split into words.
    let n = parse_jsonl(
        "n.jsonl",
        "{\"text\": \"a b\", \"label\": [1, 0]}\n",
        &JsonlSpec::default(),
    )
    .unwrap();
    assert_eq!(
        n[0].labels,
        TextLabels::Tokens(vec!["1".into(), "0".into()])
    );
}

#[test]
fn jsonl_refusals_name_the_file_and_line() {
    let spec = JsonlSpec::default();
    let line_of = |text: &str, spec: &JsonlSpec| match parse_jsonl("d.jsonl", text, spec) {
        Err(Error::Parse {
            path,
            line,
            message,
        }) => {
            assert_eq!(path.to_str().unwrap(), "d.jsonl");
            (line, message)
        }
        other => panic!("{other:?}"),
    };
    let ok = "{\"text\": \"fine\", \"label\": \"a\"}\n";
    // Label list of another length than the words: both lengths.
    let (line, msg) = line_of(
        &format!("{ok}{{\"text\": \"a b c\", \"label\": [\"x\", \"y\"]}}\n"),
        &spec,
    );
    assert_eq!(line, 2);
    assert!(msg.contains("2 labels") && msg.contains("3 words"), "{msg}");
    // Missing field, wrong type, not JSON, not an object.
    let (line, msg) = line_of(
        &format!("{ok}{ok}{{\"txt\": \"a\", \"label\": \"a\"}}\n"),
        &spec,
    );
    assert!(
        line == 3 && msg.contains("no field `text`") && msg.contains("txt"),
        "{msg}"
    );
    assert!(line_of("{\"text\": 3, \"label\": \"a\"}", &spec)
        .1
        .contains("string or a list"));
    assert!(line_of("{\"text\": \"a\", \"label\": 1.5}", &spec)
        .1
        .contains("a number"));
    assert!(line_of("{\"text\": \"a\",", &spec).1.contains("not JSON"));
    assert!(line_of("[1, 2]", &spec).1.contains("not a JSON object"));
    // Empty and whitespace-only texts: refused by default, skipped on request.
    let empty = format!(
        "{ok}{{\"text\": \"  \\t \", \"label\": \"a\"}}\n{{\"text\": [], \"label\": \"b\"}}\n{ok}"
    );
    let (line, msg) = line_of(&empty, &spec);
    assert!(line == 2 && msg.contains("empty"), "{msg}");
    let kept = parse_jsonl("d.jsonl", &empty, &spec.clone().empty(EmptyText::Skip)).unwrap();
    assert_eq!(kept.iter().map(|e| e.line).collect::<Vec<_>>(), [1, 4]);
    // Not UTF-8: the byte offset.
    let dir = temp("jsonl");
    let path = dir.join("bad.jsonl");
    std::fs::write(
        &path,
        b"{\"text\": \"ok\", \"label\": \"a\"}\n{\"text\": \"\xc3(\"}\n",
    )
    .unwrap();
    match read_jsonl(&path, &spec) {
        Err(Error::Format {
            path: p, offset, ..
        }) => assert_eq!((p, offset), (path.clone(), 39)),
        other => panic!("{other:?}"),
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn label_vocab_is_fitted_on_training_and_names_unknown_labels() {
    let tok = wordpiece();
    let train = read_jsonl(fixture("reviews.jsonl"), &JsonlSpec::default()).unwrap();
    let vocab = LabelVocab::fit(&train).unwrap();
    assert_eq!(vocab.names(), ["neg", "pos"]);
    let test = parse_jsonl(
        "test.jsonl",
        "{\"text\": \"a fox\", \"label\": \"neutral\"}\n",
        &JsonlSpec::default(),
    )
    .unwrap();
    let err =
        text_dataset("sentiment", &tok, &test, &vocab, &TextDatasetConfig::new(8)).unwrap_err();
    match err {
        Error::Parse {
            path,
            line,
            message,
        } => {
            assert_eq!((path.to_str().unwrap(), line), ("test.jsonl", 1));
            assert!(
                message.contains("`neutral`") && message.contains("neg, pos"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    // One task, one kind of label.
    let mut mixed = train.clone();
    mixed.extend(read_jsonl(fixture("tags.jsonl"), &JsonlSpec::fields("tokens", "tags")).unwrap());
    assert!(LabelVocab::fit(&mixed)
        .unwrap_err()
        .to_string()
        .contains("tags.jsonl:1"));
    assert!(LabelVocab::from_names(vec!["a".into(), "a".into()]).is_err());
}

#[test]
fn text_datasets_name_refused_sentences_by_file_and_line() {
    let tok = wordpiece();
    let train = read_conll(fixture("chunks.conll"), &ConllSpec::default()).unwrap();
    let vocab = LabelVocab::fit(&train).unwrap();
    let config = TextDatasetConfig::new(6).truncation(Truncation::Refuse);
    let msg = text_dataset("chunks", &tok, &train, &vocab, &config)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("chunks.conll:3"), "{msg}");
}

#[test]
fn classification_and_tagging_tasks_are_drawn_by_the_task_schedule() {
    let tok = wordpiece();
    let reviews = read_jsonl(fixture("reviews.jsonl"), &JsonlSpec::default()).unwrap();
    let chunks = read_conll(fixture("chunks.conll"), &ConllSpec::default()).unwrap();
    let config = TextDatasetConfig::new(48);
    let sentiment = LabelVocab::fit(&reviews).unwrap();
    let tags = LabelVocab::fit(&chunks).unwrap();
    let d1 = text_dataset("sentiment", &tok, &reviews, &sentiment, &config).unwrap();
    let d2 = text_dataset("chunks", &tok, &chunks, &tags, &config).unwrap();
    assert_eq!(d1.report.truncated, Vec::<usize>::new());
    assert_eq!(values(&d1.dataset.tasks()[0].values), [1, 0, 1, 0]);
    let chunk_values = &d2.dataset.tasks()[0].values;
    assert_eq!(chunk_values.size(), [3, 48]);
    // Every word's label once (first sub-words), the rest padding.
    let labelled = chunk_values
        .ne(TOKEN_PADDING_LABEL)
        .sum(Kind::Int64)
        .int64_value(&[]);
    assert_eq!(labelled, 9 + 3 + 7);

    let data = MultiInputData::from_tensor_datasets(vec![d1.dataset, d2.dataset]).unwrap();
    assert_eq!(data.sizes(), [4, 3]);
    assert_eq!(data.feature_widths(), [48, 48]);
    assert_eq!(data.output_dims().unwrap(), [2, tags.len()]);
    assert!(data.dataset(0).is_err());
    assert_eq!(data.task_data(1).unwrap().len(), 3);
    let mut s = data
        .schedule(ScheduleConfig::new(TaskSampling::RoundRobin, 2).seed(3))
        .unwrap();
    let step = s.next_step().unwrap();
    assert_eq!(step[0].0, 0);
    assert_eq!(step[0].1.targets[0].values.size(), [2]);
    let step = s.next_step().unwrap();
    assert_eq!(
        (step[0].0, step[0].1.targets[0].values.size()),
        (1, vec![2, 48])
    );
    // One width: both tasks in one batch, each labelled on its own rows.
    let mut all = data
        .schedule(ScheduleConfig::new(TaskSampling::All, 2).seed(3))
        .unwrap();
    let merged = all.next_merged().unwrap();
    assert_eq!(merged.x.size(), [4, 48]);
    assert_eq!(merged.targets[0].values.size(), [4]);
    assert_eq!(merged.targets[1].values.size(), [4, 48]);
    assert_eq!(
        (merged.targets[0].labelled(), merged.targets[1].labelled()),
        (2, 2)
    );
    let split = data.split(0.25, 0.0, 1).unwrap();
    let (train, validation) = (split.train.sizes(), split.validation.sizes());
    assert_eq!([train[0] + validation[0], train[1] + validation[1]], [4, 3]);
    assert!(data.to_masked().is_err());
    // A schedule over text tasks can still move to a prefetching thread.
    fn send<T: Send>(_: &T) {}
    send(&s);
}

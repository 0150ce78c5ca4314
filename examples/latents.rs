//! Which shared latent dimensions track which task and which person-level covariate, on
//! Census-Income (KDD): a shared-bottom MLP is trained on the MMoE paper's first task
//! group (income > 50K, never married), then every dimension of its 16-wide shared
//! representation is compared, on the held-out rows, with both task targets and with
//! three covariates — age, sex and (as a check) a seeded random number. The ranked list
//! is printed and the correlation heatmap written to `runs/latents/latents.png`, with
//! the full report as `latents.json` beside it.
//!
//! Run with `cargo run --release --example latents` (about a minute on 2 cores; set
//! `CENSUS_ROWS` to train on fewer rows).

mod common;

use anyhow::{Context, Result};
use common::task_heads;
use mtl::data::{census_income, data_root, CensusConfig, CensusGroup, Standardizer};
use mtl::heads::BinaryHead;
use mtl::prelude::*;
use mtl::{latent_associations, Covariate, LatentConfig};
use rand::{Rng, SeedableRng};
use tch::{nn, Device};

const SEED: u64 = 3;

fn main() -> Result<()> {
    tch::set_num_threads(2);
    let root = data_root("census-income-kdd")?;
    let rows = std::env::var("CENSUS_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .or(Some(40_000));
    let mut config = CensusConfig::new(CensusGroup::Income).seed(SEED);
    config.max_train_rows = rows;
    config.max_test_rows = Some(20_000);
    let census = census_income(&root, &config)?;
    let s = &census.split;
    let scaler = Standardizer::fit(&s.train);
    let (train, test) = (scaler.apply(&s.train)?, scaler.apply(&s.test)?);

    seed_everything(SEED);
    let vs = nn::VarStore::new(Device::Cpu);
    let trunk =
        MlpConfig::new([train.num_features() as i64, 64, 16]).build(&(vs.root() / "trunk"))?;
    let arch = HardSharing::new(trunk, train.num_tasks())?;
    let heads = task_heads(&vs.root(), &train.task_names(), |path, _, name| {
        BinaryHead::new(path, name, 16)
    })?;
    let mut model = MultiTaskModel::new(vs, arch, heads)?;
    let trainer = TrainerConfig::default()
        .epochs(2)
        .batch_size(512)
        .optimizer(OptimizerConfig::adam(1e-3))
        .seed(SEED);
    Trainer::new(trainer)?.fit(&mut model, &train, None)?;

    // Covariates from the raw (unstandardised) test rows: age is a numeric column and
    // sex a one-hot pair.
    let column = |name: &str| -> Result<Vec<f64>> {
        let j = census
            .feature_names
            .iter()
            .position(|n| n == name)
            .with_context(|| format!("no feature column `{name}`"))?;
        Ok(s.test
            .features()
            .column(j)
            .iter()
            .map(|&v| f64::from(v))
            .collect())
    };
    let age = column("age")?;
    let female = column("sex=Female")?;
    let sex = female
        .iter()
        .map(|&v| if v > 0.5 { "female" } else { "male" }.to_string())
        .collect();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(SEED);
    let random = (0..age.len()).map(|_| rng.gen::<f64>()).collect();
    let covariates = [
        Covariate::numeric("age", age),
        Covariate::categorical("sex", sex),
        Covariate::numeric("random", random),
    ];
    let report = latent_associations(&model, &test, &covariates, &LatentConfig::default())?;

    println!(
        "{} latent dimensions against {:?} on {} test rows\n",
        report.dims,
        report.variables,
        test.len()
    );
    println!("{}", report.ranked_table(12));
    for variable in &report.variables {
        let best = report.top_for(variable, 1)[0];
        println!(
            "{variable:<16} strongest in z{:<3} correlation {:+.3}  MI {:.3} nats",
            best.dim, best.correlation, best.mutual_information
        );
    }
    let out = std::path::Path::new("runs/latents");
    std::fs::create_dir_all(out)?;
    report.write_heatmap(out.join("latents.png"))?;
    std::fs::write(
        out.join("latents.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    println!("\nwrote {}/latents.png and latents.json", out.display());
    Ok(())
}

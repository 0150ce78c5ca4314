//! Peak memory of `read_csv` on a large file, measured by hand (it is ignored in normal
//! runs: the file is 200 MB):
//!
//! ```text
//! MTL_CSV_PEAK=/tmp/big.csv /usr/bin/time -v \
//!     cargo test -p mtl-data --test csv_peak -- --ignored --nocapture
//! ```
//!
//! The file is written first when it does not exist: 1,160,000 rows of 16 features
//! (six decimals), two regression targets and a three-class target, about 201 MB. The
//! process's "Maximum resident set size" is then the loader's peak (writing streams).

use mtl_data::{read_csv, CsvSpec, CsvTarget, TargetKind};
use rand::{Rng, SeedableRng};
use std::io::Write;

const ROWS: usize = 1_160_000;
const FEATURES: usize = 16;

fn write_file(path: &std::path::Path) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let names: Vec<String> = (0..FEATURES).map(|i| format!("x{i}")).collect();
    writeln!(out, "{},y1,y2,cls", names.join(",")).unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    for _ in 0..ROWS {
        let x: Vec<f64> = (0..FEATURES).map(|_| rng.gen_range(-3.0..3.0)).collect();
        for v in &x {
            write!(out, "{v:.6},").unwrap();
        }
        let cls = usize::from(x[2] > 0.0) + usize::from(x[3] > 0.5);
        writeln!(
            out,
            "{:.4},{:.6},{cls}",
            1000.0 + 50.0 * x[0],
            -0.24 + 0.01 * x[1]
        )
        .unwrap();
    }
}

#[test]
#[ignore = "writes and reads a 200 MB file; run by hand under /usr/bin/time -v"]
fn read_a_200_mb_file() {
    let Some(path) = std::env::var_os("MTL_CSV_PEAK") else {
        eprintln!("set MTL_CSV_PEAK to the file to read (written when absent)");
        return;
    };
    let path = std::path::PathBuf::from(path);
    if !path.exists() {
        write_file(&path);
    }
    let size = std::fs::metadata(&path).unwrap().len();
    let spec = CsvSpec::new(vec![
        CsvTarget::new("y1", TargetKind::Regression),
        CsvTarget::new("y2", TargetKind::Regression),
        CsvTarget::new("cls", TargetKind::Classes),
    ]);
    let t0 = std::time::Instant::now();
    let ds = read_csv(&path, &spec).unwrap();
    eprintln!(
        "read {} rows x {} features from {:.1} MB in {:.1} s",
        ds.len(),
        ds.num_features(),
        size as f64 / 1e6,
        t0.elapsed().as_secs_f64()
    );
}

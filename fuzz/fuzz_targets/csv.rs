//! CSV text: the reader returns a validated dataset or a typed error, never panics. The
//! first byte picks how the target column `y` is read.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mtl_data::{CsvSpec, CsvTarget, TargetKind};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, text)) = data.split_first() else {
        return;
    };
    let kind = match pick % 3 {
        0 => TargetKind::Classes,
        1 => TargetKind::Binary,
        _ => TargetKind::Regression,
    };
    let spec = CsvSpec::new(vec![CsvTarget::new("y", kind)]);
    if let Ok(ds) = mtl_data::parse_csv(text, &spec) {
        assert_eq!(ds.num_tasks(), 1);
        assert!(ds.features().iter().all(|v| v.is_finite()));
    }
});

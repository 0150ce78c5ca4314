//! The olive-oil dataset (Forina et al.): 572 oils, 8 fatty acids, two nested class
//! tasks (region and area).

use crate::csv::{read_csv, CsvSpec, CsvTarget, TargetKind};
use crate::dataset::MultiTaskDataset;
use crate::target::{TargetData, TaskData};
use mtl_core::{Error, Result};
use std::path::Path;

/// The 8 fatty-acid feature columns, in file order.
pub const OLIVE_FEATURES: [&str; 8] = [
    "palmitic",
    "palmitoleic",
    "stearic",
    "oleic",
    "linoleic",
    "linolenic",
    "arachidic",
    "eicosenoic",
];

/// Region names by class (codes 1, 2, 3 in the file). The file has no region names;
/// these follow from the areas each code groups (Apulia, Calabria and Sicily under 1).
pub const OLIVE_REGIONS: [&str; 3] = ["Southern Italy", "Sardinia", "Northern Italy"];

/// Loads `olive-oil/olive.csv` under `data_dir`: tasks `"region"` (3 classes, codes
/// 1–3 → 0–2) and `"area"` (9 classes, codes 1–9 → 0–8), each with class names, over
/// the 8 fatty acids of [`OLIVE_FEATURES`] (unscaled).
///
/// ```
/// let ds = mtl_data::olive_oil(mtl_data::data_dir())?;
/// assert_eq!((ds.len(), ds.num_features()), (572, 8));
/// assert_eq!(ds.task_names(), ["region", "area"]);
/// # Ok::<(), mtl_core::Error>(())
/// ```
pub fn olive_oil(data_dir: impl AsRef<Path>) -> Result<MultiTaskDataset> {
    let path = data_dir.as_ref().join("olive-oil").join("olive.csv");
    // The file's header lacks a name for the leading row-id field, so it is one name
    // short of every row: supply the full header instead.
    let mut header: Vec<String> = ["id", "area_name", "region", "area"]
        .into_iter()
        .map(String::from)
        .collect();
    header.extend(OLIVE_FEATURES.iter().map(|s| s.to_string()));
    // Region and area are 1-based codes; the reader checks that every code occurs.
    let spec = CsvSpec {
        targets: vec![
            CsvTarget::new("region", TargetKind::Classes).with_first_class(1),
            CsvTarget::new("area", TargetKind::Classes).with_first_class(1),
            CsvTarget::new("area_name", TargetKind::Classes),
        ],
        features: Some(OLIVE_FEATURES.iter().map(|s| s.to_string()).collect()),
        header: Some(header),
        ..CsvSpec::default()
    };
    let raw = read_csv(&path, &spec)?;
    let region = raw.tasks()[0].clone();
    let area = raw.tasks()[1].clone();
    let area_names = area_names(&raw, &area)?;
    let region_names = OLIVE_REGIONS.iter().map(|s| s.to_string()).collect();
    MultiTaskDataset::new(raw.features().clone(), vec![region, area])?
        .with_class_names(0, region_names)?
        .with_class_names(1, area_names)
}

/// The name of each area class, taken from the area-name column; every area code must
/// go with exactly one name.
fn area_names(raw: &MultiTaskDataset, area: &TaskData) -> Result<Vec<String>> {
    let (TargetData::Classes { labels, classes }, Some(names)) = (&area.data, raw.class_names(2))
    else {
        return Err(Error::config("olive oil: area names were not read as text"));
    };
    let TargetData::Classes {
        labels: name_idx, ..
    } = &raw.tasks()[2].data
    else {
        return Err(Error::config("olive oil: area names were not read as text"));
    };
    let mut out: Vec<Option<String>> = vec![None; *classes];
    let rows = labels.iter().zip(name_idx.iter()).enumerate();
    for (row, (&a, &n)) in rows {
        if !area.is_labelled(row) || !raw.tasks()[2].is_labelled(row) {
            continue;
        }
        let Some(slot) = usize::try_from(a).ok().and_then(|a| out.get_mut(a)) else {
            // An out-of-range code; the dataset's validation names the row.
            continue;
        };
        let name = &names[n as usize];
        match slot {
            None => *slot = Some(name.clone()),
            Some(known) if known != name => {
                return Err(Error::config(format!(
                    "olive oil: area code {} is `{known}` elsewhere but `{name}` at row {row}",
                    a + 1
                )))
            }
            Some(_) => {}
        }
    }
    Ok(out
        .into_iter()
        .enumerate()
        .map(|(i, n)| n.unwrap_or_else(|| format!("area {}", i + 1)))
        .collect())
}

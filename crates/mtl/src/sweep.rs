//! The summary of a sweep: several methods, each trained over the same seeds, compared
//! by Δm (lower is better) and by each task's primary metric, with 95 % confidence
//! intervals over the seeds (Student's t, [`crate::stats`]), paired t-tests against
//! equal weighting (`ew`) and against static weights tuned on validation
//! ([`TUNED_STATIC`]), a ranking by mean Δm, a pick and a ranking plot.
//!
//! The pick is the method with the lowest mean Δm. Seeds are few, so the summary says
//! whether that pick differs significantly (paired, two-sided, α = 5 %) from EW, from
//! tuned static weights and from the runner-up; a pick that does not is reported as
//! such rather than as a winner. Training the runs is the caller's (`mtl sweep`).

use crate::delta_m::TaskDelta;
use crate::stats::{paired_t_test, MeanCi, PairedTest};
use mtl_core::{Error, Result};
use plotters::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The row of equal weighting, the first reference.
pub const EW: &str = "ew";
/// The row of static weights tuned on the validation rows, the second reference.
pub const TUNED_STATIC: &str = "static*";
/// The significance level of the verdicts.
pub const ALPHA: f64 = 0.05;

/// One finished run of a method: its seed and its test Δm with the per-task terms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeedResult {
    /// The training seed.
    pub seed: u64,
    /// Δm in percent (lower is better).
    pub delta_m: f64,
    /// Each task's primary metric against its single-task baseline.
    pub tasks: Vec<TaskDelta>,
}

/// The runs of one method (one row of the sweep).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MethodRuns {
    /// The row's name: a registry name, or [`TUNED_STATIC`].
    pub name: String,
    /// One result per seed.
    pub runs: Vec<SeedResult>,
}

/// One task's primary metric over the seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskSummary {
    /// The task.
    pub task: String,
    /// The metric.
    pub metric: String,
    /// Whether higher is better.
    pub higher_is_better: bool,
    /// Its mean and interval over the seeds.
    pub value: MeanCi,
}

/// One method over the seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MethodSummary {
    /// The row's name.
    pub name: String,
    /// 1 for the lowest mean Δm.
    pub rank: usize,
    /// The seeds it ran.
    pub seeds: Vec<u64>,
    /// Δm's mean and interval.
    pub delta_m: MeanCi,
    /// Each task's primary metric.
    pub tasks: Vec<TaskSummary>,
    /// Paired test of its Δm against EW's on the shared seeds (`None` for EW itself,
    /// or with fewer than two shared seeds).
    pub vs_ew: Option<PairedTest>,
    /// Paired test against the tuned static weights.
    pub vs_static: Option<PairedTest>,
}

/// The whole comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepSummary {
    /// The methods, best (lowest mean Δm) first.
    pub methods: Vec<MethodSummary>,
    /// The pick: the lowest mean Δm.
    pub best: String,
    /// What the tests say about the pick, in words.
    pub verdict: String,
}

/// Δm of `name`'s runs on the seeds both rows ran, in seed order.
fn paired(a: &MethodRuns, b: &MethodRuns) -> Option<PairedTest> {
    let mut x = Vec::new();
    let mut y = Vec::new();
    for r in &a.runs {
        if let Some(s) = b.runs.iter().find(|s| s.seed == r.seed) {
            x.push(r.delta_m);
            y.push(s.delta_m);
        }
    }
    paired_t_test(&x, &y)
}

fn describe(test: Option<&PairedTest>, other: &str) -> String {
    match test {
        None => format!("no paired test against {other} (fewer than two shared seeds)"),
        Some(t) if t.p_value < ALPHA => format!(
            "{} than {other} (mean difference {:+.2} points, p = {:.3})",
            if t.mean_difference < 0.0 {
                "significantly better"
            } else {
                "significantly worse"
            },
            t.mean_difference,
            t.p_value
        ),
        Some(t) => format!(
            "not significantly different from {other} (mean difference {:+.2} points, p = {:.3})",
            t.mean_difference, t.p_value
        ),
    }
}

/// Summarises the rows: statistics, paired tests, ranking by mean Δm and the pick.
/// An error for no rows, a row without runs, or two rows of the same name.
pub fn summarize(rows: &[MethodRuns]) -> Result<SweepSummary> {
    if rows.is_empty() {
        return Err(Error::config("sweep summary: no methods"));
    }
    for (i, r) in rows.iter().enumerate() {
        if r.runs.is_empty() {
            return Err(Error::config(format!(
                "sweep summary: method `{}` has no finished run",
                r.name
            )));
        }
        if rows[..i].iter().any(|o| o.name == r.name) {
            return Err(Error::config(format!(
                "sweep summary: method `{}` appears twice",
                r.name
            )));
        }
    }
    let ew = rows.iter().find(|r| r.name == EW);
    let tuned = rows.iter().find(|r| r.name == TUNED_STATIC);
    let mut methods: Vec<MethodSummary> = rows
        .iter()
        .map(|r| {
            let dm: Vec<f64> = r.runs.iter().map(|s| s.delta_m).collect();
            let first = &r.runs[0];
            let tasks = first
                .tasks
                .iter()
                .enumerate()
                .filter_map(|(k, t)| {
                    let values: Vec<f64> = r
                        .runs
                        .iter()
                        .filter_map(|s| s.tasks.get(k).map(|t| t.value))
                        .collect();
                    Some(TaskSummary {
                        task: t.task.clone(),
                        metric: t.metric.clone(),
                        higher_is_better: t.higher_is_better,
                        value: MeanCi::of(&values)?,
                    })
                })
                .collect();
            MethodSummary {
                name: r.name.clone(),
                rank: 0,
                seeds: r.runs.iter().map(|s| s.seed).collect(),
                delta_m: MeanCi::of(&dm).unwrap_or(MeanCi {
                    mean: f64::NAN,
                    std: 0.0,
                    half_width: None,
                    n: 0,
                }),
                tasks,
                vs_ew: ew.filter(|e| e.name != r.name).and_then(|e| paired(r, e)),
                vs_static: tuned
                    .filter(|t| t.name != r.name)
                    .and_then(|t| paired(r, t)),
            }
        })
        .collect();
    // Ties in the mean keep the rows' order.
    methods.sort_by(|a, b| a.delta_m.mean.total_cmp(&b.delta_m.mean));
    for (i, m) in methods.iter_mut().enumerate() {
        m.rank = i + 1;
    }
    let best = &methods[0];
    let mut verdict = format!(
        "{} has the lowest mean Δm ({:+.2}%)",
        best.name, best.delta_m.mean
    );
    if best.name != EW && ew.is_some() {
        verdict += &format!("; {}", describe(best.vs_ew.as_ref(), EW));
    }
    if best.name != TUNED_STATIC && tuned.is_some() {
        verdict += &format!("; {}", describe(best.vs_static.as_ref(), TUNED_STATIC));
    }
    // The runner-up, unless a reference already described above.
    let described =
        |name: &str| (name == EW && ew.is_some()) || (name == TUNED_STATIC && tuned.is_some());
    if let Some(second) = methods.get(1).filter(|m| !described(&m.name)) {
        let a = rows.iter().find(|r| r.name == best.name);
        let b = rows.iter().find(|r| r.name == second.name);
        if let (Some(a), Some(b)) = (a, b) {
            verdict += &format!("; {}", describe(paired(a, b).as_ref(), &second.name));
        }
    }
    Ok(SweepSummary {
        best: best.name.clone(),
        methods,
        verdict,
    })
}

fn interval(ci: &MeanCi, precision: usize) -> String {
    match ci.half_width {
        Some(h) => format!("{:.p$} ± {:.p$}", ci.mean, h, p = precision),
        None => format!("{:.p$}", ci.mean, p = precision),
    }
}

fn p_value(t: Option<&PairedTest>) -> String {
    t.map_or("—".into(), |t| format!("{:.3}", t.p_value))
}

impl SweepSummary {
    /// A plain-text table: rank, method, Δm and each task's metric with 95 % intervals,
    /// the paired p-values against EW and tuned static weights; then the verdict.
    pub fn table(&self) -> String {
        let mut header = vec![
            "rank".to_string(),
            "method".into(),
            "seeds".into(),
            "Δm % (95% CI)".into(),
        ];
        if let Some(first) = self.methods.first() {
            header.extend(
                first
                    .tasks
                    .iter()
                    .map(|t| format!("{} {}", t.task, t.metric)),
            );
        }
        header.push("p vs ew".into());
        header.push("p vs static*".into());
        let rows: Vec<Vec<String>> = self
            .methods
            .iter()
            .map(|m| {
                let mut row = vec![
                    m.rank.to_string(),
                    m.name.clone(),
                    m.seeds.len().to_string(),
                    interval(&m.delta_m, 2),
                ];
                row.extend(m.tasks.iter().map(|t| interval(&t.value, 4)));
                row.push(p_value(m.vs_ew.as_ref()));
                row.push(p_value(m.vs_static.as_ref()));
                row
            })
            .collect();
        let widths: Vec<usize> = (0..header.len())
            .map(|c| {
                std::iter::once(&header)
                    .chain(&rows)
                    .map(|r| r.get(c).map_or(0, |s| s.chars().count()))
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |r: &[String]| -> String {
            let cells: Vec<String> = r
                .iter()
                .zip(&widths)
                .map(|(s, w)| format!("{s}{}", " ".repeat(w - s.chars().count())))
                .collect();
            format!("| {} |\n", cells.join(" | "))
        };
        let mut out = line(&header);
        out += &format!(
            "|{}|\n",
            widths
                .iter()
                .map(|w| "-".repeat(w + 2))
                .collect::<Vec<_>>()
                .join("|")
        );
        for r in &rows {
            out += &line(r);
        }
        out += &format!("pick: {}\n", self.verdict);
        out
    }

    /// Draws the ranking: each method's mean Δm with its 95 % interval, best on the
    /// left, the single-task level (Δm = 0) dashed. Written atomically.
    pub fn plot_ranking(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        mtl_core::files::write_atomically_with(path, |file| self.draw_ranking(file, path))
    }

    fn draw_ranking(&self, file: &Path, path: &Path) -> Result<()> {
        let fail = |e: &dyn std::fmt::Display| Error::Io {
            path: path.to_path_buf(),
            source: std::io::Error::other(e.to_string()),
        };
        crate::plots::register_font();
        let spans: Vec<(f64, f64)> = self
            .methods
            .iter()
            .map(|m| {
                let h = m.delta_m.half_width.unwrap_or(0.0);
                (m.delta_m.mean - h, m.delta_m.mean + h)
            })
            .filter(|(a, b)| a.is_finite() && b.is_finite())
            .collect();
        if spans.is_empty() {
            return Err(Error::config("nothing to plot in the sweep ranking"));
        }
        let lo = spans.iter().map(|s| s.0).fold(0.0f64, f64::min);
        let hi = spans.iter().map(|s| s.1).fold(0.0f64, f64::max);
        let pad = ((hi - lo) * 0.08).max(0.1);
        let n = self.methods.len();
        let root = BitMapBackend::new(file, (160 + 70 * n as u32, 520)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| fail(&e))?;
        let names: Vec<String> = self.methods.iter().map(|m| m.name.clone()).collect();
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "Δm by method (mean, 95 % CI over seeds)",
                ("sans-serif", 20),
            )
            .margin(12)
            .x_label_area_size(60)
            .y_label_area_size(70)
            .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), (lo - pad)..(hi + pad))
            .map_err(|e| fail(&e))?;
        let label = |x: &f64| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 {
                names.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        };
        chart
            .configure_mesh()
            .x_labels(n.max(2) * 2 + 1)
            .x_label_formatter(&label)
            .disable_x_mesh()
            .y_desc("Δm (%), lower is better")
            .label_style(("sans-serif", 14))
            .axis_desc_style(("sans-serif", 16))
            .draw()
            .map_err(|e| fail(&e))?;
        chart
            .draw_series(DashedLineSeries::new(
                vec![(-0.5, 0.0), (n as f64 - 0.5, 0.0)],
                6,
                4,
                ShapeStyle::from(&RGBColor(127, 127, 127)).stroke_width(1),
            ))
            .map_err(|e| fail(&e))?;
        let blue = RGBColor(31, 119, 180);
        let orange = RGBColor(255, 127, 14);
        for (i, m) in self.methods.iter().enumerate() {
            let x = i as f64;
            let c = if m.name == EW || m.name == TUNED_STATIC {
                orange
            } else {
                blue
            };
            let (mean, h) = (m.delta_m.mean, m.delta_m.half_width.unwrap_or(0.0));
            if !mean.is_finite() {
                continue;
            }
            // The interval as a vertical bar with caps.
            let style = ShapeStyle::from(&c).stroke_width(2);
            let bar = [
                vec![(x, mean - h), (x, mean + h)],
                vec![(x - 0.12, mean - h), (x + 0.12, mean - h)],
                vec![(x - 0.12, mean + h), (x + 0.12, mean + h)],
            ];
            chart
                .draw_series(bar.into_iter().map(|p| PathElement::new(p, style)))
                .map_err(|e| fail(&e))?;
            chart
                .draw_series(std::iter::once(Circle::new((x, mean), 5, c.filled())))
                .map_err(|e| fail(&e))?;
        }
        root.present().map_err(|e| fail(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(seed: u64, dm: f64, acc: f64) -> SeedResult {
        SeedResult {
            seed,
            delta_m: dm,
            tasks: vec![TaskDelta {
                task: "a".into(),
                metric: "accuracy".into(),
                higher_is_better: true,
                value: acc,
                baseline: 0.9,
                relative_change: dm,
                negative_transfer: dm > 0.0,
            }],
        }
    }

    fn rows() -> Vec<MethodRuns> {
        vec![
            MethodRuns {
                name: "ew".into(),
                runs: vec![run(0, 1.0, 0.8), run(1, 2.0, 0.81), run(2, 1.5, 0.82)],
            },
            MethodRuns {
                name: "pcgrad".into(),
                // 1, 2 and 3 points below EW on the same seeds.
                runs: vec![run(0, 0.0, 0.85), run(1, 0.0, 0.86), run(2, -1.5, 0.9)],
            },
            MethodRuns {
                name: "static*".into(),
                runs: vec![run(0, 1.0, 0.8), run(1, 2.0, 0.8)],
            },
        ]
    }

    #[test]
    fn ranks_by_mean_and_tests_against_references() {
        let s = summarize(&rows()).unwrap();
        let names: Vec<&str> = s.methods.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["pcgrad", "ew", "static*"]);
        assert_eq!(s.best, "pcgrad");
        let pc = &s.methods[0];
        assert_eq!(pc.rank, 1);
        // Differences −1, −2, −3: t = −2 / (1/√3) on 2 df, p = 1 − √(12/14).
        let t = pc.vs_ew.as_ref().unwrap();
        assert!((t.t + 2.0 * 3f64.sqrt()).abs() < 1e-12);
        assert!((t.p_value - (1.0 - (12.0f64 / 14.0).sqrt())).abs() < 1e-10);
        // Against static* only seeds 0 and 1 are shared: −1 and −2.
        assert_eq!(pc.vs_static.as_ref().unwrap().df, 1);
        assert!(s.methods[1].vs_ew.is_none());
        assert!((pc.tasks[0].value.mean - 0.87).abs() < 1e-12);
        assert!(
            s.verdict.contains("not significantly different from ew"),
            "{}",
            s.verdict
        );
        let table = s.table();
        assert!(table.contains("| 1    | pcgrad"), "{table}");
        assert!(table.contains("a accuracy"), "{table}");
    }

    #[test]
    fn bad_rows_are_errors() {
        assert!(summarize(&[]).is_err());
        let mut r = rows();
        r[1].name = "ew".into();
        assert!(summarize(&r).unwrap_err().to_string().contains("twice"));
        let mut r = rows();
        r[2].runs.clear();
        assert!(summarize(&r).unwrap_err().to_string().contains("static*"));
    }

    #[test]
    fn ranking_plot_is_a_png() {
        let dir = std::env::temp_dir().join(format!("mtl-sweep-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ranking.png");
        summarize(&rows()).unwrap().plot_ranking(&path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! PNG plots of a [`RunReport`]: per-task loss curves, task weights over the epochs,
//! and the gradient-conflict heatmap (the mean pairwise cosine of the task gradients).
//!
//! Text is drawn with a bundled DejaVu Sans font through `ab_glyph`, so plotting needs
//! no system font libraries or fontconfig; [`register_font`] lends it to charts a
//! program draws with plotters itself.
//!
//! Each PNG is drawn into a temporary file beside its target and renamed over it
//! ([`mtl_core::files::write_atomically_with`]), so a reader never sees half a plot.

use crate::diagnostics::mean_matrix;
use crate::report::RunReport;
use mtl_core::{Error, Result};
use plotters::prelude::*;
use plotters::style::FontStyle;
use std::path::{Path, PathBuf};
use std::sync::Once;

const FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
const SIZE: (u32, u32) = (900, 560);

/// Makes the bundled DejaVu Sans plotters' `sans-serif` font, once per process, so that
/// the text of charts drawn with plotters (the plots here, or a program's own chart)
/// needs no system font. The plots of this module call it themselves.
pub fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The font is compiled in and known to parse; a failure would only lose text.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

fn drawing_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    }
}

fn colour(i: usize) -> RGBColor {
    const PALETTE: [RGBColor; 8] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
    ];
    PALETTE[i % PALETTE.len()]
}

/// A named series of (x, y) points drawn as a line.
struct Series {
    label: String,
    points: Vec<(f64, f64)>,
    colour: RGBColor,
    dashed: bool,
}

/// Draws line series on one chart; a logarithmic y axis when every value is positive
/// and they span more than a factor of 20.
fn line_chart(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
) -> Result<()> {
    mtl_core::files::write_atomically_with(path, |file| {
        draw_line_chart(file, path, title, x_label, y_label, series)
    })
}

/// [`line_chart`] into `file`, naming `path` in errors.
fn draw_line_chart(
    file: &Path,
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
) -> Result<()> {
    register_font();
    let all: Vec<(f64, f64)> = series
        .iter()
        .flat_map(|s| s.points.iter().copied())
        .collect();
    let finite: Vec<(f64, f64)> = all
        .into_iter()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    if finite.is_empty() {
        return Err(Error::config(format!("nothing to plot in `{title}`")));
    }
    let (mut x0, mut x1) = finite
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
            (a.min(p.0), b.max(p.0))
        });
    let (mut y0, mut y1) = finite
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
            (a.min(p.1), b.max(p.1))
        });
    if x1 <= x0 {
        x0 -= 0.5;
        x1 += 0.5;
    }
    let log = y0 > 0.0 && y1 / y0 > 20.0;
    if y1 <= y0 {
        y0 -= 0.5;
        y1 += 0.5;
    }
    let root = BitMapBackend::new(file, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| drawing_error(path, e))?;
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(title, ("sans-serif", 24))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(70);
    macro_rules! finish {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc(x_label)
                .y_desc(y_label)
                .label_style(("sans-serif", 14))
                .axis_desc_style(("sans-serif", 16))
                .draw()
                .map_err(|e| drawing_error(path, e))?;
            for s in series {
                let style = ShapeStyle::from(&s.colour).stroke_width(2);
                let pts: Vec<(f64, f64)> = s
                    .points
                    .iter()
                    .copied()
                    .filter(|(x, y)| x.is_finite() && y.is_finite() && (!log || *y > 0.0))
                    .collect();
                let colour = s.colour;
                if s.dashed {
                    chart
                        .draw_series(DashedLineSeries::new(pts, 6, 4, style))
                        .map_err(|e| drawing_error(path, e))?
                        .label(s.label.clone())
                        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
                } else {
                    chart
                        .draw_series(LineSeries::new(pts, style))
                        .map_err(|e| drawing_error(path, e))?
                        .label(s.label.clone())
                        .legend(move |(x, y)| {
                            PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
                        });
                }
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .label_font(("sans-serif", 14))
                .draw()
                .map_err(|e| drawing_error(path, e))?;
        }};
    }
    if log {
        finish!(builder
            .build_cartesian_2d(x0..x1, (y0 * 0.8..y1 * 1.25).log_scale())
            .map_err(|e| drawing_error(path, e))?);
    } else {
        let pad = (y1 - y0) * 0.05;
        finish!(builder
            .build_cartesian_2d(x0..x1, (y0 - pad)..(y1 + pad))
            .map_err(|e| drawing_error(path, e))?);
    }
    root.present().map_err(|e| drawing_error(path, e))
}

/// Per-task training loss per epoch (solid) and validation loss (dashed) when the run
/// was validated.
pub fn plot_losses(report: &RunReport, path: impl AsRef<Path>) -> Result<()> {
    let mut series = Vec::new();
    for (k, task) in report.tasks.iter().enumerate() {
        series.push(Series {
            label: format!("{task} (train)"),
            points: report
                .epochs
                .iter()
                .filter_map(|e| Some((e.epoch as f64, *e.train_losses.get(k)?)))
                .collect(),
            colour: colour(k),
            dashed: false,
        });
        let val: Vec<(f64, f64)> = report
            .epochs
            .iter()
            .filter_map(|e| Some((e.epoch as f64, *e.validation.as_ref()?.losses.get(k)?)))
            .collect();
        if !val.is_empty() {
            series.push(Series {
                label: format!("{task} (validation, dashed)"),
                points: val,
                colour: colour(k),
                dashed: true,
            });
        }
    }
    line_chart(
        path.as_ref(),
        &format!("Task losses ({})", report.method),
        "epoch",
        "loss",
        &series,
    )
}

/// The mean task weight of each epoch (for methods that report weights).
pub fn plot_task_weights(report: &RunReport, path: impl AsRef<Path>) -> Result<()> {
    let series: Vec<Series> = report
        .tasks
        .iter()
        .enumerate()
        .map(|(k, task)| Series {
            label: task.clone(),
            points: report
                .epochs
                .iter()
                .filter_map(|e| Some((e.epoch as f64, *e.task_weights.get(k)?)))
                .collect(),
            colour: colour(k),
            dashed: false,
        })
        .filter(|s| !s.points.is_empty())
        .collect();
    if series.is_empty() {
        return Err(Error::config(format!(
            "method `{}` reported no task weights",
            report.method
        )));
    }
    line_chart(
        path.as_ref(),
        &format!("Task weights ({})", report.method),
        "epoch",
        "weight",
        &series,
    )
}

/// Blue for −1, white for 0, red for +1.
fn diverging(v: f64) -> RGBColor {
    let v = v.clamp(-1.0, 1.0);
    let mix = |a: u8, t: f64| (255.0 + (a as f64 - 255.0) * t).round() as u8;
    if v >= 0.0 {
        RGBColor(mix(178, v), mix(24, v), mix(43, v))
    } else {
        RGBColor(mix(33, -v), mix(102, -v), mix(172, -v))
    }
}

/// A K×K heatmap with the value printed in each cell; colours run from blue (−`scale`)
/// through white (0) to red (+`scale`).
pub fn plot_matrix(
    matrix: &[Vec<f64>],
    tasks: &[String],
    title: &str,
    scale: f64,
    path: impl AsRef<Path>,
) -> Result<()> {
    plot_grid(matrix, tasks, tasks, title, scale, path)
}

/// An R×C heatmap, `rows` naming the matrix's rows and `columns` its columns, with the
/// value printed in each cell when the cells are large enough to hold it; colours as
/// [`plot_matrix`].
pub fn plot_grid(
    matrix: &[Vec<f64>],
    rows: &[String],
    columns: &[String],
    title: &str,
    scale: f64,
    path: impl AsRef<Path>,
) -> Result<()> {
    let path = path.as_ref();
    mtl_core::files::write_atomically_with(path, |file| {
        draw_grid(file, path, matrix, rows, columns, title, scale)
    })
}

/// [`plot_grid`] into `file`, naming `path` in errors.
fn draw_grid(
    file: &Path,
    path: &Path,
    matrix: &[Vec<f64>],
    rows: &[String],
    columns: &[String],
    title: &str,
    scale: f64,
) -> Result<()> {
    register_font();
    let (r, c) = (rows.len(), columns.len());
    if r == 0 || c == 0 || matrix.len() != r || matrix.iter().any(|row| row.len() != c) {
        return Err(Error::shape(
            format!("heatmap `{title}`"),
            format!("a {r}×{c} matrix"),
            format!(
                "{} rows of lengths {:?}",
                matrix.len(),
                matrix.iter().map(Vec::len).collect::<Vec<_>>()
            ),
        ));
    }
    if !(scale.is_finite() && scale > 0.0) {
        return Err(Error::config(format!(
            "heatmap scale must be positive, got {scale}"
        )));
    }
    let decimals = if scale < 0.1 { 4 } else { 2 };
    let root = BitMapBackend::new(file, (780, 700)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| drawing_error(path, e))?;
    let (plot, bar) = root.split_horizontally(650);
    let mut chart = ChartBuilder::on(&plot)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(110)
        .build_cartesian_2d(0.0..c as f64, 0.0..r as f64)
        .map_err(|e| drawing_error(path, e))?;
    // Row i of the matrix is drawn at the top for i = 0, as a matrix is read.
    chart
        .draw_series((0..r).flat_map(|i| {
            (0..c).map(move |j| {
                let v = matrix[i][j] / scale;
                let (x, y) = (j as f64, (r - 1 - i) as f64);
                Rectangle::new([(x, y), (x + 1.0, y + 1.0)], diverging(v).filled())
            })
        }))
        .map_err(|e| drawing_error(path, e))?;
    let centred = |size: f64, colour: &RGBColor| {
        ("sans-serif", size)
            .into_font()
            .color(colour)
            .pos(plotters::style::text_anchor::Pos::new(
                plotters::style::text_anchor::HPos::Center,
                plotters::style::text_anchor::VPos::Center,
            ))
    };
    let (w, h) = plot.dim_in_pixel();
    let value_size = (w as f64 / (c as f64 * 6.0))
        .min(h as f64 / (r as f64 * 2.0))
        .min(26.0);
    // Values too small to read are left out; the colours still show them.
    if value_size >= 9.0 {
        for (i, row) in matrix.iter().enumerate() {
            for (j, &v) in row.iter().enumerate() {
                let centre = chart.backend_coord(&(j as f64 + 0.5, (r - i) as f64 - 0.5));
                let colour = if (v / scale).abs() > 0.6 {
                    WHITE
                } else {
                    BLACK
                };
                plot.draw(&Text::new(
                    format!("{v:+.decimals$}"),
                    centre,
                    centred(value_size, &colour),
                ))
                .map_err(|e| drawing_error(path, e))?;
            }
        }
    }
    // Names centred on their rows and columns, outside the grid; with many rows only
    // every n-th is named, so the labels do not overlap.
    let label_size = 15.0;
    for (t, name) in columns.iter().enumerate() {
        let (x, y_bottom) = chart.backend_coord(&(t as f64 + 0.5, 0.0));
        plot.draw(&Text::new(
            name.clone(),
            (x, y_bottom + 16),
            centred(label_size, &BLACK),
        ))
        .map_err(|e| drawing_error(path, e))?;
    }
    let every = r.div_ceil(30).max(1);
    for (t, name) in rows.iter().enumerate().step_by(every) {
        let (x_left, y) = chart.backend_coord(&(0.0, (r - t) as f64 - 0.5));
        plot.draw(&Text::new(
            name.clone(),
            (x_left - 8, y),
            ("sans-serif", label_size).into_font().color(&BLACK).pos(
                plotters::style::text_anchor::Pos::new(
                    plotters::style::text_anchor::HPos::Right,
                    plotters::style::text_anchor::VPos::Center,
                ),
            ),
        ))
        .map_err(|e| drawing_error(path, e))?;
    }
    // The colour scale.
    let mut bar_chart = ChartBuilder::on(&bar)
        .margin_top(60)
        .margin_bottom(56)
        .margin_right(30)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..1.0, -scale..scale)
        .map_err(|e| drawing_error(path, e))?;
    bar_chart
        .configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_labels(5)
        .y_label_formatter(&|v| format!("{v:+.decimals$}"))
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(|e| drawing_error(path, e))?;
    bar_chart
        .draw_series((0..100).map(|s| {
            let lo = -1.0 + s as f64 * 0.02;
            Rectangle::new(
                [(0.0, lo * scale), (1.0, (lo + 0.02) * scale)],
                diverging(lo + 0.01).filled(),
            )
        }))
        .map_err(|e| drawing_error(path, e))?;
    root.present().map_err(|e| drawing_error(path, e))
}

/// The mean pairwise cosine of the task gradients over the run's diagnostics samples.
pub fn plot_conflict(report: &RunReport, path: impl AsRef<Path>) -> Result<()> {
    let mean = mean_matrix(report.diagnostics.iter().map(|s| &s.cosine)).ok_or_else(|| {
        Error::config("the run sampled no gradient diagnostics (TrainerConfig::diagnostics)")
    })?;
    plot_matrix(
        &mean,
        &report.tasks,
        &format!(
            "Task-gradient cosine, mean of {} samples ({})",
            report.diagnostics.len(),
            report.method
        ),
        1.0,
        path,
    )
}

/// The mean TAG affinity Z_{i→j} (row i: the task stepped on) over the samples.
pub fn plot_affinity(report: &RunReport, path: impl AsRef<Path>) -> Result<()> {
    let mean = mean_matrix(
        report
            .diagnostics
            .iter()
            .filter_map(|s| s.affinity.as_ref()),
    )
    .ok_or_else(|| Error::config("the run sampled no task affinity"))?;
    // Lookahead changes are small: the colours span the largest |Z| of the run.
    let largest = mean.iter().flatten().fold(0.0f64, |m, v| m.max(v.abs()));
    plot_matrix(
        &mean,
        &report.tasks,
        &format!(
            "TAG affinity Z(row task -> column task) ({})",
            report.method
        ),
        if largest > 0.0 { largest } else { 1.0 },
        path,
    )
}

impl RunReport {
    /// Writes every plot the report has data for into `dir` (`losses.png`,
    /// `task_weights.png`, `conflict.png`, `affinity.png`) and returns their paths.
    pub fn write_plots(&self, dir: impl AsRef<Path>) -> Result<Vec<PathBuf>> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut written = Vec::new();
        let p = dir.join("losses.png");
        plot_losses(self, &p)?;
        written.push(p);
        if self.epochs.iter().any(|e| !e.task_weights.is_empty()) {
            let p = dir.join("task_weights.png");
            plot_task_weights(self, &p)?;
            written.push(p);
        }
        if !self.diagnostics.is_empty() {
            let p = dir.join("conflict.png");
            plot_conflict(self, &p)?;
            written.push(p);
            if self.diagnostics.iter().any(|s| s.affinity.is_some()) {
                let p = dir.join("affinity.png");
                plot_affinity(self, &p)?;
                written.push(p);
            }
        }
        Ok(written)
    }
}

//! What the reproductions (`cargo xtask repro NAME`) share: a log of finished cells
//! that lets an interrupted run resume, the command-line flags they all read, and
//! writing a result between a pair of markers in docs/reproductions.md.

use anyhow::{bail, Context, Result};
use serde::{de::DeserializeOwned, Serialize};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

/// The page the reproductions write their tables into.
pub const DOC: &str = "docs/reproductions.md";

/// Every cell in the JSON-lines log at `path` (none when it does not exist yet). A line
/// that does not parse (a run killed mid-write, or an older format) is skipped with a
/// warning: the cell is simply trained again.
pub fn load_cells<C: DeserializeOwned>(path: &Path) -> Result<Vec<C>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let file = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut cells = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line?;
        match serde_json::from_str::<C>(&line) {
            Ok(c) => cells.push(c),
            Err(e) => eprintln!(
                "{}:{}: skipping an unreadable cell ({e})",
                path.display(),
                i + 1
            ),
        }
    }
    Ok(cells)
}

/// Appends one finished cell to the log at `path`.
pub fn append_cell<C: Serialize>(path: &Path, cell: &C) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    // One write per line, so a kill leaves at most one torn line at the end.
    f.write_all(format!("{}\n", serde_json::to_string(cell)?).as_bytes())?;
    f.sync_data()?;
    Ok(())
}

/// A reproduction's run directory (`--out`, else `default`), created, with the path of
/// its cell log and the cells already in it (none after `--fresh`, which deletes the log).
pub fn open_run<C: DeserializeOwned>(default: &str) -> Result<(PathBuf, PathBuf, Vec<C>)> {
    let out = PathBuf::from(arg("--out").unwrap_or_else(|| default.to_string()));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let cells_path = out.join("cells.jsonl");
    if flag("--fresh") && cells_path.exists() {
        std::fs::remove_file(&cells_path)
            .with_context(|| format!("removing {}", cells_path.display()))?;
    }
    let cells = load_cells(&cells_path)?;
    Ok((out, cells_path, cells))
}

/// Replaces what stands between `<!-- KEY:begin … -->` and `<!-- KEY:end -->` in
/// [`DOC`] with `body`; the begin marker's line is kept as it is.
pub fn write_doc(key: &str, body: &str) -> Result<()> {
    let doc = std::fs::read_to_string(DOC).with_context(|| format!("reading {DOC}"))?;
    let begin = format!("<!-- {key}:begin");
    let end = format!("<!-- {key}:end -->");
    let (Some(b), Some(e)) = (doc.find(&begin), doc.find(&end)) else {
        bail!("{DOC} has no `{begin} … -->` … `{end}` markers to write between");
    };
    let Some(line_end) = doc[b..].find('\n').map(|i| b + i + 1) else {
        bail!("{DOC}: nothing follows the `{begin}` marker's line");
    };
    if e < line_end {
        bail!("{DOC}: the `{end}` marker comes before `{begin}`");
    }
    let new = format!("{}{body}{}", &doc[..line_end], &doc[e..]);
    std::fs::write(DOC, new).with_context(|| format!("writing {DOC}"))?;
    Ok(())
}

/// The value after `--name` on the command line.
pub fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// Whether `--name` is on the command line.
pub fn flag(name: &str) -> bool {
    std::env::args().any(|a| a == name)
}

/// The comma-separated numbers after `--name`, or `default`.
pub fn list(name: &str, default: &[f64]) -> Result<Vec<f64>> {
    match arg(name) {
        None => Ok(default.to_vec()),
        Some(s) => s
            .split(',')
            .map(|v| {
                v.trim()
                    .parse::<f64>()
                    .with_context(|| format!("{name}: `{v}` is not a number"))
            })
            .collect(),
    }
}

/// Mean and sample standard deviation (0 for a single value).
pub fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 {
        v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

//! Task grouping from inter-task affinity, after TAG (Fifty, Amid, Zhao, Yu, Anil & Finn,
//! "Efficiently Identifying Task Groupings for Multi-Task Learning", NeurIPS 2021).
//!
//! The trainer's diagnostics measure the lookahead affinity Z_{i→j} = 1 − L_j(θ − η gᵢ) /
//! L_j(θ) ([`crate::diagnostics`]); TAG averages it over the training steps sampled
//! ([`mean_affinity`]) and scores a group S for one of its tasks i by the mean affinity
//! onto i from the group's other tasks,
//!
//! ```text
//! s(i, S) = (1 / (|S| − 1)) Σ_{j ∈ S, j ≠ i} Z_{j→i}        (0 for S = {i}: nothing helps i)
//! ```
//!
//! A selection of at most G groups (networks) may overlap, as in the paper: every task
//! must be in some group, and is *served* by (evaluated from) the chosen group that
//! scores it highest. The selection maximises the total Σᵢ max_{S ∋ i} s(i, S).
//!
//! The served sets of an optimal selection partition the tasks, so the optimum is found
//! exactly by a dynamic programme over subsets rather than over collections of groups:
//! each block B gets its best host `best(B) = max_{S ⊇ B} Σ_{i ∈ B} s(i, S)` (S = B
//! when groups may not overlap), then the best split of all tasks into at most G blocks
//! is found over subset masks. It costs O(G · 3^K), instant for K ≤ [`MAX_EXACT_TASKS`];
//! past that a greedy merge of disjoint groups stands in (stated in the result).

use crate::diagnostics::{mean_matrix, GradientSample};
use mtl_core::{Error, Result};
use serde::{Deserialize, Serialize};

/// The most tasks the exact search takes (3^12 ≈ 5·10⁵ block pairs per group count).
pub const MAX_EXACT_TASKS: usize = 12;

/// How groups may be chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupingOptions {
    /// The most groups (networks to train), at least 1.
    pub max_groups: usize,
    /// Whether a task may sit in several groups (the paper's setting): a group may hold
    /// tasks it does not serve, because they help the ones it does.
    pub overlap: bool,
}

impl GroupingOptions {
    /// At most `max_groups` groups, overlapping allowed.
    pub fn new(max_groups: usize) -> Self {
        GroupingOptions {
            max_groups,
            overlap: true,
        }
    }
    /// Disjoint groups only (a partition of the tasks).
    pub fn disjoint(mut self) -> Self {
        self.overlap = false;
        self
    }
}

/// A chosen grouping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskGrouping {
    /// The groups, each a sorted list of task indices; groups are sorted too.
    pub groups: Vec<Vec<usize>>,
    /// `served_by[i]`: the index in `groups` of the group task i is evaluated from.
    pub served_by: Vec<usize>,
    /// The total affinity Σᵢ s(i, served group).
    pub score: f64,
    /// Whether the search was exhaustive (false: the greedy fallback for many tasks).
    pub exact: bool,
}

/// The mean affinity matrix over the samples that measured one (TAG averages Z over
/// training). An error when no sample holds an affinity (diagnostics were off, or
/// without `affinity = true`).
pub fn mean_affinity(samples: &[GradientSample]) -> Result<Vec<Vec<f64>>> {
    mean_matrix(samples.iter().filter_map(|s| s.affinity.as_ref())).ok_or_else(|| {
        Error::config(
            "task grouping needs the TAG affinity, and the run sampled none \
             (set train.diagnostics = { every_steps = N, affinity = true })",
        )
    })
}

/// s(i, S): the mean affinity onto task `i` from the other tasks of `group` (0 alone);
/// indices are checked by the callers.
fn group_score(affinity: &[Vec<f64>], group: &[usize], i: usize) -> f64 {
    let others: Vec<usize> = group.iter().copied().filter(|&j| j != i).collect();
    if others.is_empty() {
        return 0.0;
    }
    others.iter().map(|&j| affinity[j][i]).sum::<f64>() / others.len() as f64
}

/// The total score of a selection: each task served by its best group containing it.
/// `None` when some task is in no group.
fn selection_score(affinity: &[Vec<f64>], groups: &[Vec<usize>]) -> Option<f64> {
    (0..affinity.len())
        .map(|i| {
            groups
                .iter()
                .filter(|g| g.contains(&i))
                .map(|g| group_score(affinity, g, i))
                .fold(None, |m: Option<f64>, s| Some(m.map_or(s, |m| m.max(s))))
        })
        .sum()
}

fn check(affinity: &[Vec<f64>], options: &GroupingOptions) -> Result<usize> {
    let k = affinity.len();
    if k == 0 {
        return Err(Error::config("task grouping: the affinity matrix is empty"));
    }
    if let Some((i, row)) = affinity.iter().enumerate().find(|(_, r)| r.len() != k) {
        return Err(Error::config(format!(
            "task grouping: the affinity matrix is not square ({k} rows, row {i} has {} entries)",
            row.len()
        )));
    }
    if let Some((i, j)) = (0..k)
        .flat_map(|i| (0..k).map(move |j| (i, j)))
        .find(|&(i, j)| !affinity[i][j].is_finite())
    {
        return Err(Error::config(format!(
            "task grouping: affinity Z[{i}][{j}] = {} is not finite",
            affinity[i][j]
        )));
    }
    if options.max_groups == 0 {
        return Err(Error::config(
            "task grouping: the budget must allow at least one group",
        ));
    }
    Ok(k)
}

/// Chooses at most `options.max_groups` groups of the tasks of `affinity` (K×K, with
/// `affinity[i][j]` = Z_{i→j}) maximising the total affinity; exhaustive for K ≤
/// [`MAX_EXACT_TASKS`]. Ties go to fewer groups. An error for an empty, ragged or
/// non-finite matrix or a zero budget.
///
/// ```
/// use mtl::grouping::{select_groups, GroupingOptions};
/// // Tasks 0 and 1 help each other, as do 2 and 3; across the pairs they hurt.
/// let z = vec![
///     vec![0.0, 0.5, -0.2, -0.2],
///     vec![0.5, 0.0, -0.2, -0.2],
///     vec![-0.2, -0.2, 0.0, 0.4],
///     vec![-0.2, -0.2, 0.4, 0.0],
/// ];
/// let g = select_groups(&z, &GroupingOptions::new(2))?;
/// assert_eq!(g.groups, [vec![0, 1], vec![2, 3]]);
/// # Ok::<(), mtl::core::Error>(())
/// ```
pub fn select_groups(affinity: &[Vec<f64>], options: &GroupingOptions) -> Result<TaskGrouping> {
    let k = check(affinity, options)?;
    if k > MAX_EXACT_TASKS {
        return Ok(greedy(affinity, options.max_groups));
    }
    let n = 1usize << k;
    let members = |mask: usize| -> Vec<usize> { (0..k).filter(|i| mask >> i & 1 == 1).collect() };
    // score[S][i] = s(i, S) for i in S.
    let scores: Vec<Vec<f64>> = (0..n)
        .map(|s| {
            let m = members(s);
            (0..k)
                .map(|i| {
                    if s >> i & 1 == 1 {
                        group_score(affinity, &m, i)
                    } else {
                        0.0
                    }
                })
                .collect()
        })
        .collect();
    let block_value = |b: usize, s: usize| -> f64 {
        (0..k)
            .filter(|i| b >> i & 1 == 1)
            .map(|i| scores[s][i])
            .sum()
    };
    // best[B] = (value, host S).
    let mut best: Vec<(f64, usize)> = (0..n).map(|b| (f64::NEG_INFINITY, b)).collect();
    for s in 1..n {
        if options.overlap {
            // Every non-empty sub-mask B of S may be served by S.
            let mut b = s;
            while b > 0 {
                let v = block_value(b, s);
                if v > best[b].0 + 1e-12 || (v > best[b].0 - 1e-12 && s < best[b].1) {
                    best[b] = (v, s);
                }
                b = (b - 1) & s;
            }
        } else {
            best[s] = (block_value(s, s), s);
        }
    }
    let full = n - 1;
    // f[mask]: the best split of `mask` into exactly g blocks, for g = 1, 2, …
    let mut f: Vec<f64> = (0..n).map(|m| best[m].0).collect();
    f[0] = f64::NEG_INFINITY;
    let mut choice: Vec<Vec<usize>> = vec![(0..n).collect()];
    let (mut top, mut top_g) = (f[full], 1usize);
    for g in 2..=options.max_groups.min(k) {
        let mut next = vec![f64::NEG_INFINITY; n];
        let mut pick = vec![0usize; n];
        for mask in 1..n {
            let low = mask & mask.wrapping_neg();
            // The block holding the lowest task; the rest splits into g − 1 blocks.
            let rest_all = mask ^ low;
            let mut rest = rest_all;
            loop {
                let b = low | rest;
                let remainder = mask ^ b;
                if remainder != 0 {
                    let v = best[b].0 + f[remainder];
                    if v > next[mask] + 1e-12 {
                        next[mask] = v;
                        pick[mask] = b;
                    }
                }
                if rest == 0 {
                    break;
                }
                rest = (rest - 1) & rest_all;
            }
        }
        f = next;
        choice.push(pick);
        if f[full] > top + 1e-12 {
            top = f[full];
            top_g = g;
        }
    }
    // Unwind the blocks of the best split into `top_g` blocks.
    let mut blocks = Vec::new();
    let mut mask = full;
    for g in (1..=top_g).rev() {
        let b = if g == 1 { mask } else { choice[g - 1][mask] };
        blocks.push(b);
        mask ^= b;
    }
    // Two blocks served by the same host are one group.
    let mut hosts: Vec<usize> = blocks.iter().map(|&b| best[b].1).collect();
    hosts.sort_by_key(|&s| members(s));
    hosts.dedup();
    let groups: Vec<Vec<usize>> = hosts.iter().map(|&s| members(s)).collect();
    Ok(finish(affinity, groups, true))
}

/// The served-by map and score of `groups`, each task served by its best group.
fn finish(affinity: &[Vec<f64>], groups: Vec<Vec<usize>>, exact: bool) -> TaskGrouping {
    let served_by: Vec<usize> = (0..affinity.len())
        .map(|i| {
            let mut best: Option<(f64, usize)> = None;
            for (gi, g) in groups.iter().enumerate().filter(|(_, g)| g.contains(&i)) {
                let s = group_score(affinity, g, i);
                if best.is_none_or(|(b, _)| s > b + 1e-12) {
                    best = Some((s, gi));
                }
            }
            best.map_or(0, |(_, gi)| gi)
        })
        .collect();
    let score = selection_score(affinity, &groups).unwrap_or(f64::NEG_INFINITY);
    TaskGrouping {
        groups,
        served_by,
        score,
        exact,
    }
}

/// For many tasks: start from singletons and merge the pair of disjoint groups that
/// raises the total most, while the budget is exceeded or a merge does not lower it.
fn greedy(affinity: &[Vec<f64>], max_groups: usize) -> TaskGrouping {
    let total = |g: &[usize]| -> f64 { g.iter().map(|&i| group_score(affinity, g, i)).sum() };
    let mut groups: Vec<Vec<usize>> = (0..affinity.len()).map(|i| vec![i]).collect();
    loop {
        let mut best: Option<(f64, usize, usize)> = None;
        for a in 0..groups.len() {
            for b in a + 1..groups.len() {
                let mut merged = groups[a].clone();
                merged.extend(&groups[b]);
                let gain = total(&merged) - total(&groups[a]) - total(&groups[b]);
                if best.is_none_or(|(g, _, _)| gain > g) {
                    best = Some((gain, a, b));
                }
            }
        }
        match best {
            // Ties merge: fewer groups for the same total, as the exact search prefers.
            Some((gain, a, b)) if groups.len() > max_groups || gain > -1e-12 => {
                let taken = groups.remove(b);
                groups[a].extend(taken);
                groups[a].sort_unstable();
            }
            _ => break,
        }
    }
    groups.sort();
    finish(affinity, groups, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn two_clusters() -> Vec<Vec<f64>> {
        // Tasks {0, 2, 4} and {1, 3} help each other; across clusters they hurt.
        let k = 5;
        let cluster = |i: usize| usize::from(!i.is_multiple_of(2));
        (0..k)
            .map(|i| {
                (0..k)
                    .map(|j| {
                        if i == j {
                            0.9
                        } else if cluster(i) == cluster(j) {
                            0.3 + 0.01 * (i + j) as f64
                        } else {
                            -0.25
                        }
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn finds_two_obvious_clusters() {
        let z = two_clusters();
        for options in [GroupingOptions::new(2), GroupingOptions::new(2).disjoint()] {
            let g = select_groups(&z, &options).unwrap();
            assert_eq!(g.groups, [vec![0, 2, 4], vec![1, 3]], "{options:?}");
            assert_eq!(g.served_by, [0, 1, 0, 1, 0]);
            assert!(g.exact);
        }
        // A budget of one group: all tasks together.
        let one = select_groups(&z, &GroupingOptions::new(1)).unwrap();
        assert_eq!(one.groups, [vec![0, 1, 2, 3, 4]]);
    }

    /// Every collection of at most `g` distinct non-empty groups covering all tasks
    /// (overlap) or every partition into at most `g` blocks (disjoint): the best score.
    fn brute_force(z: &[Vec<f64>], g: usize, overlap: bool) -> f64 {
        let k = z.len();
        let subsets: Vec<Vec<usize>> = (1..1usize << k)
            .map(|m| (0..k).filter(|i| m >> i & 1 == 1).collect())
            .collect();
        let mut best = f64::NEG_INFINITY;
        let mut stack: Vec<(usize, Vec<Vec<usize>>)> = vec![(0, vec![])];
        while let Some((from, chosen)) = stack.pop() {
            let disjoint_ok = overlap || {
                let mut seen = vec![0; k];
                chosen.iter().flatten().for_each(|&i| seen[i] += 1);
                seen.iter().all(|&c| c <= 1)
            };
            if !disjoint_ok {
                continue;
            }
            if let Some(s) = selection_score(z, &chosen) {
                best = best.max(s);
            }
            if chosen.len() < g {
                for (idx, s) in subsets.iter().enumerate().skip(from) {
                    let mut next = chosen.clone();
                    next.push(s.clone());
                    stack.push((idx + 1, next));
                }
            }
        }
        best
    }

    #[test]
    fn exhaustive_search_matches_brute_force() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        for trial in 0..30 {
            let k = 2 + trial % 3;
            let z: Vec<Vec<f64>> = (0..k)
                .map(|_| (0..k).map(|_| rng.gen_range(-1.0..1.0)).collect())
                .collect();
            for g in 1..=3 {
                for overlap in [true, false] {
                    let options = GroupingOptions {
                        max_groups: g,
                        overlap,
                    };
                    let got = select_groups(&z, &options).unwrap();
                    let want = brute_force(&z, g, overlap);
                    assert!(
                        (got.score - want).abs() < 1e-9,
                        "trial {trial} k {k} g {g} overlap {overlap}: {} vs {want}",
                        got.score
                    );
                    assert!(got.groups.len() <= g);
                    if !overlap {
                        let mut all: Vec<usize> = got.groups.concat();
                        all.sort_unstable();
                        assert_eq!(all, (0..k).collect::<Vec<_>>());
                    }
                }
            }
        }
    }

    #[test]
    fn budget_is_respected() {
        // Every pair hurts: unconstrained, each task stays alone; a budget forces merges.
        let k = 6;
        let z: Vec<Vec<f64>> = (0..k)
            .map(|i| {
                (0..k)
                    .map(|j| {
                        if i == j {
                            1.0
                        } else {
                            -0.1 * (1 + i + j) as f64
                        }
                    })
                    .collect()
            })
            .collect();
        for g in 1..=k {
            let got = select_groups(&z, &GroupingOptions::new(g)).unwrap();
            assert!(got.groups.len() <= g, "budget {g}: {:?}", got.groups);
            let mut covered: Vec<usize> = got.groups.concat();
            covered.sort_unstable();
            covered.dedup();
            assert_eq!(covered.len(), k);
        }
        let free = select_groups(&z, &GroupingOptions::new(k)).unwrap();
        assert_eq!(free.groups.len(), k);
        assert_eq!(free.score, 0.0);
    }

    #[test]
    fn greedy_fallback_respects_the_budget_and_finds_clusters() {
        // 14 tasks in two clusters: past the exact limit.
        let k = MAX_EXACT_TASKS + 2;
        let z: Vec<Vec<f64>> = (0..k)
            .map(|i| {
                (0..k)
                    .map(|j| if (i < 7) == (j < 7) { 0.4 } else { -0.3 })
                    .collect()
            })
            .collect();
        let g = select_groups(&z, &GroupingOptions::new(3)).unwrap();
        assert!(!g.exact);
        assert_eq!(g.groups, [(0..7).collect::<Vec<_>>(), (7..k).collect()]);
        let one = select_groups(&z, &GroupingOptions::new(1)).unwrap();
        assert_eq!(one.groups.len(), 1);
    }

    #[test]
    fn bad_matrices_are_errors() {
        assert!(select_groups(&[], &GroupingOptions::new(1)).is_err());
        let ragged = vec![vec![0.0, 1.0], vec![0.0]];
        let e = select_groups(&ragged, &GroupingOptions::new(1)).unwrap_err();
        assert!(e.to_string().contains("row 1"), "{e}");
        let nan = vec![vec![0.0, f64::NAN], vec![0.0, 0.0]];
        assert!(select_groups(&nan, &GroupingOptions::new(2)).is_err());
        let ok = vec![vec![0.0, 1.0], vec![1.0, 0.0]];
        assert!(select_groups(&ok, &GroupingOptions::new(0)).is_err());
        assert!(mean_affinity(&[]).is_err());
    }
}

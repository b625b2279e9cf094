//! What a run will do: which experiments run and which are skipped
//! (`--only`, `--tag`, `--skip-tag`), and the share of the load this runner
//! drives (`--shard I/N`).

use super::Planned;
use crate::config::model::{Experiment, LoadModel, RateShape};

/// Filters on the command line.
#[derive(Debug, Default, Clone)]
pub struct Filters {
    pub only: Option<String>,
    /// Run experiments with any of these tags (all when empty).
    pub tags: Vec<String>,
    /// Skip experiments with any of these tags.
    pub skip_tags: Vec<String>,
}

/// Marks every experiment as run or skipped (with the reason). An error when
/// nothing is left to run: a filter that selects nothing is a mistake.
pub fn select(experiments: Vec<Experiment>, filters: &Filters) -> Result<Vec<Planned>, String> {
    let plan: Vec<Planned> = experiments
        .into_iter()
        .map(|e| {
            let skip = skip_reason(&e, filters);
            Planned {
                experiment: e,
                skip,
            }
        })
        .collect();
    if plan.iter().all(|p| p.skip.is_some()) {
        let available: Vec<String> = plan
            .iter()
            .map(|p| {
                let tags = &p.experiment.tags;
                if tags.is_empty() {
                    p.experiment.name.clone()
                } else {
                    format!("{} [{}]", p.experiment.name, tags.join(", "))
                }
            })
            .collect();
        return Err(format!(
            "the filters select no experiment ({}); available: {}",
            describe(filters),
            available.join(", ")
        ));
    }
    Ok(plan)
}

fn skip_reason(e: &Experiment, f: &Filters) -> Option<String> {
    if let Some(pattern) = &f.only {
        if !crate::glob::matches(pattern, &e.name) {
            return Some(format!(
                "filtered out: name does not match --only `{pattern}`"
            ));
        }
    }
    if !f.tags.is_empty() && !e.tags.iter().any(|t| f.tags.contains(t)) {
        return Some(format!(
            "filtered out: no tag of --tag {}",
            f.tags.join(", ")
        ));
    }
    if let Some(t) = e.tags.iter().find(|t| f.skip_tags.contains(t)) {
        return Some(format!("filtered out: --skip-tag {t}"));
    }
    None
}

fn describe(f: &Filters) -> String {
    let mut parts = Vec::new();
    if let Some(o) = &f.only {
        parts.push(format!("--only `{o}`"));
    }
    for t in &f.tags {
        parts.push(format!("--tag {t}"));
    }
    for t in &f.skip_tags {
        parts.push(format!("--skip-tag {t}"));
    }
    parts.join(" ")
}

/// Scales an experiment's load to shard `index` of `count`: each runner
/// drives 1/N of the rate (or of the workers, at least one); the shards'
/// reports add up with `faultline merge`.
pub fn shard(exp: &mut Experiment, index: u32, count: u32) {
    let n = f64::from(count.max(1));
    match &mut exp.load.model {
        LoadModel::Open { rate, .. } => match rate {
            RateShape::Constant(r) => *r /= n,
            RateShape::Ramp { from, to, .. } => {
                *from /= n;
                *to /= n;
            }
        },
        LoadModel::Closed { concurrency } => {
            // Spread the remainder over the first shards so the total is exact.
            let c = *concurrency;
            let (base, extra) = (c / count as usize, c % count as usize);
            *concurrency = (base + usize::from((index as usize) <= extra)).max(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;
    use std::path::Path;

    fn experiments() -> Vec<Experiment> {
        let one = |name: &str, tags: &str| {
            let yaml = format!(
                "name: {name}\ntags: [{tags}]\ntarget: {{ url: \"http://127.0.0.1:9\" }}\nload:\n  rate: 100\n  requests: [ {{ path: / }} ]\nphases:\n  - {{ name: p, duration: 1s }}\n"
            );
            load_str(&yaml, Path::new("x.yaml"))
                .expect("valid")
                .experiments
                .remove(0)
        };
        vec![
            one("a-smoke", "smoke"),
            one("b-slow", "slow, net"),
            one("c-net", "net"),
        ]
    }

    fn ran(plan: &[Planned]) -> Vec<&str> {
        plan.iter()
            .filter(|p| p.skip.is_none())
            .map(|p| p.experiment.name.as_str())
            .collect()
    }

    #[test]
    fn tags_select_and_skip_tags_exclude() {
        let f = Filters {
            tags: vec!["net".into()],
            skip_tags: vec!["slow".into()],
            ..Filters::default()
        };
        let plan = select(experiments(), &f).expect("something selected");
        assert_eq!(ran(&plan), ["c-net"]);
        let skipped = plan.iter().filter(|p| p.skip.is_some()).count();
        assert_eq!(skipped, 2, "filtered-out experiments are kept, as skipped");
    }

    #[test]
    fn a_filter_that_selects_nothing_is_an_error_listing_what_exists() {
        let f = Filters {
            tags: vec!["nightly".into()],
            ..Filters::default()
        };
        let err = select(experiments(), &f).err().expect("nothing selected");
        assert!(
            err.contains("--tag nightly") && err.contains("a-smoke [smoke]"),
            "{err}"
        );
    }

    #[test]
    fn shards_split_the_load_exactly() {
        let mut e = experiments().remove(0);
        shard(&mut e, 1, 4);
        assert!(
            matches!(e.load.model, LoadModel::Open { rate: RateShape::Constant(r), .. } if (r - 25.0).abs() < 1e-9)
        );
        let total: usize = (1..=3)
            .map(|i| {
                let mut e = experiments().remove(0);
                e.load.model = LoadModel::Closed { concurrency: 10 };
                shard(&mut e, i, 3);
                match e.load.model {
                    LoadModel::Closed { concurrency } => concurrency,
                    LoadModel::Open { .. } => 0,
                }
            })
            .sum();
        assert_eq!(total, 10);
    }
}

//! Merging `phases[].versions`: per version (by label), counts and rates are
//! summed and histograms added, exactly as for the phase itself; the result
//! also feeds the re-evaluation of `by_version` thresholds
//! (`p99{version=v2} < 300ms`).
//!
//! Each shard caps its own list at 8 versions plus `other`, so a merge of
//! shards that saw different versions may list more than 8; that is kept
//! rather than folding real labels into `other` after the fact.

use std::collections::BTreeMap;

use super::{MergeError, Shard};
use crate::journal::{PhaseReport, VersionReport};
use crate::metrics::{LatencyHistogram, PhaseVersions, VersionMetrics, VersionTag};

/// The merged versions of one phase, as a report lists them and as
/// measurements a threshold can be judged on.
pub(super) fn merge(
    experiment: &str,
    parts: &[Shard<PhaseReport>],
) -> Result<(Vec<VersionReport>, PhaseVersions), MergeError> {
    // Keyed by (other, label) so `other` sorts last; first-seen order
    // within shards is lost, which the report does not promise across shards.
    let mut merged: BTreeMap<(bool, String), (VersionReport, LatencyHistogram)> = BTreeMap::new();
    for &(n, p) in parts {
        for v in &p.versions {
            let histogram = match &v.histogram {
                Some(text) => LatencyHistogram::from_base64(text).map_err(|reason| {
                    MergeError::BadHistogram {
                        experiment: experiment.into(),
                        phase: format!("{} (version {})", p.name, v.version),
                        report: n,
                        reason,
                    }
                })?,
                None if v.requests > 0 => {
                    return Err(MergeError::MissingHistogram {
                        experiment: experiment.into(),
                        phase: format!("{} (version {})", p.name, v.version),
                        report: n,
                        requests: v.requests,
                    })
                }
                None => LatencyHistogram::new(),
            };
            let entry = merged
                .entry((v.other, v.version.clone()))
                .or_insert_with(|| {
                    let empty = VersionReport {
                        requests: 0,
                        errors: 0,
                        rate: 0.0,
                        ..v.clone()
                    };
                    (empty, LatencyHistogram::new())
                });
            entry.0.requests += v.requests;
            entry.0.errors += v.errors;
            entry.0.rate += v.rate;
            entry.1.merge(&histogram);
        }
    }
    let mut reports = Vec::new();
    let mut measured = PhaseVersions {
        unversioned: parts.iter().map(|(_, p)| p.unversioned).sum(),
        ..PhaseVersions::default()
    };
    for ((other, label), (mut report, histogram)) in merged {
        report.error_rate = crate::metrics::error_rate(report.errors, report.requests);
        report.latency_ms = histogram.summary();
        report.histogram = (!histogram.is_empty()).then(|| histogram.to_base64());
        let metrics = VersionMetrics {
            requests: report.requests,
            errors: report.errors,
            response: histogram,
        };
        match (other, VersionTag::new(&label)) {
            (false, Some(tag)) => measured.tracked.push((tag, metrics)),
            _ => measured.other = Some(metrics),
        }
        reports.push(report);
    }
    Ok((reports, measured))
}

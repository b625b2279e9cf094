//! faultline's per-version numbers (`phases[].versions`, `by_version`
//! thresholds) against HAProxy's own per-server counters.
//!
//! The bed of `haproxy.rs`: HAProxy splits /checkout 90:10 between `stable`
//! (v1) and `canary` (v2, behind faultline's hop) and sets `x-version` from
//! the server that answered. Ground truth: `show stat`'s `hrsp_1xx` …
//! `hrsp_other` per server (responses HAProxy relayed from it; health
//! checks are not counted there), read before and after the run. Healthy:
//! the canary answers 200. Defective: the hop answers 500 to the canary's
//! /checkout; HAProxy flaps the canary (marks it DOWN after 3 errors, UP
//! again at the next health check), so only a few percent of all requests
//! fail: the all-versions error rate passes, v2's fails.

use std::collections::BTreeMap;
use std::path::Path;

use super::haproxy::{runtime_api, HaproxyBed};
use super::{run_faultline, RUNS};

/// Responses per server of backend `be` from `show stat`: (total, 5xx).
fn served(socket: &Path) -> BTreeMap<String, (u64, u64)> {
    let stat = runtime_api(socket, "show stat");
    let mut lines = stat.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .trim_start_matches("# ")
        .split(',')
        .collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("no `{name}` column in show stat: {header:?}"))
    };
    let classes: Vec<usize> = [
        "hrsp_1xx",
        "hrsp_2xx",
        "hrsp_3xx",
        "hrsp_4xx",
        "hrsp_5xx",
        "hrsp_other",
    ]
    .iter()
    .map(|c| col(c))
    .collect();
    let five = col("hrsp_5xx");
    lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| f.len() > five && f[0] == "be" && (f[1] == "stable" || f[1] == "canary"))
        .map(|f| {
            let n = |i: usize| f[i].parse::<u64>().unwrap_or(0);
            let total = classes.iter().map(|&i| n(i)).sum();
            (f[1].to_string(), (total, n(five)))
        })
        .collect()
}

fn yaml(bed: &HaproxyBed, broken: bool) -> String {
    let inject = if broken {
        "    inject: [ { type: http_error, proxy: canary, status: 500, match: { path: /checkout } } ]\n"
    } else {
        ""
    };
    format!(
        "name: haproxy-versions\n\
         target: {{ url: \"http://127.0.0.1:{fe}\" }}\n\
         proxies:\n  canary: {{ listen: \"127.0.0.1:{hop}\", upstream: \"127.0.0.1:{v2}\", mode: http }}\n\
         load:\n  rate: 100\n  timeout: 2s\n  requests: [ {{ path: /checkout }} ]\n  \
         version_from: {{ header: x-version, versions: [v1, v2] }}\n\
         phases:\n  - {{ name: baseline, duration: 2s }}\n  \
         - name: canary\n    duration: 6s\n{inject}    \
         expect:\n      error_rate: \"< 5%\"\n      \
         by_version:\n        v2: {{ error_rate: \"< 5%\" }}\n        v1: {{ error_rate: \"< 1%\" }}\n",
        fe = bed.fe_port,
        hop = bed.hop_port,
        v2 = bed.v2_port,
    )
}

/// faultline's (requests, errors) of `version` over every phase.
fn measured(report: &serde_json::Value, version: &str) -> (u64, u64) {
    let mut out = (0, 0);
    for phase in report["experiments"][0]["phases"]
        .as_array()
        .into_iter()
        .flatten()
    {
        for v in phase["versions"].as_array().into_iter().flatten() {
            if v["version"] == version {
                out.0 += v["requests"].as_u64().unwrap_or(0);
                out.1 += v["errors"].as_u64().unwrap_or(0);
            }
        }
    }
    out
}

fn check<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["experiments"][0]["checks"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no check `{name}`"))
}

fn versions_match_haproxy(broken: bool) {
    for run in 1..=RUNS {
        let bed = HaproxyBed::start();
        let before = served(&bed.socket());
        let report = run_faultline(bed.dir.path(), "versions", &yaml(&bed, broken)).json;
        let after = served(&bed.socket());
        let delta = |server: &str| {
            let (a, b) = (after.get(server), before.get(server));
            let (a, b) = (
                a.copied().unwrap_or_default(),
                b.copied().unwrap_or_default(),
            );
            (a.0 - b.0, a.1 - b.1)
        };
        let truth = [("v1", delta("stable")), ("v2", delta("canary"))];
        let ours = [
            ("v1", measured(&report, "v1")),
            ("v2", measured(&report, "v2")),
        ];
        let v2 = check(&report, "error_rate{version=v2} < 5%");
        let seen = format!(
            "run {run}, broken={broken}: HAProxy (responses, 5xx) {truth:?}; faultline {ours:?}; \
             v2 check: {v2}"
        );
        eprintln!("{seen}");
        // A request still in flight when the load stops is waited for, so
        // both sides count the same requests; 2 of slack for one cut at the edge.
        for ((_, (t_req, t_err)), (_, (o_req, o_err))) in truth.iter().zip(&ours) {
            assert!(t_req.abs_diff(*o_req) <= 2, "requests differ: {seen}");
            assert!(t_err.abs_diff(*o_err) <= 2, "errors differ: {seen}");
        }
        let (v1_req, v2_req) = (truth[0].1 .0, truth[1].1 .0);
        assert!(v1_req > 500 && v2_req > 0, "HAProxy split the load: {seen}");
        assert!(
            check(&report, "error_rate{version=v1} < 1%")["passed"] == true,
            "{seen}"
        );
        let aggregate = check(&report, "error_rate < 5%");
        assert!(
            aggregate["passed"] == true,
            "all versions: {aggregate} {seen}"
        );
        if broken {
            assert!(truth[1].1 .1 >= 3, "HAProxy saw the canary fail: {seen}");
            assert!(v2["passed"] == false, "a failing canary passed: {seen}");
            let message = v2["message"].as_str().unwrap_or("");
            assert!(
                message.starts_with("error_rate of version `v2` was ")
                    && message.contains(&format!("over {} requests", v2["samples"])),
                "{seen}"
            );
        } else {
            assert_eq!(truth[1].1 .1, 0, "HAProxy saw canary errors: {seen}");
            assert!(v2["passed"] == true, "a healthy canary failed: {seen}");
        }
    }
}

#[test]
fn per_version_counts_match_haproxy_and_a_healthy_canary_passes() {
    versions_match_haproxy(false);
}

#[test]
fn per_version_counts_match_haproxy_and_a_failing_canary_fails_by_version() {
    versions_match_haproxy(true);
}

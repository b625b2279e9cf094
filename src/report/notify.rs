//! `notify: { webhook: URL }`: game-day events posted as JSON, with a
//! Slack-compatible `text` field, at run start, each fault applied and
//! removed, an abort, and the end of the run.
//!
//! A [`Notifier`] wraps the run's progress display, so the runner knows
//! nothing about webhooks. Posting never holds the run up: events are queued
//! to one background task that posts them in order (a channel reads them in
//! order), each with a timeout; a webhook that fails is reported on stderr,
//! never turned into a failed run. [`Notifier::finish`] waits for the queue
//! to drain, so the last message is not lost at exit.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::sync::mpsc;

use crate::config::model::{Experiment, Phase};
use crate::journal::{ExperimentReport, ExperimentStatus, RunReport};
use crate::runner::Progress;

/// One post gives up after this long.
const POST_TIMEOUT: Duration = Duration::from_secs(5);

/// Posts run events to the webhooks of the experiments, and forwards every
/// progress event to the display it wraps.
pub struct Notifier {
    inner: Arc<dyn Progress>,
    /// Experiment name → its webhook.
    hooks: BTreeMap<String, String>,
    queue: Mutex<Option<mpsc::UnboundedSender<(String, serde_json::Value)>>>,
    poster: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Notifier {
    /// `None` when no experiment has a webhook (nothing to wrap).
    pub fn wrap(inner: Arc<dyn Progress>, experiments: &[&Experiment]) -> Option<Arc<Notifier>> {
        let hooks: BTreeMap<String, String> = experiments
            .iter()
            .filter_map(|e| e.notify.as_ref().map(|u| (e.name.clone(), u.to_string())))
            .collect();
        if hooks.is_empty() {
            return None;
        }
        let client = reqwest::Client::builder()
            .timeout(POST_TIMEOUT)
            .build()
            .unwrap_or_default();
        let (tx, rx) = mpsc::unbounded_channel();
        let poster = tokio::spawn(post_in_order(client, rx));
        Some(Arc::new(Notifier {
            inner,
            hooks,
            queue: Mutex::new(Some(tx)),
            poster: Mutex::new(Some(poster)),
        }))
    }

    /// Every distinct webhook of the run.
    fn all_hooks(&self) -> Vec<String> {
        let mut urls: Vec<String> = self.hooks.values().cloned().collect();
        urls.sort();
        urls.dedup();
        urls
    }

    fn post(&self, url: String, event: &str, text: String, mut fields: serde_json::Value) {
        if let Some(map) = fields.as_object_mut() {
            map.insert("text".into(), json!(text));
            map.insert("event".into(), json!(event));
            map.insert("source".into(), json!("faultline"));
        }
        if let Ok(queue) = self.queue.lock() {
            if let Some(tx) = queue.as_ref() {
                let _ = tx.send((url, fields));
            }
        }
    }

    fn post_for(&self, exp: &str, event: &str, text: String, fields: serde_json::Value) {
        if let Some(url) = self.hooks.get(exp) {
            self.post(url.clone(), event, text, fields);
        }
    }

    /// Announces the start of the run to every webhook.
    pub fn run_started(&self, experiments: &[&Experiment], seed: u64) {
        let names: Vec<&str> = experiments.iter().map(|e| e.name.as_str()).collect();
        for url in self.all_hooks() {
            self.post(
                url,
                "run_started",
                format!(
                    "faultline: run started — {} experiment(s): {} (seed {seed})",
                    names.len(),
                    names.join(", ")
                ),
                json!({ "experiments": names, "seed": seed }),
            );
        }
    }

    /// Announces the end of the run, then waits for every post in flight.
    pub async fn finish(&self, report: &RunReport) {
        let s = &report.summary;
        let status = serde_json::to_value(report.status)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        for url in self.all_hooks() {
            self.post(
                url,
                "run_finished",
                format!(
                    "faultline: run finished — {} (exit {}): {} passed, {} failed, {} error, {} aborted",
                    status,
                    report.exit_code,
                    s.passed,
                    s.failed,
                    s.error,
                    s.aborted
                ),
                json!({ "status": status, "exit_code": report.exit_code }),
            );
        }
        // Closing the queue lets the poster drain it and end.
        if let Ok(mut queue) = self.queue.lock() {
            queue.take();
        }
        let poster = self.poster.lock().ok().and_then(|mut p| p.take());
        if let Some(poster) = poster {
            let _ = tokio::time::timeout(POST_TIMEOUT * 3, poster).await;
        }
    }
}

/// Posts queued events one after the other, in the order they happened.
async fn post_in_order(
    client: reqwest::Client,
    mut rx: mpsc::UnboundedReceiver<(String, serde_json::Value)>,
) {
    while let Some((url, body)) = rx.recv().await {
        match client.post(&url).json(&body).send().await {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => eprintln!("faultline: notify: {url} answered {}", r.status()),
            Err(e) => eprintln!("faultline: notify: posting to {url} failed: {e}"),
        }
    }
}

impl Progress for Notifier {
    fn experiment_started(&self, exp: &Experiment) {
        self.inner.experiment_started(exp);
    }

    fn phase_started(&self, phase: &Phase, index: usize, total: usize) {
        self.inner.phase_started(phase, index, total);
    }

    fn tick(&self, phase: &Phase, elapsed: Duration, live: &crate::metrics::LiveStats) {
        self.inner.tick(phase, elapsed, live);
    }

    fn phase_ended(&self, phase: &Phase) {
        self.inner.phase_ended(phase);
    }

    fn message(&self, text: &str) {
        self.inner.message(text);
    }

    fn fault_applied(&self, exp: &str, phase: &Phase, fault: &str) {
        self.post_for(
            exp,
            "fault_applied",
            format!("faultline: `{exp}` phase `{}`: applied {fault}", phase.name),
            json!({ "experiment": exp, "phase": phase.name, "fault": fault }),
        );
        self.inner.fault_applied(exp, phase, fault);
    }

    fn faults_removed(&self, exp: &str, phase: &Phase) {
        self.post_for(
            exp,
            "faults_removed",
            format!("faultline: `{exp}` phase `{}`: faults removed", phase.name),
            json!({ "experiment": exp, "phase": phase.name }),
        );
        self.inner.faults_removed(exp, phase);
    }

    fn experiment_finished(&self, report: &ExperimentReport) {
        if report.status == ExperimentStatus::Aborted {
            let why = report.error.clone().unwrap_or_default();
            self.post_for(
                &report.name,
                "aborted",
                format!("faultline: `{}` ABORTED — {why}", report.name),
                json!({ "experiment": report.name, "reason": why }),
            );
        }
        self.inner.experiment_finished(report);
    }
}

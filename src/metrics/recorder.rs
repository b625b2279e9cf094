//! The single recorder task: every outcome goes through here.
//!
//! Workers send [`Event`]s on an unbounded channel; the recorder assigns each
//! to its phase by *intended* start (so a request scheduled in the fault phase
//! counts there even if it completes later) and to a 1-second window by
//! completion time. Once a second it publishes [`LiveStats`] for the progress
//! display (and, with live metrics on, to [`super::export`]). When every
//! sender is dropped it returns the final [`RecorderOutput`].

use super::export::feed::RequestFeed;
use super::histogram::LatencyHistogram;
use super::outcome::{ErrorClass, Event, Outcome};
use super::timeline::{Classifier, Timeline, TimelineBuilder};
use super::versions::PhaseVersions;
use super::window::{WindowAccumulator, WindowSummary};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// A phase as a time slice of the load stream, relative to its start.
#[derive(Debug, Clone)]
pub struct PhaseSlice {
    pub name: String,
    pub start: Duration,
    pub end: Duration,
}

/// Everything measured for one phase.
#[derive(Debug, Clone, Default)]
pub struct PhaseMetrics {
    /// Completed requests (successes and errors) scheduled in this phase.
    pub requests: u64,
    pub errors: u64,
    pub errors_by_class: BTreeMap<ErrorClass, u64>,
    /// Responses by HTTP status code.
    pub status_counts: BTreeMap<u16, u64>,
    /// Requests sent later than the late threshold after their scheduled time.
    pub late: u64,
    /// Requests scheduled in this phase that were never sent.
    pub unsent: u64,
    /// Response time: from the intended start.
    pub response: LatencyHistogram,
    /// Service time: from the actual send.
    pub service: LatencyHistogram,
    /// Requests, errors and response times per version that served them.
    pub versions: PhaseVersions,
}

impl PhaseMetrics {
    fn record(&mut self, o: &Outcome, late_threshold: Duration) {
        self.requests += 1;
        self.response.record(o.response_time());
        self.service.record(o.service_time());
        if o.status != 0 {
            *self.status_counts.entry(o.status).or_default() += 1;
        }
        if let Some(class) = o.error {
            self.errors += 1;
            *self.errors_by_class.entry(class).or_default() += 1;
        }
        if o.started.saturating_duration_since(o.intended) > late_threshold {
            self.late += 1;
        }
        self.versions.record(o);
    }

    /// Errors / requests, 0 when there were no requests.
    pub fn error_rate(&self) -> f64 {
        super::error_rate(self.errors, self.requests)
    }
}

/// A once-a-second view for the progress display.
#[derive(Debug, Clone, Default)]
pub struct LiveStats {
    pub elapsed: Duration,
    /// Index of the phase the clock is in.
    pub phase: usize,
    pub requests: u64,
    pub errors: u64,
    /// Completions in the last full second.
    pub rate: f64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub error_rate: f64,
}

/// The recorder's final result.
#[derive(Debug)]
pub struct RecorderOutput {
    /// One entry per phase, in order.
    pub phases: Vec<PhaseMetrics>,
    /// One entry per second from the start of the load, gaps filled with zeros.
    pub series: Vec<WindowSummary>,
    /// Outcomes that completed in a window already closed (only the
    /// per-second series misses them; phases count them).
    pub late_window_events: u64,
    /// Counts per 100 ms slot, for behaviour verifiers.
    pub timeline: Timeline,
}

/// Handles to a running recorder.
pub struct Recorder {
    pub events: mpsc::UnboundedSender<Event>,
    pub live: watch::Receiver<LiveStats>,
    pub done: JoinHandle<RecorderOutput>,
}

impl Recorder {
    /// Starts the recorder task. `t0` is the load's start; `late_threshold`
    /// is how far behind schedule a send may be before it counts as late;
    /// each of `classifiers` is counted per timeline slot; `feed`, when
    /// live metrics are on, gets every outcome and publishes once a second.
    pub fn spawn(
        t0: Instant,
        phases: Vec<PhaseSlice>,
        late_threshold: Duration,
        classifiers: Vec<Classifier>,
        feed: Option<RequestFeed>,
    ) -> Recorder {
        let (tx, rx) = mpsc::unbounded_channel();
        let (live_tx, live_rx) = watch::channel(LiveStats::default());
        let mut state = State::new(t0, phases, late_threshold, classifiers);
        state.feed = feed;
        let done = tokio::spawn(state.run(rx, live_tx));
        Recorder {
            events: tx,
            live: live_rx,
            done,
        }
    }
}

struct State {
    t0: Instant,
    slices: Vec<PhaseSlice>,
    late_threshold: Duration,
    phases: Vec<PhaseMetrics>,
    /// Open windows by second index; at most a few at a time.
    open: BTreeMap<u64, WindowAccumulator>,
    closed: Vec<WindowSummary>,
    /// Windows below this index are closed.
    closed_upto: u64,
    late_window_events: u64,
    requests: u64,
    errors: u64,
    timeline: TimelineBuilder,
    feed: Option<RequestFeed>,
}

impl State {
    fn new(
        t0: Instant,
        slices: Vec<PhaseSlice>,
        late_threshold: Duration,
        classifiers: Vec<Classifier>,
    ) -> State {
        let phases = slices.iter().map(|_| PhaseMetrics::default()).collect();
        State {
            t0,
            slices,
            late_threshold,
            phases,
            open: BTreeMap::new(),
            closed: Vec::new(),
            closed_upto: 0,
            late_window_events: 0,
            requests: 0,
            errors: 0,
            timeline: TimelineBuilder::new(classifiers),
            feed: None,
        }
    }

    async fn run(
        mut self,
        mut rx: mpsc::UnboundedReceiver<Event>,
        live: watch::Sender<LiveStats>,
    ) -> RecorderOutput {
        let mut tick = tokio::time::interval_at(
            tokio::time::Instant::from_std(self.t0 + Duration::from_secs(1)),
            Duration::from_secs(1),
        );
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                event = rx.recv() => match event {
                    Some(event) => self.handle(event),
                    None => break,
                },
                _ = tick.tick() => {
                    let now = Instant::now();
                    let second = now.saturating_duration_since(self.t0).as_secs();
                    let stats = self.live_stats(now, second);
                    if let Some(feed) = &self.feed {
                        feed.publish(&self.phases, stats.elapsed, Some(stats.rate));
                    }
                    let _ = live.send(stats);
                    // One second of grace for events still in the channel.
                    self.close_before(second.saturating_sub(1));
                }
            }
        }
        self.finish()
    }

    fn phase_of(&self, offset: Duration) -> usize {
        self.slices
            .iter()
            .position(|s| offset < s.end)
            .unwrap_or(self.slices.len().saturating_sub(1))
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Done(o) => {
                let phase = self.phase_of(o.intended.saturating_duration_since(self.t0));
                if let Some(p) = self.phases.get_mut(phase) {
                    p.record(&o, self.late_threshold);
                }
                if let Some(feed) = &mut self.feed {
                    feed.record(phase, &o);
                }
                self.requests += 1;
                if o.error.is_some() {
                    self.errors += 1;
                }
                let completed = o.ended.saturating_duration_since(self.t0);
                self.timeline.record(completed, &o);
                let second = completed.as_secs();
                if second < self.closed_upto {
                    self.late_window_events += 1;
                } else {
                    self.open.entry(second).or_default().record(&o);
                }
            }
            Event::Unsent { intended, count } => {
                let phase = self.phase_of(intended.saturating_duration_since(self.t0));
                if let Some(p) = self.phases.get_mut(phase) {
                    p.unsent += count;
                }
            }
        }
    }

    fn live_stats(&self, now: Instant, second: u64) -> LiveStats {
        let elapsed = now.saturating_duration_since(self.t0);
        let last = second.checked_sub(1).and_then(|s| self.open.get(&s));
        LiveStats {
            elapsed,
            phase: self.phase_of(elapsed),
            requests: self.requests,
            errors: self.errors,
            rate: last.map_or(0.0, |w| w.requests as f64),
            p50_ms: last
                .filter(|w| !w.histogram.is_empty())
                .map(|w| w.histogram.quantile_ms(0.5)),
            p99_ms: last
                .filter(|w| !w.histogram.is_empty())
                .map(|w| w.histogram.quantile_ms(0.99)),
            error_rate: last.map_or(0.0, |w| super::error_rate(w.errors, w.requests)),
        }
    }

    /// Closes every window with index below `upto`, filling gaps with empty windows.
    fn close_before(&mut self, upto: u64) {
        while self.closed_upto < upto {
            let t = self.closed_upto;
            let phase = self.phase_name_at(t);
            let summary = match self.open.remove(&t) {
                Some(mut acc) => acc.close(t, &phase),
                None => WindowAccumulator::default().close(t, &phase),
            };
            self.closed.push(summary);
            self.closed_upto += 1;
        }
    }

    fn phase_name_at(&self, second: u64) -> String {
        let i = self.phase_of(Duration::from_secs(second));
        self.slices
            .get(i)
            .map(|s| s.name.clone())
            .unwrap_or_default()
    }

    fn finish(mut self) -> RecorderOutput {
        let planned_end = self
            .slices
            .last()
            .map_or(0, |s| s.end.as_secs_f64().ceil() as u64);
        let last_seen = self.open.keys().next_back().map_or(0, |s| s + 1);
        self.close_before(planned_end.max(last_seen));
        if let Some(feed) = &self.feed {
            feed.publish(&self.phases, self.t0.elapsed(), None);
        }
        RecorderOutput {
            phases: self.phases,
            series: self.closed,
            late_window_events: self.late_window_events,
            timeline: self.timeline.finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slices() -> Vec<PhaseSlice> {
        vec![
            PhaseSlice {
                name: "a".into(),
                start: Duration::ZERO,
                end: Duration::from_secs(2),
            },
            PhaseSlice {
                name: "b".into(),
                start: Duration::from_secs(2),
                end: Duration::from_secs(4),
            },
        ]
    }

    fn outcome(t0: Instant, intended_ms: u64, latency_ms: u64, err: bool) -> Event {
        let intended = t0 + Duration::from_millis(intended_ms);
        Event::Done(Outcome {
            intended,
            started: intended,
            ended: intended + Duration::from_millis(latency_ms),
            status: if err { 503 } else { 200 },
            error: err.then_some(ErrorClass::Http5xx),
            version: None,
            request: 0,
        })
    }

    #[tokio::test]
    async fn outcomes_land_in_the_phase_they_were_scheduled_in() {
        let t0 = Instant::now();
        let rec = Recorder::spawn(t0, slices(), Duration::from_millis(10), Vec::new(), None);
        // Scheduled at 1.9 s (phase a), completes at 2.4 s (window 2, phase b's time).
        rec.events
            .send(outcome(t0, 1900, 500, false))
            .expect("recorder alive");
        rec.events
            .send(outcome(t0, 2100, 10, true))
            .expect("recorder alive");
        rec.events
            .send(Event::Unsent {
                intended: t0 + Duration::from_millis(3500),
                count: 1,
            })
            .expect("alive");
        drop(rec.events);
        let out = tokio::time::timeout(Duration::from_secs(5), rec.done)
            .await
            .expect("recorder finishes")
            .expect("recorder task ok");
        assert_eq!(out.phases[0].requests, 1);
        assert_eq!(out.phases[0].errors, 0);
        assert_eq!(out.phases[1].requests, 1);
        assert_eq!(
            out.phases[1].errors_by_class.get(&ErrorClass::Http5xx),
            Some(&1)
        );
        assert_eq!(out.phases[1].unsent, 1);
        assert_eq!(out.phases[1].status_counts.get(&503), Some(&1));
        // The series covers every planned second, by completion time.
        assert_eq!(out.series.len(), 4);
        assert_eq!(out.series[2].requests, 2);
        assert_eq!(out.series[2].errors, 1);
        assert_eq!(out.series[0].requests, 0);
        assert_eq!(out.series[3].phase, "b");
    }

    #[tokio::test]
    async fn a_request_sent_behind_schedule_counts_as_late() {
        let t0 = Instant::now();
        let rec = Recorder::spawn(t0, slices(), Duration::from_millis(10), Vec::new(), None);
        let intended = t0;
        rec.events
            .send(Event::Done(Outcome {
                intended,
                started: intended + Duration::from_millis(50),
                ended: intended + Duration::from_millis(60),
                status: 200,
                error: None,
                version: None,
                request: 0,
            }))
            .expect("alive");
        drop(rec.events);
        let out = rec.done.await.expect("recorder task ok");
        assert_eq!(out.phases[0].late, 1);
        let resp = out.phases[0].response.summary().expect("one sample");
        let svc = out.phases[0].service.summary().expect("one sample");
        assert!(
            (resp.p50 - 60.0).abs() < 0.5,
            "response time from intended start: {}",
            resp.p50
        );
        assert!(
            (svc.p50 - 10.0).abs() < 0.5,
            "service time from actual send: {}",
            svc.p50
        );
    }
}

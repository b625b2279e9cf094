//! Prometheus remote write 1.0: once a second, every series of [`Live`] as
//! one sample, protobuf-encoded and snappy-compressed, POSTed to the
//! endpoint (Prometheus' `/api/v1/write` with
//! `--web.enable-remote-write-receiver`, Mimir, Thanos, VictoriaMetrics,
//! Grafana Cloud …), for runs that end before a scrape or that nothing can
//! scrape.
//!
//! Two tasks, so a slow endpoint costs no samples and nothing of the run:
//! a collector takes a snapshot each second into a bounded queue (the
//! oldest batch is dropped when it is full), a sender delivers the queue in
//! order, retrying a batch that failed for a reason that may pass
//! (connection, 5xx, 429) with a capped backoff and dropping one the
//! endpoint refused (other 4xx: it would refuse it again). The first
//! failure is logged once; the run never fails for it, and its report gets
//! a note when batches were lost.

use super::model::{Kind, Snapshot, Value};
use super::text::number;
use super::Live;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// One batch a second, as the issue asks: the resolution of the dashboards.
const INTERVAL: Duration = Duration::from_secs(1);
/// Batches kept while the endpoint is failing: two minutes of the run.
pub const MAX_QUEUED: usize = 120;
/// One POST gives up after this.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest wait between two attempts at a failing endpoint.
const MAX_BACKOFF: Duration = Duration::from_secs(8);

/// `prometheus.WriteRequest` (remote write 1.0); metadata is optional and left out.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

/// `prometheus.TimeSeries`: labels sorted by name, `__name__` among them.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Label {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Sample {
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// Every series of `snapshot` as one sample at `timestamp_ms`, each with
/// `extra` labels (`job`, `instance`: what a scrape would have added).
/// Histograms become their `_bucket`, `_sum` and `_count` series, as in the
/// text format.
pub fn write_request(
    snapshot: &Snapshot,
    timestamp_ms: i64,
    extra: &[(&str, &str)],
) -> WriteRequest {
    let mut timeseries = Vec::new();
    for family in snapshot {
        let desc = family.desc;
        for (values, value) in &family.series {
            let base: Vec<(&str, &str)> = desc
                .labels
                .iter()
                .copied()
                .zip(values.iter().map(String::as_str))
                .chain(extra.iter().copied())
                .collect();
            let mut push = |suffix: &str, le: Option<&str>, v: f64| {
                let name = format!("{}{suffix}", desc.name);
                let mut labels: Vec<Label> = base
                    .iter()
                    .chain(le.map(|le| ("le", le)).as_ref())
                    .map(|(k, v)| Label {
                        name: k.to_string(),
                        value: v.to_string(),
                    })
                    .chain(std::iter::once(Label {
                        name: "__name__".into(),
                        value: name,
                    }))
                    .collect();
                labels.sort_by(|a, b| a.name.cmp(&b.name));
                timeseries.push(TimeSeries {
                    labels,
                    samples: vec![Sample {
                        value: v,
                        timestamp: timestamp_ms,
                    }],
                });
            };
            match (desc.kind, value) {
                (Kind::Histogram, Value::Histogram(h)) => {
                    for (bound, count) in h.bounds.iter().zip(&h.cumulative) {
                        push("_bucket", Some(&number(*bound)), *count as f64);
                    }
                    push("_bucket", Some("+Inf"), h.count as f64);
                    push("_sum", None, h.sum);
                    push("_count", None, h.count as f64);
                }
                (_, Value::Scalar(v)) => push("", None, *v),
                _ => {}
            }
        }
    }
    WriteRequest { timeseries }
}

/// The request body: protobuf, then snappy's block format (not its framed
/// format), as the protocol says.
pub fn encode(request: &WriteRequest) -> Result<Vec<u8>, snap::Error> {
    use prost::Message;
    snap::raw::Encoder::new().compress_vec(&request.encode_to_vec())
}

/// What became of the batches, for the run's report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Delivery {
    pub batches: u64,
    pub delivered: u64,
    /// Dropped because the queue was full, the endpoint refused them, or
    /// the run ended before they could be delivered.
    pub lost: u64,
    pub first_error: Option<String>,
}

impl Delivery {
    /// The note for the report, when anything went wrong.
    pub fn note(&self, url: &str) -> Option<String> {
        let error = self.first_error.as_ref()?;
        Some(format!(
            "prometheus remote write to {url}: {} of {} batches delivered, {} lost; first error: {error}",
            self.delivered, self.batches, self.lost
        ))
    }
}

/// What the collector and the sender share.
#[derive(Default)]
struct Queue {
    batches: Mutex<(VecDeque<Vec<u8>>, Delivery)>,
    ready: Notify,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, (VecDeque<Vec<u8>>, Delivery)> {
        self.batches.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, body: Vec<u8>) {
        let mut guard = self.lock();
        let (queue, delivery) = &mut *guard;
        delivery.batches += 1;
        if queue.len() >= MAX_QUEUED {
            queue.pop_front();
            delivery.lost += 1;
        }
        queue.push_back(body);
        drop(guard);
        self.ready.notify_one();
    }
}

/// A running remote writer; [`RemoteWriter::finish`] sends the last batch.
pub struct RemoteWriter {
    live: Arc<Live>,
    queue: Arc<Queue>,
    extra: Vec<(String, String)>,
    collector: JoinHandle<()>,
    sender: JoinHandle<()>,
    stop_collecting: CancellationToken,
    /// Cancelled when the sender must give up on what is left.
    give_up: CancellationToken,
    /// Cancelled when the sender should exit once the queue is empty.
    draining: CancellationToken,
}

impl RemoteWriter {
    /// Starts writing `live` to `url` once a second. `instance` is the
    /// `instance` label (the host name).
    pub fn spawn(live: Arc<Live>, url: String, instance: &str) -> RemoteWriter {
        let queue = Arc::new(Queue::default());
        let extra = vec![
            ("instance".to_string(), instance.to_string()),
            ("job".to_string(), "faultline".to_string()),
        ];
        let stop_collecting = CancellationToken::new();
        let collector = tokio::spawn(collect(
            live.clone(),
            queue.clone(),
            extra.clone(),
            stop_collecting.clone(),
        ));
        let give_up = CancellationToken::new();
        let draining = CancellationToken::new();
        let sender = tokio::spawn(send_all(
            url,
            queue.clone(),
            draining.clone(),
            give_up.clone(),
        ));
        RemoteWriter {
            live,
            queue,
            extra,
            collector,
            sender,
            stop_collecting,
            give_up,
            draining,
        }
    }

    /// Takes the final snapshot, gives the sender up to `within` to deliver
    /// what is queued, and says what became of every batch.
    pub async fn finish(self, within: Duration) -> Delivery {
        self.stop_collecting.cancel();
        let _ = self.collector.await;
        snapshot_into(&self.live, &self.queue, &self.extra);
        self.draining.cancel();
        let mut sender = self.sender;
        if tokio::time::timeout(within, &mut sender).await.is_err() {
            self.give_up.cancel();
            let _ = sender.await;
        }
        let mut guard = self.queue.lock();
        let (queue, delivery) = &mut *guard;
        delivery.lost += queue.len() as u64;
        queue.clear();
        if delivery.lost > 0 && delivery.first_error.is_none() {
            delivery.first_error = Some("the run ended before the endpoint accepted them".into());
        }
        delivery.clone()
    }
}

async fn collect(
    live: Arc<Live>,
    queue: Arc<Queue>,
    extra: Vec<(String, String)>,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => snapshot_into(&live, &queue, &extra),
        }
    }
}

fn snapshot_into(live: &Live, queue: &Queue, extra: &[(String, String)]) {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let extra: Vec<(&str, &str)> = extra
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let request = write_request(&live.snapshot(), now, &extra);
    match encode(&request) {
        Ok(body) => queue.push(body),
        Err(e) => tracing::warn!(error = %e, "remote write: snappy failed on a batch"),
    }
}

/// Why one POST failed, and whether trying the same batch again may help.
struct Failure {
    message: String,
    retry: bool,
}

async fn send_all(
    url: String,
    queue: Arc<Queue>,
    draining: CancellationToken,
    give_up: CancellationToken,
) {
    let client = reqwest::Client::builder()
        .timeout(SEND_TIMEOUT)
        .user_agent(concat!("faultline/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default();
    let mut backoff = INTERVAL;
    loop {
        let next = queue.lock().0.front().cloned();
        let Some(body) = next else {
            if draining.is_cancelled() {
                return;
            }
            tokio::select! {
                _ = queue.ready.notified() => continue,
                _ = draining.cancelled() => continue,
            }
        };
        let result = tokio::select! {
            r = post(&client, &url, body) => r,
            _ = give_up.cancelled() => return,
        };
        if !settle(&queue, &url, result) {
            backoff = INTERVAL;
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = give_up.cancelled() => return,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Books one POST's result; whether the same batch is to be retried.
fn settle(queue: &Queue, url: &str, result: Result<(), Failure>) -> bool {
    let mut guard = queue.lock();
    let (batches, delivery) = &mut *guard;
    let failure = match result {
        Ok(()) => {
            batches.pop_front();
            delivery.delivered += 1;
            return false;
        }
        Err(f) => f,
    };
    if delivery.first_error.is_none() {
        tracing::warn!(
            url = %url,
            error = %failure.message,
            "prometheus remote write is failing; retrying in the background (the run is not affected)"
        );
        delivery.first_error = Some(failure.message.clone());
    }
    if !failure.retry {
        batches.pop_front();
        delivery.lost += 1;
    }
    failure.retry
}

async fn post(client: &reqwest::Client, url: &str, body: Vec<u8>) -> Result<(), Failure> {
    let response = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/x-protobuf")
        .header(reqwest::header::CONTENT_ENCODING, "snappy")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .body(body)
        .send()
        .await
        .map_err(|e| Failure {
            // reqwest keeps the reason (refused, timed out) in the causes.
            message: std::iter::successors(Some(&e as &dyn std::error::Error), |e| e.source())
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(": "),
            retry: true,
        })?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let text = response.text().await.unwrap_or_default();
    Err(Failure {
        message: format!("HTTP {status}: {}", text.trim()),
        retry: status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS,
    })
}

#[cfg(test)]
mod tests {
    use super::super::{Live, REQUESTS, RESPONSE_TIME};
    use super::*;
    use crate::metrics::export::model::HistogramValue;

    #[test]
    fn series_carry_sorted_labels_and_histograms_their_buckets() {
        let live = Live::new();
        live.with(|s| {
            s.add(&REQUESTS, &["e", "p", "r", "2xx", "none"], 7.0);
            s.set(
                &RESPONSE_TIME,
                &["e", "p"],
                Value::Histogram(HistogramValue {
                    bounds: &[0.1],
                    cumulative: vec![2],
                    count: 3,
                    sum: 0.5,
                }),
            );
        });
        let req = write_request(&live.snapshot(), 1234, &[("job", "faultline")]);
        let names: Vec<String> = req
            .timeseries
            .iter()
            .map(|t| {
                let sorted = t.labels.windows(2).all(|w| w[0].name < w[1].name);
                assert!(sorted, "labels sorted by name: {:?}", t.labels);
                t.labels[0].value.clone()
            })
            .collect();
        assert_eq!(
            names,
            [
                "faultline_build_info",
                "faultline_requests_total",
                "faultline_response_time_seconds_bucket",
                "faultline_response_time_seconds_bucket",
                "faultline_response_time_seconds_sum",
                "faultline_response_time_seconds_count",
            ]
        );
        let requests = &req.timeseries[1];
        assert_eq!(
            requests.samples,
            [Sample {
                value: 7.0,
                timestamp: 1234
            }]
        );
        assert!(requests
            .labels
            .iter()
            .any(|l| l.name == "job" && l.value == "faultline"));
        // The body decodes back to the same request.
        let body = encode(&req).expect("compresses");
        let raw = snap::raw::Decoder::new()
            .decompress_vec(&body)
            .expect("snappy block format");
        let back = <WriteRequest as prost::Message>::decode(raw.as_slice()).expect("protobuf");
        assert_eq!(back, req);
    }

    #[test]
    fn a_full_queue_drops_the_oldest_batch() {
        let queue = Queue::default();
        for i in 0..=MAX_QUEUED {
            queue.push(vec![u8::try_from(i % 256).unwrap_or(0)]);
        }
        let guard = queue.lock();
        assert_eq!(guard.0.len(), MAX_QUEUED);
        assert_eq!(guard.0.front(), Some(&vec![1u8]));
        assert_eq!(guard.1.lost, 1);
        assert_eq!(guard.1.batches, MAX_QUEUED as u64 + 1);
    }

    /// A loopback endpoint answering `statuses` in turn (then the last one
    /// forever); counts the POSTs it got.
    async fn endpoint(
        statuses: Vec<u16>,
    ) -> (
        String,
        Arc<std::sync::atomic::AtomicUsize>,
        CancellationToken,
    ) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!(
            "http://{}/api/v1/write",
            listener.local_addr().expect("addr")
        );
        let posts = Arc::new(AtomicUsize::new(0));
        let stop = CancellationToken::new();
        let tracker = tokio_util::task::TaskTracker::new();
        let counter = posts.clone();
        crate::server::spawn(
            listener,
            move |req: http::Request<hyper::body::Incoming>| {
                let n = counter.fetch_add(1, Ordering::SeqCst);
                let status = statuses.get(n).or(statuses.last()).copied().unwrap_or(204);
                async move {
                    let _ = crate::server::read_body(req.into_body(), 1 << 20).await;
                    let status = http::StatusCode::from_u16(status)
                        .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
                    crate::server::error(status, "test")
                }
            },
            stop.clone(),
            &tracker,
        );
        (url, posts, stop)
    }

    #[tokio::test]
    async fn a_batch_refused_with_503_is_retried_until_it_is_delivered() {
        let (url, posts, stop) = endpoint(vec![503, 503, 204]).await;
        let writer = RemoteWriter::spawn(Live::new(), url.clone(), "test");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let delivery = tokio::time::timeout(
            Duration::from_secs(20),
            writer.finish(Duration::from_secs(10)),
        )
        .await
        .expect("finishes");
        stop.cancel();
        assert_eq!(delivery.lost, 0, "{delivery:?}");
        assert_eq!(delivery.delivered, delivery.batches, "{delivery:?}");
        let error = delivery.first_error.clone().unwrap_or_default();
        assert!(error.contains("503"), "the first failure is kept: {error}");
        let posts = posts.load(std::sync::atomic::Ordering::SeqCst) as u64;
        assert_eq!(
            posts,
            delivery.batches + 2,
            "two retries, then one POST per batch"
        );
        assert!(delivery.note(&url).is_some_and(|n| n.contains("0 lost")));
    }

    #[tokio::test]
    async fn a_batch_refused_with_400_is_dropped_not_retried() {
        let (url, posts, stop) = endpoint(vec![400]).await;
        let writer = RemoteWriter::spawn(Live::new(), url, "test");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let delivery = tokio::time::timeout(
            Duration::from_secs(20),
            writer.finish(Duration::from_secs(5)),
        )
        .await
        .expect("finishes");
        stop.cancel();
        assert_eq!(delivery.delivered, 0);
        assert_eq!(delivery.lost, delivery.batches, "{delivery:?}");
        let posts = posts.load(std::sync::atomic::Ordering::SeqCst) as u64;
        assert_eq!(posts, delivery.batches, "each batch POSTed once");
    }
}

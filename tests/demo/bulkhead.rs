//! The bulkhead and the `no_timeout` defect: a blackhole on the payments hop
//! (a `timeout` toxic with timeout 0 drops every byte until removed), then
//! its removal. Healthy, the frontend recovers at once; with `no_timeout`
//! the calls that never got an answer keep their slots and checkout stays
//! broken after the fault is gone.

use std::time::{Duration, Instant};

use faultline::config::model::{BreakerOptions, Defect, DemoOptions};
use faultline::demo::path::MAX_CONCURRENT_CALLS;
use faultline::proxy::spec::{Direction, ToxicKind, ToxicSpec};
use http::{Method, StatusCode};

use super::support::{within, Demo};

const LIMIT: Duration = Duration::from_secs(30);

/// More concurrent checkouts than the bulkhead has slots.
const BURST: usize = MAX_CONCURRENT_CALLS + 8;

/// Starts a demo (all checkouts on v1, 300 ms payments timeout, a breaker
/// that half-opens after 200 ms), sends a burst of checkouts into a
/// blackhole that each client gives up on after 1 s, then lifts the
/// blackhole. Returns the demo and when the blackhole was lifted.
async fn blackhole_then_lift(defects: Vec<Defect>) -> (Demo, Instant) {
    let demo = Demo::start(DemoOptions {
        payments_timeout: Duration::from_millis(300),
        canary_weight: 0.0,
        breaker: BreakerOptions {
            open_for: Duration::from_millis(200),
            ..BreakerOptions::default()
        },
        defects,
        ..DemoOptions::default()
    })
    .await;
    assert_eq!(demo.checkout().await.status, StatusCode::OK, "warm pool");
    let hop = &demo.system.payments_hop;
    hop.add_toxic(ToxicSpec {
        name: "blackhole".into(),
        stream: Direction::Downstream,
        toxicity: 1.0,
        kind: ToxicKind::Timeout { timeout: 0 },
    })
    .expect("toxic added");
    let burst =
        (0..BURST).map(|_| demo.try_send(Method::GET, "/checkout", "", Duration::from_secs(1)));
    let replies = futures_join_all(burst).await;
    assert!(
        replies.iter().flatten().all(|r| r.status != StatusCode::OK),
        "nothing succeeds through a blackhole"
    );
    hop.remove_toxic("blackhole").expect("toxic removed");
    (demo, Instant::now())
}

/// Runs the futures concurrently (the crate has no `futures` dependency).
async fn futures_join_all<F: std::future::Future>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futures.map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in pinned.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => *output = Some(value),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_healthy_demo_recovers_within_a_second_of_a_blackhole_ending() {
    tokio::time::timeout(LIMIT, async {
        let (demo, lifted) = blackhole_then_lift(vec![]).await;
        let recovered = within(Duration::from_secs(5), || async {
            demo.try_send(Method::GET, "/checkout", "", Duration::from_secs(1))
                .await
                .is_some_and(|r| r.status == StatusCode::OK)
        })
        .await;
        let took = lifted.elapsed();
        assert!(recovered.is_some(), "checkout answers 200 again");
        // Tolerance: the breaker's 200 ms open_for plus a trial call; 2 s
        // leaves room for a loaded machine without hiding a hang.
        assert!(
            took < Duration::from_secs(2),
            "recovered {took:?} after removal"
        );
        let state = demo.get("/admin/breaker").await.json();
        assert_eq!(state["calls_in_flight"], 0, "every slot came back: {state}");
        demo.stop().await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_timeout_a_blackhole_leaves_checkout_broken_after_it_ends() {
    tokio::time::timeout(LIMIT, async {
        let (demo, _lifted) = blackhole_then_lift(vec![Defect::NoTimeout]).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let attempts = (0..3)
            .map(|_| demo.try_send(Method::GET, "/checkout", "", Duration::from_millis(1500)));
        let answered = futures_join_all(attempts).await;
        assert!(
            answered.iter().all(Option::is_none),
            "checkout still hangs after the fault is gone: {answered:?}"
        );
        let state = demo.get("/admin/breaker").await.json();
        assert_eq!(
            state["calls_in_flight"], MAX_CONCURRENT_CALLS,
            "the hung calls hold every slot: {state}"
        );
        assert_eq!(state["state"], "closed", "hung calls never fail: {state}");
        assert_eq!(
            demo.get("/health").await.status,
            StatusCode::OK,
            "only checkout is stuck"
        );
        // The hung calls still end at shutdown.
        demo.stop().await;
    })
    .await
    .expect("test timed out");
}

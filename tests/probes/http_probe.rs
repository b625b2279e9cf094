//! The `http` probe and `json_value` against loopback servers.

use std::time::{Duration, Instant};

use faultline::config::model::{CmpOp, StatusMatch};
use faultline::config::model_verify::{HttpProbe, JsonCheck, ProbeKind, ValueCheck};
use faultline::probes::{json_value, observe, Observation, ProbeContext};
use serde_json::json;

use super::fixture::{Answer, Fixture};
use super::{closed_port, decl, within};

const TIMEOUT: Duration = Duration::from_secs(5);

fn get(url: impl Into<String>) -> HttpProbe {
    HttpProbe {
        url: url.into(),
        method: http::Method::GET,
        headers: Vec::new(),
        status: None,
        json: None,
        body: None,
    }
}

fn with_json(url: &str, pointer: &str, expect: ValueCheck) -> HttpProbe {
    HttpProbe {
        json: Some(JsonCheck {
            pointer: pointer.into(),
            expect,
        }),
        ..get(url)
    }
}

fn compare(op: CmpOp, value: f64, source: &str) -> ValueCheck {
    ValueCheck::Compare {
        op,
        value,
        source: source.into(),
    }
}

async fn run(probe: HttpProbe) -> Observation {
    observe(
        &decl(ProbeKind::Http(probe), TIMEOUT),
        &ProbeContext::default(),
    )
    .await
}

/// The breaker admin endpoint of a service, as the demo would answer it.
fn breaker() -> Fixture {
    Fixture::json(
        200,
        json!({"state": "closed", "weight": 0.2, "ratio": "0.07", "calls": 12}),
    )
}

#[tokio::test]
async fn http_probe_accepts_2xx_by_default_and_listed_statuses_otherwise() {
    within(async {
        let down = Fixture::json(503, json!({"error": "unavailable"}));
        let seen = run(get(down.url())).await;
        assert!(!seen.passed, "{seen:?}");
        assert_eq!(seen.reason, "expected status 2xx, got 503");
        assert_eq!(seen.value.as_deref(), Some("503"));

        let listed = HttpProbe {
            status: Some(vec![StatusMatch::Exact(200), StatusMatch::Class(5)]),
            ..get(down.url())
        };
        let seen = run(listed).await;
        assert!(seen.passed, "{seen:?}");
        assert_eq!(seen.reason, "status 503");

        let only_200 = HttpProbe {
            status: Some(vec![StatusMatch::Exact(200), StatusMatch::Exact(204)]),
            ..get(down.url())
        };
        assert_eq!(
            run(only_200).await.reason,
            "expected status 200 or 204, got 503"
        );
    })
    .await
}

#[tokio::test]
async fn http_probe_json_pointer_equals_the_json_value() {
    within(async {
        let bed = breaker();
        let closed = ValueCheck::Equals(json!("closed"));
        let seen = run(with_json(&bed.url(), "/state", closed.clone())).await;
        assert!(seen.passed, "{seen:?}");
        assert_eq!(seen.value.as_deref(), Some("closed"));
        assert_eq!(seen.reason, r#"status 200, /state is "closed""#);

        let seen = run(with_json(
            &bed.url(),
            "/state",
            ValueCheck::Equals(json!("open")),
        ))
        .await;
        assert!(!seen.passed);
        assert_eq!(seen.reason, r#"/state is "closed", expected "open""#);

        let seen = run(with_json(
            &bed.url(),
            "/calls",
            ValueCheck::Equals(json!(12.0)),
        ))
        .await;
        assert!(seen.passed, "numbers compare by value: {seen:?}");

        let seen = run(with_json(&bed.url(), "/breaker/state", closed)).await;
        assert!(!seen.passed);
        assert_eq!(seen.reason, "JSON pointer /breaker/state not found in body");
        assert_eq!(seen.value.as_deref(), Some("200"));
    })
    .await
}

#[tokio::test]
async fn http_probe_json_pointer_compares_numbers_and_numeric_strings() {
    within(async {
        let bed = breaker();
        let seen = run(with_json(
            &bed.url(),
            "/weight",
            compare(CmpOp::Lt, 0.5, "< 0.5"),
        ))
        .await;
        assert!(seen.passed, "{seen:?}");
        assert_eq!(seen.value.as_deref(), Some("0.2"));

        let seen = run(with_json(
            &bed.url(),
            "/weight",
            compare(CmpOp::Gt, 0.5, "> 0.5"),
        ))
        .await;
        assert!(!seen.passed);
        assert_eq!(seen.reason, "/weight is 0.2, not > 0.5");

        let seen = run(with_json(
            &bed.url(),
            "/ratio",
            compare(CmpOp::Le, 0.1, "<= 0.1"),
        ))
        .await;
        assert!(seen.passed, "a numeric string is a number: {seen:?}");

        let seen = run(with_json(
            &bed.url(),
            "/state",
            compare(CmpOp::Lt, 1.0, "< 1"),
        ))
        .await;
        assert!(!seen.passed);
        assert_eq!(
            seen.reason,
            r#"/state is "closed", not a number (needed for < 1)"#
        );
    })
    .await
}

#[tokio::test]
async fn http_probe_body_must_match_the_pattern_and_be_json_when_pointed_into() {
    within(async {
        let page = Fixture::start(|_| Answer::text(200, "<h1>payments</h1>\nstatus: healthy\n"));
        let healthy = HttpProbe {
            body: Some(r"status:\s+healthy".into()),
            ..get(page.url())
        };
        let seen = run(healthy).await;
        assert!(seen.passed, "{seen:?}");
        assert_eq!(seen.reason, r"status 200, body matches /status:\s+healthy/");

        let degraded = HttpProbe {
            body: Some("degraded".into()),
            ..get(page.url())
        };
        let seen = run(degraded).await;
        assert!(!seen.passed);
        assert_eq!(seen.reason, "body does not match /degraded/");

        let seen = run(with_json(
            &page.url(),
            "/state",
            ValueCheck::Equals(json!("closed")),
        ))
        .await;
        assert!(!seen.passed);
        assert!(
            seen.reason.starts_with("body is not JSON"),
            "{}",
            seen.reason
        );

        let broken = HttpProbe {
            body: Some("(unclosed".into()),
            ..get(page.url())
        };
        let seen = run(broken).await;
        assert!(!seen.passed);
        assert!(
            seen.reason
                .starts_with("invalid regular expression /(unclosed/"),
            "{}",
            seen.reason
        );
    })
    .await
}

#[tokio::test]
async fn http_probe_sends_its_method_and_headers() {
    within(async {
        let admin = Fixture::start(|req| {
            let authorised = req.method == http::Method::POST
                && req.headers.get("x-token").is_some_and(|v| v == "s3cret");
            Answer::json(if authorised { 200 } else { 401 }, &json!({}))
        });
        let seen = run(get(admin.url())).await;
        assert_eq!(seen.reason, "expected status 2xx, got 401");
        let post = HttpProbe {
            method: http::Method::POST,
            headers: vec![(
                http::HeaderName::from_static("x-token"),
                http::HeaderValue::from_static("s3cret"),
            )],
            ..get(admin.url())
        };
        let seen = run(post).await;
        assert!(seen.passed, "{seen:?}");
    })
    .await
}

#[tokio::test]
async fn http_probe_joins_a_relative_url_to_the_target() {
    within(async {
        let bed = Fixture::start(|req| {
            let status = if req.uri.path() == "/admin/breaker" {
                200
            } else {
                404
            };
            Answer::json(status, &json!({"state": "open"}))
        });
        let probe = decl(
            ProbeKind::Http(with_json(
                "/admin/breaker",
                "/state",
                ValueCheck::Equals(json!("open")),
            )),
            TIMEOUT,
        );
        let ctx = ProbeContext {
            target_base: Some(bed.url().parse().expect("a URI")),
        };
        let seen = observe(&probe, &ctx).await;
        assert!(seen.passed, "{seen:?}");

        let seen = observe(&probe, &ProbeContext::default()).await;
        assert!(!seen.passed);
        assert!(
            seen.reason.contains("no target base URL"),
            "{}",
            seen.reason
        );
    })
    .await
}

#[tokio::test]
async fn http_probe_to_a_closed_port_fails_as_refused() {
    within(async {
        let addr = closed_port();
        let start = Instant::now();
        let seen = run(get(format!("http://{addr}/health"))).await;
        assert!(!seen.passed);
        assert_eq!(seen.reason, format!("connect to {addr} refused"));
        assert_eq!(seen.value, None);
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
    })
    .await
}

#[tokio::test]
async fn http_probe_to_a_server_that_never_answers_times_out() {
    within(async {
        // Accepted by the kernel's backlog, never read, never answered.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = silent.local_addr().expect("read the bound address");
        let timeout = Duration::from_millis(300);
        let probe = decl(ProbeKind::Http(get(format!("http://{addr}/"))), timeout);
        let seen = observe(&probe, &ProbeContext::default()).await;
        assert!(!seen.passed);
        assert_eq!(seen.reason, "timed out after 300ms");
        assert!(
            seen.took >= timeout && seen.took < timeout + Duration::from_secs(1),
            "took {:?}, expected 300ms + at most 1s of scheduling slack",
            seen.took
        );
        drop(silent);
    })
    .await
}

#[tokio::test]
async fn http_probe_refuses_a_body_over_the_limit() {
    within(async {
        let huge = "x".repeat(faultline::probes::http::BODY_LIMIT + 1);
        let bed = Fixture::start(move |_| Answer::text(200, huge.clone()));
        let probe = HttpProbe {
            body: Some("x".into()),
            ..get(bed.url())
        };
        let seen = run(probe).await;
        assert!(!seen.passed);
        assert_eq!(seen.reason, "status 200, body larger than 1048576 bytes");
        // Without a body check the body is not read, so its size does not matter.
        assert!(run(get(bed.url())).await.passed);
    })
    .await
}

#[tokio::test]
async fn json_value_reads_the_pointed_value_or_says_why_not() {
    within(async {
        let bed = breaker();
        let ctx = ProbeContext {
            target_base: Some(bed.url().parse().expect("a URI")),
        };
        let state = json_value("/admin/breaker", "/state", &ctx, TIMEOUT).await;
        assert_eq!(state, Ok(json!("closed")));
        let missing = json_value(&bed.url(), "/nope", &ctx, TIMEOUT).await;
        assert_eq!(
            missing,
            Err("JSON pointer /nope not found in body".to_string())
        );
        let addr = closed_port();
        let refused = json_value(&format!("http://{addr}/"), "/state", &ctx, TIMEOUT).await;
        assert_eq!(refused, Err(format!("connect to {addr} refused")));

        let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let url = format!("http://{}/", silent.local_addr().expect("bound address"));
        let slow = json_value(&url, "/state", &ctx, Duration::from_millis(200)).await;
        assert_eq!(slow, Err("timed out after 200ms".to_string()));
    })
    .await
}

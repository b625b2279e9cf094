//! `faultline proxy` serves `/metrics` on its admin API: Toxiproxy's byte
//! counters and faultline's connection, toxic and HTTP-fault gauges, equal
//! to what `/proxies/NAME` says.

use serde_json::Value;

use crate::common::TestBed;
use crate::faults::start_proxy_server;

/// The exposition's value of the series starting with `prefix` (name and labels).
fn value_of(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// The exposition agrees with the proxy's JSON stats.
fn agrees(text: &str, info: &Value) -> Result<(), String> {
    let listen = info["listen"].as_str().unwrap_or_default();
    let upstream = info["upstream"].as_str().unwrap_or_default();
    let stats = &info["stats"];
    let expect = [
        (
            format!("toxiproxy_proxy_sent_bytes_total{{direction=\"upstream\",listener=\"{listen}\",proxy=\"svc\",upstream=\"{upstream}\"}}"),
            stats["bytes_upstream"].as_f64(),
        ),
        (
            format!("toxiproxy_proxy_sent_bytes_total{{direction=\"downstream\",listener=\"{listen}\",proxy=\"svc\",upstream=\"{upstream}\"}}"),
            stats["bytes_downstream"].as_f64(),
        ),
        ("faultline_proxy_connections_total{proxy=\"svc\"}".to_string(), stats["accepted"].as_f64()),
        (
            "faultline_proxy_toxics_active{proxy=\"svc\"}".to_string(),
            info["toxics"].as_array().map(|t| t.len() as f64),
        ),
        ("faultline_proxy_enabled{proxy=\"svc\"}".to_string(), Some(1.0)),
    ];
    for (series, want) in expect {
        let got = value_of(text, &format!("{series} "));
        if got != want {
            return Err(format!(
                "{series}: /metrics has {got:?}, /proxies/svc {want:?}"
            ));
        }
    }
    Ok(())
}

#[tokio::test]
async fn the_proxy_admin_api_serves_metrics_with_toxiproxy_names() {
    tokio::time::timeout(super::LIMIT, async {
        let upstream = TestBed::always(200);
        let dir = tempfile::tempdir().expect("temp dir");
        let server = start_proxy_server(dir.path(), &upstream.addr().to_string()).await;
        for _ in 0..5 {
            let answer = reqwest::get(format!("http://{}/", server.listen))
                .await
                .expect("through the proxy");
            assert_eq!(answer.status(), 200);
        }
        let client = reqwest::Client::new();
        let added = client
            .post(format!("{}/proxies/svc/toxics", server.admin))
            .json(&serde_json::json!({ "type": "latency", "attributes": { "latency": 1 } }))
            .send()
            .await
            .expect("add a toxic");
        assert!(added.status().is_success(), "{}", added.status());
        let metrics = client
            .get(format!("{}/metrics", server.admin))
            .send()
            .await
            .expect("/metrics answers");
        assert_eq!(metrics.status(), 200);
        let content_type = metrics.headers()["content-type"]
            .to_str()
            .unwrap_or("")
            .to_string();
        assert!(
            content_type.starts_with("text/plain; version=0.0.4"),
            "{content_type}"
        );
        let text = metrics.text().await.expect("text");
        let info: Value = client
            .get(format!("{}/proxies/svc", server.admin))
            .send()
            .await
            .expect("answers")
            .json()
            .await
            .expect("JSON");
        agrees(&text, &info).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert!(
            info["stats"]["bytes_upstream"].as_f64() > Some(0.0),
            "traffic was counted"
        );

        let mut wrong = info.clone();
        wrong["stats"]["bytes_upstream"] = serde_json::json!(0);
        let e = agrees(&text, &wrong).expect_err("0 bytes is not what was sent");
        assert!(e.contains("direction=\"upstream\""), "{e}");

        let (ok, lint) = super::scrape::promtool(&text);
        assert!(ok && lint.trim().is_empty(), "promtool: {lint}\n{text}");
        let wrong_method = client
            .post(format!("{}/metrics", server.admin))
            .send()
            .await
            .expect("answers");
        assert_eq!(wrong_method.status(), 405);
        drop(server);
        upstream.stop().await;
    })
    .await
    .expect("the test finished in time");
}

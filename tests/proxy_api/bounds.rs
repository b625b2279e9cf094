//! The admin API's bounds, as Toxiproxy has them: names that fit a URL
//! path (at most 255 bytes), numeric toxic attributes that are integers
//! within `int64` (never rounded, never saturated), and the files
//! `faultline proxy --config` and `--token-file` read (regular, bounded).

use std::time::{Duration, Instant};

use faultline::proxy::api::AdminAuth;
use serde_json::{json, Value};

use super::{within, Admin, LIMIT};
use crate::cli::run_bounded;
use crate::common::TestBed;

/// A 400 in Toxiproxy's `{"error", "status"}` shape, with `part` in it.
fn assert_refused(answer: (u16, Value), part: &str, what: &str) {
    let (status, body) = answer;
    assert_eq!(status, 400, "{what}: {body}");
    assert_eq!(body["status"], json!(400), "{what}: {body}");
    let message = body["error"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("bad request body: ") && message.contains(part),
        "{what}: want {part:?} in {body}"
    );
    assert!(
        message.len() < 300,
        "{what}: the message does not echo the input: {} bytes",
        message.len()
    );
}

#[test]
fn names_longer_than_255_bytes_are_refused_and_255_stay_reachable() {
    within(LIMIT, || {
        let admin = Admin::start(AdminAuth::None);
        let bed = admin.bed(|| TestBed::always(200));
        let upstream = bed.addr().to_string();
        let huge = "p".repeat(100_000);
        assert_refused(
            admin.json(
                "POST",
                "/proxies",
                json!({"name": huge, "upstream": upstream}),
            ),
            "the proxy name is 100000 bytes; at most 255",
            "a 100,000-byte proxy name",
        );
        assert_refused(
            admin.json(
                "POST",
                "/populate",
                json!([{"name": "p".repeat(256), "upstream": upstream}]),
            ),
            "at most 255",
            "a 256-byte name in populate",
        );
        // The longest allowed name works end to end.
        let longest = "p".repeat(255);
        let (status, body) = admin.json(
            "POST",
            "/proxies",
            json!({"name": longest, "upstream": upstream}),
        );
        assert_eq!(status, 201, "{body}");
        let (status, body) = admin.call("GET", &format!("/proxies/{longest}"), None);
        assert_eq!(status, 200, "{body}");
        let toxics = format!("/proxies/{longest}/toxics");
        assert_refused(
            admin.json(
                "POST",
                &toxics,
                json!({"name": "t".repeat(256), "type": "latency"}),
            ),
            "the toxic name is 256 bytes; at most 255",
            "a 256-byte toxic name",
        );
        let toxic = "t".repeat(255);
        let (status, body) = admin.json(
            "POST",
            &toxics,
            json!({"name": toxic, "type": "latency", "attributes": {"latency": 1}}),
        );
        assert_eq!(status, 200, "{body}");
        let (status, _) = admin.call("DELETE", &format!("{toxics}/{toxic}"), None);
        assert_eq!(status, 204, "the 255-byte toxic is reachable");
        // Nothing refused was created.
        let (_, all) = admin.call("GET", "/proxies", None);
        assert_eq!(
            all.as_object().map(|o| o.len()),
            Some(1),
            "only the 255-byte proxy"
        );
    });
}

#[test]
fn toxic_numbers_must_be_int64_integers_never_rounded_or_saturated() {
    within(LIMIT, || {
        let admin = Admin::start(AdminAuth::None);
        let bed = admin.bed(|| TestBed::always(200));
        let (status, _) = admin.json(
            "POST",
            "/proxies",
            json!({"name": "p", "upstream": bed.addr().to_string()}),
        );
        assert_eq!(status, 201);
        let raw = |latency: &str| {
            format!(r#"{{"name": "t", "type": "latency", "attributes": {{"latency": {latency}}}}}"#)
                .into_bytes()
        };
        // As Toxiproxy's Go decoder into int64 answers (400), plus negatives.
        for (number, part) in [
            ("500.5", "must be an integer"),
            ("500.0", "must be an integer"),
            ("5e2", "must be an integer"),
            ("1e30", "must be an integer"),
            ("18446744073709551615", "64-bit signed integer"),
            ("9223372036854775808", "64-bit signed integer"),
            ("-1", "non-negative"),
        ] {
            assert_refused(
                admin.call("POST", "/proxies/p/toxics", Some(raw(number))),
                part,
                &format!("latency {number}"),
            );
        }
        let (_, toxics) = admin.call("GET", "/proxies/p/toxics", None);
        assert_eq!(toxics, json!([]), "nothing refused was added");
        // The largest int64 is taken exactly, and an update is held to the
        // same rule without changing the toxic.
        let (status, body) = admin.call(
            "POST",
            "/proxies/p/toxics",
            Some(raw("9223372036854775807")),
        );
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body["attributes"]["latency"],
            json!(9_223_372_036_854_775_807_i64)
        );
        assert_refused(
            admin.json(
                "POST",
                "/proxies/p/toxics/t",
                json!({"attributes": {"latency": 500.5}}),
            ),
            "must be an integer",
            "an update to 500.5",
        );
        let (_, toxic) = admin.call("GET", "/proxies/p/toxics/t", None);
        assert_eq!(
            toxic["attributes"]["latency"],
            json!(9_223_372_036_854_775_807_i64)
        );
        let (status, body) = admin.json(
            "POST",
            "/proxies/p/toxics/t",
            json!({"attributes": {"latency": 500}}),
        );
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["attributes"]["latency"], json!(500));
        admin.assert_alive();
    });
}

#[test]
fn http_fault_numbers_and_names_are_bounded_too() {
    within(LIMIT, || {
        let admin = Admin::start(AdminAuth::None);
        let bed = admin.bed(|| TestBed::always(200));
        let (status, _) = admin.json(
            "POST",
            "/proxies",
            json!({"name": "h", "upstream": bed.addr().to_string(), "mode": "http"}),
        );
        assert_eq!(status, 201);
        let raw = |name: &str, delay: &str| {
            format!(r#"{{"name": "{name}", "type": "http_delay", "delay": {delay}}}"#).into_bytes()
        };
        let (status, body) = admin.call("POST", "/proxies/h/http_faults", Some(raw("f", "1e30")));
        assert_eq!(status, 400, "delay 1e30: {body}");
        let (status, body) = admin.call("POST", "/proxies/h/http_faults", Some(raw("f", "2.5")));
        assert_eq!(status, 400, "delay 2.5: {body}");
        assert_refused(
            admin.call(
                "POST",
                "/proxies/h/http_faults",
                Some(raw("f", "18446744073709551615")),
            ),
            "64-bit signed integer",
            "delay u64::MAX",
        );
        assert_refused(
            admin.call(
                "POST",
                "/proxies/h/http_faults",
                Some(raw(&"f".repeat(256), "5")),
            ),
            "at most 255",
            "a 256-byte fault name",
        );
        let (status, body) = admin.call("POST", "/proxies/h/http_faults", Some(raw("f", "5")));
        assert_eq!(status, 200, "{body}");
    });
}

/// `faultline <args>` with a time limit; its exit code and stderr.
fn faultline_exit(args: &[&std::ffi::OsStr]) -> (Option<i32>, String, Duration) {
    let started = Instant::now();
    let out = run_bounded(crate::cli::faultline().args(args), Duration::from_secs(20));
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).to_string(),
        started.elapsed(),
    )
}

#[test]
fn proxy_config_and_token_files_are_read_as_bounded_regular_files() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fifo = dir.path().join("fifo");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo");
    let big_config = dir.path().join("big.json");
    std::fs::write(&big_config, vec![b' '; 2 << 20]).expect("write");
    let big_token = dir.path().join("token");
    std::fs::write(&big_token, "t".repeat(5000)).expect("write");
    let zero = std::path::Path::new("/dev/zero");
    let os = |p: &std::path::Path| p.as_os_str().to_owned();
    let proxy = |config: &std::path::Path| {
        vec![
            "proxy".into(),
            "--admin".into(),
            "127.0.0.1:0".into(),
            "--config".into(),
            os(config),
        ]
    };
    let agent = |token: &std::path::Path| {
        vec![
            "agent".into(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--token-file".into(),
            os(token),
        ]
    };
    let cases: Vec<(Vec<std::ffi::OsString>, &str)> = vec![
        (proxy(zero), "not a regular file (it is a device)"),
        (proxy(&fifo), "not a regular file (it is a FIFO)"),
        (proxy(dir.path()), "not a regular file (it is a directory)"),
        (proxy(&big_config), "larger than 1048576 bytes"),
        (agent(zero), "not a regular file (it is a device)"),
        (agent(&fifo), "not a regular file (it is a FIFO)"),
        (agent(&big_token), "larger than 4096 bytes"),
    ];
    for (args, part) in cases {
        let refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
        let (code, stderr, took) = faultline_exit(&refs);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(part), "{args:?}: want {part:?} in {stderr}");
        assert!(took < Duration::from_secs(5), "{args:?} took {took:?}");
    }
}

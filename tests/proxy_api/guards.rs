//! What the admin API refuses: garbage of every kind, browsers, requests
//! without the token, and unsafe `faultline proxy` set-ups.

use faultline::proxy::api::{AdminAuth, AdminOptions};
use serde_json::json;

use super::{within, Admin, LIMIT};
use crate::common::TestBed;

#[test]
fn garbage_gets_a_json_4xx_and_the_server_keeps_serving() {
    within(LIMIT, || {
        let admin = Admin::start(AdminAuth::None);
        let bed = admin.bed(|| TestBed::always(200));
        let upstream = bed.addr().to_string();
        let (status, _) = admin.json(
            "POST",
            "/proxies",
            json!({"name": "p", "upstream": upstream}),
        );
        assert_eq!(status, 201);
        admin.json(
            "POST",
            "/proxies/p/toxics",
            json!({"name": "t", "type": "latency"}),
        );

        let raw = |s: &str| Some(s.as_bytes().to_vec());
        let deep = Some(vec![b'['; 100_000]);
        let huge = Some(vec![b' '; 2 * 1024 * 1024]);
        let dup_proxy = raw(&format!(r#"{{"name": "p", "upstream": "{upstream}"}}"#));
        // (method, path, body, expected status, part of the expected message)
        type Case<'a> = (&'a str, &'a str, Option<Vec<u8>>, u16, &'a str);
        #[rustfmt::skip]
        let cases: Vec<Case> = vec![
            ("POST", "/proxies", raw("{"), 400, "bad request body"),
            ("POST", "/proxies", raw(""), 400, "bad request body"),
            ("POST", "/proxies", None, 400, "bad request body"),
            ("POST", "/proxies", raw("[]"), 400, "expected a JSON object"),
            ("POST", "/proxies", raw("null"), 400, "expected a JSON object"),
            ("POST", "/proxies", raw("\u{1F4A5}"), 400, "bad request body"),
            ("POST", "/proxies", Some(vec![0xff, 0xfe, b'{']), 400, "bad request body"),
            ("POST", "/proxies", raw(r#"{"name": 5, "upstream": "x:1"}"#), 400, "bad request body"),
            ("POST", "/proxies", raw(r#"{"name": "q"}"#), 400, "missing required field: upstream"),
            ("POST", "/proxies", raw(r#"{"upstream": "127.0.0.1:1"}"#), 400, "missing required field: name"),
            ("POST", "/proxies", raw(r#"{"name": "q", "upstream": "nohost"}"#), 400, "bad request body"),
            ("POST", "/proxies", raw(r#"{"name": "a/b", "upstream": "127.0.0.1:1"}"#), 400, "bad request body"),
            ("POST", "/proxies", raw(r#"{"name": "q", "upstream": "127.0.0.1:1", "mode": "udp"}"#), 400, "bad request body"),
            ("POST", "/proxies", dup_proxy, 409, "proxy already exists"),
            ("POST", "/proxies", huge.clone(), 413, "larger than"),
            ("POST", "/populate", huge, 413, "larger than"),
            ("POST", "/populate", deep, 400, "bad request body"),
            ("POST", "/populate", raw(r#"{"proxies": []}"#), 400, "bad request body"),
            ("POST", "/populate", raw(r#"[{"name": "x"}]"#), 400, "missing required field: upstream at proxy 1"),
            ("POST", "/populate", raw(r#"[{"name": "x", "upstream": "127.0.0.1:1"}, {"name": "x", "upstream": "127.0.0.1:2"}]"#), 400, "more than once"),
            ("POST", "/proxies/p", raw(r#"{"enabled": "no"}"#), 400, "bad request body"),
            ("PATCH", "/proxies/p", raw(""), 400, "bad request body"),
            ("PATCH", "/proxies/p", raw(r#"{"upstream": "nohost"}"#), 400, "bad request body"),
            ("PATCH", "/proxies/missing", raw("{}"), 404, "proxy not found"),
            ("DELETE", "/proxies/missing", None, 404, "proxy not found"),
            ("POST", "/proxies/missing/toxics", raw("{"), 404, "proxy not found"),
            ("POST", "/proxies/p/toxics", raw("{"), 400, "bad request body"),
            ("POST", "/proxies/p/toxics", raw(r#"{"type": "latensy"}"#), 400, "invalid toxic type"),
            ("POST", "/proxies/p/toxics", raw(r#"{"type": 7}"#), 400, "bad request body"),
            ("POST", "/proxies/p/toxics", raw(r#"{"attributes": {}}"#), 400, "bad request body"),
            ("POST", "/proxies/p/toxics", raw(r#"{"type": "latency", "attributes": {"latency": -5}}"#), 400, "non-negative"),
            ("POST", "/proxies/p/toxics", raw(r#"{"type": "latency", "attributes": {"latency": "slow"}}"#), 400, "must be a number"),
            ("POST", "/proxies/p/toxics", raw(r#"{"type": "latency", "attributes": [1, 2]}"#), 400, "bad request body"),
            ("POST", "/proxies/p/toxics", raw(r#"{"type": "latency", "stream": "sideways"}"#), 400, "stream was invalid"),
            ("POST", "/proxies/p/toxics", raw(r#"{"type": "latency", "toxicity": 7}"#), 400, "toxicity"),
            ("POST", "/proxies/p/toxics", raw(r#"{"name": "t", "type": "timeout"}"#), 409, "toxic already exists"),
            ("GET", "/proxies/p/toxics/missing", None, 404, "toxic not found"),
            ("PATCH", "/proxies/p/toxics/missing", raw("{}"), 404, "toxic not found"),
            ("PATCH", "/proxies/p/toxics/t", raw(r#"{"toxicity": "x"}"#), 400, "bad request body"),
            ("PATCH", "/proxies/p/toxics/t", raw(r#"{"attributes": {"latency": -1}}"#), 400, "non-negative"),
            ("DELETE", "/proxies/p/toxics/missing", None, 404, "toxic not found"),
            ("POST", "/proxies/p/http_faults", raw(r#"{"name": "f", "type": "http_error", "status": 503}"#), 400, "not in http mode"),
            ("GET", "/proxies/p/http_faults/missing", None, 404, "http fault not found"),
            ("GET", "/nope", None, 404, "not found"),
            ("GET", "/proxies/p/toxics/t/extra", None, 404, "not found"),
            ("PUT", "/proxies", raw("{}"), 405, "method not allowed"),
            ("DELETE", "/version", None, 405, "method not allowed"),
            ("HEAD", "/reset", None, 405, ""),
        ];
        for (method, path, body, want_status, want_message) in cases {
            let (status, answer) = admin.call(method, path, body);
            assert_eq!(status, want_status, "{method} {path}: {answer}");
            if method != "HEAD" {
                assert_eq!(
                    answer["status"],
                    json!(want_status),
                    "{method} {path}: {answer}"
                );
                let message = answer["error"].as_str().unwrap_or_default();
                assert!(
                    message.contains(want_message),
                    "{method} {path}: want {want_message:?} in {answer}"
                );
            }
            admin.assert_alive();
        }

        // Nothing above changed anything.
        let (_, all) = admin.call("GET", "/proxies", None);
        assert_eq!(all.as_object().map(|o| o.len()), Some(1), "{all}");
        assert_eq!(
            all["p"]["toxics"].as_array().map(Vec::len),
            Some(1),
            "{all}"
        );
        assert_eq!(all["p"]["toxics"][0]["attributes"]["latency"], json!(0));
    });
}

#[test]
fn browsers_are_refused_with_403() {
    within(LIMIT, || {
        let admin = Admin::start(AdminAuth::None);
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0";
        for (method, path) in [("GET", "/version"), ("POST", "/reset"), ("GET", "/nope")] {
            let (status, body) = admin.call_with(method, path, None, &[("user-agent", firefox)]);
            assert_eq!(status, 403, "{method} {path}");
            assert_eq!(
                body,
                json!({"error": "User agent not allowed", "status": 403})
            );
        }
        let (status, _) = admin.call_with("GET", "/version", None, &[("user-agent", "curl/8.5")]);
        assert_eq!(status, 200);
    });
}

#[test]
fn a_bearer_token_is_required_on_every_request_when_configured() {
    within(LIMIT, || {
        let admin = Admin::start(AdminAuth::Bearer("s3cret-token".into()));
        for headers in [
            vec![],
            vec![("authorization", "Bearer wrong")],
            vec![("authorization", "Bearer s3cret-token-and-more")],
            vec![("authorization", "Basic s3cret-token")],
        ] {
            let (status, body) = admin.call_with("GET", "/version", None, &headers);
            assert_eq!(status, 401, "{headers:?}");
            assert_eq!(body["status"], json!(401));
            let (status, _) = admin.call_with("POST", "/reset", None, &headers);
            assert_eq!(status, 401, "writes too: {headers:?}");
        }
        let ok = [("authorization", "Bearer s3cret-token")];
        let (status, body) = admin.call_with("GET", "/version", None, &ok);
        assert_eq!(status, 200, "{body}");
        let (status, _) = admin.call_with("GET", "/proxies", None, &ok);
        assert_eq!(status, 200);
    });
}

#[test]
fn standalone_refuses_a_remote_admin_address_without_allow_remote_and_a_token() {
    within(LIMIT, || {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let opts = |admin: &str, allow_remote, token: Option<&str>| AdminOptions {
            admin: admin.parse().expect("addr"),
            config: None,
            allow_remote,
            token: token.map(str::to_string),
            seed: 0,
        };
        for (o, want) in [
            (opts("0.0.0.0:0", false, None), "--allow-remote"),
            (opts("0.0.0.0:0", false, Some("t")), "--allow-remote"),
            (opts("0.0.0.0:0", true, None), "--token-file"),
        ] {
            let err = rt
                .block_on(faultline::proxy::api::run_standalone(o))
                .expect_err("refused before binding");
            assert!(err.to_string().contains(want), "{err}");
        }

        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("toxiproxy.json");
        std::fs::write(&config, "- name: yaml\n").expect("write");
        let mut o = opts("127.0.0.1:0", false, None);
        o.config = Some(config);
        let err = rt
            .block_on(faultline::proxy::api::run_standalone(o))
            .expect_err("a non-JSON config is refused");
        assert!(err.to_string().contains("JSON list"), "{err}");
    });
}

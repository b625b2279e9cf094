//! Proxies, toxics and HTTP faults through their whole life: shapes,
//! status codes, restarts, populate, delete.

use std::net::TcpStream;
use std::time::Duration;

use faultline::proxy::api::AdminAuth;
use serde_json::{json, Value};

use super::{http_get, listen_of, within, Admin, LIMIT};
use crate::common::TestBed;

#[test]
fn proxies_have_toxiproxys_json_shape_and_status_codes() {
    within(LIMIT, || {
        let admin = Admin::start(AdminAuth::None);
        let bed = admin.bed(|| TestBed::always(200));
        let upstream = bed.addr().to_string();

        let (status, created) = admin.json(
            "POST",
            "/proxies",
            json!({"name": "db", "upstream": upstream}),
        );
        assert_eq!(status, 201, "{created}");
        let keys: Vec<&str> = created
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        for key in [
            "name",
            "listen",
            "upstream",
            "enabled",
            "toxics",
            "mode",
            "http_faults",
            "stats",
        ] {
            assert!(keys.contains(&key), "{key} in {created}");
        }
        assert_eq!(created["upstream"], json!(upstream));
        assert_eq!(created["enabled"], json!(true));
        assert_eq!(created["mode"], json!("tcp"));
        let listen = listen_of(&created);
        assert!(
            listen.ip().is_loopback(),
            "the default listen address is loopback"
        );

        let (status, all) = admin.call("GET", "/proxies", None);
        assert_eq!(status, 200);
        assert_eq!(all["db"], created, "GET /proxies is keyed by name");

        let (status, toxic) = admin.json(
            "POST",
            "/proxies/db/toxics",
            json!({"type": "latency", "attributes": {"latency": 5}}),
        );
        assert_eq!(
            status, 200,
            "toxic creation answers 200, as Toxiproxy: {toxic}"
        );
        assert_eq!(
            toxic,
            json!({"name": "latency_downstream", "type": "latency", "stream": "downstream",
                   "toxicity": 1.0, "attributes": {"latency": 5, "jitter": 0}})
        );
        let (status, toxic) = admin.json(
            "PATCH",
            "/proxies/db/toxics/latency_downstream",
            json!({"attributes": {"jitter": 2}, "toxicity": 0.5}),
        );
        assert_eq!(status, 200, "{toxic}");
        assert_eq!(toxic["attributes"], json!({"latency": 5, "jitter": 2}));
        assert_eq!(toxic["toxicity"], json!(0.5));
        let (status, shown) = admin.call("GET", "/proxies/db/toxics/latency_downstream", None);
        assert_eq!((status, &shown), (200, &toxic));
        let (status, body) = admin.call("DELETE", "/proxies/db/toxics/latency_downstream", None);
        assert_eq!((status, body), (204, Value::Null));

        let (status, body) = admin.call("POST", "/reset", None);
        assert_eq!((status, body), (204, Value::Null));
        let (status, body) = admin.call("DELETE", "/proxies/db", None);
        assert_eq!((status, body), (204, Value::Null));
        let (status, body) = admin.call("GET", "/proxies/db", None);
        assert_eq!(
            (status, body),
            (404, json!({"error": "proxy not found", "status": 404}))
        );
    });
}

#[test]
fn a_new_upstream_or_listen_address_restarts_the_proxy_keeping_its_toxics() {
    within(LIMIT, || {
        let admin = Admin::start(AdminAuth::None);
        let first = admin.bed(|| TestBed::always(200));
        let second = admin.bed(|| TestBed::always(202));
        let (_, created) = admin.json(
            "POST",
            "/proxies",
            json!({"name": "hop", "upstream": first.addr().to_string()}),
        );
        let old_listen = listen_of(&created);
        admin.json(
            "POST",
            "/proxies/hop/toxics",
            json!({"name": "lag", "type": "latency", "attributes": {"latency": 1}}),
        );
        admin.json("POST", "/proxies/hop", json!({"enabled": false}));

        // Older clients update with POST: same listen, new upstream.
        let (status, updated) = admin.json(
            "POST",
            "/proxies/hop",
            json!({"upstream": second.addr().to_string(), "enabled": true}),
        );
        assert_eq!(status, 200, "{updated}");
        assert_eq!(
            listen_of(&updated),
            old_listen,
            "same port after an upstream change"
        );
        assert_eq!(
            updated["toxics"][0]["name"],
            json!("lag"),
            "toxics kept: {updated}"
        );
        assert_eq!(
            http_get(old_listen),
            Ok(202),
            "forwards to the new upstream"
        );

        // Newer clients use PATCH: a new listen address.
        let (status, moved) = admin.json("PATCH", "/proxies/hop", json!({"listen": "127.0.0.1:0"}));
        assert_eq!(status, 200, "{moved}");
        let new_listen = listen_of(&moved);
        assert_ne!(new_listen, old_listen);
        assert_eq!(moved["toxics"][0]["name"], json!("lag"));
        assert_eq!(http_get(new_listen), Ok(202));
        assert!(
            TcpStream::connect_timeout(&old_listen, Duration::from_secs(1)).is_err(),
            "the old port is closed"
        );

        // A failed restart leaves the proxy as it was.
        let squatter = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let taken = squatter.local_addr().expect("addr").to_string();
        let (status, err) = admin.json("PATCH", "/proxies/hop", json!({"listen": taken}));
        assert_eq!(status, 500, "a bind failure is Toxiproxy's 500: {err}");
        assert!(
            err["error"]
                .as_str()
                .is_some_and(|e| e.starts_with("listen tcp")),
            "{err}"
        );
        let (_, now) = admin.call("GET", "/proxies/hop", None);
        assert_eq!(listen_of(&now), new_listen);
        assert_eq!(http_get(new_listen), Ok(202));
    });
}

#[test]
fn populate_creates_keeps_or_replaces_and_is_all_or_nothing() {
    within(LIMIT, || {
        let admin = Admin::start(AdminAuth::None);
        let bed = admin.bed(|| TestBed::always(200));
        let upstream = bed.addr().to_string();

        let (status, first) = admin.json(
            "POST",
            "/populate",
            json!([{"name": "a", "upstream": upstream}, {"name": "b", "upstream": upstream}]),
        );
        assert_eq!(status, 201, "{first}");
        assert_eq!(first["proxies"].as_array().map(Vec::len), Some(2));
        let a_listen = listen_of(&first["proxies"][0]);
        admin.json(
            "POST",
            "/proxies/a/toxics",
            json!({"type": "latency", "attributes": {"latency": 1}}),
        );

        // The same definition keeps the proxy, toxics and all.
        let (status, again) = admin.json(
            "POST",
            "/populate",
            json!([{"name": "a", "listen": a_listen.to_string(), "upstream": upstream}]),
        );
        assert_eq!(status, 201, "{again}");
        assert_eq!(listen_of(&again["proxies"][0]), a_listen);
        assert_eq!(again["proxies"][0]["toxics"][0]["type"], json!("latency"));

        // A failure anywhere undoes the whole request.
        let squatter = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let taken = squatter.local_addr().expect("addr").to_string();
        let (status, err) = admin.json(
            "POST",
            "/populate",
            json!([
                {"name": "a", "listen": "127.0.0.1:0", "upstream": upstream},
                {"name": "c", "upstream": upstream},
                {"name": "d", "listen": taken, "upstream": upstream}
            ]),
        );
        assert_eq!(status, 500, "{err}");
        let (_, all) = admin.call("GET", "/proxies", None);
        let names: Vec<&String> = all.as_object().expect("object").keys().collect();
        assert_eq!(names, ["a", "b"], "nothing created: {all}");
        assert_eq!(listen_of(&all["a"]), a_listen, "`a` put back on its port");
        assert_eq!(
            all["a"]["toxics"][0]["type"],
            json!("latency"),
            "with its toxic"
        );
        assert_eq!(http_get(a_listen), Ok(200));
    });
}

#[test]
fn http_faults_are_an_extension_for_http_proxies() {
    within(LIMIT, || {
        let admin = Admin::start(AdminAuth::None);
        let bed = admin.bed(|| TestBed::always(200));
        let (status, created) = admin.json(
            "POST",
            "/proxies",
            json!({"name": "web", "upstream": bed.addr().to_string(), "mode": "http"}),
        );
        assert_eq!(status, 201, "{created}");
        assert_eq!(created["mode"], json!("http"));
        let listen = listen_of(&created);

        let fault = json!({"name": "boom", "type": "http_error", "status": 503});
        let (status, added) = admin.json("POST", "/proxies/web/http_faults", fault.clone());
        assert_eq!(status, 200, "{added}");
        assert_eq!(added["name"], json!("boom"));
        assert_eq!(added["probability"], json!(1.0));
        let (status, dup) = admin.json("POST", "/proxies/web/http_faults", fault);
        assert_eq!(
            (status, dup["error"].clone()),
            (409, json!("http fault already exists"))
        );
        let (status, bad) = admin.json(
            "POST",
            "/proxies/web/http_faults",
            json!({"name": "x", "type": "http_error", "status": 999}),
        );
        assert_eq!(status, 400, "{bad}");

        assert_eq!(
            http_get(listen),
            Ok(503),
            "the fault answers instead of the upstream"
        );
        let (_, listed) = admin.call("GET", "/proxies/web/http_faults", None);
        assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
        let (_, proxy) = admin.call("GET", "/proxies/web", None);
        assert_eq!(proxy["http_faults"], listed);
        let (status, shown) = admin.call("GET", "/proxies/web/http_faults/boom", None);
        assert_eq!((status, &shown), (200, &added));

        let (status, _) = admin.call("DELETE", "/proxies/web/http_faults/boom", None);
        assert_eq!(status, 204);
        assert_eq!(http_get(listen), Ok(200));
        let (status, _) = admin.call("DELETE", "/proxies/web/http_faults/boom", None);
        assert_eq!(status, 404);

        // Reset clears HTTP faults too.
        admin.json(
            "POST",
            "/proxies/web/http_faults",
            json!({"name": "again", "type": "http_error", "status": 500}),
        );
        admin.call("POST", "/reset", None);
        let (_, listed) = admin.call("GET", "/proxies/web/http_faults", None);
        assert_eq!(listed, json!([]));
    });
}

#[test]
fn enabled_false_refuses_connects_and_true_listens_on_the_same_port_again() {
    within(LIMIT, || {
        let admin = Admin::start(AdminAuth::None);
        let bed = admin.bed(|| TestBed::always(200));
        let (_, created) = admin.json(
            "POST",
            "/proxies",
            json!({"name": "hop", "upstream": bed.addr().to_string(), "listen": "127.0.0.1:0"}),
        );
        let listen = listen_of(&created);
        assert_eq!(http_get(listen), Ok(200));

        let (status, down) = admin.json("POST", "/proxies/hop", json!({"enabled": false}));
        assert_eq!((status, &down["enabled"]), (200, &json!(false)), "{down}");
        let refused = TcpStream::connect_timeout(&listen, Duration::from_secs(1));
        assert_eq!(
            refused.map(|_| ()).map_err(|e| e.kind()),
            Err(std::io::ErrorKind::ConnectionRefused),
            "the port is closed while disabled"
        );

        let (status, up) = admin.json("PATCH", "/proxies/hop", json!({"enabled": true}));
        assert_eq!(status, 200, "{up}");
        assert_eq!(listen_of(&up), listen, "the same port");
        assert_eq!(http_get(listen), Ok(200), "listening again");
        let (_, now) = admin.call("GET", "/proxies/hop", None);
        assert_eq!(now["stats"]["refused_connects"], json!(1), "{now}");
        assert_eq!(now["stats"]["refused_observed"], json!(true), "{now}");
    });
}

/// A client that shuts down its write side right after the request (as
/// `nc -N` or a script calling `shutdown(SHUT_WR)` does) still reads the
/// whole answer, and what was answered is exactly what was applied: hyper
/// used to treat the EOF as the end of the connection and drop the answer.
#[test]
fn half_closed_clients_get_every_answer_and_state_matches_them() {
    within(LIMIT * 2, || {
        let admin = Admin::start(AdminAuth::None);
        let bed = admin.bed(|| TestBed::always(200));
        let upstream = bed.addr().to_string();
        let mut lost = Vec::new();
        let mut send = |method: &str, path: &str, body: &[u8], want: u16| {
            match crate::common::half_closed_request(admin.addr, method, path, &[], body) {
                Ok((status, _)) if status == want => {}
                Ok((status, payload)) => lost.push(format!(
                    "{method} {path}: {status} {}",
                    String::from_utf8_lossy(&payload)
                )),
                Err(e) => lost.push(format!("{method} {path}: {e}")),
            }
        };
        // 150 creations and 50 deletions, interleaved: 200 requests.
        for i in 0..150 {
            let body = json!({"name": format!("p{i}"), "upstream": upstream}).to_string();
            send("POST", "/proxies", body.as_bytes(), 201);
            if i % 3 == 2 {
                send("DELETE", &format!("/proxies/p{}", i - 1), b"", 204);
            }
        }
        assert!(
            lost.is_empty(),
            "{} of 200 answers lost: {:?}",
            lost.len(),
            &lost[..lost.len().min(5)]
        );
        let (_, all) = admin.call("GET", "/proxies", None);
        let mut names: Vec<String> = all.as_object().expect("object").keys().cloned().collect();
        names.sort();
        let mut want: Vec<String> = (0..150)
            .filter(|i| i % 3 != 1)
            .map(|i| format!("p{i}"))
            .collect();
        want.sort();
        assert_eq!(names, want);
    });
}

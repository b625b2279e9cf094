//! `faultline agent`: its guards, command faults applied and removed over
//! HTTP, leases that run out by themselves, the harness-side
//! [`AgentFault`] keeping a lease alive, and a CPU fault's stress child.
//!
//! Each test runs a real agent on 127.0.0.1 port 0 (an [`Agent`], stopped
//! on drop) and runs under [`within`], a wall-clock limit.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use faultline::agent::{serve_agent, AgentClient, AgentFault, AgentState};
use faultline::faults::remote::RemoteSpec;
use faultline::faults::Fault;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

const LIMIT: Duration = Duration::from_secs(30);
const TOKEN: &str = "agent-test-token";

/// Fails the test if `body` takes longer than `limit`.
async fn within<F: Future<Output = ()>>(limit: Duration, body: F) {
    tokio::time::timeout(limit, body)
        .await
        .unwrap_or_else(|_| panic!("the test took longer than {limit:?}"));
}

/// A loopback agent; cancels its shutdown token on drop.
struct Agent {
    addr: SocketAddr,
    state: Arc<AgentState>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl Agent {
    async fn start() -> Agent {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the agent port");
        let addr = listener.local_addr().expect("agent address");
        let state = Arc::new(AgentState::new(TOKEN.into(), Duration::from_secs(30)));
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        let (st, s, t) = (Arc::clone(&state), shutdown.clone(), tracker.clone());
        tracker.spawn(async move { serve_agent(listener, st, s, &t).await });
        Agent {
            addr,
            state,
            shutdown,
            tracker,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn client(&self) -> AgentClient {
        AgentClient::new(self.url(""), TOKEN).expect("client")
    }

    /// Shuts down and waits for every task (and so every removal).
    async fn stop(self) {
        self.shutdown.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }

    /// One request with the right token unless `token` says otherwise.
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call_as(method, path, body, Some(TOKEN), None).await
    }

    async fn call_as(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
        user_agent: Option<&str>,
    ) -> (u16, Value) {
        let http = reqwest::Client::new();
        let mut request = http.request(method.parse().expect("method"), self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(ua) = user_agent {
            request = request.header("user-agent", ua);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the agent answers");
        let status = response.status().as_u16();
        let text = response.text().await.expect("a body");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("JSON body: {text}"))
        };
        (status, value)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A command fault that creates `<dir>/marker` and whose rollback deletes it.
fn marker_fault(dir: &Path) -> (Value, PathBuf) {
    let marker = dir.join("marker");
    let spec = json!({
        "type": "command",
        "run": format!("touch '{}'", marker.display()),
        "rollback": format!("rm '{}'", marker.display()),
        "timeout_ms": 5000,
    });
    (spec, marker)
}

/// Polls until `done` or `limit` passes; returns how long it took.
async fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done() {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    done().then(|| start.elapsed())
}

#[tokio::test]
async fn every_request_needs_the_token_and_browsers_are_refused() {
    within(LIMIT, async {
        let agent = Agent::start().await;
        let (status, body) = agent.call_as("GET", "/health", None, None, None).await;
        assert_eq!(status, 401);
        assert_eq!(body["status"], 401);
        assert!(
            body["error"]
                .as_str()
                .unwrap_or("")
                .contains("bearer token"),
            "{body}"
        );
        let (status, _) = agent
            .call_as("GET", "/health", None, Some("agent-test-tokeN"), None)
            .await;
        assert_eq!(status, 401, "a wrong token");
        let (status, _) = agent
            .call_as("POST", "/faults", Some(json!({})), Some("nope"), None)
            .await;
        assert_eq!(status, 401, "refused before the body is looked at");

        let (status, body) = agent.call("GET", "/health", None).await;
        assert_eq!(status, 200);
        assert_eq!(body["status"], "ok");
        assert_eq!(body["faults"], 0);
        assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));

        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0";
        let (status, body) = agent
            .call_as("GET", "/health", None, Some(TOKEN), Some(firefox))
            .await;
        assert_eq!(status, 403, "a browser, even with the token");
        assert_eq!(body["status"], 403);
        agent.stop().await;
    })
    .await;
}

#[tokio::test]
async fn bad_requests_get_a_json_4xx() {
    within(LIMIT, async {
        let agent = Agent::start().await;
        let huge = json!({ "spec": "x".repeat(2 * 1024 * 1024) });
        #[rustfmt::skip]
        let cases: Vec<(&str, &str, Option<Value>, u16, &str)> = vec![
            ("POST", "/faults", Some(huge), 413, "larger than"),
            ("POST", "/faults", Some(json!({"spec": {"type": "disk"}})), 400, "bad request body"),
            ("POST", "/faults", Some(json!({"spec": {"type": "cpu", "load": 2.0}})), 400, "`load`"),
            ("POST", "/faults", Some(json!({"spec": {"type": "cpu", "load": 0.5}, "lease_s": 0})), 400, "`lease_s`"),
            ("POST", "/faults", Some(json!({"spec": {"type": "cpu", "load": 0.5}, "extra": 1})), 400, "unknown field"),
            ("POST", "/faults", None, 400, "bad request body"),
            ("POST", "/faults/nope/renew", None, 404, "no fault `nope`"),
            ("DELETE", "/faults/nope", None, 404, "no fault `nope`"),
            ("GET", "/faults/nope", None, 404, "no fault `nope`"),
            ("PUT", "/faults", None, 405, "method not allowed"),
            ("GET", "/elsewhere", None, 404, "not found"),
        ];
        for (method, path, body, status, part) in cases {
            let (got, answer) = agent.call_as(method, path, body, Some(TOKEN), None).await;
            assert_eq!(got, status, "{method} {path}: {answer}");
            assert_eq!(answer["status"], status, "{method} {path}");
            let message = answer["error"].as_str().unwrap_or("");
            assert!(message.contains(part), "{method} {path}: {message}");
        }
        assert!(agent.state.is_empty());
        agent.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_command_fault_is_applied_listed_and_removed() {
    within(LIMIT, async {
        let dir = tempfile::tempdir().expect("tempdir");
        let (spec, marker) = marker_fault(dir.path());
        let agent = Agent::start().await;
        let (status, applied) = agent
            .call(
                "POST",
                "/faults",
                Some(json!({"spec": spec, "lease_s": 30})),
            )
            .await;
        assert_eq!(status, 201, "{applied}");
        assert!(marker.exists(), "the command ran");
        assert_eq!(applied["spec"], spec);
        assert_eq!(applied["kind"], "command");
        assert_eq!(applied["evidence"]["exit_code"], 0);
        let left = applied["lease_expires_in_s"].as_f64().expect("a number");
        assert!(left > 29.0 && left <= 30.0, "{left}");
        let id = applied["id"].as_str().expect("an id").to_string();

        let (status, list) = agent.call("GET", "/faults", None).await;
        assert_eq!(status, 200);
        assert_eq!(list["faults"].as_array().map(Vec::len), Some(1), "{list}");
        assert_eq!(list["faults"][0]["id"], id.as_str());
        let (_, health) = agent.call("GET", "/health", None).await;
        assert_eq!(health["faults"], 1);

        let (status, renewed) = agent
            .call(
                "POST",
                &format!("/faults/{id}/renew"),
                Some(json!({"lease_s": 120})),
            )
            .await;
        assert_eq!(status, 200, "{renewed}");
        assert_eq!(renewed["lease_s"], 120.0);

        let (status, body) = agent.call("DELETE", &format!("/faults/{id}"), None).await;
        assert_eq!((status, body), (204, Value::Null));
        assert!(!marker.exists(), "the rollback ran");
        let (status, _) = agent.call("DELETE", &format!("/faults/{id}"), None).await;
        assert_eq!(status, 404, "removed once");
        agent.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_fault_nobody_renews_is_removed_when_its_lease_runs_out() {
    within(LIMIT, async {
        let dir = tempfile::tempdir().expect("tempdir");
        let (spec, marker) = marker_fault(dir.path());
        let agent = Agent::start().await;
        let (status, applied) = agent
            .call("POST", "/faults", Some(json!({"spec": spec, "lease_s": 1})))
            .await;
        assert_eq!(status, 201, "{applied}");
        let applied_at = Instant::now();
        assert!(marker.exists());
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert!(marker.exists(), "still held 0.7 s into a 1 s lease");
        let gone = wait_until(Duration::from_secs(3), || !marker.exists()).await;
        assert!(gone.is_some(), "the rollback never ran");
        let after = applied_at.elapsed();
        // 1 s lease + one 200 ms check interval + the rollback itself, with slack for CI.
        assert!(
            after >= Duration::from_millis(950) && after <= Duration::from_millis(1600),
            "removed {after:?} after applying (expected ~1 s-1.4 s)"
        );
        assert!(agent.state.is_empty());
        agent.stop().await;
    })
    .await;
}

#[tokio::test]
async fn shutdown_removes_every_fault() {
    within(LIMIT, async {
        let dir = tempfile::tempdir().expect("tempdir");
        let (spec, marker) = marker_fault(dir.path());
        let agent = Agent::start().await;
        let (status, _) = agent
            .call("POST", "/faults", Some(json!({"spec": spec})))
            .await;
        assert_eq!(status, 201);
        assert!(marker.exists());
        agent.stop().await;
        assert!(!marker.exists(), "the rollback ran at shutdown");
    })
    .await;
}

#[tokio::test]
async fn an_agent_fault_keeps_its_lease_alive_until_removed() {
    within(LIMIT, async {
        let dir = tempfile::tempdir().expect("tempdir");
        let marker = dir.path().join("marker");
        let spec = RemoteSpec::Command {
            run: format!("touch '{}'", marker.display()),
            rollback: Some(format!("rm '{}'", marker.display())),
            timeout_ms: 5000,
        };
        let agent = Agent::start().await;
        let mut fault = AgentFault::new(
            "db-host".into(),
            agent.client(),
            spec,
            Duration::from_secs(1),
        );
        assert_eq!(fault.kind(), "command");
        assert!(
            fault.describe().ends_with(" on db-host"),
            "{}",
            fault.describe()
        );
        let applied = fault.apply().await.expect("applied");
        assert_eq!(applied["agent"], "db-host");
        assert!(marker.exists());

        // Three leases long: only the renewals keep it.
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(marker.exists(), "renewals kept the 1 s lease alive");
        assert_eq!(agent.state.len(), 1);

        let removed = fault.remove().await.expect("removed");
        assert!(!marker.exists(), "the rollback ran");
        let renewals = removed["renewals"].as_u64().unwrap_or(0);
        assert!(renewals >= 6, "renewed every ~333 ms: {removed}");
        assert_eq!(removed["renew_failures"], 0, "{removed}");
        assert!(removed.get("warning").is_none(), "{removed}");
        assert!(agent.state.is_empty());
        // Removing twice is harmless.
        fault.remove().await.expect("a second remove is a no-op");
        agent.stop().await;
    })
    .await;
}

#[tokio::test]
async fn removing_a_fault_whose_lease_ran_out_is_not_an_error() {
    within(LIMIT, async {
        let dir = tempfile::tempdir().expect("tempdir");
        let (spec, marker) = marker_fault(dir.path());
        let agent = Agent::start().await;
        let client = agent.client();
        let spec: RemoteSpec = serde_json::from_value(spec).expect("spec");
        let info = client
            .apply(&spec, Duration::from_millis(300))
            .await
            .expect("applied");
        let gone = wait_until(Duration::from_secs(3), || !marker.exists()).await;
        assert!(gone.is_some(), "the lease ran out");
        assert!(!client.remove(&info.id).await.expect("a 404 is fine"));
        agent.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_cpu_fault_runs_a_stress_child_until_removed() {
    let _turn = crate::common::CPU_HEAVY.lock().await;
    within(LIMIT, async {
        // The stress child is `faultline stress ...` of the binary under test.
        std::env::set_var(
            faultline::faults::stress::BIN_ENV,
            env!("CARGO_BIN_EXE_faultline"),
        );
        let agent = Agent::start().await;
        let mut fault = AgentFault::new(
            "db-host".into(),
            agent.client(),
            RemoteSpec::Cpu {
                load: 0.2,
                cores: Some(1),
            },
            Duration::from_secs(2),
        );
        assert_eq!(fault.describe(), "cpu 20% on 1 core on db-host");
        let applied = fault.apply().await.expect("applied");
        let pid = applied["evidence"]["pid"]
            .as_u64()
            .expect("the child's pid");
        let proc_dir = PathBuf::from(format!("/proc/{pid}"));
        assert!(proc_dir.exists(), "the stress child runs");
        let listed = agent.client().list().await.expect("list");
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].kind, "cpu");

        fault.remove().await.expect("removed");
        let gone = wait_until(Duration::from_secs(5), || !proc_dir.exists()).await;
        assert!(gone.is_some(), "stress child {pid} still exists");
        agent.stop().await;
    })
    .await;
}

/// A client that half-closes after its request still gets the whole answer
/// (100 applies and 100 removals), and every answered apply is held and
/// every answered removal is gone: nothing applied without an answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_closed_clients_get_every_answer() {
    within(LIMIT * 2, async {
        let agent = Agent::start().await;
        let addr = agent.addr;
        let auth = format!("Bearer {TOKEN}");
        let lost = tokio::task::spawn_blocking(move || {
            let headers = [("authorization", auth.as_str())];
            let spec = json!({"spec": {
                "type": "command", "run": "true", "rollback": "true", "timeout_ms": 5000
            }});
            let body = spec.to_string();
            let mut lost = Vec::new();
            for _ in 0..100 {
                let applied = crate::common::half_closed_request(
                    addr,
                    "POST",
                    "/faults",
                    &headers,
                    body.as_bytes(),
                );
                let id = match applied {
                    Ok((201, payload)) => serde_json::from_slice::<Value>(&payload)
                        .ok()
                        .and_then(|v| v["id"].as_str().map(str::to_string)),
                    other => {
                        lost.push(format!("POST: {}", answer_text(&other)));
                        None
                    }
                };
                let Some(id) = id else { continue };
                let path = format!("/faults/{id}");
                match crate::common::half_closed_request(addr, "DELETE", &path, &headers, b"") {
                    Ok((204, _)) => {}
                    other => lost.push(format!("DELETE {id}: {}", answer_text(&other))),
                }
            }
            lost
        })
        .await
        .expect("join");
        assert!(
            lost.is_empty(),
            "{} answers lost: {:?}",
            lost.len(),
            &lost[..lost.len().min(5)]
        );
        assert!(agent.state.is_empty(), "every answered removal happened");
        agent.stop().await;
    })
    .await;
}

fn answer_text(answer: &Result<(u16, Vec<u8>), String>) -> String {
    match answer {
        Ok((status, body)) => format!("{status} {}", String::from_utf8_lossy(body)),
        Err(e) => e.clone(),
    }
}

/// After a SIGKILL of the run, `faultline rollback` removes the run's agent
/// fault at once (the agent runs its rollback), with the token read from
/// the experiment's `token_env` — never from the journal, which holds none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_sigkill_rollback_removes_the_agent_fault_with_the_token_from_the_environment() {
    within(Duration::from_secs(60), async {
        let agent = Agent::start().await;
        let dir = tempfile::tempdir().expect("temp dir");
        let marker = dir.path().join("marker");
        let yaml = format!(
            "name: remote\ntarget: {{ demo: {{}} }}\nagents:\n  db: {{ url: \"{url}\", token_env: FAULTLINE_TEST_AGENT_TOKEN }}\nload:\n  rate: 5\n  requests:\n    - {{ path: / }}\nphases:\n  - name: fault\n    duration: 60s\n    inject:\n      - {{ type: command, host: db, run: \"touch '{m}'\", rollback: \"rm '{m}'\" }}\n",
            url = agent.url(""),
            m = marker.display()
        );
        let file = dir.path().join("e.yaml");
        std::fs::write(&file, yaml).expect("write experiment");
        let bin = env!("CARGO_BIN_EXE_faultline");
        let mut run = std::process::Command::new(bin)
            .arg("run")
            .arg(&file)
            .arg("--out")
            .arg(dir.path())
            .env("FAULTLINE_TEST_AGENT_TOKEN", TOKEN)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start faultline run");
        let journal = dir.path().join("remote/rollback.json");
        let listed = wait_until(Duration::from_secs(30), || {
            std::fs::read_to_string(&journal).is_ok_and(|t| t.contains("remove_agent_fault"))
        })
        .await;
        assert!(listed.is_some(), "the agent fault was never journaled");
        assert!(marker.exists(), "the agent applied the fault");
        let text = std::fs::read_to_string(&journal).expect("journal");
        assert!(!text.contains(TOKEN), "a token is never written: {text}");
        let _ = run.kill(); // SIGKILL
        let _ = run.wait();
        assert_eq!(agent.state.list().len(), 1, "SIGKILL: the agent still holds it");

        let rollback = |with_token: bool| {
            let mut cmd = std::process::Command::new(bin);
            cmd.arg("rollback").arg("--journal").arg(&journal);
            cmd.env_remove("FAULTLINE_TEST_AGENT_TOKEN");
            if with_token {
                cmd.env("FAULTLINE_TEST_AGENT_TOKEN", TOKEN);
            }
            let out = cmd.output().expect("run rollback");
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            (out.status.code(), text)
        };
        let (code, text) = rollback(false);
        assert_eq!(code, Some(5), "{text}");
        assert!(text.contains("set FAULTLINE_TEST_AGENT_TOKEN"), "{text}");
        assert!(journal.exists(), "what could not be undone stays listed");

        let (code, text) = rollback(true);
        assert_eq!(code, Some(0), "{text}");
        assert!(text.contains("removed fault `"), "{text}");
        assert!(agent.state.list().is_empty(), "the agent let go of it");
        assert!(!marker.exists(), "the agent ran the fault's rollback");
        assert!(!journal.exists());
        agent.stop().await;
    })
    .await;
}

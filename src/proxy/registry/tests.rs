//! The registry: addresses, names, seeds, and stopping one proxy.

use super::*;

const LIMIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn addresses_resolve_from_literals_names_and_go_style_ports() {
    tokio::time::timeout(LIMIT, async {
        let cases = [
            ("127.0.0.1:80", "127.0.0.1:80"),
            ("[::1]:80", "[::1]:80"),
            (":8474", "0.0.0.0:8474"),
        ];
        for (input, want) in cases {
            let got = resolve("listen", input).await.expect(input);
            assert_eq!(got.to_string(), want, "{input}");
        }
        let local = resolve("listen", "localhost:8080")
            .await
            .expect("localhost");
        assert!(local.ip().is_loopback() && local.port() == 8080, "{local}");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn malformed_addresses_are_refused_with_the_field_and_value() {
    tokio::time::timeout(LIMIT, async {
        for input in ["", "localhost", "127.0.0.1:notaport", "127.0.0.1:99999"] {
            let err = resolve("upstream", input)
                .await
                .expect_err(input)
                .to_string();
            assert!(err.starts_with(&format!("upstream `{input}`")), "{err}");
        }
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn deleting_a_proxy_stops_only_that_one_and_frees_its_port() {
    tokio::time::timeout(LIMIT, async {
        let upstream = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let upstream = upstream.local_addr().expect("addr").to_string();
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        let registry = ProxyRegistry::new(1, shutdown.clone(), tracker.clone());
        let def = |name: &str| ProxyDef {
            name: name.into(),
            listen: "127.0.0.1:0".into(),
            upstream: upstream.clone(),
            enabled: true,
            mode: ProxyMode::Tcp,
        };
        let a = registry.create(def("a")).await.expect("a starts");
        let b = registry.create(def("b")).await.expect("b starts");
        assert!(matches!(
            registry.create(def("a")).await,
            Err(RegistryError::Exists(_))
        ));

        registry.delete("a").await.expect("delete a");
        assert!(
            tokio::net::TcpStream::connect(a.listen).await.is_err(),
            "a's port is free"
        );
        assert!(
            tokio::net::TcpStream::connect(b.listen).await.is_ok(),
            "b still runs"
        );
        assert!(matches!(
            registry.delete("a").await,
            Err(RegistryError::NotFound(_))
        ));
        // The same port can be bound again at once.
        let again = ProxyDef {
            listen: a.listen.to_string(),
            ..def("a")
        };
        assert_eq!(
            registry.create(again).await.expect("rebind").listen,
            a.listen
        );

        shutdown.cancel();
        registry.shutdown().await;
        tracker.close();
        tracker.wait().await;
        assert!(registry.list().await.is_empty());
        assert!(
            tokio::net::TcpStream::connect(b.listen).await.is_err(),
            "b stopped"
        );
    })
    .await
    .expect("test timed out");
}

#[test]
fn names_must_be_addressable_in_a_path() {
    assert!(check_name("redis-1").is_ok());
    assert!(check_name("my db").is_ok());
    assert!(check_name("").is_err());
    assert!(check_name("a/b").is_err());
    assert!(check_name(&"n".repeat(255)).is_ok());
    assert!(matches!(
        check_name(&"n".repeat(256)),
        Err(RegistryError::NameTooLong(256))
    ));
}

#[test]
fn seeds_differ_per_name_and_are_stable() {
    assert_eq!(fnv1a("payments"), fnv1a("payments"));
    assert_ne!(fnv1a("payments"), fnv1a("frontend"));
    // The published FNV-1a test vector, so the value never drifts.
    assert_eq!(fnv1a("a"), 0xaf63_dc4c_8601_ec8c);
}

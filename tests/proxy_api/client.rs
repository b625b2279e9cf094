//! The `toxiproxy_rust` client against faultline, exactly as it drives Toxiproxy.

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use faultline::proxy::api::AdminAuth;
use toxiproxy_rust::client::Client;
use toxiproxy_rust::proxy::ProxyPack;

use super::{http_get, median_latency, within, Admin, LIMIT};
use crate::common::TestBed;

#[test]
fn the_toxiproxy_rust_client_drives_faultline_unchanged() {
    within(LIMIT, || {
        let admin = Admin::start(AdminAuth::None);
        let bed = admin.bed(|| TestBed::always(200));
        let client = Client::new(admin.addr);

        let version = client.version().expect("version");
        assert!(version.contains(env!("CARGO_PKG_VERSION")), "{version}");
        assert!(client.is_running());

        let proxies = client
            .populate(vec![ProxyPack::new(
                "web".into(),
                "127.0.0.1:0".into(),
                bed.addr().to_string(),
            )])
            .expect("populate");
        assert_eq!(proxies.len(), 1);
        let listen: SocketAddr = proxies[0].proxy_pack.listen.parse().expect("bound address");
        assert_ne!(listen.port(), 0, "the bound port is reported");

        let proxy = client.find_proxy("web").expect("find_proxy");
        assert_eq!(proxy.proxy_pack.upstream, bed.addr().to_string());
        assert!(proxy.proxy_pack.enabled);
        assert!(client.all().expect("all").contains_key("web"));

        let baseline = median_latency(listen, 11);
        proxy.with_latency("downstream".into(), 100, 0, 1.0);
        let toxics = proxy.toxics().expect("toxics");
        assert_eq!(toxics.len(), 1);
        assert_eq!(toxics[0].name, "latency_downstream");
        let slowed = median_latency(listen, 11);
        let added = slowed.saturating_sub(baseline);
        assert!(
            added >= Duration::from_millis(90) && added <= Duration::from_millis(110),
            "a 100 ms latency toxic adds 100 ms ± 10 ms at p50: baseline {baseline:?}, with the toxic {slowed:?}"
        );

        proxy.delete_all_toxics().expect("delete_all_toxics");
        assert!(proxy.toxics().expect("toxics").is_empty());
        let after = median_latency(listen, 11);
        assert!(
            after < baseline + Duration::from_millis(50),
            "latency gone: baseline {baseline:?}, after {after:?}"
        );

        proxy.disable().expect("disable");
        assert!(!client.find_proxy("web").expect("find").proxy_pack.enabled);
        assert!(
            http_get(listen).is_err(),
            "a disabled proxy refuses connections"
        );
        proxy.enable().expect("enable");
        assert_eq!(http_get(listen), Ok(200));

        proxy.with_latency("upstream".into(), 10, 0, 1.0);
        proxy.disable().expect("disable");
        client.reset().expect("reset");
        let after_reset = client.find_proxy("web").expect("find");
        assert!(after_reset.proxy_pack.enabled, "reset enables every proxy");
        assert!(
            after_reset.proxy_pack.toxics.is_empty(),
            "reset removes every toxic"
        );
        assert_eq!(http_get(listen), Ok(200));

        after_reset.delete().expect("delete");
        assert!(client.find_proxy("web").is_err(), "gone after delete");
        assert!(
            TcpStream::connect_timeout(&listen, Duration::from_secs(1)).is_err(),
            "the port is closed once DELETE has answered"
        );
    });
}

//! Verified domains: claimed by an Admin, verified by a TXT record served by a
//! real DNS server in the test (hickory's), or by the operator; one
//! Organization per verified domain; every change audited.

use std::{net::SocketAddr, sync::Arc};

use app::server::{actor::Actor, dns::Dns, domains};
use hickory_server::{
    net::runtime::TokioRuntimeProvider,
    proto::rr::{
        rdata::{SOA, TXT},
        LowerName, Name, RData, Record,
    },
    store::in_memory::InMemoryZoneHandler,
    zone_handler::{AxfrPolicy, Catalog, ZoneType},
    Server,
};
use http::StatusCode;
use serde_json::json;

use crate::common::TestApp;

crate::on_both_databases!(
    domains_are_verified_by_their_txt_record_for_one_organization_only,
    two_organizations_verifying_one_domain_at_once_end_with_one_owner,
);

/// An authoritative DNS server on loopback for one zone, whose TXT records the
/// test publishes as it goes.
struct DnsServer {
    address: SocketAddr,
    zone: Arc<InMemoryZoneHandler<TokioRuntimeProvider>>,
    _server: Server<Catalog>,
}

impl DnsServer {
    async fn start(zone: &str) -> Self {
        let origin = Name::from_ascii(format!("{zone}.")).unwrap();
        let mut handler = InMemoryZoneHandler::empty(origin.clone(), ZoneType::Primary, AxfrPolicy::Deny);
        let soa = SOA::new(origin.clone(), origin.clone(), 1, 3600, 600, 86400, 60);
        handler.upsert_mut(Record::from_rdata(origin.clone(), 60, RData::SOA(soa)), 1);
        let handler = Arc::new(handler);
        let mut catalog = Catalog::new();
        catalog.upsert(LowerName::new(&origin), vec![handler.clone()]);
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let address = socket.local_addr().unwrap();
        let mut server = Server::new(catalog);
        server.register_socket(socket);
        Self { address, zone: handler, _server: server }
    }

    async fn publish_txt(&self, name: &str, value: &str) {
        let name = Name::from_ascii(format!("{name}.")).unwrap();
        self.zone
            .upsert(Record::from_rdata(name, 60, RData::TXT(TXT::new(vec![value.to_string()]))), 1)
            .await;
    }
}

async fn domains_are_verified_by_their_txt_record_for_one_organization_only(mut app: TestApp) {
    let dns = DnsServer::start("engines.example").await;
    app.state = app.state.clone().with_dns(Some(Dns::new(Some(dns.address)).unwrap()));
    app.router = server::router(app.state.clone(), false);
    let mut ada = app.organization("ada@example.com", "Engines").await;
    let claimed = ada.admin.call("/_fn/settings/claim_domain", &[("domain", " Engines.Example. ")]).await;
    assert_eq!(claimed.status, StatusCode::OK, "{}", claimed.body);
    let claimed = claimed.json();
    assert_eq!(claimed["domain"], "engines.example");
    assert_eq!(claimed["record_name"], "_chancery-challenge.engines.example");
    let value = claimed["record_value"].as_str().unwrap().to_string();
    assert!(value.starts_with("chancery-domain-verification="));
    let again = ada.admin.call("/_fn/settings/claim_domain", &[("domain", "engines.example")]).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    let bad = ada.admin.call("/_fn/settings/claim_domain", &[("domain", "not a domain")]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    // Not published yet, or with another value: not verified, and told where it goes.
    let missing = ada.admin.call("/_fn/settings/verify_domain", &[("domain", "engines.example")]).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST, "{}", missing.body);
    dns.publish_txt("_chancery-challenge.engines.example", "chancery-domain-verification=nope").await;
    let refused = ada.admin.call("/_fn/settings/verify_domain", &[("domain", "engines.example")]).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert!(refused.body.contains("_chancery-challenge.engines.example"), "{}", refused.body);

    dns.publish_txt("_chancery-challenge.engines.example", &value).await;
    let verified = ada.admin.call("/_fn/settings/verify_domain", &[("domain", "engines.example")]).await;
    assert_eq!(verified.status, StatusCode::OK, "{}", verified.body);
    assert_eq!(verified.json()["verified_by"], "dns");

    // Another Organization can neither claim nor verify it, even by the operator's hand.
    let mut bob = app.organization("bob@example.com", "Rivals").await;
    let taken = bob.admin.call("/_fn/settings/claim_domain", &[("domain", "engines.example")]).await;
    assert_eq!(taken.status, StatusCode::CONFLICT, "{}", taken.body);
    assert!(taken.body.contains("verified by another Organization"), "{}", taken.body);
    let forced = domains::verify_by_operator(&app.db, &Actor::Operator, bob.id, "engines.example").await;
    assert_eq!(forced.unwrap_err().status(), 409);
    // The operator verifies a domain without DNS.
    let offline =
        domains::verify_by_operator(&app.db, &Actor::Operator, bob.id, "rivals.internal").await.unwrap();
    assert_eq!(offline.verified_by.as_deref(), Some("operator"));
    let listed = bob.admin.call("/_fn/settings/domains", &[]).await.json();
    assert_eq!(listed.as_array().unwrap().len(), 1);

    // Only Admins see or change domains.
    let (mut mia, _) = app.join(&mut ada, "mia@example.com", &["member"]).await;
    for (path, form) in [
        ("/_fn/settings/domains", vec![]),
        ("/_fn/settings/claim_domain", vec![("domain", "mia.example")]),
        ("/_fn/settings/remove_domain", vec![("domain", "engines.example")]),
    ] {
        let refused = mia.call(path, &form).await;
        assert!(
            refused.status == StatusCode::FORBIDDEN || refused.status == StatusCode::NOT_FOUND,
            "{path}: {}",
            refused.status
        );
    }

    // Removal frees the domain for another Organization.
    let removed = ada.admin.call("/_fn/settings/remove_domain", &[("domain", "engines.example")]).await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.body);
    let now_free = bob.admin.call("/_fn/settings/claim_domain", &[("domain", "engines.example")]).await;
    assert_eq!(now_free.status, StatusCode::OK, "{}", now_free.body);

    // The same through the Admin API.
    let key = app.admin_key(&ada, "ada@example.com").await;
    let claimed =
        app.api("POST", "/api/admin/domains", &key, Some(json!({ "domain": "api.engines.example" }))).await;
    assert_eq!(claimed.status, StatusCode::CREATED, "{}", claimed.body);
    let value = claimed.json()["record_value"].as_str().unwrap().to_string();
    let early = app.api("POST", "/api/admin/domains/api.engines.example/verify", &key, None).await;
    assert_eq!(early.status, StatusCode::BAD_REQUEST, "{}", early.body);
    dns.publish_txt("_chancery-challenge.api.engines.example", &value).await;
    let verified = app.api("POST", "/api/admin/domains/api.engines.example/verify", &key, None).await;
    assert_eq!(verified.status, StatusCode::OK, "{}", verified.body);
    assert_eq!(verified.json()["verified_by"], "dns");
    let listed = app.api("GET", "/api/admin/domains", &key, None).await.json();
    assert_eq!(listed["data"][0]["domain"], "api.engines.example");
    let unknown = app.api("POST", "/api/admin/domains/elsewhere.example/verify", &key, None).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let removed = app.api("DELETE", "/api/admin/domains/api.engines.example", &key, None).await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);

    let actions: Vec<String> = app.audit_trail().await.into_iter().map(|(action, ..)| action).collect();
    for expected in ["organization.domain_claim", "organization.domain_verify", "organization.domain_remove"]
    {
        assert!(actions.iter().any(|a| a == expected), "{expected} in {actions:?}");
    }
    let verifications = actions.iter().filter(|a| *a == "organization.domain_verify").count();
    assert_eq!(verifications, 3, "by DNS twice, by the operator once");
}

/// Both publish their record and verify at the same moment: one owns the
/// domain, the other is told it is taken; never an error, never two owners.
async fn two_organizations_verifying_one_domain_at_once_end_with_one_owner(mut app: TestApp) {
    let dns = DnsServer::start("race.example").await;
    app.state = app.state.clone().with_dns(Some(Dns::new(Some(dns.address)).unwrap()));
    app.router = server::router(app.state.clone(), false);
    let mut ada = app.organization("ada@example.com", "Engines").await;
    let mut bob = app.organization("bob@example.com", "Rivals").await;
    for round in 0..10 {
        let domain = format!("d{round}.race.example");
        for org in [&mut ada, &mut bob] {
            let claimed = org.admin.call("/_fn/settings/claim_domain", &[("domain", domain.as_str())]).await;
            assert_eq!(claimed.status, StatusCode::OK, "{}", claimed.body);
            let value = claimed.json()["record_value"].as_str().unwrap().to_string();
            dns.publish_txt(&format!("_chancery-challenge.{domain}"), &value).await;
        }
        let form = [("domain", domain.as_str())];
        let (first, second) = tokio::join!(
            ada.admin.call("/_fn/settings/verify_domain", &form),
            bob.admin.call("/_fn/settings/verify_domain", &form)
        );
        let mut statuses = [first.status, second.status];
        statuses.sort();
        assert_eq!(
            statuses,
            [StatusCode::OK, StatusCode::CONFLICT],
            "round {round}: {} / {}",
            first.body,
            second.body
        );
        let (owners,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM org_domains WHERE domain = $1 AND verified_at IS NOT NULL")
                .bind(&domain)
                .fetch_one(app.db.pool())
                .await
                .unwrap();
        assert_eq!(owners, 1, "round {round}");
    }
}

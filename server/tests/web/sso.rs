//! Single sign-on with OpenID Connect against an identity provider served by
//! the test over HTTP (discovery, JWKS, token endpoint checking the client's
//! secret and PKCE), whose ID tokens the test shapes: the happy path makes a
//! member, and each forged or misdirected answer is refused and audited.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use app::server::{
    actor::{self, Actor},
    domains, sso,
};
use axum::{
    extract::State,
    routing::{get, post},
    Form, Json, Router,
};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD as BASE64, Engine};
use ed25519_dalek::{Signer, SigningKey};
use http::{HeaderMap, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::common::{Client, Org, TestApp, TestResponse, PASSWORD};

crate::on_both_databases!(
    a_person_of_a_verified_domain_signs_in_and_joins_with_the_default_role,
    forged_or_misdirected_answers_are_refused_and_audited,
    only_admins_configure_a_provider_whose_secret_is_never_shown,
    the_providers_groups_claim_decides_a_members_groups_at_each_log_in,
    required_sso_refuses_covered_passwords_and_ends_their_password_sessions,
    requiring_sso_needs_a_provider_a_domain_and_an_admin_who_used_it,
);

const CLIENT_ID: &str = "chancery-test";
const CLIENT_SECRET: &str = "idp-client-secret-0123456789";

/// What the provider puts in the token it gives for a code, and how it signs it.
#[derive(Clone)]
struct Grant {
    claims: Value,
    header: Value,
    key: SigningKey,
    code_challenge: String,
}

/// An OpenID Provider on loopback: the person "logs in" when the test calls
/// `authorize`, which answers like a provider's log-in page would.
struct FakeIdp {
    issuer: String,
    key: SigningKey,
    grants: Mutex<HashMap<String, Grant>>,
    /// Codes exchanged, and how many of those exchanges were refused.
    exchanges: Mutex<(u32, u32)>,
}

impl FakeIdp {
    async fn start() -> Arc<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address: SocketAddr = listener.local_addr().unwrap();
        let idp = Arc::new(Self {
            issuer: format!("http://{address}"),
            key: random_key(),
            grants: Mutex::default(),
            exchanges: Mutex::default(),
        });
        let routes = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/token", post(token))
            .with_state(idp.clone());
        tokio::spawn(async move { axum::serve(listener, routes).await });
        idp
    }

    /// The person logs in at the provider, which sends them back to Chancery
    /// with a code for an ID token of `claims` (over the right iss, aud, nonce,
    /// exp...), shaped further by `forge`. Returns the callback's path and query.
    fn authorize(&self, location: &str, claims: Value, forge: impl FnOnce(&mut Grant)) -> String {
        let url = url::Url::parse(location).unwrap();
        assert!(
            location.starts_with(&format!("{}/authorize?", self.issuer)),
            "sent to the provider: {location}"
        );
        let query: HashMap<String, String> = url.query_pairs().into_owned().collect();
        assert_eq!(query["client_id"], CLIENT_ID);
        assert_eq!(query["response_type"], "code");
        assert_eq!(query["code_challenge_method"], "S256", "PKCE");
        assert!(query["scope"].split(' ').any(|s| s == "openid"));
        let now = chrono::Utc::now().timestamp();
        let mut token = json!({
            "iss": self.issuer, "aud": CLIENT_ID, "sub": format!("sub-{}", uuid::Uuid::new_v4()),
            "iat": now, "exp": now + 300, "nonce": query["nonce"],
        });
        token.as_object_mut().unwrap().extend(claims.as_object().unwrap().clone());
        let mut grant = Grant {
            claims: token,
            header: json!({ "alg": "EdDSA", "kid": "k1" }),
            key: self.key.clone(),
            code_challenge: query["code_challenge"].clone(),
        };
        forge(&mut grant);
        let code = uuid::Uuid::new_v4().to_string();
        self.grants.lock().unwrap().insert(code.clone(), grant);
        let back = url::Url::parse(&query["redirect_uri"]).unwrap();
        format!("{}?code={code}&state={}", back.path(), query["state"])
    }

    fn exchanges(&self) -> (u32, u32) {
        *self.exchanges.lock().unwrap()
    }
}

fn random_key() -> SigningKey {
    SigningKey::from_bytes(&Sha256::digest(uuid::Uuid::new_v4().as_bytes()).into())
}

fn jwt(header: &Value, claims: &Value, key: &SigningKey) -> String {
    let signing_input =
        format!("{}.{}", BASE64.encode(header.to_string()), BASE64.encode(claims.to_string()));
    let signature =
        if header["alg"] == "none" { Vec::new() } else { key.sign(signing_input.as_bytes()).to_vec() };
    format!("{signing_input}.{}", BASE64.encode(signature))
}

async fn discovery(State(idp): State<Arc<FakeIdp>>) -> Json<Value> {
    let issuer = &idp.issuer;
    Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["EdDSA"],
        "code_challenge_methods_supported": ["S256"],
    }))
}

async fn jwks(State(idp): State<Arc<FakeIdp>>) -> Json<Value> {
    let x = BASE64.encode(idp.key.verifying_key().to_bytes());
    Json(
        json!({ "keys": [{ "kty": "OKP", "crv": "Ed25519", "x": x, "kid": "k1", "use": "sig", "alg": "EdDSA" }] }),
    )
}

/// The token endpoint: the client's secret (HTTP Basic), a code given once,
/// and the PKCE verifier of its challenge.
async fn token(
    State(idp): State<Arc<FakeIdp>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Json<Value>, (StatusCode, Json<Value>)> {
    let refuse = |error: &str| {
        idp.exchanges.lock().unwrap().1 += 1;
        Err((StatusCode::BAD_REQUEST, Json(json!({ "error": error }))))
    };
    idp.exchanges.lock().unwrap().0 += 1;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(basic.as_str()) {
        return refuse("invalid_client");
    }
    let Some(grant) = form.get("code").and_then(|code| idp.grants.lock().unwrap().remove(code)) else {
        return refuse("invalid_grant");
    };
    let verifier = form.get("code_verifier").cloned().unwrap_or_default();
    if BASE64.encode(Sha256::digest(verifier.as_bytes())) != grant.code_challenge {
        return refuse("invalid_grant");
    }
    let id_token = jwt(&grant.header, &grant.claims, &grant.key);
    Ok(Json(
        json!({ "access_token": "at-1", "token_type": "Bearer", "expires_in": 300, "id_token": id_token }),
    ))
}

/// The Settings form's save of a provider, as `browser`.
async fn save_oidc(browser: &mut Client<'_>, issuer: &str, secret: &str, role: &str) -> TestResponse {
    save_oidc_with_groups(browser, issuer, secret, role, "").await
}

async fn save_oidc_with_groups(
    browser: &mut Client<'_>,
    issuer: &str,
    secret: &str,
    role: &str,
    groups_claim: &str,
) -> TestResponse {
    let form = [
        ("issuer", issuer),
        ("client_id", CLIENT_ID),
        ("client_secret", secret),
        ("default_role", role),
        ("groups_claim", groups_claim),
        ("enabled", "on"),
    ];
    browser.call("/_fn/settings/save_oidc", &form).await
}

/// `org` verifies `acme.test` (the operator's override) and turns on `idp`.
async fn provider_for(app: &TestApp, org: &mut Org<'_>, idp: &FakeIdp) {
    domains::verify_by_operator(&app.db, &Actor::Operator, org.id, "acme.test").await.unwrap();
    let saved = save_oidc(&mut org.admin, &idp.issuer, CLIENT_SECRET, "member").await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
}

/// A whole single sign-on as `email` in a new browser, the ID token also carrying `claims`.
async fn sso_log_in<'a>(app: &'a TestApp, idp: &FakeIdp, email: &str, claims: Value) -> Client<'a> {
    let mut browser = app.client("198.51.100.70");
    let location = leave_for_provider(&mut browser, email).await;
    let mut claims = claims;
    claims["email"] = json!(email);
    let callback = idp.authorize(&location, claims, |_| {});
    assert_eq!(browser.get(&callback).await.header("location"), Some("/admin"));
    browser
}

/// Starts single sign-on as `email` in `browser`: where the provider is asked.
async fn leave_for_provider(browser: &mut Client<'_>, email: &str) -> String {
    let started = browser.call("/_fn/sso/start", &[("email", email)]).await;
    assert!(started.status.is_success() || started.status.is_redirection(), "{}", started.body);
    started.header("location").expect("sent to the provider").to_string()
}

async fn a_person_of_a_verified_domain_signs_in_and_joins_with_the_default_role(app: TestApp) {
    let idp = FakeIdp::start().await;
    let mut org = app.organization("ada@acme.test", "Acme").await;
    provider_for(&app, &mut org, &idp).await;

    // A newcomer: no account yet.
    let mut grace = app.client("198.51.100.40");
    let location = leave_for_provider(&mut grace, "Grace@Acme.test").await;
    assert!(location.contains("login_hint=Grace%40Acme.test"), "{location}");
    let callback = idp.authorize(
        &location,
        json!({ "email": "grace@acme.test", "email_verified": true, "name": "Grace Hopper" }),
        |_| {},
    );
    let back = grace.get(&callback).await;
    assert_eq!(back.status, StatusCode::SEE_OTHER, "{}", back.body);
    assert_eq!(back.header("location"), Some("/admin"));
    let overview = grace.overview().await.json();
    assert_eq!(overview["user"]["email"], "grace@acme.test");
    assert_eq!(overview["user"]["name"], "Grace Hopper");
    assert_eq!(overview["org"]["id"], org.id.to_string());
    assert_eq!(overview["org"]["roles"], json!(["member"]), "the default role");
    assert_eq!(idp.exchanges(), (1, 0));

    // Her account has no password: the password form cannot open it.
    let refused = app.client("198.51.100.41").log_in("grace@acme.test", PASSWORD).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    let (hash,): (String,) =
        sqlx::query_as("SELECT password_hash FROM users WHERE email_normalized = 'grace@acme.test'")
            .fetch_one(app.db.pool())
            .await
            .unwrap();
    assert!(!hash.starts_with("$argon2"), "no password was made up for her");

    // The second time she is let in as the member she is; nothing joins twice.
    let mut again = app.client("198.51.100.40");
    let location = leave_for_provider(&mut again, "grace@acme.test").await;
    let callback =
        idp.authorize(&location, json!({ "email": "grace@acme.test", "email_verified": true }), |_| {});
    assert_eq!(again.get(&callback).await.header("location"), Some("/admin"));
    assert_eq!(again.overview().await.json()["org"]["roles"], json!(["member"]));

    // The Admin, who has a password, may use either.
    let mut ada = app.client("203.0.113.9");
    let location = leave_for_provider(&mut ada, "ada@acme.test").await;
    let callback = idp.authorize(&location, json!({ "email": "ada@acme.test" }), |_| {});
    assert_eq!(ada.get(&callback).await.header("location"), Some("/admin"));
    assert_eq!(ada.overview().await.json()["org"]["roles"], json!(["admin"]));
    assert_eq!(app.client("203.0.113.9").log_in("ada@acme.test", PASSWORD).await.status, StatusCode::OK);

    let trail: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT action, actor_label, details FROM audit_events WHERE org_id = $1 AND (action LIKE '%oidc%' OR action = 'user.log_in') ORDER BY id",
    )
    .bind(org.id)
    .fetch_all(app.db.pool())
    .await
    .unwrap();
    let actions: Vec<&str> = trail.iter().map(|(action, _, _)| action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "organization.oidc_update",
            "organization.oidc_member_join",
            "user.log_in",
            "user.log_in",
            "user.log_in",
            "user.log_in"
        ],
        "{trail:?}"
    );
    assert_eq!(trail[1].1, "grace@acme.test");
    assert_eq!(trail[2].2.as_deref(), Some(r#"{"via":"oidc"}"#));
    assert_eq!(trail[5].2.as_deref(), Some(r#"{"via":"password"}"#));

    // Elsewhere: a domain nobody verified, or a provider that is off.
    let mut stranger = app.client("198.51.100.50");
    let none = stranger.call("/_fn/sso/start", &[("email", "eve@elsewhere.test")]).await;
    assert_eq!(none.status, StatusCode::BAD_REQUEST);
    assert!(none.body.contains("not set up for elsewhere.test"), "{}", none.body);
}

async fn forged_or_misdirected_answers_are_refused_and_audited(app: TestApp) {
    let idp = FakeIdp::start().await;
    let mut org = app.organization("ada@acme.test", "Acme").await;
    provider_for(&app, &mut org, &idp).await;
    let (other_org, _) = {
        let other = app.organization("bob@rival.test", "Rival").await;
        domains::verify_by_operator(&app.db, &Actor::Operator, other.id, "rival.test").await.unwrap();
        (other.id, ())
    };
    let person = || json!({ "email": "grace@acme.test", "email_verified": true });
    type Forge = Box<dyn FnOnce(&mut Grant)>;
    let cases: Vec<(&str, Value, Forge, &str)> = vec![
        ("another nonce", person(), Box::new(|g| g.claims["nonce"] = json!("replayed-nonce")), "nonce"),
        ("another audience", person(), Box::new(|g| g.claims["aud"] = json!("someone-else")), "audience"),
        ("another issuer", person(), Box::new(|g| g.claims["iss"] = json!("http://evil.test")), "issuer"),
        (
            "expired",
            person(),
            Box::new(|g| g.claims["exp"] = json!(chrono::Utc::now().timestamp() - 3600)),
            "xpired",
        ),
        ("signed by another key", person(), Box::new(|g| g.key = random_key()), "Signature"),
        ("unsigned", person(), Box::new(|g| g.header["alg"] = json!("none")), "ID token"),
        (
            "an address of another Organization",
            json!({ "email": "bob@rival.test" }),
            Box::new(|_| {}),
            "not in a domain this Organization verified",
        ),
        (
            "an unverified address",
            json!({ "email": "grace@acme.test", "email_verified": false }),
            Box::new(|_| {}),
            "not verified",
        ),
        ("no address", json!({}), Box::new(|_| {}), "no email claim"),
    ];
    for (case, claims, forge, reason) in cases {
        let mut browser = app.client("198.51.100.60");
        let location = leave_for_provider(&mut browser, "grace@acme.test").await;
        let callback = idp.authorize(&location, claims, forge);
        let back = browser.get(&callback).await;
        assert_eq!(back.header("location"), Some("/login"), "{case}: sent back to log in");
        let notice = browser.call("/_fn/sso/notice", &[]).await.json();
        assert!(
            notice
                .as_str()
                .is_some_and(|n| n.starts_with("Your identity provider") || n.starts_with("Single sign-on")),
            "{case}: {notice}"
        );
        assert_eq!(browser.landing().await.json(), json!("LogIn"), "{case}: not signed in");
        let (details,): (String,) = sqlx::query_as(
            "SELECT details FROM audit_events WHERE action = 'organization.oidc_login_refused' AND org_id = $1 ORDER BY id DESC LIMIT 1",
        )
        .bind(org.id)
        .fetch_one(app.db.pool())
        .await
        .unwrap();
        assert!(details.contains(reason), "{case}: the audit says why ({reason}): {details}");
    }

    // A tampered state, a code used twice, a callback this browser never asked for.
    let mut browser = app.client("198.51.100.61");
    let location = leave_for_provider(&mut browser, "grace@acme.test").await;
    let callback = idp.authorize(&location, person(), |_| {});
    let tampered = callback.replace("&state=", "&state=x");
    assert_eq!(browser.get(&tampered).await.header("location"), Some("/login"));
    assert_eq!(browser.get(&callback).await.header("location"), Some("/login"), "the attempt is spent");
    let mut thief = app.client("192.0.2.99");
    assert_eq!(thief.get(&callback).await.header("location"), Some("/login"), "another browser");
    assert_eq!(
        thief
            .call("/_fn/sso/notice", &[])
            .await
            .json()
            .as_str()
            .map(|n| n.contains("not started in this browser")),
        Some(true)
    );

    let refused: Vec<(Option<String>, String)> = sqlx::query_as(
        "SELECT org_id, actor_label FROM audit_events WHERE action = 'organization.oidc_login_refused' ORDER BY id",
    )
    .fetch_all(app.db.pool())
    .await
    .unwrap();
    assert_eq!(refused.len(), 10, "nine forged answers and one tampered state: {refused:?}");
    assert!(refused.iter().all(|(org_id, actor)| org_id.as_deref() == Some(&org.id.to_string())
        && actor == "someone signing in as grace@acme.test"));
    assert_eq!(app.count("users").await, 2, "no account was made for anyone");
    let members: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM org_members WHERE org_id = $1")
        .bind(other_org)
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    assert_eq!(members.0, 1, "nobody joined the other Organization");
}

async fn only_admins_configure_a_provider_whose_secret_is_never_shown(app: TestApp) {
    let idp = FakeIdp::start().await;
    let mut org = app.organization("ada@acme.test", "Acme").await;
    let (mut member, _) = app.join(&mut org, "mel@acme.test", &["member", "billing"]).await;

    assert_eq!(
        save_oidc(&mut member, &idp.issuer, CLIENT_SECRET, "member").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(member.call("/_fn/settings/oidc", &[]).await.status, StatusCode::NOT_FOUND);

    for (issuer, secret, role, field) in [
        ("http://idp.example.com", CLIENT_SECRET, "member", "issuer"),
        ("http://127.0.0.1:9/", CLIENT_SECRET, "member", "issuer"),
        (idp.issuer.as_str(), CLIENT_SECRET, "admin", "default_role"),
        (idp.issuer.as_str(), "", "member", "client_secret"),
    ] {
        let refused = save_oidc(&mut org.admin, issuer, secret, role).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{issuer} {role}: {}", refused.body);
        assert!(refused.body.contains(field), "{field}: {}", refused.body);
    }

    assert_eq!(save_oidc(&mut org.admin, &idp.issuer, CLIENT_SECRET, "billing").await.status, StatusCode::OK);
    // Saved again without a secret: the first one stays.
    assert_eq!(save_oidc(&mut org.admin, &idp.issuer, "", "billing").await.status, StatusCode::OK);
    let panel = org.admin.call("/_fn/settings/oidc", &[]).await;
    assert_eq!(panel.json()["settings"]["issuer"], idp.issuer.as_str());
    assert_eq!(panel.json()["redirect_uri"], "http://chancery.test/sso/oidc/callback");
    assert!(!panel.body.contains(CLIENT_SECRET), "never shown again");
    let (sealed,): (String,) =
        sqlx::query_as("SELECT client_secret_sealed FROM org_oidc").fetch_one(app.db.pool()).await.unwrap();
    assert!(!sealed.contains(CLIENT_SECRET) && sealed.starts_with("v1."), "sealed at rest: {sealed}");

    // The secret kept works: someone signs in, as Billing.
    domains::verify_by_operator(&app.db, &Actor::Operator, org.id, "acme.test").await.unwrap();
    let mut grace = app.client("198.51.100.40");
    let location = leave_for_provider(&mut grace, "grace@acme.test").await;
    let callback = idp.authorize(&location, json!({ "email": "grace@acme.test" }), |_| {});
    assert_eq!(grace.get(&callback).await.header("location"), Some("/admin"));
    assert_eq!(grace.overview().await.json()["org"]["roles"], json!(["billing"]));

    // Moved to another Organization's row, the sealed secret does not open.
    let rival = app.organization("bob@rival.test", "Rival").await;
    sqlx::query("INSERT INTO org_oidc (org_id, issuer, client_id, client_secret_sealed, default_role, groups_claim, enabled_at, updated_at) SELECT $1, issuer, client_id, client_secret_sealed, default_role, groups_claim, enabled_at, updated_at FROM org_oidc WHERE org_id = $2")
        .bind(rival.id)
        .bind(org.id)
        .execute(app.db.pool())
        .await
        .unwrap();
    domains::verify_by_operator(&app.db, &Actor::Operator, rival.id, "rival.test").await.unwrap();
    let mut carl = app.client("198.51.100.42");
    let location = leave_for_provider(&mut carl, "carl@rival.test").await;
    let callback = idp.authorize(&location, json!({ "email": "carl@rival.test" }), |_| {});
    assert_eq!(carl.get(&callback).await.header("location"), Some("/login"));
    assert!(carl.call("/_fn/sso/notice", &[]).await.body.contains("client secret again"));

    let removed = org.admin.call("/_fn/settings/remove_oidc", &[]).await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.body);
    let gone = app.client("198.51.100.43").call("/_fn/sso/start", &[("email", "grace@acme.test")]).await;
    assert_eq!(gone.status, StatusCode::BAD_REQUEST);
    let trail: Vec<String> = app
        .audit_trail()
        .await
        .into_iter()
        .map(|(action, ..)| action)
        .filter(|a| a.starts_with("organization.oidc_"))
        .collect();
    assert_eq!(
        trail,
        [
            "organization.oidc_update",
            "organization.oidc_update",
            "organization.oidc_member_join",
            "organization.oidc_login_refused",
            "organization.oidc_remove"
        ]
    );
}

async fn the_providers_groups_claim_decides_a_members_groups_at_each_log_in(app: TestApp) {
    let idp = FakeIdp::start().await;
    let mut org = app.organization("ada@acme.test", "Acme").await;
    domains::verify_by_operator(&app.db, &Actor::Operator, org.id, "acme.test").await.unwrap();
    let saved = save_oidc_with_groups(&mut org.admin, &idp.issuer, CLIENT_SECRET, "member", "groups").await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
    let admin_key = app.admin_key(&org, "ada@acme.test").await;
    let lab = app
        .api(
            "POST",
            "/api/admin/workspaces",
            &admin_key,
            Some(json!({ "name": "Lab", "admin_user_id": org.admin_id })),
        )
        .await
        .json()["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    let research = make_group(&mut org.admin, "Research").await;
    make_group(&mut org.admin, "Ops").await;
    let grant = [("group_id", research.as_str()), ("workspace_id", lab.as_str()), ("role", "member")];
    assert_eq!(org.admin.call("/_fn/groups/grant_workspace", &grant).await.status, StatusCode::OK);

    // Her first log-in lists Research (in any case) and a group Chancery does not have.
    let mut grace =
        sso_log_in(&app, &idp, "grace@acme.test", json!({ "groups": ["RESEARCH", "Marketing"] })).await;
    let grace_id = grace.overview().await.json()["user"]["id"].as_str().unwrap().to_string();
    assert_eq!(groups_of(&app, &grace_id).await, ["Research"]);
    // Research reaches Lab: a key of hers there works.
    let body = json!({ "workspace_uuid": lab, "name": "lab work", "user_id": grace_id });
    let key = app.api("POST", "/api/admin/api-keys", &admin_key, Some(body)).await;
    assert_eq!(key.status, StatusCode::CREATED, "{}", key.body);
    let key_id = key.json()["key_id"].as_str().unwrap().to_string();

    // The provider moved her to Ops: she leaves Research, and her Lab key ends with it.
    sso_log_in(&app, &idp, "grace@acme.test", json!({ "groups": ["Ops"] })).await;
    assert_eq!(groups_of(&app, &grace_id).await, ["Ops"]);
    let (revoked_at,): (Option<i64>,) =
        sqlx::query_as("SELECT revoked_at FROM workspace_api_keys WHERE id = $1")
            .bind(&key_id)
            .fetch_one(app.db.pool())
            .await
            .unwrap();
    assert!(revoked_at.is_some(), "Lab is out of her reach");

    // A token without the claim: the provider lists no group for her.
    sso_log_in(&app, &idp, "grace@acme.test", json!({})).await;
    assert!(groups_of(&app, &grace_id).await.is_empty());

    let trail: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT action, actor_label, details FROM audit_events
         WHERE org_id = $1 AND (action LIKE 'user_group.member.%' OR action = 'api_key.delete') ORDER BY id",
    )
    .bind(org.id)
    .fetch_all(app.db.pool())
    .await
    .unwrap();
    let actions: Vec<&str> = trail.iter().map(|(action, _, _)| action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "user_group.member.add",
            "user_group.member.add",
            "user_group.member.remove",
            "api_key.delete",
            "user_group.member.remove"
        ],
        "{trail:?}"
    );
    assert!(trail.iter().all(|(_, actor, _)| actor == "grace@acme.test"), "{trail:?}");
    assert!(trail[0].2.contains(r#""via":"oidc""#) && trail[3].2.contains("owner_lost_access"), "{trail:?}");
}

async fn make_group(admin: &mut Client<'_>, name: &str) -> String {
    let made = admin.call("/_fn/groups/create", &[("name", name), ("description", "")]).await;
    serde_json::from_str(&made.body).unwrap()
}

/// The names of the groups `user` is in.
async fn groups_of(app: &TestApp, user: &str) -> Vec<String> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT g.name FROM user_group_members m JOIN user_groups g ON g.id = m.group_id
         WHERE m.user_id = $1 ORDER BY g.name",
    )
    .bind(user)
    .fetch_all(app.db.pool())
    .await
    .unwrap();
    rows.into_iter().map(|(name,)| name).collect()
}

async fn required_sso_refuses_covered_passwords_and_ends_their_password_sessions(app: TestApp) {
    let idp = FakeIdp::start().await;
    let mut org = app.organization("ada@acme.test", "Acme").await;
    provider_for(&app, &mut org, &idp).await;
    let (mut bob, _) = app.join(&mut org, "bob@acme.test", &["member"]).await;
    let (mut carol, _) = app.join(&mut org, "carol@partner.test", &["member"]).await;
    let mut ada = sso_log_in(&app, &idp, "ada@acme.test", json!({})).await;

    let required = ada.call("/_fn/settings/require_sso", &[]).await;
    assert_eq!(required.status, StatusCode::OK, "{}", required.body);
    let required = required.json();
    assert!(required["required_since"].is_number(), "{required}");
    assert_eq!(required["verified_domains"], json!(["acme.test"]));
    assert_eq!(required["members_covered"], 2, "Ada and Bob, not Carol of partner.test");

    // Password sessions of covered members ended; Ada's single sign-on one goes on.
    assert_eq!(bob.overview().await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(org.admin.overview().await.status, StatusCode::UNAUTHORIZED, "Ada's password session");
    assert_eq!(ada.overview().await.status, StatusCode::OK);
    assert_eq!(carol.overview().await.status, StatusCode::OK, "not in a verified domain");
    let (password_sessions,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM sessions s JOIN users u ON u.id = s.user_id
         WHERE u.email_normalized IN ('ada@acme.test', 'bob@acme.test') AND (s.via IS NULL OR s.via = 'password')",
    )
    .fetch_one(app.db.pool())
    .await
    .unwrap();
    assert_eq!(password_sessions, 0, "the rows are gone, not only refused");

    // The right password now says to use single sign-on; a wrong one says nothing more.
    let refused = app.client("198.51.100.80").log_in("bob@acme.test", PASSWORD).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(refused.body.contains("Continue with SSO"), "{}", refused.body);
    let wrong = app.client("198.51.100.80").log_in("bob@acme.test", "not the password at all").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body.contains("Email or password is incorrect"), "{}", wrong.body);
    assert_eq!(
        app.client("198.51.100.81").log_in("carol@partner.test", PASSWORD).await.status,
        StatusCode::OK
    );
    // Bob comes in through the provider instead.
    let mut bob = sso_log_in(&app, &idp, "bob@acme.test", json!({})).await;
    assert_eq!(bob.overview().await.json()["user"]["email"], "bob@acme.test");

    // Someone who joins later with a password is stopped at their next request, and told why.
    let invited = ada.call("/_fn/members/invite", &[("email", "dan@acme.test"), ("role_member", "on")]).await;
    assert_eq!(invited.status, StatusCode::OK, "{}", invited.body);
    let token = app.emailed_token("dan@acme.test").await;
    let mut dan = app.client("198.51.100.82");
    dan.call("/_fn/invitation/sign_up", &[("token", &token), ("name", "Dan"), ("password", PASSWORD)]).await;
    assert_eq!(dan.overview().await.status, StatusCode::UNAUTHORIZED);
    let notice = dan.call("/_fn/sso/notice", &[]).await;
    assert!(notice.body.contains("requires single sign-on"), "{}", notice.body);

    // The provider cannot be turned off or removed while members depend on it.
    let form = [
        ("issuer", idp.issuer.as_str()),
        ("client_id", CLIENT_ID),
        ("client_secret", ""),
        ("default_role", "member"),
        ("groups_claim", ""),
    ];
    let off = ada.call("/_fn/settings/save_oidc", &form).await;
    assert_eq!(off.status, StatusCode::BAD_REQUEST);
    assert!(off.body.contains("stop requiring single sign-on first"), "{}", off.body);
    assert_eq!(ada.call("/_fn/settings/remove_oidc", &[]).await.status, StatusCode::BAD_REQUEST);

    // Members cannot lift it (nor see it); Admins can, and so can the operator (break glass).
    assert_eq!(bob.call("/_fn/settings/allow_passwords", &[]).await.status, StatusCode::NOT_FOUND);
    let lifted = ada.call("/_fn/settings/allow_passwords", &[]).await;
    assert_eq!(lifted.status, StatusCode::OK, "{}", lifted.body);
    assert!(lifted.json()["required_since"].is_null());
    assert_eq!(app.client("198.51.100.83").log_in("bob@acme.test", PASSWORD).await.status, StatusCode::OK);
    assert_eq!(ada.call("/_fn/settings/require_sso", &[]).await.status, StatusCode::OK);
    sso::allow_passwords(&app.db, &Actor::Operator, &actor::Client::default(), org.id).await.unwrap();
    assert_eq!(app.client("198.51.100.84").log_in("bob@acme.test", PASSWORD).await.status, StatusCode::OK);

    let trail: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT action, actor_label, details FROM audit_events
         WHERE org_id = $1 AND (action LIKE 'organization.sso%' OR action = 'user.log_in_failed') ORDER BY id",
    )
    .bind(org.id)
    .fetch_all(app.db.pool())
    .await
    .unwrap();
    let actions: Vec<(&str, &str)> = trail.iter().map(|(a, by, _)| (a.as_str(), by.as_str())).collect();
    assert_eq!(
        actions,
        [
            ("organization.sso_enforce", "ada@acme.test"),
            ("user.log_in_failed", "bob@acme.test"),
            ("user.log_in_failed", "bob@acme.test"),
            ("organization.sso_unenforce", "ada@acme.test"),
            ("organization.sso_enforce", "ada@acme.test"),
            ("organization.sso_unenforce", "platform operator"),
        ],
        "{trail:?}"
    );
    let enforced: Value = serde_json::from_str(trail[0].2.as_deref().unwrap()).unwrap();
    assert_eq!(enforced["password_sessions_ended"], 2, "Ada's and Bob's password sessions: {enforced}");
    assert_eq!(trail[1].2.as_deref(), Some(r#"{"reason":"single sign-on required"}"#));
    assert_eq!(trail[2].2, None, "a wrong password is an ordinary failure");
}

async fn requiring_sso_needs_a_provider_a_domain_and_an_admin_who_used_it(app: TestApp) {
    let idp = FakeIdp::start().await;
    let mut org = app.organization("ada@acme.test", "Acme").await;
    let (mut bob, _) = app.join(&mut org, "bob@acme.test", &["member"]).await;

    let no_provider = org.admin.call("/_fn/settings/require_sso", &[]).await;
    assert_eq!(no_provider.status, StatusCode::BAD_REQUEST);
    assert!(no_provider.body.contains("identity provider first"), "{}", no_provider.body);
    let saved = save_oidc(&mut org.admin, &idp.issuer, CLIENT_SECRET, "member").await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
    let no_domain = org.admin.call("/_fn/settings/require_sso", &[]).await;
    assert_eq!(no_domain.status, StatusCode::BAD_REQUEST);
    assert!(no_domain.body.contains("Verify your email domain first"), "{}", no_domain.body);
    domains::verify_by_operator(&app.db, &Actor::Operator, org.id, "acme.test").await.unwrap();

    // Ada, covered, has not shown single sign-on works for her: she would lock herself out.
    let untried = org.admin.call("/_fn/settings/require_sso", &[]).await;
    assert_eq!(untried.status, StatusCode::BAD_REQUEST);
    assert!(untried.body.contains("once before requiring it"), "{}", untried.body);
    assert_eq!(bob.call("/_fn/settings/require_sso", &[]).await.status, StatusCode::NOT_FOUND);
    assert_eq!(bob.call("/_fn/settings/sso_enforcement", &[]).await.status, StatusCode::NOT_FOUND);
    let unchanged = org.admin.call("/_fn/settings/sso_enforcement", &[]).await.json();
    assert!(unchanged["required_since"].is_null(), "{unchanged}");
    assert_eq!(unchanged["provider_enabled"], true);
    assert_eq!(app.client("198.51.100.85").log_in("bob@acme.test", PASSWORD).await.status, StatusCode::OK);

    // An Admin outside the verified domains is not covered: a password session may require it.
    let (mut grace, _) = app.join(&mut org, "grace@consultants.test", &["admin"]).await;
    let required = grace.call("/_fn/settings/require_sso", &[]).await;
    assert_eq!(required.status, StatusCode::OK, "{}", required.body);
    assert_eq!(grace.overview().await.status, StatusCode::OK);
    assert_eq!(bob.overview().await.status, StatusCode::UNAUTHORIZED);
    let gone =
        sso::allow_passwords(&app.db, &Actor::Operator, &actor::Client::default(), app::ids::OrgId::new())
            .await;
    assert_eq!(gone.unwrap_err(), app::AppError::NotFound);
}

//! Workspace API keys: created and shown once, listed masked, rotated with a
//! grace period, revoked; in the Admin API and the Admin Panel.

use http::StatusCode;
use serde_json::json;

use crate::common::TestApp;

crate::on_both_databases!(
    workspace_keys_are_shown_once_rotated_and_revoked,
    workspace_keys_in_the_admin_panel,
    keys_live_no_longer_than_the_lifetime_policy,
    a_workspace_page_lists_its_keys_fifty_at_a_time,
    a_key_made_by_a_plain_form_post_is_shown_once_on_its_page,
);

/// Before the page is interactive, or with JavaScript off, the Create key form
/// posts itself: the browser is sent back to the page, which shows the key once.
async fn a_key_made_by_a_plain_form_post_is_shown_once_on_its_page(app: TestApp) {
    let mut org = app.organization("ada@example.com", "Engines").await;
    let page = format!("/admin/workspaces/{}", org.default_workspace);
    let form = [
        ("workspace_id", org.default_workspace.as_str()),
        ("name", "posted"),
        ("expires_on", ""),
        ("allowed_models", ""),
    ];
    let posted = org.admin.post_form("/_fn/api_keys/create", &page, &form).await;
    assert_eq!(posted.status, StatusCode::FOUND, "{}", posted.body);
    let back = posted.header("location").unwrap().trim_end_matches('?');
    assert_eq!(back, format!("{}{page}", crate::common::PUBLIC_URL), "back to the page");
    let key = posted.json()["key"].as_str().unwrap().to_string();
    let (sessions,): (String,) = sqlx::query_as("SELECT data FROM sessions WHERE data LIKE '%shown_once%'")
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    assert!(!sessions.contains(&key), "the session keeps the secret sealed");

    let shown = org.admin.get(&page).await;
    assert_eq!(shown.status, StatusCode::OK);
    assert!(shown.body.contains(&key), "the page the browser comes back to shows the key");
    assert!(shown.body.contains("Key \u{201c}posted\u{201d} created."));
    let again = org.admin.get(&page).await;
    assert!(!again.body.contains(&key), "shown once only");

    // Errors come back to the page too, in its address, and are shown there.
    let nameless = [
        ("workspace_id", org.default_workspace.as_str()),
        ("name", ""),
        ("expires_on", ""),
        ("allowed_models", ""),
    ];
    let refused = org.admin.post_form("/_fn/api_keys/create", &page, &nameless).await;
    assert_eq!(refused.status, StatusCode::FOUND);
    let back =
        refused.header("location").unwrap().strip_prefix(crate::common::PUBLIC_URL).unwrap().to_string();
    assert!(back.starts_with(&page) && back.contains("__err="), "{back}");
    let with_error = org.admin.get(&back).await;
    assert!(with_error.body.contains("class=\"form-error\""), "the page says what went wrong");
}

/// One page of the workspace's keys, past `after`, as its page asks for them.
async fn keys_page(
    client: &mut crate::common::Client<'_>,
    workspace: &str,
    after: Option<&str>,
) -> serde_json::Value {
    let mut form = vec![("workspace_id", workspace)];
    form.extend(after.map(|after| ("after", after)));
    let answer = client.call("/_fn/api_keys", &form).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    answer.json()
}

async fn a_workspace_page_lists_its_keys_fifty_at_a_time(app: TestApp) {
    let mut org = app.organization("ada@example.com", "Engines").await;
    let admin = app.admin_key(&org, "ada@example.com").await;
    let body = json!({ "workspace_uuid": org.default_workspace, "user_id": org.admin_id, "name": "k" });
    for _ in 0..55 {
        let made = app.api("POST", "/api/admin/api-keys", &admin, Some(body.clone())).await;
        assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    }
    let ids = |page: &serde_json::Value| -> Vec<String> {
        page["items"].as_array().unwrap().iter().map(|k| k["id"].as_str().unwrap().to_string()).collect()
    };
    let first = keys_page(&mut org.admin, &org.default_workspace, None).await;
    assert_eq!(ids(&first).len(), 50);
    // A key made between two pages is on the first page, not repeated on the second.
    app.api("POST", "/api/admin/api-keys", &admin, Some(body.clone())).await;
    let second = keys_page(&mut org.admin, &org.default_workspace, first["next"].as_str()).await;
    assert_eq!((ids(&second).len(), &second["next"]), (5, &json!(null)));
    let mut seen: Vec<String> = ids(&first).into_iter().chain(ids(&second)).collect();
    let api = app.api("GET", "/api/admin/api-keys?limit=100", &admin, None).await.json();
    let newest_first: Vec<String> =
        api["keys"].as_array().unwrap().iter().map(|k| k["key_id"].as_str().unwrap().to_string()).collect();
    assert_eq!(seen, newest_first[1..], "the pages, in order, are every key but the one made since");
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 55);
    // The Admin API's offset reads the same order.
    let skipped = app.api("GET", "/api/admin/api-keys?limit=10&offset=50", &admin, None).await.json();
    assert_eq!(skipped["keys"][0]["key_id"], newest_first[50].as_str());

    let stranger = uuid::Uuid::new_v4().to_string();
    let form = [("workspace_id", org.default_workspace.as_str()), ("after", stranger.as_str())];
    let refused = org.admin.call("/_fn/api_keys", &form).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "a key of no page: {}", refused.body);
}

async fn workspace_keys_are_shown_once_rotated_and_revoked(app: TestApp) {
    let org = app.organization("ada@example.com", "Engines").await;
    let admin = app.admin_key(&org, "ada@example.com").await;
    let body = |name: &str| json!({ "workspace_uuid": org.default_workspace, "user_id": org.admin_id, "name": name });

    let unknown = json!({ "workspace_uuid": org.default_workspace, "user_id": org.admin_id, "allowed_models": ["gpt-9"] });
    let unknown = app.api("POST", "/api/admin/api-keys", &admin, Some(unknown)).await;
    assert_eq!(
        (unknown.status, unknown.json()["error"]["param"].as_str()),
        (StatusCode::BAD_REQUEST, Some("allowed_models"))
    );
    let stranger = json!({ "workspace_uuid": org.default_workspace, "user_id": uuid::Uuid::new_v4() });
    assert_eq!(
        app.api("POST", "/api/admin/api-keys", &admin, Some(stranger)).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(app.count("workspace_api_keys").await, 0);

    let created = app.api("POST", "/api/admin/api-keys", &admin, Some(body("prod-backend"))).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let created = created.json();
    let full = created["key"].as_str().unwrap().to_string();
    assert!(full.starts_with("chy_ws_"), "{full}");
    let secret = full.rsplit('_').next().unwrap();
    assert!(!created["hidden_key"].as_str().unwrap().contains(secret));
    assert_eq!((created["status"].as_str(), created["product"].as_str()), (Some("active"), Some("API")));
    let (stored,): (String,) = sqlx::query_as("SELECT secret_sha256 FROM workspace_api_keys")
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    assert!(!stored.contains(secret), "only a hash of the secret is kept");

    let listed = app.api("GET", "/api/admin/api-keys", &admin, None).await.json();
    assert_eq!(listed["keys"].as_array().unwrap().len(), 1);
    assert_eq!(listed["keys"][0]["key"], serde_json::Value::Null, "never shown again");
    let last4 = &secret[secret.len() - 4..];
    let found = app.api("GET", &format!("/api/admin/api-keys?name={last4}"), &admin, None).await.json();
    assert_eq!(found["keys"].as_array().unwrap().len(), 1, "found by its last 4 characters");
    let none = app.api("GET", "/api/admin/api-keys?name=nothing-like-it", &admin, None).await.json();
    assert_eq!(none["keys"].as_array().unwrap().len(), 0);

    // Rotation: a new key; the old one works for the grace period, then not; rotated once only.
    let key_id = created["key_id"].as_str().unwrap().to_string();
    let rotated = app
        .api(
            "POST",
            &format!("/api/admin/api-keys/{key_id}/rotate"),
            &admin,
            Some(json!({ "grace_hours": 1 })),
        )
        .await;
    assert_eq!(rotated.status, StatusCode::CREATED, "{}", rotated.body);
    let rotated = rotated.json();
    assert_ne!(rotated["key"], created["key"]);
    assert_eq!(rotated["name"], "prod-backend");
    let old = app.api("GET", "/api/admin/api-keys", &admin, None).await.json()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["key_id"] == created["key_id"])
        .unwrap()
        .clone();
    assert_eq!(
        (old["status"].as_str(), old["rotated_to"].as_str()),
        (Some("rotating"), rotated["key_id"].as_str())
    );
    let until = chrono::DateTime::parse_from_rfc3339(old["expiration_date"].as_str().unwrap()).unwrap();
    let in_an_hour = chrono::Utc::now() + chrono::Duration::hours(1);
    assert!((until.timestamp() - in_an_hour.timestamp()).abs() < 60, "works one more hour: {until}");
    let again =
        app.api("POST", &format!("/api/admin/api-keys/{key_id}/rotate"), &admin, Some(json!({}))).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    let too_long = app
        .api(
            "POST",
            &format!("/api/admin/api-keys/{}/rotate", rotated["key_id"].as_str().unwrap()),
            &admin,
            Some(json!({ "grace_hours": 10_000 })),
        )
        .await;
    assert_eq!(too_long.status, StatusCode::BAD_REQUEST);

    // A key unused for 30 days is flagged.
    let long_ago = chrono::Utc::now().timestamp_millis() - 31 * 24 * 3_600_000;
    sqlx::query("UPDATE workspace_api_keys SET created_at = $1 WHERE id = $2")
        .bind(long_ago)
        .bind(rotated["key_id"].as_str().unwrap())
        .execute(app.db.pool())
        .await
        .unwrap();
    let flagged = app.api("GET", "/api/admin/api-keys", &admin, None).await.json();
    let flagged: Vec<bool> =
        flagged["keys"].as_array().unwrap().iter().map(|k| k["unused"].as_bool().unwrap()).collect();
    assert_eq!(flagged.iter().filter(|u| **u).count(), 1, "{flagged:?}");

    // Another organization's key reaches none of these keys.
    let looms = app.organization("bob@example.com", "Looms").await;
    let other = app.admin_key(&looms, "bob@example.com").await;
    assert_eq!(
        app.api("DELETE", &format!("/api/admin/api-keys/{key_id}"), &other, None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.api("GET", "/api/admin/api-keys", &other, None).await.json()["keys"], json!([]));

    let revoked = app.api("DELETE", &format!("/api/admin/api-keys/{key_id}"), &admin, None).await;
    assert_eq!(revoked.status, StatusCode::OK);
    let statuses: Vec<String> = app.api("GET", "/api/admin/api-keys", &admin, None).await.json()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["status"].as_str().unwrap().to_string())
        .collect();
    assert!(
        statuses.contains(&"revoked".to_string()) && statuses.contains(&"active".to_string()),
        "{statuses:?}"
    );

    let actions: Vec<String> = app.audit_trail().await.into_iter().map(|(action, ..)| action).collect();
    for action in ["api_key.create", "api_key.rotate", "api_key.delete"] {
        assert!(actions.iter().any(|a| a == action), "{action} audited");
    }
}

async fn workspace_keys_in_the_admin_panel(app: TestApp) {
    let mut org = app.organization("ada@example.com", "Engines").await;
    let (mut mia, _) = app.join(&mut org, "mia@example.com", &["member"]).await;
    let form = [
        ("workspace_id", org.default_workspace.as_str()),
        ("name", "ci"),
        ("expires_on", ""),
        ("allowed_models", "mistral-small-latest"),
    ];
    let created = org.admin.call("/_fn/api_keys/create", &form).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    let created = created.json();
    assert!(created["key"].as_str().unwrap().starts_with("chy_ws_"));
    let listed = org.admin.call("/_fn/api_keys", &[("workspace_id", &org.default_workspace)]).await.json();
    assert_eq!(listed["next"], json!(null), "one page");
    let listed = &listed["items"];
    assert_eq!(listed[0]["allowed_models"], json!(["mistral-small-latest"]));
    assert!(listed[0].get("key").is_none(), "lists never carry the key");

    let adas_key = created["view"]["id"].as_str().unwrap().to_string();

    // Everyone works in the Default workspace: Mia, a Member, makes keys of her own
    // there, sees only those, and manages only those.
    let hers = mia.call("/_fn/api_keys/create", &form).await;
    assert_eq!(hers.status, StatusCode::OK, "{}", hers.body);
    assert_eq!(hers.json()["view"]["owner_email"], "mia@example.com");
    let hers = hers.json()["view"]["id"].as_str().unwrap().to_string();
    let seen = mia.call("/_fn/api_keys", &[("workspace_id", &org.default_workspace)]).await.json();
    assert_eq!(seen["items"].as_array().unwrap().len(), 1, "{seen}");
    assert_eq!(seen["items"][0]["id"], hers.as_str());
    let rotate = [("key_id", adas_key.as_str()), ("grace_hours", "1")];
    let revoke_adas = mia.call("/_fn/api_keys/revoke", &[("key_id", adas_key.as_str())]).await;
    assert_eq!(revoke_adas.status, StatusCode::NOT_FOUND);
    assert_eq!(mia.call("/_fn/api_keys/rotate", &rotate).await.status, StatusCode::NOT_FOUND);
    // Nor in a workspace she was not given.
    org.admin.call("/_fn/workspaces/create", &[("name", "Lab"), ("description", ""), ("icon", "")]).await;
    let lab = org.admin.overview().await.json()["workspaces"][1]["id"].as_str().unwrap().to_string();
    let in_lab = [("workspace_id", lab.as_str()), ("name", "x"), ("expires_on", ""), ("allowed_models", "")];
    assert_eq!(mia.call("/_fn/api_keys/create", &in_lab).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        mia.call("/_fn/workspaces/detail", &[("workspace_id", &lab)]).await.status,
        StatusCode::NOT_FOUND
    );

    // Wes, a Member of the organization made Admin of the Default workspace, manages all its keys.
    let (mut wes, wes_id) = app.join(&mut org, "wes@example.com", &["member"]).await;
    let made_admin =
        [("workspace_id", org.default_workspace.as_str()), ("user_id", wes_id.as_str()), ("role", "admin")];
    assert_eq!(org.admin.call("/_fn/workspaces/put_member", &made_admin).await.status, StatusCode::OK);
    let seen = wes.call("/_fn/api_keys", &[("workspace_id", &org.default_workspace)]).await.json();
    assert_eq!(seen["items"].as_array().unwrap().len(), 2, "{seen}");
    let detail = wes.call("/_fn/workspaces/detail", &[("workspace_id", &org.default_workspace)]).await.json();
    assert_eq!(
        (detail["administers"].as_bool(), detail["manages"].as_bool()),
        (Some(false), Some(true)),
        "a workspace Admin runs the workspace, not the Organization; everyone is in the Default one"
    );
    let revoked = wes.call("/_fn/api_keys/revoke", &[("key_id", hers.as_str())]).await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.body);
    // Mia can still revoke what is hers (already revoked: nothing to do), Wes rotates Ada's.
    assert_eq!(mia.call("/_fn/api_keys/revoke", &[("key_id", hers.as_str())]).await.status, StatusCode::OK);
    assert_eq!(wes.call("/_fn/api_keys/rotate", &rotate).await.status, StatusCode::OK);
    // Workspace Admins run the workspace itself too (seed 004).
    let rename = [
        ("workspace_id", org.default_workspace.as_str()),
        ("name", "Mine"),
        ("description", ""),
        ("icon", ""),
    ];
    assert_eq!(wes.call("/_fn/workspaces/update", &rename).await.status, StatusCode::OK);
}

/// An Organization's maximum key lifetime, and a stricter one per workspace:
/// new keys (made or rotated) are clamped to it, older ones are flagged.
async fn keys_live_no_longer_than_the_lifetime_policy(app: TestApp) {
    let org = app.organization("ada@example.com", "Engines").await;
    let admin = app.admin_key(&org, "ada@example.com").await;
    let make = |expiration: Option<&str>| {
        let mut body =
            json!({ "workspace_uuid": org.default_workspace, "user_id": org.admin_id, "name": "k" });
        if let Some(date) = expiration {
            body["expiration"] = json!(date);
        }
        app.api("POST", "/api/admin/api-keys", &admin, Some(body))
    };
    let days_from_now = |text: &serde_json::Value| {
        let at = chrono::DateTime::parse_from_rfc3339(text.as_str().expect("an expiry")).unwrap();
        (at.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_hours() as f64 / 24.0
    };
    let forever = make(None).await.json();
    assert_eq!(forever["expiration_date"], serde_json::Value::Null);
    assert_eq!(forever["beyond_policy"], false);

    let set = app.api("POST", "/api/admin/api-key-policy", &admin, Some(json!({ "max_days": 30 }))).await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    assert_eq!(
        set.json(),
        json!({ "organization_max_days": 30, "workspace_max_days": null, "max_days": 30 })
    );
    let clamped = make(None).await.json();
    assert!((29.9..=30.0).contains(&days_from_now(&clamped["expiration_date"])), "{clamped}");
    let too_late = make(Some("2099-01-01")).await.json();
    assert!((29.9..=30.0).contains(&days_from_now(&too_late["expiration_date"])), "{too_late}");
    let soon = (chrono::Utc::now() + chrono::Duration::days(3)).format("%Y-%m-%d").to_string();
    let kept = make(Some(&soon)).await.json();
    assert!(days_from_now(&kept["expiration_date"]) < 4.0, "an earlier expiry is kept: {kept}");

    // A workspace may be stricter, never looser.
    let looser = json!({ "workspace_uuid": org.default_workspace, "max_days": 60 });
    let refused = app.api("POST", "/api/admin/api-key-policy", &admin, Some(looser)).await;
    assert_eq!(
        (refused.status, refused.json()["error"]["param"].as_str()),
        (StatusCode::BAD_REQUEST, Some("max_days"))
    );
    let stricter = json!({ "workspace_uuid": org.default_workspace, "max_days": 7 });
    let set = app.api("POST", "/api/admin/api-key-policy", &admin, Some(stricter)).await.json();
    assert_eq!(set, json!({ "organization_max_days": 30, "workspace_max_days": 7, "max_days": 7 }));
    let weekly = make(None).await.json();
    assert!((6.9..=7.0).contains(&days_from_now(&weekly["expiration_date"])), "{weekly}");
    // Rotation makes a new key: it obeys the policy too.
    let key_id = forever["key_id"].as_str().unwrap();
    let rotated = app
        .api(
            "POST",
            &format!("/api/admin/api-keys/{key_id}/rotate"),
            &admin,
            Some(json!({ "grace_hours": 0 })),
        )
        .await;
    assert!(rotated.status.is_success(), "{}", rotated.body);
    assert!((6.9..=7.0).contains(&days_from_now(&rotated.json()["expiration_date"])), "{}", rotated.body);

    // The key made before the policy is unchanged, and flagged.
    let listed = app.api("GET", "/api/admin/api-keys?limit=100", &admin, None).await.json();
    let flagged: Vec<bool> = listed["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["status"] == "active")
        .map(|k| k["beyond_policy"].as_bool().unwrap())
        .collect();
    assert_eq!(
        flagged.iter().filter(|f| **f).count(),
        2,
        "the 30-day keys outlive the workspace's 7 days: {listed}"
    );

    for (body, param) in [(json!({ "max_days": 0 }), "max_days"), (json!({ "max_days": 3651 }), "max_days")] {
        let refused = app.api("POST", "/api/admin/api-key-policy", &admin, Some(body)).await;
        assert_eq!(
            (refused.status, refused.json()["error"]["param"].as_str()),
            (StatusCode::BAD_REQUEST, Some(param))
        );
    }
    let lifted =
        app.api("POST", "/api/admin/api-key-policy", &admin, Some(json!({ "max_days": null }))).await.json();
    assert_eq!(lifted["organization_max_days"], serde_json::Value::Null);
    let audited =
        app.audit_trail().await.into_iter().filter(|(action, ..)| action == "api_key_policy.update").count();
    assert_eq!(audited, 3);
}

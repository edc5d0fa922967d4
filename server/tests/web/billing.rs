//! Billing activation, spending limits, workspace limits and the model catalogue,
//! in the Admin Panel's server functions and the Admin API.

use http::StatusCode;
use serde_json::json;

use crate::common::TestApp;

crate::on_both_databases!(billing_managers_activate_billing_and_set_limits, limits_through_the_admin_api);

async fn billing_managers_activate_billing_and_set_limits(app: TestApp) {
    let mut org = app.organization("ada@example.com", "Engines").await;
    let (mut bill, _) = app.join(&mut org, "bill@example.com", &["billing"]).await;
    let (mut mia, _) = app.join(&mut org, "mia@example.com", &["member"]).await;
    let default = org.default_workspace.clone();

    let billing = bill.call("/_fn/billing", &[]).await;
    assert_eq!(billing.status, StatusCode::OK, "{}", billing.body);
    assert_eq!(billing.json()["active"], false);
    assert_eq!(mia.call("/_fn/billing", &[]).await.status, StatusCode::NOT_FOUND, "a Member sees no billing");

    // A card with a wrong digit or a past expiry is refused, naming the field.
    let bad = bill
        .call("/_fn/billing/add_card", &[("card_number", "4242 4242 4242 4241"), ("card_expiry", "12/30")])
        .await;
    assert_eq!(
        (bad.status, bad.json()["Invalid"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("card_number"))
    );
    let old = bill
        .call("/_fn/billing/add_card", &[("card_number", "4242424242424242"), ("card_expiry", "01/20")])
        .await;
    assert_eq!(old.json()["Invalid"]["field"], "card_expiry");
    assert_eq!(app.count("org_billing").await, 0);

    let saved = bill
        .call("/_fn/billing/add_card", &[("card_number", "4242 4242 4242 4242"), ("card_expiry", "12/30")])
        .await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
    let view = bill.call("/_fn/billing", &[]).await.json();
    assert_eq!(view["active"], true);
    assert_eq!(
        view["payment_method"]["Card"],
        json!({ "brand": "Visa", "last4": "4242", "exp_month": 12, "exp_year": 2030 })
    );
    // The full number is kept nowhere: not in billing, not in the audit log.
    let (details,): (String,) =
        sqlx::query_as("SELECT details FROM audit_events WHERE action = 'billing.payment_method.added'")
            .fetch_one(app.db.pool())
            .await
            .unwrap();
    assert!(details.contains("Visa ending in 4242") && !details.contains("4242424242424242"), "{details}");

    // Limits: the organization's, then a workspace's budget within it.
    assert_eq!(bill.call("/_fn/billing/set_limit", &[("amount", "100")]).await.status, StatusCode::OK);
    let above = bill
        .call("/_fn/billing/set_workspace_budget", &[("workspace_id", &default), ("amount", "150")])
        .await;
    assert_eq!(above.status, StatusCode::BAD_REQUEST);
    assert!(above.body.contains("$100.00"), "{}", above.body);
    let within = bill
        .call("/_fn/billing/set_workspace_budget", &[("workspace_id", &default), ("amount", "50.5")])
        .await;
    assert_eq!(within.status, StatusCode::OK, "{}", within.body);
    let lower = bill.call("/_fn/billing/set_limit", &[("amount", "20")]).await;
    assert_eq!(lower.status, StatusCode::BAD_REQUEST);
    assert!(lower.body.contains("Default") && lower.body.contains("$50.50"), "{}", lower.body);
    let view = bill.call("/_fn/billing", &[]).await.json();
    assert_eq!(
        (view["monthly_limit_micros"].as_i64(), view["month_spend_micros"].as_i64()),
        (Some(100_000_000), Some(0))
    );
    assert_eq!(view["workspaces"][0]["monthly_budget_micros"], 50_500_000);
    assert_eq!(
        bill.call("/_fn/billing/set_limit", &[("amount", "")]).await.status,
        StatusCode::OK,
        "no limit"
    );

    // Rate limits and allowed models are the Admins'.
    let form = [
        ("workspace_id", default.as_str()),
        ("requests_per_minute", "60"),
        ("allowed_models", "mistral-small-latest, codestral-latest"),
    ];
    assert_eq!(bill.call("/_fn/workspaces/set_rate_limits", &form).await.status, StatusCode::NOT_FOUND);
    let unknown =
        [("workspace_id", default.as_str()), ("requests_per_minute", "60"), ("allowed_models", "gpt-9")];
    let unknown = org.admin.call("/_fn/workspaces/set_rate_limits", &unknown).await;
    assert_eq!(
        (unknown.status, unknown.json()["Invalid"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("allowed_models"))
    );
    let zero = [("workspace_id", default.as_str()), ("requests_per_minute", "0"), ("allowed_models", "")];
    assert_eq!(
        org.admin.call("/_fn/workspaces/set_rate_limits", &zero).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(org.admin.call("/_fn/workspaces/set_rate_limits", &form).await.status, StatusCode::OK);
    let limits = org.admin.call("/_fn/workspaces/limits", &[("workspace_id", &default)]).await.json();
    assert_eq!(limits[0]["rate_limits"]["requests_per_minute"], 60);
    assert_eq!(
        limits[0]["rate_limits"]["allowed_models"],
        json!(["mistral-small-latest", "codestral-latest"])
    );
    // One model's token limits, kept when the other limits are saved again.
    let model = [
        ("workspace_id", default.as_str()),
        ("model", "codestral-latest"),
        ("tokens_per_minute", "10,000"),
        ("tokens_per_month", ""),
    ];
    assert_eq!(org.admin.call("/_fn/workspaces/set_model_limits", &model).await.status, StatusCode::OK);
    let nonsense = [
        ("workspace_id", default.as_str()),
        ("model", "codestral-latest"),
        ("tokens_per_minute", "lots"),
        ("tokens_per_month", ""),
    ];
    let nonsense = org.admin.call("/_fn/workspaces/set_model_limits", &nonsense).await;
    assert_eq!(
        (nonsense.status, nonsense.json()["Invalid"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("tokens_per_minute"))
    );
    assert_eq!(org.admin.call("/_fn/workspaces/set_rate_limits", &form).await.status, StatusCode::OK);
    let limits = org.admin.call("/_fn/workspaces/limits", &[("workspace_id", &default)]).await.json();
    assert_eq!(
        limits[0]["rate_limits"]["tokens_limits_by_model"],
        json!({ "codestral-latest": { "tokens_per_minute": 10_000, "tokens_per_month": null } })
    );
    assert!(
        limits[1].as_array().unwrap().iter().any(|m| m["id"] == "mistral-embed"),
        "the catalogue comes along"
    );

    assert_eq!(bill.call("/_fn/billing/remove_payment_method", &[]).await.status, StatusCode::OK);
    assert_eq!(bill.call("/_fn/billing", &[]).await.json()["active"], false);

    let actions: Vec<String> = app.audit_trail().await.into_iter().map(|(action, ..)| action).collect();
    for action in [
        "billing.payment_method.added",
        "billing.monthly_limit.updated",
        "billing.workspace_monthly_limit.updated",
        "rate_limit.rule.update",
        "billing.payment_method.removed",
    ] {
        assert!(actions.iter().any(|a| a == action), "{action} audited: {actions:?}");
    }
}

async fn limits_through_the_admin_api(app: TestApp) {
    let org = app.organization("ada@example.com", "Engines").await;
    let key = app.admin_key(&org, "ada@example.com").await;
    let default = org.default_workspace.clone();

    let billing = app.api("GET", "/api/admin/billing", &key, None).await;
    assert_eq!(billing.json(), json!({ "active": false, "payment_method": null, "currency": "USD" }));

    let set = app.api("POST", "/api/admin/spend-limit", &key, Some(json!({ "amount": 500 }))).await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    let limits = &set.json()["limits"]["completion"];
    assert_eq!(
        (limits["usage_limit"].as_i64(), limits["no_monthly_limit"].as_bool()),
        (Some(500), Some(false))
    );
    let too_much = app
        .api(
            "POST",
            "/api/admin/spend-limit",
            &key,
            Some(json!({ "amount": 501, "workspace_uuid": default })),
        )
        .await;
    assert_eq!(too_much.status, StatusCode::BAD_REQUEST);
    assert_eq!(too_much.json()["error"]["param"], "amount");
    let budget = app
        .api("POST", "/api/admin/spend-limit", &key, Some(json!({ "amount": 50, "workspace_uuid": default })))
        .await;
    assert_eq!(budget.json()["limits"]["completion"]["usage_limit_micros"], 50_000_000);
    let read =
        app.api("GET", &format!("/api/admin/spend-limit?workspace_uuid={default}"), &key, None).await.json();
    assert_eq!(
        (read["limits"]["completion"]["usage_limit"].as_i64(), read["limits"]["workspace_uuid"].as_str()),
        (Some(50), Some(default.as_str()))
    );
    let none = app.api("POST", "/api/admin/spend-limit", &key, Some(json!({}))).await;
    assert_eq!(none.status, StatusCode::BAD_REQUEST, "amount or no_monthly_limit");

    let unknown =
        json!({ "workspace_uuid": default, "requests_per_minute": 10, "allowed_models": ["gpt-9"] });
    let unknown = app.api("POST", "/api/admin/rate-limit", &key, Some(unknown)).await;
    assert_eq!(
        (unknown.status, unknown.json()["error"]["param"].as_str()),
        (StatusCode::BAD_REQUEST, Some("allowed_models"))
    );
    let ok = json!({ "workspace_uuid": default, "requests_per_minute": 10, "allowed_models": ["mistral-small-latest"] });
    let ok = app.api("POST", "/api/admin/rate-limit", &key, Some(ok)).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    let read =
        app.api("GET", &format!("/api/admin/rate-limit?workspace_uuid={default}"), &key, None).await.json();
    assert_eq!(
        read,
        json!({ "workspace_uuid": default, "requests_per_second": null, "requests_per_minute": 10,
                "allowed_models": ["mistral-small-latest"], "tokens_limits_by_model": {} })
    );

    let models = app.api("GET", "/api/admin/models", &key, None).await.json();
    let large = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "mistral-large-latest")
        .unwrap()
        .clone();
    assert_eq!(
        large,
        json!({ "id": "mistral-large-latest", "kind": "chat", "input_micros_per_mtok": 2_000_000, "output_micros_per_mtok": 6_000_000 })
    );
}

//! SAML 2.0 identity providers in Settings: named by their metadata or by
//! fields, checked (certificates read, expired ones refused), audited; and
//! Chancery's SP metadata for each Organization, for the IdP to import.

use base64::{engine::general_purpose::STANDARD as BASE64, Engine};
use http::StatusCode;
use openssl::{
    asn1::Asn1Time,
    ec::{EcGroup, EcKey},
    hash::MessageDigest,
    nid::Nid,
    pkey::PKey,
    x509::{X509Name, X509},
};
use serde_json::json;

use crate::common::{Client, TestApp, TestResponse, PUBLIC_URL};

crate::on_both_databases!(
    chancery_publishes_sp_metadata_for_each_organization,
    an_admin_names_the_idp_by_its_metadata_or_by_fields,
    unusable_idp_settings_are_refused_naming_the_field,
);

type Form<'a> = Vec<(&'a str, &'a str)>;

const IDP_ENTITY_ID: &str = "https://idp.acme.test/saml";
const IDP_SSO_URL: &str = "https://idp.acme.test/saml/sso";

/// A self-signed certificate for `common_name`, valid from `from_days` to `until_days` from now.
fn certificate(common_name: &str, from_days: i64, until_days: i64) -> Vec<u8> {
    let key = PKey::from_ec_key(
        EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap(),
    )
    .unwrap();
    let mut name = X509Name::builder().unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, common_name).unwrap();
    let name = name.build();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let mut builder = X509::builder().unwrap();
    builder.set_version(2).unwrap();
    builder.set_subject_name(&name).unwrap();
    builder.set_issuer_name(&name).unwrap();
    builder.set_pubkey(&key).unwrap();
    builder.set_not_before(&Asn1Time::from_unix(now + from_days * 86_400).unwrap()).unwrap();
    builder.set_not_after(&Asn1Time::from_unix(now + until_days * 86_400).unwrap()).unwrap();
    builder.sign(&key, MessageDigest::sha256()).unwrap();
    builder.build().to_der().unwrap()
}

fn pem(der: &[u8]) -> String {
    format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", BASE64.encode(der))
}

/// An IdP's metadata as IdPs publish it (signing key, HTTP-Redirect and HTTP-POST SSO services).
fn idp_metadata(der: &[u8]) -> String {
    format!(
        r#"<?xml version="1.0"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{IDP_ENTITY_ID}">
  <md:IDPSSODescriptor WantAuthnRequestsSigned="false" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:KeyDescriptor use="signing">
      <ds:KeyInfo><ds:X509Data><ds:X509Certificate>
        {}
      </ds:X509Certificate></ds:X509Data></ds:KeyInfo>
    </md:KeyDescriptor>
    <md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</md:NameIDFormat>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="{IDP_SSO_URL}/post"/>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="{IDP_SSO_URL}"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>"#,
        BASE64.encode(der)
    )
}

async fn save_saml(browser: &mut Client<'_>, fields: &[(&str, &str)]) -> TestResponse {
    let mut form = vec![
        ("metadata_xml", ""),
        ("idp_entity_id", ""),
        ("sso_url", ""),
        ("certificate", ""),
        ("default_role", "member"),
        ("email_attribute", ""),
        ("groups_attribute", ""),
        ("enabled", "on"),
    ];
    for (name, value) in fields {
        form.retain(|(field, _)| field != name);
        form.push((name, value));
    }
    browser.call("/_fn/settings/save_saml", &form).await
}

async fn chancery_publishes_sp_metadata_for_each_organization(app: TestApp) {
    let org = app.organization("ada@acme.test", "Acme").await;
    let mut visitor = app.client("198.51.100.90");
    let metadata = visitor.get(&format!("/sso/saml/{}/metadata", org.id)).await;
    assert_eq!(metadata.status, StatusCode::OK, "{}", metadata.body);
    assert_eq!(metadata.header("content-type"), Some("application/samlmetadata+xml"));
    assert!(metadata.header("content-disposition").unwrap().starts_with("attachment"));
    let entity_id = format!("{PUBLIC_URL}/sso/saml/{}", org.id);
    assert!(metadata.body.contains(&format!(r#"entityID="{entity_id}""#)), "{}", metadata.body);
    assert!(
        metadata.body.contains(&format!(r#"Location="{entity_id}/acs""#))
            && metadata.body.contains("urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"),
        "{}",
        metadata.body
    );
    assert!(metadata.body.contains(r#"WantAssertionsSigned="true""#), "{}", metadata.body);
    // The admin's panel names the same addresses.
    let mut admin = org.admin;
    let panel = admin.call("/_fn/settings/saml", &[]).await.json();
    assert_eq!(panel["sp_entity_id"], entity_id);
    assert_eq!(panel["acs_url"], format!("{entity_id}/acs"));
    assert_eq!(panel["metadata_url"], format!("{entity_id}/metadata"));
    assert!(panel["settings"].is_null());

    let unknown = visitor.get(&format!("/sso/saml/{}/metadata", app::ids::OrgId::new())).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

async fn an_admin_names_the_idp_by_its_metadata_or_by_fields(app: TestApp) {
    let mut org = app.organization("ada@acme.test", "Acme").await;
    let der = certificate("idp.acme.test", -1, 365);
    let saved =
        save_saml(&mut org.admin, &[("metadata_xml", &idp_metadata(&der)), ("groups_attribute", "groups")])
            .await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
    let saved = saved.json();
    assert_eq!(saved["idp_entity_id"], IDP_ENTITY_ID);
    assert_eq!(saved["sso_url"], IDP_SSO_URL, "the HTTP-Redirect service");
    assert_eq!(saved["certificates"][0]["subject"], "CN=idp.acme.test");
    let fingerprint = saved["certificates"][0]["sha256"].as_str().unwrap().to_string();
    assert_eq!(fingerprint.len(), 32 * 3 - 1, "{fingerprint}");
    assert_eq!((saved["enabled"].clone(), saved["idp_initiated"].clone()), (json!(true), json!(false)));

    // Typed in instead: a rotated certificate, PEM, with the next one beside it.
    let rotated = certificate("idp-2026.acme.test", -1, 730);
    let next = certificate("idp-2027.acme.test", -1, 1095);
    let both = format!("{}{}", pem(&rotated), pem(&next));
    let typed = [
        ("idp_entity_id", IDP_ENTITY_ID),
        ("sso_url", "https://idp.acme.test/saml/sso2"),
        ("certificate", both.as_str()),
        ("idp_initiated", "on"),
    ];
    let saved = save_saml(&mut org.admin, &typed).await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
    let saved = saved.json();
    assert_eq!(saved["sso_url"], "https://idp.acme.test/saml/sso2");
    let subjects: Vec<&str> =
        saved["certificates"].as_array().unwrap().iter().map(|c| c["subject"].as_str().unwrap()).collect();
    assert_eq!(subjects, ["CN=idp-2026.acme.test", "CN=idp-2027.acme.test"]);
    assert_eq!(saved["idp_initiated"], true);
    assert_eq!(org.admin.call("/_fn/settings/saml", &[]).await.json()["settings"], saved);

    // Members neither see nor change it.
    let (mut bob, _) = app.join(&mut org, "bob@acme.test", &["member", "billing"]).await;
    assert_eq!(bob.call("/_fn/settings/saml", &[]).await.status, StatusCode::NOT_FOUND);
    assert_eq!(save_saml(&mut bob, &typed).await.status, StatusCode::NOT_FOUND);
    assert_eq!(bob.call("/_fn/settings/remove_saml", &[]).await.status, StatusCode::NOT_FOUND);

    assert_eq!(org.admin.call("/_fn/settings/remove_saml", &[]).await.status, StatusCode::OK);
    assert!(org.admin.call("/_fn/settings/saml", &[]).await.json()["settings"].is_null());
    assert_eq!(org.admin.call("/_fn/settings/remove_saml", &[]).await.status, StatusCode::NOT_FOUND);

    let trail: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT action, actor_label, details FROM audit_events WHERE org_id = $1 AND action LIKE 'organization.saml%' ORDER BY id",
    )
    .bind(org.id)
    .fetch_all(app.db.pool())
    .await
    .unwrap();
    let actions: Vec<&str> = trail.iter().map(|(action, _, _)| action.as_str()).collect();
    assert_eq!(actions, ["organization.saml_update", "organization.saml_update", "organization.saml_remove"]);
    let first: serde_json::Value = serde_json::from_str(trail[0].2.as_deref().unwrap()).unwrap();
    assert_eq!(first["from_metadata"], true);
    assert_eq!(first["certificates_sha256"], json!([fingerprint]));
}

async fn unusable_idp_settings_are_refused_naming_the_field(app: TestApp) {
    let mut org = app.organization("ada@acme.test", "Acme").await;
    let good = pem(&certificate("idp.acme.test", -1, 365));
    let expired = pem(&certificate("old.acme.test", -400, -30));
    let junk_metadata = idp_metadata(b"junk");
    let sp_metadata = app.client("198.51.100.91").get(&format!("/sso/saml/{}/metadata", org.id)).await.body;
    // (form fields, the field named, what the message says)
    let cases: Vec<(Form, &str, &str)> = vec![
        (vec![("sso_url", IDP_SSO_URL), ("certificate", &good)], "idp_entity_id", "entity id"),
        (
            vec![
                ("idp_entity_id", IDP_ENTITY_ID),
                ("sso_url", "http://idp.acme.test/sso"),
                ("certificate", &good),
            ],
            "sso_url",
            "https://",
        ),
        (
            vec![("idp_entity_id", IDP_ENTITY_ID), ("sso_url", IDP_SSO_URL)],
            "certificate",
            "signing certificate",
        ),
        (
            vec![
                ("idp_entity_id", IDP_ENTITY_ID),
                ("sso_url", IDP_SSO_URL),
                ("certificate", "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----"),
            ],
            "certificate",
            "not an X.509 certificate",
        ),
        (
            vec![("idp_entity_id", IDP_ENTITY_ID), ("sso_url", IDP_SSO_URL), ("certificate", &expired)],
            "certificate",
            "expired",
        ),
        (
            vec![
                ("idp_entity_id", IDP_ENTITY_ID),
                ("sso_url", IDP_SSO_URL),
                ("certificate", &good),
                ("default_role", "admin"),
            ],
            "default_role",
            "cannot join as Admins",
        ),
        (vec![("metadata_xml", "<html>not metadata</html>")], "metadata_xml", "not SAML metadata"),
        (vec![("metadata_xml", &sp_metadata)], "metadata_xml", "no IDPSSODescriptor"),
        (
            vec![("metadata_xml", &junk_metadata), ("idp_entity_id", IDP_ENTITY_ID)],
            "metadata_xml",
            "not both",
        ),
    ];
    for (fields, field, says) in cases {
        let refused = save_saml(&mut org.admin, &fields).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{fields:?}: {}", refused.body);
        let error = refused.json();
        let text = error.to_string();
        assert!(text.contains(&format!("\"{field}\"")) && text.contains(says), "{fields:?}: {text}");
    }
    let unsigned = idp_metadata(&[])
        .replace("<md:KeyDescriptor use=\"signing\">", "<!--")
        .replace("</md:KeyDescriptor>", "-->");
    let refused = save_saml(&mut org.admin, &[("metadata_xml", &unsigned)]).await;
    assert!(refused.body.contains("no signing certificate"), "{}", refused.body);
    assert_eq!(app.count("org_saml").await, 0);
}

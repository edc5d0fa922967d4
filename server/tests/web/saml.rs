//! SAML 2.0 identity providers in Settings: named by their metadata or by
//! fields, checked (certificates read, expired ones refused), audited;
//! Chancery's SP metadata for each Organization, for the IdP to import; and
//! log-in through the IdP, whose responses the test signs and shapes: the
//! happy path makes a member, and each forged, stale, misdirected or replayed
//! response is refused and audited.

use std::io::Read;

use app::{
    ids::OrgId,
    server::{actor::Actor, domains},
};
use base64::{engine::general_purpose::STANDARD as BASE64, Engine};
use chrono::{TimeDelta, Utc};
use http::{header, Request, StatusCode};
use openssl::{
    asn1::Asn1Time,
    ec::{EcGroup, EcKey},
    hash::MessageDigest,
    nid::Nid,
    pkey::PKey,
    x509::{X509Name, X509},
};
use samael::{
    attribute::{Attribute, AttributeValue},
    crypto::{CertificateDer, Crypto, CryptoProvider},
    idp::{response_builder::build_response_template, CertificateParams, IdentityProvider, KeyType, Rsa},
    schema::{AttributeStatement, AuthnRequest, Response},
    signature::DigestAlgorithm,
    traits::ToXml,
};
use serde_json::json;

use crate::common::{Client, Org, TestApp, TestResponse, PASSWORD, PUBLIC_URL};

crate::on_both_databases!(
    chancery_publishes_sp_metadata_for_each_organization,
    an_admin_names_the_idp_by_its_metadata_or_by_fields,
    unusable_idp_settings_are_refused_naming_the_field,
    a_person_of_a_verified_domain_signs_in_through_the_idp_and_joins,
    forged_stale_or_misdirected_responses_are_refused_and_audited,
    idp_initiated_log_in_only_when_allowed_and_never_twice,
    with_just_in_time_membership_off_only_members_get_in,
    refused_responses_from_one_address_are_throttled,
    an_address_squatted_before_its_owner_arrives_is_taken_back,
);

async fn an_address_squatted_before_its_owner_arrives_is_taken_back(app: TestApp) {
    let idp = TestIdp::new("idp.acme.test");
    let mut org = app.organization("ada@acme.test", "Acme").await;
    saml_provider_for(&app, &mut org, &idp, false).await;
    // Eve signs up with Bob's address, never able to confirm it, and stays signed in.
    let mut eve = app.client("198.51.100.90");
    eve.sign_up("Bob", "bob@acme.test", PASSWORD).await;
    assert_eq!(eve.landing().await.status, StatusCode::OK);

    // Bob arrives through his IdP: the account is his, and Eve's hold on it ends.
    let mut bob = app.client("203.0.113.40");
    let request = leave_for_idp(&mut bob, "bob@acme.test").await;
    let response = idp.response(org.id, "bob@acme.test", Some(&request.id), &[]);
    assert_signed_in(&app, &post_to_acs(&app, &mut bob, org.id, &idp.signed(&response)).await).await;
    assert_eq!(bob.overview().await.json()["email_verified"], true);
    assert_eq!(eve.landing().await.json(), json!("LogIn"), "Eve's session ended");
    let refused = app.client("198.51.100.91").log_in("bob@acme.test", PASSWORD).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "Eve's password opens nothing");
    assert_eq!(app.audit_details("user.reclaim").await, [r#"{"password_cleared":true,"sessions_ended":1}"#]);
}

type Form<'a> = Vec<(&'a str, &'a str)>;

const REFUSED: &str = "organization.saml_login_refused";

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
    // A later change needs no certificate: the saved ones stay.
    let changed = [("idp_entity_id", IDP_ENTITY_ID), ("sso_url", IDP_SSO_URL), ("default_role", "billing")];
    let kept = save_saml(&mut org.admin, &changed).await;
    assert_eq!(kept.status, StatusCode::OK, "{}", kept.body);
    let kept = kept.json();
    assert_eq!(
        (kept["certificates"].clone(), kept["default_role"].clone()),
        (saved["certificates"].clone(), json!("billing"))
    );

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
    assert_eq!(
        actions,
        [
            "organization.saml_update",
            "organization.saml_update",
            "organization.saml_update",
            "organization.saml_remove"
        ]
    );
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

/// An IdP of the test's own: its key signs the responses the tests shape.
struct TestIdp {
    key_der: Vec<u8>,
    certificate: CertificateDer,
}

impl TestIdp {
    fn new(common_name: &str) -> Self {
        let idp = IdentityProvider::generate_new(KeyType::Rsa(Rsa::Rsa2048)).unwrap();
        let params = CertificateParams { common_name, issuer_name: common_name, days_until_expiration: 365 };
        let certificate = idp.create_certificate(&params).unwrap();
        Self { key_der: idp.export_private_key_der().unwrap(), certificate }
    }

    fn pem(&self) -> String {
        pem(self.certificate.der_data())
    }

    /// The response the IdP would send to Organization `org` for `name_id`,
    /// answering `request_id` (`None`: IdP-initiated), with `attributes`; valid
    /// for five minutes. Tests change it before signing.
    fn response(
        &self,
        org: OrgId,
        name_id: &str,
        request_id: Option<&str>,
        attributes: &[(&str, &[&str])],
    ) -> Response {
        let entity_id = format!("{PUBLIC_URL}/sso/saml/{org}");
        let acs = format!("{entity_id}/acs");
        let mut response = build_response_template(
            &self.certificate,
            name_id,
            &entity_id,
            IDP_ENTITY_ID,
            &acs,
            request_id.unwrap_or_default(),
            &[],
        );
        response.in_response_to = request_id.map(str::to_string);
        let now = Utc::now();
        let assertion = response.assertion.as_mut().unwrap();
        let conditions = assertion.conditions.as_mut().unwrap();
        conditions.not_before = Some(now - TimeDelta::seconds(5));
        conditions.not_on_or_after = Some(now + TimeDelta::minutes(5));
        let subject = assertion.subject.as_mut().unwrap();
        subject.name_id.as_mut().unwrap().format =
            Some("urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress".into());
        for confirmation in subject.subject_confirmations.iter_mut().flatten() {
            let data = confirmation.subject_confirmation_data.as_mut().unwrap();
            data.not_on_or_after = Some(now + TimeDelta::minutes(5));
            data.in_response_to = request_id.map(str::to_string);
        }
        let attributes = attributes
            .iter()
            .map(|(name, values)| Attribute {
                friendly_name: None,
                name: Some(name.to_string()),
                name_format: None,
                values: values
                    .iter()
                    .map(|value| AttributeValue {
                        attribute_type: Some("xs:string".into()),
                        value: Some(value.to_string()),
                    })
                    .collect(),
            })
            .collect();
        assertion.attribute_statements = Some(vec![AttributeStatement { attributes }]);
        response
    }

    /// The response's XML, signed with the IdP's key (every Signature template
    /// in it), RSA-SHA256 over SHA-256 digests as IdPs do today.
    fn signed(&self, response: &Response) -> String {
        let mut response = response.clone();
        let assertion_signature =
            response.assertion.as_mut().and_then(|assertion| assertion.signature.as_mut());
        for signature in response.signature.iter_mut().chain(assertion_signature) {
            for reference in &mut signature.signed_info.reference {
                reference.digest_method.algorithm = DigestAlgorithm::Sha256;
            }
        }
        self.signed_as_built(&response)
    }

    /// Signed as samael's template has it: SHA-1 digests.
    fn signed_as_built(&self, response: &Response) -> String {
        Crypto::sign_xml(response.to_string().unwrap(), &self.key_der).unwrap()
    }
}

/// `org` verifies `acme.test` (the operator's override) and turns on `idp` (typed in).
async fn saml_provider_for(app: &TestApp, org: &mut Org<'_>, idp: &TestIdp, idp_initiated: bool) {
    domains::verify_by_operator(&app.db, &Actor::Operator, org.id, "acme.test").await.unwrap();
    let certificate = idp.pem();
    let mut fields = vec![
        ("idp_entity_id", IDP_ENTITY_ID),
        ("sso_url", IDP_SSO_URL),
        ("certificate", certificate.as_str()),
        ("groups_attribute", "memberOf"),
    ];
    if idp_initiated {
        fields.push(("idp_initiated", "on"));
    }
    let saved = save_saml(&mut org.admin, &fields).await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
}

/// Starts single sign-on as `email` in `browser`: the AuthnRequest it is sent to the IdP with.
async fn leave_for_idp(browser: &mut Client<'_>, email: &str) -> AuthnRequest {
    leave_for_idp_from(browser, email, "").await
}

/// The same, from the log-in page asked to come back to page `next` after.
async fn leave_for_idp_from(browser: &mut Client<'_>, email: &str, next: &str) -> AuthnRequest {
    let started = browser.call("/_fn/sso/start", &[("email", email), ("next", next)]).await;
    let location =
        started.header("location").unwrap_or_else(|| panic!("not sent to the IdP: {}", started.body));
    assert!(location.starts_with(&format!("{IDP_SSO_URL}?SAMLRequest=")), "{location}");
    let url = url::Url::parse(location).unwrap();
    let (_, deflated) = url.query_pairs().find(|(name, _)| name == "SAMLRequest").unwrap();
    let mut xml = String::new();
    flate2::read::DeflateDecoder::new(&BASE64.decode(deflated.as_bytes()).unwrap()[..])
        .read_to_string(&mut xml)
        .unwrap();
    xml.parse().unwrap()
}

/// The IdP's page posts `signed_xml` to the Organization's ACS (cross-site: no
/// cookie goes with it), whose page posts it on in `browser`, which has the session.
async fn post_to_acs(app: &TestApp, browser: &mut Client<'_>, org: OrgId, signed_xml: &str) -> TestResponse {
    let encoded = BASE64.encode(signed_xml);
    let form = format!(
        "SAMLResponse={}&RelayState=",
        url::form_urlencoded::byte_serialize(encoded.as_bytes()).collect::<String>()
    );
    let cross_site = Request::post(format!("/sso/saml/{org}/acs"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ORIGIN, "https://idp.acme.test")
        .header("sec-fetch-site", "cross-site")
        .body(axum::body::Body::from(form))
        .unwrap();
    let page = app.client("198.51.100.99").send(cross_site).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.header("set-cookie").is_none(), "the ACS page starts no session");
    let policy = page.header("content-security-policy").unwrap();
    assert!(policy.contains("form-action 'self'") && policy.contains("script-src 'nonce-"), "{policy}");
    assert!(page.body.contains(&format!(r#"action="/sso/saml/{org}/continue""#)), "{}", page.body);
    let carried =
        page.body.split(r#"name="SAMLResponse" value=""#).nth(1).unwrap().split('"').next().unwrap();
    assert_eq!(carried, encoded, "the page carries the response as it came");
    browser.call(&format!("/sso/saml/{org}/continue"), &[("SAMLResponse", carried), ("RelayState", "")]).await
}

async fn assert_signed_in(app: &TestApp, back: &TestResponse) {
    assert_eq!(back.status, StatusCode::SEE_OTHER, "{}", back.body);
    let refusals = app.audit_details(REFUSED).await;
    assert_eq!(back.header("location"), Some("/admin"), "{refusals:?}");
}

async fn a_person_of_a_verified_domain_signs_in_through_the_idp_and_joins(app: TestApp) {
    let idp = TestIdp::new("idp.acme.test");
    let mut org = app.organization("ada@acme.test", "Acme").await;
    saml_provider_for(&app, &mut org, &idp, false).await;
    let research = org.admin.call("/_fn/groups/create", &[("name", "Research"), ("description", "")]).await;
    assert_eq!(research.status, StatusCode::OK, "{}", research.body);

    // A newcomer: no account yet. Chancery asks the IdP to sign her in...
    let mut grace = app.client("198.51.100.40");
    let request = leave_for_idp(&mut grace, "Grace@Acme.test").await;
    let entity_id = format!("{PUBLIC_URL}/sso/saml/{}", org.id);
    assert_eq!(request.issuer.as_ref().and_then(|issuer| issuer.value.as_deref()), Some(entity_id.as_str()));
    assert_eq!(request.assertion_consumer_service_url, Some(format!("{entity_id}/acs")));
    assert!(request.id.len() > 30, "an id nobody guesses: {}", request.id);
    // ...and it answers with her attributes.
    let attributes: [(&str, &[&str]); 2] =
        [("displayName", &["Grace Hopper"]), ("memberOf", &["Research", "Unknown team"])];
    let response = idp.response(org.id, "grace@acme.test", Some(&request.id), &attributes);
    let back = post_to_acs(&app, &mut grace, org.id, &idp.signed(&response)).await;
    assert_signed_in(&app, &back).await;
    let overview = grace.overview().await.json();
    assert_eq!(overview["user"]["email"], "grace@acme.test");
    assert_eq!(overview["user"]["name"], "Grace Hopper");
    assert_eq!(overview["org"]["id"], org.id.to_string());
    assert_eq!(overview["org"]["roles"], json!(["member"]), "the default role");
    let groups: Vec<(String,)> = sqlx::query_as(
        "SELECT g.name FROM user_groups g JOIN user_group_members m ON m.group_id = g.id
         JOIN users u ON u.id = m.user_id WHERE u.email_normalized = 'grace@acme.test'",
    )
    .fetch_all(app.db.pool())
    .await
    .unwrap();
    assert_eq!(groups, [("Research".to_string(),)], "the IdP's groups that exist here");

    // Her account has no password: the password form cannot open it.
    let refused = app.client("198.51.100.41").log_in("grace@acme.test", PASSWORD).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);

    // The Admin, sent to log in from the audit log, signs in through the IdP
    // and is back there; she may then require single sign-on.
    let mut ada = app.client("203.0.113.9");
    let request = leave_for_idp_from(&mut ada, "ada@acme.test", "/admin/audit-log?action=organization").await;
    let response = idp.response(org.id, "ada@acme.test", Some(&request.id), &[]);
    let back = post_to_acs(&app, &mut ada, org.id, &idp.signed(&response)).await;
    assert_eq!(back.header("location"), Some("/admin/audit-log?action=organization"));
    assert_eq!(ada.overview().await.json()["org"]["roles"], json!(["admin"]));
    let required = ada.call("/_fn/settings/require_sso", &[]).await;
    assert_eq!(required.status, StatusCode::OK, "{}", required.body);
    let refused = app.client("203.0.113.10").log_in("ada@acme.test", PASSWORD).await;
    assert!(refused.body.contains("requires single sign-on"), "{}", refused.body);

    let trail: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT action, actor_label, details FROM audit_events WHERE org_id = $1
         AND (action LIKE 'organization.saml%' OR action = 'user.log_in') ORDER BY id",
    )
    .bind(org.id)
    .fetch_all(app.db.pool())
    .await
    .unwrap();
    let actions: Vec<&str> = trail.iter().map(|(action, _, _)| action.as_str()).collect();
    assert_eq!(
        actions,
        ["organization.saml_update", "organization.saml_member_join", "user.log_in", "user.log_in"],
        "{trail:?}"
    );
    assert_eq!(trail[1].1, "grace@acme.test");
    assert_eq!(trail[2].2.as_deref(), Some(r#"{"via":"saml"}"#));
}

async fn forged_stale_or_misdirected_responses_are_refused_and_audited(app: TestApp) {
    let idp = TestIdp::new("idp.acme.test");
    let impostor = TestIdp::new("idp.acme.test");
    let mut org = app.organization("ada@acme.test", "Acme").await;
    saml_provider_for(&app, &mut org, &idp, false).await;
    let other = app.organization("bob@rival.test", "Rival").await;
    domains::verify_by_operator(&app.db, &Actor::Operator, other.id, "rival.test").await.unwrap();
    let (users, members) = (app.count("users").await, app.count("org_members").await);
    let org_id = org.id;
    let past = Utc::now() - TimeDelta::minutes(10);

    // (what is tried, how the signed XML is made from the request id, what the audit reason says)
    type Forge<'a> = Box<dyn Fn(&str) -> String + 'a>;
    let grace = |request_id: &str| idp.response(org_id, "grace@acme.test", Some(request_id), &[]);
    let cases: Vec<(&str, Forge, &str)> = vec![
        (
            "unsigned",
            Box::new(|id| {
                let mut response = grace(id);
                response.signature = None;
                response.to_string().unwrap()
            }),
            "not signed",
        ),
        ("signed by another key", Box::new(|id| impostor.signed(&grace(id))), "not signed"),
        ("signed over SHA-1 digests", Box::new(|id| idp.signed_as_built(&grace(id))), "allowed algorithm"),
        (
            "tampered after signing",
            Box::new(|id| idp.signed(&grace(id)).replace("grace@acme.test", "ada@acme.test")),
            "not signed",
        ),
        (
            "a forged assertion beside the signed one",
            Box::new(|id| {
                let signed = idp.signed(&grace(id));
                let start = signed.find("<saml2:Assertion").unwrap();
                let end = signed.find("</saml2:Assertion>").unwrap() + "</saml2:Assertion>".len();
                let forged = signed[start..end].replace("grace@acme.test", "ada@acme.test");
                format!("{}{forged}{}", &signed[..start], &signed[start..])
            }),
            "2 assertions",
        ),
        (
            "the signed assertion hidden in Extensions, a forged one in its place",
            Box::new(|id| {
                let mut unsigned = grace(id);
                unsigned.signature = None;
                unsigned.assertion.as_mut().unwrap().signature =
                    Some(samael::signature::Signature::template(
                        &unsigned.assertion.as_ref().unwrap().id,
                        &idp.certificate,
                    ));
                let signed = idp.signed(&unsigned);
                let start = signed.find("<saml2:Assertion").unwrap();
                let end = signed.find("</saml2:Assertion>").unwrap() + "</saml2:Assertion>".len();
                let original = &signed[start..end];
                let forged = original.replace("grace@acme.test", "ada@acme.test");
                signed.replace(original, &format!(
                "<saml2p:Extensions xmlns:saml2p=\"urn:oasis:names:tc:SAML:2.0:protocol\">{original}</saml2p:Extensions>{forged}"
            ))
            }),
            "2 assertions",
        ),
        (
            "expired",
            Box::new(|id| {
                let mut response = grace(id);
                response.issue_instant = past;
                let assertion = response.assertion.as_mut().unwrap();
                assertion.issue_instant = past;
                assertion.conditions.as_mut().unwrap().not_on_or_after = Some(past + TimeDelta::minutes(5));
                for confirmation in
                    assertion.subject.as_mut().unwrap().subject_confirmations.iter_mut().flatten()
                {
                    confirmation.subject_confirmation_data.as_mut().unwrap().not_on_or_after =
                        Some(past + TimeDelta::minutes(5));
                }
                idp.signed(&response)
            }),
            "xpired",
        ),
        (
            "for another audience",
            Box::new(|id| {
                let mut response = grace(id);
                let conditions = response.assertion.as_mut().unwrap().conditions.as_mut().unwrap();
                conditions.audience_restrictions.as_mut().unwrap()[0].audience =
                    vec!["https://other-sp.test".into()];
                idp.signed(&response)
            }),
            "AudienceRequirement",
        ),
        (
            "for no audience",
            Box::new(|id| {
                let mut response = grace(id);
                response.assertion.as_mut().unwrap().conditions.as_mut().unwrap().audience_restrictions =
                    None;
                idp.signed(&response)
            }),
            "names no audience",
        ),
        (
            "for another Organization's ACS",
            Box::new(|id| {
                let mut response = idp.response(other.id, "grace@acme.test", Some(id), &[]);
                let entity_id = format!("{PUBLIC_URL}/sso/saml/{org_id}");
                response
                    .assertion
                    .as_mut()
                    .unwrap()
                    .conditions
                    .as_mut()
                    .unwrap()
                    .audience_restrictions
                    .as_mut()
                    .unwrap()[0]
                    .audience = vec![entity_id];
                idp.signed(&response)
            }),
            "destination",
        ),
        (
            "answering another request",
            Box::new(|_| idp.signed(&grace("_someone-elses-request"))),
            "InResponseTo",
        ),
        (
            "from another issuer",
            Box::new(|id| {
                let mut response = grace(id);
                response.issuer = None;
                response.assertion.as_mut().unwrap().issuer.value = Some("https://evil.test".into());
                idp.signed(&response)
            }),
            "Issuer",
        ),
        (
            "naming another Organization's person",
            Box::new(|id| idp.signed(&idp.response(org_id, "bob@rival.test", Some(id), &[]))),
            "not in a domain this Organization verified",
        ),
        (
            "naming no address",
            Box::new(|id| idp.signed(&idp.response(org_id, "grace", Some(id), &[]))),
            "not an email address",
        ),
        (
            "with a DTD",
            Box::new(|id| format!("<!DOCTYPE r [<!ENTITY x \"y\">]>{}", idp.signed(&grace(id)))),
            "DTD",
        ),
    ];
    for (what, forge, reason) in cases {
        let mut browser = app.client("198.51.100.60");
        let request = leave_for_idp(&mut browser, "grace@acme.test").await;
        let back = post_to_acs(&app, &mut browser, org_id, &forge(&request.id)).await;
        assert_eq!(back.status, StatusCode::SEE_OTHER, "{what}: {}", back.body);
        assert_eq!(back.header("location"), Some("/login"), "{what}");
        assert_eq!(browser.overview().await.status, StatusCode::UNAUTHORIZED, "{what}: not signed in");
        let notice = browser.call("/_fn/sso/notice", &[]).await.json();
        assert!(
            notice.as_str().is_some_and(|notice| !notice.is_empty()),
            "{what}: the log-in page says why: {notice}"
        );
        let refusals = app.audit_details(REFUSED).await;
        let details = refusals.last().unwrap_or_else(|| panic!("{what}: not audited"));
        assert!(details.contains(reason), "{what}: {details}");
    }
    assert_eq!((app.count("users").await, app.count("org_members").await), (users, members), "nobody let in");
    assert_eq!(app.audit_details(REFUSED).await.len(), 15, "one event per refusal");
}

async fn idp_initiated_log_in_only_when_allowed_and_never_twice(app: TestApp) {
    let idp = TestIdp::new("idp.acme.test");
    let mut org = app.organization("ada@acme.test", "Acme").await;
    saml_provider_for(&app, &mut org, &idp, false).await;
    let unsolicited = idp.signed(&idp.response(org.id, "grace@acme.test", None, &[]));

    // Off (the default): a response nobody asked for is refused.
    let mut browser = app.client("198.51.100.70");
    let back = post_to_acs(&app, &mut browser, org.id, &unsolicited).await;
    assert_eq!(back.header("location"), Some("/login"));
    let notice = browser.call("/_fn/sso/notice", &[]).await.json();
    assert!(notice.as_str().unwrap().contains("not started in this browser"), "{notice}");

    // On: the IdP's dashboard signs her in; the same response a second time is a replay.
    saml_provider_for(&app, &mut org, &idp, true).await;
    let mut browser = app.client("198.51.100.71");
    assert_signed_in(&app, &post_to_acs(&app, &mut browser, org.id, &unsolicited).await).await;
    assert_eq!(browser.overview().await.json()["user"]["email"], "grace@acme.test");
    let mut replayer = app.client("198.51.100.72");
    let back = post_to_acs(&app, &mut replayer, org.id, &unsolicited).await;
    assert_eq!(back.header("location"), Some("/login"));
    let notice = replayer.call("/_fn/sso/notice", &[]).await.json();
    assert!(notice.as_str().unwrap().contains("already used"), "{notice}");
    // A response that says it answers a request must answer this browser's.
    let mut browser = app.client("198.51.100.73");
    let request = leave_for_idp(&mut browser, "grace@acme.test").await;
    let misdirected = idp.signed(&idp.response(org.id, "grace@acme.test", Some("_not-this-one"), &[]));
    assert_eq!(
        post_to_acs(&app, &mut browser, org.id, &misdirected).await.header("location"),
        Some("/login")
    );
    let answered = idp.signed(&idp.response(org.id, "grace@acme.test", Some(&request.id), &[]));
    let mut browser = app.client("198.51.100.74");
    leave_for_idp(&mut browser, "grace@acme.test").await;
    assert_eq!(
        post_to_acs(&app, &mut browser, org.id, &answered).await.header("location"),
        Some("/login"),
        "another browser's request"
    );

    let reasons = app.audit_details(REFUSED).await;
    assert_eq!(reasons.len(), 4, "{reasons:?}");
    assert!(reasons[0].contains("IdP-initiated log-in is off"), "{reasons:?}");
    assert!(reasons[1].contains("replay"), "{reasons:?}");
    assert!(reasons[2].contains("not one made in this browser"), "{reasons:?}");
    assert!(reasons[3].contains("not one made in this browser"), "{reasons:?}");
}

async fn with_just_in_time_membership_off_only_members_get_in(app: TestApp) {
    let idp = TestIdp::new("idp.acme.test");
    let mut org = app.organization("ada@acme.test", "Acme").await;
    saml_provider_for(&app, &mut org, &idp, false).await;
    let (_, _) = app.join(&mut org, "bob@acme.test", &["member"]).await;
    let off = save_saml(
        &mut org.admin,
        &[("idp_entity_id", IDP_ENTITY_ID), ("sso_url", IDP_SSO_URL), ("default_role", "none")],
    )
    .await;
    assert_eq!(off.status, StatusCode::OK, "{}", off.body);
    assert!(off.json()["default_role"].is_null(), "{}", off.body);
    let users = app.count("users").await;

    // Someone the IdP knows but the Organization never invited: no account, no membership.
    let mut grace = app.client("198.51.100.80");
    let request = leave_for_idp(&mut grace, "grace@acme.test").await;
    let response = idp.response(org.id, "grace@acme.test", Some(&request.id), &[]);
    let back = post_to_acs(&app, &mut grace, org.id, &idp.signed(&response)).await;
    assert_eq!(back.header("location"), Some("/login"));
    let notice = grace.call("/_fn/sso/notice", &[]).await.json();
    assert!(notice.as_str().unwrap().contains("invite you"), "{notice}");
    assert_eq!(app.count("users").await, users);

    // Members get in as they are.
    for email in ["bob@acme.test", "ada@acme.test"] {
        let mut browser = app.client("198.51.100.81");
        let request = leave_for_idp(&mut browser, email).await;
        let response = idp.response(org.id, email, Some(&request.id), &[]);
        assert_signed_in(&app, &post_to_acs(&app, &mut browser, org.id, &idp.signed(&response)).await).await;
        assert_eq!(browser.overview().await.json()["user"]["email"], email);
    }
    let refusals = app.audit_details(REFUSED).await;
    assert!(refusals.len() == 1 && refusals[0].contains("not a member"), "{refusals:?}");
}

async fn refused_responses_from_one_address_are_throttled(app: TestApp) {
    let idp = TestIdp::new("idp.acme.test");
    let mut org = app.organization("ada@acme.test", "Acme").await;
    saml_provider_for(&app, &mut org, &idp, false).await;
    let unsolicited = idp.signed(&idp.response(org.id, "grace@acme.test", None, &[]));
    let refusals = || async { app.audit_details(REFUSED).await.len() };
    for _ in 0..app::server::throttle::SSO_REFUSALS_PER_CLIENT {
        let mut browser = app.client("198.51.100.66");
        assert_eq!(
            post_to_acs(&app, &mut browser, org.id, &unsolicited).await.header("location"),
            Some("/login")
        );
    }
    assert_eq!(refusals().await, 20);

    // Past its allowance, the address's next answer is not read (nor audited again).
    let mut browser = app.client("198.51.100.66");
    assert_eq!(
        post_to_acs(&app, &mut browser, org.id, &unsolicited).await.header("location"),
        Some("/login")
    );
    let notice = browser.call("/_fn/sso/notice", &[]).await.json();
    assert!(notice.as_str().unwrap().contains("Too many failed single sign-ons"), "{notice}");
    assert_eq!(refusals().await, 20);

    // Others, and the Admin's own log-in through the IdP, are not held up.
    let mut ada = app.client("203.0.113.9");
    let request = leave_for_idp(&mut ada, "ada@acme.test").await;
    let response = idp.response(org.id, "ada@acme.test", Some(&request.id), &[]);
    assert_signed_in(&app, &post_to_acs(&app, &mut ada, org.id, &idp.signed(&response)).await).await;
}

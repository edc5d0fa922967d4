//! Single sign-on with SAML 2.0 (Web Browser SSO): an Organization names its
//! identity provider (IdP) by its metadata XML, or by its entity id, SSO URL
//! and signing certificate; Chancery is the service provider (SP) with one
//! entity id and Assertion Consumer Service per Organization, published as SP
//! metadata for the IdP to import.
//!
//! As with OpenID Connect, the IdP is trusted for the Organization's verified
//! domains only. Its certificates are public keys: stored as they are (base64
//! DER), shown with their subject, expiry and fingerprint.
//!
//! A log-in starts here (an AuthnRequest, HTTP-Redirect binding) or, when the
//! Admin allows it, at the IdP. The IdP's response comes back by HTTP-POST and
//! is refused unless: it is one assertion (no signature wrapping), signed by
//! one of the IdP's certificates (libxmlsec1; only what the signature covers is
//! read), issued by the IdP, for this Organization's entity id (audience) and
//! ACS (recipient), within its validity (60 s of clock skew), in answer to the
//! request this browser made (`InResponseTo`), never seen before (replay), and
//! naming an address in a domain the Organization verified.

use base64::{engine::general_purpose::STANDARD as BASE64, Engine};
use quick_xml::{events::Event, name::ResolveResult, NsReader};
use samael::{
    attribute::Attribute,
    crypto::AllowedSignatureAlgorithm,
    key_info::{KeyInfo, X509Data},
    metadata::{
        Endpoint, EntityDescriptor, IdpSsoDescriptor, IndexedEndpoint, KeyDescriptor, SpSsoDescriptor,
        HTTP_POST_BINDING, HTTP_REDIRECT_BINDING,
    },
    schema::Assertion,
    service_provider::{Error as SamlError, ServiceProvider},
    traits::ToXml,
};
use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;

use super::{
    actor::{Actor, Client},
    audit::{self, AuditEvent},
    authz,
    db::Db,
    sso::{self, Identity, Protocol, Refusal, SignedIn},
};
use crate::{
    error::{AppError, AppResult},
    ids::OrgId,
    model::{CertificateView, OrgRole, SamlInput, SamlPanel, SamlSettings},
    time::Timestamp,
    validate,
};

/// The largest metadata document read (IdPs' are a few KB).
const METADATA_MAX_BYTES: usize = 256 * 1024;
/// The largest SAMLResponse read, base64 (IdPs' are a few KB; big group lists more).
const RESPONSE_MAX_BYTES: usize = 1024 * 1024;
const EMAIL_NAME_ID: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress";
const ASSERTION_NS: &[u8] = b"urn:oasis:names:tc:SAML:2.0:assertion";
/// How long someone may spend at their IdP before coming back.
const PENDING_FOR_MS: i64 = 10 * 60 * 1000;
/// Clocks of ours and the IdP's may differ by this much.
const CLOCK_SKEW: chrono::TimeDelta = chrono::TimeDelta::seconds(60);
/// An assertion is accepted until this long after the IdP issued it.
const MAX_ISSUE_DELAY: chrono::TimeDelta = chrono::TimeDelta::minutes(3);
/// Attributes IdPs put a person's display name in, most specific first...
const NAME_ATTRIBUTES: [&str; 4] = [
    "displayName",
    "urn:oid:2.16.840.1.113730.3.1.241",
    "http://schemas.microsoft.com/identity/claims/displayname",
    "name",
];
/// ...or their given name and surname (LDAP, its OIDs, and the claim URIs of ADFS and Entra ID).
const GIVEN_NAME_ATTRIBUTES: [&str; 3] =
    ["givenName", "urn:oid:2.5.4.42", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname"];
const SURNAME_ATTRIBUTES: [&str; 4] =
    ["sn", "surname", "urn:oid:2.5.4.4", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname"];

/// Chancery's entity id for the Organization: the audience its assertions must name.
pub fn sp_entity_id(public_url: &str, org_id: OrgId) -> String {
    format!("{public_url}/sso/saml/{org_id}")
}

/// Where the IdP posts its responses (HTTP-POST binding).
pub fn acs_url(public_url: &str, org_id: OrgId) -> String {
    format!("{}/acs", sp_entity_id(public_url, org_id))
}

pub fn metadata_url(public_url: &str, org_id: OrgId) -> String {
    format!("{}/metadata", sp_entity_id(public_url, org_id))
}

/// The IdP as Chancery trusts it.
#[derive(Debug, PartialEq, Eq)]
struct Idp {
    entity_id: String,
    sso_url: String,
    /// Signing certificates, DER.
    certificates: Vec<Vec<u8>>,
}

type ConfigRow = (String, String, String, String, String, String, i64, Option<Timestamp>, Timestamp);

/// An Organization's IdP, as stored.
struct Config {
    idp: Idp,
    /// `None`: nobody is made a member at log-in.
    default_role: Option<OrgRole>,
    email_attribute: String,
    groups_attribute: String,
    idp_initiated: bool,
    enabled: bool,
    updated_at: Timestamp,
}

async fn config(conn: &mut AnyConnection, org_id: OrgId) -> AppResult<Option<Config>> {
    let row: Option<ConfigRow> = sqlx::query_as(
        "SELECT idp_entity_id, sso_url, certificates, default_role, email_attribute, groups_attribute,
                idp_initiated, enabled_at, updated_at
         FROM org_saml WHERE org_id = $1",
    )
    .bind(org_id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(
        |(
            entity_id,
            sso_url,
            certificates,
            role,
            email_attribute,
            groups_attribute,
            idp_initiated,
            enabled_at,
            updated_at,
        )| {
            Config {
                idp: Idp {
                    entity_id,
                    sso_url,
                    certificates: certificates.lines().filter_map(|line| BASE64.decode(line).ok()).collect(),
                },
                default_role: sso::stored_default_role(&role),
                email_attribute,
                groups_attribute,
                idp_initiated: idp_initiated != 0,
                enabled: enabled_at.is_some(),
                updated_at,
            }
        },
    ))
}

impl Config {
    fn settings(&self) -> SamlSettings {
        SamlSettings {
            idp_entity_id: self.idp.entity_id.clone(),
            sso_url: self.idp.sso_url.clone(),
            certificates: self.idp.certificates.iter().filter_map(|der| certificate_view(der).ok()).collect(),
            default_role: self.default_role,
            email_attribute: self.email_attribute.clone(),
            groups_attribute: self.groups_attribute.clone(),
            idp_initiated: self.idp_initiated,
            enabled: self.enabled,
            updated_at: self.updated_at,
        }
    }
}

/// The Organization's IdP and what to register with it, for its Admins.
#[tracing::instrument(name = "saml::panel", skip_all, fields(actor = actor.kind(), org_id = %org_id), err(level = "debug"))]
pub async fn panel(db: &Db, actor: &Actor, public_url: &str, org_id: OrgId) -> AppResult<SamlPanel> {
    let mut conn = db.pool().acquire().await?;
    authz::org_admin(&mut conn, actor, org_id).await?;
    Ok(SamlPanel {
        settings: config(&mut conn, org_id).await?.map(|config| config.settings()),
        sp_entity_id: sp_entity_id(public_url, org_id),
        acs_url: acs_url(public_url, org_id),
        metadata_url: metadata_url(public_url, org_id),
    })
}

/// Saves the Organization's IdP, from its metadata or typed fields.
#[tracing::instrument(name = "saml::save", skip_all, fields(actor = actor.kind(), org_id = %org_id), err(level = "debug"))]
pub async fn save(
    db: &Db,
    actor: &Actor,
    client: &Client,
    org_id: OrgId,
    input: SamlInput,
) -> AppResult<SamlSettings> {
    let typed = [&input.idp_entity_id, &input.sso_url, &input.certificate];
    let idp = if input.metadata_xml.trim().is_empty() {
        idp_from_fields(&input.idp_entity_id, &input.sso_url, &input.certificate)?
    } else if typed.iter().all(|field| field.trim().is_empty()) {
        idp_from_metadata(&input.metadata_xml)?
    } else {
        return Err(AppError::invalid(
            "metadata_xml",
            "Give either the IdP's metadata or its entity id, SSO URL and certificate, not both.",
        ));
    };
    let default_role = sso::default_role(&input.default_role)?;
    let email_attribute = attribute_name("email_attribute", &input.email_attribute)?;
    let groups_attribute = attribute_name("groups_attribute", &input.groups_attribute)?;

    let mut tx = db.begin().await?;
    let admin = authz::org_admin(&mut tx, actor, org_id).await?;
    if input.enabled {
        sso::refuse_if_other_provider_on(&mut tx, org_id, Protocol::Saml).await?;
    } else {
        sso::refuse_if_required(&mut tx, org_id, "enabled").await?;
    }
    let before = config(&mut tx, org_id).await?;
    let mut idp = idp;
    if idp.certificates.is_empty() {
        // Fields typed without a certificate keep the saved ones.
        idp.certificates = before.as_ref().map(|before| before.idp.certificates.clone()).unwrap_or_default();
        if idp.certificates.is_empty() {
            return Err(AppError::invalid("certificate", "Paste the IdP's signing certificate (PEM)."));
        }
    }
    let now = Timestamp::now();
    let enabled_at =
        input.enabled.then(|| before.as_ref().filter(|b| b.enabled).map_or(now, |b| b.updated_at));
    let certificates: Vec<String> = idp.certificates.iter().map(|der| BASE64.encode(der)).collect();
    sqlx::query(
        "INSERT INTO org_saml (org_id, idp_entity_id, sso_url, certificates, default_role, email_attribute,
                               groups_attribute, idp_initiated, enabled_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (org_id) DO UPDATE SET idp_entity_id = excluded.idp_entity_id,
             sso_url = excluded.sso_url, certificates = excluded.certificates,
             default_role = excluded.default_role, email_attribute = excluded.email_attribute,
             groups_attribute = excluded.groups_attribute, idp_initiated = excluded.idp_initiated,
             enabled_at = excluded.enabled_at, updated_at = excluded.updated_at",
    )
    .bind(org_id)
    .bind(&idp.entity_id)
    .bind(&idp.sso_url)
    .bind(certificates.join("\n"))
    .bind(sso::default_role_text(default_role))
    .bind(&email_attribute)
    .bind(&groups_attribute)
    .bind(i64::from(input.idp_initiated))
    .bind(enabled_at)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let fingerprints: Vec<String> = idp
        .certificates
        .iter()
        .filter_map(|der| certificate_view(der).ok())
        .map(|view| view.sha256)
        .collect();
    let details = serde_json::json!({
        "idp_entity_id": idp.entity_id,
        "sso_url": idp.sso_url,
        "certificates_sha256": fingerprints,
        "from_metadata": !input.metadata_xml.trim().is_empty(),
        "default_role": sso::default_role_text(default_role),
        "email_attribute": email_attribute,
        "groups_attribute": groups_attribute,
        "idp_initiated": input.idp_initiated,
        "enabled": input.enabled,
    });
    let event = AuditEvent::new("organization.saml_update", "organization", org_id).in_org(org_id);
    audit::record(&mut tx, &admin, client, event.with_details(details)).await?;
    let saved = config(&mut tx, org_id).await?.ok_or(AppError::Internal)?;
    tx.commit().await?;
    Ok(saved.settings())
}

/// Forgets the Organization's IdP.
#[tracing::instrument(name = "saml::remove", skip_all, fields(actor = actor.kind(), org_id = %org_id), err(level = "debug"))]
pub async fn remove(db: &Db, actor: &Actor, client: &Client, org_id: OrgId) -> AppResult<()> {
    sso::remove_provider(db, actor, client, org_id, Protocol::Saml).await
}

/// Chancery's SP metadata for the Organization, for its IdP to import: entity
/// id, the ACS (HTTP-POST), signed assertions wanted, email NameIDs. Public,
/// as every SP's is; `NotFound` for an unknown Organization.
#[tracing::instrument(name = "saml::sp_metadata", skip_all, fields(org_id = %org_id), err(level = "debug"))]
pub async fn sp_metadata(db: &Db, public_url: &str, org_id: OrgId) -> AppResult<String> {
    let known: Option<(OrgId,)> = sqlx::query_as("SELECT id FROM organizations WHERE id = $1")
        .bind(org_id)
        .fetch_optional(db.pool())
        .await?;
    known.ok_or(AppError::NotFound)?;
    let descriptor = SpSsoDescriptor {
        protocol_support_enumeration: Some("urn:oasis:names:tc:SAML:2.0:protocol".into()),
        authn_requests_signed: Some(false),
        want_assertions_signed: Some(true),
        name_id_formats: Some(vec![EMAIL_NAME_ID.into()]),
        assertion_consumer_services: vec![IndexedEndpoint {
            binding: HTTP_POST_BINDING.into(),
            location: acs_url(public_url, org_id),
            index: 0,
            is_default: Some(true),
            ..IndexedEndpoint::default()
        }],
        ..SpSsoDescriptor::default()
    };
    let entity = EntityDescriptor {
        entity_id: Some(sp_entity_id(public_url, org_id)),
        sp_sso_descriptors: Some(vec![descriptor]),
        ..EntityDescriptor::default()
    };
    entity.to_string().map_err(|err| {
        tracing::error!(error = %err, "SP metadata could not be written");
        AppError::Internal
    })
}

/// The IdP from its metadata document: its entity id, its HTTP-Redirect SSO
/// service, and its signing certificates.
fn idp_from_metadata(xml: &str) -> AppResult<Idp> {
    let invalid = |why: String| AppError::invalid("metadata_xml", why);
    if xml.len() > METADATA_MAX_BYTES {
        return Err(invalid("The metadata is larger than 256 KB: is it the IdP's own?".into()));
    }
    if root_element(xml) != Some("EntityDescriptor") {
        return Err(invalid("This is not SAML metadata: its root must be an md:EntityDescriptor.".into()));
    }
    let entity: EntityDescriptor = xml
        .trim()
        .parse()
        .map_err(|err| invalid(format!("This is not SAML metadata (an md:EntityDescriptor): {err}")))?;
    let entity_id = entity
        .entity_id
        .clone()
        .filter(|id| !id.trim().is_empty())
        .ok_or_else(|| invalid("The metadata names no entityID.".into()))?;
    let descriptors = entity.idp_sso_descriptors.unwrap_or_default();
    if descriptors.is_empty() {
        return Err(invalid("The metadata has no IDPSSODescriptor: is it an IdP's, not an SP's?".into()));
    }
    let sso_url = descriptors
        .iter()
        .flat_map(|d| &d.single_sign_on_services)
        .find(|service| service.binding == HTTP_REDIRECT_BINDING)
        .map(|service| service.location.clone())
        .ok_or_else(|| {
            invalid("The IdP offers no SingleSignOnService with the HTTP-Redirect binding.".into())
        })?;
    let sso_url = sso::provider_url("metadata_xml", &sso_url, "https://idp.example.com/sso")?;
    let keys: Vec<_> = descriptors.iter().flat_map(|d| &d.key_descriptors).collect();
    let signing: Vec<_> = keys.iter().filter(|key| key.key_use.as_deref() == Some("signing")).collect();
    let unspecified: Vec<_> =
        keys.iter().filter(|key| key.key_use.as_deref().is_none_or(str::is_empty)).collect();
    let chosen = if signing.is_empty() { unspecified } else { signing };
    let mut certificates = Vec::new();
    for key in chosen {
        for text in key.key_info.x509_data.iter().flat_map(|data| &data.certificates) {
            let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
            let der = BASE64
                .decode(compact)
                .map_err(|_| invalid("A certificate in the metadata is not base64.".into()))?;
            certificate_view(&der).map_err(|why| invalid(why.to_string()))?;
            certificates.push(der);
        }
    }
    if certificates.is_empty() {
        return Err(invalid(
            "The metadata has no signing certificate: Chancery only accepts signed assertions.".into(),
        ));
    }
    Ok(Idp { entity_id, sso_url, certificates })
}

/// What the browser's session keeps while the person is at their IdP.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Pending {
    pub org_id: OrgId,
    pub email: String,
    /// The AuthnRequest's id: the response must answer it.
    request_id: String,
    started_at: Timestamp,
}

/// Chancery as the Organization's IdP must see it, for checking its responses.
fn service_provider(public_url: &str, org_id: OrgId, config: &Config) -> ServiceProvider {
    let key_descriptors = config
        .idp
        .certificates
        .iter()
        .map(|der| KeyDescriptor {
            key_use: Some("signing".into()),
            key_info: KeyInfo {
                id: None,
                x509_data: Some(X509Data { certificates: vec![BASE64.encode(der)] }),
            },
            encryption_methods: None,
        })
        .collect();
    let idp = IdpSsoDescriptor {
        id: None,
        valid_until: None,
        cache_duration: None,
        protocol_support_enumeration: Some("urn:oasis:names:tc:SAML:2.0:protocol".into()),
        error_url: None,
        signature: None,
        key_descriptors,
        organization: None,
        contact_people: Vec::new(),
        artifact_resolution_service: Vec::new(),
        single_logout_services: Vec::new(),
        manage_name_id_services: Vec::new(),
        name_id_formats: Vec::new(),
        want_authn_requests_signed: None,
        single_sign_on_services: vec![Endpoint {
            binding: HTTP_REDIRECT_BINDING.into(),
            location: config.idp.sso_url.clone(),
            response_location: None,
        }],
        name_id_mapping_services: Vec::new(),
        assertion_id_request_services: Vec::new(),
        attribute_profiles: Vec::new(),
        attributes: Vec::new(),
    };
    ServiceProvider {
        entity_id: Some(sp_entity_id(public_url, org_id)),
        metadata_url: Some(metadata_url(public_url, org_id)),
        acs_url: Some(acs_url(public_url, org_id)),
        slo_url: None,
        idp_metadata: EntityDescriptor {
            entity_id: Some(config.idp.entity_id.clone()),
            idp_sso_descriptors: Some(vec![idp]),
            ..EntityDescriptor::default()
        },
        allow_idp_initiated: config.idp_initiated,
        max_clock_skew: CLOCK_SKEW,
        max_issue_delay: MAX_ISSUE_DELAY,
        // No SHA-1, no algorithm the IdP's key was not made for.
        allowed_signature_algorithms: Some(vec![
            AllowedSignatureAlgorithm::RsaSha256,
            AllowedSignatureAlgorithm::RsaSha384,
            AllowedSignatureAlgorithm::RsaSha512,
            AllowedSignatureAlgorithm::EcdsaSha256,
            AllowedSignatureAlgorithm::EcdsaSha384,
            AllowedSignatureAlgorithm::EcdsaSha512,
        ]),
        ..ServiceProvider::default()
    }
}

/// Where to send `email`, of the Organization `org_id` whose IdP is on (an
/// AuthnRequest in the URL), and what their session must keep meanwhile.
#[tracing::instrument(name = "saml::start", skip_all, fields(org_id = %org_id), err(level = "debug"))]
pub async fn start(
    db: &Db,
    public_url: &str,
    org_id: OrgId,
    email: validate::Email,
) -> AppResult<(String, Pending)> {
    let stored = config(&mut *db.pool().acquire().await?, org_id).await?;
    let config = stored.filter(|config| config.enabled).ok_or(AppError::NotFound)?;
    let sp = service_provider(public_url, org_id, &config);
    let unwritable = |err: Box<dyn std::error::Error>| {
        tracing::error!(error = %err, "an AuthnRequest could not be written");
        AppError::Internal
    };
    let mut request = sp.make_authentication_request(&config.idp.sso_url).map_err(unwritable)?;
    // samael's ids have 32 random bits: the one a response must answer is not to be guessed.
    request.id = format!("_{}", uuid::Uuid::new_v4().simple());
    let url = request.redirect("").map_err(unwritable)?.ok_or(AppError::Internal)?;
    let pending =
        Pending { org_id, email: email.display, request_id: request.id, started_at: Timestamp::now() };
    Ok((url.to_string(), pending))
}

/// Finishes a log-in with the `SAMLResponse` the IdP posted to the
/// Organization's ACS: checks everything, then signs the person in (creating
/// their account and membership on their first visit). `pending` is the log-in
/// this browser started, if any. A refusal is audited in the Organization.
#[tracing::instrument(name = "saml::finish", skip_all, fields(org_id = %org_id), err(level = "debug"))]
pub async fn finish(
    db: &Db,
    public_url: &str,
    client: &Client,
    org_id: OrgId,
    pending: Option<Pending>,
    saml_response: &str,
) -> AppResult<SignedIn> {
    let config = config(&mut *db.pool().acquire().await?, org_id).await?.ok_or(AppError::NotFound)?;
    // A log-in started for another Organization answers nothing here.
    let pending = pending.filter(|pending| pending.org_id == org_id);
    let verified = verified_identity(db, public_url, org_id, &config, pending.as_ref(), saml_response).await;
    let claimed = pending.map(|pending| pending.email).unwrap_or_default();
    sso::sign_in(db, client, org_id, Protocol::Saml, config.default_role, &claimed, verified).await
}

async fn verified_identity(
    db: &Db,
    public_url: &str,
    org_id: OrgId,
    config: &Config,
    pending: Option<&Pending>,
    saml_response: &str,
) -> Result<Identity, Refusal> {
    if !config.enabled {
        return Err(Refusal::new(
            "SAML log-in is off",
            "Single sign-on is not turned on for your organization. Log in with your password.",
        ));
    }
    let request_id = match pending {
        Some(pending) if Timestamp::now().0 - pending.started_at.0 > PENDING_FOR_MS => {
            return Err(Refusal::new(
                "the person took more than 10 minutes at the IdP",
                "Single sign-on took too long. Start again.",
            ))
        }
        Some(pending) => Some(pending.request_id.as_str()),
        None if config.idp_initiated => None,
        None => {
            return Err(Refusal::new(
                "the response answers no log-in started in this browser, and IdP-initiated log-in is off",
                "Single sign-on was not started in this browser, or it was already used. Start again from Chancery's log-in page.",
            ))
        }
    };
    let xml = decoded(saml_response)?;
    let assertion = verified_assertion(&service_provider(public_url, org_id, config), &xml, request_id)?;
    spend(db, org_id, &assertion).await?;
    let identity = identity_of(&assertion, config)?;
    sso::refuse_unless_verified_here(db, org_id, &identity.email).await?;
    Ok(identity)
}

/// The response's XML, from the form's base64.
fn decoded(saml_response: &str) -> Result<String, Refusal> {
    if saml_response.len() > RESPONSE_MAX_BYTES {
        return Err(Refusal::unverified("the SAMLResponse is larger than 1 MB"));
    }
    let compact: String = saml_response.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = BASE64.decode(compact).map_err(|_| Refusal::unverified("the SAMLResponse is not base64"))?;
    String::from_utf8(bytes).map_err(|_| Refusal::unverified("the SAMLResponse is not UTF-8 XML"))
}

/// The one assertion of a response, checked (see the module's documentation).
/// Not async: samael's errors do not cross threads.
fn verified_assertion(
    sp: &ServiceProvider,
    xml: &str,
    request_id: Option<&str>,
) -> Result<Assertion, Refusal> {
    if xml.contains("<!DOCTYPE") || xml.contains("<!ENTITY") {
        return Err(Refusal::unverified("the response declares a DTD"));
    }
    match assertions_in(xml) {
        Ok(1) => {}
        Ok(count) => {
            return Err(Refusal::unverified(format!(
                "the response holds {count} assertions where one is expected (signature wrapping?)"
            )))
        }
        Err(err) => return Err(Refusal::unverified(format!("the response is not XML: {err}"))),
    }
    let request_ids = request_id.map(|id| [id]);
    let assertion =
        sp.parse_xml_response(xml, request_ids.as_ref().map(|ids| &ids[..])).map_err(refusal_of)?;
    // samael checks the audience only when there is one: Chancery wants it named.
    let audiences =
        assertion.conditions.as_ref().and_then(|conditions| conditions.audience_restrictions.as_ref());
    if audiences.is_none_or(|restrictions| restrictions.is_empty()) {
        return Err(Refusal::unverified("the assertion names no audience"));
    }
    // With IdP-initiated log-in allowed samael reads no InResponseTo: one that is there must be ours.
    for data in bearer_confirmations(&assertion) {
        if let Some(answered) = data.in_response_to.as_deref() {
            if Some(answered) != request_id {
                return Err(Refusal::new(
                    format!("the assertion answers request {answered:?}, not one made in this browser"),
                    NOT_THIS_BROWSER,
                ));
            }
        }
    }
    Ok(assertion)
}

const NOT_THIS_BROWSER: &str =
    "This answer from your identity provider is not for the log-in started in this browser. Start again.";

fn refusal_of(err: SamlError) -> Refusal {
    let reason = err.to_string();
    match err {
        SamlError::FailedToValidateSignature => Refusal::unverified(format!(
            "the response is not signed by the IdP's certificate with an allowed algorithm ({reason})"
        )),
        SamlError::AssertionExpired { .. }
        | SamlError::ResponseExpired { .. }
        | SamlError::AssertionConditionExpired { .. }
        | SamlError::AssertionSubjectConfirmationExpired { .. } => Refusal::new(
            reason,
            "Your identity provider's answer has expired (or its clock and Chancery's disagree). Start again.",
        ),
        SamlError::AssertionInResponseToInvalid { .. } | SamlError::ResponseInResponseToInvalid { .. } => {
            Refusal::new(reason, NOT_THIS_BROWSER)
        }
        SamlError::ResponseBadStatusCode { .. } => {
            Refusal::new(reason, "Your identity provider did not sign you in.")
        }
        _ => Refusal::unverified(reason),
    }
}

/// How many (plain or encrypted) SAML assertions the document holds, wherever they are.
fn assertions_in(xml: &str) -> Result<usize, quick_xml::Error> {
    let mut reader = NsReader::from_str(xml);
    let mut count = 0;
    loop {
        match reader.read_resolved_event()? {
            (ResolveResult::Bound(namespace), Event::Start(element) | Event::Empty(element))
                if namespace.as_ref() == ASSERTION_NS
                    && matches!(element.local_name().as_ref(), b"Assertion" | b"EncryptedAssertion") =>
            {
                count += 1;
            }
            (_, Event::Eof) => return Ok(count),
            _ => {}
        }
    }
}

fn bearer_confirmations(
    assertion: &Assertion,
) -> impl Iterator<Item = &samael::schema::SubjectConfirmationData> {
    assertion
        .subject
        .iter()
        .flat_map(|subject| subject.subject_confirmations.iter().flatten())
        .filter(|confirmation| {
            confirmation.method.as_deref() == Some("urn:oasis:names:tc:SAML:2.0:cm:bearer")
        })
        .filter_map(|confirmation| confirmation.subject_confirmation_data.as_ref())
}

/// Marks the assertion used, until it would expire anyway: a second post of it is a replay.
async fn spend(db: &Db, org_id: OrgId, assertion: &Assertion) -> Result<(), Refusal> {
    let valid_until = [
        assertion.conditions.as_ref().and_then(|conditions| conditions.not_on_or_after),
        bearer_confirmations(assertion).filter_map(|data| data.not_on_or_after).max(),
        Some(assertion.issue_instant + MAX_ISSUE_DELAY),
    ]
    .into_iter()
    .flatten()
    .max()
    .unwrap_or(assertion.issue_instant)
        + CLOCK_SKEW;
    let now = Timestamp::now();
    let spent = async {
        sqlx::query("DELETE FROM saml_assertions_used WHERE expires_at < $1")
            .bind(now)
            .execute(db.pool())
            .await?;
        sqlx::query(
            "INSERT INTO saml_assertions_used (org_id, assertion_id, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (org_id, assertion_id) DO NOTHING",
        )
        .bind(org_id)
        .bind(&assertion.id)
        .bind(Timestamp(valid_until.timestamp_millis()))
        .execute(db.pool())
        .await
    };
    match spent.await {
        Ok(done) if done.rows_affected() == 1 => Ok(()),
        Ok(_) => Err(Refusal::new(
            format!("assertion {:?} was already used (a replay)", assertion.id),
            "This sign-in was already used. Start again from Chancery's log-in page.",
        )),
        Err(err) => Err(Refusal::new(format!("database: {err}"), "Single sign-on failed. Try again.")),
    }
}

/// Who the assertion says this is: the email (the NameID, or the attribute the
/// Admin named), a display name, and the groups when the Admin named their attribute.
fn identity_of(assertion: &Assertion, config: &Config) -> Result<Identity, Refusal> {
    let attributes: Vec<&Attribute> =
        assertion.attribute_statements.iter().flatten().flat_map(|statement| &statement.attributes).collect();
    let values = |name: &str| -> Vec<String> {
        attributes
            .iter()
            .filter(|attribute| {
                attribute.name.as_deref() == Some(name) || attribute.friendly_name.as_deref() == Some(name)
            })
            .flat_map(|attribute| &attribute.values)
            .filter_map(|value| value.value.as_deref().map(str::trim))
            .filter(|value| !value.is_empty())
            .map(str::to_string)
            .collect()
    };
    let stated = if config.email_attribute.is_empty() {
        assertion
            .subject
            .as_ref()
            .and_then(|subject| subject.name_id.as_ref())
            .map(|id| id.value.trim().to_string())
    } else {
        values(&config.email_attribute).into_iter().next()
    };
    let stated = stated.ok_or_else(|| {
        let missing = if config.email_attribute.is_empty() {
            "the assertion has no NameID".to_string()
        } else {
            format!("the assertion has no {} attribute", config.email_attribute)
        };
        Refusal::new(
            missing,
            "Your identity provider did not share your email address with Chancery. Ask your Admin.",
        )
    })?;
    let email = validate::email(&stated).map_err(|_| {
        Refusal::new(
            format!("{stated:?} is not an email address"),
            "Your identity provider did not send your email address: ask your Admin to send it as the NameID (emailAddress format) or an attribute.",
        )
    })?;
    let first_of = |names: &[&str]| names.iter().find_map(|name| values(name).into_iter().next());
    let full_name = [first_of(&GIVEN_NAME_ATTRIBUTES), first_of(&SURNAME_ATTRIBUTES)]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    let name = first_of(&NAME_ATTRIBUTES)
        .or((!full_name.is_empty()).then_some(full_name))
        .unwrap_or_else(|| email.display.split('@').next().unwrap_or_default().to_string());
    // An IdP leaves the attribute out for someone in no group: that is an empty list.
    let groups = (!config.groups_attribute.is_empty()).then(|| values(&config.groups_attribute));
    Ok(Identity { email, name, groups })
}

/// The local name of the document's root element (after the prolog and comments).
fn root_element(xml: &str) -> Option<&str> {
    let mut rest = xml.trim_start();
    while rest.starts_with("<?") || rest.starts_with("<!") {
        let end = if rest.starts_with("<!--") { rest.find("-->")? + 3 } else { rest.find('>')? + 1 };
        rest = rest[end..].trim_start();
    }
    let tag = rest.strip_prefix('<')?;
    let name = &tag[..tag.find(|c: char| c.is_whitespace() || c == '>' || c == '/')?];
    Some(name.rsplit(':').next().unwrap_or(name))
}

fn idp_from_fields(entity_id: &str, sso_url: &str, certificate: &str) -> AppResult<Idp> {
    let entity_id = entity_id.trim();
    if entity_id.is_empty() || entity_id.len() > 1024 {
        return Err(AppError::invalid("idp_entity_id", "Enter the IdP's entity id (its Issuer)."));
    }
    let sso_url = sso::provider_url("sso_url", sso_url, "https://idp.example.com/sso")?;
    let certificates = certificates_from_pem(certificate)?;
    Ok(Idp { entity_id: entity_id.to_string(), sso_url, certificates })
}

/// Certificates pasted as PEM blocks (or one bare base64 DER); none for an empty field.
fn certificates_from_pem(text: &str) -> AppResult<Vec<Vec<u8>>> {
    let invalid = |why: String| AppError::invalid("certificate", why);
    let text = text.trim();
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let blocks: Vec<String> = if text.contains("-----BEGIN CERTIFICATE-----") {
        text.split("-----BEGIN CERTIFICATE-----")
            .skip(1)
            .map(|block| block.split("-----END CERTIFICATE-----").next().unwrap_or_default().to_string())
            .collect()
    } else {
        vec![text.to_string()]
    };
    let mut certificates = Vec::new();
    for block in blocks {
        let compact: String = block.chars().filter(|c| !c.is_whitespace()).collect();
        let der = BASE64.decode(compact).map_err(|_| invalid("This is not a PEM certificate.".into()))?;
        certificate_view(&der).map_err(|why| invalid(why.to_string()))?;
        certificates.push(der);
    }
    Ok(certificates)
}

/// What Admins compare with their IdP's console; an unreadable or expired
/// certificate is refused (no signature it makes could be trusted).
fn certificate_view(der: &[u8]) -> Result<CertificateView, &'static str> {
    let certificate = openssl::x509::X509::from_der(der).map_err(|_| "This is not an X.509 certificate.")?;
    let now = openssl::asn1::Asn1Time::days_from_now(0).map_err(|_| "The clock cannot be read.")?;
    if certificate.not_after() < now {
        return Err("This certificate has expired: download the IdP's current one.");
    }
    let subject = certificate
        .subject_name()
        .entries()
        .filter_map(|entry| {
            let key = entry.object().nid().short_name().ok()?;
            let value = entry.data().to_string().ok()?;
            Some(format!("{key}={value}"))
        })
        .collect::<Vec<_>>()
        .join(", ");
    let digest = openssl::sha::sha256(der);
    let sha256 = digest.iter().map(|byte| format!("{byte:02X}")).collect::<Vec<_>>().join(":");
    Ok(CertificateView { subject, not_after: certificate.not_after().to_string(), sha256 })
}

/// The name of a SAML attribute the IdP sends ('' for none).
fn attribute_name(field: &str, input: &str) -> AppResult<String> {
    let name = input.trim();
    if name.len() > 255 || name.chars().any(char::is_control) {
        return Err(AppError::invalid(
            field,
            "An attribute name is one line, e.g. email or http://schemas.xmlsoap.org/claims/Group.",
        ));
    }
    Ok(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assertions_are_counted_by_namespace_wherever_they_are() {
        let one = r#"<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"
            xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"><saml:Assertion ID="a"/></samlp:Response>"#;
        assert_eq!(assertions_in(one).unwrap(), 1);
        let wrapped = r#"<Response xmlns="urn:oasis:names:tc:SAML:2.0:protocol"><Extensions>
            <a:Assertion xmlns:a="urn:oasis:names:tc:SAML:2.0:assertion" ID="signed"/></Extensions>
            <Assertion xmlns="urn:oasis:names:tc:SAML:2.0:assertion" ID="forged"/></Response>"#;
        assert_eq!(assertions_in(wrapped).unwrap(), 2);
        let other_namespace =
            r#"<Response><Assertion/><x:EncryptedAssertion xmlns:x="urn:example"/></Response>"#;
        assert_eq!(assertions_in(other_namespace).unwrap(), 0);
        assert!(assertions_in("<Response><unclosed></Response>").is_err());
    }

    #[test]
    fn the_root_element_is_read_past_the_prolog_and_comments() {
        let xml = "<?xml version=\"1.0\"?>\n<!-- exported --><md:EntityDescriptor entityID=\"x\"/>";
        assert_eq!(root_element(xml), Some("EntityDescriptor"));
        assert_eq!(root_element("<EntitiesDescriptor>"), Some("EntitiesDescriptor"));
        assert_eq!(root_element("<html><body/></html>"), Some("html"));
        assert_eq!(root_element("not xml"), None);
        assert_eq!(root_element("<!-- unterminated"), None);
    }
}

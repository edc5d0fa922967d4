//! Single sign-on with SAML 2.0 (Web Browser SSO): an Organization names its
//! identity provider (IdP) by its metadata XML, or by its entity id, SSO URL
//! and signing certificate; Chancery is the service provider (SP) with one
//! entity id and Assertion Consumer Service per Organization, published as SP
//! metadata for the IdP to import.
//!
//! As with OpenID Connect, the IdP is trusted for the Organization's verified
//! domains only. Its certificates are public keys: stored as they are (base64
//! DER), shown with their subject, expiry and fingerprint.

use base64::{engine::general_purpose::STANDARD as BASE64, Engine};
use samael::{
    metadata::{
        EntityDescriptor, IndexedEndpoint, SpSsoDescriptor, HTTP_POST_BINDING, HTTP_REDIRECT_BINDING,
    },
    traits::ToXml,
};
use sqlx::AnyConnection;

use super::{
    actor::{Actor, Client},
    audit::{self, AuditEvent},
    authz,
    db::Db,
    sso,
};
use crate::{
    error::{AppError, AppResult},
    ids::OrgId,
    model::{CertificateView, OrgRole, SamlInput, SamlPanel, SamlSettings},
    time::Timestamp,
};

/// The largest metadata document read (IdPs' are a few KB).
const METADATA_MAX_BYTES: usize = 256 * 1024;
const EMAIL_NAME_ID: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress";

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
    default_role: OrgRole,
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
                default_role: OrgRole::parse(&role).unwrap_or(OrgRole::Member),
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
        sso::refuse_if_other_provider_on(&mut tx, org_id, sso::Protocol::Saml).await?;
    } else {
        sso::refuse_if_required(&mut tx, org_id, "enabled").await?;
    }
    let before = config(&mut tx, org_id).await?;
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
    .bind(default_role.as_str())
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
        "default_role": default_role.as_str(),
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
pub async fn remove(db: &Db, actor: &Actor, client: &Client, org_id: OrgId) -> AppResult<()> {
    sso::remove_provider(db, actor, client, org_id, sso::Protocol::Saml).await
}

/// Chancery's SP metadata for the Organization, for its IdP to import: entity
/// id, the ACS (HTTP-POST), signed assertions wanted, email NameIDs. Public,
/// as every SP's is; `NotFound` for an unknown Organization.
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

/// Certificates pasted as PEM blocks (or one bare base64 DER).
fn certificates_from_pem(text: &str) -> AppResult<Vec<Vec<u8>>> {
    let invalid = |why: String| AppError::invalid("certificate", why);
    let text = text.trim();
    if text.is_empty() {
        return Err(invalid("Paste the IdP's signing certificate (PEM).".into()));
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
    fn the_root_element_is_read_past_the_prolog_and_comments() {
        let xml = "<?xml version=\"1.0\"?>\n<!-- exported --><md:EntityDescriptor entityID=\"x\"/>";
        assert_eq!(root_element(xml), Some("EntityDescriptor"));
        assert_eq!(root_element("<EntitiesDescriptor>"), Some("EntitiesDescriptor"));
        assert_eq!(root_element("<html><body/></html>"), Some("html"));
        assert_eq!(root_element("not xml"), None);
        assert_eq!(root_element("<!-- unterminated"), None);
    }
}

//! Single sign-on with OpenID Connect: an Organization names its identity
//! provider (issuer, client id and secret); people whose email is in one of the
//! Organization's verified domains log in through it, with the authorization
//! code flow, PKCE, `state` and `nonce`. The ID token's signature (keys from
//! the provider's discovery document), issuer, audience, expiry and nonce are
//! checked before anyone is let in.
//!
//! The provider is trusted for its Organization's verified domains only: an
//! ID token naming an address elsewhere is refused, so one Organization's
//! provider cannot sign anyone in as another's people. The first log-in
//! creates the account (with no password) and the membership, with the
//! Organization's default role. Every refusal is audited.

use std::{sync::LazyLock, time::Duration};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD as BASE64, Engine};
use openidconnect::{
    core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata},
    reqwest, AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;
use subtle::ConstantTimeEq;

use super::{
    actor::{Actor, Client},
    audit::{self, AuditEvent},
    authz,
    db::Db,
    sealed::SealingKey,
    sso::{self, Identity, Protocol, Refusal, SignedIn},
};
use crate::{
    error::{AppError, AppResult},
    ids::OrgId,
    model::{OidcInput, OidcSettings, OrgRole},
    time::Timestamp,
    validate,
};

/// Where providers send people back, under the public URL.
pub const CALLBACK_PATH: &str = "/sso/oidc/callback";
/// How long someone may spend at their provider before coming back.
const PENDING_FOR_MS: i64 = 10 * 60 * 1000;
/// Clocks of ours and the provider's may differ by this much.
const CLOCK_SKEW: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// Talks to identity providers. Never follows redirects: a provider's answer
/// must come from the address it was asked at (no request forgery through us).
static HTTP: LazyLock<reqwest::Client> = LazyLock::new(|| {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("an HTTP client with rustls builds")
});

pub fn redirect_uri(public_url: &str) -> String {
    format!("{public_url}{CALLBACK_PATH}")
}

/// What the browser's session keeps between leaving for the provider and coming back.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Pending {
    pub org_id: OrgId,
    pub email: String,
    state: String,
    nonce: String,
    pkce_verifier: String,
    started_at: Timestamp,
}

/// What the provider sends the person back with (the redirect's query).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Callback {
    pub code: Option<String>,
    pub state: Option<String>,
    /// The provider's refusal (`access_denied`...), instead of a code.
    pub error: Option<String>,
    pub error_description: Option<String>,
}

type ConfigRow = (String, String, String, String, String, Option<Timestamp>, Timestamp);

/// An Organization's provider, as stored.
struct Config {
    issuer: String,
    client_id: String,
    client_secret_sealed: String,
    /// `None`: nobody is made a member at log-in.
    default_role: Option<OrgRole>,
    groups_claim: String,
    enabled: bool,
    updated_at: Timestamp,
}

impl From<ConfigRow> for Config {
    fn from(
        (issuer, client_id, client_secret_sealed, default_role, groups_claim, enabled_at, updated_at): ConfigRow,
    ) -> Self {
        Self {
            issuer,
            client_id,
            client_secret_sealed,
            default_role: sso::stored_default_role(&default_role),
            groups_claim,
            enabled: enabled_at.is_some(),
            updated_at,
        }
    }
}

impl Config {
    fn settings(&self) -> OidcSettings {
        OidcSettings {
            issuer: self.issuer.clone(),
            client_id: self.client_id.clone(),
            default_role: self.default_role,
            groups_claim: self.groups_claim.clone(),
            enabled: self.enabled,
            updated_at: self.updated_at,
        }
    }
}

async fn config(conn: &mut AnyConnection, org_id: OrgId) -> AppResult<Option<Config>> {
    let row: Option<ConfigRow> = sqlx::query_as(
        "SELECT issuer, client_id, client_secret_sealed, default_role, groups_claim, enabled_at, updated_at
         FROM org_oidc WHERE org_id = $1",
    )
    .bind(org_id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(Config::from))
}

/// The secret is bound to its Organization: copied to another's row, it does not open.
fn secret_context(org_id: OrgId) -> String {
    format!("oidc-client-secret:{org_id}")
}

/// The Organization's provider, for its Admins.
#[tracing::instrument(name = "oidc::settings", skip_all, fields(actor = actor.kind(), org_id = %org_id), err(level = "debug"))]
pub async fn settings(db: &Db, actor: &Actor, org_id: OrgId) -> AppResult<Option<OidcSettings>> {
    let mut conn = db.pool().acquire().await?;
    authz::org_admin(&mut conn, actor, org_id).await?;
    Ok(config(&mut conn, org_id).await?.map(|config| config.settings()))
}

/// An issuer as Admins type it, checked (see `sso::provider_url`).
fn issuer_url(input: &str) -> AppResult<IssuerUrl> {
    let url = sso::provider_url("issuer", input, "https://login.example.com")?;
    IssuerUrl::new(url)
        .map_err(|_| AppError::invalid("issuer", "Enter the issuer's URL, e.g. https://login.example.com."))
}

async fn discover(issuer: IssuerUrl) -> Result<CoreProviderMetadata, String> {
    CoreProviderMetadata::discover_async(issuer.clone(), &*HTTP).await.map_err(|err| {
        let mut message = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(inner) = source {
            message = format!("{message}: {inner}");
            source = inner.source();
        }
        message
    })
}

/// Saves the Organization's provider after reading its discovery document, so
/// a typo is caught now rather than at someone's log-in.
#[tracing::instrument(name = "oidc::save", skip_all, fields(actor = actor.kind(), org_id = %org_id), err(level = "debug"))]
pub async fn save(
    db: &Db,
    sealing: &SealingKey,
    actor: &Actor,
    client: &Client,
    org_id: OrgId,
    input: OidcInput,
) -> AppResult<OidcSettings> {
    let issuer = issuer_url(&input.issuer)?;
    let client_id = input.client_id.trim().to_string();
    if client_id.is_empty() || client_id.len() > 255 {
        return Err(AppError::invalid("client_id", "Enter the client id your provider gave Chancery."));
    }
    let default_role = sso::default_role(&input.default_role)?;
    let groups_claim = input.groups_claim.trim().to_string();
    if groups_claim.len() > 100 || groups_claim.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(AppError::invalid("groups_claim", "A claim name has no spaces, e.g. groups."));
    }
    let new_secret = input.client_secret.trim();
    {
        let mut conn = db.pool().acquire().await?;
        authz::org_admin(&mut conn, actor, org_id).await?;
    }
    if let Err(why) = discover(issuer.clone()).await {
        return Err(AppError::invalid(
            "issuer",
            format!("Could not read {}/.well-known/openid-configuration: {why}", issuer.as_str()),
        ));
    }

    let mut tx = db.begin().await?;
    let admin = authz::org_admin(&mut tx, actor, org_id).await?;
    if input.enabled {
        sso::refuse_if_other_provider_on(&mut tx, org_id, Protocol::Oidc).await?;
    } else {
        sso::refuse_if_required(&mut tx, org_id, "enabled").await?;
    }
    let before = config(&mut tx, org_id).await?;
    let sealed = match (new_secret, &before) {
        ("", Some(before)) => before.client_secret_sealed.clone(),
        ("", None) => {
            return Err(AppError::invalid(
                "client_secret",
                "Enter the client secret your provider gave Chancery.",
            ))
        }
        (secret, _) => sealing.seal(secret, &secret_context(org_id)),
    };
    let now = Timestamp::now();
    let enabled_at =
        input.enabled.then(|| before.as_ref().filter(|b| b.enabled).map_or(now, |b| b.updated_at));
    sqlx::query(
        "INSERT INTO org_oidc
             (org_id, issuer, client_id, client_secret_sealed, default_role, groups_claim, enabled_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (org_id) DO UPDATE SET issuer = excluded.issuer, client_id = excluded.client_id,
             client_secret_sealed = excluded.client_secret_sealed, default_role = excluded.default_role,
             groups_claim = excluded.groups_claim, enabled_at = excluded.enabled_at,
             updated_at = excluded.updated_at",
    )
    .bind(org_id)
    .bind(issuer.as_str())
    .bind(&client_id)
    .bind(&sealed)
    .bind(sso::default_role_text(default_role))
    .bind(&groups_claim)
    .bind(enabled_at)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let details = serde_json::json!({
        "issuer": issuer.as_str(),
        "client_id": client_id,
        "client_secret_changed": !new_secret.is_empty(),
        "default_role": sso::default_role_text(default_role),
        "groups_claim": groups_claim,
        "enabled": input.enabled,
    });
    let event = AuditEvent::new("organization.oidc_update", "organization", org_id).in_org(org_id);
    audit::record(&mut tx, &admin, client, event.with_details(details)).await?;
    let saved = config(&mut tx, org_id).await?.ok_or(AppError::Internal)?;
    tx.commit().await?;
    Ok(saved.settings())
}

/// Forgets the Organization's provider; its people log in with passwords again.
#[tracing::instrument(name = "oidc::remove", skip_all, fields(actor = actor.kind(), org_id = %org_id), err(level = "debug"))]
pub async fn remove(db: &Db, actor: &Actor, client: &Client, org_id: OrgId) -> AppResult<()> {
    sso::remove_provider(db, actor, client, org_id, Protocol::Oidc).await
}

/// Where to send `email`, of the Organization `org_id` whose provider is on,
/// and what their session must keep until they come back.
#[tracing::instrument(name = "oidc::start", skip_all, fields(org_id = %org_id), err(level = "debug"))]
pub async fn start(
    db: &Db,
    public_url: &str,
    org_id: OrgId,
    email: validate::Email,
) -> AppResult<(String, Pending)> {
    let stored = config(&mut *db.pool().acquire().await?, org_id).await?;
    let config = stored.filter(|config| config.enabled).ok_or(AppError::NotFound)?;
    let issuer = IssuerUrl::new(config.issuer.clone()).map_err(|_| AppError::Internal)?;
    let metadata = discover(issuer).await.map_err(|why| {
        tracing::warn!(org_id = %org_id, error = %why, "an identity provider's discovery document is unreadable");
        AppError::BadRequest("Your identity provider cannot be reached right now. Try again in a moment.".into())
    })?;
    let redirect = RedirectUrl::new(redirect_uri(public_url)).map_err(|_| AppError::Internal)?;
    let provider = CoreClient::from_provider_metadata(metadata, ClientId::new(config.client_id), None)
        .set_redirect_uri(redirect);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = provider
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .add_extra_param("login_hint", &email.display)
        .url();
    let pending = Pending {
        org_id,
        email: email.display,
        state: state.secret().clone(),
        nonce: nonce.secret().clone(),
        pkce_verifier: verifier.secret().clone(),
        started_at: Timestamp::now(),
    };
    Ok((url.to_string(), pending))
}

/// Finishes a log-in when the provider sends the person back: checks
/// everything, then signs them in (creating their account and membership on
/// their first visit). A refusal is audited in the Organization.
#[tracing::instrument(name = "oidc::finish", skip_all, err(level = "debug"))]
pub async fn finish(
    db: &Db,
    sealing: &SealingKey,
    public_url: &str,
    client: &Client,
    pending: Pending,
    callback: &Callback,
) -> AppResult<SignedIn> {
    let (verified, default_role) = match verified_identity(db, sealing, public_url, &pending, callback).await
    {
        Ok((identity, default_role)) => (Ok(identity), default_role),
        Err(refusal) => (Err(refusal), None),
    };
    sso::sign_in(db, client, pending.org_id, Protocol::Oidc, default_role, &pending.email, verified).await
}

async fn verified_identity(
    db: &Db,
    sealing: &SealingKey,
    public_url: &str,
    pending: &Pending,
    callback: &Callback,
) -> Result<(Identity, Option<OrgRole>), Refusal> {
    if let Some(error) = &callback.error {
        let description = callback.error_description.as_deref().unwrap_or_default();
        return Err(Refusal::new(
            format!("the provider answered {error:?} {description:?}"),
            "Your identity provider did not sign you in.",
        ));
    }
    let state = callback.state.as_deref().unwrap_or_default();
    if !bool::from(pending.state.as_bytes().ct_eq(state.as_bytes())) {
        return Err(Refusal::unverified("the state does not match the one this browser was sent with"));
    }
    let code = callback
        .code
        .as_deref()
        .filter(|code| !code.is_empty())
        .ok_or_else(|| Refusal::unverified("the provider sent no code"))?;
    if Timestamp::now().0 - pending.started_at.0 > PENDING_FOR_MS {
        return Err(Refusal::new(
            "the person took more than 10 minutes at the provider",
            "Single sign-on took too long. Start again.",
        ));
    }
    let stored = async {
        let mut conn = db.pool().acquire().await?;
        config(&mut conn, pending.org_id).await
    };
    let config = match stored.await {
        Ok(Some(config)) if config.enabled => config,
        Ok(_) => {
            return Err(Refusal::new(
                "single sign-on was turned off meanwhile",
                "Single sign-on is no longer set up for your organization. Log in with your password.",
            ))
        }
        Err(err) => {
            return Err(Refusal::new(format!("database: {err}"), "Single sign-on failed. Try again."))
        }
    };
    let secret = sealing.open(&config.client_secret_sealed, &secret_context(pending.org_id)).ok_or_else(|| {
        Refusal::new(
            "the client secret does not open with this server's key (CHANCERY_SECRET_KEY_FILE): an Admin must enter it again",
            "Single sign-on is misconfigured: ask your Admin to enter the client secret again.",
        )
    })?;
    let issuer = IssuerUrl::new(config.issuer.clone()).map_err(|err| Refusal::unverified(err.to_string()))?;
    let metadata = discover(issuer).await.map_err(|why| {
        Refusal::new(
            format!("discovery: {why}"),
            "Your identity provider cannot be reached right now. Try again.",
        )
    })?;
    let redirect =
        RedirectUrl::new(redirect_uri(public_url)).map_err(|err| Refusal::unverified(err.to_string()))?;
    let provider = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(config.client_id.clone()),
        Some(ClientSecret::new(secret)),
    )
    .set_redirect_uri(redirect);
    let exchange = provider
        .exchange_code(AuthorizationCode::new(code.to_string()))
        .map_err(|err| Refusal::unverified(format!("the provider has no token endpoint: {err}")))?;
    let tokens = exchange
        .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier.clone()))
        .request_async(&*HTTP)
        .await
        .map_err(|err| Refusal::unverified(format!("the code was not exchanged: {err}")))?;
    let id_token = tokens.id_token().ok_or_else(|| Refusal::unverified("the provider sent no ID token"))?;
    let verifier =
        provider.id_token_verifier().allow_any_alg().set_time_fn(|| chrono::Utc::now() - CLOCK_SKEW);
    let nonce = Nonce::new(pending.nonce.clone());
    let claims =
        id_token.claims(&verifier, &nonce).map_err(|err| Refusal::unverified(format!("ID token: {err}")))?;
    if let Some(expected) = claims.access_token_hash() {
        let algorithm = id_token.signing_alg().map_err(|err| Refusal::unverified(err.to_string()))?;
        let key = id_token.signing_key(&verifier).map_err(|err| Refusal::unverified(err.to_string()))?;
        let actual = AccessTokenHash::from_token(tokens.access_token(), algorithm, key)
            .map_err(|err| Refusal::unverified(err.to_string()))?;
        if actual != *expected {
            return Err(Refusal::unverified("the access token does not match the ID token's at_hash"));
        }
    }

    let stated = claims.email().ok_or_else(|| {
        Refusal::new(
            "the ID token has no email claim",
            "Your identity provider did not share your email address with Chancery. Ask your Admin.",
        )
    })?;
    let email = validate::email(stated.as_str()).map_err(|_| {
        Refusal::unverified(format!("the email claim {:?} is not an address", stated.as_str()))
    })?;
    if claims.email_verified() == Some(false) {
        return Err(Refusal::new(
            format!("the provider says {} is not verified", email.display),
            "Your identity provider has not verified your email address.",
        ));
    }
    sso::refuse_unless_verified_here(db, pending.org_id, &email).await?;
    let name = claims
        .name()
        .and_then(|name| name.get(None))
        .map(|name| name.as_str().to_string())
        .or_else(|| claims.preferred_username().map(|name| name.as_str().to_string()))
        .unwrap_or_else(|| email.display.split('@').next().unwrap_or_default().to_string());
    // Providers leave the claim out for someone in no group: that is an empty list.
    let groups = (!config.groups_claim.is_empty())
        .then(|| claim_strings(&id_token.to_string(), &config.groups_claim).unwrap_or_default());
    Ok((Identity { email, name, groups }, config.default_role))
}

/// The strings of claim `name` in a compact JWT whose signature was checked:
/// groups come as a list (or, from some providers, one string).
fn claim_strings(jwt: &str, name: &str) -> Option<Vec<String>> {
    let payload = jwt.split('.').nth(1)?;
    let claims: serde_json::Value = serde_json::from_slice(&BASE64.decode(payload).ok()?).ok()?;
    match claims.get(name)? {
        serde_json::Value::Array(items) => {
            Some(items.iter().filter_map(|item| item.as_str().map(str::to_string)).collect())
        }
        serde_json::Value::String(one) => Some(vec![one.clone()]),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuers_are_https_except_on_this_machine() {
        assert_eq!(issuer_url("https://login.example.com/").unwrap().as_str(), "https://login.example.com");
        assert!(issuer_url("http://127.0.0.1:8080/realms/acme").is_ok());
        assert!(issuer_url("http://localhost:8080").is_ok());
        for bad in [
            "http://login.example.com",
            "ftp://login.example.com",
            "login.example.com",
            "",
            "https://x.example/?a=b",
        ] {
            assert!(issuer_url(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn groups_come_from_the_named_claim_as_a_list_or_one_string() {
        let jwt = |claims: serde_json::Value| format!("e30.{}.sig", BASE64.encode(claims.to_string()));
        let token = jwt(serde_json::json!({ "groups": ["Research", "Ops", 3], "team": "Sales" }));
        assert_eq!(claim_strings(&token, "groups"), Some(vec!["Research".to_string(), "Ops".to_string()]));
        assert_eq!(claim_strings(&token, "team"), Some(vec!["Sales".to_string()]));
        assert_eq!(claim_strings(&token, "roles"), None);
        assert_eq!(claim_strings("not-a-jwt", "groups"), None);
    }
}

//! The OpenID Connect relying party (authorization code flow with PKCE S256), on the
//! `openidconnect` crate: discovery, the authorization URL, the code exchange and the full ID
//! token check — signature by the JWKS key its `kid` names, issuer, audience (and `azp`),
//! expiry, issue time and nonce; `none` and HMAC algorithms are never accepted. Each step's
//! outcome is written down, so that Test connection can show where a connection breaks.
//! Calls to the IdP go through `OutboundHttp`: no redirects followed, timeouts, bounded bodies.

use crate::model::connections::{SsoFailure, StepStatus, TestStep};
use crate::server::domain::outbound::OutboundHttp;
use crate::server::domain::sso::attempts::{Attempt, NewAttempt};
use crate::server::domain::sso::identity::{Refusal, SsoIdentity};
use crate::server::domain::sso::oidc::OidcSettings;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreClientAuthMethod, CoreJwsSigningAlgorithm, CoreProviderMetadata,
};
use openidconnect::{
    AuthType, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope, SignatureVerificationError,
    TokenResponse,
};
use serde_json::Value;
use subtle::ConstantTimeEq;

/// Issue times this far in the future are refused (clock skew allowance).
const MAX_IAT_SKEW_SECONDS: i64 = 120;

/// Signature algorithms accepted for ID tokens: asymmetric only.
const ALLOWED_ALGORITHMS: [CoreJwsSigningAlgorithm; 10] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha512,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EcdsaP521Sha512,
    CoreJwsSigningAlgorithm::EdDsa,
];

/// A record of the steps of one sign-in (shown by Test connection).
#[derive(Default)]
pub struct Steps(pub Vec<TestStep>);

impl Steps {
    pub fn ok(&mut self, step: &str, detail: impl Into<String>) {
        self.0.push(TestStep { step: step.into(), status: StepStatus::Ok, detail: detail.into() });
    }

    /// Records the failed step and hands back the refusal.
    pub fn failed(&mut self, step: &str, refusal: Refusal) -> Refusal {
        self.0.push(TestStep { step: step.into(), status: StepStatus::Failed, detail: refusal.detail.clone() });
        refusal
    }
}

pub const STEP_DISCOVERY: &str = "Discovery";
pub const STEP_REDIRECT: &str = "Redirect to the IdP and back";
pub const STEP_EXCHANGE: &str = "Code exchange";
pub const STEP_ID_TOKEN: &str = "ID token signature and claims";
/// Every step of a Test connection run, in order (the last one is the domain's: who the
/// identity becomes).
pub const ALL_STEPS: [&str; 5] = [STEP_DISCOVERY, STEP_REDIRECT, STEP_EXCHANGE, STEP_ID_TOKEN, "Mapped identity"];

/// Fetches the provider's discovery document and signing keys.
pub async fn discover(
    http: &OutboundHttp,
    settings: &OidcSettings,
    steps: &mut Steps,
) -> Result<CoreProviderMetadata, Refusal> {
    let refuse = |detail: String| Refusal::new(SsoFailure::DiscoveryFailed, detail);
    let issuer = IssuerUrl::new(settings.issuer.clone()).map_err(|e| refuse(format!("the issuer is not a URL: {e}")));
    let result = match issuer {
        Ok(issuer) => CoreProviderMetadata::discover_async(issuer, http).await.map_err(|err| {
            refuse(format!(
                "could not read {}/.well-known/openid-configuration: {}",
                settings.issuer.trim_end_matches('/'),
                error_chain(&err)
            ))
        }),
        Err(refusal) => Err(refusal),
    };
    match result {
        Ok(metadata) => {
            steps.ok(
                STEP_DISCOVERY,
                format!(
                    "{} publishes its endpoints and {} signing key(s)",
                    settings.issuer,
                    metadata.jwks().keys().len()
                ),
            );
            Ok(metadata)
        }
        Err(refusal) => Err(steps.failed(STEP_DISCOVERY, refusal)),
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        message.push_str(": ");
        message.push_str(&inner.to_string());
        source = inner.source();
    }
    message
}

/// The client for this connection, authenticating to the token endpoint the way the provider
/// supports (HTTP Basic unless it only takes the secret in the body).
macro_rules! client_for {
    ($metadata:expr, $settings:expr, $redirect_uri:expr) => {{
        let post_only = $metadata.token_endpoint_auth_methods_supported().is_some_and(|methods| {
            !methods.contains(&CoreClientAuthMethod::ClientSecretBasic)
                && methods.contains(&CoreClientAuthMethod::ClientSecretPost)
        });
        let client = CoreClient::from_provider_metadata(
            $metadata.clone(),
            ClientId::new($settings.client_id.clone()),
            Some(ClientSecret::new($settings.client_secret.clone())),
        )
        .set_redirect_uri(
            RedirectUrl::new($redirect_uri.to_string())
                .map_err(|e| Refusal::new(SsoFailure::DiscoveryFailed, format!("bad redirect URI: {e}")))?,
        );
        if post_only {
            client.set_auth_type(AuthType::RequestBody)
        } else {
            client
        }
    }};
}

/// The IdP's authorization URL for a new attempt (code flow, PKCE S256, state, nonce).
pub fn authorization_url(
    metadata: &CoreProviderMetadata,
    settings: &OidcSettings,
    redirect_uri: &str,
    attempt: &NewAttempt,
) -> Result<String, Refusal> {
    let client = client_for!(metadata, settings, redirect_uri);
    let challenge = PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(attempt.binding.clone()));
    let state = attempt.state.clone();
    let nonce = attempt.nonce.clone();
    let mut request = client.authorize_url(
        CoreAuthenticationFlow::AuthorizationCode,
        move || CsrfToken::new(state),
        move || Nonce::new(nonce),
    );
    for scope in settings.scopes.iter().filter(|s| *s != "openid") {
        request = request.add_scope(Scope::new(scope.clone()));
    }
    let (url, _, _) = request.set_pkce_challenge(challenge).url();
    Ok(url.to_string())
}

/// Exchanges the code and checks the ID token; returns the identity it vouches for.
pub async fn finish(
    http: &OutboundHttp,
    settings: &OidcSettings,
    metadata: &CoreProviderMetadata,
    redirect_uri: &str,
    code: &str,
    attempt: &Attempt,
    steps: &mut Steps,
) -> Result<SsoIdentity, Refusal> {
    let client = client_for!(metadata, settings, redirect_uri);
    let exchange = client
        .exchange_code(AuthorizationCode::new(code.to_string()))
        .map_err(|e| Refusal::new(SsoFailure::DiscoveryFailed, format!("the provider has no token endpoint: {e}")));
    let response = match exchange {
        Ok(request) => request
            .set_pkce_verifier(PkceCodeVerifier::new(attempt.binding.clone()))
            .request_async(http)
            .await
            .map_err(|err| Refusal::new(SsoFailure::CodeExchangeFailed, describe_token_error(&err))),
        Err(refusal) => Err(refusal),
    };
    let response = response.map_err(|refusal| steps.failed(STEP_EXCHANGE, refusal))?;
    let Some(id_token) = response.id_token() else {
        let refusal = Refusal::new(
            SsoFailure::CodeExchangeFailed,
            "the token endpoint returned no id_token (is the openid scope granted?)",
        );
        return Err(steps.failed(STEP_EXCHANGE, refusal));
    };
    steps.ok(STEP_EXCHANGE, "the token endpoint returned an ID token for the authorization code");

    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let expected_nonce = attempt.nonce.clone();
    let verifier =
        client.id_token_verifier().set_allowed_algs(ALLOWED_ALGORITHMS).set_issue_time_verifier_fn(move |iat| {
            if iat.timestamp() > now + MAX_IAT_SKEW_SECONDS {
                Err(format!("the token was issued in the future ({iat})"))
            } else {
                Ok(())
            }
        });
    let nonce_check = |nonce: Option<&Nonce>| match nonce {
        Some(nonce) if bool::from(nonce.secret().as_bytes().ct_eq(expected_nonce.as_bytes())) => Ok(()),
        Some(_) => Err("the nonce does not match this sign-in".to_string()),
        None => Err("the ID token has no nonce".to_string()),
    };
    let claims =
        id_token.claims(&verifier, nonce_check).map_err(|err| steps.failed(STEP_ID_TOKEN, claims_refusal(&err)))?;
    let subject = claims.subject().as_str().to_string();
    let payload = payload_of(&id_token.to_string())
        .map_err(|detail| steps.failed(STEP_ID_TOKEN, Refusal::new(SsoFailure::TokenInvalid, detail)))?;
    check_authorized_party(&payload, &settings.client_id).map_err(|r| steps.failed(STEP_ID_TOKEN, r))?;
    let identity = identity_from(&payload, subject, settings);
    let algorithm = id_token.signing_alg().map(|alg| format!("{alg:?}")).unwrap_or_default();
    steps.ok(
        STEP_ID_TOKEN,
        format!(
            "signature ({algorithm}), issuer, audience, expiry and nonce verified; subject {}, email {}, name {}, groups [{}]",
            identity.subject,
            identity.email.as_deref().unwrap_or("(none)"),
            identity.name.as_deref().unwrap_or("(none)"),
            identity.groups.join(", ")
        ),
    );
    Ok(identity)
}

fn describe_token_error<E: std::error::Error + 'static>(
    err: &RequestTokenError<E, openidconnect::StandardErrorResponse<openidconnect::core::CoreErrorResponseType>>,
) -> String {
    match err {
        RequestTokenError::ServerResponse(response) => {
            let code = response.error().to_string();
            let hint = if code == "invalid_client" { " — check the client id and client secret" } else { "" };
            format!(
                "the token endpoint refused the code: {code}{}{hint}",
                response.error_description().map(|d| format!(" ({d})")).unwrap_or_default()
            )
        }
        other => format!("the token endpoint could not be used: {}", error_chain(other)),
    }
}

/// The refusal for an ID token that failed a check.
fn claims_refusal(err: &ClaimsVerificationError) -> Refusal {
    let failure = match err {
        ClaimsVerificationError::InvalidIssuer(_) => SsoFailure::TokenIssuer,
        ClaimsVerificationError::InvalidAudience(_) => SsoFailure::TokenAudience,
        ClaimsVerificationError::InvalidNonce(_) => SsoFailure::TokenNonce,
        ClaimsVerificationError::Expired(_) => SsoFailure::TokenExpired,
        ClaimsVerificationError::SignatureVerification(
            SignatureVerificationError::DisallowedAlg(_)
            | SignatureVerificationError::UnsupportedAlg(_)
            | SignatureVerificationError::NoSignature,
        ) => SsoFailure::TokenAlgorithm,
        ClaimsVerificationError::SignatureVerification(_) => SsoFailure::TokenSignature,
        _ => SsoFailure::TokenInvalid,
    };
    Refusal::new(failure, format!("the ID token was refused: {}", error_chain(err)))
}

/// The JSON payload of a compact JWS whose signature has already been verified.
fn payload_of(jwt: &str) -> Result<serde_json::Map<String, Value>, String> {
    let payload = jwt.split('.').nth(1).ok_or("the ID token is not a compact JWS")?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).map_err(|_| "the ID token payload is not base64url")?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err("the ID token payload is not a JSON object".to_string()),
    }
}

/// With several audiences, `azp` must name us; when present it must name us anyway.
fn check_authorized_party(payload: &serde_json::Map<String, Value>, client_id: &str) -> Result<(), Refusal> {
    let several_audiences = payload.get("aud").and_then(Value::as_array).is_some_and(|a| a.len() > 1);
    match payload.get("azp") {
        Some(Value::String(azp)) if azp == client_id => Ok(()),
        Some(other) => Err(Refusal::new(
            SsoFailure::TokenAudience,
            format!("the ID token was issued to another party (azp {other}, expected {client_id})"),
        )),
        None if several_audiences => Err(Refusal::new(
            SsoFailure::TokenAudience,
            "the ID token has several audiences and no azp claim naming this client",
        )),
        None => Ok(()),
    }
}

/// Reads the mapped claims. Groups may be a list or a single string; other shapes are ignored.
fn identity_from(payload: &serde_json::Map<String, Value>, subject: String, settings: &OidcSettings) -> SsoIdentity {
    let text = |name: &str| {
        payload
            .get(name)
            .and_then(Value::as_str)
            .map(|s| s.chars().take(320).collect::<String>())
            .filter(|s| !s.is_empty())
    };
    let groups = match payload.get(&settings.claim_groups) {
        Some(Value::Array(items)) => {
            items.iter().filter_map(Value::as_str).take(200).map(|s| s.chars().take(200).collect()).collect()
        }
        Some(Value::String(group)) => vec![group.chars().take(200).collect()],
        _ => Vec::new(),
    };
    let email_verified = match payload.get("email_verified") {
        Some(Value::Bool(verified)) => Some(*verified),
        Some(Value::String(verified)) => Some(verified == "true"),
        _ => None,
    };
    SsoIdentity {
        issuer: settings.issuer.clone(),
        subject,
        email: text(&settings.claim_email),
        email_verified,
        name: text(&settings.claim_name),
        groups,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settings() -> OidcSettings {
        OidcSettings {
            org_id: uuid::Uuid::nil(),
            connection_id: uuid::Uuid::nil(),
            name: "IdP".into(),
            enabled: true,
            issuer: "https://idp.example".into(),
            client_id: "mandate".into(),
            client_secret: "s".into(),
            scopes: vec!["openid".into()],
            claim_email: "mail".into(),
            claim_name: "name".into(),
            claim_groups: "roles".into(),
        }
    }

    fn map(value: Value) -> serde_json::Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn mapped_claims_are_read() {
        let payload =
            map(json!({ "mail": "Dana@acme.example", "name": "Dana", "roles": ["a", 1, "b"], "email_verified": true }));
        let identity = identity_from(&payload, "sub-1".into(), &settings());
        assert_eq!(identity.email.as_deref(), Some("Dana@acme.example"));
        assert_eq!(identity.groups, vec!["a", "b"]);
        assert_eq!(identity.email_verified, Some(true));
        let single = identity_from(&map(json!({ "roles": "admins" })), "s".into(), &settings());
        assert_eq!(single.groups, vec!["admins"]);
        assert_eq!(single.email, None);
    }

    #[test]
    fn authorized_party_must_be_us() {
        assert!(check_authorized_party(&map(json!({ "aud": "mandate" })), "mandate").is_ok());
        assert!(check_authorized_party(&map(json!({ "aud": ["mandate", "x"], "azp": "mandate" })), "mandate").is_ok());
        assert!(check_authorized_party(&map(json!({ "aud": ["mandate", "x"] })), "mandate").is_err());
        assert!(check_authorized_party(&map(json!({ "aud": "mandate", "azp": "other" })), "mandate").is_err());
    }

    #[test]
    fn payloads_decode() {
        let jwt = format!("e30.{}.sig", URL_SAFE_NO_PAD.encode(br#"{"sub":"x"}"#));
        assert_eq!(payload_of(&jwt).unwrap()["sub"], "x");
        assert!(payload_of("nodots").is_err());
        assert!(payload_of(&format!("e30.{}.sig", URL_SAFE_NO_PAD.encode(b"[1]"))).is_err());
    }
}

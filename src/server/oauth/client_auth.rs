//! Who is calling an OAuth endpoint: an agent by its client credentials (HTTP Basic per
//! RFC 6749 §2.3.1, or `client_id` + `client_secret` in the form), or — for introspection and
//! revocation — a resource server holding an organization API key (`Authorization: Bearer`).

use super::{Form, OAuthError};
use crate::model::api_keys::ApiKeyScope;
use crate::server::domain::agents::mandate::AgentState;
use crate::server::domain::agents::tokens::TokenError;
use crate::server::domain::org::api_keys;
use crate::server::domain::ApiKeyPrincipal;
use crate::server::state::AppState;
use axum::http::{header, HeaderMap};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use std::sync::Arc;
use time::OffsetDateTime;
use uuid::Uuid;

pub enum Client {
    Agent(Arc<AgentState>),
    ApiKey(ApiKeyPrincipal),
}

impl Client {
    pub fn org_id(&self) -> Uuid {
        match self {
            Client::Agent(agent) => agent.org_id,
            Client::ApiKey(key) => key.org_id(),
        }
    }
}

/// `application/x-www-form-urlencoded` decoding of one Basic credential part (RFC 6749 §2.3.1).
fn form_decode(part: &str) -> String {
    form_urlencoded::parse(format!("x={part}").as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default()
}

pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    form: &Form,
    allow_api_key: bool,
) -> Result<Client, OAuthError> {
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let form_credentials = (form.get("client_id"), form.get("client_secret"));
    let (client_id, secret, basic) = match authorization {
        Some(value) if value.len() > 6 && value[..6].eq_ignore_ascii_case("basic ") => {
            if form_credentials.1.is_some() {
                return Err(OAuthError::invalid_request("use one client authentication method, not two"));
            }
            let decoded = STANDARD.decode(value[6..].trim()).map_err(|_| OAuthError::invalid_client(true))?;
            let decoded = String::from_utf8(decoded).map_err(|_| OAuthError::invalid_client(true))?;
            let (id, secret) = decoded.split_once(':').ok_or_else(|| OAuthError::invalid_client(true))?;
            (form_decode(id), form_decode(secret), true)
        }
        Some(value) if allow_api_key && value.len() > 7 && value[..7].eq_ignore_ascii_case("bearer ") => {
            let key = api_keys::authenticate(&state.pool, value[7..].trim(), OffsetDateTime::now_utc())
                .await
                .map_err(|err| OAuthError::from_token_error(TokenError::Server(err), None))?;
            let key = key.ok_or_else(|| OAuthError::invalid_client(false))?;
            // Introspection and revocation are what the `introspect` scope grants.
            if key.require(ApiKeyScope::Introspect).is_err() {
                let mut err = OAuthError::invalid_client(false);
                err.description = "this API key does not hold the introspect scope".into();
                return Err(err);
            }
            return Ok(Client::ApiKey(key));
        }
        Some(_) => return Err(OAuthError::invalid_client(false)),
        None => match form_credentials {
            (Some(id), Some(secret)) => (id.to_string(), secret.to_string(), false),
            (Some(_), None) => return Err(OAuthError::invalid_client(false)),
            _ => {
                let mut err = OAuthError::invalid_client(true);
                err.description = "authenticate the client: HTTP Basic with the agent's client id and secret"
                    .to_string()
                    + if allow_api_key { ", or Bearer with an organization API key" } else { "" };
                return Err(err);
            }
        },
    };
    match state.tokens.authenticate_agent(&client_id, &secret).await {
        Ok(agent) => Ok(Client::Agent(agent)),
        Err(TokenError::InvalidClient) => Err(OAuthError::invalid_client(basic)),
        Err(other) => Err(OAuthError::from_token_error(other, None)),
    }
}

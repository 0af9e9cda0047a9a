//! The browser side of single sign-on: `GET /sso/start` picks the connection (from the email's
//! verified domain, or by id), records the attempt and sends the browser to the IdP with a
//! cookie that binds the attempt to it; `GET /sso/oidc/callback` takes the attempt (single
//! use), finishes the OIDC flow and signs the admin in under a fresh session id — or, for a
//! Test connection run (started by `POST /sso/test`), records each step and shows them on the
//! connection's page. Refusals
//! land on `/sso/failed?reason=…`, which says what to do.

use super::guard::safe_next;
use super::oidc::{self, Steps, STEP_REDIRECT};
use super::saml as saml_protocol;
use super::session;
use crate::model::connections::{SsoFailure, StepStatus, TestStep};
use crate::server::domain::sso::attempts::{self, Purpose};
use crate::server::domain::sso::identity::{self, Refusal, SignInAt, SsoError, SsoIdentity};
use crate::server::domain::sso::oidc::{self as oidc_connections, OidcSettings, OIDC_CALLBACK_PATH};
use crate::server::domain::sso::routing::{self, Target};
use crate::server::domain::sso::saml;
use crate::server::domain::sso::{login, test_runs};
use crate::server::domain::{Caller, DomainError, RequestMeta};
use crate::server::middleware::request_meta::Meta;
use crate::server::middleware::security_headers::CspNonce;
use crate::server::state::AppState;
use axum::extract::{Form, Path, Query, State};
use axum::http::header::{COOKIE, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Extension;
use axum::Router;
use serde::Deserialize;
use time::OffsetDateTime;
use tower_sessions::Session;
use uuid::Uuid;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/sso/start", get(start))
        .route("/sso/test", post(start_test))
        .route(OIDC_CALLBACK_PATH, get(oidc_callback))
        .route("/sso/saml/{connection_id}/metadata", get(saml_metadata))
        .route("/sso/saml/{connection_id}/acs", post(saml_acs))
        .route("/sso/saml/finish", post(saml_finish))
}

fn binding_cookie_name(https: bool) -> &'static str {
    if https {
        "__Host-mandate_sso"
    } else {
        "mandate_sso"
    }
}

fn binding_cookie(https: bool, value: &str, max_age: i64) -> HeaderValue {
    let secure = if https { "; Secure" } else { "" };
    let cookie =
        format!("{}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}", binding_cookie_name(https));
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn read_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

fn url_encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// The page that explains a refused sign-in.
fn failure_page(failure: SsoFailure, meta: &RequestMeta) -> Response {
    let request_id = meta.request_id.as_deref().map(|id| format!("&request_id={}", url_encode(id))).unwrap_or_default();
    Redirect::to(&format!("/sso/failed?reason={}{request_id}", failure.code())).into_response()
}

fn internal_error(err: DomainError, meta: &RequestMeta) -> Response {
    tracing::error!(error = %err, request_id = meta.request_id.as_deref().unwrap_or(""), "single sign-on failed");
    let request_id = meta.request_id.as_deref().map(|id| format!("?request_id={}", url_encode(id))).unwrap_or_default();
    Redirect::to(&format!("/sso/failed{request_id}")).into_response()
}

#[derive(Deserialize)]
struct StartQuery {
    email: Option<String>,
    connection: Option<String>,
    next: Option<String>,
    test: Option<String>,
}

/// `GET /sso/start?email=…` or `?connection=ID` (Test connection runs start at `POST /sso/test`).
async fn start(State(state): State<AppState>, Meta(meta): Meta, Query(query): Query<StartQuery>) -> Response {
    let now = OffsetDateTime::now_utc();
    let next = safe_next(query.next.as_deref()).to_string();
    let connection_id = match query.connection.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        Some(raw) => match Uuid::parse_str(raw) {
            Ok(id) => Some(id),
            Err(_) => return failure_page(SsoFailure::UnknownState, &meta),
        },
        None => None,
    };

    if query.test.is_some() {
        // Test connection runs start with a POST from the connection's page (`/sso/test`), so
        // that no other site can start one in an owner's browser.
        let back = connection_id.map(|id| format!("/connections/{id}")).unwrap_or_else(|| "/connections".into());
        return Redirect::to(&back).into_response();
    }

    let target = match (connection_id, query.email.as_deref()) {
        (Some(id), _) => match routing::connection_target(&state.pool, id).await {
            Ok(Some((target, true))) => target,
            Ok(Some((_, false))) => return failure_page(SsoFailure::ConnectionDisabled, &meta),
            Ok(None) => return failure_page(SsoFailure::UnknownState, &meta),
            Err(err) => return internal_error(err, &meta),
        },
        (None, Some(email)) if !email.trim().is_empty() && email.len() <= 320 => {
            match routing::route_email(&state.pool, email).await {
                Ok(Some(target)) => target,
                // No SSO for this address: the password form, with the email filled in.
                Ok(None) => {
                    return Redirect::to(&format!(
                        "/login?method=password&email={}&next={}",
                        url_encode(email.trim()),
                        url_encode(&next)
                    ))
                    .into_response()
                }
                Err(err) => return internal_error(err, &meta),
            }
        }
        _ => return Redirect::to("/login").into_response(),
    };
    let response = send_to_idp(&state, &target, Purpose::Login, Some(&next), None, &meta, now).await;
    if query.email.is_some() {
        onward_page(response)
    } else {
        response
    }
}

#[derive(Deserialize)]
struct TestQuery {
    connection: String,
}

/// `POST /sso/test?connection=ID`: starts a Test connection run in the signed-in admin's
/// browser. A POST, so the CSRF check (same origin) applies: another site cannot make an owner's
/// browser run a test, which links the owner's identity and may turn the connection on.
async fn start_test(
    State(state): State<AppState>,
    session: Session,
    Meta(meta): Meta,
    Query(query): Query<TestQuery>,
) -> Response {
    let now = OffsetDateTime::now_utc();
    let Ok(connection_id) = Uuid::parse_str(query.connection.trim()) else {
        return Redirect::to("/connections").into_response();
    };
    let admin = match session::current_admin(&state.pool, &session, now).await {
        Ok(Some(admin)) => admin,
        Ok(None) => {
            let back = url_encode(&format!("/connections/{connection_id}"));
            return Redirect::to(&format!("/login?next={back}")).into_response();
        }
        Err(err) => return internal_error(err, &meta),
    };
    let test_id = match test_runs::start_test(&state.pool, Caller::Admin(&admin), connection_id, now).await {
        Ok(id) => id,
        Err(DomainError::NotFound) => return Redirect::to("/connections").into_response(),
        Err(DomainError::Forbidden(_)) => {
            return Redirect::to(&format!("/connections/{connection_id}?test_refused=1")).into_response()
        }
        Err(err) => return internal_error(err, &meta),
    };
    let target = match routing::connection_target(&state.pool, connection_id).await {
        Ok(Some((target, _))) => target,
        Ok(None) => return Redirect::to("/connections").into_response(),
        Err(err) => return internal_error(err, &meta),
    };
    onward_page(send_to_idp(&state, &target, Purpose::Test, None, Some(test_id), &meta, now).await)
}

/// The login page's email form leads here; browsers apply the page's CSP `form-action 'self'`
/// to every redirect after a form submission, so a redirect straight to the IdP would be
/// blocked. A small page that moves on by itself (meta refresh, plus a link) is not a form
/// submission any more.
fn onward_page(response: Response) -> Response {
    if response.status() != StatusCode::SEE_OTHER {
        return response;
    }
    let Some(location) = response.headers().get(LOCATION).and_then(|l| l.to_str().ok()).map(str::to_string) else {
        return response;
    };
    if location.starts_with('/') {
        return response;
    }
    let mut page = page_moving_on(&location);
    for cookie in response.headers().get_all(SET_COOKIE) {
        page.headers_mut().append(SET_COOKIE, cookie.clone());
    }
    page
}

/// A page that posts `fields` on to `action` by itself (a script with this response's CSP nonce,
/// plus a button): a submission our own page starts, so it is same-site and carries the
/// SameSite=Lax cookies, and what it carries stays out of the URL.
fn page_posting_on(action: &str, fields: &[(&str, &str)], nonce: &str) -> Response {
    let escape =
        |text: &str| text.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;").replace('>', "&gt;");
    let inputs: String = fields
        .iter()
        .map(|(name, value)| format!("<input type=\"hidden\" name=\"{}\" value=\"{}\">", escape(name), escape(value)))
        .collect();
    let body = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <link rel=\"icon\" href=\"/favicon.svg\" type=\"image/svg+xml\">\
         <title>Signing in · Mandate</title></head><body>\
         <form id=\"continue\" method=\"post\" action=\"{}\">{inputs}<p>Signing you in… \
         <button type=\"submit\">Continue</button></p></form>\
         <script nonce=\"{}\">document.getElementById('continue').submit();</script></body></html>",
        escape(action),
        escape(nonce)
    );
    (StatusCode::OK, [(axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

/// A page that moves the browser on to `location` by itself (meta refresh, plus a link): a
/// navigation our own page starts, so it is same-site and carries the SameSite=Lax cookies.
fn page_moving_on(location: &str) -> Response {
    let escaped = location.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;").replace('>', "&gt;");
    let body = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"0;url={escaped}\">\
         <link rel=\"icon\" href=\"/favicon.svg\" type=\"image/svg+xml\">\
         <title>Signing in · Mandate</title></head><body><p>Signing you in… \
         <a id=\"continue\" href=\"{escaped}\">Continue</a></p></body></html>"
    );
    (StatusCode::OK, [(axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

/// Discovers the IdP, records the attempt and redirects the browser there with the binding cookie.
async fn send_to_idp(
    state: &AppState,
    target: &Target,
    purpose: Purpose,
    next: Option<&str>,
    test_id: Option<Uuid>,
    meta: &RequestMeta,
    now: OffsetDateTime,
) -> Response {
    if target.kind == "saml" {
        return send_to_saml_idp(state, target, purpose, next, test_id, meta, now).await;
    }
    let settings = match oidc_connections::settings(&state.pool, &state.master, target.connection_id).await {
        Ok(settings) => settings,
        Err(err) => return internal_error(err, meta),
    };
    let redirect_uri = state.config.url(OIDC_CALLBACK_PATH);
    let mut steps = Steps::default();
    let url = match oidc::discover(&state.idp_http, &settings, &mut steps).await {
        Ok(metadata) => match attempts::begin_attempt(&state.pool, target, purpose, next, test_id, now).await {
            Ok(attempt) => {
                oidc::authorization_url(&metadata, &settings, &redirect_uri, &attempt).map(|url| (url, attempt.binding))
            }
            Err(err) => return internal_error(err, meta),
        },
        Err(refusal) => Err(refusal),
    };
    match (url, test_id) {
        (Ok((url, binding)), _) => {
            let mut response = (StatusCode::SEE_OTHER, [(LOCATION, url)]).into_response();
            response.headers_mut().append(SET_COOKIE, binding_cookie(state.config.https, &binding, 600));
            response
        }
        (Err(_), Some(test_id)) => {
            let outcome = TestOutcome { test_id, steps, identity: None };
            finish_test(state, target.org_id, target.connection_id, outcome, &oidc::ALL_STEPS, meta).await
        }
        (Err(refusal), None) => {
            if let Err(err) = identity::record_failure(
                &state.pool,
                SignInAt { org_id: target.org_id, connection_id: target.connection_id, method: "oidc" },
                &refusal,
                None,
                meta,
                now,
            )
            .await
            {
                return internal_error(err, meta);
            }
            failure_page(refusal.failure, meta)
        }
    }
}

/// The SAML side of `send_to_idp`: an HTTP-Redirect AuthnRequest whose id names the attempt.
async fn send_to_saml_idp(
    state: &AppState,
    target: &Target,
    purpose: Purpose,
    next: Option<&str>,
    test_id: Option<Uuid>,
    meta: &RequestMeta,
    now: OffsetDateTime,
) -> Response {
    let settings = match saml::settings(&state.pool, &state.master, target.connection_id).await {
        Ok(settings) => settings,
        Err(err) => return internal_error(err, meta),
    };
    let sp = match saml_protocol::service_provider(&settings, &state.config.public_url) {
        Ok(sp) => sp,
        Err(refusal) => {
            let mut steps = Steps::default();
            let refusal = steps.failed(STEP_REDIRECT, refusal);
            return match test_id {
                Some(test_id) => {
                    let all = &saml_protocol::ALL_STEPS;
                    let outcome = TestOutcome { test_id, steps, identity: None };
                    finish_test(state, target.org_id, target.connection_id, outcome, all, meta).await
                }
                None => failure_page(refusal.failure, meta),
            };
        }
    };
    let attempt = match attempts::begin_attempt(&state.pool, target, purpose, next, test_id, now).await {
        Ok(attempt) => attempt,
        Err(err) => return internal_error(err, meta),
    };
    match saml_protocol::authn_request_url(&sp, &settings, &attempts::saml_request_id(&attempt.state)) {
        Ok(url) => {
            let mut response = (StatusCode::SEE_OTHER, [(LOCATION, url)]).into_response();
            response.headers_mut().append(SET_COOKIE, binding_cookie(state.config.https, &attempt.binding, 600));
            response
        }
        Err(refusal) => failure_page(refusal.failure, meta),
    }
}

/// A Test connection run's outcome as the protocol left it: the identity the IdP vouched for
/// (then every protocol step passed), or the steps up to the one that failed.
struct TestOutcome<'a> {
    test_id: Uuid,
    steps: Steps,
    identity: Option<&'a SsoIdentity>,
}

/// Records a Test connection run; without an identity, steps of `all_steps` it did not reach
/// are shown as skipped (with one, the run's last step says what signing in would do).
async fn finish_test(
    state: &AppState,
    org_id: Uuid,
    connection_id: Uuid,
    outcome: TestOutcome<'_>,
    all_steps: &[&str],
    meta: &RequestMeta,
) -> Response {
    let TestOutcome { test_id, mut steps, identity } = outcome;
    if identity.is_none() {
        for step in all_steps {
            if !steps.0.iter().any(|s| s.step == *step) {
                steps.0.push(TestStep {
                    step: (*step).into(),
                    status: StepStatus::Skipped,
                    detail: "not reached".into(),
                });
            }
        }
    }
    let now = OffsetDateTime::now_utc();
    match test_runs::finish_test(&state.pool, org_id, test_id, &steps.0, identity, meta, now).await {
        Ok(()) => Redirect::to(&format!("/connections/{connection_id}?test={test_id}")).into_response(),
        Err(err) => internal_error(err, meta),
    }
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /sso/oidc/callback`: where the IdP sends the browser back.
async fn oidc_callback(
    State(state): State<AppState>,
    session: Session,
    Meta(meta): Meta,
    headers: HeaderMap,
    Query(query): Query<CallbackQuery>,
) -> Response {
    let mut response = handle_callback(&state, &session, &meta, &headers, query).await;
    // The binding cookie has done its job whatever happened.
    response.headers_mut().append(SET_COOKIE, binding_cookie(state.config.https, "", 0));
    response
}

async fn handle_callback(
    state: &AppState,
    session: &Session,
    meta: &RequestMeta,
    headers: &HeaderMap,
    query: CallbackQuery,
) -> Response {
    let now = OffsetDateTime::now_utc();
    let binding = read_cookie(headers, binding_cookie_name(state.config.https));
    let attempt =
        match attempts::take_attempt(&state.pool, query.state.as_deref().unwrap_or(""), binding, meta, now).await {
            Ok(attempt) => attempt,
            Err(SsoError::Refused(refusal)) => return failure_page(refusal.failure, meta),
            Err(SsoError::Internal(err)) => return internal_error(err, meta),
        };
    let settings = match oidc_connections::settings(&state.pool, &state.master, attempt.connection_id).await {
        Ok(settings) => settings,
        Err(err) => return internal_error(err, meta),
    };
    let mut steps = Steps::default();
    let verified = verify_answer(state, &settings, &attempt, &query, &mut steps).await;

    match (attempt.purpose, attempt.test_id) {
        (Purpose::Test, Some(test_id)) => {
            let outcome = TestOutcome { test_id, steps, identity: verified.as_ref().ok() };
            finish_test(state, attempt.org_id, attempt.connection_id, outcome, &oidc::ALL_STEPS, meta).await
        }
        _ => {
            let identity = match verified {
                Ok(identity) => identity,
                Err(refusal) => {
                    let (org_id, connection_id) = (attempt.org_id, attempt.connection_id);
                    if let Err(err) = identity::record_failure(
                        &state.pool,
                        SignInAt { org_id, connection_id, method: "oidc" },
                        &refusal,
                        None,
                        meta,
                        now,
                    )
                    .await
                    {
                        return internal_error(err, meta);
                    }
                    return failure_page(refusal.failure, meta);
                }
            };
            match login::complete_login(&state.pool, &attempt, "oidc", &identity, meta, now).await {
                Ok(admin) => {
                    if let Err(err) = session::sign_in(session, &admin, "oidc", now).await {
                        return internal_error(err, meta);
                    }
                    Redirect::to(safe_next(attempt.next_path.as_deref())).into_response()
                }
                Err(SsoError::Refused(refusal)) => failure_page(refusal.failure, meta),
                Err(SsoError::Internal(err)) => internal_error(err, meta),
            }
        }
    }
}

/// Discovery, the IdP's answer, the code exchange and the ID token, in order.
async fn verify_answer(
    state: &AppState,
    settings: &OidcSettings,
    attempt: &attempts::Attempt,
    query: &CallbackQuery,
    steps: &mut Steps,
) -> Result<SsoIdentity, Refusal> {
    let metadata = oidc::discover(&state.idp_http, settings, steps).await?;
    if let Some(error) = &query.error {
        let description: String = query.error_description.as_deref().unwrap_or("").chars().take(300).collect();
        let error: String = error.chars().take(100).collect();
        return Err(steps.failed(
            STEP_REDIRECT,
            Refusal::new(SsoFailure::IdpError, format!("the IdP answered {error}: {description}")),
        ));
    }
    let Some(code) = query.code.as_deref().filter(|c| !c.is_empty() && c.len() <= 2048) else {
        return Err(steps.failed(
            STEP_REDIRECT,
            Refusal::new(SsoFailure::IdpError, "the IdP sent the browser back without an authorization code"),
        ));
    };
    steps.ok(STEP_REDIRECT, "the IdP sent the browser back with an authorization code and the expected state");
    let redirect_uri = state.config.url(OIDC_CALLBACK_PATH);
    let identity = oidc::finish(&state.idp_http, settings, &metadata, &redirect_uri, code, attempt, steps).await?;
    Ok(identity)
}

/// `GET /sso/saml/{connection_id}/metadata`: our SP metadata for the IdP.
async fn saml_metadata(State(state): State<AppState>, Meta(meta): Meta, Path(connection_id): Path<String>) -> Response {
    let Ok(connection_id) = Uuid::parse_str(&connection_id) else { return StatusCode::NOT_FOUND.into_response() };
    let settings = match saml::settings(&state.pool, &state.master, connection_id).await {
        Ok(settings) => settings,
        Err(DomainError::NotFound) => return StatusCode::NOT_FOUND.into_response(),
        Err(err) => return internal_error(err, &meta),
    };
    let xml = saml_protocol::sp_metadata(&settings, &state.config.public_url);
    ([(axum::http::header::CONTENT_TYPE, "application/samlmetadata+xml")], xml).into_response()
}

#[derive(Deserialize)]
struct AcsForm {
    #[serde(rename = "SAMLResponse", default)]
    saml_response: String,
}

/// `POST /sso/saml/{connection_id}/acs`: the IdP's answer, posted by the browser from the IdP's
/// site (so without our SameSite=Lax cookies). Verified here, then handed to the browser that
/// started the sign-in through a single-use token that our page posts on to `/sso/saml/finish`
/// (in a form body: tokens never travel in URLs, where histories, proxies and logs keep them).
async fn saml_acs(
    State(state): State<AppState>,
    Meta(meta): Meta,
    nonce: Option<Extension<CspNonce>>,
    Path(connection_id): Path<String>,
    Form(form): Form<AcsForm>,
) -> Response {
    let now = OffsetDateTime::now_utc();
    let Ok(connection_id) = Uuid::parse_str(&connection_id) else {
        return failure_page(SsoFailure::UnknownState, &meta);
    };
    let settings = match saml::settings(&state.pool, &state.master, connection_id).await {
        Ok(settings) => settings,
        Err(DomainError::NotFound) => return failure_page(SsoFailure::UnknownState, &meta),
        Err(err) => return internal_error(err, &meta),
    };
    let org_id = settings.org_id;
    let refuse = |refusal: Refusal| {
        let pool = state.pool.clone();
        let meta = meta.clone();
        async move {
            match identity::record_failure(
                &pool,
                SignInAt { org_id, connection_id, method: "saml" },
                &refusal,
                None,
                &meta,
                now,
            )
            .await
            {
                Ok(()) => failure_page(refusal.failure, &meta),
                Err(err) => internal_error(err, &meta),
            }
        }
    };
    let received = match saml_protocol::receive(&form.saml_response) {
        Ok(received) => received,
        Err(refusal) => return refuse(refusal).await,
    };
    let attempt = match &received.in_response_to {
        Some(request_id) => {
            match attempts::take_saml_attempt(&state.pool, org_id, connection_id, request_id, &meta, now).await {
                Ok(attempt) => attempt,
                Err(SsoError::Refused(refusal)) => return failure_page(refusal.failure, &meta),
                Err(SsoError::Internal(err)) => return internal_error(err, &meta),
            }
        }
        None if settings.allow_idp_initiated => {
            match attempts::idp_initiated_attempt(&state.pool, org_id, connection_id, now).await {
                Ok(attempt) => attempt,
                Err(err) => return internal_error(err, &meta),
            }
        }
        None => {
            return refuse(Refusal::new(
                SsoFailure::IdpInitiatedOff,
                "the response answers no request of ours and IdP-initiated sign-in is off",
            ))
            .await
        }
    };
    let mut steps = Steps::default();
    steps.ok(saml_protocol::STEP_REDIRECT, "the IdP posted its response to the ACS");
    let verified = match saml_protocol::service_provider(&settings, &state.config.public_url) {
        Ok(sp) => saml_protocol::verify(&sp, &settings, &received, received.in_response_to.as_deref(), &mut steps),
        Err(refusal) => Err(refusal),
    };
    let verified = match verified {
        Ok(verified) => {
            match saml::use_assertion_id(&state.pool, connection_id, &verified.assertion_id, verified.valid_until).await
            {
                Ok(true) => Ok(verified),
                Ok(false) => Err(steps.failed(
                    saml_protocol::STEP_CONDITIONS,
                    Refusal::new(
                        SsoFailure::SamlReplayed,
                        format!("assertion {} was already used", verified.assertion_id),
                    ),
                )),
                Err(err) => return internal_error(err, &meta),
            }
        }
        Err(refusal) => Err(refusal),
    };
    let handed = match (attempt.purpose, verified) {
        (Purpose::Test, verified) => {
            let identity = verified.as_ref().ok().map(|verified| &verified.identity);
            attempts::hand_over(&state.pool, attempt.id, identity, &steps.0).await
        }
        (Purpose::Login, Ok(verified)) => {
            attempts::hand_over(&state.pool, attempt.id, Some(&verified.identity), &[]).await
        }
        (Purpose::Login, Err(refusal)) => return refuse(refusal).await,
    };
    match handed {
        Ok(token) => {
            let nonce = nonce.map(|Extension(CspNonce(nonce))| nonce).unwrap_or_default();
            page_posting_on("/sso/saml/finish", &[("token", &token)], &nonce)
        }
        Err(err) => internal_error(err, &meta),
    }
}

#[derive(Deserialize)]
struct FinishForm {
    #[serde(default)]
    token: String,
}

/// `POST /sso/saml/finish` (form field `token`): the browser that started the sign-in collects
/// the verified outcome and is signed in (or sees its Test connection run).
async fn saml_finish(
    State(state): State<AppState>,
    session: Session,
    Meta(meta): Meta,
    headers: HeaderMap,
    Form(form): Form<FinishForm>,
) -> Response {
    let now = OffsetDateTime::now_utc();
    let binding = read_cookie(&headers, binding_cookie_name(state.config.https));
    let mut response = match attempts::take_hand_over(&state.pool, &form.token, binding, &meta, now).await {
        Err(SsoError::Refused(refusal)) => failure_page(refusal.failure, &meta),
        Err(SsoError::Internal(err)) => internal_error(err, &meta),
        Ok(handed) => match (handed.attempt.purpose, handed.attempt.test_id, handed.identity) {
            (Purpose::Test, Some(test_id), identity) => {
                let attempt = &handed.attempt;
                let outcome = TestOutcome { test_id, steps: Steps(handed.steps), identity: identity.as_ref() };
                let all = &saml_protocol::ALL_STEPS;
                finish_test(&state, attempt.org_id, attempt.connection_id, outcome, all, &meta).await
            }
            (_, _, Some(identity)) => {
                match login::complete_login(&state.pool, &handed.attempt, "saml", &identity, &meta, now).await {
                    Ok(admin) => match session::sign_in(&session, &admin, "saml", now).await {
                        Ok(()) => Redirect::to(safe_next(handed.attempt.next_path.as_deref())).into_response(),
                        Err(err) => internal_error(err, &meta),
                    },
                    Err(SsoError::Refused(refusal)) => failure_page(refusal.failure, &meta),
                    Err(SsoError::Internal(err)) => internal_error(err, &meta),
                }
            }
            _ => failure_page(SsoFailure::UnknownState, &meta),
        },
    };
    response.headers_mut().append(SET_COOKIE, binding_cookie(state.config.https, "", 0));
    response
}

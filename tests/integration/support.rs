//! Shared test helpers: start the app on a test database, drive it as a browser would, and
//! create organizations and admins through the domain.

use mandate::model::agents::AgentCredentials;
use mandate::model::api_keys::ApiKeyScope;
use mandate::model::Role;
use mandate::server::config::Config;
use mandate::server::domain::Call;
use mandate::server::domain::{agents::registry, org::admins, org::api_keys, org::organizations, Caller, RequestMeta};
use mandate::server::state::AppState;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{redirect, Client, Response};
use sqlx::PgPool;
use std::net::SocketAddr;
use time::OffsetDateTime;
use uuid::Uuid;

pub const PASSWORD: &str = "correct horse battery staple";
pub const MASTER_KEY: [u8; 32] = [7; 32];

pub struct TestApp {
    pub base: String,
    pub pool: PgPool,
    pub state: AppState,
}

/// Serves the real router on 127.0.0.1:<random> over the given test database.
pub async fn spawn(pool: PgPool) -> TestApp {
    spawn_with(pool, config).await
}

pub async fn spawn_with(pool: PgPool, config: impl FnOnce(&str) -> Config) -> TestApp {
    mandate::server::migrate(&pool).await.unwrap();
    spawn_migrated(pool, config).await
}

/// Serves over a database someone else migrated (as the schema owner), with `pool`'s role.
pub async fn spawn_migrated(pool: PgPool, config: impl FnOnce(&str) -> Config) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let state = AppState::new(pool.clone(), config(&base)).await.unwrap();
    let app = mandate::server::router::app(state.clone());
    tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap();
    });
    TestApp { base, pool, state }
}

/// The configuration of a test server at `base`. The test identity providers and log stream
/// receivers listen on loopback, which the outbound policy refuses unless allowed, as here.
pub fn config(base: &str) -> Config {
    let mut config = Config::new(database_url_of_env(), base, Some(MASTER_KEY), false).unwrap();
    use mandate::server::domain::outbound::OutboundPolicy;
    let allow = OutboundPolicy::parse_allow("127.0.0.0/8").unwrap();
    config.outbound = std::sync::Arc::new(OutboundPolicy { allow, ca_file: None });
    config
}

pub fn database_url_of_env() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| mandate::server::config::DEFAULT_DATABASE_URL.to_string())
}

/// The connection URL of the per-test database (for running the CLI against it).
pub fn database_url(pool: &PgPool) -> String {
    let base = database_url_of_env();
    let name = pool.connect_options().get_database().unwrap().to_string();
    let (server, _) = base.rsplit_once('/').unwrap();
    format!("{server}/{name}")
}

pub fn meta() -> RequestMeta {
    RequestMeta { ip: Some("192.0.2.1".into()), user_agent: Some("integration-test".into()), request_id: None }
}

/// A cookie-keeping HTTP client that behaves like a same-origin browser page.
pub struct Browser {
    pub client: Client,
    pub base: String,
}

impl TestApp {
    pub fn browser(&self) -> Browser {
        let mut headers = HeaderMap::new();
        headers.insert("origin", HeaderValue::from_str(&self.base).unwrap());
        headers.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        let client = Client::builder()
            .cookie_store(true)
            .redirect(redirect::Policy::none())
            .default_headers(headers)
            .build()
            .unwrap();
        Browser { client, base: self.base.clone() }
    }

    /// A client that sends no browser headers at all.
    pub fn bare_client(&self) -> Client {
        Client::builder().redirect(redirect::Policy::none()).build().unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Creates an organization whose owner has set `PASSWORD`; returns (org id, owner email).
    pub async fn org_with_owner(&self, name: &str) -> (Uuid, String) {
        let email = format!("owner@{}.example", name.to_lowercase().replace(' ', "-"));
        let created =
            organizations::create(&self.pool, name, &email, None, &meta(), OffsetDateTime::now_utc()).await.unwrap();
        admins::accept_invitation(
            &self.pool,
            &created.setup_token,
            "Owner",
            PASSWORD,
            &meta(),
            OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
        (created.org_id, email)
    }

    /// Adds an admin with `role` (password `PASSWORD`) to an organization; returns the email.
    pub async fn add_admin(&self, org_id: Uuid, local: &str, role: Role) -> String {
        let email = format!("{local}@{}.example", &org_id.to_string()[..8]);
        let invitation = admins::invite(
            &self.pool,
            Call::new(Caller::Operator { org_id }, &meta(), OffsetDateTime::now_utc()),
            &email,
            role,
        )
        .await
        .unwrap();
        admins::accept_invitation(&self.pool, &invitation.token, local, PASSWORD, &meta(), OffsetDateTime::now_utc())
            .await
            .unwrap();
        email
    }

    /// A browser signed in as `email`.
    pub async fn signed_in(&self, email: &str) -> Browser {
        let browser = self.browser();
        let response = browser.login(email, PASSWORD).await;
        assert!(redirect_target(&response).is_some(), "sign-in of {email} failed: {}", response.text().await.unwrap());
        browser
    }

    pub async fn admin_id(&self, org_id: Uuid, email: &str) -> Uuid {
        sqlx::query_scalar("select a.id from admins a join people p on p.org_id = a.org_id and p.id = a.person_id where a.org_id = $1 and p.email = $2")
            .bind(org_id)
            .bind(email)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }
}

impl Browser {
    /// Calls a server function the way the portal's forms do (form-encoded POST).
    pub async fn rpc(&self, endpoint: &str, form: &[(&str, &str)]) -> Response {
        self.client.post(format!("{}/rpc/{endpoint}", self.base)).form(form).send().await.unwrap()
    }

    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.rpc("login", &[("email", email), ("password", password)]).await
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client.get(format!("{}{path}", self.base)).send().await.unwrap()
    }

    pub async fn post(&self, path: &str) -> Response {
        self.client.post(format!("{}{path}", self.base)).send().await.unwrap()
    }
}

/// Where a successful server function sends the browser (the portal's client follows the
/// `Location` header of a 200 answer; a plain HTML form post gets a 302 instead).
pub fn redirect_target(response: &Response) -> Option<String> {
    if !response.status().is_success() && !response.status().is_redirection() {
        return None;
    }
    response.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_string)
}

/// The `message` of a server function's error response.
pub async fn error_message(response: Response) -> String {
    let body: serde_json::Value = response.json().await.unwrap();
    body["message"].as_str().unwrap_or_default().to_string()
}

/// Actions of an organization's audit events, oldest first.
pub async fn audit_actions(pool: &PgPool, org_id: Uuid) -> Vec<String> {
    sqlx::query_scalar("select action from audit_events where org_id = $1 order by seq")
        .bind(org_id)
        .fetch_all(pool)
        .await
        .unwrap()
}

/// The value of the session cookie in a `Set-Cookie` header, if any.
pub fn session_cookie(response: &Response) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("mandate_session=") || v.starts_with("__Host-mandate_session="))
        .map(str::to_string)
}

/// Agents, tokens and API keys, the way operators and agents use them.
impl TestApp {
    /// Registers an agent through the operator path with its scopes approved.
    pub async fn approved_agent(&self, org_id: Uuid, owner: &str, name: &str, scopes: &[&str]) -> AgentCredentials {
        let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        let input = registry::NewAgent {
            name,
            description: "",
            owner: registry::Owner::Email(owner),
            scopes: &scopes,
            reason: "test",
            approve: true,
        };
        registry::register(
            &self.pool,
            Call::new(Caller::Operator { org_id }, &meta(), OffsetDateTime::now_utc()),
            input,
        )
        .await
        .unwrap()
    }

    /// A key holding every scope (the tests of each capability use the whole platform API).
    pub async fn api_key(&self, org_id: Uuid) -> String {
        self.api_key_with(org_id, &ApiKeyScope::ALL).await
    }

    /// A key holding exactly `scopes`.
    pub async fn api_key_with(&self, org_id: Uuid, scopes: &[ApiKeyScope]) -> String {
        let key = api_keys::NewApiKey { name: "test", scopes, expires_at: None };
        api_keys::create(&self.pool, Call::new(Caller::Operator { org_id }, &meta(), OffsetDateTime::now_utc()), key)
            .await
            .unwrap()
    }

    /// `POST /oauth2/token` with client credentials (HTTP Basic).
    pub async fn request_token(&self, agent: &AgentCredentials, scope: Option<&str>) -> Response {
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(scope) = scope {
            form.push(("scope", scope));
        }
        self.bare_client()
            .post(self.url("/oauth2/token"))
            .basic_auth(&agent.client_id, Some(&agent.client_secret))
            .form(&form)
            .send()
            .await
            .unwrap()
    }

    /// A token for the agent's whole mandate (asserts success).
    pub async fn token(&self, agent: &AgentCredentials) -> String {
        let response = self.request_token(agent, None).await;
        assert_eq!(response.status(), 200, "token request failed: {}", response.text().await.unwrap());
        let body: serde_json::Value = response.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_string()
    }

    /// `POST /oauth2/introspect` as a resource server holding an API key.
    pub async fn introspect(&self, api_key: &str, token: &str) -> serde_json::Value {
        let response = self
            .bare_client()
            .post(self.url("/oauth2/introspect"))
            .bearer_auth(api_key)
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "introspection of {token:?} failed");
        response.json().await.unwrap()
    }

    /// A platform API call with an API key and an optional JSON body.
    pub async fn api(
        &self,
        method: reqwest::Method,
        api_key: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Response {
        let mut request = self.bare_client().request(method, self.url(path)).bearer_auth(api_key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap()
    }
}

pub fn inactive() -> serde_json::Value {
    serde_json::json!({ "active": false })
}

//! An OpenID Provider the tests control: discovery, a JWKS with an Ed25519 key, and a token
//! endpoint that checks the client secret and the PKCE verifier, then hands out whatever ID
//! token the test minted for the code — well-formed or deliberately wrong. Also a one-zone DNS
//! server answering TXT questions, for domain verification.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

pub const CLIENT_ID: &str = "mandate-test-client";
pub const CLIENT_SECRET: &str = "test-client-secret-123";

#[derive(Default)]
struct Codes {
    /// code → (PKCE challenge, ID token)
    issued: HashMap<String, (String, String)>,
}

pub struct TestIdp {
    pub issuer: String,
    pub key: SigningKey,
    pub kid: String,
    codes: Arc<Mutex<Codes>>,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl TestIdp {
    pub async fn start() -> TestIdp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let key = SigningKey::from_bytes(&[42; 32]);
        let kid = "test-key-1".to_string();
        let codes = Arc::new(Mutex::new(Codes::default()));
        let discovery = json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/authorize"),
            "token_endpoint": format!("{issuer}/token"),
            "jwks_uri": format!("{issuer}/jwks"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["EdDSA"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            "code_challenge_methods_supported": ["S256"],
        });
        let jwks = json!({ "keys": [{
            "kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA", "kid": kid,
            "x": b64(key.verifying_key().as_bytes()),
        }]});
        let token_codes = codes.clone();
        let app = axum::Router::new()
            .route(
                "/.well-known/openid-configuration",
                axum::routing::get(move || async move { axum::Json(discovery) }),
            )
            .route("/jwks", axum::routing::get(move || async move { axum::Json(jwks) }))
            .route(
                "/token",
                axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
                    let codes = token_codes.clone();
                    async move { token_endpoint(&codes, &headers, &body) }
                }),
            );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        TestIdp { issuer, key, kid, codes }
    }

    /// Claims of a good ID token for `nonce` (tests change what they need).
    pub fn claims(&self, subject: &str, email: &str, nonce: &str) -> Value {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        json!({
            "iss": self.issuer, "sub": subject, "aud": CLIENT_ID, "iat": now, "exp": now + 300,
            "nonce": nonce, "email": email, "email_verified": true, "name": "Test Person", "groups": [],
        })
    }

    /// A compact JWS over `claims` with `header`, signed by `key`.
    pub fn sign_with(key: &SigningKey, header: &Value, claims: &Value) -> String {
        let signing_input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
        let signature = key.sign(signing_input.as_bytes());
        format!("{signing_input}.{}", b64(&signature.to_bytes()))
    }

    pub fn sign(&self, claims: &Value) -> String {
        TestIdp::sign_with(&self.key, &json!({ "alg": "EdDSA", "kid": self.kid, "typ": "JWT" }), claims)
    }

    /// Issues an authorization code that redeems (with the right PKCE verifier) for `id_token`.
    pub fn issue_code(&self, code_challenge: &str, id_token: String) -> String {
        let code = format!("code-{}", uuid::Uuid::new_v4());
        self.codes.lock().unwrap().issued.insert(code.clone(), (code_challenge.to_string(), id_token));
        code
    }
}

fn oauth_error(status: u16, error: &str) -> axum::response::Response {
    use axum::response::IntoResponse;
    (axum::http::StatusCode::from_u16(status).unwrap(), axum::Json(json!({ "error": error }))).into_response()
}

fn token_endpoint(codes: &Mutex<Codes>, headers: &axum::http::HeaderMap, body: &str) -> axum::response::Response {
    use axum::response::IntoResponse;
    let expected =
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}")));
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return oauth_error(401, "invalid_client");
    }
    let form: HashMap<String, String> = form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    let Some((challenge, id_token)) = form.get("code").and_then(|code| codes.lock().unwrap().issued.remove(code))
    else {
        return oauth_error(400, "invalid_grant");
    };
    let verifier = form.get("code_verifier").cloned().unwrap_or_default();
    if b64(&Sha256::digest(verifier.as_bytes())) != challenge {
        return oauth_error(400, "invalid_grant");
    }
    axum::Json(json!({ "access_token": "at", "token_type": "Bearer", "expires_in": 300, "id_token": id_token }))
        .into_response()
}

/// A DNS server for one test: answers TXT questions from its table, NXDOMAIN otherwise.
pub struct TestDns {
    pub address: SocketAddr,
    records: Arc<Mutex<HashMap<String, Vec<String>>>>,
}

impl TestDns {
    pub async fn start() -> TestDns {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let address = socket.local_addr().unwrap();
        let records: Arc<Mutex<HashMap<String, Vec<String>>>> = Arc::default();
        let table = records.clone();
        tokio::spawn(async move {
            let mut buffer = [0u8; 1500];
            loop {
                let Ok((len, from)) = socket.recv_from(&mut buffer).await else { return };
                if let Some(answer) = answer(&buffer[..len], &table) {
                    let _ = socket.send_to(&answer, from).await;
                }
            }
        });
        TestDns { address, records }
    }

    pub fn publish(&self, name: &str, value: &str) {
        self.records.lock().unwrap().entry(name.to_lowercase()).or_default().push(value.to_string());
    }
}

/// The answer to one DNS query (question copied; TXT records from the table).
fn answer(query: &[u8], table: &Mutex<HashMap<String, Vec<String>>>) -> Option<Vec<u8>> {
    let mut at = 12;
    let mut labels = Vec::new();
    loop {
        let len = *query.get(at)? as usize;
        at += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(query.get(at..at + len)?).to_lowercase());
        at += len;
    }
    let question_end = at + 4;
    let qtype = u16::from_be_bytes([*query.get(at)?, *query.get(at + 1)?]);
    let values = table.lock().unwrap().get(&labels.join(".")).cloned();
    let mut out = Vec::new();
    out.extend_from_slice(&query[0..2]);
    let rcode = if values.is_none() { 3 } else { 0 };
    out.extend_from_slice(&[0x81, 0x80 | rcode]);
    let answers: Vec<String> = if qtype == 16 { values.unwrap_or_default() } else { Vec::new() };
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&(answers.len() as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(query.get(12..question_end)?);
    for value in answers {
        out.extend_from_slice(&[0xC0, 0x0C, 0, 16, 0, 1, 0, 0, 0, 0]);
        let bytes = value.as_bytes();
        out.extend_from_slice(&((bytes.len() + 1) as u16).to_be_bytes());
        out.push(bytes.len() as u8);
        out.extend_from_slice(bytes);
    }
    Some(out)
}

//! Token issuance and introspection throughput and latency, printed beside a bare axum endpoint
//! measured in the same run on the same machine (the ratio is what matters: absolute numbers
//! depend on the machine). Not a test: it asserts nothing.
//!
//!   scripts/bench            (or: cargo bench --features ssr --bench oauth)
//!
//! Knobs: BENCH_SECONDS (default 5), BENCH_CONCURRENCY (default 32), DATABASE_URL (server to
//! use; a `mandate_bench` database is recreated on it).

mod support;

use axum::routing::post;
use mandate::model::api_keys::ApiKeyScope;
use mandate::server::config::Config;
use mandate::server::domain::Call;
use mandate::server::domain::{org::api_keys, Caller, RequestMeta};
use mandate::server::state::AppState;
use std::sync::Arc;
use support::{env_or, http_client, load, print_table, serve};
use time::OffsetDateTime;

#[tokio::main]
async fn main() {
    let seconds: u64 = env_or("BENCH_SECONDS", 5);
    let concurrency: usize = env_or("BENCH_CONCURRENCY", 32);
    let (database_url, pool, admin) = support::fresh_database("mandate_bench").await;

    // The product, and a bare axum endpoint with a similar request and answer size.
    let probe = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", probe.local_addr().unwrap());
    drop(probe);
    let mut config = Config::new(database_url, &base_url, Some([9; 32]), false).unwrap();
    // The product's work is measured, not its rate limits (the load comes from one address).
    config.rate_limit_percent = 0;
    let state = AppState::new(pool.clone(), config).await.unwrap();
    let mandate_base = serve(mandate::server::router::app(state)).await;
    let bare = axum::Router::new().route(
        "/bare",
        post(|body: String| async move {
            axum::Json(serde_json::json!({ "active": true, "echo": body.len(), "scope": "crm.read" }))
        }),
    );
    let bare_base = serve(bare).await;

    let bench = support::bench_agent(&pool, &mandate_base).await;
    let (meta, now) = (RequestMeta::default(), OffsetDateTime::now_utc());
    let bench_key = api_keys::NewApiKey { name: "bench", scopes: &ApiKeyScope::DEFAULT, expires_at: None };
    let api_key = api_keys::create(&pool, Call::new(Caller::Operator { org_id: bench.org_id }, &meta, now), bench_key)
        .await
        .unwrap();
    let token = Arc::new(bench.token.clone());
    let (client_id, secret) =
        (Arc::new(bench.credentials.client_id.clone()), Arc::new(bench.credentials.client_secret.clone()));

    println!("Mandate OAuth benchmark: {seconds} s per scenario, {concurrency} concurrent clients, same machine as the server");
    let mut outcomes = Vec::new();
    let url = format!("{bare_base}/bare");
    outcomes.push(
        load("bare axum endpoint (baseline)", seconds, concurrency, http_client, move |c: reqwest::Client| {
            let url = url.clone();
            async move { c.post(url).body("token=x").send().await.is_ok_and(|r| r.status().is_success()) }
        })
        .await,
    );
    let url = format!("{mandate_base}/oauth2/token");
    let (id, s) = (client_id.clone(), secret.clone());
    outcomes.push(
        load("token issuance (client_credentials)", seconds, concurrency, http_client, move |c: reqwest::Client| {
            let (url, id, s) = (url.clone(), id.clone(), s.clone());
            async move {
                c.post(url)
                    .basic_auth(id.as_str(), Some(s.as_str()))
                    .form(&[("grant_type", "client_credentials")])
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
            }
        })
        .await,
    );
    let url = format!("{mandate_base}/oauth2/introspect");
    let (id, s, t) = (client_id.clone(), secret.clone(), token.clone());
    outcomes.push(
        load("introspection (agent credentials)", seconds, concurrency, http_client, move |c: reqwest::Client| {
            let (url, id, s, t) = (url.clone(), id.clone(), s.clone(), t.clone());
            async move {
                c.post(url)
                    .basic_auth(id.as_str(), Some(s.as_str()))
                    .form(&[("token", t.as_str())])
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
            }
        })
        .await,
    );
    let url = format!("{mandate_base}/oauth2/introspect");
    let (k, t) = (Arc::new(api_key), token.clone());
    outcomes.push(
        load("introspection (org API key)", seconds, concurrency, http_client, move |c: reqwest::Client| {
            let (url, k, t) = (url.clone(), k.clone(), t.clone());
            async move {
                c.post(url)
                    .bearer_auth(k.as_str())
                    .form(&[("token", t.as_str())])
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
            }
        })
        .await,
    );

    print_table("requests", &outcomes);
    let issued: i64 = sqlx::query_scalar("select count(*) from access_tokens").fetch_one(&pool).await.unwrap();
    println!("\nevery issued token is on record with its audit event (group commit): {issued} tokens in access_tokens");
    support::drop_database("mandate_bench", pool, admin).await;
}

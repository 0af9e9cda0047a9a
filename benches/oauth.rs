//! Token issuance and introspection throughput and latency, printed beside a bare axum endpoint
//! measured in the same run on the same machine (the ratio is what matters: absolute numbers
//! depend on the machine). Not a test: it asserts nothing.
//!
//!   scripts/bench            (or: cargo bench --features ssr --bench oauth)
//!
//! Knobs: BENCH_SECONDS (default 5), BENCH_CONCURRENCY (default 32), DATABASE_URL (server to
//! use; a `mandate_bench` database is recreated on it).

use axum::routing::post;
use mandate::server::config::Config;
use mandate::server::domain::agents::{self, NewAgent, Owner};
use mandate::server::domain::{api_keys, orgs, Caller, RequestMeta};
use mandate::server::state::AppState;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

struct Outcome {
    name: &'static str,
    requests: usize,
    errors: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Outcome {
    fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let index = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[index]
    }
}

/// Runs `concurrency` clients that each loop over `request` for `seconds`.
async fn load<F, Fut>(name: &'static str, seconds: u64, concurrency: usize, request: F) -> Outcome
where
    F: Fn(reqwest::Client) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let request = Arc::new(request);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let request = request.clone();
        workers.push(tokio::spawn(async move {
            let client = reqwest::Client::builder().pool_max_idle_per_host(1).build().unwrap();
            let mut latencies = Vec::new();
            let mut errors = 0;
            while Instant::now() < deadline {
                let begun = Instant::now();
                if request(client.clone()).await {
                    latencies.push(begun.elapsed());
                } else {
                    errors += 1;
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for worker in workers {
        let (mut l, e) = worker.await.unwrap();
        latencies.append(&mut l);
        errors += e;
    }
    let elapsed = started.elapsed();
    latencies.sort();
    Outcome { name, requests: latencies.len(), errors, elapsed, latencies }
}

async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap()
    });
    base
}

#[tokio::main]
async fn main() {
    let seconds: u64 = std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    let concurrency: usize = std::env::var("BENCH_CONCURRENCY").ok().and_then(|s| s.parse().ok()).unwrap_or(32);
    let server = std::env::var("DATABASE_URL").unwrap_or_else(|_| mandate::server::config::DEFAULT_DATABASE_URL.into());
    let server = server.rsplit_once('/').map(|(s, _)| s.to_string()).unwrap_or(server);
    let admin = sqlx::PgPool::connect(&format!("{server}/postgres")).await.expect("PostgreSQL must be reachable");
    sqlx::query("drop database if exists mandate_bench with (force)").execute(&admin).await.unwrap();
    sqlx::query("create database mandate_bench").execute(&admin).await.unwrap();
    let database_url = format!("{server}/mandate_bench");
    let pool = sqlx::postgres::PgPoolOptions::new().max_connections(20).connect(&database_url).await.unwrap();
    mandate::server::migrate(&pool).await.unwrap();

    // The product, and a bare axum endpoint with a similar request and answer size.
    let probe = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", probe.local_addr().unwrap());
    drop(probe);
    let config = Config::new(database_url, &base_url, Some([9; 32]), false).unwrap();
    let state = AppState::new(pool.clone(), config).await.unwrap();
    let mandate_base = serve(mandate::server::router::app(state)).await;
    let bare = axum::Router::new().route(
        "/bare",
        post(|body: String| async move {
            axum::Json(serde_json::json!({ "active": true, "echo": body.len(), "scope": "crm.read" }))
        }),
    );
    let bare_base = serve(bare).await;

    let meta = RequestMeta::default();
    let now = OffsetDateTime::now_utc();
    let org = orgs::create(&pool, "Bench", "owner@bench.example", None, &meta, now).await.unwrap();
    let scopes = vec!["crm.read".to_string()];
    let input = NewAgent {
        name: "Bench agent",
        description: "",
        owner: Owner::Email("dana@bench.example"),
        scopes: &scopes,
        reason: "",
        approve: true,
    };
    let agent = agents::register(&pool, Caller::Operator { org_id: org.org_id }, input, &meta, now).await.unwrap();
    let api_key = api_keys::create(&pool, Caller::Operator { org_id: org.org_id }, "bench", &meta, now).await.unwrap();
    let client = reqwest::Client::new();
    let token: serde_json::Value = client
        .post(format!("{mandate_base}/oauth2/token"))
        .basic_auth(&agent.client_id, Some(&agent.client_secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = Arc::new(token["access_token"].as_str().expect("a token").to_string());
    let (client_id, secret) = (Arc::new(agent.client_id.clone()), Arc::new(agent.client_secret.clone()));

    println!("Mandate OAuth benchmark: {seconds} s per scenario, {concurrency} concurrent clients, same machine as the server");
    let mut outcomes = Vec::new();
    let url = format!("{bare_base}/bare");
    outcomes.push(
        load("bare axum endpoint (baseline)", seconds, concurrency, move |c| {
            let url = url.clone();
            async move { c.post(url).body("token=x").send().await.is_ok_and(|r| r.status().is_success()) }
        })
        .await,
    );
    let url = format!("{mandate_base}/oauth2/token");
    let (id, s) = (client_id.clone(), secret.clone());
    outcomes.push(
        load("token issuance (client_credentials)", seconds, concurrency, move |c| {
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
        load("introspection (agent credentials)", seconds, concurrency, move |c| {
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
        load("introspection (org API key)", seconds, concurrency, move |c| {
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

    let baseline = outcomes[0].per_second();
    println!();
    println!(
        "{:<40} {:>12} {:>10} {:>10} {:>10} {:>8}",
        "scenario", "requests/s", "p50 ms", "p99 ms", "vs bare", "errors"
    );
    for outcome in &outcomes {
        println!(
            "{:<40} {:>12.0} {:>10.2} {:>10.2} {:>9.2}x {:>8}",
            outcome.name,
            outcome.per_second(),
            outcome.percentile(0.50).as_secs_f64() * 1e3,
            outcome.percentile(0.99).as_secs_f64() * 1e3,
            outcome.per_second() / baseline,
            outcome.errors
        );
    }
    let issued: i64 = sqlx::query_scalar("select count(*) from access_tokens").fetch_one(&pool).await.unwrap();
    println!("\nevery issued token is on record with its audit event (group commit): {issued} tokens in access_tokens");
    pool.close().await;
    sqlx::query("drop database if exists mandate_bench with (force)").execute(&admin).await.unwrap();
}

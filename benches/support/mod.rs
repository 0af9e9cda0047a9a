//! What the benchmarks share: a load generator with latency percentiles, a throwaway database,
//! serving a router on a random port, and the results table printed against a baseline.

#![allow(dead_code)]

use mandate::model::agents::AgentCredentials;
use mandate::server::domain::agents::registry::{self, NewAgent, Owner};
use mandate::server::domain::{org::organizations, Call, Caller, RequestMeta};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Outcome {
    pub name: &'static str,
    pub requests: usize,
    pub errors: usize,
    pub elapsed: Duration,
    pub latencies: Vec<Duration>,
}

impl Outcome {
    pub fn per_second(&self) -> f64 {
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

pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

/// Runs `concurrency` clients that each loop over `request` for `seconds`.
pub async fn load<C, F, Fut>(
    name: &'static str,
    seconds: u64,
    concurrency: usize,
    client: impl Fn() -> C,
    request: F,
) -> Outcome
where
    C: Clone + Send + 'static,
    F: Fn(C) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let request = Arc::new(request);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let request = request.clone();
        let client = client();
        workers.push(tokio::spawn(async move {
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

/// One HTTP client per worker, keeping one connection.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder().pool_max_idle_per_host(1).build().unwrap()
}

pub async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap()
    });
    base
}

/// A freshly created, migrated database `name` on the server of `DATABASE_URL`, and a pool on
/// the server's maintenance database to drop it afterwards.
pub async fn fresh_database(name: &str) -> (String, sqlx::PgPool, sqlx::PgPool) {
    let server = std::env::var("DATABASE_URL").unwrap_or_else(|_| mandate::server::config::DEFAULT_DATABASE_URL.into());
    let server = server.rsplit_once('/').map(|(s, _)| s.to_string()).unwrap_or(server);
    let admin = sqlx::PgPool::connect(&format!("{server}/postgres")).await.expect("PostgreSQL must be reachable");
    sqlx::query(&format!("drop database if exists {name} with (force)")).execute(&admin).await.unwrap();
    sqlx::query(&format!("create database {name}")).execute(&admin).await.unwrap();
    let database_url = format!("{server}/{name}");
    let pool = sqlx::postgres::PgPoolOptions::new().max_connections(20).connect(&database_url).await.unwrap();
    mandate::server::migrate(&pool).await.unwrap();
    (database_url, pool, admin)
}

pub async fn drop_database(name: &str, pool: sqlx::PgPool, admin: sqlx::PgPool) {
    pool.close().await;
    sqlx::query(&format!("drop database if exists {name} with (force)")).execute(&admin).await.unwrap();
}

/// The results, each row's rate also as a ratio of the first row's (the baseline).
pub fn print_table(unit: &str, outcomes: &[Outcome]) {
    let baseline = outcomes[0].per_second();
    println!();
    println!(
        "{:<48} {:>12} {:>10} {:>10} {:>10} {:>8}",
        "scenario",
        format!("{unit}/s"),
        "p50 ms",
        "p99 ms",
        "vs first",
        "errors"
    );
    for outcome in outcomes {
        println!(
            "{:<48} {:>12.0} {:>10.2} {:>10.2} {:>9.2}x {:>8}",
            outcome.name,
            outcome.per_second(),
            outcome.percentile(0.50).as_secs_f64() * 1e3,
            outcome.percentile(0.99).as_secs_f64() * 1e3,
            outcome.per_second() / baseline,
            outcome.errors
        );
    }
}

/// An organization with one agent whose `crm.read` is approved, and a token it minted over HTTP.
pub struct BenchAgent {
    pub org_id: uuid::Uuid,
    pub credentials: AgentCredentials,
    pub token: String,
}

pub async fn bench_agent(pool: &sqlx::PgPool, base: &str) -> BenchAgent {
    let meta = RequestMeta::default();
    let now = time::OffsetDateTime::now_utc();
    let org = organizations::create(pool, "Bench", "owner@bench.example", None, &meta, now).await.unwrap();
    let scopes = vec!["crm.read".to_string()];
    let input = NewAgent {
        name: "Bench agent",
        description: "",
        owner: Owner::Email("dana@bench.example"),
        scopes: &scopes,
        reason: "",
        approve: true,
    };
    let credentials =
        registry::register(pool, Call::new(Caller::Operator { org_id: org.org_id }, &meta, now), input).await.unwrap();
    let token: serde_json::Value = reqwest::Client::new()
        .post(format!("{base}/oauth2/token"))
        .basic_auth(&credentials.client_id, Some(&credentials.client_secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().expect("a token").to_string();
    BenchAgent { org_id: org.org_id, credentials, token }
}

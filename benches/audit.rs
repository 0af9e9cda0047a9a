//! Agent-action ingestion (durable, group-committed, over HTTP with the agent's token) and
//! audit verification, printed beside a plain single-row INSERT baseline (one durable
//! transaction per row) measured in the same run on the same machine. Not a test: it asserts
//! nothing; the ratios are what matter.
//!
//!   scripts/bench            (or: cargo bench --features ssr --bench audit)
//!
//! Knobs: BENCH_SECONDS (default 5), BENCH_CONCURRENCY (default 32), DATABASE_URL (server to
//! use; a `mandate_bench_audit` database is recreated on it).

mod support;

use mandate::model::audit::ChainStatus;
use mandate::server::config::Config;
use mandate::server::domain::audit::{self, checkpoints};
use mandate::server::state::AppState;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{env_or, http_client, load, print_table, serve, Outcome};
use time::OffsetDateTime;

const DATABASE: &str = "mandate_bench_audit";

/// A one-shot measurement (verification, checkpointing) in the table's shape.
fn once(name: &'static str, items: usize, elapsed: Duration) -> Outcome {
    Outcome { name, requests: items, errors: 0, elapsed, latencies: Vec::new() }
}

#[tokio::main]
async fn main() {
    let seconds: u64 = env_or("BENCH_SECONDS", 5);
    let concurrency: usize = env_or("BENCH_CONCURRENCY", 32);
    let (database_url, pool, admin) = support::fresh_database(DATABASE).await;

    let probe = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", probe.local_addr().unwrap());
    drop(probe);
    let mut config = Config::new(database_url, &base_url, Some([9; 32]), false).unwrap();
    // The product's work is measured, not its rate limits (the load comes from one address).
    config.rate_limit_percent = 0;
    let state = AppState::new(pool.clone(), config).await.unwrap();
    let keys = state.audit_keys.clone();
    let base = serve(mandate::server::router::app(state)).await;

    let bench = support::bench_agent(&pool, &base).await;
    let org_id = bench.org_id;
    let token = Arc::new(bench.token);
    sqlx::query("create table bench_baseline (id bigserial primary key, org_id uuid not null, body text not null)")
        .execute(&pool)
        .await
        .unwrap();

    println!(
        "Mandate audit benchmark: {seconds} s per load scenario, {concurrency} concurrent clients, same machine as the server"
    );
    let mut outcomes = Vec::new();
    let pool_for = || pool.clone();
    outcomes.push(
        load(
            "plain single-row INSERT, one commit each (baseline)",
            seconds,
            concurrency,
            pool_for,
            move |pool| async move {
                sqlx::query("insert into bench_baseline (org_id, body) values ($1, $2)")
                    .bind(uuid::Uuid::nil())
                    .bind(r#"{"action":"crm.contact.read","target":"c-1"}"#)
                    .execute(&pool)
                    .await
                    .is_ok()
            },
        )
        .await,
    );
    let url = format!("{base}/api/v1/audit/events");
    let body = serde_json::json!({ "action": "crm.contact.read", "target": { "type": "contact", "id": "c-1" } });
    outcomes.push(
        load(
            "agent action ingestion (HTTP, durable, audited)",
            seconds,
            concurrency,
            http_client,
            move |c: reqwest::Client| {
                let (url, token, body) = (url.clone(), token.clone(), body.clone());
                async move {
                    c.post(url)
                        .bearer_auth(token.as_str())
                        .json(&body)
                        .send()
                        .await
                        .is_ok_and(|r| r.status().as_u16() == 201)
                }
            },
        )
        .await,
    );

    let started = Instant::now();
    let signed = checkpoints::run_once(&pool, &keys, OffsetDateTime::now_utc()).await.unwrap();
    let signing = started.elapsed();
    let size = signed.iter().find(|(id, _)| *id == org_id).map(|(_, size)| *size).unwrap_or(0);
    outcomes.push(once("checkpoint: extend the Merkle tree and sign", size as usize, signing));

    let started = Instant::now();
    let status = audit::verify(&pool, &keys, org_id).await.unwrap();
    let verifying = started.elapsed();
    let ChainStatus::Intact { events, .. } = status else {
        panic!("the benchmark's own log does not verify: {status:?}")
    };
    outcomes.push(once("verification (chain + tree + signatures)", events as usize, verifying));

    print_table("events", &outcomes);
    println!(
        "\nverified {events} events in {:.2} s; every ingested action was committed before its 201",
        verifying.as_secs_f64()
    );
    support::drop_database(DATABASE, pool, admin).await;
}

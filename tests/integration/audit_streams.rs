//! Log streams end to end: a real HTTP receiver on loopback that can be "down" (503), streams
//! created through the platform API and the portal, delivery passes with a pinned clock, and
//! the receiver's view of what arrived (every event, signed, with idempotency keys).

use crate::support::*;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use hmac::{Hmac, Mac};
use mandate::model::Role;
use mandate::server::domain::audit::streams::{delivery, StreamHttp};
use mandate::server::domain::audit::NewEvent;
use mandate::server::domain::{Actor, Work};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::Sha256;
use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// One request the receiver got, and whether it acknowledged it.
#[derive(Clone)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: Bytes,
    acknowledged: bool,
}

/// A destination on 127.0.0.1 that answers 503 while `down` is set and 200 otherwise.
#[derive(Default)]
struct Receiver {
    down: AtomicBool,
    requests: Mutex<Vec<Received>>,
}

impl Receiver {
    fn requests(&self) -> Vec<Received> {
        self.requests.lock().unwrap().clone()
    }

    fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }
}

async fn spawn_receiver() -> (String, Arc<Receiver>) {
    let receiver = Arc::new(Receiver::default());
    let shared = receiver.clone();
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri, headers: HeaderMap, body: Bytes| {
        let receiver = shared.clone();
        async move {
            let down = receiver.down.load(Ordering::SeqCst);
            receiver.requests.lock().unwrap().push(Received {
                path: uri.path().to_string(),
                headers,
                body,
                acknowledged: !down,
            });
            if down {
                (StatusCode::SERVICE_UNAVAILABLE, "maintenance window\nback soon").into_response()
            } else {
                (StatusCode::OK, "ok").into_response()
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (base, receiver)
}

async fn create_stream(app: &TestApp, key: &str, body: Value) -> Value {
    let response = app.api(Method::POST, key, "/api/v1/audit/streams", Some(body)).await;
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    response.json().await.unwrap()
}

async fn stream(app: &TestApp, key: &str, id: &str) -> Value {
    let response = app.api(Method::GET, key, &format!("/api/v1/audit/streams/{id}"), None).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn head(app: &TestApp, org_id: Uuid) -> i64 {
    sqlx::query_scalar("select last_seq from audit_chain_heads where org_id = $1")
        .bind(org_id)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

async fn record_events(app: &TestApp, org_id: Uuid, count: usize) {
    for i in 0..count {
        Work::record_alone(
            &app.pool,
            NewEvent::new(org_id, Actor::Operator, "test.ping").details(json!({ "i": i })),
            &meta(),
            OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
    }
}

fn header<'a>(request: &'a Received, name: &str) -> &'a str {
    request.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
}

/// Checks `Mandate-Signature: t=..,v1=..` as a receiver would.
fn signature_verifies(request: &Received, secret: &str) -> bool {
    let value = header(request, "mandate-signature");
    let mut t = None;
    let mut v1 = None;
    for part in value.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => t = Some(value),
            Some(("v1", value)) => v1 = Some(value),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else { return false };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(&request.body);
    mac.verify_slice(&hex::decode(v1).unwrap_or_default()).is_ok()
}

#[sqlx::test]
async fn a_webhook_receives_every_event_once_its_destination_is_back(pool: sqlx::PgPool) {
    let app = spawn(pool).await;
    let (org_id, _) = app.org_with_owner("Acme").await;
    let (other_org, _) = app.org_with_owner("Globex").await;
    let key = app.api_key(org_id).await;
    let (base, receiver) = spawn_receiver().await;
    receiver.set_down(true);

    let created =
        create_stream(&app, &key, json!({ "name": "SIEM", "kind": "webhook", "url": format!("{base}/hook") })).await;
    let stream_id = created["stream_id"].as_str().unwrap().to_string();
    let secret = created["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("mnd_whsec_") && secret.len() > 40, "{secret}");
    let start = stream(&app, &key, &stream_id).await["cursor_seq"].as_i64().unwrap();
    assert_eq!(start, head(&app, org_id).await - 1, "a stream starts with its own creation event");

    // More than one batch (500), interleaved with another organization's events.
    record_events(&app, org_id, 520).await;
    record_events(&app, other_org, 5).await;
    let last = head(&app, org_id).await;
    assert_eq!(stream(&app, &key, &stream_id).await["lag"], last - start);

    let http = StreamHttp::new(&app.state.config.outbound, &app.base).unwrap();
    let master = &app.state.master;
    let mut now = OffsetDateTime::now_utc();

    // The destination is down: every attempt fails, the cursor stays, the wait grows.
    for attempt in 1..=3 {
        assert_eq!(delivery::deliver_due(&app.pool, master, &http, now).await.unwrap(), 0);
        let row = stream(&app, &key, &stream_id).await;
        assert_eq!(row["failures"], attempt);
        assert_eq!(row["status"], "retrying");
        assert_eq!(row["cursor_seq"], start, "nothing acknowledged, nothing skipped");
        let error = row["last_error"].as_str().unwrap();
        assert!(error.starts_with("HTTP 503 Service Unavailable: maintenance window back soon"), "{error}");
        assert!(row["last_error_at"].is_string() && row["last_success_at"].is_null());
        let sent = receiver.requests().len();
        assert_eq!(sent, attempt as usize, "one request per attempt");
        // Not due again before its backoff has passed.
        assert_eq!(delivery::deliver_due(&app.pool, master, &http, now).await.unwrap(), 0);
        assert_eq!(receiver.requests().len(), sent, "backoff respected");
        now += Duration::minutes(10);
    }

    // Back up: passes (one batch each) until the stream has caught up.
    receiver.set_down(false);
    let mut delivered = 0;
    for _ in 0..5 {
        delivered += delivery::deliver_due(&app.pool, master, &http, now).await.unwrap();
        now += Duration::seconds(1);
        if stream(&app, &key, &stream_id).await["lag"] == 0 {
            break;
        }
    }
    let row = stream(&app, &key, &stream_id).await;
    assert_eq!(row["lag"], 0);
    assert_eq!(row["status"], "healthy");
    assert_eq!(row["failures"], 0);
    assert_eq!(row["cursor_seq"], last);
    assert_eq!(row["delivered_events"], last - start);
    assert_eq!(delivered as i64, last - start);
    assert!(row["last_success_at"].is_string());
    assert!(row["last_error"].as_str().unwrap().contains("503"), "the last error stays visible");

    // What arrived: every request signed and keyed, every event of the org from the stream's
    // start to the head (none lost; retried batches may repeat events, deduped by id).
    let requests = receiver.requests();
    let mut seen_ids = HashSet::new();
    let mut seqs = BTreeSet::new();
    for request in &requests {
        assert_eq!(request.path, "/hook");
        assert_eq!(header(request, "content-type"), "application/json");
        assert_eq!(header(request, "user-agent"), "Mandate-Audit-Stream/1");
        assert!(signature_verifies(request, &secret), "signature of {:?}", header(request, "mandate-signature"));
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(body["stream_id"], stream_id.as_str());
        assert_eq!(body["organization_id"], org_id.to_string());
        let events = body["events"].as_array().unwrap();
        assert!(!events.is_empty() && events.len() <= 500);
        let (first, last_in_batch) =
            (events[0]["seq"].as_i64().unwrap(), events.last().unwrap()["seq"].as_i64().unwrap());
        assert_eq!(header(request, "idempotency-key"), format!("{stream_id}:{first}-{last_in_batch}"));
        if request.acknowledged {
            for event in events {
                if seen_ids.insert(event["id"].as_str().unwrap().to_string()) {
                    seqs.insert(event["seq"].as_i64().unwrap());
                }
            }
        }
    }
    assert_eq!(seqs, (start + 1..=last).collect::<BTreeSet<_>>(), "every event, none lost");
    let expected_ids: HashSet<String> =
        sqlx::query_scalar::<_, Uuid>("select id from audit_events where org_id = $1 and seq > $2")
            .bind(org_id)
            .bind(start)
            .fetch_all(&app.pool)
            .await
            .unwrap()
            .into_iter()
            .map(|id| id.to_string())
            .collect();
    assert_eq!(seen_ids, expected_ids, "exactly this organization's events");
    let first_request: Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(first_request["events"][0]["action"], "audit_stream.created");
    assert!(
        requests
            .iter()
            .filter(|r| !r.acknowledged)
            .all(|r| header(r, "idempotency-key").starts_with(&format!("{stream_id}:{}-", start + 1))),
        "a failed batch is re-sent from the same event"
    );

    // Nothing more to send: a pass sends nothing.
    let before = receiver.requests().len();
    assert_eq!(delivery::deliver_due(&app.pool, master, &http, now + Duration::hours(1)).await.unwrap(), 0);
    assert_eq!(receiver.requests().len(), before);
}

/// Each signed checkpoint reaches every stream after the events it covers, so a copy lives
/// outside the database; a failed delivery sends it again, an acknowledged one never.
#[sqlx::test]
async fn every_signed_checkpoint_reaches_the_streams_after_its_events(pool: sqlx::PgPool) {
    use mandate::model::audit::Checkpoint;
    use mandate::server::domain::audit::checkpoints;
    let app = spawn(pool).await;
    let (org_id, _) = app.org_with_owner("Acme").await;
    let key = app.api_key(org_id).await;
    let (base, receiver) = spawn_receiver().await;
    let created = create_stream(&app, &key, json!({ "name": "SIEM", "kind": "webhook", "url": base })).await;
    let id = created["stream_id"].as_str().unwrap().to_string();
    let http = StreamHttp::new(&app.state.config.outbound, &app.base).unwrap();
    let master = &app.state.master;
    let mut now = OffsetDateTime::now_utc() + Duration::seconds(1);
    let entries = |request: &Received| -> Vec<Value> {
        serde_json::from_slice::<Value>(&request.body).unwrap()["events"].as_array().unwrap().clone()
    };
    let checkpoints_in = |request: &Received| -> Vec<Value> {
        entries(request).into_iter().filter(|e| e["action"] == checkpoints::STREAM_ACTION).collect()
    };

    record_events(&app, org_id, 3).await;
    delivery::deliver_due(&app.pool, master, &http, now).await.unwrap();
    assert!(checkpoints_in(&receiver.requests()[0]).is_empty(), "nothing signed yet");
    checkpoints::run_once(&app.pool, &app.state.audit_keys, now).await.unwrap();
    let signed = checkpoints::latest(&app.pool, org_id).await.unwrap().unwrap().checkpoint;
    assert_eq!(signed.size, head(&app, org_id).await);

    now += Duration::seconds(1);
    assert_eq!(delivery::deliver_due(&app.pool, master, &http, now).await.unwrap(), 0, "no new events");
    let requests = receiver.requests();
    assert_eq!(requests.len(), 2, "the checkpoint goes out on its own");
    assert!(signature_verifies(&requests[1], created["secret"].as_str().unwrap()));
    assert_eq!(
        header(&requests[1], "idempotency-key"),
        format!("{id}:{}-{}+c{}", signed.size + 1, signed.size, signed.size)
    );
    let sent = checkpoints_in(&requests[1]);
    assert_eq!(sent.len(), 1);
    let details = &sent[0]["details"];
    // What a receiver does with it: rebuild the checkpoint and check its signature.
    let received = Checkpoint {
        org_id,
        size: details["size"].as_i64().unwrap(),
        root_hash: details["root_hash"].as_str().unwrap().to_string(),
        signed_at: OffsetDateTime::from_unix_timestamp(details["signed_at"].as_i64().unwrap()).unwrap(),
        key_id: details["key_id"].as_str().unwrap().to_string(),
        signature: details["signature"].as_str().unwrap().to_string(),
    };
    assert_eq!(received, signed);
    assert!(app.state.audit_keys.verifies(&received));
    let root = hex::decode(&signed.root_hash).unwrap();
    assert_eq!(
        details["signed_text"],
        checkpoints::note(org_id, signed.size, &root, signed.signed_at.unix_timestamp())
    );

    // Once acknowledged, never again; a failed delivery keeps it for the next attempt.
    now += Duration::seconds(1);
    delivery::deliver_due(&app.pool, master, &http, now).await.unwrap();
    assert_eq!(receiver.requests().len(), 2, "nothing left to send");
    receiver.set_down(true);
    record_events(&app, org_id, 2).await;
    checkpoints::run_once(&app.pool, &app.state.audit_keys, now).await.unwrap();
    delivery::deliver_due(&app.pool, master, &http, now).await.unwrap();
    receiver.set_down(false);
    now += Duration::minutes(10);
    assert_eq!(delivery::deliver_due(&app.pool, master, &http, now).await.unwrap(), 2);
    let requests = receiver.requests();
    let retried = requests.last().unwrap();
    let kinds: Vec<String> = entries(retried).iter().map(|e| e["action"].as_str().unwrap().to_string()).collect();
    assert_eq!(kinds, ["test.ping", "test.ping", checkpoints::STREAM_ACTION], "events first, then their checkpoint");
    assert_eq!(checkpoints_in(retried)[0]["details"]["size"], head(&app, org_id).await);
    assert_eq!(stream(&app, &key, &id).await["lag"], 0);
}

#[sqlx::test]
async fn a_disabled_stream_keeps_its_place_and_catches_up(pool: sqlx::PgPool) {
    let app = spawn(pool).await;
    let (org_id, _) = app.org_with_owner("Acme").await;
    let key = app.api_key(org_id).await;
    let (base, receiver) = spawn_receiver().await;
    let created = create_stream(&app, &key, json!({ "name": "SIEM", "kind": "webhook", "url": base })).await;
    let id = created["stream_id"].as_str().unwrap();
    let http = StreamHttp::new(&app.state.config.outbound, &app.base).unwrap();

    let disabled = app.api(Method::POST, &key, &format!("/api/v1/audit/streams/{id}/disable"), None).await;
    assert_eq!(disabled.status(), 200);
    let disabled: Value = disabled.json().await.unwrap();
    assert_eq!((disabled["enabled"].clone(), disabled["status"].clone()), (json!(false), json!("disabled")));
    record_events(&app, org_id, 3).await;
    let now = OffsetDateTime::now_utc() + Duration::seconds(1);
    assert_eq!(delivery::deliver_due(&app.pool, &app.state.master, &http, now).await.unwrap(), 0);
    assert!(receiver.requests().is_empty(), "a disabled stream sends nothing");

    let enabled = app.api(Method::POST, &key, &format!("/api/v1/audit/streams/{id}/enable"), None).await;
    assert_eq!(enabled.status(), 200);
    let delivered =
        delivery::deliver_due(&app.pool, &app.state.master, &http, now + Duration::seconds(1)).await.unwrap();
    assert_eq!(delivered, 6, "created, disabled, 3 events, enabled");
    assert_eq!(stream(&app, &key, id).await["lag"], 0);
    let actions = audit_actions(&app.pool, org_id).await;
    for action in ["audit_stream.created", "audit_stream.disabled", "audit_stream.enabled"] {
        assert!(actions.iter().any(|a| a == action), "{action} missing from {actions:?}");
    }

    let deleted = app.api(Method::DELETE, &key, &format!("/api/v1/audit/streams/{id}"), None).await;
    assert_eq!(deleted.status(), 204);
    assert_eq!(app.api(Method::GET, &key, &format!("/api/v1/audit/streams/{id}"), None).await.status(), 404);
    assert!(audit_actions(&app.pool, org_id).await.iter().any(|a| a == "audit_stream.deleted"));
}

#[sqlx::test]
async fn another_organizations_stream_cannot_be_read_or_changed(pool: sqlx::PgPool) {
    let app = spawn(pool).await;
    let (acme, _) = app.org_with_owner("Acme").await;
    let (globex, _) = app.org_with_owner("Globex").await;
    let acme_key = app.api_key(acme).await;
    let globex_key = app.api_key(globex).await;
    let (base, receiver) = spawn_receiver().await;
    let created = create_stream(&app, &acme_key, json!({ "name": "SIEM", "kind": "webhook", "url": base })).await;
    let id = created["stream_id"].as_str().unwrap();

    let listed: Value = app.api(Method::GET, &globex_key, "/api/v1/audit/streams", None).await.json().await.unwrap();
    assert_eq!(listed["streams"], json!([]));
    for (method, path) in [
        (Method::GET, format!("/api/v1/audit/streams/{id}")),
        (Method::POST, format!("/api/v1/audit/streams/{id}/disable")),
        (Method::POST, format!("/api/v1/audit/streams/{id}/enable")),
        (Method::POST, format!("/api/v1/audit/streams/{id}/test")),
        (Method::POST, format!("/api/v1/audit/streams/{id}/rotate_secret")),
        (Method::DELETE, format!("/api/v1/audit/streams/{id}")),
        (Method::GET, "/api/v1/audit/streams/not-a-uuid".to_string()),
    ] {
        let response = app.api(method.clone(), &globex_key, &path, None).await;
        assert_eq!(response.status(), 404, "{method} {path}");
        assert_eq!(response.headers()["content-type"], "application/problem+json");
    }
    assert!(receiver.requests().is_empty(), "no test event was sent for the other organization");
    let row = stream(&app, &acme_key, id).await;
    assert_eq!(row["enabled"], true, "still there, unchanged");
}

#[sqlx::test]
async fn bad_destinations_and_missing_tokens_are_refused_with_clear_messages(pool: sqlx::PgPool) {
    let app = spawn(pool).await;
    let (org_id, _) = app.org_with_owner("Acme").await;
    let key = app.api_key(org_id).await;
    let refused = |body: Value, status: u16, needle: &'static str| {
        let app = &app;
        let key = &key;
        async move {
            let response = app.api(Method::POST, key, "/api/v1/audit/streams", Some(body.clone())).await;
            assert_eq!(response.status(), status, "{body}");
            let problem: Value = response.json().await.unwrap();
            let detail = problem["detail"].as_str().unwrap();
            assert!(detail.contains(needle), "{body}: {detail}");
        }
    };
    refused(json!({ "name": "a", "kind": "webhook", "url": "http://siem.example/hook" }), 422, "must use https://")
        .await;
    refused(
        json!({ "name": "a", "kind": "webhook", "url": "https://u:p@siem.example/" }),
        422,
        "user name or password",
    )
    .await;
    refused(json!({ "name": "a", "kind": "webhook", "url": "" }), 422, "URL is required").await;
    refused(json!({ "name": "a", "kind": "syslog", "url": "https://siem.example/" }), 422, "unknown stream kind").await;
    refused(
        json!({ "name": "a", "kind": "splunk_hec", "url": "https://splunk.example:8088/services/collector/event" }),
        422,
        "HEC token is required",
    )
    .await;
    refused(json!({ "name": "a", "kind": "datadog", "secret": " " }), 422, "Datadog API key is required").await;
    refused(
        json!({ "name": "a", "kind": "webhook", "url": "https://siem.example/", "secret": "mine" }),
        422,
        "Mandate generates",
    )
    .await;
    refused(
        json!({ "name": "a", "kind": "webhook", "url": "https://siem.example/", "extra": 1 }),
        422,
        "unknown field",
    )
    .await;

    let dd = create_stream(&app, &key, json!({ "name": "Datadog", "kind": "datadog", "secret": "dd-key" })).await;
    assert!(dd.get("secret").is_none(), "a user-given key is not echoed");
    let row = stream(&app, &key, dd["stream_id"].as_str().unwrap()).await;
    assert_eq!(row["url"], "https://http-intake.logs.datadoghq.com/api/v2/logs");
    refused(json!({ "name": "Datadog", "kind": "datadog", "secret": "dd-key" }), 409, "already exists").await;
}

#[sqlx::test]
async fn secrets_never_appear_in_lists_events_or_the_database(pool: sqlx::PgPool) {
    let app = spawn(pool).await;
    let (org_id, owner) = app.org_with_owner("Acme").await;
    let key = app.api_key(org_id).await;
    let webhook =
        create_stream(&app, &key, json!({ "name": "Hook", "kind": "webhook", "url": "https://siem.example/in" })).await;
    let webhook_secret = webhook["secret"].as_str().unwrap().to_string();
    let hec_token = "hec-token-0b5e9f7a";
    create_stream(
        &app,
        &key,
        json!({ "name": "Splunk", "kind": "splunk_hec", "url": "https://splunk.example:8088/services/collector/event", "secret": hec_token }),
    )
    .await;
    let rotated = app
        .api(
            Method::POST,
            &key,
            &format!("/api/v1/audit/streams/{}/rotate_secret", webhook["stream_id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(rotated.status(), 200);
    let rotated: Value = rotated.json().await.unwrap();
    let new_secret = rotated["secret"].as_str().unwrap().to_string();
    assert!(new_secret.starts_with("mnd_whsec_") && new_secret != webhook_secret);

    let api_list = app.api(Method::GET, &key, "/api/v1/audit/streams", None).await.text().await.unwrap();
    let browser = app.signed_in(&owner).await;
    let portal_list = browser.rpc("streams/list", &[]).await.text().await.unwrap();
    let details: Vec<String> =
        sqlx::query_scalar("select details::text from audit_events where org_id = $1 and action like 'audit_stream.%'")
            .bind(org_id)
            .fetch_all(&app.pool)
            .await
            .unwrap();
    let stored: Vec<Vec<u8>> = sqlx::query_scalar("select secret_encrypted from audit_streams where org_id = $1")
        .bind(org_id)
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(details.len(), 3, "created twice, rotated once");
    for secret in [webhook_secret.as_str(), new_secret.as_str(), hec_token] {
        assert!(!api_list.contains(secret), "API list shows {secret}");
        assert!(!portal_list.contains(secret), "portal list shows {secret}");
        assert!(details.iter().all(|d| !d.contains(secret)), "audit details carry {secret}");
        assert!(stored.iter().all(|s| !s.windows(secret.len()).any(|w| w == secret.as_bytes())), "stored in clear");
    }
    assert!(api_list.contains("splunk.example") && portal_list.contains("Splunk"));
}

#[sqlx::test]
async fn test_events_reach_each_kind_of_destination_and_report_its_answer(pool: sqlx::PgPool) {
    let app = spawn(pool).await;
    let (org_id, _) = app.org_with_owner("Acme").await;
    let key = app.api_key(org_id).await;
    let (base, receiver) = spawn_receiver().await;
    let splunk = create_stream(
        &app,
        &key,
        json!({ "name": "Splunk", "kind": "splunk_hec", "url": format!("{base}/services/collector/event"), "secret": "hec-1" }),
    )
    .await;
    let datadog = create_stream(
        &app,
        &key,
        json!({ "name": "DD", "kind": "datadog", "url": format!("{base}/api/v2/logs"), "secret": "dd-1" }),
    )
    .await;
    let webhook =
        create_stream(&app, &key, json!({ "name": "Hook", "kind": "webhook", "url": format!("{base}/hook") })).await;
    let events_before = head(&app, org_id).await;

    let test = |stream: &Value| {
        let path = format!("/api/v1/audit/streams/{}/test", stream["stream_id"].as_str().unwrap());
        let (app, key) = (&app, &key);
        async move {
            let response = app.api(Method::POST, key, &path, None).await;
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.unwrap()
        }
    };
    for stream in [&splunk, &datadog, &webhook] {
        let result = test(stream).await;
        assert_eq!((result["ok"].clone(), result["status"].clone()), (json!(true), json!(200)), "{result}");
    }
    let requests = receiver.requests();
    assert_eq!(requests.len(), 3);

    let hec = &requests[0];
    assert_eq!(hec.path, "/services/collector/event");
    assert_eq!(header(hec, "authorization"), "Splunk hec-1");
    let hec_body: Value = serde_json::from_slice(&hec.body).unwrap();
    assert_eq!(hec_body["sourcetype"], "mandate:audit");
    assert_eq!(hec_body["host"], "127.0.0.1");
    assert_eq!(hec_body["event"]["action"], "mandate.stream.test");
    assert!(hec_body["time"].is_f64() || hec_body["time"].is_i64());

    let dd = &requests[1];
    assert_eq!(header(dd, "dd-api-key"), "dd-1");
    let dd_body: Value = serde_json::from_slice(&dd.body).unwrap();
    assert_eq!(dd_body[0]["ddsource"], "mandate");
    assert_eq!(dd_body[0]["ddtags"], format!("org_id:{org_id},outcome:success"));
    assert_eq!(dd_body[0]["mandate"]["action"], "mandate.stream.test");

    let hook = &requests[2];
    let webhook_id = webhook["stream_id"].as_str().unwrap();
    assert!(signature_verifies(hook, webhook["secret"].as_str().unwrap()));
    assert!(header(hook, "idempotency-key").starts_with(&format!("{webhook_id}:test-")));
    for request in &requests {
        assert_eq!(header(request, "user-agent"), "Mandate-Audit-Stream/1");
    }

    receiver.set_down(true);
    let failed = test(&webhook).await;
    assert_eq!((failed["ok"].clone(), failed["status"].clone()), (json!(false), json!(503)));
    assert!(failed["message"].as_str().unwrap().contains("maintenance window"), "{failed}");

    assert_eq!(head(&app, org_id).await, events_before, "test events are not audit events");
    let row = stream(&app, &key, webhook_id).await;
    assert_eq!((row["failures"].clone(), row["last_error"].clone()), (json!(0), Value::Null), "nor stream status");
}

#[sqlx::test]
async fn owners_and_admins_manage_streams_in_the_portal_and_auditors_read(pool: sqlx::PgPool) {
    let app = spawn(pool).await;
    let (org_id, owner) = app.org_with_owner("Acme").await;
    let auditor = app.signed_in(&app.add_admin(org_id, "ava", Role::Auditor).await).await;
    let admin = app.signed_in(&app.add_admin(org_id, "sam", Role::Admin).await).await;
    let form = [("name", "SIEM"), ("kind", "webhook"), ("url", "https://siem.example/in")];
    assert_eq!(auditor.rpc("streams/create", &form).await.status(), 403);
    let created = admin.rpc("streams/create", &form).await;
    assert_eq!(created.status(), 200);
    let created: Value = created.json().await.unwrap();
    assert!(created["secret"].as_str().unwrap().starts_with("mnd_whsec_"));
    let id = created["stream_id"].as_str().unwrap().to_string();

    let listed: Vec<Value> = auditor.rpc("streams/list", &[]).await.json().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["status"], "healthy");
    assert_eq!(auditor.rpc("streams/set-enabled", &[("stream_id", &id), ("enabled", "false")]).await.status(), 403);
    assert_eq!(auditor.rpc("streams/delete", &[("stream_id", &id)]).await.status(), 403);
    let owner = app.signed_in(&owner).await;
    assert_eq!(owner.rpc("streams/set-enabled", &[("stream_id", &id), ("enabled", "false")]).await.status(), 200);
    let listed: Vec<Value> = auditor.rpc("streams/list", &[]).await.json().await.unwrap();
    assert_eq!(listed[0]["status"], "disabled");

    let page = owner.get("/settings/streams").await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("Log streams") && html.contains("SIEM"), "the page lists the stream");
    assert_eq!(owner.rpc("streams/delete", &[("stream_id", &id)]).await.status(), 200);
    assert_eq!(owner.rpc("streams/delete", &[("stream_id", &id)]).await.status(), 404);
}

//! SCIM 2.0 over HTTP: the request shapes Entra ID and Okta send, filters (and their refusals),
//! pagination, ETags, directory isolation, uniqueness, and the joiner / mover / leaver cascade
//! into agents and tokens.

use crate::support::*;
use mandate::server::domain::directory;
use mandate::server::domain::Call;
use mandate::server::domain::Caller;
use reqwest::{Method, Response};
use serde_json::{json, Value};
use time::OffsetDateTime;
use uuid::Uuid;

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

struct Scim<'a> {
    app: &'a TestApp,
    base: String,
    token: String,
}

impl Scim<'_> {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Response {
        let mut request =
            self.app.bare_client().request(method, format!("{}{path}", self.base)).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.header("content-type", "application/scim+json").body(body.to_string());
        }
        request.send().await.unwrap()
    }

    async fn json(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let response = self.call(method, path, body).await;
        let status = response.status().as_u16();
        if status != 204 && status != 304 {
            assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/scim+json"));
        }
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn create_user(&self, body: Value) -> Value {
        let (status, user) = self.json(Method::POST, "/Users", Some(body)).await;
        assert_eq!(status, 201, "{user}");
        user
    }

    async fn patch(&self, path: &str, operations: Value) -> (u16, Value) {
        self.json(Method::PATCH, path, Some(json!({ "schemas": [PATCH], "Operations": operations }))).await
    }

    async fn search(&self, resource: &str, filter: &str) -> (u16, Value) {
        let encoded: String = form_urlencoded::byte_serialize(filter.as_bytes()).collect();
        self.json(Method::GET, &format!("/{resource}?filter={encoded}"), None).await
    }
}

async fn directory_of<'a>(app: &'a TestApp, org_id: Uuid, name: &str) -> Scim<'a> {
    let created = directory::create(
        &app.pool,
        Call::new(Caller::Operator { org_id }, &meta(), OffsetDateTime::now_utc()),
        name,
        "entra",
    )
    .await
    .unwrap();
    Scim { app, base: app.url(&directory::scim_base_path(created.directory_id)), token: created.bearer_token }
}

fn user_body(user_name: &str, email: &str) -> Value {
    json!({
        "schemas": [USER, ENTERPRISE],
        "userName": user_name,
        "externalId": format!("ext-{user_name}"),
        "name": { "givenName": "Test", "familyName": user_name },
        "displayName": format!("Test {user_name}"),
        "active": true,
        "emails": [{ "value": email, "type": "work", "primary": true }],
        ENTERPRISE: { "department": "Finance", "employeeNumber": "42" },
    })
}

#[sqlx::test]
async fn entra_and_okta_request_shapes_are_understood(pool: sqlx::PgPool) {
    let app = spawn(pool).await;
    let (org_id, _) = app.org_with_owner("Acme").await;
    let scim = directory_of(&app, org_id, "Entra").await;

    // Entra: manager as a bare string, booleans as strings, capitalised ops, emails filter paths.
    let manager = scim.create_user(user_body("boss@acme.example", "boss@acme.example")).await;
    let mut body = user_body("ann@acme.example", "ann@acme.example");
    body[ENTERPRISE]["manager"] = json!(manager["id"]);
    body["active"] = json!("True");
    let ann = scim.create_user(body).await;
    assert_eq!(ann[ENTERPRISE]["manager"], json!({ "value": manager["id"] }));
    assert_eq!(ann["active"], true);
    assert_eq!(ann["meta"]["resourceType"], "User");
    let path = format!("/Users/{}", ann["id"].as_str().unwrap());

    let (status, patched) = scim
        .patch(&path, json!([
            { "op": "Replace", "path": "emails[type eq \"work\"].value", "value": "ann.new@acme.example" },
            { "op": "Add", "value": { "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Legal", "name.givenName": "Annie" } },
        ]))
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["emails"][0]["value"], "ann.new@acme.example");
    assert_eq!(patched[ENTERPRISE]["department"], "Legal");
    assert_eq!(patched["name"]["givenName"], "Annie");
    let email: String = sqlx::query_scalar("select email from people where display_name = 'Test ann@acme.example'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(email, "ann.new@acme.example", "the person follows the primary email");

    let (status, off) = scim.patch(&path, json!([{ "op": "Replace", "path": "active", "value": "False" }])).await;
    assert_eq!(status, 200);
    assert_eq!(off["active"], false);
    // Okta: an operation without a path, its value naming attributes.
    let (_, on) = scim.patch(&path, json!([{ "op": "replace", "value": { "active": true } }])).await;
    assert_eq!(on["active"], true);

    // Groups: Entra adds and removes members by value, Okta removes with a filter and replaces.
    let bob = scim.create_user(user_body("bob@acme.example", "bob@acme.example")).await;
    let (status, group) =
        scim.json(Method::POST, "/Groups", Some(json!({ "schemas": [GROUP], "displayName": "Finance" }))).await;
    assert_eq!(status, 201);
    let gpath = format!("/Groups/{}", group["id"].as_str().unwrap());
    let (_, g) = scim
        .patch(
            &gpath,
            json!([{ "op": "Add", "path": "members", "value": [{ "value": ann["id"] }, { "value": bob["id"] }] }]),
        )
        .await;
    assert_eq!(g["members"].as_array().unwrap().len(), 2);
    let (_, g) =
        scim.patch(&gpath, json!([{ "op": "Remove", "path": "members", "value": [{ "value": bob["id"] }] }])).await;
    assert_eq!(g["members"][0]["value"], ann["id"]);
    let (_, g) = scim
        .patch(
            &gpath,
            json!([{ "op": "remove", "path": format!("members[value eq \"{}\"]", ann["id"].as_str().unwrap()) }]),
        )
        .await;
    assert!(g.get("members").is_none(), "{g}");
    let (_, g) = scim.patch(&gpath, json!([{ "op": "replace", "path": "members", "value": [{ "value": bob["id"] }] }, { "op": "replace", "path": "displayName", "value": "Finance EU" }])).await;
    assert_eq!(g["displayName"], "Finance EU");
    let (_, bob_now) = scim.json(Method::GET, &format!("/Users/{}", bob["id"].as_str().unwrap()), None).await;
    assert_eq!(bob_now["groups"][0]["display"], "Finance EU", "users list their groups");

    let (status, err) =
        scim.patch(&gpath, json!([{ "op": "add", "path": "members", "value": [{ "value": Uuid::new_v4() }] }])).await;
    assert_eq!(status, 400);
    assert_eq!(err["scimType"], "invalidValue");
    let (status, err) = scim.patch(&path, json!([{ "op": "replace", "path": "id", "value": "x" }])).await;
    assert_eq!((status, err["scimType"].as_str()), (400, Some("mutability")));
    let (status, err) = scim.json(Method::POST, "/Users", Some(json!({ "schemas": [USER] }))).await;
    assert_eq!((status, err["status"].as_str()), (400, Some("400")));
    let (status, err) = scim.json(Method::POST, "/Users", Some(json!("not an object"))).await;
    assert_eq!((status, err["scimType"].as_str()), (400, Some("invalidSyntax")));

    let audit: Vec<String> =
        sqlx::query_scalar("select distinct actor_type from audit_events where action like 'scim.%'")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(audit, vec!["directory"], "every SCIM write is audited with the directory as actor");
}

#[sqlx::test]
async fn filters_match_what_they_say_and_refuse_what_they_cannot_parse(pool: sqlx::PgPool) {
    let app = spawn(pool).await;
    let (org_id, _) = app.org_with_owner("Acme").await;
    let scim = directory_of(&app, org_id, "Okta").await;
    for (name, email) in [("Ann", "ann@acme.example"), ("Bob", "bob@other.example"), ("Cleo", "cleo@acme.example")] {
        scim.create_user(user_body(name, email)).await;
    }
    let cleo: Value = scim.search("Users", r#"userName eq "cleo""#).await.1;
    let cleo_id = cleo["Resources"][0]["id"].as_str().unwrap().to_string();
    scim.patch(&format!("/Users/{cleo_id}"), json!([{ "op": "replace", "path": "active", "value": false }])).await;
    let (_, group) = scim
        .json(
            Method::POST,
            "/Groups",
            Some(json!({ "schemas": [GROUP], "displayName": "Sales", "members": [{ "value": cleo_id }] })),
        )
        .await;

    let names = |v: &Value| -> Vec<String> {
        let mut n: Vec<String> =
            v["Resources"].as_array().unwrap().iter().map(|u| u["userName"].as_str().unwrap().to_string()).collect();
        n.sort();
        n
    };
    for (filter, expected) in [
        (r#"userName eq "ANN""#, vec!["Ann"]),
        (r#"emails.value co "@acme.example""#, vec!["Ann", "Cleo"]),
        (r#"emails co "OTHER""#, vec!["Bob"]),
        (r#"externalId eq "ext-Bob""#, vec!["Bob"]),
        (r#"externalId eq "EXT-BOB""#, vec![]),
        (r#"displayName sw "test a""#, vec!["Ann"]),
        (r#"userName ew "B""#, vec!["Bob"]),
        ("active eq false", vec!["Cleo"]),
        (r#"userName pr and not (active eq false)"#, vec!["Ann", "Bob"]),
        (
            r#"(userName eq "Ann" or userName eq "Bob") and emails[type eq "work" and value ew "acme.example"]"#,
            vec!["Ann"],
        ),
        (r#"userName gt "B""#, vec!["Bob", "Cleo"]),
        (r#"userName eq "x\" or 1=1 --""#, vec![]),
    ] {
        let (status, body) = scim.search("Users", filter).await;
        assert_eq!(status, 200, "{filter}: {body}");
        assert_eq!(names(&body), expected, "{filter}");
        assert_eq!(body["totalResults"], expected.len(), "{filter}");
    }
    let (_, groups) = scim.search("Groups", &format!(r#"members.value eq "{cleo_id}""#)).await;
    assert_eq!(groups["Resources"][0]["id"], group["id"]);

    let deep = format!("{}userName pr{}", "(".repeat(20), ")".repeat(20));
    for bad in [
        r#"userName eq"#,
        r#"userName zz "a""#,
        r#"(userName eq "a""#,
        r#"nickName eq "a""#,
        "active gt true",
        deep.as_str(),
        r#"emails[value eq "a""#,
    ] {
        let (status, body) = scim.search("Users", bad).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["scimType"], "invalidFilter", "{bad}");
        assert_eq!(body["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error");
    }
}

#[sqlx::test]
async fn pagination_and_etags(pool: sqlx::PgPool) {
    let app = spawn(pool).await;
    let (org_id, _) = app.org_with_owner("Acme").await;
    let scim = directory_of(&app, org_id, "Okta").await;
    for i in 0..7 {
        scim.create_user(user_body(&format!("user{i}"), &format!("user{i}@acme.example"))).await;
    }
    let page = |q: &'static str| scim.json(Method::GET, q, None);
    let (_, first) = page("/Users?startIndex=1&count=3").await;
    assert_eq!(
        (first["totalResults"].as_i64(), first["itemsPerPage"].as_i64(), first["startIndex"].as_i64()),
        (Some(7), Some(3), Some(1))
    );
    let (_, last) = page("/Users?startIndex=7&count=3").await;
    assert_eq!(last["Resources"].as_array().unwrap().len(), 1);
    assert_eq!(last["Resources"][0]["userName"], "user6");
    let (_, none) = page("/Users?count=0").await;
    assert_eq!(none["totalResults"], 7);
    assert!(none["Resources"].as_array().unwrap().is_empty());
    let (_, clamped) = page("/Users?startIndex=0&count=2").await;
    assert_eq!(clamped["Resources"][0]["userName"], "user0");
    assert_eq!(page("/Users?count=many").await.0, 400);
    let (_, projected) = page("/Users?attributes=userName&count=1").await;
    let keys: Vec<&String> = projected["Resources"][0].as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 4, "id, schemas, meta and the asked attribute: {keys:?}");

    let id = first["Resources"][0]["id"].as_str().unwrap().to_string();
    let path = format!("/Users/{id}");
    let response = scim.call(Method::GET, &path, None).await;
    let etag = response.headers()["etag"].to_str().unwrap().to_string();
    assert_eq!(etag, "W/\"1\"");
    let not_modified = scim
        .app
        .bare_client()
        .get(format!("{}{path}", scim.base))
        .bearer_auth(&scim.token)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(not_modified.status(), 304);
    let put = |etag: String| {
        let body = user_body("user0", "user0@acme.example");
        scim.app
            .bare_client()
            .put(format!("{}{path}", scim.base))
            .bearer_auth(&scim.token)
            .header("if-match", etag)
            .json(&body)
            .send()
    };
    let ok = put(etag.clone()).await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["etag"], "W/\"2\"");
    let stale = put(etag).await.unwrap();
    assert_eq!(stale.status(), 412);
}

#[sqlx::test]
async fn a_token_reaches_only_its_own_directory(pool: sqlx::PgPool) {
    let app = spawn(pool).await;
    let (org_a, _) = app.org_with_owner("Alpha").await;
    let (org_b, _) = app.org_with_owner("Bravo").await;
    let a = directory_of(&app, org_a, "A").await;
    let a2 = directory_of(&app, org_a, "A2").await;
    let b = directory_of(&app, org_b, "B").await;
    let user_b = b.create_user(user_body("bee", "bee@bravo.example")).await;
    let user_a2 = a2.create_user(user_body("two", "two@alpha.example")).await;
    for (scim, id) in [(&a, &user_b), (&a, &user_a2)] {
        let path = format!("/Users/{}", id["id"].as_str().unwrap());
        assert_eq!(scim.json(Method::GET, &path, None).await.0, 404);
        assert_eq!(scim.patch(&path, json!([{ "op": "replace", "path": "active", "value": false }])).await.0, 404);
        assert_eq!(scim.json(Method::DELETE, &path, None).await.0, 404);
    }
    assert_eq!(a.json(Method::GET, "/Users/not-a-uuid", None).await.0, 404);
    // A's token on B's base URL.
    let cross = Scim { app: &app, base: b.base.clone(), token: a.token.clone() };
    assert_eq!(cross.json(Method::GET, "/Users", None).await.0, 404);
    let (_, list) = a.json(Method::GET, "/Users", None).await;
    assert_eq!(list["totalResults"], 0);
    let anonymous = app.bare_client().get(format!("{}/Users", a.base)).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let body: Value = anonymous.json().await.unwrap();
    assert_eq!(body["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error");
    let forged = Scim { app: &app, base: a.base.clone(), token: format!("mnd_scim_{}", "A".repeat(43)) };
    assert_eq!(forged.json(Method::GET, "/Users", None).await.0, 401);
    assert_eq!(a.json(Method::GET, "/Nothing/here", None).await.0, 404);
    assert_eq!(a.json(Method::POST, "/ServiceProviderConfig", None).await.0, 405);
    let active: bool = sqlx::query_scalar("select active from directory_users where user_name = 'bee'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(active, "nothing of B changed");
}

#[sqlx::test]
async fn uniqueness_and_email_changes_never_relink(pool: sqlx::PgPool) {
    let app = spawn(pool).await;
    let (org_id, owner) = app.org_with_owner("Acme").await;
    let scim = directory_of(&app, org_id, "Okta").await;
    let ann = scim.create_user(user_body("ann", "ann@acme.example")).await;
    scim.create_user(user_body("bob", "bob@acme.example")).await;
    let (status, err) = scim.json(Method::POST, "/Users", Some(user_body("ANN", "ann2@acme.example"))).await;
    assert_eq!((status, err["scimType"].as_str()), (409, Some("uniqueness")));
    let (status, err) = scim.json(Method::POST, "/Users", Some(user_body("ann-again", "ann@acme.example"))).await;
    assert_eq!((status, err["scimType"].as_str()), (409, Some("uniqueness")), "one directory identity per person");
    let path = format!("/Users/{}", ann["id"].as_str().unwrap());
    let (status, err) = scim
        .patch(
            &path,
            json!([{ "op": "replace", "path": "emails", "value": [{ "value": "bob@acme.example", "primary": true }] }]),
        )
        .await;
    assert_eq!((status, err["scimType"].as_str()), (409, Some("uniqueness")));
    // An existing admin with the same address is taken over (joiner), not duplicated.
    let owner_user = scim.create_user(user_body("owner", &owner)).await;
    let people: i64 = sqlx::query_scalar("select count(*) from people where email = $1")
        .bind(&owner)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(people, 1);
    assert_eq!(owner_user["userName"], "owner");
    let feed = directory::events(
        &app.pool,
        Caller::Operator { org_id },
        scim.base.rsplit('/').next().unwrap().parse().unwrap(),
        50,
    )
    .await
    .unwrap();
    assert!(feed.iter().any(|e| e.status == 409 && e.detail.contains("already")), "refusals are in the events feed");
    assert!(feed.iter().any(|e| e.event == "user.created" && e.status == 201));
}

#[sqlx::test]
async fn a_leaver_takes_their_agents_down_in_the_very_next_request(pool: sqlx::PgPool) {
    let app = spawn(pool).await;
    let (org_id, _) = app.org_with_owner("Acme").await;
    let key = app.api_key(org_id).await;
    let scim = directory_of(&app, org_id, "Entra").await;
    let dana = scim.create_user(user_body("dana", "dana@acme.example")).await;
    let agent = app.approved_agent(org_id, "dana@acme.example", "Ledger", &["crm.read"]).await;
    let pending = mandate::server::domain::agents::approvals::request(
        &app.pool,
        Call::new(Caller::Operator { org_id }, &meta(), OffsetDateTime::now_utc()),
        agent.agent_id,
        "crm.read",
        "",
    )
    .await;
    assert!(pending.is_err(), "already approved");
    let token = app.token(&agent).await;
    assert_eq!(app.introspect(&key, &token).await["active"], true);

    let path = format!("/Users/{}", dana["id"].as_str().unwrap());
    let (status, _) = scim.patch(&path, json!([{ "op": "Replace", "path": "active", "value": "False" }])).await;
    assert_eq!(status, 200);
    assert_eq!(app.introspect(&key, &token).await, inactive(), "inactive in the very next request");
    let status: String = sqlx::query_scalar("select status from agents where id = $1")
        .bind(agent.agent_id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(status, "revoked");
    let details: String = sqlx::query_scalar("select details from audit_events where action = 'scim.user.deactivated'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(details.contains("Ledger") && details.contains("\"revoked_tokens\":1"), "{details}");

    // Coming back does not revive the agent.
    scim.patch(&path, json!([{ "op": "replace", "value": { "active": true } }])).await;
    assert_eq!(app.request_token(&agent, None).await.status(), 401);

    // Deletion is a leaver too.
    let erin = scim.create_user(user_body("erin", "erin@acme.example")).await;
    let agent = app.approved_agent(org_id, "erin@acme.example", "Mailer", &["mail.send"]).await;
    let token = app.token(&agent).await;
    assert_eq!(scim.json(Method::DELETE, &format!("/Users/{}", erin["id"].as_str().unwrap()), None).await.0, 204);
    assert_eq!(app.introspect(&key, &token).await, inactive());
    assert_eq!(scim.json(Method::GET, &format!("/Users/{}", erin["id"].as_str().unwrap()), None).await.0, 404);
}

#[sqlx::test]
async fn a_mover_loses_group_scopes_in_live_tokens(pool: sqlx::PgPool) {
    let app = spawn(pool).await;
    let (org_id, _) = app.org_with_owner("Acme").await;
    let key = app.api_key(org_id).await;
    let scim = directory_of(&app, org_id, "Okta").await;
    let fay = scim.create_user(user_body("fay", "fay@acme.example")).await;
    let (_, group) = scim
        .json(
            Method::POST,
            "/Groups",
            Some(json!({ "schemas": [GROUP], "displayName": "Finance", "members": [{ "value": fay["id"] }] })),
        )
        .await;
    let agent = app.approved_agent(org_id, "fay@acme.example", "Ledger", &["finance.export"]).await;
    let scope_id: Uuid =
        sqlx::query_scalar("select id from scopes where name = 'finance.export'").fetch_one(&app.pool).await.unwrap();
    let group_id: Uuid = group["id"].as_str().unwrap().parse().unwrap();
    mandate::server::domain::agents::scopes::set_ceiling(
        &app.pool,
        app.state.mandates(),
        Call::new(Caller::Operator { org_id }, &meta(), OffsetDateTime::now_utc()),
        scope_id,
        &[group_id],
    )
    .await
    .unwrap();
    let token = app.token(&agent).await;
    assert_eq!(app.introspect(&key, &token).await["active"], true);
    let gpath = format!("/Groups/{group_id}");
    let (status, body) = scim
        .patch(
            &gpath,
            json!([{ "op": "remove", "path": format!("members[value eq \"{}\"]", fay["id"].as_str().unwrap()) }]),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("members").is_none(), "{body}");
    assert_eq!(app.introspect(&key, &token).await, inactive(), "the scope left the mandate with the group");
    let refused: Value = app.request_token(&agent, None).await.json().await.unwrap();
    assert_eq!(refused["error"], "invalid_scope");
    let details: String = sqlx::query_scalar("select details from audit_events where action = 'scim.group.updated'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(details.contains("members_removed") && details.contains("fay"), "{details}");
}

/// Least privilege, item 3: a ceiling whose group is deleted over SCIM fails closed. Before, the
/// ceiling went with the group and the scope opened to everyone.
#[sqlx::test]
async fn a_ceiling_whose_group_is_deleted_allows_no_one(pool: sqlx::PgPool) {
    let app = spawn(pool).await;
    let (org_id, _) = app.org_with_owner("Acme").await;
    let key = app.api_key(org_id).await;
    let scim = directory_of(&app, org_id, "Okta").await;
    let fay = scim.create_user(user_body("fay", "fay@acme.example")).await;
    scim.create_user(user_body("sam", "sam@acme.example")).await;
    let (_, group) = scim
        .json(
            Method::POST,
            "/Groups",
            Some(json!({ "schemas": [GROUP], "displayName": "Finance", "members": [{ "value": fay["id"] }] })),
        )
        .await;
    let member = app.approved_agent(org_id, "fay@acme.example", "Ledger", &["finance.export"]).await;
    let outsider = app.approved_agent(org_id, "sam@acme.example", "Books", &["finance.export"]).await;
    let scope_id: Uuid =
        sqlx::query_scalar("select id from scopes where name = 'finance.export'").fetch_one(&app.pool).await.unwrap();
    let group_id: Uuid = group["id"].as_str().unwrap().parse().unwrap();
    let operator = Caller::Operator { org_id };
    mandate::server::domain::agents::scopes::set_ceiling(
        &app.pool,
        app.state.mandates(),
        Call::new(operator, &meta(), OffsetDateTime::now_utc()),
        scope_id,
        &[group_id],
    )
    .await
    .unwrap();
    let token = app.token(&member).await;
    assert_eq!(app.introspect(&key, &token).await["active"], true);
    let refused: Value = app.request_token(&outsider, None).await.json().await.unwrap();
    assert_eq!(refused["error"], "invalid_scope", "the outsider is outside the ceiling");

    assert_eq!(scim.json(Method::DELETE, &format!("/Groups/{group_id}"), None).await.0, 204);

    assert_eq!(app.introspect(&key, &token).await, inactive(), "the member's live token ends at once");
    let refused: Value = app.request_token(&member, None).await.json().await.unwrap();
    assert_eq!(refused["error"], "invalid_scope", "a new token cannot get the scope: {refused}");
    let refused: Value = app.request_token(&outsider, None).await.json().await.unwrap();
    assert_eq!(refused["error"], "invalid_scope", "the deleted group does not open the scope to everyone");
    let catalog = mandate::server::domain::agents::scopes::catalog(&app.pool, operator).await.unwrap();
    let scope = catalog.scopes.iter().find(|s| s.name == "finance.export").unwrap();
    assert_eq!(scope.ceiling_groups.len(), 1);
    assert!(scope.ceiling_groups[0].deleted, "the portal shows the ceiling as naming a deleted group");
    assert_eq!(scope.ceiling_groups[0].display_name, "Finance");
}

//! Single sign-on with SAML 2.0 against an IdP the test controls (xmlsec signatures): setup from
//! the IdP's metadata URL, SP metadata, SP-initiated and IdP-initiated sign-in across the
//! cross-site ACS POST, and every refusal — unsigned, another key, signature wrapping, a
//! comment-truncated NameID, a DTD, expired, wrong audience or recipient, replay, unknown
//! InResponseTo, another browser — each with its audited reason.

use crate::support::{meta, redirect_target, spawn, Browser, TestApp};
use crate::test_saml_idp::{encode, request_id_of, KeyPair, SamlIdp, Spec};
use mandate::server::domain::Call;
use mandate::server::domain::{sso::domains, sso::saml, Caller};
use serde_json::Value;
use sqlx::PgPool;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

struct Setup {
    org_id: Uuid,
    connection_id: Uuid,
    owner: String,
    acs: String,
    audience: String,
}

async fn saml_org(app: &TestApp, idp: &SamlIdp) -> Setup {
    let (org_id, owner) = app.org_with_owner("Soylent").await;
    let now = OffsetDateTime::now_utc();
    let domain = owner.split('@').nth(1).unwrap().to_string();
    domains::add(&app.pool, Call::new(Caller::Operator { org_id }, &meta(), now), &domain).await.unwrap();
    domains::verify_by_operator(&app.pool, org_id, &domain, &meta(), now).await.unwrap();
    let admin = app.signed_in(&owner).await;
    let response = admin
        .rpc(
            "connections/create-saml",
            &[
                ("input[name]", "Test SAML"),
                ("input[metadata_url]", &idp.metadata_url),
                ("input[trusts_idp_email]", "true"),
            ],
        )
        .await;
    let target = redirect_target(&response).unwrap_or_else(|| panic!("create failed"));
    let connection_id: Uuid = target.trim_start_matches("/connections/").split('?').next().unwrap().parse().unwrap();
    let setup = Setup {
        org_id,
        connection_id,
        owner,
        acs: app.url(&format!("/sso/saml/{connection_id}/acs")),
        audience: app.url(&format!("/sso/saml/{connection_id}/metadata")),
    };
    // The owner's Test connection run links their identity and turns the connection on.
    let url = onward_link(admin.post(&format!("/sso/test?connection={connection_id}")).await).await;
    let spec = idp.spec(&setup.acs, &setup.audience, Some(&request_id_of(&url)), &setup.owner);
    let response = finish(&admin, post_acs(app, &setup, &idp.signed_response_xml(&spec)).await).await;
    let target = redirect_target(&response).unwrap();
    assert!(target.starts_with(&format!("/connections/{connection_id}?test=")), "{target}");
    let detail: Value =
        admin.rpc("connections/detail", &[("connection_id", &connection_id.to_string())]).await.json().await.unwrap();
    assert_eq!(detail["tests"][0]["succeeded"], true, "{detail}");
    assert_eq!(detail["connection"]["enabled"], true);
    assert_eq!(detail["connection"]["identities"], 1);
    setup
}

/// The IdP URL of a Test connection start: the answer is a page that moves on by itself.
async fn onward_link(response: reqwest::Response) -> String {
    let body = response.text().await.unwrap();
    let marker = "id=\"continue\" href=\"";
    let at = body.find(marker).expect("an onward page") + marker.len();
    body[at..at + body[at..].find('"').unwrap()].replace("&amp;", "&")
}

/// Starts a sign-in in `browser`; returns the AuthnRequest id.
async fn start(browser: &Browser, connection_id: Uuid) -> String {
    let response = browser.get(&format!("/sso/start?connection={connection_id}")).await;
    assert_eq!(response.status(), 303);
    request_id_of(redirect_target(&response).unwrap().as_str())
}

/// Posts a response to the ACS the way the IdP's page does: cross-site, without our cookies.
async fn post_acs(app: &TestApp, setup: &Setup, xml: &str) -> reqwest::Response {
    app.bare_client()
        .post(&setup.acs)
        .header("origin", "https://idp.example")
        .form(&[("SAMLResponse", encode(xml)), ("RelayState", String::new())])
        .send()
        .await
        .unwrap()
}

/// The ACS's page posts the hand-over on by itself; does that in `browser`. The token travels in
/// the form body, never in a URL.
async fn finish(browser: &Browser, acs_response: reqwest::Response) -> reqwest::Response {
    assert_eq!(acs_response.status(), 200, "the ACS accepted the response");
    let policy = acs_response.headers()["content-security-policy"].to_str().unwrap().to_string();
    let body = acs_response.text().await.unwrap();
    assert!(body.contains("<form id=\"continue\" method=\"post\" action=\"/sso/saml/finish\">"), "{body}");
    let nonce = &body[body.find("<script nonce=\"").unwrap() + 15..];
    let nonce = &nonce[..nonce.find('"').unwrap()];
    assert!(policy.contains(&format!("'nonce-{nonce}'")), "the script that posts on may run: {policy}");
    let marker = "name=\"token\" value=\"";
    let at = body.find(marker).expect("a hand-over field") + marker.len();
    let token = body[at..at + body[at..].find('"').unwrap()].to_string();
    assert!(!body.contains("?token="), "no token in any URL: {body}");
    let in_url = browser.get(&format!("/sso/saml/finish?token={token}")).await;
    assert_eq!(in_url.status(), 405, "a token in a URL is not accepted");
    browser.client.post(format!("{}/sso/saml/finish", browser.base)).form(&[("token", token)]).send().await.unwrap()
}

async fn last_failure_reason(pool: &PgPool, org_id: Uuid) -> String {
    let details: String = sqlx::query_scalar(
        "select details from audit_events where org_id = $1 and action = 'login.failed' order by seq desc limit 1",
    )
    .bind(org_id)
    .fetch_one(pool)
    .await
    .unwrap();
    serde_json::from_str::<Value>(&details).unwrap()["reason"].as_str().unwrap().to_string()
}

fn reason_of(response: &reqwest::Response) -> String {
    let target = redirect_target(response).unwrap_or_default();
    target.trim_start_matches("/sso/failed?reason=").split('&').next().unwrap_or("").to_string()
}

#[sqlx::test]
async fn signs_in_sp_initiated_and_idp_initiated_when_enabled(pool: PgPool) {
    let app = spawn(pool).await;
    let idp = SamlIdp::start().await;
    let setup = saml_org(&app, &idp).await;

    // Our SP metadata names the entity id and the ACS.
    let metadata = app.bare_client().get(&setup.audience).send().await.unwrap();
    assert_eq!(metadata.status(), 200);
    assert_eq!(metadata.headers()["content-type"], "application/samlmetadata+xml");
    let metadata = metadata.text().await.unwrap();
    assert!(metadata.contains(&setup.audience) && metadata.contains(&setup.acs), "{metadata}");

    let browser = app.browser();
    let request_id = start(&browser, setup.connection_id).await;
    let spec = idp.spec(&setup.acs, &setup.audience, Some(&request_id), &setup.owner);
    let response = finish(&browser, post_acs(&app, &setup, &idp.signed_response_xml(&spec)).await).await;
    assert_eq!(redirect_target(&response).as_deref(), Some("/"));
    let me: Value = browser.get("/auth/me").await.json().await.unwrap();
    assert_eq!(me["person"]["email"], setup.owner);
    assert_eq!(me["role"], "owner");

    // Signed AuthnRequests: our certificate appears in the SP metadata and verifies the request.
    let admin = app.signed_in(&setup.owner).await;
    let id = setup.connection_id.to_string();
    let form = [
        ("connection_id", id.as_str()),
        ("input[name]", "Test SAML"),
        ("input[idp_entity_id]", idp.entity_id.as_str()),
        ("input[sso_url]", idp.sso_url.as_str()),
        ("input[sign_requests]", "true"),
    ];
    assert_eq!(admin.rpc("connections/update-saml", &form).await.status(), 200);
    let metadata = app.bare_client().get(&setup.audience).send().await.unwrap().text().await.unwrap();
    assert!(metadata.contains(r#"AuthnRequestsSigned="true""#), "{metadata}");
    let at = metadata.find("<ds:X509Certificate>").unwrap() + "<ds:X509Certificate>".len();
    let certificate = &metadata[at..at + metadata[at..].find('<').unwrap()];
    let browser = app.browser();
    let url = redirect_target(&browser.get(&format!("/sso/start?connection={}", setup.connection_id)).await).unwrap();
    let query = url.split_once('?').unwrap().1;
    let (signed_part, signature) = query.split_once("&Signature=").expect("a signed redirect");
    assert!(
        signed_part.contains("&SigAlg=http%3A%2F%2Fwww.w3.org%2F2001%2F04%2Fxmldsig-more%23rsa-sha256"),
        "{signed_part}"
    );
    let signature: String = form_urlencoded::parse(format!("s={signature}").as_bytes()).next().unwrap().1.into_owned();
    let x509 = openssl::x509::X509::from_der(
        &base64::Engine::decode(&base64::engine::general_purpose::STANDARD, certificate).unwrap(),
    )
    .unwrap();
    let key = x509.public_key().unwrap();
    let mut verifier = openssl::sign::Verifier::new(openssl::hash::MessageDigest::sha256(), &key).unwrap();
    verifier.update(signed_part.as_bytes()).unwrap();
    let signature = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, signature).unwrap();
    assert!(verifier.verify(&signature).unwrap(), "the AuthnRequest signature verifies with our published certificate");
    let spec = idp.spec(&setup.acs, &setup.audience, Some(&request_id_of(&url)), &setup.owner);
    let response = finish(&browser, post_acs(&app, &setup, &idp.signed_response_xml(&spec)).await).await;
    assert_eq!(redirect_target(&response).as_deref(), Some("/"));

    // IdP-initiated: refused while off, accepted once the connection allows it.
    let spec = idp.spec(&setup.acs, &setup.audience, None, &setup.owner);
    let response = post_acs(&app, &setup, &idp.signed_response_xml(&spec)).await;
    assert_eq!(reason_of(&response), "idp_initiated_off");
    let cert = idp.keys.cert_pem();
    let response = admin
        .rpc(
            "connections/update-saml",
            &[
                ("connection_id", &id),
                ("input[name]", "Test SAML"),
                ("input[idp_entity_id]", &idp.entity_id),
                ("input[sso_url]", &idp.sso_url),
                ("input[certificates_pem]", &cert),
                ("input[allow_idp_initiated]", "true"),
            ],
        )
        .await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let browser = app.browser();
    let spec = idp.spec(&setup.acs, &setup.audience, None, &setup.owner);
    let xml = idp.signed_response_xml(&spec);
    let response = finish(&browser, post_acs(&app, &setup, &xml).await).await;
    assert_eq!(redirect_target(&response).as_deref(), Some("/"));
    assert_eq!(browser.get("/auth/me").await.status(), 200);

    // The same assertion again is a replay.
    let response = post_acs(&app, &setup, &xml).await;
    let target = redirect_target(&response).unwrap_or_default();
    assert!(target.starts_with("/sso/failed?reason=saml_replayed"), "{target}");
    assert_eq!(last_failure_reason(&app.pool, setup.org_id).await, "saml_replayed");

    let successes: i64 = sqlx::query_scalar(
        "select count(*) from audit_events where org_id = $1 and action = 'login.succeeded' and details like '%\"method\":\"saml\"%'",
    )
    .bind(setup.org_id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(successes, 3);
    let marked: i64 = sqlx::query_scalar(
        "select count(*) from audit_events where org_id = $1 and action = 'login.succeeded' and details like '%\"idp_initiated\":true%'",
    )
    .bind(setup.org_id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(marked, 1, "the IdP-initiated session is marked as such in the audit trail");
}

#[sqlx::test]
async fn refuses_responses_that_fail_a_check(pool: PgPool) {
    let app = spawn(pool).await;
    let idp = SamlIdp::start().await;
    let setup = saml_org(&app, &idp).await;
    let other = KeyPair::generate("Somebody else", 30);

    type Forge<'a> = Box<dyn Fn(&SamlIdp, Spec) -> String + 'a>;
    let cases: Vec<(&str, Forge<'_>, &str)> = vec![
        ("unsigned", Box::new(|idp, spec| idp.envelope(&spec, &idp.assertion(&spec, false))), "saml_signature"),
        (
            "signed with another key",
            Box::new(|idp, spec| SamlIdp::sign(&idp.envelope(&spec, &idp.assertion(&spec, true)), &other.key_der)),
            "saml_signature",
        ),
        (
            "changed after signing",
            Box::new(|idp, spec| idp.signed_response_xml(&spec).replace(&spec.name_id, "mallory@soylent.example")),
            "saml_signature",
        ),
        (
            "wrapping: an unsigned assertion beside the signed one",
            Box::new(|idp, spec| {
                let signed = SamlIdp::sign(&idp.assertion(&spec, true), &idp.keys.key_der);
                let mut evil = spec.clone();
                evil.assertion_id = "_evil".into();
                evil.name_id = "mallory@soylent.example".into();
                idp.envelope(
                    &spec,
                    &format!(
                        "{}{}",
                        idp.assertion(&evil, false),
                        signed.trim_start_matches("<?xml version=\"1.0\"?>").trim()
                    ),
                )
            }),
            "saml_signature",
        ),
        (
            "wrapping: the signed assertion hidden, an evil one with its ID",
            Box::new(|idp, spec| {
                let signed = SamlIdp::sign(&idp.assertion(&spec, true), &idp.keys.key_der);
                let mut evil = spec.clone();
                evil.name_id = "mallory@soylent.example".into();
                let hidden = format!(
                    "<samlp:Extensions>{}</samlp:Extensions>",
                    signed.trim_start_matches("<?xml version=\"1.0\"?>").trim()
                );
                idp.envelope(&spec, &format!("{hidden}{}", idp.assertion(&evil, false)))
            }),
            "saml_signature",
        ),
        (
            "comment in the NameID",
            Box::new(|idp, spec| {
                let xml = idp.signed_response_xml(&spec);
                let (local, domain) = spec.name_id.split_once('@').unwrap();
                xml.replacen(&format!(">{}<", spec.name_id), &format!(">{local}@{domain}<!---->.evil.example<"), 1)
            }),
            "saml_malformed",
        ),
        (
            "a DTD",
            Box::new(|idp, spec| {
                format!(
                    "<!DOCTYPE r [<!ENTITY x \"y\">]>{}",
                    idp.signed_response_xml(&spec).trim_start_matches("<?xml version=\"1.0\"?>")
                )
            }),
            "saml_malformed",
        ),
        (
            "expired",
            Box::new(|idp, mut spec| {
                spec.not_on_or_after = OffsetDateTime::now_utc() - Duration::minutes(10);
                idp.signed_response_xml(&spec)
            }),
            "saml_expired",
        ),
        (
            "another audience",
            Box::new(|idp, mut spec| {
                spec.audience = "https://other-sp.example".into();
                idp.signed_response_xml(&spec)
            }),
            "saml_audience",
        ),
        (
            "another recipient",
            Box::new(|idp, mut spec| {
                spec.recipient = "https://other-sp.example/acs".into();
                idp.signed_response_xml(&spec)
            }),
            "saml_recipient",
        ),
        (
            "another issuer",
            Box::new(|idp, mut spec| {
                spec.issuer = "https://evil-idp.example".into();
                idp.signed_response_xml(&spec)
            }),
            "saml_issuer",
        ),
        (
            "unknown InResponseTo",
            Box::new(|idp, mut spec| {
                spec.in_response_to = Some("_never-issued".into());
                idp.signed_response_xml(&spec)
            }),
            "saml_in_response_to",
        ),
    ];
    for (name, forge, reason) in cases {
        let browser = app.browser();
        let request_id = start(&browser, setup.connection_id).await;
        let spec = idp.spec(&setup.acs, &setup.audience, Some(&request_id), &setup.owner);
        let response = post_acs(&app, &setup, &forge(&idp, spec)).await;
        assert_eq!(reason_of(&response), reason, "{name}: {:?}", redirect_target(&response));
        assert_eq!(last_failure_reason(&app.pool, setup.org_id).await, reason, "{name}: audited reason");
        assert_eq!(browser.get("/auth/me").await.status(), 401, "{name}: not signed in");
    }

    // A genuine answer collected by another browser than the one that started.
    let started_here = app.browser();
    let request_id = start(&started_here, setup.connection_id).await;
    let spec = idp.spec(&setup.acs, &setup.audience, Some(&request_id), &setup.owner);
    let acs = post_acs(&app, &setup, &idp.signed_response_xml(&spec)).await;
    let elsewhere = app.browser();
    let response = finish(&elsewhere, acs).await;
    assert_eq!(reason_of(&response), "browser_mismatch");
    assert_eq!(elsewhere.get("/auth/me").await.status(), 401);

    // The request it answered is used up: the same response again does not pass.
    let response = post_acs(&app, &setup, &idp.signed_response_xml(&spec)).await;
    assert_eq!(reason_of(&response), "saml_in_response_to");
}

#[sqlx::test]
async fn certificates_are_pinned_with_their_expiry_and_flagged_before_it(pool: PgPool) {
    let app = spawn(pool).await;
    let idp = SamlIdp::start().await;
    let setup = saml_org(&app, &idp).await;
    let admin = app.signed_in(&setup.owner).await;

    let detail: Value = admin
        .rpc("connections/detail", &[("connection_id", &setup.connection_id.to_string())])
        .await
        .json()
        .await
        .unwrap();
    let saml_detail = &detail["saml"];
    assert_eq!(saml_detail["idp_entity_id"], idp.entity_id);
    assert_eq!(saml_detail["acs_url"], setup.acs);
    assert_eq!(saml_detail["certificates"].as_array().unwrap().len(), 1);
    let dashboard: Value = admin.rpc("dashboard", &[]).await.json().await.unwrap();
    assert_eq!(dashboard["expiring_certificates"].as_array().unwrap().len(), 0);

    // Rotation: both certificates pinned at once, one of them expiring within 60 days.
    let soon = KeyPair::generate("Rotating IdP key", 20);
    let both = format!("{}{}", idp.keys.cert_pem(), soon.cert_pem());
    let id = setup.connection_id.to_string();
    let form = [
        ("connection_id", id.as_str()),
        ("input[name]", "Test SAML"),
        ("input[idp_entity_id]", idp.entity_id.as_str()),
        ("input[sso_url]", idp.sso_url.as_str()),
        ("input[certificates_pem]", both.as_str()),
    ];
    assert_eq!(admin.rpc("connections/update-saml", &form).await.status(), 200);
    let settings = saml::settings(&app.pool, &app.state.master, setup.connection_id).await.unwrap();
    assert_eq!(settings.idp.certificates.len(), 2);
    let dashboard: Value = admin.rpc("dashboard", &[]).await.json().await.unwrap();
    let expiring = dashboard["expiring_certificates"].as_array().unwrap();
    assert_eq!(expiring.len(), 1, "{dashboard}");
    assert_eq!(expiring[0]["connection_name"], "Test SAML");

    // Saving without certificates keeps the pinned ones; creating without any is refused.
    let form = [
        ("connection_id", id.as_str()),
        ("input[name]", "Renamed SAML"),
        ("input[idp_entity_id]", idp.entity_id.as_str()),
        ("input[sso_url]", idp.sso_url.as_str()),
    ];
    assert_eq!(admin.rpc("connections/update-saml", &form).await.status(), 200);
    assert_eq!(
        saml::settings(&app.pool, &app.state.master, setup.connection_id).await.unwrap().idp.certificates.len(),
        2
    );
    let form = [
        ("input[name]", "No certificate"),
        ("input[idp_entity_id]", idp.entity_id.as_str()),
        ("input[sso_url]", idp.sso_url.as_str()),
    ];
    let response = admin.rpc("connections/create-saml", &form).await;
    assert_eq!(response.status(), 422);
    assert!(crate::support::error_message(response).await.contains("signing certificate"));

    // Rotation kept the owner's identity (a pinned key stayed); replacing every key with another
    // IdP's, under the same entity id, unlinks it: the new key holder is another IdP.
    let identities = || async {
        sqlx::query_scalar::<_, i64>("select count(*) from sso_identities where org_id = $1")
            .bind(setup.org_id)
            .fetch_one(&app.pool)
            .await
            .unwrap()
    };
    assert_eq!(identities().await, 1);
    let stranger = KeyPair::generate("Another IdP", 365).cert_pem();
    let form = [
        ("connection_id", id.as_str()),
        ("input[name]", "Renamed SAML"),
        ("input[idp_entity_id]", idp.entity_id.as_str()),
        ("input[sso_url]", idp.sso_url.as_str()),
        ("input[certificates_pem]", stranger.as_str()),
    ];
    assert_eq!(admin.rpc("connections/update-saml", &form).await.status(), 200);
    assert_eq!(identities().await, 0, "new keys, new IdP: nobody stays linked");
}

//! SSO connections of an organization, whatever their protocol: listing, detail, turning off and
//! deleting (audited). A connection that is the organization's only way in cannot be turned off
//! or deleted while password sign-in is off. Creating and editing live with each protocol
//! (`oidc`, `saml`).

use crate::model::connections::{ConnectionDetail, ConnectionRow, ConnectionTestRun, PasswordSignIn};
use crate::model::Permission;
use crate::server::domain::actor::Caller;
use crate::server::domain::crypto::master_key::MasterKey;
use crate::server::domain::sso::fields::role_mappings;
use crate::server::domain::sso::oidc::OIDC_CALLBACK_PATH;
use crate::server::domain::sso::saml;
use crate::server::domain::Call;
use crate::server::domain::DomainError;
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// Refuses to take away the last way in: with password sign-in off, the last enabled connection
/// cannot be turned off or deleted.
async fn ensure_not_last_way_in(conn: &mut PgConnection, org_id: Uuid, connection_id: Uuid) -> Result<(), DomainError> {
    // language=PostgreSQL
    let row = sqlx::query!(
        r#"select o.password_sign_in,
                  (select count(*) from connections c where c.org_id = o.id and c.enabled and c.id <> $2) as "others!"
           from organizations o where o.id = $1 for update"#,
        org_id,
        connection_id
    )
    .fetch_one(&mut *conn)
    .await?;
    if PasswordSignIn::parse(&row.password_sign_in) == Some(PasswordSignIn::Off) && row.others == 0 {
        return Err(DomainError::NotAllowed(
            "This is the only way admins can sign in: turn password sign-in back on in Settings first".into(),
        ));
    }
    Ok(())
}

/// Whether a Test connection run passed since the connection's trust material last changed.
async fn passed_test_since_change(
    executor: impl sqlx::PgExecutor<'_>,
    org_id: Uuid,
    connection_id: Uuid,
) -> Result<bool, DomainError> {
    // language=PostgreSQL
    Ok(sqlx::query_scalar!(
        r#"select exists (select 1 from connection_tests t join connections c on c.org_id = t.org_id and c.id = t.connection_id
                          where t.org_id = $1 and t.connection_id = $2 and t.succeeded and t.started_at >= c.trust_changed_at) as "passed!""#,
        org_id,
        connection_id
    )
    .fetch_one(executor)
    .await?)
}

/// Turns a connection on: people sign in through it from now on. It needs a passing Test
/// connection run since its trust material last changed, unless the owner explicitly skips the
/// test (audited as such). Permission: SSO trust.
pub async fn enable(pool: &PgPool, call: Call<'_>, connection_id: Uuid, skip_test: bool) -> Result<(), DomainError> {
    call.require(Permission::ChangeSsoTrust)?;
    let org_id = call.org_id();
    let mut work = call.begin(pool).await?;
    let tested = passed_test_since_change(work.conn(), org_id, connection_id).await?;
    if !tested && !skip_test {
        return Err(DomainError::NotAllowed(
            "Run Test connection first: a connection is turned on after a test sign-in passes (or turn it on without a test, which is recorded)".into(),
        ));
    }
    let name = switch(work.conn(), org_id, connection_id, true, call.now).await?;
    work.record(
        work.event("connection.enabled")
            .target("connection", connection_id, &name)
            .details(json!({ "test_skipped": !tested })),
    )
    .await?;
    work.commit().await?;
    Ok(())
}

/// Turns a connection off: nobody signs in through it until it is turned back on.
/// Permission: SSO.
pub async fn disable(pool: &PgPool, call: Call<'_>, connection_id: Uuid) -> Result<(), DomainError> {
    call.require(Permission::ManageSso)?;
    let org_id = call.org_id();
    let mut work = call.begin(pool).await?;
    ensure_not_last_way_in(work.conn(), org_id, connection_id).await?;
    let name = switch(work.conn(), org_id, connection_id, false, call.now).await?;
    work.record(work.event("connection.disabled").target("connection", connection_id, &name)).await?;
    work.commit().await?;
    Ok(())
}

/// Sets `enabled` and returns the connection's name.
pub(crate) async fn switch(
    conn: &mut PgConnection,
    org_id: Uuid,
    connection_id: Uuid,
    enabled: bool,
    now: time::OffsetDateTime,
) -> Result<String, DomainError> {
    // language=PostgreSQL
    sqlx::query_scalar!(
        "update connections set enabled = $3, ever_enabled = ever_enabled or $3, updated_at = $4
         where org_id = $1 and id = $2 returning name",
        org_id,
        connection_id,
        enabled,
        now
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(DomainError::NotFound)
}

/// Deletes a connection with its sign-in identities (people and admins stay).
/// Permission: SSO.
pub async fn delete(pool: &PgPool, call: Call<'_>, connection_id: Uuid) -> Result<(), DomainError> {
    call.require(Permission::ManageSso)?;
    let org_id = call.org_id();
    let mut work = call.begin(pool).await?;
    ensure_not_last_way_in(work.conn(), org_id, connection_id).await?;
    // language=PostgreSQL
    let row = sqlx::query!(
        r#"delete from connections where org_id = $1 and id = $2
           returning name, kind, (select count(*) from sso_identities i where i.org_id = $1 and i.connection_id = $2) as "identities!""#,
        org_id,
        connection_id
    )
    .fetch_optional(work.conn())
    .await?
    .ok_or(DomainError::NotFound)?;
    work.record(
        work.event("connection.deleted")
            .target("connection", connection_id, &row.name)
            .details(json!({ "type": row.kind, "identities_removed": row.identities })),
    )
    .await?;
    work.commit().await?;
    Ok(())
}

/// Permission: view portal.
pub async fn list(pool: &PgPool, caller: Caller<'_>) -> Result<Vec<ConnectionRow>, DomainError> {
    caller.require(Permission::ViewPortal)?;
    rows(pool, caller.org_id(), None).await
}

async fn rows(pool: &PgPool, org_id: Uuid, id: Option<Uuid>) -> Result<Vec<ConnectionRow>, DomainError> {
    // language=PostgreSQL
    Ok(sqlx::query_as!(
        ConnectionRow,
        r#"select c.id, c.kind, c.name, c.enabled, coalesce(c.oidc_issuer, c.saml_idp_entity_id) as issuer,
                  c.oidc_client_id as client_id, c.created_at,
                  (select count(*) from sso_identities i where i.org_id = c.org_id and i.connection_id = c.id) as "identities!",
                  (select max(i.last_login_at) from sso_identities i where i.org_id = c.org_id and i.connection_id = c.id) as last_sign_in_at,
                  (select t.succeeded from connection_tests t where t.org_id = c.org_id and t.connection_id = c.id
                   order by t.started_at desc limit 1) as last_test_succeeded
           from connections c where c.org_id = $1 and ($2::uuid is null or c.id = $2) order by c.created_at"#,
        org_id,
        id
    )
    .fetch_all(pool)
    .await?)
}

/// Permission: view portal.
pub async fn detail(
    pool: &PgPool,
    master: &MasterKey,
    caller: Caller<'_>,
    connection_id: Uuid,
    public_url: &str,
) -> Result<ConnectionDetail, DomainError> {
    caller.require(Permission::ViewPortal)?;
    let org_id = caller.org_id();
    let connection = rows(pool, org_id, Some(connection_id)).await?.pop().ok_or(DomainError::NotFound)?;
    // language=PostgreSQL
    let settings = sqlx::query!(
        "select oidc_scopes, claim_email, claim_name, claim_groups, trusts_idp_email from connections where org_id = $1 and id = $2",
        org_id,
        connection_id
    )
    .fetch_one(pool)
    .await?;
    Ok(ConnectionDetail {
        scopes: settings.oidc_scopes,
        claim_email: settings.claim_email,
        claim_name: settings.claim_name,
        claim_groups: settings.claim_groups,
        role_mappings: role_mappings(pool, org_id, connection_id).await?,
        trusts_idp_email: settings.trusts_idp_email,
        passed_test_since_change: passed_test_since_change(pool, org_id, connection_id).await?,
        redirect_uri: format!("{public_url}{OIDC_CALLBACK_PATH}"),
        tests: tests(pool, org_id, connection_id, 5).await?,
        saml: match connection.kind.as_str() {
            "saml" => Some(saml::detail(pool, master, connection_id, public_url).await?),
            _ => None,
        },
        connection,
    })
}

async fn tests(
    pool: &PgPool,
    org_id: Uuid,
    connection_id: Uuid,
    limit: i64,
) -> Result<Vec<ConnectionTestRun>, DomainError> {
    // language=PostgreSQL
    let rows = sqlx::query!(
        "select id, started_at, succeeded, steps from connection_tests
         where org_id = $1 and connection_id = $2 order by started_at desc limit $3",
        org_id,
        connection_id,
        limit
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|row| {
            Ok(ConnectionTestRun {
                id: row.id,
                started_at: row.started_at,
                succeeded: row.succeeded,
                steps: serde_json::from_value(row.steps).map_err(|e| DomainError::Internal(e.to_string()))?,
            })
        })
        .collect()
}

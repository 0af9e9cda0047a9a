//! The dashboard's figures, counted from the database in one round trip.

use crate::model::audit::AuditFilter;
use crate::model::dashboard::DashboardData;
use crate::model::Permission;
use crate::server::domain::actor::AdminSession;
use crate::server::domain::{audit, DomainError};
use sqlx::PgPool;
use time::{Duration, OffsetDateTime};

/// Permission: view portal.
pub async fn load(pool: &PgPool, admin: &AdminSession, now: OffsetDateTime) -> Result<DashboardData, DomainError> {
    admin.require(Permission::ViewPortal)?;
    // language=PostgreSQL
    let counts = sqlx::query!(
        r#"select
             (select count(*) from admins where org_id = $1) as "admins!",
             (select count(*) from admin_invitations where org_id = $1 and accepted_at is null
                 and revoked_at is null and expires_at > $2) as "pending_invitations!",
             (select count(*) from people where org_id = $1 and active) as "people!",
             (select count(*) from audit_events where org_id = $1) as "audit_events!",
             (select coalesce(sum(1 + coalesce((details::jsonb -> 'repeated' ->> 'count')::bigint, 0)), 0)::bigint
                from audit_events where org_id = $1 and action = 'login.failed'
                 and occurred_at > $3) as "failed_logins_24h!",
             (select count(*) from api_keys where org_id = $1 and revoked_at is null) as "api_keys!",
             (select count(*) from agents where org_id = $1 and status = 'active') as "agents!",
             (select count(*) from scope_requests where org_id = $1 and status = 'pending') as "pending_approvals!",
             (select count(*) from directories where org_id = $1) as "directories!",
             (select count(*) from connections where org_id = $1 and enabled) as "connections!""#,
        admin.org_id(),
        now,
        now - Duration::hours(24)
    )
    .fetch_one(pool)
    .await?;
    let recent = audit::list(pool, admin.org_id(), &AuditFilter::default(), 6).await?;
    Ok(DashboardData {
        organization_name: admin.org_name().to_string(),
        admins: counts.admins,
        pending_invitations: counts.pending_invitations,
        people: counts.people,
        agents: counts.agents,
        pending_approvals: counts.pending_approvals,
        connections: counts.connections,
        directories: counts.directories,
        audit_events: counts.audit_events,
        failed_logins_24h: counts.failed_logins_24h,
        api_keys: counts.api_keys,
        recent_events: recent.events,
        expiring_certificates: crate::server::domain::sso::saml::expiring_certificates(pool, admin.org_id(), now)
            .await?,
    })
}

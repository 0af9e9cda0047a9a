//! Figures on the dashboard, counted from the database.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DashboardData {
    pub organization_name: String,
    pub admins: i64,
    pub pending_invitations: i64,
    pub people: i64,
    pub agents: i64,
    pub pending_approvals: i64,
    pub connections: i64,
    pub directories: i64,
    pub audit_events: i64,
    pub failed_logins_24h: i64,
    pub api_keys: i64,
    pub recent_events: Vec<super::audit::AuditEventView>,
    /// SAML signing certificates that expire within 60 days (or already did).
    pub expiring_certificates: Vec<super::connections::ExpiringCertificate>,
}

//! SSO connections, the organization's email domains, Test connection runs and the reasons a
//! sign-in through the IdP can fail, as the portal and the platform API show them.

use super::Role;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConnectionRow {
    pub id: Uuid,
    /// `oidc` or `saml`.
    pub kind: String,
    pub name: String,
    pub enabled: bool,
    pub issuer: Option<String>,
    pub client_id: Option<String>,
    /// People who have signed in through it.
    pub identities: i64,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_sign_in_at: Option<OffsetDateTime>,
    /// The latest Test connection run's outcome (`None`: never tested or unfinished).
    pub last_test_succeeded: Option<bool>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// An IdP group whose members get a portal role.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoleMapping {
    pub group: String,
    pub role: Role,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConnectionDetail {
    pub connection: ConnectionRow,
    pub scopes: String,
    pub claim_email: String,
    pub claim_name: String,
    pub claim_groups: String,
    pub role_mappings: Vec<RoleMapping>,
    /// The IdP verifies the emails it asserts (an owner said so).
    pub trusts_idp_email: bool,
    /// A Test connection run passed since the trust material last changed, so the connection
    /// may be turned on without skipping the test.
    pub passed_test_since_change: bool,
    /// The redirect URI to register at the IdP.
    pub redirect_uri: String,
    /// The most recent Test connection runs, newest first.
    pub tests: Vec<ConnectionTestRun>,
    /// SAML connections: what to register at the IdP, and the pinned certificates.
    pub saml: Option<SamlDetail>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SamlDetail {
    /// Our entity id (also the SP metadata URL).
    pub sp_entity_id: String,
    pub acs_url: String,
    pub metadata_url: String,
    pub idp_entity_id: String,
    pub idp_sso_url: String,
    pub idp_metadata_url: Option<String>,
    pub allow_idp_initiated: bool,
    /// Whether our AuthnRequests are signed (our certificate is in our SP metadata).
    pub sign_requests: bool,
    pub certificates: Vec<CertificateRow>,
}

/// A pinned IdP signing certificate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CertificateRow {
    /// SHA-256 of the DER, hex.
    pub fingerprint: String,
    pub subject: String,
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// Whole days until it expires (negative once expired), counted by the server.
    pub days_left: i64,
}

/// What an admin enters for a SAML connection: IdP metadata by URL or pasted XML, or the
/// entity id, SSO URL and signing certificate(s) (PEM) by hand.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SamlConnectionInput {
    pub name: String,
    pub metadata_url: String,
    pub metadata_xml: String,
    pub idp_entity_id: String,
    pub sso_url: String,
    pub certificates_pem: String,
    pub claim_email: String,
    pub claim_name: String,
    pub claim_groups: String,
    pub role_mappings: String,
    pub allow_idp_initiated: bool,
    pub sign_requests: bool,
    /// The IdP verifies every email it asserts (SAML has no `email_verified`), so an email may
    /// link to an existing person.
    pub trusts_idp_email: bool,
}

/// A certificate about to expire, for the dashboard.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExpiringCertificate {
    pub connection_id: Uuid,
    pub connection_name: String,
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
}

/// What an admin enters to create or edit an OIDC connection. On edit, an empty client secret
/// keeps the stored one.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OidcConnectionInput {
    pub name: String,
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    pub scopes: String,
    pub claim_email: String,
    pub claim_name: String,
    pub claim_groups: String,
    /// One mapping per line: `group = role`.
    pub role_mappings: String,
    /// The IdP verifies every email it asserts, so an email may link to an existing person even
    /// without `email_verified: true` in the ID token.
    pub trusts_idp_email: bool,
}

impl std::fmt::Debug for OidcConnectionInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcConnectionInput")
            .field("name", &self.name)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &if self.client_secret.is_empty() { "<empty>" } else { "<redacted>" })
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    Ok,
    Failed,
    Skipped,
}

/// One step of a Test connection run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TestStep {
    pub step: String,
    pub status: StepStatus,
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConnectionTestRun {
    pub id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    pub succeeded: Option<bool>,
    pub steps: Vec<TestStep>,
}

/// An email domain the organization claims, and how to prove it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DomainRow {
    pub domain: String,
    #[serde(with = "time::serde::rfc3339::option")]
    pub verified_at: Option<OffsetDateTime>,
    /// The DNS name of the TXT record to publish.
    pub record_name: String,
    /// The TXT record's value.
    pub record_value: String,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_checked_at: Option<OffsetDateTime>,
    pub last_check_error: Option<String>,
}

/// Who may sign in with a password.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PasswordSignIn {
    /// Every admin who set a password.
    All,
    /// Owners only, as break-glass when the IdP is down.
    Owners,
    /// Nobody: SSO only.
    Off,
}

impl PasswordSignIn {
    pub const ALL: [PasswordSignIn; 3] = [PasswordSignIn::All, PasswordSignIn::Owners, PasswordSignIn::Off];

    pub fn as_str(self) -> &'static str {
        match self {
            PasswordSignIn::All => "all",
            PasswordSignIn::Owners => "owners",
            PasswordSignIn::Off => "off",
        }
    }

    pub fn parse(value: &str) -> Option<PasswordSignIn> {
        PasswordSignIn::ALL.into_iter().find(|p| p.as_str() == value.trim())
    }

    pub fn label(self) -> &'static str {
        match self {
            PasswordSignIn::All => "Every admin with a password",
            PasswordSignIn::Owners => "Owners only (break-glass)",
            PasswordSignIn::Off => "Nobody: single sign-on only",
        }
    }
}

/// The organization's sign-in settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SignInSettings {
    pub password_sign_in: PasswordSignIn,
    /// Whether an enabled connection and a verified domain let admins sign in through the IdP.
    pub sso_ready: bool,
}

/// Why a sign-in through the IdP did not complete. The code travels in the failure page's URL
/// and in the audit event; the message is what the person sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SsoFailure {
    UnknownState,
    StateReplayed,
    Expired,
    BrowserMismatch,
    ConnectionDisabled,
    IdpError,
    DiscoveryFailed,
    CodeExchangeFailed,
    TokenSignature,
    TokenAlgorithm,
    TokenIssuer,
    TokenAudience,
    TokenNonce,
    TokenExpired,
    TokenInvalid,
    MissingClaim,
    DomainNotVerified,
    IdentityConflict,
    NotLinked,
    EmailNotVerified,
    PersonInactive,
    NoAccess,
    SamlMalformed,
    SamlSignature,
    SamlIssuer,
    SamlAudience,
    SamlRecipient,
    SamlExpired,
    SamlInResponseTo,
    SamlReplayed,
    SamlStatus,
    IdpInitiatedOff,
}

impl SsoFailure {
    pub const ALL: [SsoFailure; 32] = [
        SsoFailure::UnknownState,
        SsoFailure::StateReplayed,
        SsoFailure::Expired,
        SsoFailure::BrowserMismatch,
        SsoFailure::ConnectionDisabled,
        SsoFailure::IdpError,
        SsoFailure::DiscoveryFailed,
        SsoFailure::CodeExchangeFailed,
        SsoFailure::TokenSignature,
        SsoFailure::TokenAlgorithm,
        SsoFailure::TokenIssuer,
        SsoFailure::TokenAudience,
        SsoFailure::TokenNonce,
        SsoFailure::TokenExpired,
        SsoFailure::TokenInvalid,
        SsoFailure::MissingClaim,
        SsoFailure::DomainNotVerified,
        SsoFailure::IdentityConflict,
        SsoFailure::NotLinked,
        SsoFailure::EmailNotVerified,
        SsoFailure::PersonInactive,
        SsoFailure::NoAccess,
        SsoFailure::SamlMalformed,
        SsoFailure::SamlSignature,
        SsoFailure::SamlIssuer,
        SsoFailure::SamlAudience,
        SsoFailure::SamlRecipient,
        SsoFailure::SamlExpired,
        SsoFailure::SamlInResponseTo,
        SsoFailure::SamlReplayed,
        SsoFailure::SamlStatus,
        SsoFailure::IdpInitiatedOff,
    ];

    pub fn code(self) -> &'static str {
        match self {
            SsoFailure::UnknownState => "unknown_state",
            SsoFailure::StateReplayed => "state_replayed",
            SsoFailure::Expired => "expired",
            SsoFailure::BrowserMismatch => "browser_mismatch",
            SsoFailure::ConnectionDisabled => "connection_disabled",
            SsoFailure::IdpError => "idp_error",
            SsoFailure::DiscoveryFailed => "discovery_failed",
            SsoFailure::CodeExchangeFailed => "code_exchange_failed",
            SsoFailure::TokenSignature => "token_signature",
            SsoFailure::TokenAlgorithm => "token_algorithm",
            SsoFailure::TokenIssuer => "token_issuer",
            SsoFailure::TokenAudience => "token_audience",
            SsoFailure::TokenNonce => "token_nonce",
            SsoFailure::TokenExpired => "token_expired",
            SsoFailure::TokenInvalid => "token_invalid",
            SsoFailure::MissingClaim => "missing_claim",
            SsoFailure::DomainNotVerified => "domain_not_verified",
            SsoFailure::IdentityConflict => "identity_conflict",
            SsoFailure::NotLinked => "not_linked",
            SsoFailure::EmailNotVerified => "email_not_verified",
            SsoFailure::PersonInactive => "person_inactive",
            SsoFailure::NoAccess => "no_access",
            SsoFailure::SamlMalformed => "saml_malformed",
            SsoFailure::SamlSignature => "saml_signature",
            SsoFailure::SamlIssuer => "saml_issuer",
            SsoFailure::SamlAudience => "saml_audience",
            SsoFailure::SamlRecipient => "saml_recipient",
            SsoFailure::SamlExpired => "saml_expired",
            SsoFailure::SamlInResponseTo => "saml_in_response_to",
            SsoFailure::SamlReplayed => "saml_replayed",
            SsoFailure::SamlStatus => "saml_status",
            SsoFailure::IdpInitiatedOff => "idp_initiated_off",
        }
    }

    pub fn from_code(code: &str) -> Option<SsoFailure> {
        SsoFailure::ALL.into_iter().find(|f| f.code() == code)
    }

    pub fn title(self) -> &'static str {
        match self {
            SsoFailure::NoAccess => "You have no access to Mandate",
            SsoFailure::PersonInactive => "Your account is deactivated",
            _ => "Single sign-on did not complete",
        }
    }

    /// What the person can do about it.
    pub fn message(self) -> &'static str {
        match self {
            SsoFailure::UnknownState | SsoFailure::StateReplayed => {
                "This sign-in link was already used or is not one we issued. Start again from the sign-in page."
            }
            SsoFailure::Expired => "The sign-in took longer than 10 minutes. Start again from the sign-in page.",
            SsoFailure::BrowserMismatch => {
                "The sign-in finished in a different browser (or a newer sign-in replaced it). Start again in this browser."
            }
            SsoFailure::ConnectionDisabled => {
                "Your organization's single sign-on connection is turned off. Ask an administrator to turn it back on."
            }
            SsoFailure::IdpError => "Your identity provider refused the sign-in. Check with your IT team that Mandate is assigned to you.",
            SsoFailure::DiscoveryFailed | SsoFailure::CodeExchangeFailed => {
                "Mandate could not reach your identity provider. Try again in a minute; if it persists, ask an administrator to run Test connection."
            }
            SsoFailure::TokenSignature
            | SsoFailure::TokenAlgorithm
            | SsoFailure::TokenIssuer
            | SsoFailure::TokenAudience
            | SsoFailure::TokenNonce
            | SsoFailure::TokenExpired
            | SsoFailure::TokenInvalid
            | SsoFailure::SamlMalformed
            | SsoFailure::SamlSignature
            | SsoFailure::SamlIssuer
            | SsoFailure::SamlAudience
            | SsoFailure::SamlRecipient
            | SsoFailure::SamlExpired => {
                "Your identity provider's answer did not pass Mandate's security checks, so you were not signed in. An administrator can see the reason in the audit log."
            }
            SsoFailure::MissingClaim => {
                "Your identity provider did not send your email address. Ask an administrator to check the connection's claim mapping."
            }
            SsoFailure::DomainNotVerified => {
                "Your email domain is not verified for this organization. An administrator can verify it on the Connections page."
            }
            SsoFailure::IdentityConflict => {
                "Your email address already belongs to a different sign-in identity in this organization. Ask an administrator for help."
            }
            SsoFailure::NotLinked => {
                "You already have an admin account here, and this identity-provider sign-in is not linked to it yet. Sign in another way (password or another connection), open the connection and run Test connection: that links it to you."
            }
            SsoFailure::EmailNotVerified => {
                "Your identity provider did not confirm that your email address is verified, so Mandate cannot match you to your account. Ask an owner to check the connection."
            }
            SsoFailure::PersonInactive => "Your account in this organization is deactivated. Ask an administrator to restore it.",
            SsoFailure::SamlInResponseTo => {
                "This answer from your identity provider does not belong to a sign-in started here, or that sign-in was already used. Start again from the sign-in page."
            }
            SsoFailure::SamlReplayed => "This sign-in answer was already used. Start again from the sign-in page.",
            SsoFailure::SamlStatus => {
                "Your identity provider did not sign you in. Check with your IT team that Mandate is assigned to you."
            }
            SsoFailure::IdpInitiatedOff => {
                "Sign-ins started from your identity provider's portal are turned off for this organization. Start from Mandate's sign-in page instead."
            }
            SsoFailure::NoAccess => {
                "You signed in with your identity provider, but you have no role in the Mandate portal. Ask an administrator to add you to a group mapped to a role, or to invite you."
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_codes_round_trip() {
        for failure in SsoFailure::ALL {
            assert_eq!(SsoFailure::from_code(failure.code()), Some(failure));
            assert_eq!(serde_json::to_value(failure).unwrap(), serde_json::json!(failure.code()));
        }
        assert_eq!(SsoFailure::from_code("nonsense"), None);
    }

    #[test]
    fn password_settings_parse() {
        for p in PasswordSignIn::ALL {
            assert_eq!(PasswordSignIn::parse(p.as_str()), Some(p));
        }
        assert_eq!(PasswordSignIn::parse("yes"), None);
    }
}

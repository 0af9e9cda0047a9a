//! Second factors of portal admins: the organization's policy, what an admin has enrolled, and
//! what enrolment shows once (the authenticator secret, recovery codes).

use super::Role;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// Who must confirm a password sign-in with a second factor. Single sign-on relies on the
/// identity provider's own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SecondFactorPolicy {
    None,
    Owners,
    All,
}

impl SecondFactorPolicy {
    pub const ALL: [SecondFactorPolicy; 3] =
        [SecondFactorPolicy::None, SecondFactorPolicy::Owners, SecondFactorPolicy::All];

    pub fn as_str(self) -> &'static str {
        match self {
            SecondFactorPolicy::None => "none",
            SecondFactorPolicy::Owners => "owners",
            SecondFactorPolicy::All => "all",
        }
    }

    pub fn parse(value: &str) -> Option<SecondFactorPolicy> {
        SecondFactorPolicy::ALL.into_iter().find(|p| p.as_str() == value.trim())
    }

    pub fn label(self) -> &'static str {
        match self {
            SecondFactorPolicy::None => "Not required (admins may still add one)",
            SecondFactorPolicy::Owners => "Required for owners",
            SecondFactorPolicy::All => "Required for every admin",
        }
    }

    /// Whether an admin with `role` must have a second factor.
    pub fn applies_to(self, role: Role) -> bool {
        match self {
            SecondFactorPolicy::None => false,
            SecondFactorPolicy::Owners => role == Role::Owner,
            SecondFactorPolicy::All => true,
        }
    }
}

/// An enrolled authenticator app.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuthenticatorApp {
    pub id: Uuid,
    pub name: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
}

/// The signed-in admin's second factors, and whether the organization requires one of them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SecurityOverview {
    pub authenticator: Option<AuthenticatorApp>,
    pub recovery_codes_left: i64,
    pub policy: SecondFactorPolicy,
    /// The policy applies to this admin (removing the last factor is refused).
    pub required: bool,
}

/// An authenticator app being set up: what the app needs, shown until a code confirms it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuthenticatorSetup {
    pub factor_id: Uuid,
    /// The shared secret in base32, for typing in by hand.
    pub secret: String,
    /// `otpauth://totp/...`, what the QR code holds.
    pub otpauth_url: String,
    /// The QR code as an SVG document.
    pub qr_svg: String,
}

/// Fresh recovery codes, shown once.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecoveryCodes {
    pub codes: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_round_trip_and_apply_by_role() {
        for policy in SecondFactorPolicy::ALL {
            assert_eq!(SecondFactorPolicy::parse(policy.as_str()), Some(policy));
        }
        assert_eq!(SecondFactorPolicy::parse("always"), None);
        assert!(SecondFactorPolicy::Owners.applies_to(Role::Owner));
        assert!(!SecondFactorPolicy::Owners.applies_to(Role::Admin));
        assert!(SecondFactorPolicy::All.applies_to(Role::Auditor));
        assert!(!SecondFactorPolicy::None.applies_to(Role::Owner));
    }
}

//! The organization and the people who run it in the portal.
//!
//! - `organizations` creating organizations and their setup links
//! - `admins`        admins, roles and invitations
//! - `login`         password sign-in, its throttle and the sign-in policy
//! - `factors`       second factors (authenticator app, recovery codes) and their policy
//! - `api_keys`      the platform API's keys
//! - `dashboard`     the numbers on the dashboard

pub mod admins;
pub mod api_keys;
pub mod dashboard;
pub mod factors;
pub mod login;
pub mod organizations;

//! Wire types shared by the server and the browser bundle. Nothing here may carry a secret
//! that was not meant to be shown to the signed-in admin, and nothing here imports server code.

pub mod admins;
pub mod agents;
pub mod api_keys;
pub mod audit;
pub mod connections;
pub mod dashboard;
pub mod directories;
pub mod factors;
pub mod role;
pub mod session;
pub mod streams;

pub use role::{Permission, Role};

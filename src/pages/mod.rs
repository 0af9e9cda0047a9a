//! One file per route.

pub mod audit;
pub mod coming_next;
pub mod dashboard;
pub mod login;
pub mod not_found;
pub mod settings;
pub mod setup;

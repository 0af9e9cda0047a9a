//! Mandate: identity control plane for AI agents.
//!
//! One crate, two targets: the server (`ssr`: axum, sqlx, the domain and every protocol) and
//! the browser bundle (`hydrate`: the same Leptos components, made interactive).

#![recursion_limit = "256"]

pub mod api;
pub mod app;
pub mod error;
pub mod model;
pub mod pages;
pub mod ui;

#[cfg(feature = "ssr")]
pub mod server;

/// Browser entry point: attaches the interactive app to the server-rendered page.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
    // Lets tests (and curious humans) know the page is interactive.
    if let Some(body) = web_sys::window().and_then(|w| w.document()).and_then(|d| d.body()) {
        let _ = body.set_attribute("data-hydrated", "true");
    }
}

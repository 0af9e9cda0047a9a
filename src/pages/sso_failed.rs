//! `/sso/failed?reason=…`: why a sign-in through the identity provider did not complete, in
//! words the person can act on (the audit log keeps the technical detail).

use crate::model::connections::SsoFailure;
use crate::ui::icons::Icon;
use crate::ui::{BUTTON_PRIMARY, BUTTON_SECONDARY};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

#[component]
pub fn SsoFailedPage() -> impl IntoView {
    let query = use_query_map();
    let failure = move || query.read().get("reason").and_then(|code| SsoFailure::from_code(&code));
    let request_id = move || query.read().get("request_id");
    let title = move || failure().map(SsoFailure::title).unwrap_or("Single sign-on did not complete");
    let message = move || {
        failure().map(SsoFailure::message).unwrap_or("Something went wrong on our side. Try again; if it persists, give your administrator the request id below.")
    };
    view! {
        <Title text="Sign-in failed"/>
        <main class="flex min-h-full items-center justify-center px-4 py-12">
            <div class="w-full max-w-md rounded-lg bg-white p-8 text-center shadow-sm ring-1 ring-slate-200">
                <Icon name="shield" class="mx-auto h-10 w-10 text-amber-500"/>
                <h1 class="mt-4 text-xl font-semibold tracking-tight" data-testid="sso-failed-title">{title}</h1>
                <p class="mt-2 text-sm text-slate-600" data-testid="sso-failed-message" data-reason=move || failure().map(SsoFailure::code).unwrap_or("internal")>{message}</p>
                {move || request_id().map(|id| view! { <p class="mt-3 font-mono text-xs text-slate-400">{format!("Request id {id}")}</p> })}
                <div class="mt-6 flex flex-wrap justify-center gap-3">
                    <a href="/login" class=BUTTON_PRIMARY>"Back to sign in"</a>
                    // Whoever the organization's sign-in policy still allows a password (owners
                    // under "owners only") gets in this way when the IdP fails; the form says
                    // so plainly to everyone else.
                    <a href="/login?method=password" class=BUTTON_SECONDARY data-testid="password-fallback">"Sign in with a password"</a>
                </div>
            </div>
        </main>
    }
}

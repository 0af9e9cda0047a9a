//! `/login`: email and password (the owner's break-glass path; SSO comes with connections).

use crate::api::session::Login;
use crate::ui::icons::Icon;
use crate::ui::{ErrorNotice, Notice, BUTTON_PRIMARY, INPUT, LABEL};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

#[component]
pub fn LoginPage() -> impl IntoView {
    let query = use_query_map();
    let login = ServerAction::<Login>::new();
    let next = move || query.read().get("next").unwrap_or_default();
    let email = move || query.read().get("email").unwrap_or_default();
    let banner = move || {
        let query = query.read();
        if query.get("setup").is_some() {
            Some("Your password is set. Sign in to continue.")
        } else if query.get("signed_out").is_some() {
            Some("You have signed out.")
        } else {
            None
        }
    };

    view! {
        <Title text="Sign in"/>
        <main class="flex min-h-full items-center justify-center px-4 py-12">
            <div class="w-full max-w-sm">
                <div class="mb-8 flex flex-col items-center text-center">
                    <Icon name="shield" class="h-12 w-12 text-indigo-600"/>
                    <h1 class="mt-4 text-2xl font-semibold tracking-tight">"Sign in to Mandate"</h1>
                    <p class="mt-1 text-sm text-slate-600">"The control plane for your organization's AI agents"</p>
                </div>
                <div class="space-y-4">
                    {move || banner().map(|message| view! { <Notice message/> })}
                    {move || login.value().get().and_then(Result::err).map(|error| view! { <ErrorNotice error/> })}
                </div>
                <ActionForm action=login attr:class="mt-6 space-y-5 rounded-lg bg-white p-6 shadow-sm ring-1 ring-slate-200">
                    <input type="hidden" name="next" prop:value=next/>
                    <div>
                        <label for="email" class=LABEL>"Work email"</label>
                        <input id="email" name="email" type="email" autocomplete="username" required class=format!("mt-1.5 {INPUT}") prop:value=email/>
                    </div>
                    <div>
                        <label for="password" class=LABEL>"Password"</label>
                        <input id="password" name="password" type="password" autocomplete="current-password" required class=format!("mt-1.5 {INPUT}")/>
                    </div>
                    <button type="submit" class=format!("w-full {BUTTON_PRIMARY}") disabled=move || login.pending().get()>
                        {move || if login.pending().get() { "Signing in…" } else { "Sign in" }}
                    </button>
                </ActionForm>
                <p class="mt-6 text-center text-xs text-slate-500">
                    "New admin? Open the setup link you were sent. Links are valid for 72 hours."
                </p>
            </div>
        </main>
    }
}

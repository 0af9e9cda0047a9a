//! `/login`: the work email first — an address at a verified domain with an active connection
//! goes through the IdP (`/sso/start`), any other to the password form. The password form stays
//! reachable for owners' break-glass sign-in while the IdP is down. An admin with a second
//! factor then enters a code from their authenticator app, or a recovery code (`?step=code`).

use crate::api::session::{Login, LoginCode};
use crate::ui::icons::Icon;
use crate::ui::{ErrorNotice, Notice, BUTTON_PRIMARY, INPUT, LABEL};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

#[component]
pub fn LoginPage() -> impl IntoView {
    let query = use_query_map();
    let login = ServerAction::<Login>::new();
    let login_code = ServerAction::<LoginCode>::new();
    let code_step = move || query.read().get("step").as_deref() == Some("code");
    let next = move || query.read().get("next").unwrap_or_default();
    let email = move || query.read().get("email").unwrap_or_default();
    let password_step = move || query.read().get("method").as_deref() == Some("password");
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
                    {move || login_code.value().get().and_then(Result::err).map(|error| view! { <ErrorNotice error/> })}
                </div>
                <Show when=code_step>
                    <ActionForm action=login_code attr:class="mt-6 space-y-5 rounded-lg bg-white p-6 shadow-sm ring-1 ring-slate-200" attr:data-testid="code-step">
                        <input type="hidden" name="next" prop:value=next/>
                        <div>
                            <label for="code" class=LABEL>"Authentication code"</label>
                            <input id="code" name="code" type="text" autocomplete="one-time-code" required autofocus spellcheck="false" class=format!("mt-1.5 {INPUT}") aria-describedby="code-hint"/>
                            <p id="code-hint" class="mt-1.5 text-xs text-slate-500">"The 6-digit code from your authenticator app, or one of your recovery codes."</p>
                        </div>
                        <button type="submit" class=format!("w-full {BUTTON_PRIMARY}") disabled=move || login_code.pending().get()>
                            {move || if login_code.pending().get() { "Checking…" } else { "Verify" }}
                        </button>
                    </ActionForm>
                    <p class="mt-3 text-center text-xs text-slate-500">
                        <a href="/login?method=password" class="font-medium text-indigo-700 hover:underline">"Start again"</a>
                    </p>
                </Show>
                <Show when=move || !code_step()>
                <Show
                    when=password_step
                    fallback=move || view! {
                        <form method="get" action="/sso/start" class="mt-6 space-y-5 rounded-lg bg-white p-6 shadow-sm ring-1 ring-slate-200" data-testid="email-step">
                            <input type="hidden" name="next" prop:value=next/>
                            <div>
                                <label for="email" class=LABEL>"Work email"</label>
                                <input id="email" name="email" type="email" autocomplete="username" required autofocus class=format!("mt-1.5 {INPUT}") prop:value=email/>
                            </div>
                            <button type="submit" class=format!("w-full {BUTTON_PRIMARY}")>"Continue"</button>
                            <p class="text-center text-xs text-slate-500">"Your organization's identity provider signs you in when it is connected."</p>
                        </form>
                    }
                >
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
                    <p class="mt-3 text-center text-xs text-slate-500">
                        <a href="/login" class="font-medium text-indigo-700 hover:underline">"Use single sign-on instead"</a>
                    </p>
                </Show>
                </Show>
                <p class="mt-6 text-center text-xs text-slate-500">
                    "New admin? Open the setup link you were sent. Links are valid for 72 hours."
                </p>
                <Show when=move || !password_step()>
                    <p class="mt-2 text-center text-xs text-slate-500">
                        <a href="/login?method=password" class="font-medium text-indigo-700 hover:underline">"Sign in with a password"</a>
                        " (owners' break-glass when the identity provider is down)"
                    </p>
                </Show>
            </div>
        </main>
    }
}

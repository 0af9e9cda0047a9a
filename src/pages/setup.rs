//! `/setup/{token}`: redeem an owner setup link or an admin invitation by choosing a password.

use crate::api::session::{preview_setup, CompleteSetup};
use crate::ui::icons::Icon;
use crate::ui::{format_time, Badge, ErrorNotice, Loading, Tone, BUTTON_PRIMARY, INPUT, LABEL};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

#[component]
pub fn SetupPage() -> impl IntoView {
    let params = use_params_map();
    let token = move || params.read().get("token").unwrap_or_default();
    let preview = Resource::new(token, preview_setup);
    let complete = ServerAction::<CompleteSetup>::new();

    view! {
        <Title text="Set up your account"/>
        <main class="flex min-h-full items-center justify-center px-4 py-12">
            <div class="w-full max-w-md">
                <div class="mb-8 flex flex-col items-center text-center">
                    <Icon name="shield" class="h-12 w-12 text-indigo-600"/>
                    <h1 class="mt-4 text-2xl font-semibold tracking-tight">"Set up your Mandate account"</h1>
                </div>
                <Suspense fallback=Loading>
                    {move || Suspend::new(async move {
                        match preview.await {
                            Err(error) => view! { <ErrorNotice error/> }.into_any(),
                            Ok(invitation) => view! {
                                <div class="rounded-lg bg-white p-6 shadow-sm ring-1 ring-slate-200">
                                    <p class="text-sm text-slate-700">
                                        "You are joining " <strong class="font-semibold text-slate-900">{invitation.organization_name.clone()}</strong>
                                        " as " <Badge text=invitation.role.label() tone=Tone::Accent/> "."
                                    </p>
                                    <p class="mt-1 text-xs text-slate-500">"This link works once and expires " {format_time(invitation.expires_at)} "."</p>
                                    <div class="mt-4">
                                        {move || complete.value().get().and_then(Result::err).map(|error| view! { <ErrorNotice error/> })}
                                    </div>
                                    <ActionForm action=complete attr:class="mt-4 space-y-5">
                                        <input type="hidden" name="token" prop:value=token/>
                                        <div>
                                            <label for="email" class=LABEL>"Email"</label>
                                            <input id="email" type="email" autocomplete="username" readonly class=format!("mt-1.5 bg-slate-50 {INPUT}") prop:value=invitation.email.clone()/>
                                        </div>
                                        <div>
                                            <label for="display_name" class=LABEL>"Your name"</label>
                                            <input id="display_name" name="display_name" autocomplete="name" required maxlength="200" class=format!("mt-1.5 {INPUT}")/>
                                        </div>
                                        <div>
                                            <label for="password" class=LABEL>"Password"</label>
                                            <input id="password" name="password" type="password" autocomplete="new-password" required minlength="12" maxlength="256" aria-describedby="password-help" class=format!("mt-1.5 {INPUT}")/>
                                            <p id="password-help" class="mt-1 text-xs text-slate-500">"At least 12 characters. A passphrase is easiest to remember."</p>
                                        </div>
                                        <div>
                                            <label for="password_confirm" class=LABEL>"Repeat the password"</label>
                                            <input id="password_confirm" name="password_confirm" type="password" autocomplete="new-password" required minlength="12" maxlength="256" class=format!("mt-1.5 {INPUT}")/>
                                        </div>
                                        <button type="submit" class=format!("w-full {BUTTON_PRIMARY}") disabled=move || complete.pending().get()>
                                            "Set password"
                                        </button>
                                    </ActionForm>
                                </div>
                            }.into_any(),
                        }
                    })}
                </Suspense>
            </div>
        </main>
    }
}

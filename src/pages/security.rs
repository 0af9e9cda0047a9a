//! Settings → Security: the signed-in admin's second factors — an authenticator app (set up
//! with a QR code or the secret as text, confirmed with a code) and single-use recovery codes,
//! shown once — and, for owners, who must use a second factor after a password.

use crate::api::security::{
    get_security, ConfirmAuthenticator, RegenerateRecoveryCodes, RemoveAuthenticator, SetSecondFactorPolicy,
    StartAuthenticator,
};
use crate::model::factors::{RecoveryCodes, SecondFactorPolicy};
use crate::model::Permission;
use crate::ui::layout::CurrentAdmin;
use crate::ui::{
    format_time, CopyField, ErrorNotice, Loading, Notice, BUTTON_DANGER_LINK, BUTTON_PRIMARY, BUTTON_SECONDARY, CARD,
    INPUT, LABEL,
};
use leptos::prelude::*;

#[component]
pub fn SecurityTab() -> impl IntoView {
    let CurrentAdmin(me) = expect_context::<CurrentAdmin>();
    let start = ServerAction::<StartAuthenticator>::new();
    let confirm = ServerAction::<ConfirmAuthenticator>::new();
    let remove = ServerAction::<RemoveAuthenticator>::new();
    let regenerate = ServerAction::<RegenerateRecoveryCodes>::new();
    let policy = ServerAction::<SetSecondFactorPolicy>::new();
    let overview = Resource::new(
        move || {
            (
                start.version().get(),
                confirm.version().get(),
                remove.version().get(),
                regenerate.version().get(),
                policy.version().get(),
            )
        },
        |_| get_security(),
    );
    // Codes shown once: from confirming the app (first time) or from making new ones.
    let fresh_codes = move || {
        regenerate.value().get().and_then(Result::ok).or_else(|| confirm.value().get().and_then(Result::ok).flatten())
    };
    let errors = move || {
        [
            start.value().get().and_then(Result::err),
            confirm.value().get().and_then(Result::err),
            remove.value().get().and_then(Result::err),
            regenerate.value().get().and_then(Result::err),
            policy.value().get().and_then(Result::err),
        ]
        .into_iter()
        .flatten()
        .map(|error| view! { <ErrorNotice error/> })
        .collect_view()
    };

    view! {
        <div class="space-y-4">{errors}</div>
        {move || fresh_codes().map(|codes| view! { <ShowRecoveryCodes codes/> })}
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                let is_owner = matches!(me.await, Ok(Some(me)) if me.role.can(Permission::ManageOrganization));
                match overview.await {
                    Err(error) => view! { <ErrorNotice error/> }.into_any(),
                    Ok(overview) => {
                        let setup = start.value().get().and_then(Result::ok).filter(|_| overview.authenticator.is_none());
                        view! {
                            <section class=format!("mt-4 p-6 {CARD}") aria-labelledby="two-step-heading" data-testid="two-step">
                                <h2 id="two-step-heading" class="text-base font-semibold text-slate-900">"Two-step verification"</h2>
                                <p class="mt-1 text-sm text-slate-600">"After your password, Mandate asks for a code from an authenticator app on your phone. Single sign-on relies on your identity provider's own."</p>
                                {(overview.required && overview.authenticator.is_none()).then(|| view! {
                                    <p role="alert" class="mt-4 rounded-md bg-amber-50 p-4 text-sm text-amber-900 ring-1 ring-inset ring-amber-200">
                                        "Your organization requires a second factor. Set up an authenticator app to continue to the portal."
                                    </p>
                                })}
                                {match (overview.authenticator.clone(), setup) {
                                    (Some(app), _) => view! {
                                        <div class="mt-4 flex items-center justify-between gap-4 rounded-md bg-slate-50 p-4 ring-1 ring-inset ring-slate-200">
                                            <div>
                                                <p class="text-sm font-medium text-slate-900">{app.name.clone()}</p>
                                                <p class="text-xs text-slate-600">
                                                    {format!("Added {}", format_time(app.created_at))}
                                                    {app.last_used_at.map(|at| format!(" · last used {}", format_time(at)))}
                                                </p>
                                            </div>
                                            <ActionForm action=remove>
                                                <button type="submit" class=BUTTON_DANGER_LINK disabled=overview.required>"Remove"</button>
                                            </ActionForm>
                                        </div>
                                    }.into_any(),
                                    (None, Some(setup)) => view! {
                                        <div class="mt-4 grid gap-6 sm:grid-cols-[12rem_1fr]">
                                            <div class="h-48 w-48 rounded-md bg-white p-2 ring-1 ring-slate-200" inner_html=setup.qr_svg.clone()></div>
                                            <div class="space-y-4">
                                                <p class="text-sm text-slate-700">"Scan the QR code with your authenticator app, or enter the key by hand. Then type the 6-digit code it shows."</p>
                                                <CopyField label="Setup key" value=setup.secret.clone() testid="totp-secret"/>
                                                <ActionForm action=confirm attr:class="flex items-end gap-3">
                                                    <input type="hidden" name="factor_id" value=setup.factor_id.to_string()/>
                                                    <div>
                                                        <label for="totp-code" class=LABEL>"Code from the app"</label>
                                                        <input id="totp-code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9 ]{6,7}" required class=format!("mt-1.5 w-40 {INPUT}")/>
                                                    </div>
                                                    <button type="submit" class=BUTTON_PRIMARY>"Confirm"</button>
                                                </ActionForm>
                                            </div>
                                        </div>
                                    }.into_any(),
                                    (None, None) => view! {
                                        <ActionForm action=start attr:class="mt-4">
                                            <button type="submit" class=BUTTON_PRIMARY>"Set up authenticator app"</button>
                                        </ActionForm>
                                    }.into_any(),
                                }}
                            </section>
                            <section class=format!("mt-4 p-6 {CARD}") aria-labelledby="recovery-heading">
                                <h2 id="recovery-heading" class="text-base font-semibold text-slate-900">"Recovery codes"</h2>
                                <p class="mt-1 text-sm text-slate-600" data-testid="recovery-left">
                                    {format!("{} unused recovery codes. Each one signs you in once if you lose your phone.", overview.recovery_codes_left)}
                                </p>
                                {overview.authenticator.is_some().then(|| view! {
                                    <ActionForm action=regenerate attr:class="mt-4">
                                        <button type="submit" class=BUTTON_SECONDARY>"Make new codes"</button>
                                    </ActionForm>
                                })}
                            </section>
                            <section class=format!("mt-4 p-6 {CARD}") aria-labelledby="policy-heading">
                                <h2 id="policy-heading" class="text-base font-semibold text-slate-900">"Who must use a second factor"</h2>
                                <p class="mt-1 text-sm text-slate-600">"Applies to password sign-in. An admin it covers who has none sets one up right after their password."</p>
                                <ActionForm action=policy attr:class="mt-4 space-y-3">
                                    <fieldset disabled=!is_owner class="space-y-2">
                                        <legend class="sr-only">"Who must use a second factor"</legend>
                                        {SecondFactorPolicy::ALL.into_iter().map(|choice| view! {
                                            <label class="flex items-center gap-2 text-sm text-slate-800">
                                                <input type="radio" name="policy" value=choice.as_str() checked=overview.policy == choice/>
                                                {choice.label()}
                                            </label>
                                        }).collect_view()}
                                    </fieldset>
                                    {is_owner.then(|| view! { <button type="submit" class=BUTTON_PRIMARY>"Save"</button> })}
                                </ActionForm>
                            </section>
                        }.into_any()
                    }
                }
            })}
        </Transition>
    }
}

/// Recovery codes, shown once.
#[component]
fn ShowRecoveryCodes(codes: RecoveryCodes) -> impl IntoView {
    view! {
        <section class=format!("mt-4 p-6 {CARD}") aria-labelledby="new-codes-heading" data-testid="recovery-codes">
            <Notice message="Your authenticator app is ready to use."/>
            <h2 id="new-codes-heading" class="mt-4 text-base font-semibold text-slate-900">"Save your recovery codes"</h2>
            <p class="mt-1 text-sm text-slate-600">"Keep them somewhere safe: each signs you in once without your phone. They are not shown again."</p>
            <ul class="mt-4 grid grid-cols-2 gap-2 font-mono text-sm text-slate-900" role="list">
                {codes.codes.into_iter().map(|code| view! { <li class="rounded bg-slate-50 px-3 py-1.5 ring-1 ring-inset ring-slate-200">{code}</li> }).collect_view()}
            </ul>
        </section>
    }
}

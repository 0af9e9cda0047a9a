//! `/connections/{id}`: one SSO connection — the redirect URI to register at the IdP, Test
//! connection with each step's result, its settings (edit), turning it off and deleting it.

use super::connections::{OidcFields, SamlFields};
use crate::api::connections::{
    get_connection, DeleteConnection, SetConnectionEnabled, UpdateOidcConnection, UpdateSamlConnection,
};
use crate::model::connections::{
    ConnectionDetail, ConnectionTestRun, OidcConnectionInput, SamlConnectionInput, SamlDetail, StepStatus,
};
use crate::model::Permission;
use crate::ui::layout::CurrentAdmin;
use crate::ui::{
    format_time, Badge, CopyField, ErrorNotice, Loading, Notice, PageHeader, Tone, BUTTON_DANGER_LINK, BUTTON_PRIMARY,
    BUTTON_SECONDARY, CARD,
};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};
use uuid::Uuid;

#[component]
pub fn ConnectionPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let id = move || params.read().get("id").and_then(|id| Uuid::parse_str(&id).ok());
    let update = ServerAction::<UpdateOidcConnection>::new();
    let update_saml = ServerAction::<UpdateSamlConnection>::new();
    let set_enabled = ServerAction::<SetConnectionEnabled>::new();
    let delete = ServerAction::<DeleteConnection>::new();
    let detail = Resource::new(
        move || (id(), update.version().get() + update_saml.version().get(), set_enabled.version().get()),
        |(id, _, _)| async move {
            match id {
                Some(id) => get_connection(id).await,
                None => Err(crate::error::AppError::new(crate::error::ErrorKind::NotFound, "No such connection")),
            }
        },
    );
    let CurrentAdmin(me) = expect_context::<CurrentAdmin>();
    view! {
        <Title text="Connection"/>
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                let role = me.await.ok().flatten().map(|me| me.role);
                let can_manage = role.is_some_and(|role| role.can(Permission::ManageSso));
                let can_change_trust = role.is_some_and(|role| role.can(Permission::ChangeSsoTrust));
                match detail.await {
                    Err(error) => view! { <ErrorNotice error/> }.into_any(),
                    Ok(detail) => view! { <ConnectionView detail can_manage can_change_trust update update_saml set_enabled delete/> }.into_any(),
                }
            })}
        </Transition>
        {move || query.read().get("created").map(|_| view! {
            <div class="mt-4"><Notice message="Connection created, turned off. Register it at your IdP, then run Test connection: a passing test turns it on."/></div>
        })}
    }
}

#[component]
fn ConnectionView(
    detail: ConnectionDetail,
    can_manage: bool,
    can_change_trust: bool,
    update: ServerAction<UpdateOidcConnection>,
    update_saml: ServerAction<UpdateSamlConnection>,
    set_enabled: ServerAction<SetConnectionEnabled>,
    delete: ServerAction<DeleteConnection>,
) -> impl IntoView {
    let query = use_query_map();
    let saml = detail.saml.clone();
    let connection = detail.connection.clone();
    let id = connection.id;
    let shown_test = {
        let wanted = query.read_untracked().get("test").and_then(|t| Uuid::parse_str(&t).ok());
        match wanted {
            Some(wanted) => detail.tests.iter().find(|t| t.id == wanted).cloned(),
            None => detail.tests.first().cloned(),
        }
    };
    let initial = OidcConnectionInput {
        name: connection.name.clone(),
        issuer: connection.issuer.clone().unwrap_or_default(),
        client_id: connection.client_id.clone().unwrap_or_default(),
        client_secret: String::new(),
        scopes: detail.scopes.clone(),
        claim_email: detail.claim_email.clone(),
        claim_name: detail.claim_name.clone(),
        claim_groups: detail.claim_groups.clone(),
        role_mappings: detail
            .role_mappings
            .iter()
            .map(|m| format!("{} = {}", m.group, m.role))
            .collect::<Vec<_>>()
            .join("\n"),
        trusts_idp_email: detail.trusts_idp_email,
    };
    let enabled = connection.enabled;
    let tested = detail.passed_test_since_change;
    view! {
        <PageHeader title="Connection" description=if saml.is_some() { "SAML 2.0 single sign-on for your admins." } else { "OpenID Connect single sign-on for your admins." }>
            <a href="/connections" class=BUTTON_SECONDARY>"All connections"</a>
        </PageHeader>
        <section class=format!("p-6 {CARD}")>
            <div class="flex flex-wrap items-start justify-between gap-3">
                <div>
                    <h2 class="text-lg font-semibold text-slate-900" data-testid="connection-name">{connection.name.clone()}</h2>
                    <p class="text-sm text-slate-600">{connection.issuer.clone().unwrap_or_default()}</p>
                </div>
                <div class="flex gap-1.5">
                    <Badge text=connection.kind.to_uppercase() tone=Tone::Accent/>
                    {if enabled { view! { <Badge text="enabled" tone=Tone::Good/> } } else { view! { <Badge text="disabled" tone=Tone::Neutral/> } }}
                </div>
            </div>
            {match saml.clone() {
                Some(saml) => view! { <SamlIdentifiers saml/> }.into_any(),
                None => view! {
                    <div class="mt-5 max-w-2xl">
                        <CopyField label="Redirect URI" value=detail.redirect_uri.clone() testid="redirect-uri"/>
                        <p class="mt-1 text-xs text-slate-500">"Register it at your IdP as the sign-in redirect (callback) URI of this application."</p>
                    </div>
                }.into_any(),
            }}
            {can_manage.then(|| view! {
                <div class="mt-5 flex flex-wrap items-center gap-4">
                    // A plain form: the browser leaves for the IdP (a POST, so only this page can start a run).
                    <form method="post" action=format!("/sso/test?connection={id}")>
                        <button type="submit" class=BUTTON_PRIMARY data-testid="test-connection">"Test connection"</button>
                    </form>
                    {match (enabled, tested, can_change_trust) {
                        (true, _, _) => view! { <SwitchForm set_enabled id enabled=false skip_test=false label="Turn off"/> }.into_any(),
                        (false, true, true) => view! { <SwitchForm set_enabled id enabled=true skip_test=false label="Turn on"/> }.into_any(),
                        (false, false, true) => view! {
                            <details>
                                <summary class=format!("cursor-pointer list-none {BUTTON_SECONDARY}")>"Turn on without a test…"</summary>
                                <div class="mt-2 max-w-sm rounded-md bg-amber-50 p-3 text-xs text-amber-900 ring-1 ring-amber-200">
                                    <p>"No test sign-in has passed since this connection's settings last changed. Turning it on anyway is recorded in the audit trail."</p>
                                    <div class="mt-2"><SwitchForm set_enabled id enabled=true skip_test=true label="Turn on without a test"/></div>
                                </div>
                            </details>
                        }.into_any(),
                        (false, _, false) => view! {
                            <p class="text-sm text-slate-600">"Turned off: an owner turns it on after a passing test."</p>
                        }.into_any(),
                    }}
                    <details>
                        <summary class=format!("cursor-pointer list-none {BUTTON_DANGER_LINK}")>"Delete…"</summary>
                        <div class="mt-2 max-w-sm rounded-md bg-red-50 p-3 text-xs text-red-900 ring-1 ring-red-200">
                            <p>{format!("Deleting removes the sign-in identities of the {} people who used it; admins keep their roles but must sign in another way.", connection.identities)}</p>
                            <ActionForm action=delete attr:class="mt-2">
                                <input type="hidden" name="connection_id" value=id.to_string()/>
                                <button type="submit" class=BUTTON_SECONDARY>"Delete connection"</button>
                            </ActionForm>
                        </div>
                    </details>
                </div>
            })}
            <div class="mt-3 space-y-2">
                {move || set_enabled.value().get().and_then(Result::err).map(|error| view! { <ErrorNotice error/> })}
                {move || delete.value().get().and_then(Result::err).map(|error| view! { <ErrorNotice error/> })}
                {move || use_query_map().read().get("test_refused").map(|_| view! { <Notice message="Only owners and admins can run Test connection."/> })}
            </div>
        </section>
        <section class=format!("mt-6 p-6 {CARD}") aria-labelledby="test-heading">
            <h2 id="test-heading" class="text-base font-semibold text-slate-900">"Test connection"</h2>
            {match shown_test {
                None => view! { <p class="mt-2 text-sm text-slate-600">"Not tested yet. Test connection signs you in through the IdP and shows each step's result, without changing who you are signed in as."</p> }.into_any(),
                Some(run) => view! { <TestRunView run/> }.into_any(),
            }}
        </section>
        {can_change_trust.then(|| view! {
            <section class=format!("mt-6 p-6 {CARD}") aria-labelledby="settings-heading">
                <h2 id="settings-heading" class="text-base font-semibold text-slate-900">"Settings"</h2>
                {match saml.clone() {
                    None => view! {
                        <ActionForm action=update attr:class="mt-4 max-w-2xl space-y-4">
                            <input type="hidden" name="connection_id" value=id.to_string()/>
                            <OidcFields initial=initial.clone() secret_required=false/>
                            {move || update.value().get().map(|r| match r {
                                Ok(()) => view! { <Notice message="Saved."/> }.into_any(),
                                Err(error) => view! { <ErrorNotice error/> }.into_any(),
                            })}
                            <button type="submit" class=BUTTON_PRIMARY disabled=move || update.pending().get()>"Save changes"</button>
                        </ActionForm>
                    }.into_any(),
                    Some(saml) => {
                        let initial = SamlConnectionInput {
                            name: initial.name.clone(),
                            metadata_url: String::new(),
                            metadata_xml: String::new(),
                            idp_entity_id: saml.idp_entity_id.clone(),
                            sso_url: saml.idp_sso_url.clone(),
                            certificates_pem: String::new(),
                            claim_email: initial.claim_email.clone(),
                            claim_name: initial.claim_name.clone(),
                            claim_groups: initial.claim_groups.clone(),
                            role_mappings: initial.role_mappings.clone(),
                            allow_idp_initiated: saml.allow_idp_initiated,
                            sign_requests: saml.sign_requests,
                            trusts_idp_email: initial.trusts_idp_email,
                        };
                        view! {
                            <p class="mt-1 text-sm text-slate-600">"Certificates you give (metadata URL, XML or PEM) replace the pinned ones; give none to keep them. To rotate without downtime, save with both the current and the new certificate, then later with the new one only."</p>
                            <ActionForm action=update_saml attr:class="mt-4 max-w-2xl space-y-4">
                                <input type="hidden" name="connection_id" value=id.to_string()/>
                                <SamlFields initial/>
                                {move || update_saml.value().get().map(|r| match r {
                                    Ok(()) => view! { <Notice message="Saved."/> }.into_any(),
                                    Err(error) => view! { <ErrorNotice error/> }.into_any(),
                                })}
                                <button type="submit" class=BUTTON_PRIMARY disabled=move || update_saml.pending().get()>"Save changes"</button>
                            </ActionForm>
                        }.into_any()
                    }
                }}
            </section>
        })}
    }
}

/// Turns the connection on or off (`skip_test`: on without a passing test, which is audited).
#[component]
fn SwitchForm(
    set_enabled: ServerAction<SetConnectionEnabled>,
    id: Uuid,
    enabled: bool,
    skip_test: bool,
    label: &'static str,
) -> impl IntoView {
    view! {
        <ActionForm action=set_enabled>
            <input type="hidden" name="connection_id" value=id.to_string()/>
            <input type="hidden" name="enabled" value=enabled.to_string()/>
            {skip_test.then(|| view! { <input type="hidden" name="skip_test" value="true"/> })}
            <button type="submit" class=BUTTON_SECONDARY>{label}</button>
        </ActionForm>
    }
}

/// What to register at the IdP, and the pinned certificates with their expiry.
#[component]
fn SamlIdentifiers(saml: SamlDetail) -> impl IntoView {
    view! {
        <div class="mt-5 grid max-w-3xl gap-4">
            <CopyField label="SP entity ID" value=saml.sp_entity_id.clone() testid="sp-entity-id"/>
            <CopyField label="ACS URL" value=saml.acs_url.clone() testid="acs-url"/>
            <CopyField label="SP metadata URL" value=saml.metadata_url.clone() testid="sp-metadata-url"/>
            <p class="text-xs text-slate-500">"Register these at your IdP (or give it the metadata URL). Responses must be posted to the ACS with the HTTP-POST binding."</p>
            <dl class="grid grid-cols-[auto_1fr] gap-x-4 gap-y-1 text-sm">
                <dt class="font-medium text-slate-700">"IdP entity ID"</dt><dd class="break-all text-slate-600">{saml.idp_entity_id.clone()}</dd>
                <dt class="font-medium text-slate-700">"IdP SSO URL"</dt><dd class="break-all text-slate-600">{saml.idp_sso_url.clone()}</dd>
                <dt class="font-medium text-slate-700">"IdP-initiated"</dt><dd class="text-slate-600">{if saml.allow_idp_initiated { "allowed" } else { "off" }}</dd>
                <dt class="font-medium text-slate-700">"AuthnRequests"</dt><dd class="text-slate-600">{if saml.sign_requests { "signed (our certificate is in the SP metadata)" } else { "unsigned" }}</dd>
            </dl>
            <ul class="divide-y divide-slate-100 rounded-md ring-1 ring-slate-200" data-testid="certificates">
                {saml.certificates.into_iter().map(|cert| {
                    let days = cert.days_left;
                    let (text, tone) = if days < 0 {
                        ("expired".to_string(), Tone::Bad)
                    } else if days <= 60 {
                        (format!("expires in {days} days"), Tone::Warn)
                    } else {
                        (format!("valid {days} more days"), Tone::Good)
                    };
                    view! {
                        <li class="px-4 py-3 text-sm">
                            <p class="flex items-center gap-2 font-medium text-slate-900">"Signing certificate " <Badge text tone/></p>
                            <p class="break-all text-xs text-slate-600">{cert.subject.clone()}</p>
                            <p class="break-all font-mono text-xs text-slate-500">{format!("SHA-256 {} · until {}", cert.fingerprint, format_time(cert.not_after))}</p>
                        </li>
                    }
                }).collect_view()}
            </ul>
        </div>
    }
}

#[component]
fn TestRunView(run: ConnectionTestRun) -> impl IntoView {
    let (text, tone) = match run.succeeded {
        Some(true) => ("passed", Tone::Good),
        Some(false) => ("failed", Tone::Bad),
        None => ("in progress", Tone::Warn),
    };
    view! {
        <p class="mt-2 flex items-center gap-2 text-sm text-slate-700" data-testid="test-outcome" data-outcome=text>
            <Badge text=text tone/> {format!("Run {}", format_time(run.started_at))}
        </p>
        <ol class="mt-4 space-y-3" data-testid="test-steps">
            {run.steps.into_iter().map(|step| {
                let (label, tone) = match step.status {
                    StepStatus::Ok => ("ok", Tone::Good),
                    StepStatus::Failed => ("failed", Tone::Bad),
                    StepStatus::Skipped => ("skipped", Tone::Neutral),
                };
                view! {
                    <li class="flex gap-3" data-step=step.step.clone() data-status=label>
                        <span class="w-16 shrink-0"><Badge text=label tone/></span>
                        <div>
                            <p class="text-sm font-medium text-slate-900">{step.step.clone()}</p>
                            <p class="break-words text-sm text-slate-600">{step.detail}</p>
                        </div>
                    </li>
                }
            }).collect_view()}
        </ol>
    }
}

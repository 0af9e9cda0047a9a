//! `/connections`: the organization's SSO connections (new OIDC connection in a dialog) and the
//! email domains it claims, each proven with a DNS TXT record before sign-ins use it.

use crate::api::connections::{
    list_connections, list_domains, AddDomain, CreateOidcConnection, CreateSamlConnection, RemoveDomain, VerifyDomain,
};
use crate::model::connections::{ConnectionRow, DomainRow, OidcConnectionInput, SamlConnectionInput};
use crate::model::Permission;
use crate::ui::layout::CurrentAdmin;
use crate::ui::{
    format_time, Badge, EmptyState, ErrorNotice, Loading, Modal, Notice, PageHeader, Tone, BUTTON_DANGER_LINK,
    BUTTON_PRIMARY, BUTTON_SECONDARY, CARD, INPUT, LABEL,
};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

#[component]
pub fn ConnectionsPage() -> impl IntoView {
    let CurrentAdmin(me) = expect_context::<CurrentAdmin>();
    let query = use_query_map();
    let create = ServerAction::<CreateOidcConnection>::new();
    let connections = Resource::new(|| (), |_| list_connections());
    let dialog_open = RwSignal::new(false);
    let create_saml = ServerAction::<CreateSamlConnection>::new();
    let saml_open = RwSignal::new(false);
    view! {
        <Title text="Connections"/>
        <PageHeader title="Connections" description="Admins sign in through your identity provider. Connect it with OpenID Connect, test it live, and verify your email domains.">
            <Transition>
                {move || Suspend::new(async move {
                    let can_create = matches!(me.await, Ok(Some(me)) if me.role.can(Permission::ChangeSsoTrust));
                    can_create.then(|| view! {
                        <div class="flex gap-3">
                            <button type="button" class=BUTTON_SECONDARY aria-haspopup="dialog" on:click=move |_| saml_open.set(true)>"New SAML connection"</button>
                            <button type="button" class=BUTTON_PRIMARY aria-haspopup="dialog" on:click=move |_| dialog_open.set(true)>"New OIDC connection"</button>
                        </div>
                    })
                })}
            </Transition>
        </PageHeader>
        {move || query.read().get("deleted").map(|_| view! { <div class="mb-4"><Notice message="Connection deleted."/></div> })}
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                match connections.await {
                    Err(error) => view! { <ErrorNotice error/> }.into_any(),
                    Ok(rows) if rows.is_empty() => view! {
                        <EmptyState title="No connection yet" message="Connect Okta, Microsoft Entra ID, Google, Auth0, Keycloak or any OpenID Connect provider. Test it live, verify your domain, and admins sign in through it from then on."/>
                    }.into_any(),
                    Ok(rows) => view! {
                        <ul class="grid grid-cols-1 gap-4 md:grid-cols-2" role="list" data-testid="connections">
                            {rows.into_iter().map(|row| view! { <ConnectionCard row/> }).collect_view()}
                        </ul>
                    }.into_any(),
                }
            })}
        </Transition>
        <Show when=move || dialog_open.get()>
            <Modal title="New OIDC connection" on_close=Callback::new(move |_| { dialog_open.set(false); create.value().set(None); })>
                <p class="mt-1 text-sm text-slate-600">"Register Mandate as a web application at your IdP first; you get the redirect URI to paste there on the next page."</p>
                <ActionForm action=create attr:class="mt-4 space-y-4">
                    <OidcFields initial=OidcConnectionInput::default() secret_required=true/>
                    {move || create.value().get().and_then(Result::err).map(|error| view! { <ErrorNotice error/> })}
                    <div class="flex justify-end gap-3">
                        <button type="button" class=BUTTON_SECONDARY on:click=move |_| dialog_open.set(false)>"Cancel"</button>
                        <button type="submit" class=BUTTON_PRIMARY disabled=move || create.pending().get()>"Create connection"</button>
                    </div>
                </ActionForm>
            </Modal>
        </Show>
        <Show when=move || saml_open.get()>
            <Modal title="New SAML connection" on_close=Callback::new(move |_| { saml_open.set(false); create_saml.value().set(None); })>
                <p class="mt-1 text-sm text-slate-600">"Give Mandate your IdP's metadata (URL or XML), or enter its entity ID, single sign-on URL and signing certificate. You get Mandate's entity ID, ACS URL and metadata URL on the next page."</p>
                <ActionForm action=create_saml attr:class="mt-4 space-y-4">
                    <SamlFields initial=SamlConnectionInput::default()/>
                    {move || create_saml.value().get().and_then(Result::err).map(|error| view! { <ErrorNotice error/> })}
                    <div class="flex justify-end gap-3">
                        <button type="button" class=BUTTON_SECONDARY on:click=move |_| saml_open.set(false)>"Cancel"</button>
                        <button type="submit" class=BUTTON_PRIMARY disabled=move || create_saml.pending().get()>"Create connection"</button>
                    </div>
                </ActionForm>
            </Modal>
        </Show>
        <DomainsSection/>
    }
}

/// The SAML connection form fields (create and edit). Field names are `input[...]`.
#[component]
pub fn SamlFields(initial: SamlConnectionInput) -> impl IntoView {
    let field = |id: &'static str, label: &'static str, value: String, placeholder: &'static str| {
        view! {
            <div>
                <label for=format!("saml-{id}") class=LABEL>{label}</label>
                <input id=format!("saml-{id}") name=format!("input[{id}]") type="text" class=format!("mt-1.5 {INPUT}") value=value placeholder=placeholder/>
            </div>
        }
    };
    view! {
        {field("name", "Name", initial.name.clone(), "Entra ID")}
        {field("metadata_url", "IdP metadata URL", initial.metadata_url.clone(), "https://login.microsoftonline.com/…/federationmetadata.xml")}
        <details class="rounded-md bg-slate-50 p-3 ring-1 ring-slate-200">
            <summary class="cursor-pointer text-sm font-medium text-slate-800">"No metadata URL? Paste the XML or enter the settings"</summary>
            <div class="mt-3 space-y-3">
                <div>
                    <label for="saml-metadata_xml" class=LABEL>"IdP metadata XML"</label>
                    <textarea id="saml-metadata_xml" name="input[metadata_xml]" rows="3" class=format!("mt-1.5 font-mono text-xs {INPUT}")>{initial.metadata_xml.clone()}</textarea>
                </div>
                {field("idp_entity_id", "IdP entity ID", initial.idp_entity_id.clone(), "https://sts.windows.net/…/")}
                {field("sso_url", "IdP single sign-on URL", initial.sso_url.clone(), "https://idp.example/saml/sso")}
                <div>
                    <label for="saml-certificates_pem" class=LABEL>"IdP signing certificate(s), PEM"</label>
                    <textarea id="saml-certificates_pem" name="input[certificates_pem]" rows="4" class=format!("mt-1.5 font-mono text-xs {INPUT}")
                        placeholder="-----BEGIN CERTIFICATE-----">{initial.certificates_pem.clone()}</textarea>
                    <p class="mt-1 text-xs text-slate-500">"Two may be active while your IdP rotates its certificate. Certificates inside responses are ignored."</p>
                </div>
            </div>
        </details>
        <details class="rounded-md bg-slate-50 p-3 ring-1 ring-slate-200">
            <summary class="cursor-pointer text-sm font-medium text-slate-800">"Attributes, roles and IdP-initiated sign-in"</summary>
            <div class="mt-3 space-y-3">
                <div class="grid grid-cols-3 gap-3">
                    {field("claim_email", "Email attribute", initial.claim_email.clone(), "email")}
                    {field("claim_name", "Name attribute", initial.claim_name.clone(), "name")}
                    {field("claim_groups", "Groups attribute", initial.claim_groups.clone(), "groups")}
                </div>
                <div>
                    <label for="saml-role_mappings" class=LABEL>"Group → role mappings"</label>
                    <textarea id="saml-role_mappings" name="input[role_mappings]" rows="3" class=format!("mt-1.5 font-mono text-xs {INPUT}")
                        placeholder="mandate-admins = admin">{initial.role_mappings.clone()}</textarea>
                </div>
                <label class="flex items-center gap-2 text-sm text-slate-800">
                    <input type="checkbox" name="input[allow_idp_initiated]" value="true" checked=initial.allow_idp_initiated/>
                    "Allow sign-in started from the IdP's portal (IdP-initiated; off is safer)"
                </label>
                <label class="flex items-center gap-2 text-sm text-slate-800">
                    <input type="checkbox" name="input[sign_requests]" value="true" checked=initial.sign_requests/>
                    "Sign AuthnRequests (for IdPs that require it; our certificate is in the SP metadata)"
                </label>
                <TrustsEmailField checked=initial.trusts_idp_email/>
            </div>
        </details>
    }
}

#[component]
fn ConnectionCard(row: ConnectionRow) -> impl IntoView {
    let (test_text, test_tone) = match row.last_test_succeeded {
        Some(true) => ("test passed", Tone::Good),
        Some(false) => ("test failed", Tone::Bad),
        None => ("not tested", Tone::Warn),
    };
    view! {
        <li class=format!("p-5 {CARD}")>
            <div class="flex items-start justify-between gap-3">
                <div class="min-w-0">
                    <a href=format!("/connections/{}", row.id) class="text-base font-semibold text-indigo-700 hover:underline">{row.name.clone()}</a>
                    <p class="truncate text-xs text-slate-500">{row.issuer.clone().unwrap_or_default()}</p>
                </div>
                <div class="flex shrink-0 gap-1.5">
                    <Badge text=row.kind.to_uppercase() tone=Tone::Accent/>
                    {if row.enabled { view! { <Badge text="enabled" tone=Tone::Good/> } } else { view! { <Badge text="disabled" tone=Tone::Neutral/> } }}
                </div>
            </div>
            <p class="mt-3 flex items-center gap-2 text-sm text-slate-700">
                <Badge text=test_text tone=test_tone/>
                {format!("{} people signed in", row.identities)}
            </p>
            <p class="text-xs text-slate-500">{row.last_sign_in_at.map(|at| format!("Last sign-in {}", format_time(at))).unwrap_or_else(|| "No sign-in yet".into())}</p>
        </li>
    }
}

/// The OIDC connection form fields (create and edit). Field names are `input[...]`.
#[component]
pub fn OidcFields(initial: OidcConnectionInput, secret_required: bool) -> impl IntoView {
    let field = |id: &'static str,
                 label: &'static str,
                 value: String,
                 placeholder: &'static str,
                 help: &'static str| {
        view! {
            <div>
                <label for=id class=LABEL>{label}</label>
                <input id=id name=format!("input[{id}]") type="text" class=format!("mt-1.5 {INPUT}") value=value placeholder=placeholder/>
                {(!help.is_empty()).then(|| view! { <p class="mt-1 text-xs text-slate-500">{help}</p> })}
            </div>
        }
    };
    view! {
        {field("name", "Name", initial.name.clone(), "Okta", "")}
        {field("issuer", "Issuer URL", initial.issuer.clone(), "https://acme.okta.com", "Mandate reads /.well-known/openid-configuration under it.")}
        {field("client_id", "Client ID", initial.client_id.clone(), "", "")}
        <div>
            <label for="client_secret" class=LABEL>"Client secret"</label>
            <input id="client_secret" name="input[client_secret]" type="password" autocomplete="off" class=format!("mt-1.5 {INPUT}") required=secret_required
                placeholder=if secret_required { "" } else { "Leave empty to keep the current secret" }/>
            <p class="mt-1 text-xs text-slate-500">"Encrypted at rest and never shown again."</p>
        </div>
        <details class="rounded-md bg-slate-50 p-3 ring-1 ring-slate-200">
            <summary class="cursor-pointer text-sm font-medium text-slate-800">"Scopes, claim mapping and roles"</summary>
            <div class="mt-3 space-y-3">
                {field("scopes", "Scopes", initial.scopes.clone(), "openid email profile", "Space-separated; openid is required. Add groups if your IdP needs it for the groups claim.")}
                <div class="grid grid-cols-3 gap-3">
                    {field("claim_email", "Email claim", initial.claim_email.clone(), "email", "")}
                    {field("claim_name", "Name claim", initial.claim_name.clone(), "name", "")}
                    {field("claim_groups", "Groups claim", initial.claim_groups.clone(), "groups", "")}
                </div>
                <div>
                    <label for="role_mappings" class=LABEL>"Group → role mappings"</label>
                    <textarea id="role_mappings" name="input[role_mappings]" rows="3" class=format!("mt-1.5 font-mono text-xs {INPUT}")
                        placeholder="mandate-admins = admin\nsecurity = auditor">{initial.role_mappings.clone()}</textarea>
                    <p class="mt-1 text-xs text-slate-500">"One per line. Members of a mapped group get that role when they sign in (admin, approver or auditor; never owner). Existing admins sign in through the connection once they have linked it by running Test connection."</p>
                </div>
                <TrustsEmailField checked=initial.trusts_idp_email/>
            </div>
        </details>
    }
}

/// Whether the IdP verifies the emails it asserts: only then may an email link an IdP identity
/// to a person already in the directory (OIDC also accepts `email_verified: true` per sign-in).
#[component]
fn TrustsEmailField(checked: bool) -> impl IntoView {
    view! {
        <label class="flex items-start gap-2 text-sm text-slate-800">
            <input type="checkbox" class="mt-1" name="input[trusts_idp_email]" value="true" checked=checked/>
            <span>
                "This IdP verifies every email address it asserts"
                <span class="block text-xs text-slate-500">"Only then does a first sign-in link to a person already in your directory by email. Never links to an existing admin: admins link by running Test connection."</span>
            </span>
        </label>
    }
}

#[component]
fn DomainsSection() -> impl IntoView {
    let CurrentAdmin(me) = expect_context::<CurrentAdmin>();
    let add = ServerAction::<AddDomain>::new();
    let verify = ServerAction::<VerifyDomain>::new();
    let remove = ServerAction::<RemoveDomain>::new();
    let domains = Resource::new(
        move || (add.version().get(), verify.version().get(), remove.version().get()),
        |_| list_domains(),
    );
    view! {
        <section class=format!("mt-10 {CARD}") aria-labelledby="domains-heading">
            <div class="border-b border-slate-200 px-6 py-4">
                <h2 id="domains-heading" class="text-base font-semibold text-slate-900">"Domains"</h2>
                <p class="text-sm text-slate-600">"Sign-ins with an address at a verified domain go through your connection. Prove each domain with a DNS TXT record."</p>
            </div>
            <div class="space-y-3 px-6 pt-4">
                {move || add.value().get().map(|r| match r {
                    Ok(domain) => view! { <Notice message=format!("{domain} added. Publish the TXT record below, then click Verify.")/> }.into_any(),
                    Err(error) => view! { <ErrorNotice error/> }.into_any(),
                })}
                {move || verify.value().get().map(|r| match r {
                    Ok(true) => view! { <Notice message="Domain verified."/> }.into_any(),
                    Ok(false) => ().into_any(),
                    Err(error) => view! { <ErrorNotice error/> }.into_any(),
                })}
                {move || remove.value().get().and_then(Result::err).map(|error| view! { <ErrorNotice error/> })}
            </div>
            <Transition fallback=Loading>
                {move || Suspend::new(async move {
                    let can_manage = matches!(me.await, Ok(Some(me)) if me.role.can(Permission::ManageSso));
                    match domains.await {
                        Err(error) => view! { <ErrorNotice error/> }.into_any(),
                        Ok(rows) => view! {
                            <ul class="divide-y divide-slate-100" role="list" data-testid="domains">
                                {rows.is_empty().then(|| view! { <li class="px-6 py-4 text-sm text-slate-500">"No domain claimed yet."</li> })}
                                {rows.into_iter().map(|row| view! { <DomainItem row can_manage verify remove/> }).collect_view()}
                            </ul>
                            {can_manage.then(|| view! {
                                <ActionForm action=add attr:class="flex items-end gap-3 border-t border-slate-200 px-6 py-4">
                                    <div class="grow">
                                        <label for="new-domain" class=LABEL>"Add a domain"</label>
                                        <input id="new-domain" name="domain" type="text" required placeholder="acme.com" class=format!("mt-1.5 {INPUT}")/>
                                    </div>
                                    <button type="submit" class=BUTTON_SECONDARY>"Add domain"</button>
                                </ActionForm>
                            })}
                        }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

#[component]
fn DomainItem(
    row: DomainRow,
    can_manage: bool,
    verify: ServerAction<VerifyDomain>,
    remove: ServerAction<RemoveDomain>,
) -> impl IntoView {
    let verified = row.verified_at.is_some();
    let domain = row.domain.clone();
    view! {
        <li class="px-6 py-4" data-domain=domain.clone()>
            <div class="flex flex-wrap items-center justify-between gap-3">
                <p class="text-sm font-medium text-slate-900">
                    {domain.clone()} " "
                    {if verified { view! { <Badge text="verified" tone=Tone::Good/> } } else { view! { <Badge text="unverified" tone=Tone::Warn/> } }}
                </p>
                {can_manage.then(|| {
                    let domain = domain.clone();
                    view! {
                        <div class="flex items-center gap-4">
                            {(!verified).then({
                                let domain = domain.clone();
                                move || view! {
                                <ActionForm action=verify>
                                    <input type="hidden" name="domain" value=domain/>
                                    <button type="submit" class=BUTTON_SECONDARY>"Verify"</button>
                                </ActionForm>
                            }})}
                            <ActionForm action=remove>
                                <input type="hidden" name="domain" value=domain.clone()/>
                                <button type="submit" class=BUTTON_DANGER_LINK>"Remove"</button>
                            </ActionForm>
                        </div>
                    }
                })}
            </div>
            {if verified {
                view! { <p class="mt-1 text-xs text-slate-500">{row.verified_at.map(|at| format!("Verified {}", format_time(at)))}</p> }.into_any()
            } else {
                view! {
                    <div class="mt-2 rounded-md bg-slate-50 p-3 text-xs text-slate-700 ring-1 ring-slate-200">
                        <p>"Publish this TXT record at your DNS provider:"</p>
                        <dl class="mt-1 grid grid-cols-[auto_1fr] gap-x-3 gap-y-1">
                            <dt class="font-medium">"Name"</dt><dd class="break-all font-mono" data-testid="txt-name">{row.record_name.clone()}</dd>
                            <dt class="font-medium">"Value"</dt><dd class="break-all font-mono" data-testid="txt-value">{row.record_value.clone()}</dd>
                        </dl>
                        {row.last_check_error.clone().map(|error| view! {
                            <p class="mt-2 text-amber-800" role="status">{format!("Last check {}: {error}", row.last_checked_at.map(format_time).unwrap_or_default())}</p>
                        })}
                    </div>
                }.into_any()
            }}
        </li>
    }
}

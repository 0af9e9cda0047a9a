//! `/directories`: the organization's directories (SCIM provisioning from its IdP), connected
//! here with a token shown once, and the people they provision — with deactivation and
//! "revoke every agent of this person", each confirmed after showing what it ends.

use crate::api::directories::{list_directories, CreateDirectory};
use crate::api::people::{list_people, RevokePersonAgents, SetPersonActive};
use crate::model::agents::PersonRow;
use crate::model::Permission;
use crate::ui::directory_setup::{provider_label, DirectoryCredentialsShownOnce};
use crate::ui::layout::CurrentAdmin;
use crate::ui::{
    format_time, Badge, EmptyState, ErrorNotice, Loading, Modal, Notice, PageHeader, Tone, BUTTON_DANGER_LINK,
    BUTTON_PRIMARY, BUTTON_SECONDARY, CARD, INPUT, LABEL, SELECT,
};
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn DirectoriesPage() -> impl IntoView {
    let CurrentAdmin(me) = expect_context::<CurrentAdmin>();
    let set_active = ServerAction::<SetPersonActive>::new();
    let revoke_all = ServerAction::<RevokePersonAgents>::new();
    let people = Resource::new(move || (set_active.version().get(), revoke_all.version().get()), |_| list_people());
    let create = ServerAction::<CreateDirectory>::new();
    let directories = Resource::new(move || create.version().get(), |_| list_directories());
    let dialog_open = RwSignal::new(false);
    view! {
        <Title text="Directories"/>
        <PageHeader title="Directories" description="Your IdP provisions people and groups here over SCIM 2.0. When someone leaves, every agent acting for them stops at once.">
            <Transition>
                {move || Suspend::new(async move {
                    let can_manage = matches!(me.await, Ok(Some(me)) if me.role.can(Permission::ManageDirectories));
                    can_manage.then(|| view! {
                        <button type="button" class=BUTTON_PRIMARY aria-haspopup="dialog" on:click=move |_| dialog_open.set(true)>"Connect a directory"</button>
                    })
                })}
            </Transition>
        </PageHeader>
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                match directories.await {
                    Err(error) => view! { <ErrorNotice error/> }.into_any(),
                    Ok(rows) if rows.is_empty() => view! {
                        <EmptyState title="No directory connected" message="Connect Okta, Microsoft Entra ID, Google Workspace, JumpCloud or any SCIM 2.0 client: people and groups flow in, and leavers lose their agents automatically."/>
                    }.into_any(),
                    Ok(rows) => view! {
                        <ul class="grid grid-cols-1 gap-4 md:grid-cols-2" role="list" data-testid="directories">
                            {rows.into_iter().map(|d| view! {
                                <li class=format!("p-5 {CARD}")>
                                    <div class="flex items-start justify-between gap-3">
                                        <div>
                                            <a href=format!("/directories/{}", d.id) class="text-base font-semibold text-indigo-700 hover:underline">{d.name.clone()}</a>
                                            <p class="text-xs text-slate-500">{provider_label(&d.provider)} " · token " <span class="font-mono">{format!("{}…", d.token_prefix)}</span></p>
                                        </div>
                                        <Badge text="SCIM 2.0" tone=Tone::Accent/>
                                    </div>
                                    <p class="mt-3 text-sm text-slate-700">{format!("{} users ({} active) · {} groups", d.users, d.active_users, d.groups)}</p>
                                    <p class="text-xs text-slate-500">{d.last_event_at.map(|at| format!("Last request {}", format_time(at))).unwrap_or_else(|| "No requests yet".into())}</p>
                                </li>
                            }).collect_view()}
                        </ul>
                    }.into_any(),
                }
            })}
        </Transition>
        <Show when=move || dialog_open.get()>
            <ConnectDialog create on_close=Callback::new(move |_| { dialog_open.set(false); create.value().set(None); })/>
        </Show>
        <h2 class="mb-3 mt-10 text-lg font-semibold text-slate-900">"People"</h2>
        <div class="mb-4 space-y-3">
            {move || set_active.value().get().map(|r| match r {
                Ok(tokens) if tokens > 0 => view! { <Notice message=format!("Deactivated. {tokens} live token(s) stopped working.")/> }.into_any(),
                Ok(_) => ().into_any(),
                Err(error) => view! { <ErrorNotice error/> }.into_any(),
            })}
            {move || revoke_all.value().get().map(|r| match r {
                Ok(impact) => view! { <Notice message=format!("Revoked {} agent(s); {} live token(s) stopped working.", impact.agents.len(), impact.live_tokens)/> }.into_any(),
                Err(error) => view! { <ErrorNotice error/> }.into_any(),
            })}
        </div>
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                let me = me.await.ok().flatten();
                let can_manage = me.as_ref().is_some_and(|me| me.role.can(Permission::ManagePeople));
                let my_id = me.map(|me| me.person.id);
                match people.await {
                    Err(error) => view! { <ErrorNotice error/> }.into_any(),
                    Ok(rows) if rows.is_empty() => view! { <EmptyState title="No people yet" message="People appear when they become admins, own an agent, or arrive from your directory."/> }.into_any(),
                    Ok(rows) => view! {
                        <section class=CARD aria-labelledby="people-heading">
                            <h2 id="people-heading" class="border-b border-slate-200 px-6 py-4 text-base font-semibold text-slate-900">"People"</h2>
                            <ul class="divide-y divide-slate-100" role="list" data-testid="people">
                                {rows.into_iter().map(|row| {
                                    let is_me = Some(row.person.id) == my_id;
                                    view! { <PersonItem row can_manage is_me set_active revoke_all/> }
                                }).collect_view()}
                            </ul>
                        </section>
                    }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn PersonItem(
    row: PersonRow,
    can_manage: bool,
    is_me: bool,
    set_active: ServerAction<SetPersonActive>,
    revoke_all: ServerAction<RevokePersonAgents>,
) -> impl IntoView {
    let person = row.person.clone();
    let id = person.id.to_string();
    view! {
        <li class="flex flex-wrap items-center justify-between gap-4 px-6 py-4">
            <div>
                <p class="text-sm font-medium text-slate-900">
                    {person.display_name.clone()} " "
                    {(!person.active).then(|| view! { <Badge text="deactivated" tone=Tone::Bad/> })}
                    {row.is_admin.then(|| view! { <Badge text="admin" tone=Tone::Accent/> })}
                </p>
                <p class="text-sm text-slate-600">{person.email.clone()}</p>
                <p class="text-xs text-slate-500">
                    {format!("{} active agent(s) · {} live token(s)", row.active_agents, row.live_tokens)}
                    {(!row.groups.is_empty()).then(|| format!(" · groups: {}", row.groups.join(", ")))}
                </p>
            </div>
            {can_manage.then(|| {
                // Both dangerous actions show the same impact before they run: deactivation is the
                // leaver rule, so it ends exactly what "Revoke all agents" ends, and more.
                let impact = format!(
                    "{} agent(s) acting for {} and {} live token(s)",
                    row.active_agents, person.display_name, row.live_tokens
                );
                let (deactivate_id, reactivate_id) = (id.clone(), id.clone());
                view! {
                <div class="flex flex-wrap items-center gap-4">
                    {(row.active_agents > 0).then(|| {
                        let id = id.clone();
                        view! {
                            <details class="text-right">
                                <summary class=format!("cursor-pointer list-none {BUTTON_DANGER_LINK}")>"Revoke all agents…"</summary>
                                <div class="mt-2 max-w-xs rounded-md bg-red-50 p-3 text-left text-xs text-red-900 ring-1 ring-red-200">
                                    <p>{format!("This revokes {impact} at once.")}</p>
                                    <ActionForm action=revoke_all attr:class="mt-2">
                                        <input type="hidden" name="person_id" value=id/>
                                        <button type="submit" class=BUTTON_SECONDARY>"Revoke all agents"</button>
                                    </ActionForm>
                                </div>
                            </details>
                        }
                    })}
                    {(!is_me && person.active).then(|| view! {
                        <details class="text-right">
                            <summary class=format!("cursor-pointer list-none {BUTTON_DANGER_LINK}")>
                                "Deactivate…"<span class="sr-only">{format!(" {}", person.email)}</span>
                            </summary>
                            <div class="mt-2 max-w-xs rounded-md bg-red-50 p-3 text-left text-xs text-red-900 ring-1 ring-red-200" data-testid="deactivate-impact">
                                <p>{format!("Deactivating {} ends their portal access and revokes {impact} at once. Reactivating them later does not restore revoked agents.", person.email)}</p>
                                <ActionForm action=set_active attr:class="mt-2">
                                    <input type="hidden" name="person_id" value=deactivate_id/>
                                    <input type="hidden" name="active" value="false"/>
                                    <button type="submit" class=BUTTON_SECONDARY>"Deactivate"</button>
                                </ActionForm>
                            </div>
                        </details>
                    })}
                    {(!is_me && !person.active).then(|| view! {
                        <ActionForm action=set_active>
                            <input type="hidden" name="person_id" value=reactivate_id/>
                            <input type="hidden" name="active" value="true"/>
                            <button type="submit" class=BUTTON_SECONDARY>
                                "Reactivate"<span class="sr-only">{format!(" {}", person.email)}</span>
                            </button>
                        </ActionForm>
                    })}
                </div>
                }
            })}
        </li>
    }
}

#[component]
fn ConnectDialog(create: ServerAction<CreateDirectory>, on_close: Callback<()>) -> impl IntoView {
    let provider = RwSignal::new("okta".to_string());
    view! {
        <Modal title="Connect a directory" on_close>
            {move || match create.value().get() {
                Some(Ok(credentials)) => view! { <DirectoryCredentialsShownOnce credentials provider=provider.get_untracked() on_close/> }.into_any(),
                other => view! {
                    <p class="mt-1 text-sm text-slate-600">"You get a SCIM base URL and a bearer token to paste into your identity provider."</p>
                    {other.and_then(Result::err).map(|error| view! { <div class="mt-4"><ErrorNotice error/></div> })}
                    <ActionForm action=create attr:class="mt-5 space-y-4">
                        <div>
                            <label for="directory-name" class=LABEL>"Name"</label>
                            <input id="directory-name" name="name" required maxlength="100" autofocus placeholder="Okta production" class=format!("mt-1.5 {INPUT}")/>
                        </div>
                        <div>
                            <label for="directory-provider" class=LABEL>"Identity provider"</label>
                            <select id="directory-provider" name="provider" class=format!("mt-1.5 {SELECT}") on:change=move |ev| provider.set(event_target_value(&ev))>
                                {["okta", "entra", "google", "jumpcloud", "generic"].into_iter().map(|p| view! { <option value=p>{provider_label(p)}</option> }).collect_view()}
                            </select>
                        </div>
                        <div class="flex justify-end gap-3 pt-2">
                            <button type="button" class=BUTTON_SECONDARY on:click=move |_| on_close.run(())>"Cancel"</button>
                            <button type="submit" class=BUTTON_PRIMARY disabled=move || create.pending().get()>"Create directory"</button>
                        </div>
                    </ActionForm>
                }.into_any(),
            }}
        </Modal>
    }
}

//! `/directories/{id}`: one directory — how to connect the IdP, token rotation, the users and
//! groups it provisioned, and its events feed with each request's outcome.

use crate::api::directories::{get_directory, RotateDirectoryToken};
use crate::error::{AppError, ErrorKind};
use crate::model::directories::DirectoryDetail;
use crate::model::Permission;
use crate::ui::directory_setup::{provider_label, DirectoryCredentialsShownOnce, SetupSteps};
use crate::ui::layout::CurrentAdmin;
use crate::ui::{
    format_time, Badge, CopyField, EmptyState, ErrorNotice, Loading, Modal, Tone, BUTTON_PRIMARY, BUTTON_SECONDARY,
    CARD,
};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;
use uuid::Uuid;

#[component]
pub fn DirectoryPage() -> impl IntoView {
    let CurrentAdmin(me) = expect_context::<CurrentAdmin>();
    let params = use_params_map();
    let directory_id = move || params.read().get("id").and_then(|id| id.parse::<Uuid>().ok());
    let rotate = ServerAction::<RotateDirectoryToken>::new();
    let detail = Resource::new(
        move || (directory_id(), rotate.version().get()),
        |(id, _)| async move {
            match id {
                Some(id) => get_directory(id).await,
                None => Err(AppError::new(ErrorKind::NotFound, "There is no directory at this address.")),
            }
        },
    );
    let rotate_open = RwSignal::new(false);
    view! {
        <Title text="Directory"/>
        <p class="mb-4 text-sm"><a href="/directories" class="text-indigo-700 hover:underline">"← Directories"</a></p>
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                let can_manage = matches!(me.await, Ok(Some(me)) if me.role.can(Permission::ManageDirectories));
                match detail.await {
                    Err(error) => view! { <ErrorNotice error/> }.into_any(),
                    Ok(detail) => view! { <DirectoryView detail can_manage rotate rotate_open/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn DirectoryView(
    detail: DirectoryDetail,
    can_manage: bool,
    rotate: ServerAction<RotateDirectoryToken>,
    rotate_open: RwSignal<bool>,
) -> impl IntoView {
    let d = detail.directory.clone();
    let directory_id = d.id;
    let provider = StoredValue::new(d.provider.clone());
    view! {
        <div class="mb-8 flex flex-wrap items-start justify-between gap-4">
            <div>
                <h1 class="text-2xl font-semibold tracking-tight text-slate-900">{d.name.clone()}</h1>
                <p class="mt-1 text-sm text-slate-600">
                    {provider_label(&d.provider)} " · " {format!("{} users ({} active), {} groups", d.users, d.active_users, d.groups)}
                    " · token " <span class="font-mono">{format!("{}…", d.token_prefix)}</span> " set " {format_time(d.token_rotated_at)}
                </p>
            </div>
            {can_manage.then(|| view! { <button type="button" class=BUTTON_SECONDARY on:click=move |_| rotate_open.set(true)>"Rotate token"</button> })}
        </div>
        <section class=format!("p-6 {CARD}") aria-label="Connection">
            <CopyField label="SCIM base URL" value=detail.scim_base_url.clone()/>
            <div class="mt-4"><SetupSteps provider=provider.get_value()/></div>
        </section>

        <div class="mt-6 grid grid-cols-1 gap-6 lg:grid-cols-3">
            <section class=format!("lg:col-span-2 {CARD}") aria-labelledby="users-heading">
                <h2 id="users-heading" class="border-b border-slate-200 px-6 py-4 text-base font-semibold text-slate-900">"Users"</h2>
                {if detail.users.is_empty() {
                    view! { <div class="p-6"><EmptyState title="No users yet" message="Users appear as soon as your identity provider pushes them."/></div> }.into_any()
                } else {
                    view! {
                        <ul class="divide-y divide-slate-100" role="list" data-testid="directory-users">
                            {detail.users.into_iter().map(|u| view! {
                                <li class="flex flex-wrap items-center justify-between gap-2 px-6 py-3">
                                    <div>
                                        <p class="text-sm font-medium text-slate-900">{u.display_name.clone().unwrap_or_else(|| u.user_name.clone())} " "
                                            {(!u.active).then(|| view! { <Badge text="deactivated" tone=Tone::Bad/> })}</p>
                                        <p class="text-xs text-slate-600">{u.user_name.clone()} " · " {u.email.clone()}</p>
                                    </div>
                                    <p class="text-xs text-slate-500">
                                        {format!("{} active agent(s)", u.active_agents)}
                                        {(!u.groups.is_empty()).then(|| format!(" · {}", u.groups.join(", ")))}
                                    </p>
                                </li>
                            }).collect_view()}
                        </ul>
                    }.into_any()
                }}
            </section>
            <section class=CARD aria-labelledby="groups-heading">
                <h2 id="groups-heading" class="border-b border-slate-200 px-6 py-4 text-base font-semibold text-slate-900">"Groups"</h2>
                {if detail.groups.is_empty() {
                    view! { <p class="px-6 py-5 text-sm text-slate-600">"No groups pushed yet."</p> }.into_any()
                } else {
                    view! {
                        <ul class="divide-y divide-slate-100" role="list">
                            {detail.groups.into_iter().map(|g| view! {
                                <li class="flex justify-between px-6 py-3 text-sm"><span class="text-slate-900">{g.display_name.clone()}</span><span class="text-slate-500">{format!("{} members", g.members)}</span></li>
                            }).collect_view()}
                        </ul>
                    }.into_any()
                }}
            </section>
        </div>

        <section class=format!("mt-6 {CARD}") aria-labelledby="events-heading">
            <h2 id="events-heading" class="border-b border-slate-200 px-6 py-4 text-base font-semibold text-slate-900">"Events"</h2>
            {if detail.events.is_empty() {
                view! { <p class="px-6 py-5 text-sm text-slate-600">"Every change your identity provider sends, and every refusal, is listed here."</p> }.into_any()
            } else {
                view! {
                    <ul class="divide-y divide-slate-100" role="list" data-testid="directory-events">
                        {detail.events.into_iter().map(|e| {
                            let tone = if e.status < 400 { Tone::Good } else { Tone::Bad };
                            view! {
                                <li class="flex flex-wrap items-center justify-between gap-2 px-6 py-3 text-sm">
                                    <span>
                                        <span class="font-mono text-xs text-indigo-800">{e.event.clone()}</span> " "
                                        <span class="text-slate-600">{format!("{} {}", e.method, e.path.rsplit("/scim/v2/").next().map(|p| p.split_once('/').map(|(_, rest)| rest).unwrap_or(p)).unwrap_or_default())}</span>
                                        {(!e.detail.is_empty()).then(|| view! { <span class="block text-xs text-red-800">{e.detail.clone()}</span> })}
                                    </span>
                                    <span class="flex items-center gap-2">
                                        <Badge text=e.status.to_string() tone/>
                                        <span class="text-xs text-slate-500">{format_time(e.occurred_at)}</span>
                                    </span>
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                }.into_any()
            }}
        </section>

        <Show when=move || rotate_open.get()>
            <Modal title="Rotate the bearer token" on_close=Callback::new(move |_| { rotate_open.set(false); rotate.value().set(None); })>
                {
                    move || match rotate.value().get() {
                        Some(Ok(credentials)) => view! {
                            <DirectoryCredentialsShownOnce credentials provider=provider.get_value() on_close=Callback::new(move |_| { rotate_open.set(false); rotate.value().set(None); })/>
                        }.into_any(),
                        other => view! {
                            <p class="mt-2 text-sm text-slate-600">"The current token stops working immediately: paste the new one into your identity provider right away."</p>
                            {other.and_then(Result::err).map(|error| view! { <div class="mt-4"><ErrorNotice error/></div> })}
                            <div class="mt-6 flex justify-end gap-3">
                                <button type="button" class=BUTTON_SECONDARY on:click=move |_| rotate_open.set(false)>"Cancel"</button>
                                <button type="button" class=BUTTON_PRIMARY on:click=move |_| { rotate.dispatch(RotateDirectoryToken { directory_id }); }>"Rotate token"</button>
                            </div>
                        }.into_any(),
                    }
                }
            </Modal>
        </Show>
    }
}

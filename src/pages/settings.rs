//! `/settings`: Admins (list, invite by link, change roles, withdraw invitations). Owners
//! manage; everyone else reads. The server enforces the same rule. The other tabs: Sign-in,
//! Scopes, API keys and Log streams (`/settings/streams`, its own route).

use super::api_keys::ApiKeysTab;
use super::scopes::ScopesTab;
use super::security::SecurityTab;
use crate::api::admins::{list_admins, ChangeAdminRole, InviteAdmin, RemoveAdmin, RevokeInvitation};
use crate::api::connections::{get_sign_in_settings, SetPasswordSignIn};
use crate::model::admins::{AdminRow, CreatedInvitation, InvitationRow};
use crate::model::connections::PasswordSignIn;
use crate::model::{Permission, Role};
use crate::ui::layout::CurrentAdmin;
use crate::ui::{
    format_time, Badge, CopyField, ErrorNotice, Loading, Modal, PageHeader, Tone, BUTTON_DANGER_LINK, BUTTON_PRIMARY,
    BUTTON_SECONDARY, CARD, INPUT, LABEL, SELECT,
};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

#[component]
pub fn SettingsPage() -> impl IntoView {
    let query = use_query_map();
    let tab = move || query.read().get("tab").unwrap_or_default();
    view! {
        <Title text="Settings"/>
        <SettingsHeader current=Signal::derive(tab)/>
        {move || match tab().as_str() {
            "scopes" => view! { <ScopesTab/> }.into_any(),
            "sign-in" => view! { <SignInTab/> }.into_any(),
            "api-keys" => view! { <ApiKeysTab/> }.into_any(),
            "security" => view! { <SecurityTab/> }.into_any(),
            _ => view! { <AdminsTab/> }.into_any(),
        }}
    }
}

/// The Settings title and section tabs; sections with their own route (`/settings/streams`)
/// render it too, naming themselves as `current`.
#[component]
pub fn SettingsHeader(#[prop(into)] current: Signal<String>) -> impl IntoView {
    let tabs = [
        ("", "Admins", "/settings"),
        ("sign-in", "Sign-in", "/settings?tab=sign-in"),
        ("scopes", "Scopes", "/settings?tab=scopes"),
        ("api-keys", "API keys", "/settings?tab=api-keys"),
        ("security", "Security", "/settings?tab=security"),
        ("streams", "Log streams", "/settings/streams"),
    ];
    view! {
        <PageHeader title="Settings" description="Who administers this organization, the scopes agents can ask for, and where audit events are sent."/>
        <nav class="mb-6 border-b border-slate-200" aria-label="Settings sections">
            <ul class="-mb-px flex gap-6 text-sm" role="list">
                {tabs.into_iter().map(|(value, label, href)| view! {
                    <li>
                        <a
                            href=href
                            aria-current=move || (current.get() == value).then_some("page")
                            class="inline-block border-b-2 border-transparent pb-3 text-slate-600 hover:text-slate-900 aria-[current=page]:border-indigo-600 aria-[current=page]:font-semibold aria-[current=page]:text-indigo-700"
                        >{label}</a>
                    </li>
                }).collect_view()}
            </ul>
        </nav>
    }
}

/// Who may sign in with a password once single sign-on works (owners change it).
#[component]
fn SignInTab() -> impl IntoView {
    let CurrentAdmin(me) = expect_context::<CurrentAdmin>();
    let change = ServerAction::<SetPasswordSignIn>::new();
    let settings = Resource::new(move || change.version().get(), |_| get_sign_in_settings());
    view! {
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                let is_owner = matches!(me.await, Ok(Some(me)) if me.role.can(Permission::ManageOrganization));
                match settings.await {
                    Err(error) => view! { <ErrorNotice error/> }.into_any(),
                    Ok(settings) => view! {
                        <section class=format!("p-6 {CARD}") aria-labelledby="sign-in-heading">
                            <h2 id="sign-in-heading" class="text-base font-semibold text-slate-900">"Password sign-in"</h2>
                            <p class="mt-1 text-sm text-slate-600">
                                {if settings.sso_ready {
                                    "Single sign-on is set up. Restrict passwords to owners as break-glass, or turn them off once you have signed in through your identity provider."
                                } else {
                                    "Set up a connection and verify a domain on the Connections page before restricting password sign-in."
                                }}
                            </p>
                            <ActionForm action=change attr:class="mt-4 space-y-3">
                                <fieldset disabled=!is_owner class="space-y-2">
                                    <legend class="sr-only">"Who may sign in with a password"</legend>
                                    {PasswordSignIn::ALL.into_iter().map(|policy| view! {
                                        <label class="flex items-center gap-2 text-sm text-slate-800">
                                            <input type="radio" name="policy" value=policy.as_str() checked=settings.password_sign_in == policy/>
                                            {policy.label()}
                                        </label>
                                    }).collect_view()}
                                </fieldset>
                                {move || change.value().get().and_then(Result::err).map(|error| view! { <ErrorNotice error/> })}
                                {is_owner.then(|| view! { <button type="submit" class=BUTTON_PRIMARY>"Save"</button> })}
                            </ActionForm>
                        </section>
                    }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn AdminsTab() -> impl IntoView {
    let CurrentAdmin(me) = expect_context::<CurrentAdmin>();
    let invite = ServerAction::<InviteAdmin>::new();
    let change_role = ServerAction::<ChangeAdminRole>::new();
    let revoke = ServerAction::<RevokeInvitation>::new();
    let remove = ServerAction::<RemoveAdmin>::new();
    let overview = Resource::new(
        move || (invite.version().get(), change_role.version().get(), revoke.version().get(), remove.version().get()),
        |_| list_admins(),
    );
    let dialog_open = RwSignal::new(false);

    view! {
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                let me = me.await;
                let overview = overview.await;
                let can_manage = matches!(&me, Ok(Some(me)) if me.role.can(Permission::ManageAdmins));
                let my_admin_id = me.ok().flatten().map(|me| me.admin_id);
                match overview {
                    Err(error) => view! { <ErrorNotice error/> }.into_any(),
                    Ok(overview) => view! {
                        <div class="space-y-4">
                            {move || [change_role.value().get().and_then(Result::err), revoke.value().get().and_then(Result::err), remove.value().get().and_then(Result::err)]
                                .into_iter().flatten().map(|error| view! { <ErrorNotice error/> }).collect_view()}
                        </div>
                        <section class=format!("mt-4 {CARD}") aria-labelledby="admins-heading">
                            <div class="flex items-center justify-between border-b border-slate-200 px-6 py-4">
                                <div>
                                    <h2 id="admins-heading" class="text-base font-semibold text-slate-900">"Admins"</h2>
                                    <p class="text-sm text-slate-600">{format!("{} people can sign in to this portal.", overview.admins.len())}</p>
                                </div>
                                {can_manage.then(|| view! {
                                    <button type="button" class=BUTTON_PRIMARY on:click=move |_| dialog_open.set(true) aria-haspopup="dialog">"Invite admin"</button>
                                })}
                            </div>
                            <ul class="divide-y divide-slate-100" role="list" data-testid="admin-list">
                                {overview.admins.into_iter().map(|admin| {
                                    let is_me = Some(admin.id) == my_admin_id;
                                    view! { <AdminItem admin can_manage is_me change_role remove/> }
                                }).collect_view()}
                            </ul>
                        </section>
                        <section class=format!("mt-6 {CARD}") aria-labelledby="invitations-heading">
                            <div class="border-b border-slate-200 px-6 py-4">
                                <h2 id="invitations-heading" class="text-base font-semibold text-slate-900">"Pending invitations"</h2>
                                <p class="text-sm text-slate-600">"Links work once and expire after 72 hours."</p>
                            </div>
                            {if overview.invitations.is_empty() {
                                view! { <p class="px-6 py-5 text-sm text-slate-600">"No pending invitations."</p> }.into_any()
                            } else {
                                view! {
                                    <ul class="divide-y divide-slate-100" role="list" data-testid="invitation-list">
                                        {overview.invitations.into_iter().map(|invitation| view! { <InvitationItem invitation can_manage revoke/> }).collect_view()}
                                    </ul>
                                }.into_any()
                            }}
                        </section>
                    }.into_any(),
                }
            })}
        </Transition>
        <Show when=move || dialog_open.get()>
            <InviteDialog invite on_close=Callback::new(move |_| { dialog_open.set(false); invite.value().set(None); })/>
        </Show>
    }
}

#[component]
fn AdminItem(
    admin: AdminRow,
    can_manage: bool,
    is_me: bool,
    change_role: ServerAction<ChangeAdminRole>,
    remove: ServerAction<RemoveAdmin>,
) -> impl IntoView {
    let email = admin.email.clone();
    let remove_control = (can_manage && !is_me).then(|| {
        view! {
            <details>
                <summary class=format!("cursor-pointer list-none {BUTTON_DANGER_LINK}")>"Remove…"</summary>
                <div class="mt-2 max-w-xs rounded-md bg-red-50 p-3 text-xs text-red-900 ring-1 ring-red-200">
                    <p>{format!("{} loses access to the portal and is signed out everywhere. They stay in the directory; their agents are not touched.", admin.email)}</p>
                    <ActionForm action=remove attr:class="mt-2">
                        <input type="hidden" name="admin_id" value=admin.id.to_string()/>
                        <button type="submit" class=BUTTON_SECONDARY>"Remove admin"</button>
                    </ActionForm>
                </div>
            </details>
        }
    });
    let role_control = if can_manage && !is_me {
        view! {
            <ActionForm action=change_role attr:class="flex items-center gap-2">
                <input type="hidden" name="admin_id" value=admin.id.to_string()/>
                <label for=format!("role-{}", admin.id) class="sr-only">{format!("Role of {email}")}</label>
                <select id=format!("role-{}", admin.id) name="role" class=format!("w-36 {SELECT}")>
                    {Role::ALL.into_iter().map(|role| view! { <option value=role.as_str() selected=role == admin.role>{role.label()}</option> }).collect_view()}
                </select>
                <button type="submit" class=BUTTON_SECONDARY>"Save"</button>
            </ActionForm>
        }
        .into_any()
    } else {
        view! { <Badge text=admin.role.label() tone=if admin.role == Role::Owner { Tone::Accent } else { Tone::Neutral }/> }.into_any()
    };
    view! {
        <li class="flex flex-wrap items-center justify-between gap-4 px-6 py-4">
            <div class="min-w-0">
                <p class="text-sm font-medium text-slate-900">{admin.display_name.clone()} {is_me.then_some(" (you)")}</p>
                <p class="text-sm text-slate-600">{admin.email.clone()}</p>
                <p class="text-xs text-slate-500">
                    {match admin.last_login_at { Some(at) => format!("Last sign-in {}", format_time(at)), None => "Never signed in".to_string() }}
                </p>
            </div>
            <div class="flex flex-wrap items-center gap-4">{role_control}{remove_control}</div>
        </li>
    }
}

#[component]
fn InvitationItem(
    invitation: InvitationRow,
    can_manage: bool,
    revoke: ServerAction<RevokeInvitation>,
) -> impl IntoView {
    view! {
        <li class="flex flex-wrap items-center justify-between gap-4 px-6 py-4">
            <div>
                <p class="text-sm font-medium text-slate-900">{invitation.email.clone()} " " <Badge text=invitation.role.label() tone=Tone::Neutral/></p>
                <p class="text-xs text-slate-500">
                    {format!("Invited by {} · ", invitation.invited_by)}
                    {if invitation.expired { "expired".to_string() } else { format!("expires {}", format_time(invitation.expires_at)) }}
                </p>
            </div>
            {can_manage.then(|| view! {
                <ActionForm action=revoke>
                    <input type="hidden" name="invitation_id" value=invitation.id.to_string()/>
                    <button type="submit" class=BUTTON_DANGER_LINK>"Withdraw"<span class="sr-only">{format!(" the invitation of {}", invitation.email)}</span></button>
                </ActionForm>
            })}
        </li>
    }
}

#[component]
fn InviteDialog(invite: ServerAction<InviteAdmin>, on_close: Callback<()>) -> impl IntoView {
    view! {
        <Modal title="Invite an admin" on_close>
            {move || match invite.value().get() {
                Some(Ok(created)) => view! { <InviteLink created on_close/> }.into_any(),
                other => view! {
                    <p class="mt-1 text-sm text-slate-600">"They get a single-use link to set their password. Give each person the least role they need."</p>
                    {other.and_then(Result::err).map(|error| view! { <div class="mt-4"><ErrorNotice error/></div> })}
                    <ActionForm action=invite attr:class="mt-5 space-y-4">
                        <div>
                            <label for="invite-email" class=LABEL>"Email"</label>
                            <input id="invite-email" name="email" type="email" required autofocus class=format!("mt-1.5 {INPUT}")/>
                        </div>
                        <fieldset>
                            <legend class=LABEL>"Role"</legend>
                            <div class="mt-2 space-y-2">
                                {Role::ALL.into_iter().map(|role| view! {
                                    <label class="flex cursor-pointer gap-3 rounded-md p-2 ring-1 ring-slate-200 has-[:checked]:ring-2 has-[:checked]:ring-indigo-600">
                                        <input type="radio" name="role" value=role.as_str() checked=role == Role::Admin class="mt-0.5 focus:ring-indigo-600"/>
                                        <span>
                                            <span class="block text-sm font-medium text-slate-900">{role.label()}</span>
                                            <span class="block text-xs text-slate-600">{role.description()}</span>
                                        </span>
                                    </label>
                                }).collect_view()}
                            </div>
                        </fieldset>
                        <div class="flex justify-end gap-3 pt-2">
                            <button type="button" class=BUTTON_SECONDARY on:click=move |_| on_close.run(())>"Cancel"</button>
                            <button type="submit" class=BUTTON_PRIMARY disabled=move || invite.pending().get()>"Create invitation link"</button>
                        </div>
                    </ActionForm>
                }.into_any(),
            }}
        </Modal>
    }
}

#[component]
fn InviteLink(created: CreatedInvitation, on_close: Callback<()>) -> impl IntoView {
    view! {
        <div class="mt-4 space-y-3" data-testid="invite-created">
            <p class="text-sm text-slate-700">
                "Send this link to " <strong>{created.email.clone()}</strong> " (" {created.role.label()} "). "
                "It is shown only once and expires " {format_time(created.expires_at)} "."
            </p>
            <CopyField label="Invitation link" value=created.link.clone() testid="invite-link"/>
            <div class="flex justify-end pt-2">
                <button type="button" class=BUTTON_PRIMARY on:click=move |_| on_close.run(())>"Done"</button>
            </div>
        </div>
    }
}

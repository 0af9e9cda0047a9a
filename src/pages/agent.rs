//! `/agents/{id}`: one agent — owner, credentials, scopes and their decisions, live tokens,
//! activity — with rotate secret, request scope, withdraw approval and revoke (after a preview
//! of what revocation ends).

use super::agents::CredentialsShownOnce;
use crate::api::agents::{
    get_agent, get_agent_form_options, list_agents, preview_agent_revocation, RequestAgentScope, RevokeAgent,
    RotateAgentSecret, SetAgentDelegate,
};
use crate::api::approvals::WithdrawApproval;
use crate::error::{AppError, ErrorKind};
use crate::model::agents::{AgentDetail, AgentScope, DelegateRow};
use crate::model::{Permission, Role};
use crate::ui::layout::CurrentAdmin;
use crate::ui::{
    format_time, risk_tone, status_tone, Badge, ErrorNotice, Loading, Modal, Notice, BUTTON_DANGER_LINK,
    BUTTON_PRIMARY, BUTTON_SECONDARY, CARD, INPUT, LABEL, SELECT,
};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;
use uuid::Uuid;

const BUTTON_DANGER: &str = "inline-flex items-center justify-center rounded-md bg-red-600 px-3.5 py-2 text-sm font-semibold text-white shadow-sm hover:bg-red-500 focus-visible:outline focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-red-600 disabled:opacity-60";

#[component]
pub fn AgentPage() -> impl IntoView {
    let CurrentAdmin(me) = expect_context::<CurrentAdmin>();
    let params = use_params_map();
    let agent_id = move || params.read().get("id").and_then(|id| id.parse::<Uuid>().ok());
    let revoke = ServerAction::<RevokeAgent>::new();
    let rotate = ServerAction::<RotateAgentSecret>::new();
    let withdraw = ServerAction::<WithdrawApproval>::new();
    let request = ServerAction::<RequestAgentScope>::new();
    let delegate = ServerAction::<SetAgentDelegate>::new();
    let detail = Resource::new(
        move || {
            (
                agent_id(),
                revoke.version().get(),
                rotate.version().get(),
                withdraw.version().get(),
                request.version().get(),
                delegate.version().get(),
            )
        },
        |(id, ..)| async move {
            match id {
                Some(id) => get_agent(id).await,
                None => Err(AppError::new(ErrorKind::NotFound, "There is no agent at this address.")),
            }
        },
    );
    let revoke_open = RwSignal::new(false);
    let rotate_open = RwSignal::new(false);

    view! {
        <Title text="Agent"/>
        <p class="mb-4 text-sm"><a href="/agents" class="text-indigo-700 hover:underline">"← All agents"</a></p>
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                let role = me.await.ok().flatten().map(|me| me.role);
                match detail.await {
                    Err(error) => view! { <ErrorNotice error/> }.into_any(),
                    Ok(detail) => view! {
                        <AgentView detail role revoke rotate withdraw request delegate revoke_open rotate_open/>
                    }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn AgentView(
    detail: AgentDetail,
    role: Option<Role>,
    revoke: ServerAction<RevokeAgent>,
    rotate: ServerAction<RotateAgentSecret>,
    withdraw: ServerAction<WithdrawApproval>,
    request: ServerAction<RequestAgentScope>,
    delegate: ServerAction<SetAgentDelegate>,
    revoke_open: RwSignal<bool>,
    rotate_open: RwSignal<bool>,
) -> impl IntoView {
    let can = move |p: Permission| role.is_some_and(|r| r.can(p));
    let agent = detail.agent.clone();
    let active = agent.status == "active";
    let agent_id = agent.id;
    let name = agent.name.clone();
    view! {
        <div class="mb-8 flex flex-wrap items-start justify-between gap-4">
            <div>
                <h1 class="flex items-center gap-3 text-2xl font-semibold tracking-tight text-slate-900">
                    {agent.name.clone()} <Badge text=agent.status.clone() tone=status_tone(&agent.status)/>
                </h1>
                <p class="mt-1 max-w-2xl text-sm text-slate-600">{agent.description.clone()}</p>
            </div>
            {(active && can(Permission::ManageAgents)).then(|| view! {
                <div class="flex gap-3">
                    <button type="button" class=BUTTON_SECONDARY on:click=move |_| rotate_open.set(true)>"Rotate secret"</button>
                    <button type="button" class=BUTTON_DANGER on:click=move |_| revoke_open.set(true)>"Revoke"</button>
                </div>
            })}
        </div>
        {move || revoke.value().get().map(|result| match result {
            Ok(tokens) => view! { <div class="mb-6"><Notice message=format!("Agent revoked. {tokens} live token(s) stopped working.")/></div> }.into_any(),
            Err(error) => view! { <div class="mb-6"><ErrorNotice error/></div> }.into_any(),
        })}
        {(!active).then(|| view! {
            <div role="status" class="mb-6 rounded-md bg-red-50 p-4 text-sm text-red-900 ring-1 ring-inset ring-red-200">
                "Revoked " {detail.revoked_at.map(format_time)} {detail.revoked_reason.clone().map(|r| format!(": {r}"))}
                ". Its credentials and every token it carried no longer work."
            </div>
        })}

        <dl class="grid grid-cols-1 gap-4 sm:grid-cols-2 lg:grid-cols-4">
            <div class=format!("p-4 {CARD}")>
                <dt class="text-xs font-medium uppercase tracking-wide text-slate-500">"Acts for"</dt>
                <dd class="mt-1 text-sm font-medium text-slate-900">{agent.owner.display_name.clone()}</dd>
                <dd class="text-xs text-slate-600">{agent.owner.email.clone()} {(!agent.owner.active).then_some(" · deactivated")}</dd>
            </div>
            <div class=format!("p-4 {CARD}")>
                <dt class="text-xs font-medium uppercase tracking-wide text-slate-500">"Client id"</dt>
                <dd class="mt-1 break-all font-mono text-xs text-slate-900" data-testid="agent-client-id">{agent.client_id.clone()}</dd>
                <dd class="text-xs text-slate-600">"Registered by " {detail.created_by.clone()}</dd>
            </div>
            <div class=format!("p-4 {CARD}")>
                <dt class="text-xs font-medium uppercase tracking-wide text-slate-500">"Live tokens"</dt>
                <dd class="mt-1 text-2xl font-semibold text-slate-900" data-testid="live-tokens">{agent.live_tokens}</dd>
            </div>
            <div class=format!("p-4 {CARD}")>
                <dt class="text-xs font-medium uppercase tracking-wide text-slate-500">"Last active"</dt>
                <dd class="mt-1 text-sm text-slate-900">{agent.last_active_at.map(format_time).unwrap_or_else(|| "never".into())}</dd>
            </div>
        </dl>

        <section class=format!("mt-6 {CARD}") aria-labelledby="scopes-heading">
            <div class="border-b border-slate-200 px-6 py-4">
                <h2 id="scopes-heading" class="text-base font-semibold text-slate-900">"Scopes"</h2>
                <p class="text-sm text-slate-600">"The mandate is every approved, unexpired scope that the owner's groups allow."</p>
            </div>
            {move || withdraw.value().get().and_then(Result::err).map(|error| view! { <div class="px-6 pt-4"><ErrorNotice error/></div> })}
            {if agent.scopes.is_empty() {
                view! { <p class="px-6 py-5 text-sm text-slate-600">"No scopes requested yet."</p> }.into_any()
            } else {
                view! {
                    <ul class="divide-y divide-slate-100" role="list" data-testid="agent-scopes">
                        {agent.scopes.clone().into_iter().map(|scope| view! {
                            <ScopeItem scope can_withdraw=active && can(Permission::DecideApprovals) withdraw/>
                        }).collect_view()}
                    </ul>
                }.into_any()
            }}
            {(active && can(Permission::ManageAgents)).then(|| view! { <RequestScopeForm agent_id request/> })}
        </section>

        <DelegatesSection agent_id delegates=detail.delegates.clone() can_manage=active && can(Permission::ManageAgents) delegate/>

        <section class=format!("mt-6 {CARD}") aria-labelledby="activity-heading">
            <div class="flex items-center justify-between border-b border-slate-200 px-6 py-4">
                <h2 id="activity-heading" class="text-base font-semibold text-slate-900">"Activity"</h2>
                <span class="text-xs text-slate-500">"From the audit trail"</span>
            </div>
            <ul class="divide-y divide-slate-100" role="list">
                {detail.events.into_iter().map(|event| view! {
                    <li class="flex flex-wrap items-center justify-between gap-2 px-6 py-3 text-sm">
                        <span>
                            <span class="font-mono text-xs text-indigo-800">{event.action.clone()}</span>
                            " by " <span class="font-medium">{event.actor_label.clone()}</span>
                            {event.details.get("scope").and_then(|s| s.as_str()).map(|s| format!(" · {s}"))}
                            {event.details.get("revoked_tokens").map(|n| format!(" · {n} token(s) ended"))}
                        </span>
                        <span class="text-xs text-slate-500">{format_time(event.occurred_at)} " · #" {event.seq}</span>
                    </li>
                }).collect_view()}
            </ul>
        </section>

        <Show when=move || revoke_open.get()>
            <RevokeDialog agent_id name=name.clone() revoke on_close=Callback::new(move |_| revoke_open.set(false))/>
        </Show>
        <Show when=move || rotate_open.get()>
            <Modal title="Rotate the client secret" on_close=Callback::new(move |_| { rotate_open.set(false); rotate.value().set(None); })>
                {move || match rotate.value().get() {
                    Some(Ok(credentials)) => view! {
                        <CredentialsShownOnce credentials on_close=Callback::new(move |_| { rotate_open.set(false); rotate.value().set(None); })/>
                    }.into_any(),
                    other => view! {
                        <p class="mt-2 text-sm text-slate-600">"The current secret stops working immediately. Tokens already issued stay valid until they expire."</p>
                        {other.and_then(Result::err).map(|error| view! { <div class="mt-4"><ErrorNotice error/></div> })}
                        <div class="mt-6 flex justify-end gap-3">
                            <button type="button" class=BUTTON_SECONDARY on:click=move |_| rotate_open.set(false)>"Cancel"</button>
                            <button type="button" class=BUTTON_PRIMARY on:click=move |_| { rotate.dispatch(RotateAgentSecret { agent_id }); }>"Rotate secret"</button>
                        </div>
                    }.into_any(),
                }}
            </Modal>
        </Show>
    }
}

/// The agents this agent may hand its tokens to (RFC 8693 token exchange), with designate and
/// withdraw. A delegate's exchanged token holds only scopes both agents hold.
#[component]
fn DelegatesSection(
    agent_id: Uuid,
    delegates: Vec<DelegateRow>,
    can_manage: bool,
    delegate: ServerAction<SetAgentDelegate>,
) -> impl IntoView {
    let chosen: Vec<Uuid> = delegates.iter().map(|d| d.agent_id).collect();
    let candidates =
        Resource::new(|| (), |_| list_agents(String::new(), String::new(), "active".into(), String::new()));
    view! {
        <section class=format!("mt-6 {CARD}") aria-labelledby="delegates-heading">
            <div class="border-b border-slate-200 px-6 py-4">
                <h2 id="delegates-heading" class="text-base font-semibold text-slate-900">"Delegates"</h2>
                <p class="text-sm text-slate-600">"Sub-agents that may exchange this agent's tokens for their own (RFC 8693). The exchanged token holds only scopes both agents hold; every other exchange is refused and audited."</p>
            </div>
            {move || delegate.value().get().and_then(Result::err).map(|error| view! { <div class="px-6 pt-4"><ErrorNotice error/></div> })}
            {if delegates.is_empty() {
                view! { <p class="px-6 py-5 text-sm text-slate-600">"No delegates: no other agent can use this agent's tokens."</p> }.into_any()
            } else {
                view! {
                    <ul class="divide-y divide-slate-100" role="list" data-testid="agent-delegates">
                        {delegates.into_iter().map(|row| view! {
                            <li class="flex flex-wrap items-center justify-between gap-3 px-6 py-3 text-sm">
                                <span>
                                    <a href=format!("/agents/{}", row.agent_id) class="font-medium text-indigo-700 hover:underline">{row.name.clone()}</a>
                                    " " <Badge text=row.status.clone() tone=status_tone(&row.status)/>
                                    <span class="block text-xs text-slate-500">{format!("Designated by {} · {}", row.designated_by, format_time(row.designated_at))}</span>
                                </span>
                                {can_manage.then(|| view! {
                                    <ActionForm action=delegate>
                                        <input type="hidden" name="agent_id" value=agent_id.to_string()/>
                                        <input type="hidden" name="delegate_id" value=row.agent_id.to_string()/>
                                        <input type="hidden" name="withdraw" value="true"/>
                                        <button type="submit" class=BUTTON_DANGER_LINK>"Withdraw"</button>
                                    </ActionForm>
                                })}
                            </li>
                        }).collect_view()}
                    </ul>
                }.into_any()
            }}
            {can_manage.then(|| view! {
                <Transition>
                    {move || {
                        let chosen = chosen.clone();
                        Suspend::new(async move {
                            let options: Vec<_> = candidates.await.unwrap_or_default().into_iter()
                                .filter(|a| a.id != agent_id && !chosen.contains(&a.id))
                                .collect();
                            (!options.is_empty()).then(|| view! {
                                <ActionForm action=delegate attr:class="flex flex-wrap items-end gap-3 border-t border-slate-200 px-6 py-4">
                                    <input type="hidden" name="agent_id" value=agent_id.to_string()/>
                                    <div>
                                        <label for="delegate-id" class=LABEL>"Designate a delegate"</label>
                                        <select id="delegate-id" name="delegate_id" class=format!("mt-1.5 w-64 {SELECT}")>
                                            {options.into_iter().map(|a| view! { <option value=a.id.to_string()>{format!("{} ({})", a.name, a.owner.display_name)}</option> }).collect_view()}
                                        </select>
                                    </div>
                                    <button type="submit" class=BUTTON_SECONDARY>"Designate"</button>
                                </ActionForm>
                            })
                        })
                    }}
                </Transition>
            })}
        </section>
    }
}

#[component]
fn ScopeItem(scope: AgentScope, can_withdraw: bool, withdraw: ServerAction<WithdrawApproval>) -> impl IntoView {
    let status_label = if scope.in_mandate {
        "in mandate".to_string()
    } else if scope.blocked_by_ceiling {
        "blocked by group ceiling".to_string()
    } else {
        scope.status.clone()
    };
    let tone = if scope.in_mandate { crate::ui::Tone::Good } else { status_tone(&scope.status) };
    let decided = scope.decided_by.clone().map(|by| {
        format!(
            "{} by {by}{}",
            scope.status,
            scope.decided_at.map(|at| format!(" on {}", format_time(at))).unwrap_or_default()
        )
    });
    view! {
        <li class="flex flex-wrap items-center justify-between gap-4 px-6 py-4">
            <div>
                <p class="text-sm">
                    <span class="font-mono font-medium text-slate-900">{scope.scope.clone()}</span> " "
                    <Badge text=scope.risk.clone() tone=risk_tone(&scope.risk)/> " "
                    <Badge text=status_label tone/>
                </p>
                <p class="mt-1 text-xs text-slate-600">
                    {decided} {scope.expires_at.map(|at| format!(" · until {}", format_time(at)))}
                    {(!scope.reason.is_empty()).then(|| format!(" · asked because: {}", scope.reason))}
                    {scope.decision_note.clone().map(|n| format!(" · note: {n}"))}
                </p>
            </div>
            {(can_withdraw && scope.status == "approved").then(|| view! {
                <ActionForm action=withdraw>
                    <input type="hidden" name="request_id" value=scope.request_id.to_string()/>
                    <button type="submit" class=BUTTON_DANGER_LINK>"Withdraw"<span class="sr-only">{format!(" approval of {}", scope.scope)}</span></button>
                </ActionForm>
            })}
        </li>
    }
}

#[component]
fn RequestScopeForm(agent_id: Uuid, request: ServerAction<RequestAgentScope>) -> impl IntoView {
    let options = Resource::new(|| (), |_| get_agent_form_options());
    view! {
        <div class="border-t border-slate-200 px-6 py-4">
            {move || request.value().get().and_then(Result::err).map(|error| view! { <div class="mb-3"><ErrorNotice error/></div> })}
            <ActionForm action=request attr:class="flex flex-wrap items-end gap-3">
                <input type="hidden" name="agent_id" value=agent_id.to_string()/>
                <div>
                    <label for="request-scope" class=LABEL>"Request another scope"</label>
                    <Transition fallback=|| view! { <select id="request-scope" name="scope" class=format!("mt-1.5 w-56 {SELECT}")></select> }>
                        {move || Suspend::new(async move {
                            let scopes = options.await.map(|o| o.scopes).unwrap_or_default();
                            view! {
                                <select id="request-scope" name="scope" class=format!("mt-1.5 w-56 {SELECT}")>
                                    {scopes.into_iter().map(|s| view! { <option value=s.name.clone()>{format!("{} ({})", s.name, s.risk)}</option> }).collect_view()}
                                </select>
                            }
                        })}
                    </Transition>
                </div>
                <div class="min-w-64 flex-1">
                    <label for="request-reason" class=LABEL>"Why"</label>
                    <input id="request-reason" name="reason" maxlength="1000" class=format!("mt-1.5 {INPUT}")/>
                </div>
                <button type="submit" class=BUTTON_SECONDARY>"Request"</button>
            </ActionForm>
        </div>
    }
}

#[component]
fn RevokeDialog(
    agent_id: Uuid,
    name: String,
    revoke: ServerAction<RevokeAgent>,
    on_close: Callback<()>,
) -> impl IntoView {
    let impact = Resource::new(move || agent_id, preview_agent_revocation);
    let reason = RwSignal::new(String::new());
    view! {
        <Modal title="Revoke this agent?" on_close>
            <Transition fallback=Loading>
                {move || {
                    let name = name.clone();
                    Suspend::new(async move {
                    match impact.await {
                        Err(error) => view! { <div class="mt-4"><ErrorNotice error/></div> }.into_any(),
                        Ok(impact) => view! {
                            <div class="mt-3 space-y-2 text-sm text-slate-700" data-testid="revoke-impact">
                                <p>{format!("{} stops at once:", name)}</p>
                                <ul class="list-disc space-y-1 pl-5">
                                    <li>"its client credentials are refused;"</li>
                                    <li><strong>{format!("{} live token(s)", impact.live_tokens)}</strong> " become inactive at introspection, including tokens delegated to sub-agents;"</li>
                                    <li>{if impact.scopes.is_empty() { "it holds no approved scopes.".to_string() } else { format!("its approved scopes ({}) end with it.", impact.scopes.join(", ")) }}</li>
                                </ul>
                                <p class="text-xs text-slate-500">"This cannot be undone: register a new agent to restore access."</p>
                            </div>
                        }.into_any(),
                    }
                })}}
            </Transition>
            <div class="mt-4">
                <label for="revoke-reason" class=LABEL>"Reason (recorded in the audit trail)"</label>
                <input id="revoke-reason" maxlength="500" class=format!("mt-1.5 {INPUT}") on:input=move |ev| reason.set(event_target_value(&ev)) prop:value=reason/>
            </div>
            <div class="mt-6 flex justify-end gap-3">
                <button type="button" class=BUTTON_SECONDARY on:click=move |_| on_close.run(())>"Cancel"</button>
                <button
                    type="button"
                    class=BUTTON_DANGER
                    disabled=move || revoke.pending().get()
                    on:click=move |_| {
                        revoke.dispatch(RevokeAgent { agent_id, reason: reason.get_untracked() });
                        on_close.run(());
                    }
                >
                    "Revoke agent"
                </button>
            </div>
        </Modal>
    }
}

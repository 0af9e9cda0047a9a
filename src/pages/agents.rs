//! `/agents`: every agent with its owner, status, scopes and live tokens; search and filters
//! in the URL; registration in a dialog that shows the client secret once.

use crate::api::agents::{get_agent_form_options, list_agents, AgentFormOptions, RegisterAgent};
use crate::model::agents::{AgentCredentials, AgentRow};
use crate::model::Permission;
use crate::ui::layout::CurrentAdmin;
use crate::ui::{
    format_time, risk_tone, status_tone, Badge, CopyField, EmptyState, ErrorNotice, Loading, Modal, PageHeader, Tone,
    BUTTON_PRIMARY, BUTTON_SECONDARY, CARD, INPUT, LABEL, SELECT,
};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

#[component]
pub fn AgentsPage() -> impl IntoView {
    let CurrentAdmin(me) = expect_context::<CurrentAdmin>();
    let query = use_query_map();
    let param = move |name: &str| query.read().get(name).unwrap_or_default();
    let register = ServerAction::<RegisterAgent>::new();
    let agents = Resource::new(
        move || (param("search"), param("owner"), param("status"), param("scope"), register.version().get()),
        |(search, owner, status, scope, _)| list_agents(search, owner, status, scope),
    );
    let options = Resource::new(|| (), |_| get_agent_form_options());
    let dialog_open = RwSignal::new(false);

    view! {
        <Title text="Agents"/>
        <PageHeader title="Agents" description="The AI agents acting for people in your organization, and what each may do right now.">
            <Transition>
                {move || Suspend::new(async move {
                    let can_manage = matches!(me.await, Ok(Some(me)) if me.role.can(Permission::ManageAgents));
                    can_manage.then(|| view! {
                        <button type="button" class=BUTTON_PRIMARY aria-haspopup="dialog" on:click=move |_| dialog_open.set(true)>"Register agent"</button>
                    })
                })}
            </Transition>
        </PageHeader>

        <form method="get" action="/agents" class=format!("mb-6 grid grid-cols-1 gap-4 p-4 sm:grid-cols-5 {CARD}") role="search" aria-label="Filter agents">
            <div class="sm:col-span-2">
                <label for="agent-search" class=LABEL>"Search"</label>
                <input id="agent-search" name="search" type="search" placeholder="name, client id or owner" class=format!("mt-1.5 {INPUT}") prop:value=move || param("search")/>
            </div>
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    let options = options.await.ok();
                    let people = options.as_ref().map(|o| o.people.clone()).unwrap_or_default();
                    let scopes = options.map(|o| o.scopes).unwrap_or_default();
                    let owner = param("owner");
                    let scope = param("scope");
                    view! {
                        <div>
                            <label for="agent-owner" class=LABEL>"Owner"</label>
                            <select id="agent-owner" name="owner" class=format!("mt-1.5 {SELECT}")>
                                <option value="">"Anyone"</option>
                                {people.into_iter().map(|p| {
                                    let selected = p.id.to_string() == owner;
                                    view! { <option value=p.id.to_string() selected=selected>{p.display_name.clone()}</option> }
                                }).collect_view()}
                            </select>
                        </div>
                        <div>
                            <label for="agent-scope" class=LABEL>"Scope"</label>
                            <select id="agent-scope" name="scope" class=format!("mt-1.5 {SELECT}")>
                                <option value="">"Any scope"</option>
                                {scopes.into_iter().map(|s| {
                                    let selected = s.name == scope;
                                    view! { <option value=s.name.clone() selected=selected>{s.name.clone()}</option> }
                                }).collect_view()}
                            </select>
                        </div>
                    }
                })}
            </Transition>
            <div>
                <label for="agent-status" class=LABEL>"Status"</label>
                <select id="agent-status" name="status" class=format!("mt-1.5 {SELECT}")>
                    <option value="" selected=move || param("status").is_empty()>"Any status"</option>
                    <option value="active" selected=move || param("status") == "active">"Active"</option>
                    <option value="revoked" selected=move || param("status") == "revoked">"Revoked"</option>
                </select>
            </div>
            <div class="flex items-end gap-2 sm:col-span-5 sm:justify-end">
                <button type="submit" class=BUTTON_PRIMARY>"Apply filters"</button>
                <a href="/agents" class=BUTTON_SECONDARY>"Clear"</a>
            </div>
        </form>

        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                match agents.await {
                    Err(error) => view! { <ErrorNotice error/> }.into_any(),
                    Ok(rows) if rows.is_empty() => view! {
                        <EmptyState title="No agents here" message="Register an agent to give it an owner, credentials and the scopes it needs. Its scopes take effect once an approver approves them."/>
                    }.into_any(),
                    Ok(rows) => view! { <AgentTable rows/> }.into_any(),
                }
            })}
        </Transition>

        <Show when=move || dialog_open.get()>
            <Transition>
                {move || Suspend::new(async move {
                    let options = options.await;
                    let close = Callback::new(move |_| { dialog_open.set(false); register.value().set(None); });
                    match options {
                        Ok(options) => view! { <RegisterDialog register options on_close=close/> }.into_any(),
                        Err(error) => view! { <ErrorNotice error/> }.into_any(),
                    }
                })}
            </Transition>
        </Show>
    }
}

#[component]
fn AgentTable(rows: Vec<AgentRow>) -> impl IntoView {
    view! {
        <div class=format!("overflow-x-auto {CARD}")>
            <table class="min-w-full divide-y divide-slate-200 text-sm">
                <caption class="sr-only">"Agents"</caption>
                <thead class="bg-slate-50 text-left text-xs font-semibold uppercase tracking-wide text-slate-600">
                    <tr>
                        <th scope="col" class="px-4 py-3">"Agent"</th>
                        <th scope="col" class="px-4 py-3">"Owner"</th>
                        <th scope="col" class="px-4 py-3">"Status"</th>
                        <th scope="col" class="px-4 py-3">"Scopes"</th>
                        <th scope="col" class="px-4 py-3 text-right">"Live tokens"</th>
                        <th scope="col" class="px-4 py-3">"Last active"</th>
                    </tr>
                </thead>
                <tbody class="divide-y divide-slate-100" data-testid="agent-rows">
                    {rows.into_iter().map(|agent| view! {
                        <tr class="align-top">
                            <td class="px-4 py-3">
                                <a href=format!("/agents/{}", agent.id) class="font-medium text-indigo-700 hover:underline">{agent.name.clone()}</a>
                                <p class="font-mono text-xs text-slate-500">{agent.client_id.clone()}</p>
                            </td>
                            <td class="px-4 py-3">
                                <p class="text-slate-900">{agent.owner.display_name.clone()}</p>
                                <p class="text-xs text-slate-500">{agent.owner.email.clone()} {(!agent.owner.active).then_some(" · deactivated")}</p>
                            </td>
                            <td class="px-4 py-3"><Badge text=agent.status.clone() tone=status_tone(&agent.status)/></td>
                            <td class="px-4 py-3">
                                <div class="flex max-w-xs flex-wrap gap-1">
                                    {agent.scopes.iter().filter(|s| s.status == "approved" || s.status == "pending" || s.status == "expired").map(|s| {
                                        let tone = if s.in_mandate { Tone::Good } else { status_tone(&s.status) };
                                        let state = if s.blocked_by_ceiling {
                                            "blocked by ceiling"
                                        } else if s.status == "approved" {
                                            "not in mandate"
                                        } else {
                                            s.status.as_str()
                                        };
                                        let label = if s.in_mandate { s.scope.clone() } else { format!("{} ({state})", s.scope) };
                                        view! { <Badge text=label tone/> }
                                    }).collect_view()}
                                </div>
                            </td>
                            <td class="px-4 py-3 text-right font-mono">{agent.live_tokens}</td>
                            <td class="px-4 py-3 text-slate-700">{agent.last_active_at.map(format_time).unwrap_or_else(|| "never".into())}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}

#[component]
fn RegisterDialog(
    register: ServerAction<RegisterAgent>,
    options: AgentFormOptions,
    on_close: Callback<()>,
) -> impl IntoView {
    let AgentFormOptions { people, scopes } = options;
    view! {
        <Modal title="Register an agent" on_close>
            {move || match register.value().get() {
                Some(Ok(credentials)) => view! { <CredentialsShownOnce credentials on_close/> }.into_any(),
                other => {
                    let people = people.clone();
                    let scopes = scopes.clone();
                    view! {
                        <p class="mt-1 text-sm text-slate-600">"The agent acts for its owner. Requested scopes wait for an approver; nothing is granted until then."</p>
                        {other.and_then(Result::err).map(|error| view! { <div class="mt-4"><ErrorNotice error/></div> })}
                        <ActionForm action=register attr:class="mt-5 space-y-4">
                            <div>
                                <label for="agent-name" class=LABEL>"Name"</label>
                                <input id="agent-name" name="name" required maxlength="100" autofocus placeholder="Ledger reconciler" class=format!("mt-1.5 {INPUT}")/>
                            </div>
                            <div>
                                <label for="agent-description" class=LABEL>"What it does"</label>
                                <input id="agent-description" name="description" maxlength="1000" class=format!("mt-1.5 {INPUT}")/>
                            </div>
                            <div>
                                <label for="agent-owner-id" class=LABEL>"Owner (the person it acts for)"</label>
                                <select id="agent-owner-id" name="owner_id" required class=format!("mt-1.5 {SELECT}")>
                                    {people.into_iter().map(|p| view! { <option value=p.id.to_string()>{format!("{} <{}>", p.display_name, p.email)}</option> }).collect_view()}
                                </select>
                            </div>
                            <fieldset>
                                <legend class=LABEL>"Scopes it requests"</legend>
                                {if scopes.is_empty() {
                                    view! { <p class="mt-1 text-sm text-slate-600">"The catalog is empty: add scopes in Settings → Scopes."</p> }.into_any()
                                } else {
                                    view! {
                                        <div class="mt-2 max-h-48 space-y-1 overflow-y-auto rounded-md p-1 ring-1 ring-slate-200">
                                            {scopes.into_iter().enumerate().map(|(i, s)| view! {
                                                <label class="flex cursor-pointer items-start gap-2 rounded p-1.5 hover:bg-slate-50">
                                                    <input type="checkbox" name=format!("scopes[{i}]") value=s.name.clone() class="mt-0.5"/>
                                                    <span class="text-sm">
                                                        <span class="font-mono text-slate-900">{s.name.clone()}</span> " " <Badge text=s.risk.clone() tone=risk_tone(&s.risk)/>
                                                        <span class="block text-xs text-slate-600">{s.description.clone()}</span>
                                                    </span>
                                                </label>
                                            }).collect_view()}
                                        </div>
                                    }.into_any()
                                }}
                            </fieldset>
                            <div>
                                <label for="agent-reason" class=LABEL>"Why it needs them"</label>
                                <input id="agent-reason" name="reason" maxlength="1000" class=format!("mt-1.5 {INPUT}")/>
                            </div>
                            <div class="flex justify-end gap-3 pt-2">
                                <button type="button" class=BUTTON_SECONDARY on:click=move |_| on_close.run(())>"Cancel"</button>
                                <button type="submit" class=BUTTON_PRIMARY disabled=move || register.pending().get()>"Register agent"</button>
                            </div>
                        </ActionForm>
                    }.into_any()
                }
            }}
        </Modal>
    }
}

/// Client credentials right after registration or rotation: the only time the secret is shown.
#[component]
pub fn CredentialsShownOnce(credentials: AgentCredentials, on_close: Callback<()>) -> impl IntoView {
    view! {
        <div class="mt-4 space-y-4" data-testid="agent-credentials">
            <div role="status" class="rounded-md bg-amber-50 p-3 text-sm text-amber-900 ring-1 ring-inset ring-amber-200">
                "Copy the client secret now and store it in the agent's secret store: it is shown only once. "
                "Mandate keeps only a hash of it."
            </div>
            <CopyField label="Client id" value=credentials.client_id.clone() testid="client-id"/>
            <CopyField label="Client secret" value=credentials.client_secret.clone() testid="client-secret"/>
            <div class="flex justify-end gap-3 pt-2">
                <a href=format!("/agents/{}", credentials.agent_id) class=BUTTON_SECONDARY>"Open agent"</a>
                <button type="button" class=BUTTON_PRIMARY on:click=move |_| on_close.run(())>"Done"</button>
            </div>
        </div>
    }
}

//! `/approvals`: scope requests waiting for a decision — who asks, for whom, why — with approve
//! (optionally until a date) and deny (with a reason); and the recent decisions.

use crate::api::approvals::{list_scope_requests, ApproveScopeRequest, DenyScopeRequest};
use crate::model::agents::ScopeRequestRow;
use crate::model::session::Me;
use crate::model::Permission;
use crate::ui::layout::CurrentAdmin;
use crate::ui::{
    format_time, risk_tone, status_tone, Badge, EmptyState, ErrorNotice, Loading, PageHeader, BUTTON_DANGER_LINK,
    BUTTON_PRIMARY, BUTTON_SECONDARY, CARD, INPUT, LABEL,
};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

const TABS: [(&str, &str); 3] = [("pending", "Pending"), ("approved", "Approved"), ("denied", "Denied")];

#[component]
pub fn ApprovalsPage() -> impl IntoView {
    let CurrentAdmin(me) = expect_context::<CurrentAdmin>();
    let query = use_query_map();
    let status = move || query.read().get("status").unwrap_or_else(|| "pending".to_string());
    let approve = ServerAction::<ApproveScopeRequest>::new();
    let deny = ServerAction::<DenyScopeRequest>::new();
    let requests = Resource::new(
        move || (status(), approve.version().get(), deny.version().get()),
        |(status, ..)| list_scope_requests(status),
    );
    view! {
        <Title text="Approvals"/>
        <PageHeader title="Approvals" description="Agents asking for scopes. Nothing an agent requests works until someone here approves it."/>
        <nav class="mb-6 border-b border-slate-200" aria-label="Request status">
            <ul class="-mb-px flex gap-6 text-sm" role="list">
                {TABS.into_iter().map(|(value, label)| view! {
                    <li>
                        <a
                            href=format!("/approvals?status={value}")
                            aria-current=move || (status() == value).then_some("page")
                            class="inline-block border-b-2 border-transparent pb-3 text-slate-600 hover:text-slate-900 aria-[current=page]:border-indigo-600 aria-[current=page]:font-semibold aria-[current=page]:text-indigo-700"
                        >{label}</a>
                    </li>
                }).collect_view()}
            </ul>
        </nav>
        <div class="mb-4 space-y-3">
            {move || [approve.value().get().and_then(Result::err), deny.value().get().and_then(Result::err)]
                .into_iter().flatten().map(|error| view! { <ErrorNotice error/> }).collect_view()}
        </div>
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                let me = me.await.ok().flatten();
                match requests.await {
                    Err(error) => view! { <ErrorNotice error/> }.into_any(),
                    Ok(rows) if rows.is_empty() => view! {
                        <EmptyState title="Nothing here" message="When an agent asks for a scope, the request appears here for an approver."/>
                    }.into_any(),
                    Ok(rows) => view! {
                        <ul class="space-y-4" role="list" data-testid="scope-requests">
                            {rows.into_iter().map(|row| view! { <RequestCard row me=me.clone() approve deny/> }).collect_view()}
                        </ul>
                    }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn RequestCard(
    row: ScopeRequestRow,
    me: Option<Me>,
    approve: ServerAction<ApproveScopeRequest>,
    deny: ServerAction<DenyScopeRequest>,
) -> impl IntoView {
    let can_decide = row.status == "pending" && me.as_ref().is_some_and(|m| m.role.can(Permission::DecideApprovals));
    let own_high_risk = row.risk == "high" && me.as_ref().is_some_and(|m| m.person.id == row.owner.id);
    let id = row.id.to_string();
    view! {
        <li class=format!("p-5 {CARD}")>
            <div class="flex flex-wrap items-start justify-between gap-4">
                <div class="min-w-0">
                    <p class="text-sm text-slate-900">
                        <a href=format!("/agents/{}", row.agent_id) class="font-semibold text-indigo-700 hover:underline">{row.agent_name.clone()}</a>
                        " asks for " <span class="font-mono font-medium">{row.scope.clone()}</span> " "
                        <Badge text=format!("{} risk", row.risk) tone=risk_tone(&row.risk)/>
                        {(row.status != "pending").then(|| view! { " " <Badge text=row.status.clone() tone=status_tone(&row.status)/> })}
                    </p>
                    <p class="mt-1 text-sm text-slate-600">
                        "Acting for " <strong>{row.owner.display_name.clone()}</strong> " (" {row.owner.email.clone()} ")"
                        {(!row.scope_description.is_empty()).then(|| format!(" · {}", row.scope_description))}
                    </p>
                    <p class="mt-1 text-sm text-slate-700">
                        {if row.reason.is_empty() { "No reason given.".to_string() } else { format!("Why: {}", row.reason) }}
                    </p>
                    <p class="mt-1 text-xs text-slate-500">"Requested by " {row.requested_by.clone()} " on " {format_time(row.requested_at)}</p>
                    {row.blocked_by_ceiling.then(|| view! {
                        <p class="mt-2 text-xs font-medium text-amber-800">"The owner's groups do not allow this scope: approving it will not widen the agent's mandate."</p>
                    })}
                </div>
                {can_decide.then(|| if own_high_risk {
                    view! { <p class="max-w-xs text-xs text-slate-600">"This high-risk scope is for your own agent: another approver must decide."</p> }.into_any()
                } else {
                    let deny_id = id.clone();
                    view! {
                        <div class="flex flex-col items-end gap-2">
                            <ActionForm action=approve attr:class="flex items-end gap-2">
                                <input type="hidden" name="request_id" value=id.clone()/>
                                <div>
                                    <label for=format!("until-{id}") class="block text-xs text-slate-600">"Until (optional)"</label>
                                    <input id=format!("until-{id}") name="until" type="date" class=format!("mt-1 w-40 {INPUT}")/>
                                </div>
                                <button type="submit" class=BUTTON_PRIMARY>"Approve"<span class="sr-only">{format!(" {} for {}", row.scope, row.agent_name)}</span></button>
                            </ActionForm>
                            <details class="text-right">
                                <summary class=format!("cursor-pointer list-none {BUTTON_DANGER_LINK}")>"Deny…"</summary>
                                <ActionForm action=deny attr:class="mt-2 flex items-end gap-2">
                                    <input type="hidden" name="request_id" value=deny_id.clone()/>
                                    <div>
                                        <label for=format!("deny-{deny_id}") class=LABEL>"Reason"</label>
                                        <input id=format!("deny-{deny_id}") name="reason" required maxlength="500" class=format!("mt-1 w-56 {INPUT}")/>
                                    </div>
                                    <button type="submit" class=BUTTON_SECONDARY>"Deny"</button>
                                </ActionForm>
                            </details>
                        </div>
                    }.into_any()
                })}
            </div>
        </li>
    }
}

//! `/directories`: the people of the organization (agent owners), with deactivation and
//! "revoke every agent of this person" — each confirmed after showing what it ends. Directory
//! sync over SCIM comes next and will feed this list.

use crate::api::people::{list_people, RevokePersonAgents, SetPersonActive};
use crate::model::agents::PersonRow;
use crate::model::Permission;
use crate::ui::layout::CurrentAdmin;
use crate::ui::{
    Badge, EmptyState, ErrorNotice, Loading, Notice, PageHeader, Tone, BUTTON_DANGER_LINK, BUTTON_SECONDARY, CARD,
};
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn DirectoriesPage() -> impl IntoView {
    let CurrentAdmin(me) = expect_context::<CurrentAdmin>();
    let set_active = ServerAction::<SetPersonActive>::new();
    let revoke_all = ServerAction::<RevokePersonAgents>::new();
    let people = Resource::new(move || (set_active.version().get(), revoke_all.version().get()), |_| list_people());
    view! {
        <Title text="Directories"/>
        <PageHeader title="Directories" description="The people your agents act for. When someone leaves, deactivate them: every agent acting for them stops at once."/>
        <div role="note" class="mb-6 rounded-md bg-indigo-50 p-4 text-sm text-indigo-900 ring-1 ring-inset ring-indigo-200">
            "Directory sync over SCIM 2.0 (Okta, Entra ID, Google, JumpCloud) is coming next: people and groups will then flow in, and leavers are deactivated automatically."
        </div>
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
                let can_manage = me.as_ref().is_some_and(|me| me.role.can(Permission::ManageAgents));
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
            {can_manage.then(|| view! {
                <div class="flex flex-wrap items-center gap-4">
                    {(row.active_agents > 0).then(|| {
                        let id = id.clone();
                        view! {
                            <details class="text-right">
                                <summary class=format!("cursor-pointer list-none {BUTTON_DANGER_LINK}")>"Revoke all agents…"</summary>
                                <div class="mt-2 max-w-xs rounded-md bg-red-50 p-3 text-left text-xs text-red-900 ring-1 ring-red-200">
                                    <p>{format!("This revokes {} agent(s) acting for {} and ends {} live token(s) at once.", row.active_agents, person.display_name, row.live_tokens)}</p>
                                    <ActionForm action=revoke_all attr:class="mt-2">
                                        <input type="hidden" name="person_id" value=id/>
                                        <button type="submit" class=BUTTON_SECONDARY>"Revoke all agents"</button>
                                    </ActionForm>
                                </div>
                            </details>
                        }
                    })}
                    {(!is_me).then(|| view! {
                    <ActionForm action=set_active>
                        <input type="hidden" name="person_id" value=id.clone()/>
                        <input type="hidden" name="active" value=(!person.active).to_string()/>
                        <button type="submit" class=if person.active { BUTTON_DANGER_LINK } else { BUTTON_SECONDARY }>
                            {if person.active { "Deactivate" } else { "Reactivate" }}
                            <span class="sr-only">{format!(" {}", person.email)}</span>
                        </button>
                    </ActionForm>
                    })}
                </div>
            })}
        </li>
    }
}

//! Settings → Scopes: the catalog agents request from (name, description, risk, longest token
//! lifetime) and each scope's group ceiling.

use crate::api::scopes::{get_scope_catalog, CreateScope, SetScopeCeiling};
use crate::model::agents::{GroupRef, ScopeRow};
use crate::model::Permission;
use crate::ui::layout::CurrentAdmin;
use crate::ui::{
    risk_tone, Badge, EmptyState, ErrorNotice, Loading, Notice, BUTTON_PRIMARY, BUTTON_SECONDARY, CARD, INPUT, LABEL,
    SELECT,
};
use leptos::prelude::*;

#[component]
pub fn ScopesTab() -> impl IntoView {
    let CurrentAdmin(me) = expect_context::<CurrentAdmin>();
    let create = ServerAction::<CreateScope>::new();
    let ceiling = ServerAction::<SetScopeCeiling>::new();
    let catalog = Resource::new(move || (create.version().get(), ceiling.version().get()), |_| get_scope_catalog());
    view! {
        <div class="mb-4 space-y-3">
            {move || create.value().get().map(|r| match r {
                Ok(_) => view! { <Notice message="Scope added to the catalog."/> }.into_any(),
                Err(error) => view! { <ErrorNotice error/> }.into_any(),
            })}
            {move || ceiling.value().get().map(|r| match r {
                Ok(()) => view! { <Notice message="Ceiling saved. Live tokens follow it at once."/> }.into_any(),
                Err(error) => view! { <ErrorNotice error/> }.into_any(),
            })}
        </div>
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                let can_manage = matches!(me.await, Ok(Some(me)) if me.role.can(Permission::ManageScopes));
                match catalog.await {
                    Err(error) => view! { <ErrorNotice error/> }.into_any(),
                    Ok(catalog) => view! {
                        {can_manage.then(|| view! { <NewScopeForm create/> })}
                        {if catalog.scopes.is_empty() {
                            view! { <EmptyState title="The catalog is empty" message="Add the permissions your agents may ask for, such as crm.read or mail.send."/> }.into_any()
                        } else {
                            let groups = catalog.groups.clone();
                            view! {
                                <section class=format!("mt-6 {CARD}") aria-labelledby="catalog-heading">
                                    <h2 id="catalog-heading" class="border-b border-slate-200 px-6 py-4 text-base font-semibold text-slate-900">"Catalog"</h2>
                                    <ul class="divide-y divide-slate-100" role="list" data-testid="scope-catalog">
                                        {catalog.scopes.into_iter().map(|scope| view! { <ScopeItem scope groups=groups.clone() can_manage ceiling/> }).collect_view()}
                                    </ul>
                                </section>
                            }.into_any()
                        }}
                    }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn NewScopeForm(create: ServerAction<CreateScope>) -> impl IntoView {
    view! {
        <section class=format!("p-6 {CARD}") aria-labelledby="new-scope-heading">
            <h2 id="new-scope-heading" class="text-base font-semibold text-slate-900">"Add a scope"</h2>
            <ActionForm action=create attr:class="mt-4 grid grid-cols-1 gap-4 sm:grid-cols-6">
                <div class="sm:col-span-2">
                    <label for="scope-name" class=LABEL>"Name"</label>
                    <input id="scope-name" name="name" required maxlength="100" placeholder="crm.read" pattern="[a-z][a-z0-9_\\-]*(\\.[a-z0-9_\\-]+)*" class=format!("mt-1.5 font-mono {INPUT}")/>
                </div>
                <div class="sm:col-span-4">
                    <label for="scope-description" class=LABEL>"Description"</label>
                    <input id="scope-description" name="description" maxlength="500" placeholder="Read customer records in the CRM" class=format!("mt-1.5 {INPUT}")/>
                </div>
                <div class="sm:col-span-2">
                    <label for="scope-risk" class=LABEL>"Risk"</label>
                    <select id="scope-risk" name="risk" class=format!("mt-1.5 {SELECT}")>
                        <option value="low">"Low"</option>
                        <option value="medium">"Medium"</option>
                        <option value="high">"High (owner cannot self-approve)"</option>
                    </select>
                </div>
                <div class="sm:col-span-2">
                    <label for="scope-lifetime" class=LABEL>"Longest token lifetime (s)"</label>
                    <input id="scope-lifetime" name="max_token_lifetime_seconds" type="number" min="30" max="300" value="300" required class=format!("mt-1.5 {INPUT}")/>
                </div>
                <div class="flex items-end sm:col-span-2">
                    <button type="submit" class=BUTTON_PRIMARY>"Add scope"</button>
                </div>
            </ActionForm>
        </section>
    }
}

#[component]
fn ScopeItem(
    scope: ScopeRow,
    groups: Vec<GroupRef>,
    can_manage: bool,
    ceiling: ServerAction<SetScopeCeiling>,
) -> impl IntoView {
    let ceiling_text = if scope.ceiling_groups.is_empty() {
        "Open to everyone".to_string()
    } else {
        format!(
            "Only members of {}",
            scope.ceiling_groups.iter().map(|g| g.display_name.as_str()).collect::<Vec<_>>().join(", ")
        )
    };
    let current: Vec<_> = scope.ceiling_groups.iter().map(|g| g.id).collect();
    view! {
        <li class="flex flex-wrap items-start justify-between gap-4 px-6 py-4">
            <div>
                <p class="text-sm">
                    <span class="font-mono font-medium text-slate-900">{scope.name.clone()}</span> " "
                    <Badge text=format!("{} risk", scope.risk) tone=risk_tone(&scope.risk)/>
                </p>
                <p class="mt-1 text-sm text-slate-600">{scope.description.clone()}</p>
                <p class="mt-1 text-xs text-slate-500">
                    {format!("Tokens live at most {} s · {} agent(s) hold it · {}", scope.max_token_lifetime_seconds, scope.agents_holding, ceiling_text)}
                </p>
            </div>
            {(can_manage && !groups.is_empty()).then(|| view! {
                <details class="text-right">
                    <summary class=format!("cursor-pointer list-none {BUTTON_SECONDARY}")>"Group ceiling…"</summary>
                    <ActionForm action=ceiling attr:class="mt-2 space-y-1 rounded-md p-3 text-left ring-1 ring-slate-200">
                        <input type="hidden" name="scope_id" value=scope.id.to_string()/>
                        <p class="text-xs text-slate-600">"Who may hold it (none checked: everyone)"</p>
                        {groups.into_iter().enumerate().map(|(i, g)| view! {
                            <label class="flex items-center gap-2 text-sm">
                                <input type="checkbox" name=format!("group_ids[{i}]") value=g.id.to_string() checked=current.contains(&g.id)/>
                                {g.display_name.clone()}
                            </label>
                        }).collect_view()}
                        <button type="submit" class=format!("mt-2 {BUTTON_PRIMARY}")>"Save ceiling"</button>
                    </ActionForm>
                </details>
            })}
        </li>
    }
}

//! Settings → Scopes: the catalog agents request from (name, description, risk, longest token
//! lifetime) and each scope's group ceiling.

use crate::api::scopes::{get_scope_catalog, CreateScope, SetScopeCeiling, SetScopeRisk};
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
    let risk = ServerAction::<SetScopeRisk>::new();
    let catalog = Resource::new(
        move || (create.version().get(), ceiling.version().get(), risk.version().get()),
        |_| get_scope_catalog(),
    );
    view! {
        <div class="mb-4 space-y-3">
            {move || create.value().get().map(|r| match r {
                Ok(_) => view! { <Notice message="Scope added to the catalog."/> }.into_any(),
                Err(error) => view! { <ErrorNotice error/> }.into_any(),
            })}
            {move || risk.value().get().map(|r| match r {
                Ok(()) => view! { <Notice message="Risk level changed."/> }.into_any(),
                Err(error) => view! { <ErrorNotice error/> }.into_any(),
            })}
            {move || ceiling.value().get().map(|r| match r {
                Ok(()) => view! { <Notice message="Ceiling saved. Live tokens follow it at once."/> }.into_any(),
                Err(error) => view! { <ErrorNotice error/> }.into_any(),
            })}
        </div>
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                let role = me.await.ok().flatten().map(|me| me.role);
                let can_manage = role.is_some_and(|role| role.can(Permission::ManageScopes));
                let can_change_risk = role.is_some_and(|role| role.can(Permission::ChangeScopeRisk));
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
                                        {catalog.scopes.into_iter().map(|scope| view! { <ScopeItem scope groups=groups.clone() can_manage can_change_risk ceiling risk/> }).collect_view()}
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
                        <option value="high">"High (a second person must approve)"</option>
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
    can_change_risk: bool,
    ceiling: ServerAction<SetScopeCeiling>,
    risk: ServerAction<SetScopeRisk>,
) -> impl IntoView {
    let ceiling_text = if scope.ceiling_groups.is_empty() {
        "Open to everyone".to_string()
    } else {
        format!(
            "Only members of {}",
            scope
                .ceiling_groups
                .iter()
                .map(|g| if g.deleted { format!("{} (group deleted)", g.display_name) } else { g.display_name.clone() })
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let current: Vec<_> = scope.ceiling_groups.iter().map(|g| g.id).collect();
    let deleted_groups: Vec<_> =
        scope.ceiling_groups.iter().filter(|g| g.deleted).map(|g| g.display_name.clone()).collect();
    let can_change = can_manage && (!groups.is_empty() || !current.is_empty());
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
            {(!deleted_groups.is_empty()).then(|| view! {
                <p class="mt-1 text-xs font-medium text-red-700" data-testid="ceiling-group-deleted">
                    {format!("Group deleted: {}. Nobody may hold this scope until an admin changes the ceiling.", deleted_groups.join(", "))}
                </p>
            })}
            {can_change_risk.then(|| {
                let current_risk = scope.risk.clone();
                view! {
                    <details class="text-right">
                        <summary class=format!("cursor-pointer list-none {BUTTON_SECONDARY}")>"Risk…"</summary>
                        <ActionForm action=risk attr:class="mt-2 space-y-2 rounded-md p-3 text-left ring-1 ring-slate-200">
                            <input type="hidden" name="scope_id" value=scope.id.to_string()/>
                            <label for=format!("risk-{}", scope.id) class=LABEL>"Risk level"</label>
                            <select id=format!("risk-{}", scope.id) name="risk" class=SELECT>
                                {["low", "medium", "high"].into_iter().map(|level| view! {
                                    <option value=level selected=current_risk == level>{level}</option>
                                }).collect_view()}
                            </select>
                            <p class="text-xs text-slate-600">"You will not be able to approve this scope's high-risk requests yourself."</p>
                            <button type="submit" class=BUTTON_PRIMARY>"Change risk"</button>
                        </ActionForm>
                    </details>
                }
            })}
            {can_change.then(|| view! {
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

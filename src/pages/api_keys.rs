//! Settings → API keys: the keys the platform API and resource servers use (owners manage them).

use crate::api::api_keys::{list_api_keys, CreateApiKey, RevokeApiKey};
use crate::model::api_keys::ApiKeyScope;
use crate::model::Permission;
use crate::ui::layout::CurrentAdmin;
use crate::ui::{
    format_time, Badge, CopyField, EmptyState, ErrorNotice, Loading, Tone, BUTTON_DANGER_LINK, BUTTON_PRIMARY, CARD,
    INPUT, LABEL,
};
use leptos::prelude::*;

#[component]
pub fn ApiKeysTab() -> impl IntoView {
    let CurrentAdmin(me) = expect_context::<CurrentAdmin>();
    let create = ServerAction::<CreateApiKey>::new();
    let revoke = ServerAction::<RevokeApiKey>::new();
    let keys = Resource::new(move || (create.version().get(), revoke.version().get()), |_| list_api_keys());
    view! {
        <div class="mb-4 space-y-3">
            {move || create.value().get().map(|result| match result {
                Ok(key) => view! {
                    <div class=format!("space-y-3 p-4 {CARD}") data-testid="api-key-created">
                        <p class="text-sm text-amber-900">"Copy the key now: it is shown only once. Mandate keeps only a hash of it."</p>
                        <CopyField label="API key" value=key testid="api-key"/>
                    </div>
                }.into_any(),
                Err(error) => view! { <ErrorNotice error/> }.into_any(),
            })}
            {move || revoke.value().get().and_then(Result::err).map(|error| view! { <ErrorNotice error/> })}
        </div>
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                let can_manage = matches!(me.await, Ok(Some(me)) if me.role.can(Permission::ManageApiKeys));
                match keys.await {
                    Err(error) => view! { <ErrorNotice error/> }.into_any(),
                    Ok(keys) => view! {
                        {can_manage.then(|| view! {
                            <section class=format!("mb-6 p-6 {CARD}") aria-labelledby="new-key-heading">
                                <h2 id="new-key-heading" class="text-base font-semibold text-slate-900">"Create an API key"</h2>
                                <p class="mt-1 text-sm text-slate-600">"For the platform API (/api/v1) and for resource servers that introspect tokens. Give each key only what it needs."</p>
                                <ActionForm action=create attr:class="mt-4 space-y-4">
                                    <div class="flex flex-wrap items-end gap-3">
                                        <div class="min-w-64 flex-1">
                                            <label for="key-name" class=LABEL>"Name"</label>
                                            <input id="key-name" name="name" required maxlength="100" placeholder="billing-service" class=format!("mt-1.5 {INPUT}")/>
                                        </div>
                                        <div class="w-40">
                                            <label for="key-expiry" class=LABEL>"Expires in (days)"</label>
                                            <input id="key-expiry" name="expires_in_days" type="number" min="0" max="3650" value="90" class=format!("mt-1.5 {INPUT}")/>
                                        </div>
                                    </div>
                                    <fieldset data-testid="api-key-scopes">
                                        <legend class=LABEL>"Scopes (the default is a resource server's)"</legend>
                                        <div class="mt-2 grid grid-cols-1 gap-2 sm:grid-cols-2">
                                            {ApiKeyScope::ALL.into_iter().enumerate().map(|(i, scope)| view! {
                                                <label class="flex items-start gap-2 text-sm">
                                                    <input type="checkbox" class="mt-1" name=format!("scopes[{i}]") value=scope.as_str() checked=ApiKeyScope::DEFAULT.contains(&scope)/>
                                                    <span><span class="font-mono">{scope.as_str()}</span><span class="block text-xs text-slate-500">{scope.description()}</span></span>
                                                </label>
                                            }).collect_view()}
                                        </div>
                                    </fieldset>
                                    <button type="submit" class=BUTTON_PRIMARY>"Create key"</button>
                                </ActionForm>
                            </section>
                        })}
                        {if keys.is_empty() {
                            view! { <EmptyState title="No API keys" message="Keys authenticate the platform API and token introspection for your organization."/> }.into_any()
                        } else {
                            view! {
                                <ul class=format!("divide-y divide-slate-100 {CARD}") role="list" data-testid="api-keys">
                                    {keys.into_iter().map(|key| {
                                        let broad = key.revoked_at.is_none() && key.holds_every_scope();
                                        let scopes = key.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ");
                                        view! {
                                        <li class="flex flex-wrap items-center justify-between gap-4 px-6 py-4">
                                            <div>
                                                <p class="text-sm font-medium text-slate-900">{key.name.clone()} " "
                                                    {key.revoked_at.map(|_| view! { <Badge text="revoked" tone=Tone::Bad/> })}</p>
                                                <p class="text-xs text-slate-500">
                                                    <span class="font-mono">{format!("{}…", key.key_prefix)}</span>
                                                    {format!(" · created {}", format_time(key.created_at))}
                                                    {key.last_used_at.map(|at| format!(" · last used {}", format_time(at))).unwrap_or_else(|| " · never used".into())}
                                                    {key.expires_at.map(|at| format!(" · expires {}", format_time(at))).unwrap_or_else(|| " · never expires".into())}
                                                </p>
                                                <p class="mt-1 font-mono text-xs text-slate-600" data-testid="api-key-scope-list">{scopes}</p>
                                                {broad.then(|| view! {
                                                    <p class="mt-1 text-xs font-medium text-amber-800" data-testid="api-key-broad">
                                                        "This key holds every scope (it predates scopes). Create a narrower key for what it does, then revoke this one."
                                                    </p>
                                                })}
                                            </div>
                                            {(can_manage && key.revoked_at.is_none()).then(|| view! {
                                                <ActionForm action=revoke>
                                                    <input type="hidden" name="key_id" value=key.id.to_string()/>
                                                    <button type="submit" class=BUTTON_DANGER_LINK>"Revoke"<span class="sr-only">{format!(" the key {}", key.name)}</span></button>
                                                </ActionForm>
                                            })}
                                        </li>
                                    }}).collect_view()}
                                </ul>
                            }.into_any()
                        }}
                    }.into_any(),
                }
            })}
        </Transition>
    }
}

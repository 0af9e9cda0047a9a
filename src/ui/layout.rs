//! The portal frame: sidebar navigation, the organization and signed-in admin, sign-out, and
//! the page in the middle. Makes the signed-in admin available to pages as `CurrentAdmin`.

use super::icons::Icon;
use super::{Badge, ErrorNotice, Tone};
use crate::api::session::get_me;
use crate::error::AppError;
use crate::model::session::Me;
use leptos::prelude::*;
use leptos_router::components::{Outlet, Redirect, A};

/// The signed-in admin, for pages that adapt to the role.
#[derive(Clone, Copy)]
pub struct CurrentAdmin(pub Resource<Result<Option<Me>, AppError>>);

const NAV: [(&str, &str, &str); 7] = [
    ("/", "Dashboard", "dashboard"),
    ("/connections", "Connections", "connections"),
    ("/directories", "Directories", "directories"),
    ("/agents", "Agents", "agents"),
    ("/approvals", "Approvals", "approvals"),
    ("/audit", "Audit", "audit"),
    ("/settings", "Settings", "settings"),
];

#[component]
pub fn PortalLayout() -> impl IntoView {
    let me = Resource::new(|| (), |_| get_me());
    provide_context(CurrentAdmin(me));

    view! {
        <a href="#main" class="sr-only focus:not-sr-only focus:absolute focus:left-4 focus:top-4 focus:z-50 focus:rounded focus:bg-white focus:px-3 focus:py-2 focus:text-sm focus:shadow">
            "Skip to content"
        </a>
        <div class="flex min-h-full">
            <aside class="hidden w-64 shrink-0 flex-col bg-slate-900 md:flex" aria-label="Main">
                <div class="flex h-16 items-center gap-2 px-6 text-white">
                    <Icon name="shield" class="h-7 w-7 text-indigo-400"/>
                    <span class="text-lg font-semibold tracking-tight">"Mandate"</span>
                </div>
                <nav class="flex-1 px-3 py-4">
                    <ul class="space-y-1" role="list">
                        {NAV
                            .into_iter()
                            .map(|(href, label, icon)| {
                                view! {
                                    <li>
                                        <A
                                            href=href
                                            exact=href == "/"
                                            attr:class="group flex items-center gap-3 rounded-md px-3 py-2 text-sm font-medium text-slate-300 hover:bg-slate-800 hover:text-white focus-visible:outline focus-visible:outline-2 focus-visible:outline-indigo-400 aria-[current=page]:bg-slate-800 aria-[current=page]:text-white"
                                        >
                                            <Icon name=icon/>
                                            {label}
                                        </A>
                                    </li>
                                }
                            })
                            .collect_view()}
                    </ul>
                </nav>
                <p class="px-6 py-4 text-xs text-slate-400">"Identity control plane for AI agents"</p>
            </aside>
            <div class="flex min-w-0 flex-1 flex-col">
                <header class="flex h-16 items-center justify-between gap-4 border-b border-slate-200 bg-white px-4 sm:px-8">
                    <nav class="flex gap-3 overflow-x-auto text-sm md:hidden" aria-label="Main (compact)">
                        {NAV.into_iter().map(|(href, label, _)| view! { <A href=href exact=href == "/" attr:class="whitespace-nowrap text-slate-700 aria-[current=page]:font-semibold aria-[current=page]:text-indigo-700">{label}</A> }).collect_view()}
                    </nav>
                    <Transition fallback=|| view! { <span class="text-sm text-slate-500">"…"</span> }>
                        {move || Suspend::new(async move {
                            match me.await {
                                Ok(Some(me)) => view! { <AdminMenu me/> }.into_any(),
                                Ok(None) => view! { <Redirect path="/login"/> }.into_any(),
                                Err(error) => view! { <ErrorNotice error/> }.into_any(),
                            }
                        })}
                    </Transition>
                </header>
                <main id="main" class="flex-1 px-4 py-8 sm:px-8">
                    <div class="mx-auto max-w-6xl">
                        <Outlet/>
                    </div>
                </main>
            </div>
        </div>
    }
}

#[component]
fn AdminMenu(me: Me) -> impl IntoView {
    view! {
        <div class="ml-auto flex items-center gap-4">
            <div class="hidden text-right sm:block">
                <p class="text-sm font-medium text-slate-900" data-testid="org-name">{me.organization.name.clone()}</p>
                <p class="text-xs text-slate-600">{me.person.email.clone()}</p>
            </div>
            <Badge text=me.role.label() tone=Tone::Accent/>
            <form method="post" action="/auth/logout">
                <button type="submit" class=super::BUTTON_SECONDARY>"Sign out"</button>
            </form>
        </div>
    }
}

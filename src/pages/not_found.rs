//! Any unknown path: a 404 page with the request id.

use leptos::prelude::*;
use leptos_meta::Title;

/// The request id of the current request, read on the server and carried to the browser.
pub fn request_id_resource() -> OnceResource<Option<String>> {
    OnceResource::new(async move {
        #[cfg(feature = "ssr")]
        {
            use_context::<http::request::Parts>()
                .and_then(|parts| parts.headers.get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_string))
        }
        #[cfg(not(feature = "ssr"))]
        {
            None
        }
    })
}

#[component]
pub fn NotFoundPage() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(options) = use_context::<leptos_axum::ResponseOptions>() {
        options.set_status(http::StatusCode::NOT_FOUND);
    }
    let request_id = request_id_resource();
    view! {
        <Title text="Not found"/>
        <main class="flex min-h-full flex-col items-center justify-center px-6 py-24 text-center">
            <p class="text-sm font-semibold text-indigo-600">"404"</p>
            <h1 class="mt-2 text-3xl font-semibold tracking-tight">"Page not found"</h1>
            <p class="mt-3 text-sm text-slate-600">"The address may be mistyped, or the page moved."</p>
            <a href="/" class="mt-6 text-sm font-semibold text-indigo-700 hover:underline">"Back to the dashboard"</a>
            <Suspense>
                {move || Suspend::new(async move {
                    request_id.await.map(|id| view! { <p class="mt-8 font-mono text-xs text-slate-500">"Request id: " {id}</p> })
                })}
            </Suspense>
        </main>
    }
}

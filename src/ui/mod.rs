//! Presentational building blocks shared by every page: one look for buttons, inputs, cards,
//! badges, empty states and errors.

pub mod directory_setup;
pub mod icons;
pub mod layout;

use crate::error::{AppError, ErrorKind};
use leptos::prelude::*;
use time::OffsetDateTime;

pub const BUTTON_PRIMARY: &str = "inline-flex items-center justify-center gap-2 rounded-md bg-indigo-600 px-3.5 py-2 text-sm font-semibold text-white shadow-sm hover:bg-indigo-500 focus-visible:outline focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-indigo-600 disabled:opacity-60 disabled:cursor-not-allowed";
pub const BUTTON_SECONDARY: &str = "inline-flex items-center justify-center gap-2 rounded-md bg-white px-3 py-2 text-sm font-semibold text-slate-900 shadow-sm ring-1 ring-inset ring-slate-300 hover:bg-slate-50 focus-visible:outline focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-indigo-600 disabled:opacity-60";
pub const BUTTON_DANGER_LINK: &str = "rounded text-sm font-medium text-red-700 hover:text-red-900 hover:underline focus-visible:outline focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-red-600";
pub const INPUT: &str = "block w-full rounded-md border-0 px-3 py-2 text-slate-900 shadow-sm ring-1 ring-inset ring-slate-300 placeholder:text-slate-400 focus:ring-2 focus:ring-inset focus:ring-indigo-600 sm:text-sm";
pub const SELECT: &str = "block w-full rounded-md border-0 py-2 pl-3 pr-8 text-slate-900 shadow-sm ring-1 ring-inset ring-slate-300 focus:ring-2 focus:ring-inset focus:ring-indigo-600 sm:text-sm";
pub const LABEL: &str = "block text-sm font-medium text-slate-800";
pub const CARD: &str = "rounded-lg bg-white shadow-sm ring-1 ring-slate-200";

/// "2026-11-29 14:03 UTC"
pub fn format_time(at: OffsetDateTime) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    at.to_offset(time::UtcOffset::UTC).format(&format).unwrap_or_default()
}

#[component]
pub fn PageHeader(
    title: &'static str,
    #[prop(into)] description: String,
    #[prop(optional)] children: Option<Children>,
) -> impl IntoView {
    view! {
        <div class="mb-8 flex flex-wrap items-start justify-between gap-4">
            <div>
                <h1 class="text-2xl font-semibold tracking-tight text-slate-900">{title}</h1>
                <p class="mt-1 max-w-2xl text-sm text-slate-600">{description}</p>
            </div>
            {children.map(|children| view! { <div class="flex items-center gap-3">{children()}</div> })}
        </div>
    }
}

#[component]
pub fn EmptyState(
    title: &'static str,
    #[prop(into)] message: String,
    #[prop(optional)] children: Option<Children>,
) -> impl IntoView {
    view! {
        <div class="rounded-lg border-2 border-dashed border-slate-300 px-6 py-10 text-center">
            <h3 class="text-sm font-semibold text-slate-900">{title}</h3>
            <p class="mx-auto mt-1 max-w-md text-sm text-slate-600">{message}</p>
            {children.map(|children| view! { <div class="mt-4">{children()}</div> })}
        </div>
    }
}

/// An error as the admin sees it: what happened, and the request id to quote.
#[component]
pub fn ErrorNotice(error: AppError) -> impl IntoView {
    let title = match error.kind {
        ErrorKind::Forbidden => "Not allowed",
        ErrorKind::NotFound => "Not found",
        ErrorKind::Invalid => "Please check your input",
        ErrorKind::Conflict => "That cannot be done right now",
        ErrorKind::RateLimited => "Too many attempts",
        ErrorKind::Unauthenticated => "Not signed in",
        ErrorKind::Internal => "Something went wrong",
    };
    view! {
        <div role="alert" class="rounded-md bg-red-50 p-4 ring-1 ring-inset ring-red-200">
            <p class="text-sm font-semibold text-red-800">{title}</p>
            <p class="mt-1 text-sm text-red-800">{error.message.clone()}</p>
            {error.request_id.clone().map(|id| view! { <p class="mt-2 font-mono text-xs text-red-700">"Request id: " {id}</p> })}
        </div>
    }
}

#[component]
pub fn Notice(#[prop(into)] message: String) -> impl IntoView {
    view! {
        <div role="status" class="rounded-md bg-emerald-50 p-4 text-sm text-emerald-900 ring-1 ring-inset ring-emerald-200">
            {message}
        </div>
    }
}

#[derive(Clone, Copy, PartialEq)]
pub enum Tone {
    Neutral,
    Good,
    Bad,
    Accent,
    Warn,
}

#[component]
pub fn Badge(#[prop(into)] text: String, tone: Tone) -> impl IntoView {
    let colors = match tone {
        Tone::Neutral => "bg-slate-100 text-slate-700 ring-slate-300",
        Tone::Good => "bg-emerald-50 text-emerald-800 ring-emerald-600/30",
        Tone::Bad => "bg-red-50 text-red-800 ring-red-600/30",
        Tone::Accent => "bg-indigo-50 text-indigo-800 ring-indigo-600/30",
        Tone::Warn => "bg-amber-50 text-amber-900 ring-amber-600/30",
    };
    view! {
        <span class=format!("inline-flex items-center rounded-md px-2 py-0.5 text-xs font-medium ring-1 ring-inset {colors}")>{text}</span>
    }
}

/// A placeholder while data loads.
#[component]
pub fn Loading() -> impl IntoView {
    view! { <p class="text-sm text-slate-500" aria-live="polite">"Loading…"</p> }
}

/// A modal dialog: dimmed backdrop, Escape or backdrop click closes it, focus stays inside
/// the content the caller renders.
#[component]
pub fn Modal(title: &'static str, on_close: Callback<()>, children: Children) -> impl IntoView {
    view! {
        <div class="fixed inset-0 z-40 bg-slate-900/50" aria-hidden="true" on:click=move |_| on_close.run(())></div>
        <div
            class="pointer-events-none fixed inset-0 z-50 flex items-center justify-center p-4"
            role="dialog"
            aria-modal="true"
            aria-labelledby="modal-title"
            on:keydown=move |ev| {
                if ev.key() == "Escape" {
                    on_close.run(())
                }
            }
        >
            <div class="pointer-events-auto max-h-[90vh] w-full max-w-lg overflow-y-auto rounded-lg bg-white p-6 shadow-xl">
                <h2 id="modal-title" class="text-lg font-semibold text-slate-900">{title}</h2>
                {children()}
            </div>
        </div>
    }
}

/// A read-only value with a copy button, for secrets and links shown once.
#[component]
pub fn CopyField(label: &'static str, value: String, #[prop(optional)] testid: &'static str) -> impl IntoView {
    let copied = RwSignal::new(false);
    let id = format!("copy-{}", label.to_lowercase().replace(' ', "-"));
    let to_copy = value.clone();
    let copy = move |_| {
        #[cfg(feature = "hydrate")]
        {
            let _ = window().navigator().clipboard().write_text(&to_copy);
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = &to_copy;
        copied.set(true);
    };
    view! {
        <div>
            <label for=id.clone() class=LABEL>{label}</label>
            <div class="mt-1.5 flex gap-2">
                <input id=id readonly class=format!("font-mono text-xs {INPUT}") prop:value=value data-testid=testid/>
                <button type="button" class=BUTTON_SECONDARY on:click=copy>
                    {move || if copied.get() { "Copied" } else { "Copy" }}
                </button>
            </div>
        </div>
    }
}

/// Badge tone for a scope's risk level.
pub fn risk_tone(risk: &str) -> Tone {
    match risk {
        "high" => Tone::Bad,
        "medium" => Tone::Warn,
        _ => Tone::Neutral,
    }
}

/// Badge tone for a scope request's status.
pub fn status_tone(status: &str) -> Tone {
    match status {
        "approved" | "active" => Tone::Good,
        "pending" => Tone::Warn,
        "denied" | "revoked" | "expired" => Tone::Bad,
        _ => Tone::Neutral,
    }
}

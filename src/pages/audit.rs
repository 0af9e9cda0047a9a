//! `/audit`: the organization's audit trail, newest first, with filters (person, agent, action,
//! outcome, time range), paging, exports, the integrity panel (newest signed checkpoint, full
//! verification) and, per event, the chain of authority in plain words and its inclusion proof.
//! Filters live in the URL so views can be shared.

use crate::api::audit::{
    audit_event_proof, get_audit_integrity, list_audit_events, SetAuditRetention, VerifyAuditChain,
};
use crate::model::audit::{AuditEventView, AuditFilter, AuditIntegrity, ChainStatus};
use crate::ui::{
    format_time, Badge, EmptyState, ErrorNotice, Loading, PageHeader, Tone, BUTTON_PRIMARY, BUTTON_SECONDARY, CARD,
    INPUT, LABEL, SELECT,
};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

#[component]
pub fn AuditPage() -> impl IntoView {
    let query = use_query_map();
    let param = move |name: &str| query.read().get(name).unwrap_or_default();
    let filter = move || AuditFilter {
        action: param("action"),
        actor: param("actor"),
        outcome: param("outcome"),
        person: param("person"),
        agent: param("agent"),
        from: param("from"),
        to: param("to"),
        before_seq: param("before").parse::<i64>().ok(),
    };
    let events = Resource::new(filter, |f| {
        list_audit_events(f.action, f.actor, f.outcome, f.person, f.agent, f.from, f.to, f.before_seq)
    });
    let integrity = Resource::new(|| (), |_| get_audit_integrity());
    let verify = ServerAction::<VerifyAuditChain>::new();
    let export_href = move |format: &str| {
        let mut href = format!("/audit/export?format={format}");
        for (name, value) in filter().query_pairs() {
            href.push_str(&format!("&{name}={}", encode(value)));
        }
        href
    };

    view! {
        <Title text="Audit"/>
        <PageHeader title="Audit trail" description="Every change, sign-in and agent action, appended to a tamper-evident hash chain in the same transaction as the change itself, with signed Merkle checkpoints anyone can verify.">
            <a href=move || export_href("csv") class=BUTTON_SECONDARY data-testid="export-csv" rel="external">"Export CSV"</a>
            <a href=move || export_href("ndjson") class=BUTTON_SECONDARY data-testid="export-ndjson" rel="external">"Export NDJSON"</a>
            <button type="button" class=BUTTON_SECONDARY on:click=move |_| { verify.dispatch(VerifyAuditChain {}); } disabled=move || verify.pending().get()>
                {move || if verify.pending().get() { "Verifying…" } else { "Verify integrity" }}
            </button>
        </PageHeader>
        <div aria-live="polite">
            {move || verify.value().get().map(|result| match result {
                Ok(ChainStatus::Intact { events, checkpoints, signed_size, pruned_through }) => view! {
                    <div class="mb-6 rounded-md bg-emerald-50 p-4 text-sm text-emerald-900 ring-1 ring-inset ring-emerald-200" data-testid="chain-status">
                        <strong>"Chain intact. "</strong>
                        {format!("All {events} events verified: every hash matches its contents and its predecessor, and {checkpoints} signed checkpoints (up to event #{signed_size}) match the Merkle tree.")}
                        {(pruned_through > 0).then(|| format!(" Events up to #{pruned_through} were removed by retention at a signed checkpoint."))}
                    </div>
                }.into_any(),
                Ok(ChainStatus::Broken { first_bad_seq, reason }) => view! {
                    <div role="alert" class="mb-6 rounded-md bg-red-50 p-4 text-sm text-red-900 ring-1 ring-inset ring-red-200" data-testid="chain-status">
                        <strong>{format!("Chain broken at event #{first_bad_seq}. ")}</strong> {reason}
                    </div>
                }.into_any(),
                Err(error) => view! { <div class="mb-6"><ErrorNotice error/></div> }.into_any(),
            })}
        </div>
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                integrity.await.ok().map(|integrity| view! { <IntegrityPanel integrity/> })
            })}
        </Suspense>

        <form method="get" action="/audit" class=format!("mb-6 grid grid-cols-1 gap-4 p-4 sm:grid-cols-4 {CARD}") role="search" aria-label="Filter audit events">
            <div>
                <label for="filter-person" class=LABEL>"Person"</label>
                <input id="filter-person" name="person" type="search" placeholder="email" class=format!("mt-1.5 {INPUT}") prop:value=move || param("person")/>
            </div>
            <div>
                <label for="filter-agent" class=LABEL>"Agent"</label>
                <input id="filter-agent" name="agent" type="search" placeholder="name or client id" class=format!("mt-1.5 {INPUT}") prop:value=move || param("agent")/>
            </div>
            <div>
                <label for="filter-from" class=LABEL>"From (UTC)"</label>
                <input id="filter-from" name="from" type="datetime-local" class=format!("mt-1.5 {INPUT}") prop:value=move || param("from")/>
            </div>
            <div>
                <label for="filter-to" class=LABEL>"To (UTC)"</label>
                <input id="filter-to" name="to" type="datetime-local" class=format!("mt-1.5 {INPUT}") prop:value=move || param("to")/>
            </div>
            <div>
                <label for="filter-actor" class=LABEL>"Actor or target"</label>
                <input id="filter-actor" name="actor" type="search" placeholder="name or email" class=format!("mt-1.5 {INPUT}") prop:value=move || param("actor")/>
            </div>
            <div>
                <label for="filter-action" class=LABEL>"Action"</label>
                <Suspense fallback=|| view! { <select id="filter-action" name="action" class=format!("mt-1.5 {SELECT}")><option value="">"Any action"</option></select> }>
                    {move || Suspend::new(async move {
                        let actions = events.await.map(|page| page.actions).unwrap_or_default();
                        let current = param("action");
                        view! {
                            <select id="filter-action" name="action" class=format!("mt-1.5 {SELECT}")>
                                <option value="">"Any action"</option>
                                {actions.into_iter().map(|action| {
                                    let selected = action == current;
                                    view! { <option value=action.clone() selected=selected>{action.clone()}</option> }
                                }).collect_view()}
                            </select>
                        }
                    })}
                </Suspense>
            </div>
            <div>
                <label for="filter-outcome" class=LABEL>"Outcome"</label>
                <select id="filter-outcome" name="outcome" class=format!("mt-1.5 {SELECT}")>
                    <option value="" selected=move || param("outcome").is_empty()>"Any outcome"</option>
                    <option value="success" selected=move || param("outcome") == "success">"Success"</option>
                    <option value="failure" selected=move || param("outcome") == "failure">"Failure"</option>
                </select>
            </div>
            <div class="flex items-end gap-2">
                <button type="submit" class=BUTTON_PRIMARY>"Apply filters"</button>
                <a href="/audit" class=BUTTON_SECONDARY>"Clear"</a>
            </div>
        </form>

        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                match events.await {
                    Err(error) => view! { <ErrorNotice error/> }.into_any(),
                    Ok(page) if page.events.is_empty() => view! {
                        <EmptyState title="No matching events" message="Nothing in the audit trail matches these filters. Clear them to see every event."/>
                    }.into_any(),
                    Ok(page) => {
                        let older = page.next_before_seq.map(|before| {
                            let mut href = format!("/audit?before={before}");
                            for (name, value) in filter().query_pairs() {
                                href.push_str(&format!("&{name}={}", encode(value)));
                            }
                            href
                        });
                        view! {
                            <div class=format!("overflow-hidden {CARD}")>
                                <table class="min-w-full divide-y divide-slate-200 text-sm">
                                    <caption class="sr-only">"Audit events, newest first"</caption>
                                    <thead class="bg-slate-50 text-left text-xs font-semibold uppercase tracking-wide text-slate-600">
                                        <tr>
                                            <th scope="col" class="px-4 py-3">"#"</th>
                                            <th scope="col" class="px-4 py-3">"When"</th>
                                            <th scope="col" class="px-4 py-3">"Actor"</th>
                                            <th scope="col" class="px-4 py-3">"Action"</th>
                                            <th scope="col" class="px-4 py-3">"Target"</th>
                                            <th scope="col" class="px-4 py-3">"Outcome"</th>
                                        </tr>
                                    </thead>
                                    <tbody class="divide-y divide-slate-100" data-testid="audit-rows">
                                        {page.events.into_iter().map(|event| view! { <EventRow event/> }).collect_view()}
                                    </tbody>
                                </table>
                            </div>
                            <div class="mt-4 flex justify-end">
                                {older.map(|href| view! { <a href=href class=BUTTON_SECONDARY>"Older events →"</a> })}
                            </div>
                        }.into_any()
                    }
                }
            })}
        </Transition>
    }
}

fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[component]
fn IntegrityPanel(integrity: AuditIntegrity) -> impl IntoView {
    let AuditIntegrity { events, checkpoint, pruned_through, retention_days } = integrity;
    let signed = checkpoint.as_ref().map(|c| c.size).unwrap_or(0);
    let waiting = events - signed;
    let retention = ServerAction::<SetAuditRetention>::new();
    view! {
        <section class=format!("mb-6 grid grid-cols-1 gap-4 p-4 text-sm sm:grid-cols-3 {CARD}") aria-label="Integrity" data-testid="integrity-panel">
            <div>
                <p class="text-xs font-semibold uppercase tracking-wide text-slate-500">"Events"</p>
                <p class="mt-1 text-lg font-semibold text-slate-900">{events}</p>
                <p class="text-xs text-slate-500">{(pruned_through > 0).then(|| format!("events up to #{pruned_through} pruned by retention"))}</p>
                <ActionForm action=retention attr:class="mt-2 flex items-end gap-2">
                    <div>
                        <label for="retention-days" class="text-xs text-slate-600">"Keep events (days)"</label>
                        <input id="retention-days" name="days" type="number" min="30" max="36500" required value=retention_days class=format!("mt-1 w-28 {INPUT}")/>
                    </div>
                    <button type="submit" class=BUTTON_SECONDARY disabled=move || retention.pending().get()>"Save"</button>
                </ActionForm>
                <p class="mt-1 text-xs" aria-live="polite" data-testid="retention-result">
                    {move || retention.value().get().map(|result| match result {
                        Ok(days) => format!("Events are now kept {days} days (owners only; pruned at signed checkpoints)."),
                        Err(error) => error.message,
                    })}
                </p>
            </div>
            <div>
                <p class="text-xs font-semibold uppercase tracking-wide text-slate-500">"Newest signed checkpoint"</p>
                {match checkpoint.clone() {
                    Some(c) => view! {
                        <p class="mt-1 text-lg font-semibold text-slate-900" data-testid="checkpoint-size">{format!("#{}", c.size)}</p>
                        <p class="text-xs text-slate-500">{format!("signed {} by key {}", format_time(c.signed_at), c.key_id)}</p>
                    }.into_any(),
                    None => view! { <p class="mt-1 text-slate-700">"None yet: the first is signed within seconds."</p> }.into_any(),
                }}
                {(waiting > 0).then(|| view! { <p class="text-xs text-slate-500">{format!("{waiting} newer events await the next checkpoint (every 5 s)")}</p> })}
            </div>
            <div>
                <p class="text-xs font-semibold uppercase tracking-wide text-slate-500">"Merkle root"</p>
                <p class="mt-1 break-all font-mono text-[11px] text-slate-700">{checkpoint.map(|c| c.root_hash).unwrap_or_default()}</p>
                <p class="text-xs text-slate-500">"Check offline with the public key at " <code>"/api/v1/audit/keys"</code></p>
            </div>
        </section>
    }
}

#[component]
fn EventRow(event: AuditEventView) -> impl IntoView {
    let tone = if event.outcome == "success" { Tone::Good } else { Tone::Bad };
    let details = serde_json::to_string_pretty(&event.details).unwrap_or_default();
    let story = event.authority_story();
    let seq = event.seq;
    let proof = Action::new(move |_: &()| audit_event_proof(seq));
    view! {
        <tr class="align-top">
            <td class="whitespace-nowrap px-4 py-3 font-mono text-xs text-slate-500">{event.seq}</td>
            <td class="whitespace-nowrap px-4 py-3 text-slate-700">{format_time(event.occurred_at)}</td>
            <td class="px-4 py-3">
                <p class="font-medium text-slate-900">{event.actor_label.clone()}</p>
                <p class="text-xs text-slate-500">{event.actor_type.clone()} {event.ip.clone().map(|ip| format!(" · {ip}"))}</p>
            </td>
            <td class="px-4 py-3">
                <details>
                    <summary class="cursor-pointer font-mono text-xs text-indigo-800 focus-visible:outline focus-visible:outline-2 focus-visible:outline-indigo-600">{event.action.clone()}</summary>
                    {story.map(|lines| view! {
                        <ol class="mt-2 max-w-md list-decimal space-y-1 pl-5 text-xs text-slate-800" data-testid="authority-story">
                            {lines.into_iter().map(|line| view! { <li>{line}</li> }).collect_view()}
                        </ol>
                    })}
                    <pre class="mt-2 max-w-md overflow-x-auto rounded bg-slate-50 p-2 text-xs text-slate-700">{details}</pre>
                    <p class="mt-1 break-all font-mono text-[11px] text-slate-500">"hash " {event.hash.clone()}</p>
                    {event.request_id.clone().map(|id| view! { <p class="font-mono text-[11px] text-slate-500">"request " {id}</p> })}
                    <button type="button" class="mt-2 text-xs font-medium text-indigo-700 hover:underline" on:click=move |_| { proof.dispatch(()); }>
                        "Check inclusion proof"
                    </button>
                    <p class="text-xs" aria-live="polite" data-testid="proof-result">
                        {move || proof.value().get().map(|result| match result {
                            Ok((proof, true)) => format!("Included in signed checkpoint #{} ({} proof hashes): verified.", proof.checkpoint.size, proof.audit_path.len()),
                            Ok((proof, false)) => format!("The proof against checkpoint #{} does not verify.", proof.checkpoint.size),
                            Err(error) => error.message,
                        })}
                    </p>
                </details>
            </td>
            <td class="px-4 py-3 text-slate-700">{event.target_label.clone().unwrap_or_default()}</td>
            <td class="px-4 py-3"><Badge text=event.outcome.clone() tone/></td>
        </tr>
    }
}

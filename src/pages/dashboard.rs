//! `/`: the organization at a glance, counted from the database, with next steps.

use crate::api::dashboard::dashboard;
use crate::model::audit::AuditEventView;
use crate::model::dashboard::DashboardData;
use crate::ui::{format_time, Badge, EmptyState, ErrorNotice, Loading, PageHeader, Tone, CARD};
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn DashboardPage() -> impl IntoView {
    let data = Resource::new(|| (), |_| dashboard());
    view! {
        <Title text="Dashboard"/>
        <Suspense fallback=Loading>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(data) => view! { <Dashboard data/> }.into_any(),
                    Err(error) => view! { <ErrorNotice error/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn Stat(label: &'static str, value: i64, hint: String, #[prop(optional)] href: Option<&'static str>) -> impl IntoView {
    let body = view! {
        <dt class="text-sm font-medium text-slate-600">{label}</dt>
        <dd class="mt-1 text-3xl font-semibold tracking-tight text-slate-900" data-testid=format!("stat-{}", label.to_lowercase().replace(' ', "-"))>{value}</dd>
        <dd class="mt-1 text-xs text-slate-500">{hint}</dd>
    };
    match href {
        Some(href) => view! { <a href=href class=format!("block p-5 hover:ring-indigo-300 focus-visible:outline focus-visible:outline-2 focus-visible:outline-indigo-600 {CARD}")>{body}</a> }.into_any(),
        None => view! { <div class=format!("p-5 {CARD}")>{body}</div> }.into_any(),
    }
}

#[component]
fn Dashboard(data: DashboardData) -> impl IntoView {
    let plural = |n: i64, one: &str, many: &str| if n == 1 { one.to_string() } else { many.to_string() };
    let next_steps: Vec<(&str, &str, &str, bool)> = vec![
        (
            "Invite your team",
            "Add admins, approvers and auditors with the least role they need.",
            "/settings",
            data.admins > 1 || data.pending_invitations > 0,
        ),
        (
            "Connect your identity provider",
            "Sign admins in through OIDC or SAML instead of passwords.",
            "/connections",
            data.connections > 0,
        ),
        (
            "Connect your directory",
            "Provision people over SCIM so leavers lose their agents at once.",
            "/directories",
            data.directories > 0,
        ),
        (
            "Register your first agent",
            "Give an AI agent a mandate: an owner and approved scopes.",
            "/agents",
            data.agents > 0,
        ),
    ];
    view! {
        <PageHeader title="Dashboard" description=format!("{} at a glance", data.organization_name)/>
        {(!data.expiring_certificates.is_empty()).then(|| view! {
            <div class="mb-6 rounded-md bg-amber-50 p-4 text-sm text-amber-900 ring-1 ring-amber-600/30" role="alert" data-testid="certificate-warning">
                <p class="font-semibold">"An identity provider's signing certificate expires soon"</p>
                <ul class="mt-1 list-disc pl-5">
                    {data.expiring_certificates.iter().map(|cert| view! {
                        <li>
                            <a class="font-medium underline" href=format!("/connections/{}", cert.connection_id)>{cert.connection_name.clone()}</a>
                            {format!(": the certificate is valid until {}. Add the IdP's new certificate before then so sign-ins keep working.", crate::ui::format_time(cert.not_after))}
                        </li>
                    }).collect_view()}
                </ul>
            </div>
        })}
        <dl class="grid grid-cols-1 gap-4 sm:grid-cols-2 lg:grid-cols-3">
            <Stat label="Admins" value=data.admins hint=format!("{} pending {}", data.pending_invitations, plural(data.pending_invitations, "invitation", "invitations")) href="/settings"/>
            <Stat label="Agents" value=data.agents hint="registered and not revoked".to_string() href="/agents"/>
            <Stat label="Pending approvals" value=data.pending_approvals hint="scope requests waiting for a decision".to_string() href="/approvals"/>
            <Stat label="People" value=data.people hint="active people in this organization".to_string()/>
            <Stat label="Audit events" value=data.audit_events hint="in the hash-chained audit trail".to_string() href="/audit"/>
            <Stat label="Failed sign-ins" value=data.failed_logins_24h hint="in the last 24 hours".to_string() href="/audit?action=login.failed"/>
        </dl>

        <div class="mt-8 grid grid-cols-1 gap-6 lg:grid-cols-2">
            <section class=format!("p-6 {CARD}") aria-labelledby="next-steps">
                <h2 id="next-steps" class="text-base font-semibold text-slate-900">"Next steps"</h2>
                <ol class="mt-4 space-y-4">
                    {next_steps.into_iter().map(|(title, text, href, done)| view! {
                        <li class="flex gap-3">
                            <span class=if done { "mt-0.5 flex h-5 w-5 shrink-0 items-center justify-center rounded-full bg-emerald-600 text-xs text-white" } else { "mt-0.5 h-5 w-5 shrink-0 rounded-full ring-2 ring-inset ring-slate-300" } aria-hidden="true">
                                {done.then_some("✓")}
                            </span>
                            <div>
                                <a href=href class="text-sm font-medium text-indigo-700 hover:underline">{title}</a>
                                {done.then(|| view! { <span class="sr-only">" (done)"</span> })}
                                <p class="text-sm text-slate-600">{text}</p>
                            </div>
                        </li>
                    }).collect_view()}
                </ol>
            </section>
            <section class=format!("p-6 {CARD}") aria-labelledby="recent-activity">
                <div class="flex items-center justify-between">
                    <h2 id="recent-activity" class="text-base font-semibold text-slate-900">"Recent activity"</h2>
                    <a href="/audit" class="text-sm font-medium text-indigo-700 hover:underline">"View audit trail"</a>
                </div>
                {if data.recent_events.is_empty() {
                    view! { <div class="mt-4"><EmptyState title="No activity yet" message="Sign-ins, invitations and every agent action will appear here."/></div> }.into_any()
                } else {
                    view! { <ul class="mt-4 divide-y divide-slate-100">{data.recent_events.into_iter().map(|event| view! { <RecentEvent event/> }).collect_view()}</ul> }.into_any()
                }}
            </section>
        </div>
    }
}

#[component]
fn RecentEvent(event: AuditEventView) -> impl IntoView {
    let tone = if event.outcome == "success" { Tone::Neutral } else { Tone::Bad };
    view! {
        <li class="flex items-center justify-between gap-3 py-2.5">
            <div class="min-w-0">
                <p class="truncate text-sm text-slate-900"><span class="font-medium">{event.actor_label.clone()}</span> " · " {event.action.clone()}</p>
                <p class="text-xs text-slate-500">{format_time(event.occurred_at)}</p>
            </div>
            <Badge text=event.outcome.clone() tone/>
        </li>
    }
}

//! `/settings/streams`: log streams — where this organization's audit events are pushed (a
//! signed webhook, Splunk HEC, Datadog Logs), each with its delivery status and last error;
//! add one (a webhook's signing secret shows once, with how to verify it), turn on and off,
//! send a test event (its answer shows inline), rotate a webhook's secret, delete. Owners and
//! admins manage; everyone else reads. The server enforces the same rule.

use super::settings::SettingsHeader;
use crate::api::streams::{list_streams, CreateStream, DeleteStream, RotateStreamSecret, SetStreamEnabled, TestStream};
use crate::model::streams::{StreamKind, StreamRow, StreamStatus, StreamTestResult};
use crate::model::Permission;
use crate::ui::layout::CurrentAdmin;
use crate::ui::{
    format_time, Badge, CopyField, EmptyState, ErrorNotice, Loading, Notice, Tone, BUTTON_DANGER_LINK, BUTTON_PRIMARY,
    BUTTON_SECONDARY, CARD, INPUT, LABEL, SELECT,
};
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn StreamsPage() -> impl IntoView {
    let CurrentAdmin(me) = expect_context::<CurrentAdmin>();
    let create = ServerAction::<CreateStream>::new();
    let set_enabled = ServerAction::<SetStreamEnabled>::new();
    let delete = ServerAction::<DeleteStream>::new();
    let refresh = RwSignal::new(0_u32);
    let streams = Resource::new(
        move || (create.version().get(), set_enabled.version().get(), delete.version().get(), refresh.get()),
        |_| list_streams(),
    );
    view! {
        <Title text="Log streams"/>
        <SettingsHeader current=Signal::derive(|| "streams".to_string())/>
        <p class="mb-4 max-w-3xl text-sm text-slate-600">
            "Every audit event of this organization, from the moment a stream is added, is pushed to its destination in batches of up to 500 and retried until the destination answers 2xx. "
            "Delivery is at least once: each event carries its id and sequence number, and each request an Idempotency-Key, so your receiver can drop duplicates."
        </p>
        <div class="mb-4 space-y-3">
            {move || create.value().get().map(|result| match result {
                Ok(created) => match created.secret {
                    Some(secret) => view! { <WebhookSecretShownOnce secret/> }.into_any(),
                    None => view! { <Notice message="Log stream added. Send a test event to check that it arrives."/> }.into_any(),
                },
                Err(error) => view! { <ErrorNotice error/> }.into_any(),
            })}
            {move || [set_enabled.value().get().and_then(Result::err), delete.value().get().and_then(Result::err)]
                .into_iter().flatten().map(|error| view! { <ErrorNotice error/> }).collect_view()}
        </div>
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                let can_manage = matches!(me.await, Ok(Some(me)) if me.role.can(Permission::ManageStreams));
                match streams.await {
                    Err(error) => view! { <ErrorNotice error/> }.into_any(),
                    Ok(streams) => view! {
                        {can_manage.then(|| view! { <NewStreamForm create/> })}
                        <section class=CARD aria-labelledby="streams-heading">
                            <div class="flex flex-wrap items-center justify-between gap-3 border-b border-slate-200 px-6 py-4">
                                <h2 id="streams-heading" class="text-base font-semibold text-slate-900">"Log streams"</h2>
                                <button type="button" class=BUTTON_SECONDARY on:click=move |_| refresh.update(|n| *n += 1)>"Refresh status"</button>
                            </div>
                            {if streams.is_empty() {
                                view! {
                                    <div class="p-6">
                                        <EmptyState title="No log streams" message="Send your audit trail to a SIEM: a webhook you run, Splunk or Datadog."/>
                                    </div>
                                }.into_any()
                            } else {
                                view! {
                                    <ul class="divide-y divide-slate-100" role="list" data-testid="streams">
                                        {streams.into_iter().map(|stream| view! { <StreamItem stream can_manage set_enabled delete/> }).collect_view()}
                                    </ul>
                                }.into_any()
                            }}
                        </section>
                    }.into_any(),
                }
            })}
        </Transition>
    }
}

/// What to enter for each kind of destination.
fn url_help(kind: StreamKind) -> &'static str {
    match kind {
        StreamKind::Webhook => "Mandate POSTs JSON batches here, signed with a secret it generates (shown once after you add the stream).",
        StreamKind::SplunkHec => "Your HTTP Event Collector's endpoint (…/services/collector/event). Events arrive with source mandate and sourcetype mandate:audit.",
        StreamKind::Datadog => "Leave empty for the US1 site, or give your site's logs intake, e.g. https://http-intake.logs.datadoghq.eu/api/v2/logs.",
    }
}

#[component]
fn NewStreamForm(create: ServerAction<CreateStream>) -> impl IntoView {
    let kind = RwSignal::new(StreamKind::Webhook);
    view! {
        <section class=format!("mb-6 p-6 {CARD}") aria-labelledby="new-stream-heading">
            <h2 id="new-stream-heading" class="text-base font-semibold text-slate-900">"Add a log stream"</h2>
            <p class="mt-1 text-sm text-slate-600">"https only (plain http is accepted for 127.0.0.1 and localhost). Tokens and secrets are stored encrypted and never shown again."</p>
            <ActionForm action=create attr:class="mt-4 grid max-w-3xl gap-4 sm:grid-cols-2">
                <div>
                    <label for="stream-name" class=LABEL>"Name"</label>
                    <input id="stream-name" name="name" required maxlength="100" placeholder="SIEM production" class=format!("mt-1.5 {INPUT}")/>
                </div>
                <div>
                    <label for="stream-kind" class=LABEL>"Destination"</label>
                    <select
                        id="stream-kind"
                        name="kind"
                        class=format!("mt-1.5 {SELECT}")
                        on:change=move |ev| {
                            if let Ok(chosen) = event_target_value(&ev).parse::<StreamKind>() {
                                kind.set(chosen);
                            }
                        }
                    >
                        {StreamKind::ALL.into_iter().map(|k| view! { <option value=k.as_str() selected=move || kind.get() == k>{k.label()}</option> }).collect_view()}
                    </select>
                </div>
                <div class="sm:col-span-2">
                    <label for="stream-url" class=LABEL>"URL"</label>
                    <input
                        id="stream-url"
                        name="url"
                        type="url"
                        maxlength="2048"
                        required=move || kind.get() != StreamKind::Datadog
                        placeholder=move || kind.get().url_placeholder()
                        aria-describedby="stream-url-help"
                        class=format!("mt-1.5 font-mono {INPUT}")
                    />
                    <p id="stream-url-help" class="mt-1 text-xs text-slate-500">{move || url_help(kind.get())}</p>
                </div>
                {move || kind.get().secret_label().map(|label| view! {
                    <div class="sm:col-span-2">
                        <label for="stream-secret" class=LABEL>{label}</label>
                        <input id="stream-secret" name="secret" type="password" required autocomplete="off" maxlength="1024" class=format!("mt-1.5 font-mono {INPUT}")/>
                    </div>
                })}
                <div class="sm:col-span-2">
                    <button type="submit" class=BUTTON_PRIMARY disabled=move || create.pending().get()>"Add stream"</button>
                </div>
            </ActionForm>
        </section>
    }
}

/// A webhook's signing secret right after creation or rotation, and how receivers check it.
#[component]
fn WebhookSecretShownOnce(secret: String) -> impl IntoView {
    view! {
        <div class=format!("space-y-3 p-4 {CARD}") data-testid="stream-secret-shown">
            <p role="status" class="text-sm text-amber-900">"Copy the signing secret now: it is shown only once."</p>
            <CopyField label="Signing secret" value=secret testid="stream-secret"/>
            <div class="text-sm text-slate-700">
                <p class="font-medium text-slate-900">"Verify each request"</p>
                <ol class="mt-1 list-decimal space-y-1 pl-5">
                    <li>"Read the " <code class="font-mono text-xs">"Mandate-Signature"</code> " header: " <code class="font-mono text-xs">"t=<unix seconds>,v1=<hex>"</code> "."</li>
                    <li>"Compute HMAC-SHA256 with the whole secret (" <code class="font-mono text-xs">"mnd_whsec_…"</code> ") as the key over " <code class="font-mono text-xs">"<t>.<raw request body>"</code> ", in hex."</li>
                    <li>"Compare it with " <code class="font-mono text-xs">"v1"</code> " in constant time, and refuse requests whose " <code class="font-mono text-xs">"t"</code> " is more than 5 minutes old."</li>
                    <li>"A batch may arrive more than once: store events by their " <code class="font-mono text-xs">"id"</code> " (the " <code class="font-mono text-xs">"Idempotency-Key"</code> " header names the batch)."</li>
                </ol>
                <pre class="mt-2 overflow-x-auto rounded bg-slate-900 p-3 font-mono text-xs text-slate-100">"printf '%s.%s' \"$t\" \"$body\" | openssl dgst -sha256 -hmac \"$secret\""</pre>
            </div>
        </div>
    }
}

fn plural(n: i64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[component]
fn StreamItem(
    stream: StreamRow,
    can_manage: bool,
    set_enabled: ServerAction<SetStreamEnabled>,
    delete: ServerAction<DeleteStream>,
) -> impl IntoView {
    let test = ServerAction::<TestStream>::new();
    let rotate = ServerAction::<RotateStreamSecret>::new();
    let id = stream.id.to_string();
    let name = stream.name.clone();
    let (status_text, tone) = match stream.status {
        StreamStatus::Healthy => ("healthy".to_string(), Tone::Good),
        StreamStatus::Retrying => {
            (format!("retrying · {}", plural(stream.failures.into(), "failure", "failures")), Tone::Warn)
        }
        StreamStatus::Disabled => ("disabled".to_string(), Tone::Neutral),
    };
    let retrying = stream.status == StreamStatus::Retrying;
    let enabled = stream.enabled;
    let is_webhook = stream.kind == StreamKind::Webhook;
    view! {
        <li class="px-6 py-5" data-testid="stream" data-status=stream.status.as_str()>
            <div class="flex flex-wrap items-start justify-between gap-4">
                <div class="min-w-0">
                    <h3 class="flex flex-wrap items-center gap-2 text-sm font-medium text-slate-900">
                        {stream.name.clone()}
                        <Badge text=stream.kind.label() tone=Tone::Accent/>
                        <Badge text=status_text tone/>
                    </h3>
                    <p class="mt-0.5 break-all font-mono text-xs text-slate-600">{stream.url.clone()}</p>
                </div>
                {can_manage.then(|| {
                    let ids = [id.clone(), id.clone(), id.clone(), id.clone()];
                    let [id_test, id_toggle, id_rotate, id_delete] = ids;
                    let (to_name, toggle_name, delete_name) = (format!(" to {name}"), format!(" {name}"), format!(" {name}"));
                    view! {
                        <div class="flex flex-wrap items-center gap-3">
                            <ActionForm action=test>
                                <input type="hidden" name="stream_id" value=id_test/>
                                <button type="submit" class=BUTTON_SECONDARY disabled=move || test.pending().get()>
                                    {move || if test.pending().get() { "Sending…" } else { "Send test event" }}
                                    <span class="sr-only">{to_name}</span>
                                </button>
                            </ActionForm>
                            <ActionForm action=set_enabled>
                                <input type="hidden" name="stream_id" value=id_toggle/>
                                <input type="hidden" name="enabled" value=(!enabled).to_string()/>
                                <button type="submit" class=BUTTON_SECONDARY>
                                    {if enabled { "Turn off" } else { "Turn on" }}
                                    <span class="sr-only">{toggle_name}</span>
                                </button>
                            </ActionForm>
                            {is_webhook.then(|| view! {
                                <details>
                                    <summary class="cursor-pointer list-none rounded text-sm font-medium text-slate-700 hover:underline">"Rotate secret…"</summary>
                                    <div class="mt-2 max-w-sm rounded-md bg-amber-50 p-3 text-xs text-amber-900 ring-1 ring-amber-200">
                                        <p>"Requests are signed with the new secret at once: update your receiver right after."</p>
                                        <ActionForm action=rotate attr:class="mt-2">
                                            <input type="hidden" name="stream_id" value=id_rotate/>
                                            <button type="submit" class=BUTTON_SECONDARY>"Rotate signing secret"</button>
                                        </ActionForm>
                                    </div>
                                </details>
                            })}
                            <details>
                                <summary class=format!("cursor-pointer list-none {BUTTON_DANGER_LINK}")>"Delete…"<span class="sr-only">{delete_name}</span></summary>
                                <div class="mt-2 max-w-sm rounded-md bg-red-50 p-3 text-xs text-red-900 ring-1 ring-red-200">
                                    <p>{format!("Events not yet delivered ({}) will not be sent. The audit log itself keeps every event.", stream.lag)}</p>
                                    <ActionForm action=delete attr:class="mt-2">
                                        <input type="hidden" name="stream_id" value=id_delete/>
                                        <button type="submit" class=BUTTON_SECONDARY>"Delete stream"</button>
                                    </ActionForm>
                                </div>
                            </details>
                        </div>
                    }
                })}
            </div>
            <dl class="mt-3 grid grid-cols-2 gap-x-6 gap-y-2 text-xs sm:grid-cols-4">
                <div>
                    <dt class="text-slate-500">"Delivered"</dt>
                    <dd class="font-medium text-slate-900" data-testid="stream-delivered">{plural(stream.delivered_events, "event", "events")}</dd>
                </div>
                <div>
                    <dt class="text-slate-500">"Waiting"</dt>
                    <dd class="font-medium text-slate-900" data-testid="stream-lag">{plural(stream.lag, "event", "events")}</dd>
                </div>
                <div>
                    <dt class="text-slate-500">"Last success"</dt>
                    <dd class="font-medium text-slate-900">{stream.last_success_at.map(format_time).unwrap_or_else(|| "never".into())}</dd>
                </div>
                {retrying.then(|| view! {
                    <div>
                        <dt class="text-slate-500">"Next attempt"</dt>
                        <dd class="font-medium text-slate-900">{format_time(stream.next_attempt_at)}</dd>
                    </div>
                })}
            </dl>
            {stream.last_error.clone().map(|error| {
                let at = stream.last_error_at.map(|at| format!(" · {}", format_time(at))).unwrap_or_default();
                let (box_class, title) = if retrying {
                    ("bg-red-50 text-red-900 ring-red-200", "Last error")
                } else {
                    ("bg-slate-50 text-slate-700 ring-slate-200", "Last error (since resolved)")
                };
                view! {
                    <div class=format!("mt-3 rounded-md p-3 text-xs ring-1 ring-inset {box_class}") data-testid="stream-last-error">
                        <p class="font-semibold">{title}{at}</p>
                        <p class="mt-1 break-all font-mono">{error}</p>
                    </div>
                }
            })}
            <div class="mt-3 space-y-2" aria-live="polite">
                {move || test.value().get().map(|result| match result {
                    Ok(result) => view! { <TestOutcome result/> }.into_any(),
                    Err(error) => view! { <ErrorNotice error/> }.into_any(),
                })}
                {move || rotate.value().get().map(|result| match result {
                    Ok(secret) => view! { <WebhookSecretShownOnce secret/> }.into_any(),
                    Err(error) => view! { <ErrorNotice error/> }.into_any(),
                })}
            </div>
        </li>
    }
}

#[component]
fn TestOutcome(result: StreamTestResult) -> impl IntoView {
    let (text, tone) = if result.ok { ("test delivered", Tone::Good) } else { ("test failed", Tone::Bad) };
    view! {
        <p class="flex flex-wrap items-center gap-2 text-sm text-slate-700" data-testid="stream-test-outcome" data-ok=result.ok.to_string()>
            <Badge text tone/>
            <span class="break-all">{result.message.clone()}</span>
            <span class="text-xs text-slate-500">{format!("{} ms", result.elapsed_ms)}</span>
        </p>
    }
}

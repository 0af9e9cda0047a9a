//! What connecting a directory shows: each provider's setup steps, and the SCIM base URL and
//! bearer token right after creation or rotation (the only time the token is shown). Used by
//! the Directories list and by a directory's page.

use crate::model::directories::DirectoryCredentials;
use crate::ui::{CopyField, BUTTON_PRIMARY, BUTTON_SECONDARY};
use leptos::prelude::*;

pub fn provider_label(provider: &str) -> &'static str {
    match provider {
        "okta" => "Okta",
        "entra" => "Microsoft Entra ID",
        "google" => "Google Workspace",
        "jumpcloud" => "JumpCloud",
        _ => "Any SCIM 2.0 client",
    }
}

fn steps(provider: &str) -> &'static [&'static str] {
    match provider {
        "okta" => &[
            "In the Okta Admin Console open Applications → your app → General, and enable SCIM provisioning.",
            "Provisioning → Integration: paste the SCIM base URL as the connector base URL; unique identifier field: userName.",
            "Supported provisioning actions: Push New Users, Push Profile Updates, Push Groups. Authentication mode: HTTP Header, with the bearer token.",
            "Provisioning → To App: enable Create Users, Update User Attributes and Deactivate Users; then assign people and push groups.",
        ],
        "entra" => &[
            "In the Microsoft Entra admin center open Enterprise applications → your app → Provisioning, and choose Automatic.",
            "Admin credentials: Tenant URL = the SCIM base URL, Secret token = the bearer token; click Test connection.",
            "Mappings: keep userName ← userPrincipalName and active ← Not([IsSoftDeleted]); provision Microsoft Entra ID groups too.",
            "Set Provisioning Status to On. Entra syncs every 40 minutes; use Provision on demand to try one person at once.",
        ],
        "google" => &[
            "In the Google Admin console open Apps → Web and mobile apps → your app → Auto-provisioning.",
            "Paste the SCIM base URL as the endpoint URL and the bearer token as the access token.",
            "Map userName to the primary email, choose which groups to provision, and turn auto-provisioning on.",
        ],
        "jumpcloud" => &[
            "In the JumpCloud Admin Portal open SSO Applications → your app → Identity Management.",
            "Choose SCIM 2.0, paste the SCIM base URL and the bearer token (Token Key), and test the connection.",
            "Bind user groups to the application: their members are provisioned, and unbound or suspended users are deactivated.",
        ],
        _ => &[
            "Point your SCIM 2.0 client at the SCIM base URL (Users at /Users, Groups at /Groups).",
            "Authenticate every request with Authorization: Bearer <token>.",
            "Send active=false (or DELETE) when someone leaves: every agent acting for them is revoked in the same transaction.",
        ],
    }
}

#[component]
pub fn SetupSteps(provider: String) -> impl IntoView {
    view! {
        <div>
            <h3 class="text-sm font-semibold text-slate-900">{format!("Set up {}", provider_label(&provider))}</h3>
            <ol class="mt-2 list-decimal space-y-1 pl-5 text-sm text-slate-700">
                {steps(&provider).iter().map(|step| view! { <li>{*step}</li> }).collect_view()}
            </ol>
        </div>
    }
}

/// The SCIM base URL and token right after creation or rotation: the only time the token shows.
#[component]
pub fn DirectoryCredentialsShownOnce(
    credentials: DirectoryCredentials,
    provider: String,
    on_close: Callback<()>,
) -> impl IntoView {
    view! {
        <div class="mt-4 space-y-4" data-testid="directory-credentials">
            <div role="status" class="rounded-md bg-amber-50 p-3 text-sm text-amber-900 ring-1 ring-inset ring-amber-200">
                "Copy the token now: it is shown only once, and Mandate keeps only a hash of it."
            </div>
            <CopyField label="SCIM base URL" value=credentials.scim_base_url.clone() testid="scim-base-url"/>
            <CopyField label="Bearer token" value=credentials.bearer_token.clone() testid="scim-token"/>
            <SetupSteps provider/>
            <div class="flex justify-end gap-3 pt-2">
                <a href=format!("/directories/{}", credentials.directory_id) class=BUTTON_SECONDARY>"Open directory"</a>
                <button type="button" class=BUTTON_PRIMARY on:click=move |_| on_close.run(())>"Done"</button>
            </div>
        </div>
    }
}

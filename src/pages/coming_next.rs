//! Portal sections whose capability lands in a later release: say what is coming and why it
//! matters, rather than showing an empty page.

use crate::ui::{EmptyState, PageHeader};
use leptos::prelude::*;
use leptos_meta::Title;

fn about(section: &str) -> (&'static str, &'static str) {
    match section {
        "Connections" => (
            "Sign your admins in through your identity provider (OIDC or SAML) and verify your email domains.",
            "Connect Okta, Entra ID, Google or any OpenID Connect / SAML 2.0 provider, test the connection live, and from then on admins sign in through it.",
        ),
        "Directories" => (
            "Provision people and groups from your directory over SCIM 2.0; leavers take their agents down with them.",
            "Point your IdP's SCIM provisioning at Mandate. When someone leaves, every agent acting for them stops at once.",
        ),
        "Agents" => (
            "Register the AI agents that act for your people, with the scopes they need.",
            "Each agent is owned by a person, gets client credentials, and mints short-lived tokens under its approved mandate. One click revokes it everywhere.",
        ),
        "Approvals" => (
            "Approve or deny the scopes agents request.",
            "Approvers see who asks, for whom and why, and can approve until a date. High-risk scopes need someone other than the agent's owner.",
        ),
        _ => ("", ""),
    }
}

#[component]
pub fn ComingNextPage(section: &'static str) -> impl IntoView {
    let (description, detail) = about(section);
    view! {
        <Title text=section/>
        <PageHeader title=section description=description/>
        <EmptyState title="Coming next" message=detail/>
    }
}

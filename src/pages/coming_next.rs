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

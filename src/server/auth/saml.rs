//! The SAML 2.0 service provider, on `samael` (xmlsec): IdP metadata import, our SP metadata,
//! the HTTP-Redirect AuthnRequest, and the check of an HTTP-POST response. A response is
//! accepted only when its assertion is signed (directly or by the enveloping response) by a
//! pinned certificate — certificates inside the response are ignored — and identity is read
//! from the signed part only (samael reduces the document to what the signature covers, which
//! defeats signature wrapping). Before any parsing, documents with a DTD or with comments are
//! refused (entity expansion; comment-truncated NameIDs), and sizes are bounded.

use super::oidc::Steps;
use crate::model::connections::{SamlConnectionInput, SsoFailure};
use crate::server::domain::outbound::OutboundHttp;
use crate::server::domain::sso::identity::{Refusal, SsoIdentity};
use crate::server::domain::sso::saml::{acs_url, sp_entity_id, Certificate, IdpSettings, SamlSettings};
use crate::server::domain::DomainError;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use openidconnect::AsyncHttpClient;
use samael::crypto::AllowedSignatureAlgorithm;
use samael::metadata::EntityDescriptor;
use samael::schema::Assertion;
use samael::service_provider::{Error as SamlError, ServiceProvider, ServiceProviderBuilder};
use time::OffsetDateTime;

/// Largest SAMLResponse accepted (base64 text).
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024;
/// Largest metadata document read.
const MAX_METADATA_BYTES: usize = 512 * 1024;
const REDIRECT_BINDING: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";
/// Allowed clock skew on NotBefore / NotOnOrAfter.
const CLOCK_SKEW_SECONDS: i64 = 120;

pub const STEP_REDIRECT: &str = "Redirect to the IdP and back";
pub const STEP_SIGNATURE: &str = "Signature by a pinned certificate";
pub const STEP_CONDITIONS: &str = "Audience, recipient, validity and request";
pub const STEP_ATTRIBUTES: &str = "Subject and attributes";
/// Every step of a SAML Test connection run, in order.
pub const ALL_STEPS: [&str; 5] = [STEP_REDIRECT, STEP_SIGNATURE, STEP_CONDITIONS, STEP_ATTRIBUTES, "Mapped identity"];

/// Refuses what no SAML message needs and attackers love: DTDs (entity expansion, external
/// entities) and comments (a comment inside a signed NameID truncates it after verification).
fn refuse_dangerous_xml(xml: &str) -> Result<(), String> {
    let upper = xml.to_ascii_uppercase();
    if upper.contains("<!DOCTYPE") || upper.contains("<!ENTITY") {
        return Err("the document has a DTD".into());
    }
    if xml.contains("<!--") {
        return Err("the document contains XML comments".into());
    }
    Ok(())
}

/// Reads IdP metadata: the entity id, the HTTP-Redirect SSO endpoint and the signing certificates.
pub fn parse_metadata(xml: &str, metadata_url: Option<String>) -> Result<IdpSettings, DomainError> {
    let invalid = |why: &str| DomainError::invalid(format!("The IdP metadata {why}"));
    if xml.len() > MAX_METADATA_BYTES {
        return Err(invalid("is too large"));
    }
    refuse_dangerous_xml(xml).map_err(|why| invalid(&format!("was refused: {why}")))?;
    let entity: EntityDescriptor =
        xml.parse().map_err(|e| invalid(&format!("is not a SAML EntityDescriptor ({e})")))?;
    let entity_id = entity.entity_id.clone().ok_or_else(|| invalid("has no entityID"))?;
    let descriptor = entity
        .idp_sso_descriptors
        .as_ref()
        .and_then(|d| d.first())
        .ok_or_else(|| invalid("has no IDPSSODescriptor (is it the SP's metadata?)"))?;
    let sso_url = descriptor
        .single_sign_on_services
        .iter()
        .find(|s| s.binding == REDIRECT_BINDING)
        .map(|s| s.location.clone())
        .ok_or_else(|| invalid("offers no HTTP-Redirect SingleSignOnService"))?;
    let signing: Vec<&String> = descriptor
        .key_descriptors
        .iter()
        .filter(|k| matches!(k.key_use.as_deref(), None | Some("") | Some("signing")))
        .filter_map(|k| k.key_info.x509_data.as_ref())
        .flat_map(|x| x.certificates.iter())
        .collect();
    let mut certificates = Vec::new();
    for text in signing {
        let compact: String = text.split_whitespace().collect();
        let der = STANDARD.decode(compact).map_err(|_| invalid("has a certificate that is not base64"))?;
        let cert = Certificate::from_der(&der)?;
        if !certificates.iter().any(|c: &Certificate| c.fingerprint == cert.fingerprint) {
            certificates.push(cert);
        }
    }
    Ok(IdpSettings { entity_id, sso_url, metadata_url, certificates })
}

/// Fetches and reads IdP metadata from its URL (https, or http on loopback).
pub async fn fetch_metadata(http: &OutboundHttp, url: &str) -> Result<IdpSettings, DomainError> {
    let url = crate::server::domain::sso::fields::issuer_url(url).map_err(|_| {
        DomainError::invalid("The metadata URL must be an https:// URL (http only on 127.0.0.1 or localhost)")
    })?;
    let request = http::Request::get(&url)
        .header("accept", "application/samlmetadata+xml, application/xml, text/xml")
        .body(Vec::new())
        .map_err(|e| DomainError::invalid(format!("The metadata URL is not usable: {e}")))?;
    let response =
        http.call(request).await.map_err(|e| DomainError::invalid(format!("Could not fetch the IdP metadata: {e}")))?;
    if !response.status().is_success() {
        return Err(DomainError::invalid(format!("Fetching the IdP metadata answered HTTP {}", response.status())));
    }
    let xml = String::from_utf8(response.into_body())
        .map_err(|_| DomainError::invalid("The IdP metadata is not UTF-8 text"))?;
    parse_metadata(&xml, Some(url))
}

/// The IdP settings an admin gave: metadata by URL, pasted metadata, or entered by hand.
pub async fn idp_settings(http: &OutboundHttp, input: &SamlConnectionInput) -> Result<IdpSettings, DomainError> {
    if !input.metadata_url.trim().is_empty() {
        return fetch_metadata(http, input.metadata_url.trim()).await;
    }
    if !input.metadata_xml.trim().is_empty() {
        return parse_metadata(input.metadata_xml.trim(), None);
    }
    Ok(IdpSettings {
        entity_id: input.idp_entity_id.trim().to_string(),
        sso_url: input.sso_url.trim().to_string(),
        metadata_url: None,
        certificates: Certificate::parse_many(&input.certificates_pem)?,
    })
}

/// The IdP as samael wants it: a metadata document built from the pinned settings only.
fn idp_entity(idp: &IdpSettings) -> Result<EntityDescriptor, Refusal> {
    let escape = |s: &str| s.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;").replace('>', "&gt;");
    let keys: String = idp
        .certificates
        .iter()
        .map(|c| {
            format!(
                r#"<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"#,
                STANDARD.encode(&c.der)
            )
        })
        .collect();
    let xml = format!(
        r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{}"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">{keys}<md:SingleSignOnService Binding="{REDIRECT_BINDING}" Location="{}"/></md:IDPSSODescriptor></md:EntityDescriptor>"#,
        escape(&idp.entity_id),
        escape(&idp.sso_url)
    );
    xml.parse().map_err(|e| {
        Refusal::new(SsoFailure::SamlMalformed, format!("the pinned IdP settings do not form metadata: {e}"))
    })
}

/// Our service provider for one connection.
pub fn service_provider(settings: &SamlSettings, public_url: &str) -> Result<ServiceProvider, Refusal> {
    if settings.idp.certificates.is_empty() {
        // Without a pinned certificate samael would not check signatures at all.
        return Err(Refusal::new(SsoFailure::SamlSignature, "the connection has no pinned signing certificate"));
    }
    ServiceProviderBuilder::default()
        .entity_id(sp_entity_id(public_url, settings.connection_id))
        .metadata_url(sp_entity_id(public_url, settings.connection_id))
        .acs_url(acs_url(public_url, settings.connection_id))
        .slo_url(None::<String>)
        .idp_metadata(idp_entity(&settings.idp)?)
        .allow_idp_initiated(settings.allow_idp_initiated)
        .max_issue_delay(chrono::Duration::minutes(5))
        .max_clock_skew(chrono::Duration::seconds(CLOCK_SKEW_SECONDS))
        .allowed_signature_algorithms(Some(vec![
            AllowedSignatureAlgorithm::RsaSha256,
            AllowedSignatureAlgorithm::RsaSha384,
            AllowedSignatureAlgorithm::RsaSha512,
            AllowedSignatureAlgorithm::EcdsaSha256,
            AllowedSignatureAlgorithm::EcdsaSha384,
            AllowedSignatureAlgorithm::EcdsaSha512,
        ]))
        .build()
        .map_err(|e| Refusal::new(SsoFailure::SamlMalformed, format!("could not set up the service provider: {e}")))
}

/// Our SP metadata document: entity id, the ACS (HTTP-POST), signed assertions wanted, and our
/// request-signing certificate when AuthnRequests are signed.
pub fn sp_metadata(settings: &SamlSettings, public_url: &str) -> String {
    let escape = |s: String| s.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;").replace('>', "&gt;");
    let signing_key = settings.request_signing.as_ref().map(|key| {
        format!(
            r#"<md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"#,
            STANDARD.encode(&key.certificate_der)
        )
    });
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{}"><md:SPSSODescriptor AuthnRequestsSigned="{}" WantAssertionsSigned="true" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">{}<md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</md:NameIDFormat><md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:persistent</md:NameIDFormat><md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="{}" index="0" isDefault="true"/></md:SPSSODescriptor></md:EntityDescriptor>"#,
        escape(sp_entity_id(public_url, settings.connection_id)),
        signing_key.is_some(),
        signing_key.unwrap_or_default(),
        escape(acs_url(public_url, settings.connection_id))
    )
}

/// The IdP URL that carries a new AuthnRequest with id `request_id` (HTTP-Redirect binding).
pub fn authn_request_url(sp: &ServiceProvider, settings: &SamlSettings, request_id: &str) -> Result<String, Refusal> {
    let fail = |e: Box<dyn std::error::Error>| {
        Refusal::new(SsoFailure::SamlMalformed, format!("could not build the AuthnRequest: {e}"))
    };
    let mut request = sp.make_authentication_request(&settings.idp.sso_url).map_err(fail)?;
    request.id = request_id.to_string();
    request.force_authn = None;
    let url = match &settings.request_signing {
        Some(key) => {
            let key = openssl::pkey::PKey::private_key_from_der(&key.key_der).map_err(|e| {
                Refusal::new(SsoFailure::SamlMalformed, format!("our request-signing key is unusable: {e}"))
            })?;
            request.signed_redirect("", &key).map_err(fail)?
        }
        None => request.redirect("").map_err(fail)?,
    };
    url.map(|u| u.to_string())
        .ok_or_else(|| Refusal::new(SsoFailure::SamlMalformed, "the IdP has no single sign-on URL"))
}

/// A response's XML, decoded and screened, and the request it answers (unverified: used only to
/// find the sign-in attempt; the verified check happens in `verify`).
pub struct Received {
    pub xml: String,
    pub in_response_to: Option<String>,
}

pub fn receive(saml_response: &str) -> Result<Received, Refusal> {
    let malformed = |detail: String| Refusal::new(SsoFailure::SamlMalformed, detail);
    if saml_response.len() > MAX_RESPONSE_BYTES {
        return Err(malformed("the SAMLResponse is larger than 256 KiB".into()));
    }
    let compact: String = saml_response.split_whitespace().collect();
    let bytes = STANDARD.decode(compact).map_err(|_| malformed("the SAMLResponse is not base64".into()))?;
    let xml = String::from_utf8(bytes).map_err(|_| malformed("the SAMLResponse is not UTF-8 XML".into()))?;
    refuse_dangerous_xml(&xml).map_err(|why| malformed(format!("the SAMLResponse was refused: {why}")))?;
    refuse_wrapping(&xml)
        .map_err(|why| Refusal::new(SsoFailure::SamlSignature, format!("the SAMLResponse was refused: {why}")))?;
    // Some IdPs write InResponseTo="" on IdP-initiated responses.
    let in_response_to = root_attribute(&xml, "InResponseTo").filter(|id| !id.is_empty());
    Ok(Received { xml, in_response_to })
}

/// Local names of the document's elements, in order (a light scan over start tags).
fn element_names(xml: &str) -> impl Iterator<Item = &str> {
    xml.split('<').skip(1).filter(|t| !t.starts_with(['/', '?', '!'])).map(|tag| {
        let name = tag.split(|c: char| c.is_whitespace() || c == '>' || c == '/').next().unwrap_or("");
        name.rsplit(':').next().unwrap_or(name)
    })
}

/// Signature wrapping needs a second assertion (or response) or a repeated ID beside the signed
/// one; a genuine response has one of each, so anything else is refused before verification.
fn refuse_wrapping(xml: &str) -> Result<(), String> {
    let count = |wanted: &str| element_names(xml).filter(|name| *name == wanted).count();
    if count("Assertion") + count("EncryptedAssertion") != 1 {
        return Err("a response must carry exactly one assertion".into());
    }
    if count("Response") > 1 {
        return Err("the document holds more than one response".into());
    }
    let mut ids: Vec<&str> = xml.split(" ID=\"").skip(1).filter_map(|rest| rest.split('"').next()).collect();
    let total = ids.len();
    ids.sort_unstable();
    ids.dedup();
    if ids.len() != total {
        return Err("an ID appears twice".into());
    }
    Ok(())
}

/// The value of an attribute on the document's root element (a light scan, no entity handling).
fn root_attribute(xml: &str, name: &str) -> Option<String> {
    let start = xml.find("Response")?;
    let end = start + xml[start..].find('>')?;
    let tag = &xml[start..end];
    let needle = format!(" {name}=\"");
    let at = tag.find(&needle)? + needle.len();
    let value = &tag[at..at + tag[at..].find('"')?];
    Some(value.to_string())
}

/// A verified assertion's facts.
pub struct Verified {
    pub identity: SsoIdentity,
    pub assertion_id: String,
    /// Until when the assertion could be accepted: its id is kept as used until then.
    pub valid_until: OffsetDateTime,
}

/// Checks signature, issuer, audience, destination, recipient, validity and InResponseTo, then
/// reads the identity from the verified assertion.
pub fn verify(
    sp: &ServiceProvider,
    settings: &SamlSettings,
    received: &Received,
    request_id: Option<&str>,
    steps: &mut Steps,
) -> Result<Verified, Refusal> {
    let ids: Vec<&str> = request_id.into_iter().collect();
    let assertion = match sp.parse_xml_response(&received.xml, request_id.map(|_| ids.as_slice())) {
        Ok(assertion) => assertion,
        Err(err) => {
            let (step, refusal) = refusal_for(&err);
            if step == STEP_CONDITIONS {
                steps.ok(STEP_SIGNATURE, "signed by a pinned certificate");
            }
            return Err(steps.failed(step, refusal));
        }
    };
    steps.ok(STEP_SIGNATURE, "the assertion is signed by a pinned certificate (KeyInfo ignored)");
    steps.ok(STEP_CONDITIONS, "issuer, audience, destination, recipient, validity window and request id check out");
    let identity = identity_of(&assertion, settings).map_err(|r| steps.failed(STEP_ATTRIBUTES, r))?;
    steps.ok(
        STEP_ATTRIBUTES,
        format!(
            "NameID {}, email {}, name {}, groups [{}]",
            identity.subject,
            identity.email.as_deref().unwrap_or("(none)"),
            identity.name.as_deref().unwrap_or("(none)"),
            identity.groups.join(", ")
        ),
    );
    let now = OffsetDateTime::now_utc();
    let not_on_or_after = assertion
        .conditions
        .as_ref()
        .and_then(|c| c.not_on_or_after)
        .map(|t| OffsetDateTime::from_unix_timestamp(t.timestamp()).unwrap_or(now));
    let valid_until =
        not_on_or_after.unwrap_or(now + time::Duration::minutes(10)) + time::Duration::seconds(CLOCK_SKEW_SECONDS);
    Ok(Verified { identity, assertion_id: assertion.id.clone(), valid_until })
}

/// Which step failed, and the refusal, for a samael error.
fn refusal_for(err: &SamlError) -> (&'static str, Refusal) {
    use SamlError::*;
    let (step, failure) = match err {
        FailedToValidateSignature | CryptoXmlError(_) | CryptoProviderError(_) | FailedToParseCert { .. } => {
            (STEP_SIGNATURE, SsoFailure::SamlSignature)
        }
        AssertionIssuerMismatch { .. } | ResponseIssuerMismatch { .. } => (STEP_CONDITIONS, SsoFailure::SamlIssuer),
        AssertionConditionAudienceRestrictionFailed { .. } => (STEP_CONDITIONS, SsoFailure::SamlAudience),
        AssertionRecipientMismatch { .. } | DestinationValidationError { .. } => {
            (STEP_CONDITIONS, SsoFailure::SamlRecipient)
        }
        AssertionExpired { .. }
        | ResponseExpired { .. }
        | AssertionConditionExpired { .. }
        | AssertionConditionExpiredBefore { .. }
        | AssertionSubjectConfirmationExpired { .. }
        | AssertionSubjectConfirmationExpiredBefore { .. } => (STEP_CONDITIONS, SsoFailure::SamlExpired),
        AssertionInResponseToInvalid { .. } | ResponseInResponseToInvalid { .. } => {
            (STEP_CONDITIONS, SsoFailure::SamlInResponseTo)
        }
        ResponseBadStatusCode { .. } => (STEP_CONDITIONS, SsoFailure::SamlStatus),
        AssertionBearerSubjectConfirmationMissing | AssertionSubjectConfirmationMissing => {
            (STEP_CONDITIONS, SsoFailure::SamlRecipient)
        }
        _ => (STEP_SIGNATURE, SsoFailure::SamlMalformed),
    };
    (step, Refusal::new(failure, format!("the SAML response was refused: {err}")))
}

/// NameID is the subject; email, name and groups come from the mapped attributes (the NameID
/// stands in for the email when it is one).
fn identity_of(assertion: &Assertion, settings: &SamlSettings) -> Result<SsoIdentity, Refusal> {
    let name_id = assertion
        .subject
        .as_ref()
        .and_then(|s| s.name_id.as_ref())
        .map(|n| n.value.trim().to_string())
        .filter(|v| !v.is_empty() && v.len() <= 500)
        .ok_or_else(|| Refusal::new(SsoFailure::MissingClaim, "the assertion has no NameID"))?;
    let attributes: Vec<&samael::attribute::Attribute> =
        assertion.attribute_statements.iter().flatten().flat_map(|s| s.attributes.iter()).collect();
    let values = |name: &str| -> Vec<String> {
        attributes
            .iter()
            .filter(|a| a.name.as_deref() == Some(name) || a.friendly_name.as_deref() == Some(name))
            .flat_map(|a| a.values.iter())
            .filter_map(|v| v.value.as_deref())
            .map(|v| v.trim().chars().take(320).collect::<String>())
            .filter(|v| !v.is_empty())
            .take(200)
            .collect()
    };
    let email =
        values(&settings.claim_email).into_iter().next().or_else(|| name_id.contains('@').then(|| name_id.clone()));
    Ok(SsoIdentity {
        issuer: settings.idp.entity_id.clone(),
        subject: name_id,
        email,
        email_verified: None,
        name: values(&settings.claim_name).into_iter().next(),
        groups: values(&settings.claim_groups),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dangerous_xml_is_refused_before_parsing() {
        assert!(refuse_dangerous_xml("<samlp:Response/>").is_ok());
        assert!(refuse_dangerous_xml("<!DOCTYPE x [<!ENTITY a 'b'>]><x/>").is_err());
        assert!(refuse_dangerous_xml("<x><!doctype y></x>").is_err());
        assert!(refuse_dangerous_xml("<NameID>admin@acme.example<!---->.evil.example</NameID>").is_err());
    }

    #[test]
    fn wrapping_shapes_are_refused() {
        let one = r#"<samlp:Response ID="_r"><saml:Assertion ID="_a"><saml:Issuer>x</saml:Issuer></saml:Assertion></samlp:Response>"#;
        assert!(refuse_wrapping(one).is_ok());
        let two = r#"<samlp:Response ID="_r"><Assertion ID="_b"/><saml:Assertion ID="_a"/></samlp:Response>"#;
        assert!(refuse_wrapping(two).is_err());
        let same_id = r#"<samlp:Response ID="_a"><saml:Assertion ID="_a"/></samlp:Response>"#;
        assert!(refuse_wrapping(same_id).is_err());
        assert!(refuse_wrapping("<samlp:Response/>").is_err(), "no assertion at all");
    }

    #[test]
    fn the_root_element_names_its_request() {
        let xml = r#"<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_r" InResponseTo="_abc" Version="2.0"><x InResponseTo="_other"/></samlp:Response>"#;
        assert_eq!(root_attribute(xml, "InResponseTo").as_deref(), Some("_abc"));
        assert_eq!(root_attribute("<samlp:Response ID=\"x\"/>", "InResponseTo"), None);
    }
}

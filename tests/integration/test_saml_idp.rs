//! A SAML identity provider the tests control, signing with xmlsec (through samael) under an
//! RSA key made at start: it serves its metadata and mints responses — well-formed, or broken
//! in the ways attackers break them.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use samael::crypto::{Crypto, CryptoProvider};
use std::io::Read;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

pub struct KeyPair {
    pub key_der: Vec<u8>,
    pub cert_der: Vec<u8>,
}

impl KeyPair {
    pub fn generate(common_name: &str, valid_days: u32) -> KeyPair {
        let (key_der, cert_der) =
            mandate::server::domain::sso::saml::generate_key_and_certificate(common_name, valid_days).unwrap();
        KeyPair { key_der, cert_der }
    }

    pub fn cert_base64(&self) -> String {
        STANDARD.encode(&self.cert_der)
    }

    pub fn cert_pem(&self) -> String {
        String::from_utf8(openssl::x509::X509::from_der(&self.cert_der).unwrap().to_pem().unwrap()).unwrap()
    }
}

pub struct SamlIdp {
    pub entity_id: String,
    pub sso_url: String,
    pub metadata_url: String,
    pub keys: KeyPair,
}

/// What goes into one response.
#[derive(Clone)]
pub struct Spec {
    pub in_response_to: Option<String>,
    pub name_id: String,
    pub email: String,
    pub groups: Vec<String>,
    pub audience: String,
    pub recipient: String,
    pub issuer: String,
    pub not_on_or_after: OffsetDateTime,
    pub assertion_id: String,
}

fn time(at: OffsetDateTime) -> String {
    at.replace_nanosecond(0).unwrap().format(&Rfc3339).unwrap()
}

fn signature_template(reference: &str, cert: &str) -> String {
    format!(
        r##"<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/><ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/><ds:Reference URI="#{reference}"><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/><ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue/></ds:Reference></ds:SignedInfo><ds:SignatureValue/><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></ds:Signature>"##
    )
}

impl SamlIdp {
    pub async fn start() -> SamlIdp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let keys = KeyPair::generate("Test SAML IdP", 365);
        let entity_id = format!("{base}/idp");
        let sso_url = format!("{base}/sso");
        let metadata = format!(
            r#"<?xml version="1.0"?><md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{entity_id}"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="{sso_url}"/></md:IDPSSODescriptor></md:EntityDescriptor>"#,
            keys.cert_base64()
        );
        let app = axum::Router::new().route("/metadata", axum::routing::get(move || async move { metadata }));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        SamlIdp { metadata_url: format!("{base}/metadata"), entity_id, sso_url, keys }
    }

    /// A good spec for a sign-in answering `request_id` at a connection's ACS.
    pub fn spec(&self, acs_url: &str, audience: &str, request_id: Option<&str>, email: &str) -> Spec {
        Spec {
            in_response_to: request_id.map(str::to_string),
            name_id: email.to_string(),
            email: email.to_string(),
            groups: Vec::new(),
            audience: audience.to_string(),
            recipient: acs_url.to_string(),
            issuer: self.entity_id.clone(),
            not_on_or_after: OffsetDateTime::now_utc() + Duration::minutes(5),
            assertion_id: format!("_a{}", uuid::Uuid::new_v4().simple()),
        }
    }

    /// The assertion element, with a signature template when `signed`.
    pub fn assertion(&self, spec: &Spec, signed: bool) -> String {
        let now = OffsetDateTime::now_utc();
        let in_response_to =
            spec.in_response_to.as_ref().map(|id| format!(r#" InResponseTo="{id}""#)).unwrap_or_default();
        let groups: String =
            spec.groups.iter().map(|g| format!("<saml:AttributeValue>{g}</saml:AttributeValue>")).collect();
        let signature =
            if signed { signature_template(&spec.assertion_id, &self.keys.cert_base64()) } else { String::new() };
        format!(
            r#"<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" IssueInstant="{now}"><saml:Issuer>{issuer}</saml:Issuer>{signature}<saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">{name_id}</saml:NameID><saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData NotOnOrAfter="{until}" Recipient="{recipient}"{in_response_to}/></saml:SubjectConfirmation></saml:Subject><saml:Conditions NotBefore="{before}" NotOnOrAfter="{until}"><saml:AudienceRestriction><saml:Audience>{audience}</saml:Audience></saml:AudienceRestriction></saml:Conditions><saml:AuthnStatement AuthnInstant="{now}"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:Password</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement><saml:AttributeStatement><saml:Attribute Name="email"><saml:AttributeValue>{email}</saml:AttributeValue></saml:Attribute><saml:Attribute Name="groups">{groups}</saml:Attribute></saml:AttributeStatement></saml:Assertion>"#,
            id = spec.assertion_id,
            now = time(now),
            issuer = spec.issuer,
            name_id = spec.name_id,
            until = time(spec.not_on_or_after),
            before = time(now - Duration::minutes(1)),
            recipient = spec.recipient,
            audience = spec.audience,
            email = spec.email,
        )
    }

    /// A response around `assertion_xml` (unsigned envelope).
    pub fn envelope(&self, spec: &Spec, assertion_xml: &str) -> String {
        let in_response_to =
            spec.in_response_to.as_ref().map(|id| format!(r#" InResponseTo="{id}""#)).unwrap_or_default();
        format!(
            r#"<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r{rid}" Version="2.0" IssueInstant="{now}" Destination="{recipient}"{in_response_to}><saml:Issuer>{issuer}</saml:Issuer><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>{assertion_xml}</samlp:Response>"#,
            rid = uuid::Uuid::new_v4().simple(),
            now = time(OffsetDateTime::now_utc()),
            recipient = spec.recipient,
            issuer = spec.issuer,
        )
    }

    /// Signs every signature template in `xml` with `key_der`.
    pub fn sign(xml: &str, key_der: &[u8]) -> String {
        Crypto::sign_xml(xml, key_der).unwrap()
    }

    /// A well-formed response whose assertion is signed by this IdP's key.
    pub fn signed_response_xml(&self, spec: &Spec) -> String {
        SamlIdp::sign(&self.envelope(spec, &self.assertion(spec, true)), &self.keys.key_der)
    }
}

pub fn encode(xml: &str) -> String {
    STANDARD.encode(xml)
}

/// The AuthnRequest id carried by an HTTP-Redirect binding URL.
pub fn request_id_of(url: &str) -> String {
    let query = url.split_once('?').unwrap().1;
    let encoded = form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "SAMLRequest").unwrap().1.to_string();
    let mut xml = String::new();
    flate2::read::DeflateDecoder::new(&STANDARD.decode(encoded).unwrap()[..]).read_to_string(&mut xml).unwrap();
    let at = xml.find(" ID=\"").unwrap() + 5;
    xml[at..at + xml[at..].find('"').unwrap()].to_string()
}

//! Input checks shared by every entry point, with messages a person can act on.

use crate::server::domain::DomainError;

/// Lower-cases and checks an email address (one `@`, a dotted domain, no spaces, ≤ 320 chars).
pub fn email(input: &str) -> Result<String, DomainError> {
    let email = input.trim().to_lowercase();
    let valid = email.len() <= 320
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && match email.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            }
            None => false,
        };
    if valid {
        Ok(email)
    } else {
        Err(DomainError::invalid(format!("{:?} is not a valid email address", input.trim())))
    }
}

/// A display name or other short label: trimmed, 1..=max characters, no control characters.
pub fn label(field: &str, input: &str, max: usize) -> Result<String, DomainError> {
    let value = input.trim();
    if value.is_empty() {
        return Err(DomainError::invalid(format!("{field} is required")));
    }
    if value.chars().count() > max {
        return Err(DomainError::invalid(format!("{field} must be at most {max} characters")));
    }
    if value.chars().any(char::is_control) {
        return Err(DomainError::invalid(format!("{field} must not contain control characters")));
    }
    Ok(value.to_string())
}

/// An email domain such as `acme.example`: lower-cased, labels of letters, digits and hyphens.
pub fn domain(input: &str) -> Result<String, DomainError> {
    let domain = input.trim().trim_end_matches('.').to_lowercase();
    let labels_ok = domain.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    if domain.len() <= 253 && domain.contains('.') && labels_ok {
        Ok(domain)
    } else {
        Err(DomainError::invalid(format!("{:?} is not a valid domain name", input.trim())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(email("  Dana@Acme.Example ").unwrap(), "dana@acme.example");
        for bad in ["", "dana", "@acme.example", "dana@acme", "da na@acme.example", "a@b@c.example", "dana@.example"] {
            assert!(email(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn labels_and_domains() {
        assert_eq!(label("Name", "  Acme  ", 10).unwrap(), "Acme");
        assert!(label("Name", "   ", 10).is_err());
        assert!(label("Name", "12345678901", 10).is_err());
        assert_eq!(domain("Acme.Example.").unwrap(), "acme.example");
        assert!(domain("acme").is_err());
        assert!(domain("-acme.example").is_err());
        assert!(domain("acme..example").is_err());
    }
}

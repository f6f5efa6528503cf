//! Bounded free-text fields (names, descriptions, emails), validated once so
//! that storage never sees an oversized or empty value.

use crate::DomainError;

/// Checks a free-text field: trimmed of nothing, at most `max` characters,
/// and non-empty when `required`.
pub fn bounded(param: &str, value: String, max: usize, required: bool) -> Result<String, DomainError> {
    if required && value.trim().is_empty() {
        return Err(DomainError::invalid(param, format!("`{param}` must not be empty")));
    }
    if value.chars().count() > max {
        return Err(DomainError::invalid(
            param,
            format!("`{param}` must be at most {max} characters"),
        ));
    }
    if value.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(DomainError::invalid(
            param,
            format!("`{param}` must not contain control characters"),
        ));
    }
    Ok(value)
}

/// A plausible email address: one `@`, something on each side, a dot in the
/// domain, no spaces, at most 254 characters (the SMTP limit).
pub fn email(value: String) -> Result<String, DomainError> {
    let value = bounded("email", value, 254, true)?;
    let ok = match value.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
                && !value.contains(char::is_whitespace)
        }
        None => false,
    };
    if ok {
        Ok(value)
    } else {
        Err(DomainError::invalid("email", "`email` is not a valid email address"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_rules() {
        assert!(email("a@b.co".into()).is_ok());
        for bad in ["", "ab.co", "a@b", "a@.b", "a b@c.d", "@b.co", "a@b@c.d"] {
            assert!(email(bad.into()).is_err(), "{bad}");
        }
    }

    #[test]
    fn bounded_rules() {
        assert!(bounded("name", "x".repeat(5), 5, true).is_ok());
        assert!(bounded("name", "x".repeat(6), 5, true).is_err());
        assert!(bounded("name", "  ".into(), 5, true).is_err());
        assert!(bounded("name", String::new(), 5, false).is_ok());
        assert!(bounded("name", "a\u{0}".into(), 5, false).is_err());
    }
}

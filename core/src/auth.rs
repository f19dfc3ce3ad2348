//! The authenticated caller and the authorization rules every service applies.

use std::collections::BTreeSet;
use std::net::IpAddr;

use crate::apikey::{ApiKey, Role};
use crate::error::Error;
use crate::id::{ApiKeyId, SessionId};

/// Who is calling: derived from an API key (or, behind API Gateway, from the authorizer's context).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub key_id: ApiKeyId,
    pub key_name: String,
    pub role: Role,
    pub allowed_sessions: Option<BTreeSet<SessionId>>,
    pub rate_limit_per_minute: Option<u32>,
    pub source_ip: Option<IpAddr>,
}

impl Principal {
    pub fn from_key(key: &ApiKey, source_ip: Option<IpAddr>) -> Self {
        Self {
            key_id: key.id.clone(),
            key_name: key.name.clone(),
            role: key.role,
            allowed_sessions: key.allowed_sessions.clone(),
            rate_limit_per_minute: key.rate_limit_per_minute,
            source_ip,
        }
    }

    /// Fails with `Forbidden` unless the role is at least `needed`.
    pub fn require(&self, needed: Role) -> Result<(), Error> {
        if self.role >= needed {
            Ok(())
        } else {
            Err(Error::forbidden(format!(
                "this action needs the {} role",
                needed.as_str()
            )))
        }
    }

    pub fn can_see(&self, session: &SessionId) -> bool {
        self.allowed_sessions
            .as_ref()
            .is_none_or(|allowed| allowed.contains(session))
    }

    /// Fails with `NotFound` (not `Forbidden`) for sessions outside the key's list, so a key
    /// cannot probe which sessions exist.
    pub fn check_session(&self, session: &SessionId) -> Result<(), Error> {
        if self.can_see(session) {
            Ok(())
        } else {
            Err(Error::NotFound {
                resource: "session",
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(role: Role, sessions: Option<&[&str]>) -> Principal {
        Principal {
            key_id: ApiKeyId::generate(),
            key_name: "t".into(),
            role,
            allowed_sessions: sessions
                .map(|s| s.iter().map(|x| SessionId::parse(x).unwrap()).collect()),
            rate_limit_per_minute: None,
            source_ip: None,
        }
    }

    #[test]
    fn roles_include_the_ones_below() {
        let op = principal(Role::Operator, None);
        assert!(op.require(Role::Viewer).is_ok());
        assert!(op.require(Role::Operator).is_ok());
        assert!(matches!(
            op.require(Role::Admin),
            Err(Error::Forbidden { .. })
        ));
    }

    #[test]
    fn a_key_limited_to_one_session_gets_not_found_for_others() {
        let p = principal(Role::Admin, Some(&["a"]));
        assert!(p.check_session(&SessionId::parse("a").unwrap()).is_ok());
        assert_eq!(
            p.check_session(&SessionId::parse("b").unwrap()),
            Err(Error::NotFound {
                resource: "session"
            })
        );
    }
}

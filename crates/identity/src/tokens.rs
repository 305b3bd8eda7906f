//! Access tokens (JWT, HS256 only) and opaque refresh tokens (stored as SHA-256).

use std::time::Duration;

use chrono::Utc;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use kloyst_core::{UserId, VendorId};
use rand::rngs::OsRng;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::IdentityError;
use crate::model::{Principal, Role};

pub(crate) const ISSUER: &str = "kloyst";
/// Clock skew tolerated between the copies of the api-gateway.
const LEEWAY_SECS: u64 = 5;

/// Every claim is required: serde refuses a token that lacks one.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Claims {
    pub sub: Uuid,
    pub vendor_id: Uuid,
    pub role: Role,
    pub iat: i64,
    pub exp: i64,
    pub jti: Uuid,
    pub iss: String,
}

pub(crate) struct Jwt {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    access_ttl: Duration,
}

impl Jwt {
    pub fn new(secret: &[u8], access_ttl: Duration) -> Self {
        // Pinned to HS256: a token announcing `none`, RS256 (the public-key confusion
        // attack) or any other algorithm is refused before its signature is looked at.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.validate_exp = true;
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "sub", "iss"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            access_ttl,
        }
    }

    pub fn access_ttl_secs(&self) -> u64 {
        self.access_ttl.as_secs()
    }

    pub fn issue(
        &self,
        user: UserId,
        vendor: VendorId,
        role: Role,
    ) -> Result<String, IdentityError> {
        let now = Utc::now().timestamp();
        let claims = Claims {
            sub: user.as_uuid(),
            vendor_id: vendor.as_uuid(),
            role,
            iat: now,
            exp: now.saturating_add(i64::try_from(self.access_ttl.as_secs()).unwrap_or(i64::MAX)),
            jti: Uuid::new_v4(),
            iss: ISSUER.to_owned(),
        };
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.encoding,
        )?)
    }

    /// Signature, algorithm, issuer and expiry; the caller then checks the user in the
    /// database. Every failure is the same `TokenInvalid`: the client only needs to know
    /// that it must log in again.
    pub fn decode(&self, token: &str) -> Result<Principal, IdentityError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|_| IdentityError::TokenInvalid)?;
        let claims = data.claims;
        // A token "issued" in the future was not issued by us.
        let leeway = i64::try_from(LEEWAY_SECS).unwrap_or(0);
        if claims.iat > Utc::now().timestamp() + leeway || claims.iat > claims.exp {
            return Err(IdentityError::TokenInvalid);
        }
        Ok(Principal {
            user_id: UserId::from_uuid(claims.sub),
            vendor_id: VendorId::from_uuid(claims.vendor_id),
            role: claims.role,
        })
    }
}

/// A new refresh token (32 random bytes, hex) and the SHA-256 that is stored instead of it.
pub(crate) fn new_refresh_token() -> (String, [u8; 32]) {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    let token = hex::encode(bytes);
    let hash = refresh_token_hash(&token);
    (token, hash)
}

/// A plain SHA-256 is enough here (no salt, no stretching): the token has 256 bits of
/// entropy, so the hash cannot be reversed by guessing, and lookups stay one index probe.
pub(crate) fn refresh_token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.trim().as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt() -> Jwt {
        Jwt::new(
            b"unit-test-secret-unit-test-secret-0123",
            Duration::from_secs(900),
        )
    }

    #[test]
    fn round_trip() {
        let jwt = jwt();
        let user = UserId::from_uuid(Uuid::new_v4());
        let vendor = VendorId::from_uuid(Uuid::new_v4());
        let token = jwt.issue(user, vendor, Role::Staff).unwrap();
        let principal = jwt.decode(&token).unwrap();
        assert_eq!(principal.user_id, user);
        assert_eq!(principal.vendor_id, vendor);
        assert_eq!(principal.role, Role::Staff);
    }

    #[test]
    fn another_secret_or_a_changed_payload_is_refused() {
        let token = jwt()
            .issue(
                UserId::from_uuid(Uuid::new_v4()),
                VendorId::from_uuid(Uuid::new_v4()),
                Role::Admin,
            )
            .unwrap();
        let other = Jwt::new(
            b"another-secret-another-secret-0123456",
            Duration::from_secs(900),
        );
        assert!(matches!(
            other.decode(&token),
            Err(IdentityError::TokenInvalid)
        ));
        assert!(matches!(
            jwt().decode("not.a.jwt"),
            Err(IdentityError::TokenInvalid)
        ));
        assert!(matches!(jwt().decode(""), Err(IdentityError::TokenInvalid)));
    }

    #[test]
    fn refresh_tokens_are_random_and_hashed() {
        let (a, hash_a) = new_refresh_token();
        let (b, _) = new_refresh_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert_eq!(refresh_token_hash(&a), hash_a);
    }
}

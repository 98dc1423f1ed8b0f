//! Optional bearer-token authentication. With `api.tokens` configured, every route
//! but `/health` wants `Authorization: Bearer <token>` naming one of them; otherwise
//! 401 `unauthorized` with `WWW-Authenticate: Bearer`. Tokens are compared as
//! SHA-256 digests in constant time (the `subtle` crate), against every configured
//! token, so neither the position of a mismatch nor a token's length leaks.

use super::error::ApiError;
use super::ApiState;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// The accepted tokens, as digests.
#[derive(Clone, Default)]
pub struct Tokens {
    digests: Vec<[u8; 32]>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens").field("count", &self.digests.len()).finish()
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Tokens {
    /// The tokens a client may present (none: authentication is off).
    pub fn new(tokens: &[String]) -> Self {
        Self {
            digests: tokens.iter().map(|t| digest(t)).collect(),
        }
    }

    /// True when no token is configured.
    pub fn is_disabled(&self) -> bool {
        self.digests.is_empty()
    }

    /// True when `presented` is one of the tokens. Looks at every token whatever
    /// matches, in constant time for each.
    pub fn accepts(&self, presented: &str) -> bool {
        let presented = digest(presented);
        let mut found = subtle::Choice::from(0u8);
        for d in &self.digests {
            found |= d.ct_eq(&presented);
        }
        bool::from(found)
    }
}

/// The middleware: passes the request on when authentication is off or its bearer
/// token is accepted.
pub async fn require_token(State(state): State<Arc<ApiState>>, req: Request, next: Next) -> Result<Response, ApiError> {
    if state.tokens.is_disabled() {
        return Ok(next.run(req).await);
    }
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    match presented {
        Some(token) if state.tokens.accepts(token) => Ok(next.run(req).await),
        Some(_) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the bearer token is not accepted",
        )),
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this route needs `Authorization: Bearer <token>`",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_configured_tokens_are_accepted() {
        let tokens = Tokens::new(&["alpha".into(), "beta".into()]);
        assert!(tokens.accepts("alpha") && tokens.accepts("beta"));
        assert!(!tokens.accepts("alph") && !tokens.accepts("alphaa") && !tokens.accepts(""));
        assert!(Tokens::new(&[]).is_disabled());
    }
}

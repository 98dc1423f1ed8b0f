//! The JSON body extractor: reads the body (up to `api.body_limit_bytes`, else 413)
//! and decodes it, turning every failure into an [`ApiError`] that names the field
//! at fault: malformed JSON is 400 `bad_request`, JSON of the wrong shape is 422
//! `invalid_body` with the field's path.

use super::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;

/// A JSON request body of type `T`.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

/// The body of a request that may have none (an empty body reads as `None`).
#[derive(Debug)]
pub struct OptionalJsonBody<T>(pub Option<T>);

fn check_content_type(req: &Request) -> Result<(), ApiError> {
    let Some(ct) = req.headers().get(header::CONTENT_TYPE) else {
        return Ok(()); // curl -d without -H: accept, the body must still be JSON
    };
    let ct = ct.to_str().unwrap_or("").to_ascii_lowercase();
    let essence = ct.split(';').next().unwrap_or("").trim();
    if essence == "application/json" || essence.ends_with("+json") {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("the body must be application/json, not `{essence}`"),
        ))
    }
}

async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    check_content_type(&req)?;
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the request body is larger than the configured limit (api.body_limit_bytes)",
            )
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, "bad_request", rejection.body_text())
        }
    })
}

/// Decodes `bytes` as a `T`, naming the field at fault.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("malformed JSON: {inner}"),
            );
        }
        let message = inner.to_string();
        // A missing field's path is its parent's; its name is in the message.
        let missing = message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next());
        let field = match (path.as_str(), missing) {
            (".", Some(name)) => name.to_string(),
            (parent, Some(name)) => format!("{parent}.{name}"),
            (p, None) => p.to_string(),
        };
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", message).field(field)
    })
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = read_body(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "the request body is empty",
            ));
        }
        decode(&bytes).map(JsonBody)
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for OptionalJsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = read_body(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(None));
        }
        decode(&bytes).map(|v| Self(Some(v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        namespace: String,
        inner: Option<Inner>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        n: u32,
    }

    #[test]
    fn decoding_errors_name_the_field_at_fault() {
        let e = decode::<Body>(b"{").unwrap_err();
        assert_eq!((e.status(), e.code()), (StatusCode::BAD_REQUEST, "bad_request"));
        let e = decode::<Body>(b"{}").unwrap_err();
        assert_eq!(
            (e.status(), e.code()),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_body")
        );
        assert_eq!(e.detail_field(), Some("namespace"));
        let e = decode::<Body>(br#"{"namespace": 3}"#).unwrap_err();
        assert_eq!(e.detail_field(), Some("namespace"));
        let e = decode::<Body>(br#"{"namespace": "a", "inner": {"n": "x"}}"#).unwrap_err();
        assert_eq!(e.detail_field(), Some("inner.n"));
        let e = decode::<Body>(br#"{"namespace": "a", "extra": 1}"#).unwrap_err();
        assert_eq!(e.detail_field(), Some("extra"));
    }
}

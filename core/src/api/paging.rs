//! Paging of the list endpoints (`GET /v1/tasks`, `GET /v1/dlq`): the `limit` and
//! `offset` query parameters, the page-size cap (`api.max_page_size`) and the
//! `next_offset` of a full page.

use super::error::ApiError;

/// Parses the `limit` or `offset` query parameter.
pub fn parse(field: &'static str, value: &str) -> Result<u32, ApiError> {
    let what = if field == "limit" { "a page size" } else { "an offset" };
    value
        .parse()
        .map_err(|_| ApiError::invalid_parameter(field, format!("`{value}` is not {what}")))
}

/// Refuses a page larger than `max` (`noun` names the rows: "tasks", "entries").
pub fn check_limit(limit: u32, max: u32, noun: &str) -> Result<(), ApiError> {
    if limit > max {
        return Err(ApiError::invalid_parameter(
            "limit",
            format!("at most {max} {noun} per page"),
        ));
    }
    Ok(())
}

/// The `offset` of the next page when this one (of `len` rows) is full.
pub fn next_offset(len: usize, limit: u32, offset: u32) -> Option<u32> {
    (len as u32 == limit && limit > 0).then_some(offset + limit)
}

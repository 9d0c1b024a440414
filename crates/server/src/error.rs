//! Errors in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}`
//! with OpenAI's statuses. Client mistakes are 4xx — never 5xx, which the
//! official SDKs retry.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use vkwhisper::ErrorKind;

/// One error response.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// One line for a person.
    pub message: String,
    /// OpenAI's `type`.
    pub kind: &'static str,
    /// The request field concerned, if any.
    pub param: Option<String>,
    /// OpenAI's `code`, if any.
    pub code: Option<&'static str>,
    /// Seconds to wait before retrying (429, 503).
    pub retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            message: one_line(&message.into()),
            kind,
            param: None,
            code: None,
            retry_after: None,
        }
    }

    /// 400 about `param`. The name may be the client's own field name, so
    /// it is clipped and kept to one line like the message (found by the
    /// server_request fuzz target: a 230-character field name came back).
    pub fn invalid(param: &str, message: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", message);
        e.param = Some(one_line(&clip(param, 64)));
        e
    }

    /// 400 about the request as a whole.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
    }

    /// 404 `model_not_found`.
    pub fn model_not_found(model: &str) -> Self {
        let mut e = Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            format!(
                "The model {:?} does not exist: see GET /v1/models for the models this server has",
                clip(model, 80)
            ),
        );
        e.param = Some("model".into());
        e.code = Some("model_not_found");
        e
    }

    /// 413: the body is over the limit.
    pub fn too_large(limit_bytes: u64) -> Self {
        let mut e = Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            format!(
                "The request body is larger than this server's limit of {} MB",
                limit_bytes / (1024 * 1024)
            ),
        );
        e.param = Some("file".into());
        e.code = Some("file_too_large");
        e
    }

    /// 429 with `Retry-After`.
    pub fn queue_full(retry_after: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_exceeded",
            "The server's transcription queue is full; retry shortly",
        );
        e.code = Some("rate_limit_exceeded");
        e.retry_after = Some(retry_after);
        e
    }

    /// 429: `--max-sessions` live sessions are open.
    pub fn sessions_full(max: usize) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_exceeded",
            format!("The server has {max} live sessions open, its limit; retry shortly"),
        );
        e.code = Some("rate_limit_exceeded");
        e.retry_after = Some(5);
        e
    }

    /// 401.
    pub fn unauthorized() -> Self {
        let mut e = Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "Incorrect or missing API key: send it as `Authorization: Bearer KEY`",
        );
        e.code = Some("invalid_api_key");
        e
    }

    /// 404 for a path the server does not have.
    pub fn no_route(path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            format!("Unknown path {:?}", clip(path, 80)),
        )
    }

    /// 405.
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request_error",
            "Method not allowed on this path",
        )
    }

    /// 503 while loading or shutting down.
    pub fn unavailable(message: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::SERVICE_UNAVAILABLE, "server_error", message);
        e.retry_after = Some(5);
        e
    }

    /// 500: a bug or a failing device, never a client mistake.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", message)
    }

    /// A library error mapped by its kind.
    pub fn from_engine(e: &vkwhisper::Error) -> Self {
        let msg = e.to_string();
        match e.kind() {
            ErrorKind::InvalidInput => Self::invalid("file", msg),
            ErrorKind::InvalidOption => Self::bad_request(msg),
            ErrorKind::Unsupported => Self::bad_request(msg),
            ErrorKind::NotFound => {
                let mut e = Self::new(StatusCode::NOT_FOUND, "invalid_request_error", msg);
                e.param = Some("model".into());
                e.code = Some("model_not_found");
                e
            }
            ErrorKind::Cancelled => {
                // The client went away: nobody reads this, but log-wise it
                // is the client's doing (nginx's 499).
                Self::new(
                    StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
                    "invalid_request_error",
                    msg,
                )
            }
            ErrorKind::OutOfMemory | ErrorKind::Unavailable => {
                let mut e = Self::new(StatusCode::SERVICE_UNAVAILABLE, "server_error", msg);
                e.retry_after = Some(10);
                e
            }
            _ => Self::internal(msg),
        }
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({
            "error": {
                "message": self.message,
                "type": self.kind,
                "param": self.param,
                "code": self.code,
            }
        })
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.status, Json(self.body())).into_response();
        if let Some(s) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        r
    }
}

/// The first line of a message, control characters replaced.
fn one_line(s: &str) -> String {
    s.lines()
        .next()
        .unwrap_or_default()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// At most `max` characters of a client's text, for messages.
pub fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

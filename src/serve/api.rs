//! The HTTP surface: `GET /` (the page), `GET /v1/runs`, `GET /healthz` and
//! `POST /v1/colorize[?run=NAME][&format=png|jpeg][&vividness=T]` (image bytes in, the colorized image
//! out, at the photo's size). Every error is JSON of one shape,
//! `{"error": {"code": "...", "message": "..."}}`, with a 4xx for what the client sent and
//! a 503 (with `Retry-After`) when the queue is full; 408 when a request (its body
//! included) takes longer than the timeout.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use image::{GrayImage, RgbImage};
use tokio::sync::Semaphore;

use super::worker::{RunInfo, Worker};
use crate::photo::check::{Rejection, Validator};

/// The page: one file, no network but this server.
const PAGE: &str = include_str!("../../templates/serve/index.html");

/// Seconds a client is told to wait when the queue is full.
const RETRY_AFTER_S: u64 = 1;

/// What every handler shares.
pub struct Shared {
    /// Runs in the order given; the first is the default.
    pub workers: Vec<Worker>,
    /// Requests admitted at once (reading, decoding, queued, colorizing); past it, 503.
    pub admitted: Semaphore,
    pub timeout: Duration,
    pub max_body: u64,
    pub validator: Validator,
}

pub fn router(shared: Arc<Shared>) -> axum::Router {
    axum::Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/healthz", get(|| async { Json(serde_json::json!({"status": "ok"})) }))
        .route("/v1/runs", get(runs))
        .route("/v1/colorize", post(colorize))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not-found", "no such path") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "not with this method",
            )
        })
        .with_state(shared)
}

async fn runs(State(shared): State<Arc<Shared>>) -> Json<Vec<RunInfo>> {
    Json(shared.workers.iter().map(|w| w.info.clone()).collect())
}

#[derive(Debug, serde::Deserialize)]
struct Params {
    run: Option<String>,
    format: Option<String>,
    vividness: Option<f64>,
}

/// The image formats a colorization is sent back in.
#[derive(Clone, Copy)]
enum Output {
    Png,
    Jpeg,
}

async fn colorize(
    State(shared): State<Arc<Shared>>,
    params: Result<Query<Params>, QueryRejection>,
    request: Request,
) -> Result<Response, ApiError> {
    let Query(params) =
        params.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad-query", e.body_text()))?;
    let (worker, output) = resolve(&shared, &params)?;
    let _admitted = shared.admitted.try_acquire().map_err(|_| ApiError::busy())?;
    let work = async {
        let bytes = read_body(request, shared.max_body).await?;
        let photo = decode(shared.clone(), bytes).await?;
        let colorized = worker
            .submit(photo, params.vividness)
            .map_err(|_| ApiError::busy())?
            .await
            .map_err(|_| ApiError::internal("the run's worker stopped"))?
            .map_err(ApiError::internal)?;
        encode(colorized, output).await
    };
    tokio::time::timeout(shared.timeout, work).await.map_err(|_| {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "timeout",
            format!("the request took longer than {} s", shared.timeout.as_secs_f64()),
        )
    })?
}

/// The run and the output format a request asks for, and whether its temperature is one
/// the run can decode at.
fn resolve<'a>(shared: &'a Shared, params: &Params) -> Result<(&'a Worker, Output), ApiError> {
    let worker = match &params.run {
        None => &shared.workers[0],
        Some(run) => shared.workers.iter().find(|w| &w.info.name == run).ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown-run",
                format!("no run named {run:?} is served"),
            )
        })?,
    };
    let output = match params.format.as_deref() {
        None | Some("png") => Output::Png,
        Some("jpeg" | "jpg") => Output::Jpeg,
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "unknown-format",
                format!("format {other:?}: png or jpeg"),
            ));
        }
    };
    if let Some(t) = params.vividness {
        let bad = |why: String| ApiError::new(StatusCode::BAD_REQUEST, "bad-vividness", why);
        if worker.info.vividness.is_none() {
            return Err(bad(format!("run {:?} has no class head to decode", worker.info.name)));
        }
        if !(t > 0.0 && t <= 1.0) {
            return Err(bad(format!("vividness {t}: above 0 and at most 1")));
        }
    }
    Ok((worker, output))
}

/// The body, refused past `max_body` bytes (at once when Content-Length says so).
async fn read_body(request: Request, max_body: u64) -> Result<bytes::Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            format!("the body is larger than network.max_bytes ({max_body} bytes)"),
        )
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max_body) {
        return Err(too_large());
    }
    let limit = usize::try_from(max_body).unwrap_or(usize::MAX);
    axum::body::to_bytes(request.into_body(), limit).await.map_err(|e| {
        let limited = std::error::Error::source(&e)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        match limited {
            true => too_large(),
            false => ApiError::new(StatusCode::BAD_REQUEST, "bad-body", e.to_string()),
        }
    })
}

/// Validated as fetched images are (magic bytes, the header's size against
/// `images.max_pixels`, a decode of the whole stream), in the same one decode that gives
/// the gray photo to colorize: on a blocking thread, under the decode budget.
async fn decode(shared: Arc<Shared>, bytes: bytes::Bytes) -> Result<GrayImage, ApiError> {
    let budget = crate::photo::budget::global();
    let permit = budget.take(&bytes).await;
    tokio::task::spawn_blocking(move || {
        let gray = shared.validator.decode_gray(&bytes).map_err(ApiError::rejected);
        drop(permit);
        gray
    })
    .await
    .map_err(|_| ApiError::internal("decoding failed"))?
}

async fn encode(image: RgbImage, output: Output) -> Result<Response, ApiError> {
    tokio::task::spawn_blocking(move || {
        let mut bytes = Vec::new();
        let (content_type, result) = match output {
            Output::Png => {
                let encoder = image::codecs::png::PngEncoder::new_with_quality(
                    &mut bytes,
                    image::codecs::png::CompressionType::Fast,
                    // Measured at 512 x 512: 1.1 ms, 10 % larger than Adaptive's 1.5 ms.
                    image::codecs::png::FilterType::Up,
                );
                ("image/png", image.write_with_encoder(encoder))
            }
            Output::Jpeg => {
                let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 90);
                ("image/jpeg", image.write_with_encoder(encoder))
            }
        };
        result.map_err(|e| ApiError::internal(e.to_string()))?;
        let mut response = Response::new(Body::from(bytes));
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        Ok(response)
    })
    .await
    .map_err(|_| ApiError::internal("encoding failed"))?
}

/// An error as every endpoint sends it.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into() }
    }

    fn busy() -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "every place in the queue is taken: try again shortly",
        )
    }

    fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    /// A body that is not a usable image: 415 when it is no image at all, 413 past
    /// `images.max_pixels`, 422 otherwise (truncated, undecodable, too small).
    fn rejected(rejection: Rejection) -> ApiError {
        let status = match rejection {
            Rejection::Empty
            | Rejection::Html
            | Rejection::NotImage
            | Rejection::Unsupported(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Rejection::TooManyPixels { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        ApiError::new(status, rejection.kind(), rejection.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": {"code": self.code, "message": self.message}});
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_S));
        }
        response
    }
}

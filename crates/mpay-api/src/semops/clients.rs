//! The reqwest clients of the CPP, the MPP and the DC, over the shapes of
//! the parent module.

use std::time::Duration;

use mpay_identity::{Certificate, PartyId, hex_bytes, hex_string};
use mpay_semops::{SignedMerchantDecision, SignedRefundRequest, SignedStandingApproval};
use mpay_wire::{Decode, Encode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ApiError;

use super::*;

/// Why a call to a service failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No answer (connection refused, timeout).
    #[error("cannot reach {url}: {source}")]
    Unreachable {
        /// The URL.
        url: String,
        /// What reqwest said.
        #[source]
        source: reqwest::Error,
    },
    /// The service answered with an error.
    #[error("refused ({status}): {} — {}", .error.error, .error.message)]
    Refused {
        /// HTTP status.
        status: u16,
        /// The service's error.
        error: ApiError,
    },
    /// The answer does not parse.
    #[error("unexpected answer: {0}")]
    BadAnswer(String),
    /// Not sent: a token would have crossed a plaintext connection (the
    /// caller's configuration is at fault).
    #[error(transparent)]
    Transport(#[from] mpay_tls_client::TlsError),
}

impl ClientError {
    /// The service's error code (`wrong_pin`, …), if it refused.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Refused { error, .. } => Some(&error.error),
            _ => None,
        }
    }

    /// True when the service answered 503 `busy`: it changed nothing, and
    /// the same request may be sent again after a pause.
    pub fn is_busy(&self) -> bool {
        matches!(self, ClientError::Refused { status: 503, error } if error.error == "busy")
    }
}

/// Why [`CppClient::submit_sealed`] failed.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError<E> {
    /// The device could not seal its PR.
    #[error("sealing the PR: {0}")]
    Seal(#[source] E),
    /// The CPP refused the PR or could not be reached.
    #[error(transparent)]
    Client(#[from] ClientError),
}

impl<E: From<ClientError>> SubmitError<E> {
    /// One error of the caller's type, whichever step failed.
    pub fn into_error(self) -> E {
        match self {
            SubmitError::Seal(error) => error,
            SubmitError::Client(error) => E::from(error),
        }
    }
}

/// How many times [`CppClient::submit_sealed`] sends a PR while the CPP
/// answers `busy`.
pub const SUBMIT_BUSY_ATTEMPTS_MAX: u32 = 5;

#[derive(Clone, Debug)]
struct Http {
    base: String,
    http: reqwest::Client,
    plaintext: mpay_tls_client::Plaintext,
}

impl Http {
    fn new(base: &str) -> Result<Http, mpay_tls_client::TlsError> {
        let http =
            mpay_tls_client::default_client(Duration::from_millis(CLIENT_TIMEOUT_MS_DEFAULT))?;
        Ok(Http::with_http(base, http))
    }

    fn with_http(base: &str, http: reqwest::Client) -> Http {
        Http {
            base: base.trim_end_matches('/').to_owned(),
            http,
            plaintext: mpay_tls_client::Plaintext::from_env(),
        }
    }

    /// Sends `request`, unless it carries a token to a plaintext URL the
    /// policy refuses.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ClientError> {
        let unreachable = |source| ClientError::Unreachable {
            url: self.base.clone(),
            source,
        };
        let request = request.build().map_err(unreachable)?;
        mpay_tls_client::check_request(&request, self.plaintext)?;
        self.http.execute(request).await.map_err(unreachable)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    async fn json<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        let response = self.send(request).await?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| ClientError::BadAnswer(e.to_string()))?;
        if status.is_success() {
            serde_json::from_slice(&bytes).map_err(|e| ClientError::BadAnswer(e.to_string()))
        } else {
            let error = serde_json::from_slice(&bytes).unwrap_or_else(|_| ApiError {
                error: "http".into(),
                message: String::from_utf8_lossy(&bytes).into_owned(),
            });
            Err(ClientError::Refused {
                status: status.as_u16(),
                error,
            })
        }
    }

    fn get(&self, path: &str, token: Option<&str>) -> reqwest::RequestBuilder {
        let request = self.http.get(self.url(path));
        match token {
            Some(t) => request.bearer_auth(t),
            None => request,
        }
    }

    fn post<B: Serialize>(
        &self,
        path: &str,
        token: Option<&str>,
        body: &B,
    ) -> reqwest::RequestBuilder {
        let request = self.http.post(self.url(path)).json(body);
        match token {
            Some(t) => request.bearer_auth(t),
            None => request,
        }
    }

    fn long(&self, request: reqwest::RequestBuilder, wait_ms: u64) -> reqwest::RequestBuilder {
        request.timeout(Duration::from_millis(
            CLIENT_TIMEOUT_MS_DEFAULT.saturating_add(wait_ms),
        ))
    }

    async fn health(&self) -> Result<(), ClientError> {
        let _: serde_json::Value = self.json(self.get("/health", None)).await?;
        Ok(())
    }

    async fn identity(&self) -> Result<Identity, ClientError> {
        self.json(self.get("/v1/identity", None)).await
    }

    async fn work(&self, operator_token: &str) -> Result<Work, ClientError> {
        self.json(self.get("/v1/admin/work", Some(operator_token)))
            .await
    }

    async fn metrics(&self) -> Result<String, ClientError> {
        let response = self.send(self.get("/metrics", None)).await?;
        response
            .text()
            .await
            .map_err(|e| ClientError::BadAnswer(e.to_string()))
    }

    async fn post_inbox(&self, frame: Vec<u8>) -> Result<InboxAnswer, ClientError> {
        self.json(
            self.http
                .post(self.url("/v1/inbox"))
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                .body(frame),
        )
        .await
    }
}

fn certificate_from_hex(text: &str) -> Result<Certificate, ClientError> {
    let bytes =
        hex_bytes(text).ok_or_else(|| ClientError::BadAnswer("certificate: not hex".into()))?;
    Certificate::from_wire(&bytes).map_err(|e| ClientError::BadAnswer(format!("certificate: {e}")))
}

/// What every service client has: its constructors, and the routes every
/// service serves (`/health`, `/metrics`, `/v1/identity`,
/// `/v1/admin/work`).
macro_rules! service_client {
    ($client:ident) => {
        /// The service at `base` (e.g. `https://127.0.0.1:7811`).
        /// An error when the process's root of trust cannot be read
        /// ([`mpay_tls_client::default_client`]).
        pub fn new(base: &str) -> Result<$client, mpay_tls_client::TlsError> {
            Ok($client(Http::new(base)?))
        }

        /// Sharing `http`'s pool, time limit and root of trust.
        pub fn with_http(base: &str, http: reqwest::Client) -> $client {
            $client(Http::with_http(base, http))
        }

        /// The same client, sending tokens over plaintext to loopback as
        /// `plaintext` (or the environment) allows.
        pub fn with_plaintext(mut self, plaintext: mpay_tls_client::Plaintext) -> $client {
            self.0.plaintext = plaintext.or_env();
            self
        }

        /// `GET /health`.
        pub async fn health(&self) -> Result<(), ClientError> {
            self.0.health().await
        }

        /// `GET /metrics` (Prometheus text).
        pub async fn metrics(&self) -> Result<String, ClientError> {
            self.0.metrics().await
        }

        /// `GET /v1/identity`.
        pub async fn identity(&self) -> Result<Identity, ClientError> {
            self.0.identity().await
        }

        /// `GET /v1/admin/work` (operator): what the service still has moving.
        pub async fn work(&self, operator_token: &str) -> Result<Work, ClientError> {
            self.0.work(operator_token).await
        }
    };
}

/// A client of a CPP.
#[derive(Clone, Debug)]
pub struct CppClient(Http);

impl CppClient {
    service_client!(CppClient);

    /// The CPP's certificate (what a customer device seals PRs to).
    pub async fn certificate(&self) -> Result<Certificate, ClientError> {
        certificate_from_hex(&self.identity().await?.certificate)
    }

    /// `POST /v1/customers` (operator): enrols a customer and device;
    /// returns the device's certificate (role Customer, issued by the CPP).
    pub async fn enroll_customer(
        &self,
        operator_token: &str,
        request: &EnrolCustomer,
    ) -> Result<Certificate, ClientError> {
        let answer: Enrolled = self
            .0
            .json(self.0.post("/v1/customers", Some(operator_token), request))
            .await?;
        certificate_from_hex(&answer.certificate)
    }

    /// `POST /v1/customers/{name}/pin` (operator): sets a new PIN.
    pub async fn set_pin(
        &self,
        operator_token: &str,
        customer: &str,
        pin: &str,
    ) -> Result<(), ClientError> {
        let request = SetPin {
            pin: pin.to_owned(),
        };
        let _: serde_json::Value = self
            .0
            .json(self.0.post(
                &format!("/v1/customers/{customer}/pin"),
                Some(operator_token),
                &request,
            ))
            .await?;
        Ok(())
    }

    /// `GET /v1/admin/pins` (operator): how the customers' PINs are stored.
    pub async fn pin_report(&self, operator_token: &str) -> Result<PinReport, ClientError> {
        self.0
            .json(self.0.get("/v1/admin/pins", Some(operator_token)))
            .await
    }

    /// `POST /v1/customers/{name}/unlock` (operator).
    pub async fn unlock(&self, operator_token: &str, customer: &str) -> Result<(), ClientError> {
        let _: serde_json::Value = self
            .0
            .json(self.0.post(
                &format!("/v1/customers/{customer}/unlock"),
                Some(operator_token),
                &serde_json::json!({}),
            ))
            .await?;
        Ok(())
    }

    /// `POST /v1/payments`: a PR frame made by `mpay_semops::seal_pr`.
    pub async fn submit(&self, pr_frame: Vec<u8>) -> Result<PaymentStatus, ClientError> {
        self.0
            .json(
                self.0
                    .http
                    .post(self.0.url("/v1/payments"))
                    .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                    .body(pr_frame),
            )
            .await
    }

    /// Submits the PR that `seal` makes, as a customer's device does: while
    /// the CPP answers `busy` (nothing recorded), waits
    /// [`BUSY_RETRY_AFTER_S`](crate::BUSY_RETRY_AFTER_S) seconds,
    /// doubling, and sends it again, [`SUBMIT_BUSY_ATTEMPTS_MAX`] times in
    /// all. `seal` is called once per attempt: the same PR (same TRANS and
    /// idempotency key) in a fresh envelope, since the CPP refuses an
    /// envelope it has already opened as a replay.
    pub async fn submit_sealed<E>(
        &self,
        mut seal: impl FnMut() -> Result<Vec<u8>, E>,
    ) -> Result<PaymentStatus, SubmitError<E>> {
        let mut pause = Duration::from_secs(u64::from(crate::BUSY_RETRY_AFTER_S));
        let mut attempt = 1;
        loop {
            match self.submit(seal().map_err(SubmitError::Seal)?).await {
                Err(error) if error.is_busy() && attempt < SUBMIT_BUSY_ATTEMPTS_MAX => {
                    tokio::time::sleep(pause).await;
                    pause = pause.saturating_mul(2);
                    attempt += 1;
                }
                other => return Ok(other?),
            }
        }
    }

    /// `GET /v1/payments/{id}?wait_ms=`: answers once the payment is final
    /// or after `wait_ms`.
    pub async fn status(
        &self,
        payment_id: &str,
        wait_ms: u64,
    ) -> Result<PaymentStatus, ClientError> {
        let request = self.0.get(
            &format!("/v1/payments/{payment_id}?wait_ms={wait_ms}"),
            None,
        );
        self.0.json(self.0.long(request, wait_ms)).await
    }

    /// `GET /v1/admin/payments?after=&limit=` (operator).
    pub async fn payments(
        &self,
        operator_token: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<PaymentRecord>, ClientError> {
        self.0
            .json(self.0.get(
                &format!("/v1/admin/payments?after={after}&limit={limit}"),
                Some(operator_token),
            ))
            .await
    }

    /// `POST /v1/inbox` (services only: a sealed frame).
    pub async fn post_inbox(&self, frame: Vec<u8>) -> Result<InboxAnswer, ClientError> {
        self.0.post_inbox(frame).await
    }

    /// `GET /v1/admin/micro` (operator): the micropayment books.
    pub async fn micro_summary(
        &self,
        operator_token: &str,
    ) -> Result<CppMicroSummary, ClientError> {
        self.0
            .json(self.0.get("/v1/admin/micro", Some(operator_token)))
            .await
    }

    /// `POST /v1/admin/micro/recluster` (operator): k-means θ/W per customer.
    pub async fn recluster(&self, operator_token: &str) -> Result<ReclusterReport, ClientError> {
        self.0
            .json(self.0.post(
                "/v1/admin/micro/recluster",
                Some(operator_token),
                &serde_json::json!({}),
            ))
            .await
    }
}

/// A client of an MPP.
#[derive(Clone, Debug)]
pub struct MppClient(Http);

impl MppClient {
    /// `GET /v1/admin/micro` (operator): the micropayment books.
    pub async fn micro_summary(
        &self,
        operator_token: &str,
    ) -> Result<MppMicroSummary, ClientError> {
        self.0
            .json(self.0.get("/v1/admin/micro", Some(operator_token)))
            .await
    }

    service_client!(MppClient);

    /// `POST /v1/merchants` (operator): the merchant's certificate (role
    /// Merchant, issued by the MPP) and its bearer token.
    pub async fn enroll_merchant(
        &self,
        operator_token: &str,
        request: &EnrolMerchant,
    ) -> Result<(Certificate, String), ClientError> {
        let answer: Enrolled = self
            .0
            .json(self.0.post("/v1/merchants", Some(operator_token), request))
            .await?;
        let token = answer
            .token
            .ok_or_else(|| ClientError::BadAnswer("no merchant token".into()))?;
        Ok((certificate_from_hex(&answer.certificate)?, token))
    }

    /// `GET /v1/merchants/{id}`: a merchant's certificate (public).
    pub async fn merchant_certificate(&self, id: PartyId) -> Result<Certificate, ClientError> {
        let answer: Enrolled = self
            .0
            .json(self.0.get(&format!("/v1/merchants/{}", id.to_hex()), None))
            .await?;
        certificate_from_hex(&answer.certificate)
    }

    /// `GET /v1/notices?wait_ms=` (merchant): PNs awaiting this merchant's
    /// decision; waits up to `wait_ms` for one if there is none.
    pub async fn notices(
        &self,
        merchant_token: &str,
        wait_ms: u64,
    ) -> Result<Vec<Notice>, ClientError> {
        let request = self.0.get(
            &format!("/v1/notices?wait_ms={wait_ms}"),
            Some(merchant_token),
        );
        self.0.json(self.0.long(request, wait_ms)).await
    }

    /// `POST /v1/decisions` (merchant).
    pub async fn decide(
        &self,
        merchant_token: &str,
        decision: &SignedMerchantDecision,
    ) -> Result<MerchantPaymentView, ClientError> {
        let body = SignedBody {
            signed: hex_string(&decision.to_wire()),
        };
        self.0
            .json(self.0.post("/v1/decisions", Some(merchant_token), &body))
            .await
    }

    /// `POST /v1/decisions/batch` (merchant): several decisions in one
    /// request, each answered on its own, in order.
    pub async fn decide_batch(
        &self,
        merchant_token: &str,
        decisions: &[SignedMerchantDecision],
    ) -> Result<Vec<DecisionResult>, ClientError> {
        let body = DecisionBatch {
            decisions: decisions.iter().map(|d| hex_string(&d.to_wire())).collect(),
        };
        self.0
            .json(
                self.0
                    .post("/v1/decisions/batch", Some(merchant_token), &body),
            )
            .await
    }

    /// `POST /v1/standing-approval` (merchant): sets the merchant's standing
    /// approval of micropayments, replacing an older one.
    pub async fn set_standing_approval(
        &self,
        merchant_token: &str,
        approval: &SignedStandingApproval,
    ) -> Result<StandingApprovalView, ClientError> {
        let body = SignedBody {
            signed: hex_string(&approval.to_wire()),
        };
        self.0
            .json(
                self.0
                    .post("/v1/standing-approval", Some(merchant_token), &body),
            )
            .await
    }

    /// `GET /v1/standing-approval` (merchant); `None` when none stands.
    pub async fn standing_approval(
        &self,
        merchant_token: &str,
    ) -> Result<Option<StandingApprovalView>, ClientError> {
        match self
            .0
            .json(self.0.get("/v1/standing-approval", Some(merchant_token)))
            .await
        {
            Ok(view) => Ok(Some(view)),
            Err(ClientError::Refused { status: 404, .. }) => Ok(None),
            Err(other) => Err(other),
        }
    }

    /// `DELETE /v1/standing-approval` (merchant): from now on every
    /// micropayment waits for the merchant's decision.
    pub async fn withdraw_standing_approval(
        &self,
        merchant_token: &str,
    ) -> Result<Withdrawn, ClientError> {
        let request = self
            .0
            .http
            .delete(self.0.url("/v1/standing-approval"))
            .bearer_auth(merchant_token);
        self.0.json(request).await
    }

    /// `POST /v1/refunds` (merchant).
    pub async fn refund(
        &self,
        merchant_token: &str,
        request: &SignedRefundRequest,
    ) -> Result<RefundView, ClientError> {
        let body = SignedBody {
            signed: hex_string(&request.to_wire()),
        };
        self.0
            .json(self.0.post("/v1/refunds", Some(merchant_token), &body))
            .await
    }

    /// `GET /v1/payments/{id}?wait_ms=` (merchant): the payment, with the T
    /// confirmation once it came back; waits up to `wait_ms` for one.
    pub async fn payment(
        &self,
        merchant_token: &str,
        payment_id: &str,
        wait_ms: u64,
    ) -> Result<MerchantPaymentView, ClientError> {
        let request = self.0.get(
            &format!("/v1/payments/{payment_id}?wait_ms={wait_ms}"),
            Some(merchant_token),
        );
        self.0.json(self.0.long(request, wait_ms)).await
    }

    /// `GET /v1/admin/payments?after=&limit=` (operator).
    pub async fn payments(
        &self,
        operator_token: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<MppPaymentRecord>, ClientError> {
        self.0
            .json(self.0.get(
                &format!("/v1/admin/payments?after={after}&limit={limit}"),
                Some(operator_token),
            ))
            .await
    }

    /// `POST /v1/inbox` (services only).
    pub async fn post_inbox(&self, frame: Vec<u8>) -> Result<InboxAnswer, ClientError> {
        self.0.post_inbox(frame).await
    }
}

/// A client of a DC.
#[derive(Clone, Debug)]
pub struct DcClient(Http);

impl DcClient {
    service_client!(DcClient);

    /// `GET /v1/admin/routes?after=&limit=` (operator).
    pub async fn routes(
        &self,
        operator_token: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<RouteRecord>, ClientError> {
        self.0
            .json(self.0.get(
                &format!("/v1/admin/routes?after={after}&limit={limit}"),
                Some(operator_token),
            ))
            .await
    }

    /// `POST /v1/inbox` (services only).
    pub async fn post_inbox(&self, frame: Vec<u8>) -> Result<InboxAnswer, ClientError> {
        self.0.post_inbox(frame).await
    }
}

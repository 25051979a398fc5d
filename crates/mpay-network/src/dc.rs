//! The data center (DESIGN §3.2 step 4): routes PNs from the CPPs of its
//! region to the merchant's MPP, through the DC of the MPP's region when
//! that is another, and sends decisions, refunds and confirmations back
//! along the recorded route. It keeps routing data only: for each payment,
//! where its PN came from and where it went.
//!
//! | kind | from | to |
//! |---|---|---|
//! | PAYMENT_NOTICE | a CPP of this region, or another region's DC | the MPP (this region) or the MPP's region's DC; refused if its hop deadline passed (route `late`) |
//! | DECISION_RELAY, REFUND_RELAY | the route's next hop | the route's previous hop |
//! | CONFIRMATION | the route's previous hop | the route's next hop |
//!
//! Route states: `forwarded` (the PN went on), `late` (its hop deadline had
//! passed: recorded, not forwarded).
//!
//! Routes: `POST /v1/inbox`, `GET /v1/admin/routes?after=&limit=`
//! (operator), `GET /v1/identity`, `/health`, `/metrics`, `/openapi.json`.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use mpay_http::{Body, Json, Query};
use mpay_identity::Timestamp;
use mpay_processor::route::{self, Direction, RouteState};
use mpay_semops::{
    RoutedNotice, SemopsError, SignedConfirmation, SignedDecisionRelay, SignedRefundRelay, kind,
};
use mpay_sql::{Db, Migrations};
use mpay_wire::{Decode, Encode};
use tokio::net::TcpListener;

use crate::api::{NetError, OPERATOR, REQUEST_BODY_LEN_MAX, hex, wall_clock};
use crate::client::{Identity, InboxAnswer, Page, RouteRecord};
use crate::config::ServiceConfig;
use crate::directory::ServiceRole;
use crate::node::{Inbound, Node, Running, ServeError};

pub mod store;

use store::{NewRoute, Queued, Recorded, RouteStore, SqlRoutes};

/// The DC's tables.
pub const MIGRATIONS: Migrations = Migrations::new(
    "dc",
    &[("0001_dc", include_str!("../migrations/0001_dc.sql"))],
);

/// Most entries of one operator listing page.
pub const PAGE_MAX: u32 = 1_000;

/// The DC service: its node (inbox, outbox delivery, directory) and its
/// store of routes.
pub struct Dc<S = SqlRoutes> {
    node: Arc<Node>,
    routes: S,
}

/// Runs a DC until the process is killed.
pub async fn serve(config: ServiceConfig, listener: TcpListener) -> Result<(), ServeError> {
    let db = Db::connect(&config.db).await?;
    start(config, db, listener).await?.wait().await
}

/// Starts a DC on an open database.
pub async fn start(
    config: ServiceConfig,
    db: Db,
    listener: TcpListener,
) -> Result<Running, ServeError> {
    let node = Arc::new(Node::open(config, db, ServiceRole::Dc, MIGRATIONS).await?);
    let dc = Arc::new(Dc {
        routes: SqlRoutes::new(node.db.clone()),
        node: Arc::clone(&node),
    });
    Running::start(
        listener,
        node.tls.clone(),
        router(dc),
        vec![node.spawn_delivery()],
    )
}

/// The DC's routes.
pub fn router(dc: Arc<Dc>) -> Router {
    let app = Router::new()
        .route("/health", get(crate::api::health))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .route("/v1/identity", get(identity))
        .route("/v1/admin/routes", get(routes))
        .route("/v1/admin/work", get(admin_work))
        .route("/v1/inbox", post(inbox))
        .with_state(dc);
    mpay_http::harden(app, REQUEST_BODY_LEN_MAX)
}

impl<S: RouteStore> Dc<S> {
    async fn on_inbox(&self, inbound: Inbound, now: Timestamp) -> Result<String, NetError> {
        let k = inbound.header.kind;
        if k == kind::PAYMENT_NOTICE {
            self.on_notice(&inbound, now).await
        } else if k == kind::DECISION_RELAY {
            let relay = SignedDecisionRelay::from_wire(&inbound.payload)
                .map_err(|e| NetError::Refused(e.to_string()))?;
            let id = relay.unverified_body().authority.payment_id();
            self.pass(&inbound, id, Direction::Back, now).await
        } else if k == kind::REFUND_RELAY {
            let relay = SignedRefundRelay::from_wire(&inbound.payload)
                .map_err(|e| NetError::Refused(e.to_string()))?;
            let id = relay.unverified_body().refund.unverified_body().payment_id;
            self.pass(&inbound, id, Direction::Back, now).await
        } else if k == kind::CONFIRMATION {
            let confirmation = SignedConfirmation::from_wire(&inbound.payload)
                .map_err(|e| NetError::Refused(e.to_string()))?;
            let id = confirmation.unverified_body().payment_id;
            self.pass(&inbound, id, Direction::Forth, now).await
        } else {
            Err(NetError::Refused(format!(
                "a DC does not take kind {:#06x}",
                k.0
            )))
        }
    }

    async fn on_notice(&self, inbound: &Inbound, now: Timestamp) -> Result<String, NetError> {
        let node = &self.node;
        let sender = &inbound.sender;
        match sender.role {
            ServiceRole::Cpp => node.check_sender(sender, &[ServiceRole::Cpp], true)?,
            _ => node.check_sender(sender, &[ServiceRole::Dc], false)?,
        }
        let routed = RoutedNotice::from_wire(&inbound.payload)
            .map_err(|e| NetError::Refused(e.to_string()))?;
        let pn = routed.notice.unverified_body();
        let cpp = node
            .directory
            .service_by_id(pn.cpp)
            .filter(|s| s.role == ServiceRole::Cpp)
            .ok_or_else(|| NetError::Refused("PN of an unknown CPP".into()))?;
        // The DC checks the CPP's signature on what it passes on. A PN past
        // its deadline (checked after the signature) is recorded as late
        // below, not refused as invalid.
        let expired = match routed.notice.verify(&cpp.certificate, now) {
            Ok(_) => false,
            Err(SemopsError::Expired { .. }) => true,
            Err(e) => return Err(NetError::Refused(format!("PN: {e}"))),
        };
        if sender.role == ServiceRole::Cpp && sender.id != cpp.id {
            return Err(NetError::Refused("a CPP forwards only its own PNs".into()));
        }
        let trans = pn.trans.unverified_body();
        let mpp = node
            .directory
            .service_by_id(trans.mpp)
            .filter(|s| s.role == ServiceRole::Mpp)
            .ok_or_else(|| NetError::Refused("TRANS of an unknown MPP".into()))?;
        let from = match sender.role {
            ServiceRole::Dc => route::Sender::Dc,
            _ => route::Sender::Cpp,
        };
        let next = match route::next_hop(&node.me.region, from, &mpp.region)
            .map_err(|refusal| NetError::Refused(refusal.to_string()))?
        {
            route::NextHop::Mpp => mpp.name.clone(),
            route::NextHop::RegionDc => node
                .directory
                .dc_of_region(&mpp.region)
                .ok_or_else(|| NetError::Refused("the MPP's region has no DC".into()))?
                .name
                .clone(),
        };
        let forwarded = if expired {
            None
        } else {
            routed.forward(now, node.config.timing.hop_budget_ms)
        };
        let id = pn.payment_id;
        let payload = forwarded.as_ref().map(|r| r.to_wire());
        let key = format!("pn-{}", hex(&id));
        let forward = payload.as_ref().map(|payload| Queued {
            to: &next,
            kind: kind::PAYMENT_NOTICE,
            payload,
            key: &key,
        });
        let route = NewRoute {
            payment: id,
            cpp: &cpp.name,
            from: &sender.name,
            to: forward.as_ref().map(|f| f.to),
            state: RouteState::of(forward.is_some()),
            hop_deadline: routed.deadline,
        };
        let outcome = match self.routes.record(&route, forward.as_ref(), now).await? {
            Recorded::Duplicate => "duplicate",
            Recorded::New if forward.is_some() => {
                node.kick.notify_one();
                "applied"
            }
            Recorded::New => {
                tracing::warn!(
                    payment = hex(&id),
                    "PN past its hop deadline: recorded, not forwarded"
                );
                "late"
            }
        };
        Ok(outcome.to_owned())
    }

    /// Passes a decision, refund or confirmation along the payment's route:
    /// it must come from the hop on the other side.
    async fn pass(
        &self,
        inbound: &Inbound,
        id: [u8; 16],
        direction: Direction,
        now: Timestamp,
    ) -> Result<String, NetError> {
        let node = &self.node;
        let hops = self
            .routes
            .hops(&id)
            .await?
            .ok_or_else(|| NetError::Refused("no route for this payment".into()))?;
        let next = route::pass(
            &hops.from,
            hops.to.as_deref(),
            &inbound.sender.name,
            direction,
        )
        .map_err(|refusal| NetError::Refused(format!("{}: {refusal}", inbound.sender.name)))?
        .to_owned();
        let digest = blake3::hash(&inbound.payload);
        let key = format!(
            "{:04x}-{}-{}",
            inbound.header.kind.0,
            hex(&id),
            hex(&digest.as_bytes()[..8])
        );
        let message = Queued {
            to: &next,
            kind: inbound.header.kind,
            payload: &inbound.payload,
            key: &key,
        };
        let queued = self.routes.pass(&id, &message, now).await?;
        if queued {
            node.kick.notify_one();
            Ok("applied".into())
        } else {
            Ok("duplicate".into())
        }
    }
}

#[utoipa::path(post, path = "/v1/inbox", tag = "inbox",
    request_body(content = inline(mpay_http::openapi::Frame), content_type = "application/octet-stream",
        description = "an envelope sealed to this DC (PAYMENT_NOTICE, DECISION_RELAY, REFUND_RELAY, CONFIRMATION)"),
    responses((status = 200, description = "taken (or already taken), with the signed ack", body = InboxAnswer)))]
async fn inbox(
    State(dc): State<Arc<Dc>>,
    Body(frame): Body,
) -> Result<Json<InboxAnswer>, NetError> {
    let now = wall_clock();
    let answer = dc
        .node
        .receive(&frame, now, |inbound| {
            let dc = Arc::clone(&dc);
            async move { dc.on_inbox(inbound, now).await }
        })
        .await?;
    Ok(Json(answer))
}

#[utoipa::path(get, path = "/v1/admin/work", tag = "operator", security(("operator" = [])),
    responses((status = 200, description = "what the DC still has moving (its outbox)", body = crate::client::Work)))]
async fn admin_work(
    State(dc): State<Arc<Dc>>,
    headers: HeaderMap,
) -> Result<Json<crate::client::Work>, NetError> {
    dc.node.check_operator(&headers)?;
    Ok(Json(dc.node.work(None, &[]).await?))
}

#[utoipa::path(get, path = "/v1/admin/routes", tag = "operator", security(("operator" = [])),
    params(Page),
    responses((status = 200, description = "routes by seq", body = Vec<RouteRecord>)))]
async fn routes(
    State(dc): State<Arc<Dc>>,
    headers: HeaderMap,
    Query(page): Query<Page>,
) -> Result<Json<Vec<RouteRecord>>, NetError> {
    dc.node.check_operator(&headers)?;
    let limit = page.limit.unwrap_or(PAGE_MAX).min(PAGE_MAX);
    Ok(Json(dc.routes.page(page.after, limit).await?))
}

#[utoipa::path(get, path = "/metrics", tag = "service",
    responses((status = 200, description = "Prometheus metrics", content_type = "text/plain", body = inline(mpay_http::openapi::MetricsText))))]
async fn metrics(State(dc): State<Arc<Dc>>) -> Result<impl IntoResponse, NetError> {
    let by_state = dc.routes.count_by_state().await?;
    let text = dc.node.metrics_text("mpay_dc", &by_state).await?;
    Ok(crate::node::prometheus(text))
}

#[utoipa::path(get, path = "/v1/identity", tag = "service",
    responses((status = 200, description = "the DC's id and certificate", body = Identity)))]
async fn identity(State(dc): State<Arc<Dc>>) -> Json<Identity> {
    Json(dc.node.identity())
}

/// The DC's API, derived from its handlers and their types.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "mpay DC",
        description = "The data center of a SEMOPS region: routes PNs to the merchant's MPP (through the MPP's region's DC) and passes decisions, refunds and confirmations back along the recorded route."
    ),
    paths(
        crate::api::health,
        metrics,
        openapi,
        identity,
        routes,
        admin_work,
        inbox
    )
)]
struct DcApi;

/// The DC's `/openapi.json`.
pub fn openapi_document() -> serde_json::Value {
    crate::api::openapi_document(<DcApi as utoipa::OpenApi>::openapi(), &[OPERATOR])
}

#[utoipa::path(get, path = "/openapi.json", tag = "service",
    responses((status = 200, description = "this document", content_type = "application/json", body = inline(mpay_http::openapi::Document))))]
async fn openapi() -> impl IntoResponse {
    Json(openapi_document())
}

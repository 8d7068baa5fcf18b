//! StarRocks Stream Load: the HTTP client, its typed answers, and the label/outcome rules that
//! turn a batch into a durable load (DESIGN §3, docs/starrocks-spec.md §1, §2, §10).
//!
//! * `client` — `PUT /api/{db}/{table}/_stream_load` with `Expect: 100-continue` (the body
//!   is held until the `100`), the FE's 307 followed with credentials, keep-alive BE
//!   connections, optional direct-to-BE and gzip; `get_load_state`.
//! * `health` — `GET /api/health`, the start-up probe of the FE HTTP address.
//! * `response` — the result JSON and label states; HTTP 200 alone means nothing.
//! * `retry` — retryable vs permanent failures, exponential backoff with jitter.
//! * `txn` — the transaction API (`transactional = true`): begin/load/prepare now, commit
//!   once every part of a batch is prepared; outcomes resolved by label state.
//! * `outcome` — `load_batch`: same label on every attempt, unknown outcomes resolved by label
//!   state before anything else is sent.
//! * `label` — the length limit, and what a label StarRocks already holds means for a load.

mod body;
mod client;
mod health;
mod label;
mod outcome;
mod response;
mod retry;
mod txn;
mod waiting;

pub use body::{BodyError, BodyPieces, BodySource, LoadBody};
pub use client::{
    check_http_base, LoadRequest, LoadVia, RequestError, StreamLoadClient, StreamLoadConfig,
};
pub use health::FeHealth;
pub use label::{fit_label, load_again_label, LabelTaken};
pub use outcome::{zero_retry_counts, Durability, LoadError, LoadOutcome, StreamLoader};
pub use response::{
    ExistingJob, LabelState, LabelStateAnswer, LoadStatus, ParseError, StreamLoadResponse,
    TxnAnswer,
};
pub use retry::{classify_fail, FailureClass, RetryPolicy};
pub use txn::TxnStage;

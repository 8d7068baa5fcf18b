//! Typed answers of StarRocks: the Stream Load result JSON (spec §1.6) and the label state of
//! `get_load_state` (spec §1.8, §10.4).
//!
//! HTTP 200 means nothing on its own: the BE answers *every* Stream Load with 200, failures
//! included, and the FE answers some refusals (missing `Expect`, no backend alive) with 200 and
//! `"Status":"FAILED"`. Only the `Status` key of the body decides. Parsing is by key, never by
//! position, and tolerant of keys that older or newer releases add or rename.

use serde::Deserialize;

/// The `Status` of a Stream Load answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadStatus {
    /// `Success`: committed and visible.
    Success,
    /// `Publish Timeout`: committed, visible later. Durable.
    PublishTimeout,
    /// `Label Already Exists`: an earlier load used this label; see `ExistingJobStatus`.
    LabelAlreadyExists,
    /// `Fail` (BE) or `FAILED` (FE refusals): nothing was committed.
    Fail,
    /// Anything else (a newer release's word); treated like `Fail` by the outcome logic.
    Other(String),
}

impl LoadStatus {
    /// Map the `Status` text.
    pub fn parse(text: &str) -> LoadStatus {
        match text {
            "Success" | "OK" => LoadStatus::Success,
            "Publish Timeout" | "PUBLISH_TIMEOUT" => LoadStatus::PublishTimeout,
            "Label Already Exists" | "LABEL_ALREADY_EXISTS" => LoadStatus::LabelAlreadyExists,
            "Fail" | "FAILED" => LoadStatus::Fail,
            other => LoadStatus::Other(other.to_string()),
        }
    }

    /// `Success` or `Publish Timeout`: the data is committed.
    pub fn is_durable(&self) -> bool {
        matches!(self, LoadStatus::Success | LoadStatus::PublishTimeout)
    }
}

/// `ExistingJobStatus` of a `Label Already Exists` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExistingJob {
    /// The earlier load is still in PREPARE/PREPARED.
    Running,
    /// The earlier load is COMMITTED or VISIBLE.
    Finished,
    /// Another word.
    Other(String),
}

impl ExistingJob {
    fn parse(text: &str) -> ExistingJob {
        match text {
            "RUNNING" => ExistingJob::Running,
            "FINISHED" => ExistingJob::Finished,
            other => ExistingJob::Other(other.to_string()),
        }
    }
}

/// The result JSON of a (non-transactional) Stream Load, spec §1.6.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamLoadResponse {
    pub txn_id: i64,
    pub label: String,
    pub status: LoadStatus,
    pub existing_job: Option<ExistingJob>,
    pub message: String,
    pub total_rows: u64,
    pub loaded_rows: u64,
    pub filtered_rows: u64,
    pub unselected_rows: u64,
    pub load_bytes: u64,
    pub load_time_ms: u64,
    /// Where the BE keeps the rejected rows; present whenever a row was filtered, even on
    /// `Success` (spec §4.9).
    pub error_url: Option<String>,
}

/// The wire shape, with every key optional so that a missing counter is not an error.
#[derive(Deserialize)]
struct RawLoadResponse {
    #[serde(rename = "TxnId", default = "minus_one")]
    txn_id: i64,
    #[serde(rename = "Label", default)]
    label: String,
    #[serde(rename = "Status")]
    status: String,
    #[serde(rename = "ExistingJobStatus")]
    existing_job: Option<String>,
    #[serde(rename = "Message", alias = "msg", default)]
    message: String,
    #[serde(rename = "NumberTotalRows", default)]
    total_rows: u64,
    #[serde(rename = "NumberLoadedRows", default)]
    loaded_rows: u64,
    #[serde(rename = "NumberFilteredRows", default)]
    filtered_rows: u64,
    #[serde(rename = "NumberUnselectedRows", default)]
    unselected_rows: u64,
    #[serde(rename = "LoadBytes", default)]
    load_bytes: u64,
    #[serde(rename = "LoadTimeMs", default)]
    load_time_ms: u64,
    #[serde(rename = "ErrorURL")]
    error_url: Option<String>,
}

fn minus_one() -> i64 {
    -1
}

/// A body that is not the JSON we expected.
#[derive(Debug, thiserror::Error)]
#[error("unexpected answer body ({source}): {body}")]
pub struct ParseError {
    /// The body (cut to a readable length).
    pub body: String,
    #[source]
    pub source: serde_json::Error,
}

/// At most this much of a foreign body goes into an error message.
const BODY_EXCERPT_CHARS: usize = 500;

/// A body shortened for an error message.
pub fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let trimmed = text.trim();
    match trimmed.char_indices().nth(BODY_EXCERPT_CHARS) {
        Some((cut, _)) => format!("{}…", &trimmed[..cut]),
        None => trimmed.to_string(),
    }
}

impl StreamLoadResponse {
    /// Parse a Stream Load answer body.
    pub fn parse(body: &[u8]) -> Result<StreamLoadResponse, ParseError> {
        let raw: RawLoadResponse = serde_json::from_slice(body).map_err(|source| ParseError {
            body: excerpt(body),
            source,
        })?;
        Ok(StreamLoadResponse {
            txn_id: raw.txn_id,
            label: raw.label,
            status: LoadStatus::parse(&raw.status),
            existing_job: raw.existing_job.as_deref().map(ExistingJob::parse),
            message: strip_exception_class(&raw.message).to_string(),
            total_rows: raw.total_rows,
            loaded_rows: raw.loaded_rows,
            filtered_rows: raw.filtered_rows,
            unselected_rows: raw.unselected_rows,
            load_bytes: raw.load_bytes,
            load_time_ms: raw.load_time_ms,
            error_url: raw.error_url.filter(|u| !u.is_empty()),
        })
    }
}

/// An answer of the transaction API (spec §5.2): `Status` is a status-code name (`OK`,
/// `LABEL_ALREADY_EXISTS`, `TXN_NOT_EXISTS`, `TXN_IN_PROCESSING`, `PUBLISH_TIMEOUT`,
/// `INTERNAL_ERROR`, … or the FE's `FAILED`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnAnswer {
    pub status: String,
    pub message: String,
    pub existing_job: Option<ExistingJob>,
    pub filtered_rows: u64,
    pub error_url: Option<String>,
}

impl TxnAnswer {
    pub fn parse(body: &[u8]) -> Result<TxnAnswer, ParseError> {
        let raw: RawLoadResponse = serde_json::from_slice(body).map_err(|source| ParseError {
            body: excerpt(body),
            source,
        })?;
        Ok(TxnAnswer {
            status: raw.status,
            message: strip_exception_class(&raw.message).to_string(),
            existing_job: raw.existing_job.as_deref().map(ExistingJob::parse),
            filtered_rows: raw.filtered_rows,
            error_url: raw.error_url.filter(|u| !u.is_empty()),
        })
    }

    /// `OK` (the SDK also accepts `Success`).
    pub fn is_ok(&self) -> bool {
        self.status == "OK" || self.status == "Success"
    }
}

/// FE refusals read `class com.starrocks.common.DdlException: <text>`; keep the text.
fn strip_exception_class(message: &str) -> &str {
    match message.strip_prefix("class ") {
        Some(rest) => rest.split_once(": ").map_or(message, |(_, text)| text),
        None => message,
    }
}

/// State of a label's newest transaction, from `get_load_state` (spec §10.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelState {
    /// No transaction with that label: never seen, aborted and cleaned, or evicted (§10.5).
    Unknown,
    /// Begun, still loading.
    Prepare,
    /// Two-phase prepared, waiting for commit.
    Prepared,
    /// Committed, publish pending: will become visible. Durable.
    Committed,
    /// Committed and visible. Durable.
    Visible,
    /// Failed or rolled back; the label may be reused.
    Aborted,
    /// Another word.
    Other(String),
}

impl LabelState {
    /// Map the `state` text.
    pub fn parse(text: &str) -> LabelState {
        match text {
            "UNKNOWN" => LabelState::Unknown,
            "PREPARE" => LabelState::Prepare,
            "PREPARED" => LabelState::Prepared,
            "COMMITTED" => LabelState::Committed,
            "VISIBLE" | "FINISHED" => LabelState::Visible,
            "ABORTED" => LabelState::Aborted,
            other => LabelState::Other(other.to_string()),
        }
    }

    /// COMMITTED or VISIBLE: the load landed.
    pub fn is_durable(&self) -> bool {
        matches!(self, LabelState::Committed | LabelState::Visible)
    }

    /// PREPARE or PREPARED: an attempt is still in flight; ask again later.
    pub fn is_running(&self) -> bool {
        matches!(self, LabelState::Prepare | LabelState::Prepared)
    }
}

/// The answer of `get_load_state` (a RestBaseResult plus `state`).
#[derive(Debug, Deserialize)]
struct RawLabelState {
    state: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    status: Option<String>,
    msg: Option<String>,
    message: Option<String>,
}

/// What `get_load_state` said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelStateAnswer {
    /// `status` OK: the label's state (and, 3.4+, the abort reason).
    State {
        state: LabelState,
        reason: Option<String>,
    },
    /// `status` FAILED: the FE's message (unknown database, no label...).
    Failed(String),
}

impl LabelStateAnswer {
    /// Parse a `get_load_state` body.
    pub fn parse(body: &[u8]) -> Result<LabelStateAnswer, ParseError> {
        let raw: RawLabelState = serde_json::from_slice(body).map_err(|source| ParseError {
            body: excerpt(body),
            source,
        })?;
        if raw.status.as_deref() != Some("OK") {
            let text = raw.msg.or(raw.message).unwrap_or_else(|| excerpt(body));
            return Ok(LabelStateAnswer::Failed(text));
        }
        // The SDK requires status OK before trusting state; a missing state is UNKNOWN.
        let state = raw
            .state
            .as_deref()
            .map_or(LabelState::Unknown, LabelState::parse);
        Ok(LabelStateAnswer::State {
            state,
            reason: raw.reason.filter(|r| !r.is_empty()),
        })
    }
}

/// The message of a RestBaseResult (`{"status":"FAILED","msg":...}`), e.g. a 401's body.
pub fn rest_message(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Rest {
        msg: Option<String>,
        message: Option<String>,
        #[serde(rename = "Message")]
        upper: Option<String>,
    }
    serde_json::from_slice::<Rest>(body)
        .ok()
        .and_then(|r| r.msg.or(r.message).or(r.upper))
        .unwrap_or_else(|| excerpt(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Bodies as the BE writes them (spec §1.6: 4-space indent, key order exact).
    const SUCCESS: &str = r#"{
    "TxnId": 1042,
    "Label": "dbmazz_orders_0000000001A2B3C4",
    "Status": "Success",
    "Message": "OK",
    "NumberTotalRows": 3,
    "NumberLoadedRows": 3,
    "NumberFilteredRows": 0,
    "NumberUnselectedRows": 0,
    "LoadBytes": 214,
    "LoadTimeMs": 61,
    "BeginTxnTimeMs": 1,
    "StreamLoadPlanTimeMs": 3,
    "ReadDataTimeMs": 0,
    "WriteDataTimeMs": 35,
    "CommitAndPublishTimeMs": 20
}"#;

    #[test]
    fn parses_success() {
        let r = StreamLoadResponse::parse(SUCCESS.as_bytes()).unwrap();
        assert_eq!(r.txn_id, 1042);
        assert_eq!(r.label, "dbmazz_orders_0000000001A2B3C4");
        assert_eq!(r.status, LoadStatus::Success);
        assert!(r.status.is_durable());
        assert_eq!(r.message, "OK");
        assert_eq!((r.total_rows, r.loaded_rows, r.filtered_rows), (3, 3, 0));
        assert_eq!((r.load_bytes, r.load_time_ms), (214, 61));
        assert_eq!(r.error_url, None);
        assert_eq!(r.existing_job, None);
    }

    #[test]
    fn parses_label_already_exists() {
        let body = r#"{
    "TxnId": -1,
    "Label": "l1",
    "Status": "Label Already Exists",
    "ExistingJobStatus": "FINISHED",
    "Message": "Label [l1] has already been used.",
    "NumberTotalRows": 0,
    "NumberLoadedRows": 0
}"#;
        let r = StreamLoadResponse::parse(body.as_bytes()).unwrap();
        assert_eq!(r.status, LoadStatus::LabelAlreadyExists);
        assert!(!r.status.is_durable());
        assert_eq!(r.existing_job, Some(ExistingJob::Finished));
        assert_eq!(r.txn_id, -1);
    }

    #[test]
    fn parses_fail_with_error_url() {
        let body = r#"{
    "TxnId": 1043,
    "Label": "l2",
    "Status": "Fail",
    "Message": "too many filtered rows",
    "NumberTotalRows": 10,
    "NumberLoadedRows": 7,
    "NumberFilteredRows": 3,
    "NumberUnselectedRows": 0,
    "ErrorURL": "http://10.0.0.5:8040/api/_load_error_log?file=error_log_xxx"
}"#;
        let r = StreamLoadResponse::parse(body.as_bytes()).unwrap();
        assert_eq!(r.status, LoadStatus::Fail);
        assert_eq!(r.filtered_rows, 3);
        assert_eq!(
            r.error_url.as_deref(),
            Some("http://10.0.0.5:8040/api/_load_error_log?file=error_log_xxx")
        );
    }

    #[test]
    fn parses_publish_timeout_and_fe_refusal() {
        let pt = r#"{"TxnId":7,"Label":"l","Status":"Publish Timeout","Message":"transaction commit successfully, BUT data will be visible later"}"#;
        let r = StreamLoadResponse::parse(pt.as_bytes()).unwrap();
        assert_eq!(r.status, LoadStatus::PublishTimeout);
        assert!(r.status.is_durable());
        let fe = r#"{"Status":"FAILED","Message":"class com.starrocks.common.DdlException: There is no 100-continue header"}"#;
        let r = StreamLoadResponse::parse(fe.as_bytes()).unwrap();
        assert_eq!(r.status, LoadStatus::Fail);
        assert_eq!(r.message, "There is no 100-continue header");
        assert_eq!(r.txn_id, -1);
    }

    #[test]
    fn non_json_is_an_error_with_the_body() {
        let err = StreamLoadResponse::parse(b"<html>502 Bad Gateway</html>").unwrap_err();
        assert!(err.to_string().contains("502 Bad Gateway"), "{err}");
        let err = StreamLoadResponse::parse(br#"{"no":"status"}"#).unwrap_err();
        assert!(err.to_string().contains("Status"), "{err}");
        let long = "x".repeat(5000);
        let err = StreamLoadResponse::parse(long.as_bytes()).unwrap_err();
        assert!(err.body.chars().count() <= BODY_EXCERPT_CHARS + 1);
    }

    #[test]
    fn parses_label_states() {
        // 3.3 shape, 3.4+ shape with reason, unknown label, FE failure (spec §10.4).
        let v = r#"{"state":"VISIBLE","status":"OK","code":"0","msg":"Success","message":"OK"}"#;
        assert_eq!(
            LabelStateAnswer::parse(v.as_bytes()).unwrap(),
            LabelStateAnswer::State {
                state: LabelState::Visible,
                reason: None
            }
        );
        let a = r#"{"state":"ABORTED","reason":"too many filtered rows","status":"OK","code":"0","msg":"Success","message":"OK"}"#;
        assert_eq!(
            LabelStateAnswer::parse(a.as_bytes()).unwrap(),
            LabelStateAnswer::State {
                state: LabelState::Aborted,
                reason: Some("too many filtered rows".into())
            }
        );
        let u = r#"{"state":"UNKNOWN","status":"OK","code":"0","msg":"Success","message":"OK"}"#;
        let LabelStateAnswer::State { state, .. } = LabelStateAnswer::parse(u.as_bytes()).unwrap()
        else {
            panic!("state expected");
        };
        assert_eq!(state, LabelState::Unknown);
        let f = r#"{"status":"FAILED","code":"1","msg":"unknown database, database=x","message":"unknown database, database=x"}"#;
        assert_eq!(
            LabelStateAnswer::parse(f.as_bytes()).unwrap(),
            LabelStateAnswer::Failed("unknown database, database=x".into())
        );
        for (text, durable, running) in [
            ("PREPARE", false, true),
            ("PREPARED", false, true),
            ("COMMITTED", true, false),
            ("VISIBLE", true, false),
            ("ABORTED", false, false),
            ("UNKNOWN", false, false),
        ] {
            let s = LabelState::parse(text);
            assert_eq!(
                (s.is_durable(), s.is_running()),
                (durable, running),
                "{text}"
            );
        }
    }

    #[test]
    fn rest_message_of_a_401() {
        let body = br#"{"status":"FAILED","code":"1","msg":"Access denied for root@127.0.0.1","message":"Access denied for root@127.0.0.1"}"#;
        assert_eq!(rest_message(body), "Access denied for root@127.0.0.1");
        assert_eq!(rest_message(b"Unauthorized"), "Unauthorized");
    }
}

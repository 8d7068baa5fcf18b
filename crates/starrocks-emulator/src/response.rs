//! Response bodies: the Stream Load result (spec §1.6), the FE REST shapes (§1.2, §1.3, §10.4)
//! and the transaction API shape (§5.2). Key order is StarRocks's, so bodies compare verbatim.

use serde_json::Value as J;

use crate::labels::ExistingJob;

/// `Status` of a plain Stream Load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadStatus {
    /// `Success`.
    Success,
    /// `Publish Timeout` (committed; durable).
    PublishTimeout,
    /// `Label Already Exists`.
    LabelAlreadyExists,
    /// `Fail`.
    Fail,
}

impl LoadStatus {
    /// The text in `Status`.
    pub fn text(self) -> &'static str {
        match self {
            LoadStatus::Success => "Success",
            LoadStatus::PublishTimeout => "Publish Timeout",
            LoadStatus::LabelAlreadyExists => "Label Already Exists",
            LoadStatus::Fail => "Fail",
        }
    }
}

/// Everything a Stream Load answer carries.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadResult {
    /// `TxnId` (−1 when no txn was begun).
    pub txn_id: i64,
    /// `Label`.
    pub label: String,
    /// `Status`.
    pub status: LoadStatus,
    /// `ExistingJobStatus` (label already exists only).
    pub existing_job: Option<ExistingJob>,
    /// `Message`.
    pub message: String,
    /// `NumberTotalRows`.
    pub total_rows: u64,
    /// `NumberLoadedRows`.
    pub loaded_rows: u64,
    /// `NumberFilteredRows`.
    pub filtered_rows: u64,
    /// `NumberUnselectedRows`.
    pub unselected_rows: u64,
    /// `LoadBytes`.
    pub load_bytes: u64,
    /// `LoadTimeMs`.
    pub load_time_ms: u64,
    /// `BeginTxnTimeMs`.
    pub begin_txn_time_ms: u64,
    /// `StreamLoadPlanTimeMs`.
    pub plan_time_ms: u64,
    /// `ReadDataTimeMs`.
    pub read_data_time_ms: u64,
    /// `WriteDataTimeMs`.
    pub write_data_time_ms: u64,
    /// `CommitAndPublishTimeMs`.
    pub commit_time_ms: u64,
    /// `ErrorURL`.
    pub error_url: Option<String>,
}

impl LoadResult {
    /// A failure before or without a txn.
    pub fn fail(txn_id: i64, label: &str, message: impl Into<String>) -> LoadResult {
        LoadResult {
            txn_id,
            label: label.to_string(),
            status: LoadStatus::Fail,
            existing_job: None,
            message: message.into(),
            total_rows: 0,
            loaded_rows: 0,
            filtered_rows: 0,
            unselected_rows: 0,
            load_bytes: 0,
            load_time_ms: 0,
            begin_txn_time_ms: 0,
            plan_time_ms: 0,
            read_data_time_ms: 0,
            write_data_time_ms: 0,
            commit_time_ms: 0,
            error_url: None,
        }
    }

    /// The BE's pretty JSON (4-space indent, StarRocks key order).
    pub fn to_json(&self) -> String {
        let mut fields: Vec<(&str, J)> = vec![
            ("TxnId", J::from(self.txn_id)),
            ("Label", J::from(self.label.clone())),
            ("Status", J::from(self.status.text())),
        ];
        if let Some(job) = self.existing_job {
            fields.push(("ExistingJobStatus", J::from(job.name())));
        }
        fields.extend([
            ("Message", J::from(self.message.clone())),
            ("NumberTotalRows", J::from(self.total_rows)),
            ("NumberLoadedRows", J::from(self.loaded_rows)),
            ("NumberFilteredRows", J::from(self.filtered_rows)),
            ("NumberUnselectedRows", J::from(self.unselected_rows)),
            ("LoadBytes", J::from(self.load_bytes)),
            ("LoadTimeMs", J::from(self.load_time_ms)),
            ("BeginTxnTimeMs", J::from(self.begin_txn_time_ms)),
            ("StreamLoadPlanTimeMs", J::from(self.plan_time_ms)),
            ("ReadDataTimeMs", J::from(self.read_data_time_ms)),
            ("WriteDataTimeMs", J::from(self.write_data_time_ms)),
            ("CommitAndPublishTimeMs", J::from(self.commit_time_ms)),
        ]);
        if let Some(url) = &self.error_url {
            fields.push(("ErrorURL", J::from(url.clone())));
        }
        pretty_object(&fields)
    }
}

/// A JSON object with keys in the given order, 4-space indented.
pub fn pretty_object(fields: &[(&str, J)]) -> String {
    let mut out = String::from("{\n");
    for (i, (key, value)) in fields.iter().enumerate() {
        out.push_str("    ");
        out.push_str(&J::from(*key).to_string());
        out.push_str(": ");
        out.push_str(&value.to_string());
        if i + 1 < fields.len() {
            out.push(',');
        }
        out.push('\n');
    }
    out.push('}');
    out
}

/// A compact JSON object with keys in the given order (Gson style).
pub fn compact_object(fields: &[(&str, J)]) -> String {
    let parts: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}:{}", J::from(*k), v))
        .collect();
    format!("{{{}}}", parts.join(","))
}

/// FE RestBaseResult failure: `{"status":"FAILED","code":"1","msg":m,"message":m}`.
pub fn rest_failed(message: &str) -> String {
    compact_object(&[
        ("status", J::from("FAILED")),
        ("code", J::from("1")),
        ("msg", J::from(message)),
        ("message", J::from(message)),
    ])
}

/// FE TransactionResult failure: `{"Status":"FAILED","Message":"class ...DdlException: m"}`.
pub fn fe_ddl_failed(message: &str) -> String {
    compact_object(&[
        ("Status", J::from("FAILED")),
        (
            "Message",
            J::from(format!(
                "class com.starrocks.common.DdlException: {message}"
            )),
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_body_has_exact_key_order() {
        let mut r = LoadResult::fail(7, "l", "OK");
        r.status = LoadStatus::Success;
        let text = r.to_json();
        let keys: Vec<&str> = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix('"'))
            .map(|l| &l[..l.find('"').unwrap()])
            .collect();
        assert_eq!(
            keys,
            [
                "TxnId",
                "Label",
                "Status",
                "Message",
                "NumberTotalRows",
                "NumberLoadedRows",
                "NumberFilteredRows",
                "NumberUnselectedRows",
                "LoadBytes",
                "LoadTimeMs",
                "BeginTxnTimeMs",
                "StreamLoadPlanTimeMs",
                "ReadDataTimeMs",
                "WriteDataTimeMs",
                "CommitAndPublishTimeMs"
            ]
        );
        assert!(text.starts_with("{\n    \"TxnId\": 7,\n"));
    }
}

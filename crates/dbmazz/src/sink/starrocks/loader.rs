//! The production [`Loader`]: Stream Load over HTTP with outcome resolution and retries.

use std::sync::Arc;

use super::sink::{LoadFailure, LoadRequest, Loader, StagedLoad};
use super::stream_load::{self, StreamLoader};
use crate::schema::type_map::Domains;
use crate::schema::TypeMapOptions;
use crate::source::{connect_sql, read_domains};

/// Sends a sink load through [`StreamLoader::load_batch`] into `database`.
pub struct HttpLoader {
    pub loader: StreamLoader,
    pub database: String,
    /// Tables StarRocks answered "too many versions" for, until the pipeline asks.
    pub too_many_versions: std::sync::Mutex<std::collections::HashSet<String>>,
    /// `sink.starrocks.transactional`: stage through the transaction API.
    pub transactional: bool,
}

impl HttpLoader {
    pub fn new(loader: StreamLoader, database: &str) -> Self {
        HttpLoader {
            loader,
            database: database.to_string(),
            too_many_versions: Default::default(),
            transactional: false,
        }
    }

    fn http_request(&self, request: LoadRequest) -> stream_load::LoadRequest {
        let mut headers = vec![("columns".to_string(), request.columns)];
        if request.partial_update {
            headers.push(("partial_update".to_string(), "true".to_string()));
        }
        stream_load::LoadRequest {
            db: self.database.clone(),
            table: request.table,
            label: request.label,
            body: request.body,
            headers,
            label_taken: request.label_taken,
        }
    }
}

impl Loader for HttpLoader {
    fn take_too_many_versions(&self, table: &str) -> bool {
        self.too_many_versions
            .lock()
            .map(|mut tables| tables.remove(table))
            .unwrap_or(false)
    }

    async fn stage(&self, request: LoadRequest) -> Result<Option<StagedLoad>, LoadFailure> {
        if !self.transactional {
            return self.load(request).await.map(|()| None);
        }
        let mut http_request = self.http_request(request);
        let stage = self
            .loader
            .prepare_txn(&mut http_request)
            .await
            .map_err(|error| LoadFailure {
                message: error.to_string(),
            })?;
        Ok(match stage {
            stream_load::TxnStage::Prepared => Some(StagedLoad {
                table: http_request.table.clone(),
                label: http_request.label.clone(),
                request: http_request,
            }),
            stream_load::TxnStage::Committed => None,
        })
    }

    async fn commit(&self, staged: StagedLoad) -> Result<(), LoadFailure> {
        self.loader
            .commit_txn_reloading(&staged.request)
            .await
            .map_err(|error| LoadFailure {
                message: error.to_string(),
            })
    }

    async fn load(&self, request: LoadRequest) -> Result<(), LoadFailure> {
        let http_request = self.http_request(request);
        let outcome = self
            .loader
            .load_batch(&http_request)
            .await
            .map_err(|error| LoadFailure {
                message: error.to_string(),
            })?;
        if outcome.filtered_rows > 0 {
            crate::ops::metrics()
                .filtered_rows
                .get_or_create(&crate::ops::TableLabels {
                    table: format!("{}.{}", self.database, http_request.table).into(),
                })
                .inc_by(outcome.filtered_rows);
        }
        if outcome.too_many_versions > 0 {
            tracing::warn!(
                table = %http_request.table,
                label = %outcome.label,
                "StarRocks reported too many versions; loading this table less often"
            );
            if let Ok(mut tables) = self.too_many_versions.lock() {
                tables.insert(http_request.table.clone());
            }
        }
        Ok(())
    }
}

/// Builds the StarRocks sink from the config: checks the MySQL port (auth, version) and sets
/// up the Stream Load client.
pub async fn connect_sink(
    config: &crate::config::Config,
) -> Result<super::StarRocksSink<HttpLoader>, crate::sink::SinkError> {
    use crate::config::LoadViaConfig;
    let error = |message: String| crate::sink::SinkError {
        sink: "starrocks",
        table: String::new(),
        message,
        source: None,
    };
    let Some(starrocks) = &config.sink.starrocks else {
        return Err(error("[sink.starrocks] is missing".into()));
    };
    let ddl = super::StarRocksDdl::connect(
        &starrocks.mysql,
        &starrocks.user,
        &starrocks.password,
        &starrocks.database,
    )
    .await
    .map_err(|ddl_error| error(ddl_error.to_string()))?;
    let version = ddl.version().await.unwrap_or_default();
    tracing::info!(version = %version, database = %starrocks.database, "connected to StarRocks");
    // Before the source is touched (and its slot created): a run that cannot create its tables
    // would stop at the first one, with the slot left holding WAL.
    if !starrocks.create_tables
        && !ddl
            .database_exists()
            .await
            .map_err(|ddl_error| error(ddl_error.to_string()))?
    {
        let database = &starrocks.database;
        return Err(error(format!(
            "database {database} does not exist in StarRocks: create it (CREATE DATABASE \
             {database}), fix sink.starrocks.database, or set sink.starrocks.create_tables = true"
        )));
    }
    let mut client_config = stream_load::StreamLoadConfig::new(
        &starrocks.fe_http,
        &starrocks.user,
        &starrocks.password,
    );
    if starrocks.load_via == LoadViaConfig::Be {
        client_config.load_via = stream_load::LoadVia::Be(starrocks.be_http.clone());
    }
    let client = stream_load::StreamLoadClient::new(client_config)
        .map_err(|client_error| error(client_error.to_string()))?;
    super::fe_probe::probe_fe_http(&client, &starrocks.fe_http)
        .await
        .map_err(error)?;
    let policy = stream_load::RetryPolicy {
        max_elapsed: Some(starrocks.retry_max_elapsed.0),
        ..stream_load::RetryPolicy::default()
    };
    let mut loader = HttpLoader::new(StreamLoader::new(client, policy), &starrocks.database);
    loader.transactional = starrocks.transactional;
    let options = super::StarRocksSinkOptions {
        label_prefix: config.source.slot.clone(),
        create_tables: starrocks.create_tables,
        delete_mode: starrocks.delete_mode,
        audit_columns: starrocks.audit_columns,
        type_options: TypeMapOptions {
            domains: source_domains(config).await,
            ..starrocks.type_map_options()
        },
        table_properties: starrocks
            .table_properties
            .iter()
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect(),
        alter_timeout: std::time::Duration::from_secs(600),
    };
    Ok(super::StarRocksSink::new(ddl, loader, options)
        .with_source_rows(config.source_connect().ok()))
}

/// The source's domains, for the type map. Without them a domain column is an unknown type
/// (its text); the run reports an unreachable source itself, right after.
async fn source_domains(config: &crate::config::Config) -> Domains {
    let Ok(connect) = config.source_connect() else {
        return Domains::default();
    };
    let client = match connect_sql(&connect).await {
        Ok(client) => client,
        Err(error) => {
            // The run connects next and stops with this error itself.
            tracing::debug!(%error, "cannot connect to read the source's domain types");
            return Domains::default();
        }
    };
    match read_domains(&client).await {
        Ok(domains) => Arc::new(domains),
        Err(error) => {
            tracing::warn!(%error, "cannot read the source's domain types: columns of a domain type are replicated as text this run");
            Domains::default()
        }
    }
}

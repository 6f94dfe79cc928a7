//! Script globals (`CREATE GLOBAL … LANGUAGE javascript AS $$ … $$`) and the
//! engine they share with the script authenticator: QuickJS, embedded
//! (rquickjs, built from its bundled C source), one fresh runtime per run.
//!
//! The sandbox: QuickJS itself has no file, network, module or process
//! access, and pgward adds none (no `require`, no module loader, no `std` or
//! `os`). A run is bounded by a memory limit and by a deadline that the
//! engine's interrupt handler enforces, so `while (true) {}` ends. The one
//! way out is `sql(text, ...params)`: one parameterised SELECT on the service
//! connection, inside a read-only transaction that is rolled back.
//!
//! Must never: splice a script's values into SQL (parameters only), let a
//! script write through `sql()`, or turn a script that failed, timed out or
//! returned something unusable into a value: each is an error, and the
//! caller refuses the login.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rquickjs::function::Rest;
use rquickjs::{CaughtError, Context, Ctx, Function, Runtime, Value};
use serde_json::Value as Json;
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::types::{ToSql, Type};

use super::{GlobalValue, GlobalValues};

/// `[globals]` `script_timeout_ms` and `script_memory_limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScriptLimits {
    /// Wall-clock time of one run, `sql()` calls included.
    pub timeout: Duration,
    /// Bytes the engine may allocate.
    pub memory_limit: usize,
}

impl Default for ScriptLimits {
    fn default() -> Self {
        ScriptLimits {
            timeout: Duration::from_millis(1000),
            memory_limit: 16 * 1024 * 1024,
        }
    }
}

/// `[globals]`: the limits of script globals, as configured.
///
/// ```toml
/// [globals]
/// script_timeout_ms = 1000
/// script_memory_limit = 16777216   # bytes
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GlobalsSettings {
    pub script_timeout_ms: u64,
    pub script_memory_limit: usize,
}

impl Default for GlobalsSettings {
    fn default() -> Self {
        let limits = ScriptLimits::default();
        GlobalsSettings {
            script_timeout_ms: limits.timeout.as_millis() as u64,
            script_memory_limit: limits.memory_limit,
        }
    }
}

impl GlobalsSettings {
    /// The limits, or what is wrong with them (for `globals.<key>`).
    pub fn limits(&self) -> Result<ScriptLimits, (&'static str, String)> {
        if self.script_timeout_ms == 0 {
            return Err(("globals.script_timeout_ms", "must be above 0".into()));
        }
        if self.script_memory_limit < 1024 * 1024 {
            return Err((
                "globals.script_memory_limit",
                "must be at least 1048576 (1 MiB)".into(),
            ));
        }
        Ok(ScriptLimits {
            timeout: Duration::from_millis(self.script_timeout_ms),
            memory_limit: self.script_memory_limit,
        })
    }
}

/// What a script global sees, as JavaScript globals of the same names.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScriptInput {
    pub login: String,
    pub user_id: Option<String>,
    pub roles: Vec<String>,
    pub groups: Vec<String>,
    /// A JSON object (or null): a token's claims.
    pub claims: Json,
    pub client_addr: Option<String>,
}

impl ScriptInput {
    /// The input from a session's built-in globals: `login_id`, `roles`,
    /// `client_addr`, and `user_id`, `groups`, `claims` when an identity
    /// source provided them (claims: the identity's JSON claims, or a
    /// declared `claims` global's one row, a column per claim, jsonb
    /// columns as JSON values and the rest as strings).
    pub fn from_values(values: &GlobalValues) -> ScriptInput {
        let first = |name: &str| {
            values
                .get(name)
                .and_then(|v| v.rows.first())
                .and_then(|row| row.first().cloned().flatten())
        };
        let column = |name: &str| -> Vec<String> {
            values
                .get(name)
                .map(|v| {
                    v.rows
                        .iter()
                        .filter_map(|row| row.first().cloned().flatten())
                        .collect()
                })
                .unwrap_or_default()
        };
        let claims = match values.get("claims") {
            // The identity's claims (a token's), kept as JSON.
            _ if values.claims.is_object() => values.claims.clone(),
            Some(v) => match v.rows.first() {
                Some(row) => Json::Object(
                    v.columns
                        .iter()
                        .zip(row)
                        .map(|((name, type_name), cell)| {
                            let value = match cell {
                                None => Json::Null,
                                Some(text) if type_name.ends_with("jsonb") => {
                                    serde_json::from_str(text)
                                        .unwrap_or_else(|_| Json::String(text.clone()))
                                }
                                Some(text) => Json::String(text.clone()),
                            };
                            (name.clone(), value)
                        })
                        .collect(),
                ),
                None => Json::Object(Default::default()),
            },
            None => Json::Object(Default::default()),
        };
        ScriptInput {
            login: first("login_id").unwrap_or_default(),
            user_id: first("user_id"),
            roles: column("roles"),
            groups: column("groups"),
            claims,
            client_addr: first("client_addr"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScriptError {
    /// The script threw (or a `sql()` call failed and the script did not
    /// catch it).
    #[error("the script threw: {0}")]
    Thrown(String),
    #[error("the script ran longer than {0} ms")]
    Timeout(u128),
    #[error("the script went over its memory limit of {0} bytes")]
    Memory(usize),
    /// It returned something that is not a value pgward can use.
    #[error("the script returned {0}")]
    Result(String),
    /// Its source does not compile.
    #[error("the script does not compile: {0}")]
    Syntax(String),
    #[error("the script engine failed: {0}")]
    Engine(String),
}

impl ScriptError {
    /// A stable label for logs and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            ScriptError::Thrown(_) => "script_thrown",
            ScriptError::Timeout(_) => "script_timeout",
            ScriptError::Memory(_) => "script_memory",
            ScriptError::Result(_) => "script_result",
            ScriptError::Syntax(_) => "script_syntax",
            ScriptError::Engine(_) => "script_engine",
        }
    }
}

/// Runs a script global and turns what it returns into a global's value:
/// `null`/`undefined` → no row; a scalar → one row, one column `value`; an
/// object → one row, a column per key; an array of scalars → a list (one
/// column `value`, a row per element); an array of objects → a row per
/// object, a column per key. Cells are text (strings), int8 (integral
/// numbers), numeric (other numbers), bool, or jsonb (nested objects and
/// arrays); `null` cells are NULL.
pub async fn evaluate(
    source: &str,
    input: &ScriptInput,
    client: &tokio_postgres::Client,
    limits: &ScriptLimits,
) -> Result<GlobalValue, ScriptError> {
    let mut bindings = serde_json::Map::new();
    bindings.insert("login".into(), Json::String(input.login.clone()));
    bindings.insert(
        "user_id".into(),
        input.user_id.clone().map_or(Json::Null, Json::String),
    );
    bindings.insert("roles".into(), strings(&input.roles));
    bindings.insert("groups".into(), strings(&input.groups));
    bindings.insert(
        "claims".into(),
        match &input.claims {
            Json::Null => Json::Object(Default::default()),
            other => other.clone(),
        },
    );
    bindings.insert(
        "client_addr".into(),
        input.client_addr.clone().map_or(Json::Null, Json::String),
    );
    let result = run(source, bindings, Some(client), limits).await?;
    to_global_value(result.unwrap_or(Json::Null))
}

fn strings(items: &[String]) -> Json {
    Json::Array(items.iter().cloned().map(Json::String).collect())
}

/// Compiles a script's source without running it, to report syntax errors
/// when the policies load.
pub fn check_syntax(source: &str) -> Result<(), ScriptError> {
    let runtime = Runtime::new().map_err(|e| ScriptError::Engine(e.to_string()))?;
    runtime.set_memory_limit(ScriptLimits::default().memory_limit);
    let context = Context::full(&runtime).map_err(|e| ScriptError::Engine(e.to_string()))?;
    context.with(|ctx| {
        let constructor: Function = ctx
            .globals()
            .get("Function")
            .map_err(|e| ScriptError::Engine(e.to_string()))?;
        constructor
            .call::<_, Value>((source,))
            .map(|_| ())
            .map_err(|e| match CaughtError::from_error(&ctx, e) {
                CaughtError::Exception(ex) => ScriptError::Syntax(describe(&ex)),
                other => ScriptError::Syntax(other.to_string()),
            })
    })
}

/// One `sql()` call, sent from the script's thread to the async side.
struct SqlRequest {
    sql: String,
    params: Vec<Json>,
    reply: oneshot::Sender<Result<Vec<String>, String>>,
}

/// Ends the script's run when the caller stops waiting for it.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Runs `source` as a function body with `bindings` as globals (and `sql()`
/// when a client is given); its result as JSON (`None` for `undefined`).
/// The script runs on a blocking thread; its `sql()` calls are run here, on
/// `client`, inside one read-only transaction that is rolled back at the end.
///
/// Cancel-safe: dropping the future interrupts the script.
pub(crate) async fn run(
    source: &str,
    bindings: serde_json::Map<String, Json>,
    client: Option<&tokio_postgres::Client>,
    limits: &ScriptLimits,
) -> Result<Option<Json>, ScriptError> {
    let deadline = Instant::now() + limits.timeout;
    let cancel = Arc::new(AtomicBool::new(false));
    let _guard = CancelOnDrop(cancel.clone());
    let (tx, mut rx) = mpsc::channel::<SqlRequest>(1);
    let sql_enabled = client.is_some();
    let source = source.to_string();
    let limits_copy = *limits;
    let cancel_js = cancel.clone();
    let mut job = tokio::task::spawn_blocking(move || {
        run_blocking(
            &source,
            &bindings,
            sql_enabled.then_some(tx),
            &limits_copy,
            deadline,
            cancel_js,
        )
    });
    let mut in_transaction = false;
    let timed_out = || ScriptError::Timeout(limits.timeout.as_millis());
    // Until the script's side hangs up (at once when there is no sql()).
    let mut listening = true;
    let outcome = loop {
        tokio::select! {
            request = rx.recv(), if listening => {
                let Some(request) = request else {
                    listening = false;
                    continue;
                };
                let Some(client) = client else { continue };
                let answer = tokio::time::timeout_at(
                    deadline.into(),
                    run_sql(client, &mut in_transaction, &request.sql, &request.params),
                )
                .await
                .unwrap_or_else(|_| Err("the query ran past the script's time limit".into()));
                if Instant::now() >= deadline {
                    // Stop the query upstream too, so that the rollback below
                    // does not wait for it. A cancel request needs no TLS.
                    let _ = client.cancel_token().cancel_query(tokio_postgres::NoTls).await;
                }
                if answer.is_err() && in_transaction {
                    // A failed query aborts the transaction: end it, so that
                    // a script that catches the error can query again.
                    match client.batch_execute("ROLLBACK").await {
                        Ok(()) => in_transaction = false,
                        Err(e) => tracing::warn!("could not roll back a script's query: {e}"),
                    }
                }
                let _ = request.reply.send(answer);
            }
            joined = &mut job => {
                break match joined {
                    Ok(result) => result,
                    Err(e) => Err(ScriptError::Engine(e.to_string())),
                };
            }
            // The interrupt handler stops the script at the deadline; this
            // is the backstop should the engine not reach it.
            _ = tokio::time::sleep_until((deadline + Duration::from_millis(500)).into()) => {
                cancel.store(true, Ordering::Relaxed);
                break Err(timed_out());
            }
        }
    };
    if in_transaction
        && let Some(client) = client
        && let Err(e) = client.batch_execute("ROLLBACK").await
    {
        tracing::warn!("could not roll back a script's read-only transaction: {e}");
    }
    outcome
}

/// One `sql()` call: a single SELECT, its parameters typed from what
/// PostgreSQL infers, each row as the JSON text of `to_jsonb(row)`.
async fn run_sql(
    client: &tokio_postgres::Client,
    in_transaction: &mut bool,
    sql: &str,
    params: &[Json],
) -> Result<Vec<String>, String> {
    let select = only_select(sql)?;
    if !*in_transaction {
        client
            .batch_execute("START TRANSACTION READ ONLY")
            .await
            .map_err(|e| e.to_string())?;
        *in_transaction = true;
    }
    let wrapped = format!("SELECT pg_catalog.to_jsonb(q)::text FROM ({select}\n) AS q");
    let statement = client.prepare(&wrapped).await.map_err(pg_message)?;
    if statement.params().len() != params.len() {
        return Err(format!(
            "the query has {} parameters, sql() was given {}",
            statement.params().len(),
            params.len()
        ));
    }
    let mut values: Vec<Box<dyn ToSql + Sync + Send>> = Vec::with_capacity(params.len());
    for (i, (value, ty)) in params.iter().zip(statement.params()).enumerate() {
        values.push(to_param(value, ty).map_err(|e| format!("parameter ${}: {e}", i + 1))?);
    }
    let refs: Vec<&(dyn ToSql + Sync)> =
        values.iter().map(|v| &**v as &(dyn ToSql + Sync)).collect();
    let rows = client.query(&statement, &refs).await.map_err(pg_message)?;
    rows.iter()
        .map(|row| row.try_get::<_, String>(0).map_err(|e| e.to_string()))
        .collect()
}

fn pg_message(e: tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}

/// The query, printed back by PostgreSQL's own grammar, if it is exactly one
/// SELECT that writes nothing.
fn only_select(sql: &str) -> Result<String, String> {
    let parsed = pg_query::parse(sql).map_err(|e| format!("syntax error: {e}"))?;
    let types = parsed.statement_types();
    if types != ["SelectStmt"] {
        return Err(format!(
            "sql() runs one SELECT, not {}",
            if types.is_empty() {
                "an empty query".to_string()
            } else {
                types.join(", ")
            }
        ));
    }
    if !parsed.dml_tables().is_empty() || !parsed.ddl_tables().is_empty() {
        return Err("sql() only reads: the query writes".into());
    }
    parsed.deparse().map_err(|e| e.to_string())
}

/// A JavaScript value as a parameter of the type PostgreSQL inferred.
fn to_param(value: &Json, ty: &Type) -> Result<Box<dyn ToSql + Sync + Send>, String> {
    fn int(value: &Json) -> Result<Option<i64>, String> {
        match value {
            Json::Null => Ok(None),
            Json::Number(n) => n
                .as_i64()
                .or_else(|| {
                    n.as_f64()
                        .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                        .map(|f| f as i64)
                })
                .map(Some)
                .ok_or_else(|| format!("{n} is not an integer")),
            Json::String(s) => s
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| format!("{s:?} is not an integer")),
            other => Err(format!("{other} is not an integer")),
        }
    }
    fn text(value: &Json) -> Option<String> {
        match value {
            Json::Null => None,
            Json::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        }
    }
    let narrow = |v: Option<i64>, what: &str| -> Result<Option<i32>, String> {
        v.map(|v| i32::try_from(v).map_err(|_| format!("{v} does not fit in {what}")))
            .transpose()
    };
    Ok(match *ty {
        Type::BOOL => Box::new(match value {
            Json::Null => None,
            Json::Bool(b) => Some(*b),
            other => return Err(format!("{other} is not a boolean")),
        }),
        Type::INT2 => Box::new(
            int(value)?
                .map(|v| i16::try_from(v).map_err(|_| format!("{v} does not fit in int2")))
                .transpose()?,
        ),
        Type::INT4 => Box::new(narrow(int(value)?, "int4")?),
        Type::INT8 => Box::new(int(value)?),
        Type::FLOAT4 | Type::FLOAT8 => {
            let f = match value {
                Json::Null => None,
                Json::Number(n) => n.as_f64(),
                other => return Err(format!("{other} is not a number")),
            };
            if *ty == Type::FLOAT4 {
                Box::new(f.map(|f| f as f32))
            } else {
                Box::new(f)
            }
        }
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
            Box::new(text(value))
        }
        Type::TEXT_ARRAY | Type::VARCHAR_ARRAY => match value {
            Json::Null => Box::new(None::<Vec<Option<String>>>),
            Json::Array(items) => Box::new(Some(items.iter().map(text).collect::<Vec<_>>())),
            other => return Err(format!("{other} is not an array")),
        },
        Type::INT4_ARRAY | Type::INT8_ARRAY => match value {
            Json::Null => Box::new(None::<Vec<Option<i64>>>),
            Json::Array(items) => {
                let ints = items.iter().map(int).collect::<Result<Vec<_>, _>>()?;
                if *ty == Type::INT4_ARRAY {
                    let narrowed = ints
                        .into_iter()
                        .map(|v| narrow(v, "int4"))
                        .collect::<Result<Vec<_>, _>>()?;
                    Box::new(Some(narrowed))
                } else {
                    Box::new(Some(ints))
                }
            }
            other => return Err(format!("{other} is not an array")),
        },
        ref other => {
            return Err(format!(
                "sql() cannot pass a value of type {}: cast the parameter in the query, as \
                 $n::text::{}",
                other.name(),
                other.name()
            ));
        }
    })
}

/// The script's thread: a fresh runtime and context, the bindings as
/// globals, the source compiled as a function body and called.
fn run_blocking(
    source: &str,
    bindings: &serde_json::Map<String, Json>,
    sql: Option<mpsc::Sender<SqlRequest>>,
    limits: &ScriptLimits,
    deadline: Instant,
    cancel: Arc<AtomicBool>,
) -> Result<Option<Json>, ScriptError> {
    let engine = |e: rquickjs::Error| ScriptError::Engine(e.to_string());
    let runtime = Runtime::new().map_err(engine)?;
    runtime.set_memory_limit(limits.memory_limit);
    runtime.set_max_stack_size(512 * 1024);
    let interrupted = cancel.clone();
    runtime.set_interrupt_handler(Some(Box::new(move || {
        interrupted.load(Ordering::Relaxed) || Instant::now() >= deadline
    })));
    let context = Context::full(&runtime).map_err(engine)?;
    let result = context.with(|ctx| -> Result<Option<Json>, ScriptError> {
        let fail = |ctx: &Ctx<'_>, e: rquickjs::Error| failure(ctx, e, limits, deadline, &cancel);
        let globals = ctx.globals();
        for (name, value) in bindings {
            let value = ctx
                .json_parse(value.to_string())
                .map_err(|e| fail(&ctx, e))?;
            globals
                .set(name.as_str(), value)
                .map_err(|e| fail(&ctx, e))?;
        }
        if let Some(sender) = sql {
            let sql_fn = sql_function(&ctx, sender).map_err(|e| fail(&ctx, e))?;
            globals.set("sql", sql_fn).map_err(|e| fail(&ctx, e))?;
        }
        let constructor: Function = globals.get("Function").map_err(|e| fail(&ctx, e))?;
        let body: Function = constructor
            .call((source,))
            .map_err(|e| match fail(&ctx, e) {
                ScriptError::Thrown(m) => ScriptError::Syntax(m),
                other => other,
            })?;
        let value: Value = body.call(()).map_err(|e| fail(&ctx, e))?;
        if value.is_undefined() {
            return Ok(None);
        }
        if value.is_function() || value.is_symbol() {
            return Err(ScriptError::Result(
                "a function or symbol, not a value".into(),
            ));
        }
        let json = ctx
            .json_stringify(value)
            .map_err(|e| fail(&ctx, e))?
            .map(|s| s.to_string())
            .transpose()
            .map_err(|e| fail(&ctx, e))?;
        match json {
            None => Ok(None),
            Some(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| ScriptError::Result(format!("a value JSON cannot hold: {e}"))),
        }
    });
    drop(context);
    drop(runtime);
    result
}

fn sql_function<'js>(
    ctx: &Ctx<'js>,
    sender: mpsc::Sender<SqlRequest>,
) -> rquickjs::Result<Function<'js>> {
    Function::new(
        ctx.clone(),
        move |ctx: Ctx<'js>,
              text: String,
              params: Rest<Value<'js>>|
              -> rquickjs::Result<Value<'js>> { sql_call(&ctx, &sender, text, params.0) },
    )
}

/// `sql(text, ...params)` inside the script: blocks its thread until the
/// async side answers; a failure is thrown as a JavaScript Error.
fn sql_call<'js>(
    ctx: &Ctx<'js>,
    sender: &mpsc::Sender<SqlRequest>,
    text: String,
    params: Vec<Value<'js>>,
) -> rquickjs::Result<Value<'js>> {
    let mut json_params = Vec::with_capacity(params.len());
    for p in params {
        let json = if p.is_undefined() || p.is_null() {
            Json::Null
        } else {
            match ctx.json_stringify(p)? {
                Some(s) => serde_json::from_str(&s.to_string()?)
                    .map_err(|e| rquickjs::Exception::throw_type(ctx, &e.to_string()))?,
                None => Json::Null,
            }
        };
        json_params.push(json);
    }
    let (reply, answer) = oneshot::channel();
    sender
        .blocking_send(SqlRequest {
            sql: text,
            params: json_params,
            reply,
        })
        .map_err(|_| rquickjs::Exception::throw_internal(ctx, "sql() is not available"))?;
    let rows = answer
        .blocking_recv()
        .map_err(|_| rquickjs::Exception::throw_internal(ctx, "sql() got no answer"))?
        .map_err(|message| rquickjs::Exception::throw_message(ctx, &format!("sql(): {message}")))?;
    let array = rquickjs::Array::new(ctx.clone())?;
    for (i, row) in rows.into_iter().enumerate() {
        array.set(i, ctx.json_parse(row)?)?;
    }
    Ok(array.into_value())
}

/// `Name: message` of a JavaScript error.
fn describe(ex: &rquickjs::Exception<'_>) -> String {
    let message = ex.message().unwrap_or_default();
    let name: Option<String> = ex.get("name").ok();
    match name {
        Some(name) if !name.is_empty() => format!("{name}: {message}"),
        _ => message,
    }
}

/// What an engine error means: the deadline, the memory limit, or the
/// script's own exception.
fn failure(
    ctx: &Ctx<'_>,
    e: rquickjs::Error,
    limits: &ScriptLimits,
    deadline: Instant,
    cancel: &AtomicBool,
) -> ScriptError {
    if Instant::now() >= deadline || cancel.load(Ordering::Relaxed) {
        return ScriptError::Timeout(limits.timeout.as_millis());
    }
    let message = match CaughtError::from_error(ctx, e) {
        CaughtError::Exception(ex) => {
            if ex.message().unwrap_or_default().contains("out of memory") {
                return ScriptError::Memory(limits.memory_limit);
            }
            describe(&ex)
        }
        CaughtError::Value(value) => {
            if value.is_null() {
                // QuickJS throws null when it cannot even allocate an error.
                return ScriptError::Memory(limits.memory_limit);
            }
            ctx.json_stringify(value)
                .ok()
                .flatten()
                .and_then(|s| s.to_string().ok())
                .unwrap_or_else(|| "a value".into())
        }
        CaughtError::Error(rquickjs::Error::Allocation) => {
            return ScriptError::Memory(limits.memory_limit);
        }
        CaughtError::Error(e) => return ScriptError::Engine(e.to_string()),
    };
    ScriptError::Thrown(message)
}

/// The PostgreSQL type of one JSON cell, and its text.
fn cell(value: &Json) -> (Option<&'static str>, Option<String>) {
    match value {
        Json::Null => (None, None),
        Json::Bool(b) => (Some("pg_catalog.bool"), Some(b.to_string())),
        Json::Number(n) => {
            if n.is_i64() || n.is_u64() {
                (Some("pg_catalog.int8"), Some(n.to_string()))
            } else {
                match n.as_f64() {
                    Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => {
                        (Some("pg_catalog.int8"), Some(format!("{}", f as i64)))
                    }
                    Some(f) => (Some("pg_catalog.numeric"), Some(format!("{f}"))),
                    None => (Some("pg_catalog.numeric"), Some(n.to_string())),
                }
            }
        }
        Json::String(s) => (Some("pg_catalog.text"), Some(s.clone())),
        Json::Array(_) | Json::Object(_) => (Some("pg_catalog.jsonb"), Some(value.to_string())),
    }
}

/// Builds a column's type from its cells: int8 and numeric widen to
/// numeric; any other mix is an error.
fn unify(
    current: Option<&'static str>,
    next: Option<&'static str>,
    column: &str,
) -> Result<Option<&'static str>, ScriptError> {
    Ok(match (current, next) {
        (None, t) | (t, None) => t,
        (Some(a), Some(b)) if a == b => Some(a),
        (Some("pg_catalog.int8"), Some("pg_catalog.numeric"))
        | (Some("pg_catalog.numeric"), Some("pg_catalog.int8")) => Some("pg_catalog.numeric"),
        (Some(a), Some(b)) => {
            return Err(ScriptError::Result(format!(
                "column \"{column}\" with values of types {} and {}",
                a.trim_start_matches("pg_catalog."),
                b.trim_start_matches("pg_catalog.")
            )));
        }
    })
}

fn to_global_value(result: Json) -> Result<GlobalValue, ScriptError> {
    const VALUE: &str = "value";
    let rows: Vec<Json> = match result {
        Json::Null => {
            return Ok(GlobalValue {
                columns: vec![(VALUE.into(), "pg_catalog.text".into())],
                rows: vec![],
            });
        }
        Json::Array(items) => items,
        other => vec![other],
    };
    let objects = rows.iter().filter(|r| r.is_object()).count();
    if objects > 0 && objects < rows.len() {
        return Err(ScriptError::Result(
            "an array that mixes objects with other values".into(),
        ));
    }
    if objects == 0 {
        let mut type_name = None;
        let mut cells = Vec::with_capacity(rows.len());
        for row in &rows {
            let (t, text) = cell(row);
            type_name = unify(type_name, t, VALUE)?;
            cells.push(vec![text]);
        }
        return Ok(GlobalValue {
            columns: vec![(VALUE.into(), type_name.unwrap_or("pg_catalog.text").into())],
            rows: cells,
        });
    }
    // Rows of objects: the columns are every key, in first-seen order.
    let mut names: Vec<String> = Vec::new();
    for row in &rows {
        if let Json::Object(map) = row {
            for key in map.keys() {
                if !names.contains(key) {
                    names.push(key.clone());
                }
            }
        }
    }
    if names.is_empty() {
        return Err(ScriptError::Result("an object without keys".into()));
    }
    let mut types: Vec<Option<&'static str>> = vec![None; names.len()];
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let Json::Object(map) = row else { continue };
        let mut cells = Vec::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            let (t, text) = cell(map.get(name).unwrap_or(&Json::Null));
            types[i] = unify(types[i], t, name)?;
            cells.push(text);
        }
        out.push(cells);
    }
    Ok(GlobalValue {
        columns: names
            .into_iter()
            .zip(types)
            .map(|(n, t)| (n, t.unwrap_or("pg_catalog.text").to_string()))
            .collect(),
        rows: out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ScriptLimits {
        ScriptLimits {
            timeout: Duration::from_millis(500),
            memory_limit: 8 * 1024 * 1024,
        }
    }

    fn input() -> ScriptInput {
        ScriptInput {
            login: "alice".into(),
            user_id: Some("42".into()),
            roles: vec!["employee".into(), "sales_rep".into()],
            groups: vec!["sales".into()],
            claims: serde_json::json!({"sub": "alice", "tenant": {"id": 7}}),
            client_addr: Some("127.0.0.1".into()),
        }
    }

    /// Runs a script without a database (no `sql()`), as evaluate would.
    async fn value(source: &str) -> Result<GlobalValue, ScriptError> {
        let mut bindings = serde_json::Map::new();
        let i = input();
        bindings.insert("login".into(), Json::String(i.login));
        bindings.insert("user_id".into(), Json::String("42".into()));
        bindings.insert("roles".into(), strings(&i.roles));
        bindings.insert("groups".into(), strings(&i.groups));
        bindings.insert("claims".into(), i.claims);
        bindings.insert("client_addr".into(), Json::String("127.0.0.1".into()));
        let result = run(source, bindings, None, &limits()).await?;
        to_global_value(result.unwrap_or(Json::Null))
    }

    fn col(name: &str, t: &str) -> (String, String) {
        (name.into(), format!("pg_catalog.{t}"))
    }

    fn some(s: &str) -> Option<String> {
        Some(s.into())
    }

    #[tokio::test]
    async fn scalars_see_the_session() {
        let v = value(
            "return login + ':' + user_id + ':' + roles.join(',') + ':' + groups[0] \
                       + ':' + claims.tenant.id + ':' + client_addr;",
        )
        .await
        .unwrap();
        assert_eq!(v.columns, [col("value", "text")]);
        assert_eq!(
            v.rows,
            [[some("alice:42:employee,sales_rep:sales:7:127.0.0.1")]]
        );
        let v = value("return 6 / 2").await.unwrap();
        assert_eq!(
            (v.columns, v.rows),
            (vec![col("value", "int8")], vec![vec![some("3")]])
        );
        let v = value("return 0.5").await.unwrap();
        assert_eq!(
            (v.columns, v.rows),
            (vec![col("value", "numeric")], vec![vec![some("0.5")]])
        );
        let v = value("return roles.includes('employee')").await.unwrap();
        assert_eq!(
            (v.columns, v.rows),
            (vec![col("value", "bool")], vec![vec![some("true")]])
        );
        // No value: no row (a REQUIRED global then fails the login).
        for nothing in ["return null", "return undefined", ""] {
            let v = value(nothing).await.unwrap();
            assert!(v.rows.is_empty(), "{nothing}: {v:?}");
        }
    }

    #[tokio::test]
    async fn objects_are_one_row_and_arrays_are_lists() {
        let v = value("return {id: 7, name: 'Sales', tags: ['a'], boss: null}")
            .await
            .unwrap();
        assert_eq!(
            v.columns,
            [
                col("boss", "text"),
                col("id", "int8"),
                col("name", "text"),
                col("tags", "jsonb")
            ]
        );
        assert_eq!(v.rows, [[None, some("7"), some("Sales"), some("[\"a\"]")]]);

        let v = value("return ['east', 'west', null]").await.unwrap();
        assert_eq!(v.columns, [col("value", "text")]);
        assert_eq!(v.rows, [vec![some("east")], vec![some("west")], vec![None]]);
        let v = value("return [1, 2.5]").await.unwrap();
        assert_eq!(v.columns, [col("value", "numeric")]);
        assert_eq!(v.rows, [[some("1")], [some("2.5")]]);
        let v = value("return []").await.unwrap();
        assert!(v.rows.is_empty());
        let v = value("return [{a: 1}, {a: 2, b: 'x'}]").await.unwrap();
        assert_eq!(v.columns, [col("a", "int8"), col("b", "text")]);
        assert_eq!(v.rows, [[some("1"), None], [some("2"), some("x")]]);

        for (bad, why) in [
            ("return [1, 'a']", "types int8 and text"),
            ("return [{a: 1}, 2]", "mixes objects"),
            ("return {}", "without keys"),
            ("return () => 1", "function"),
        ] {
            let err = value(bad).await.unwrap_err();
            assert!(
                matches!(&err, ScriptError::Result(m) if m.contains(why)),
                "{bad}: {err}"
            );
        }
    }

    #[tokio::test]
    async fn a_throwing_script_is_an_error() {
        assert_eq!(
            value("throw new Error('no department for ' + login)")
                .await
                .unwrap_err(),
            ScriptError::Thrown("Error: no department for alice".into())
        );
        assert_eq!(
            value("throw 'plain'").await.unwrap_err(),
            ScriptError::Thrown("\"plain\"".into())
        );
        let err = value("return undefined_name + 1").await.unwrap_err();
        assert!(
            matches!(&err, ScriptError::Thrown(m) if m.contains("ReferenceError")),
            "{err}"
        );
        let err = value("return {").await.unwrap_err();
        assert!(matches!(err, ScriptError::Syntax(_)), "{err}");
    }

    #[tokio::test]
    async fn an_endless_loop_is_stopped_at_the_deadline() {
        let started = Instant::now();
        for endless in [
            "while (true) {}",
            "for (;;) { try { while (true) {} } catch (e) {} }",
            "function f() { return f(); } while (true) { try { f() } catch (e) {} }",
            // Catastrophic backtracking.
            "return /^(a+)+$/.test('a'.repeat(40) + '!')",
        ] {
            assert_eq!(
                value(endless).await.unwrap_err(),
                ScriptError::Timeout(500),
                "{endless}"
            );
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn a_memory_bomb_is_stopped_by_the_limit() {
        for bomb in [
            "let a = []; while (true) a.push(new Array(100000).fill(1));",
            "const keep = []; let n = 1; while (true) { keep.push('x'.repeat(n)); n *= 2; }",
            "return new ArrayBuffer(64 * 1024 * 1024).byteLength",
        ] {
            let err = value(bomb).await.unwrap_err();
            assert!(
                matches!(err, ScriptError::Memory(_) | ScriptError::Thrown(_)),
                "{bomb}: {err}"
            );
            if let ScriptError::Thrown(m) = &err {
                // QuickJS reports some allocations as a RangeError.
                assert!(
                    m.contains("RangeError") || m.contains("memory"),
                    "{bomb}: {m}"
                );
            }
        }
        let err = value("let a = []; while (true) a.push(new Array(100000).fill(1));")
            .await
            .unwrap_err();
        assert_eq!(err, ScriptError::Memory(8 * 1024 * 1024));
    }

    #[tokio::test]
    async fn no_files_network_modules_or_processes() {
        let v = value(
            "return [typeof require, typeof process, typeof std, typeof os, typeof fetch, \
             typeof XMLHttpRequest, typeof WebSocket, typeof Deno, typeof Bun, \
             typeof importScripts, typeof sql]",
        )
        .await
        .unwrap();
        assert!(
            v.rows.iter().all(|r| r == &[some("undefined")]),
            "{:?}",
            v.rows
        );
        for escape in [
            "return require('fs').readFileSync('/etc/passwd', 'utf8')",
            "return std.loadFile('/etc/passwd')",
            "return os.exec(['id'])",
            "return fetch('http://127.0.0.1/')",
        ] {
            let err = value(escape).await.unwrap_err();
            assert!(
                matches!(&err, ScriptError::Thrown(m) if m.contains("ReferenceError")),
                "{escape}: {err}"
            );
        }
        // A dynamic import has no loader to go to.
        let err = value(
            "let out = 'pending'; import('/etc/passwd').then(() => out = 'loaded', e => out = String(e)); return out",
        )
        .await;
        match err {
            Ok(v) => assert_ne!(v.rows, [[some("loaded")]]),
            Err(e) => assert!(
                matches!(e, ScriptError::Thrown(_) | ScriptError::Syntax(_)),
                "{e}"
            ),
        }
    }

    #[test]
    fn globals_settings() {
        let s: GlobalsSettings = toml::from_str("script_timeout_ms = 250").unwrap();
        assert_eq!(
            s.limits().unwrap(),
            ScriptLimits {
                timeout: Duration::from_millis(250),
                memory_limit: 16 * 1024 * 1024
            }
        );
        let zero: GlobalsSettings = toml::from_str("script_timeout_ms = 0").unwrap();
        assert_eq!(zero.limits().unwrap_err().0, "globals.script_timeout_ms");
        let small: GlobalsSettings = toml::from_str("script_memory_limit = 1000").unwrap();
        assert_eq!(small.limits().unwrap_err().0, "globals.script_memory_limit");
        assert!(toml::from_str::<GlobalsSettings>("timeout = 1").is_err());
    }

    #[test]
    fn syntax_is_checked_without_running() {
        assert_eq!(check_syntax("return login"), Ok(()));
        assert_eq!(check_syntax("while (true) {}"), Ok(()));
        assert!(matches!(
            check_syntax("return {"),
            Err(ScriptError::Syntax(_))
        ));
    }

    #[test]
    fn sql_runs_only_one_select() {
        assert!(only_select("SELECT 1; -- c").is_ok());
        assert_eq!(
            only_select("SELECT $1::int + 1 -- trailing comment").unwrap(),
            "SELECT $1::int + 1"
        );
        for bad in [
            "DELETE FROM t",
            "SELECT 1; SELECT 2",
            "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
            "COMMIT",
            "",
        ] {
            assert!(only_select(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn input_comes_from_the_session_globals() {
        let mut values =
            GlobalValues::builtins("bob", &["r1".into(), "r2".into()], Some("10.0.0.1"));
        values.insert(
            "claims",
            GlobalValue {
                columns: vec![
                    col("sub", "text"),
                    ("scope".into(), "pg_catalog.jsonb".into()),
                ],
                rows: vec![vec![some("bob"), some("[\"read\"]")]],
            },
        );
        let input = ScriptInput::from_values(&values);
        assert_eq!(input.login, "bob");
        assert_eq!(input.roles, ["r1", "r2"]);
        assert_eq!(input.client_addr.as_deref(), Some("10.0.0.1"));
        assert_eq!(input.user_id, None);
        assert_eq!(
            input.claims,
            serde_json::json!({"sub": "bob", "scope": ["read"]})
        );

        // An identity's claims are passed as they are.
        let mut identity = crate::auth::Identity::new("carol", "jwt");
        identity.claims = serde_json::json!({"tenant": {"id": 9}, "sub": "carol"});
        identity.groups = vec!["g1".into()];
        identity.user_id = Some(("17".into(), "pg_catalog.int8".into()));
        let values = GlobalValues::for_identity(&identity, &["r".into()], None);
        let input = ScriptInput::from_values(&values);
        assert_eq!(input.claims, identity.claims);
        assert_eq!(input.groups, ["g1"]);
        assert_eq!(input.user_id.as_deref(), Some("17"));
        assert_eq!(input.login, "carol");
    }
}

//! Authenticating a client against the identity sources of `auth.order`
//! (PRODUCT.md §2 "Authentication rules"). The method is the listener's,
//! never the user's: SCRAM-SHA-256 (-PLUS over TLS) when every source has
//! verifiers, otherwise a cleartext password for everyone, only over TLS or
//! from loopback when `auth.allow_cleartext_on_loopback` is set. The sources
//! are tried in order; the first that knows the user decides.
//!
//! Must never: tell an unauthenticated client whether a user exists. An
//! unknown user runs the same exchange (under SCRAM against a mock verifier
//! with the keyed salt) and fails at the same step with the same 28P01, the
//! same throttling and, as far as the work done goes, the same timing.

use std::net::IpAddr;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use tokio::io::AsyncWriteExt;

use crate::auth::Identity;
use crate::auth::introspection::IntrospectionOutcome;
use crate::auth::jwt::JwtOutcome;
use crate::auth::ldap::LdapOutcome;
use crate::auth::password::{self, Stored};
use crate::auth::scram::{self, ScramError, ScramServer, ScramVerifier};
use crate::auth::table;
use crate::auth::throttle::Verdict;
use crate::config::{SourceKind, TableVerifiers};
use crate::error::{PgError, code};
use crate::net::Stream;
use crate::wire::io::{WireError, read_body, read_header};
use crate::wire::{MAX_AUTH_LEN, backend, frontend};

use super::Shared;

/// How an authentication attempt ended.
pub enum AuthOutcome {
    Authenticated(Box<Identity>),
    /// Refused: send this error, then close.
    Refused(PgError),
    /// The client went away (psql does this to prompt for a password).
    Gone,
}

/// What one source said about a user.
enum Decision {
    /// The source does not know the user: ask the next one.
    Unknown,
    /// The source knows the user and refuses: this error (28P01 for a wrong
    /// password, 28000 for a token that is expired or for someone else).
    Rejected(PgError),
    Accepted(Identity),
}

pub async fn authenticate(
    stream: &mut Stream,
    shared: &Shared,
    user: &str,
    peer: Option<IpAddr>,
) -> std::io::Result<AuthOutcome> {
    let guest = &shared.config.auth.guest;
    if guest.enabled && user == guest.user {
        // The guest's name is public by configuration: no credentials.
        let mut out = BytesMut::new();
        backend::authentication_ok(&mut out);
        stream.write_all(&out).await?;
        let mut identity = Identity::new(user, "guest");
        identity.roles = vec!["guest".to_string()];
        identity.policy_user = false;
        return Ok(AuthOutcome::Authenticated(Box::new(identity)));
    }
    let addr = peer.map(|p| p.to_string());
    let locked = match shared.identity.throttle.check(user, addr.as_deref()) {
        Verdict::Open => None,
        Verdict::Locked(left) => Some(left),
    };
    let outcome = if shared.identity.scram {
        scram_login(stream, shared, user, locked.is_some()).await?
    } else {
        let cleartext_allowed = stream.is_tls()
            || (shared.config.auth.allow_cleartext_on_loopback
                && peer.is_some_and(|p| p.is_loopback()));
        if !cleartext_allowed {
            return Ok(AuthOutcome::Refused(
                PgError::fatal(
                    code::INVALID_AUTHORIZATION,
                    "pgward accepts passwords only over TLS",
                )
                .with_hint("Connect with sslmode=require."),
            ));
        }
        cleartext_login(stream, shared, user, peer, locked.is_some()).await?
    };
    match outcome {
        AuthOutcome::Authenticated(identity) => {
            shared.identity.throttle.succeeded(user);
            tracing::info!(user, login = %identity.login, source = identity.source, "authenticated");
            Ok(AuthOutcome::Authenticated(identity))
        }
        AuthOutcome::Refused(mut e) => {
            let delay = shared.identity.throttle.failed(user, addr.as_deref());
            if let Some(left) = locked {
                tracing::info!(user, addr = ?addr, "login refused: locked out");
                e = password_failure(user).with_hint(format!(
                    "Too many failed logins for this user name or address: try again in {} s.",
                    (left.as_secs() + u64::from(left.subsec_nanos() > 0)).max(1)
                ));
            }
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            Ok(AuthOutcome::Refused(e))
        }
        AuthOutcome::Gone => Ok(AuthOutcome::Gone),
    }
}

/// The SCRAM verifier of a user and whether some source knows it. Every
/// configured source is asked, whoever answers first, so that a known and
/// an unknown name cost the same.
async fn scram_verifier(
    shared: &Shared,
    user: &str,
) -> Result<(Option<ScramVerifier>, Option<Identity>), PgError> {
    let mut found: Option<(Option<ScramVerifier>, Option<Identity>)> = None;
    for kind in &shared.config.auth.order {
        match kind {
            SourceKind::Policy => {
                if let Some(u) = shared.policies.users.get(user) {
                    let identity = Identity::new(user, "policy");
                    found.get_or_insert((u.verifier.clone(), Some(identity)));
                }
            }
            SourceKind::Table => {
                if let Some(row) = table_user(shared, user).await? {
                    let verifier = match row.stored {
                        Some(Stored::Scram(v)) => Some(v),
                        _ => None,
                    };
                    found.get_or_insert((verifier, Some(row.identity)));
                }
            }
            // uses_scram() admits no other source.
            _ => {}
        }
    }
    Ok(found.unwrap_or((None, None)))
}

async fn table_user(shared: &Shared, user: &str) -> Result<Option<table::TableUser>, PgError> {
    let Some(config) = &shared.config.auth.table else {
        return Ok(None);
    };
    let client = shared.control.client().await.map_err(|e| {
        tracing::warn!("control connection failed: {e}");
        unavailable()
    })?;
    table::lookup(&client, &config.query, user)
        .await
        .map_err(|e| {
            tracing::warn!(label = e.label(), "{e}");
            unavailable()
        })
}

fn unavailable() -> PgError {
    PgError::fatal(
        code::CONNECTION_FAILURE,
        "the upstream database is unavailable",
    )
}

async fn scram_login(
    stream: &mut Stream,
    shared: &Shared,
    user: &str,
    locked: bool,
) -> std::io::Result<AuthOutcome> {
    let (known, identity) = match scram_verifier(shared, user).await {
        Ok(found) => found,
        Err(e) => return Ok(AuthOutcome::Refused(e)),
    };
    // Locked out: the exchange runs against a mock, so that even the right
    // password fails exactly like a wrong one.
    let known = if locked { None } else { known };
    let is_known = known.is_some();
    let verifier = known.unwrap_or_else(|| {
        ScramVerifier::mock(
            &shared.config.auth.secret,
            user,
            shared.config.auth.scram_iterations,
        )
    });
    let binding = match stream {
        Stream::ServerTls(_) => shared
            .server_tls
            .as_ref()
            .and_then(|t| t.channel_binding.clone()),
        _ => None,
    };
    let mechanisms = scram::mechanisms(binding.is_some());
    let mut server = ScramServer::new(verifier, is_known, binding);

    let mut out = BytesMut::new();
    backend::authentication_sasl(&mut out, &mechanisms);
    stream.write_all(&out).await?;
    stream.flush().await?;

    let Some(first) = read_password_message(stream).await? else {
        return Ok(AuthOutcome::Gone);
    };
    let Some((mechanism, data)) = frontend::decode_sasl_initial(&first) else {
        return Ok(AuthOutcome::Refused(malformed()));
    };
    let server_first = match server.client_first(mechanism, data) {
        Ok(m) => m,
        Err(e) => return Ok(AuthOutcome::Refused(scram_error(e, user))),
    };
    out.clear();
    backend::authentication_sasl_continue(&mut out, &server_first);
    stream.write_all(&out).await?;
    stream.flush().await?;

    let Some(last) = read_password_message(stream).await? else {
        return Ok(AuthOutcome::Gone);
    };
    match (server.client_final(&last), identity) {
        (Ok(server_final), Some(identity)) => {
            out.clear();
            backend::authentication_sasl_final(&mut out, &server_final);
            backend::authentication_ok(&mut out);
            stream.write_all(&out).await?;
            Ok(AuthOutcome::Authenticated(Box::new(identity)))
        }
        (Ok(_), None) => Ok(AuthOutcome::Refused(password_failure(user))),
        (Err(e), _) => Ok(AuthOutcome::Refused(scram_error(e, user))),
    }
}

async fn cleartext_login(
    stream: &mut Stream,
    shared: &Shared,
    user: &str,
    peer: Option<IpAddr>,
    locked: bool,
) -> std::io::Result<AuthOutcome> {
    let mut out = BytesMut::new();
    backend::put_message(&mut out, b'R', |b| b.put_i32(3));
    stream.write_all(&out).await?;
    stream.flush().await?;
    let Some(body) = read_password_message(stream).await? else {
        return Ok(AuthOutcome::Gone);
    };
    let password = match body.split_last() {
        Some((0, text)) if !text.contains(&0) => match std::str::from_utf8(text) {
            Ok(p) => p.to_string(),
            Err(_) => return Ok(AuthOutcome::Refused(password_failure(user))),
        },
        _ => {
            return Ok(AuthOutcome::Refused(PgError::fatal(
                code::PROTOCOL_VIOLATION,
                "malformed password message",
            )));
        }
    };
    if locked {
        // No source is asked (an LDAP directory or an identity provider
        // must not see guesses for a locked-out name); the same refusal
        // follows for known and unknown names.
        decoy(shared, &password);
        return Ok(AuthOutcome::Refused(password_failure(user)));
    }
    let decision = decide(shared, user, &password, peer).await;
    match decision {
        Decision::Accepted(identity) => {
            out.clear();
            backend::authentication_ok(&mut out);
            stream.write_all(&out).await?;
            Ok(AuthOutcome::Authenticated(Box::new(identity)))
        }
        Decision::Rejected(e) => Ok(AuthOutcome::Refused(e)),
        Decision::Unknown => Ok(AuthOutcome::Refused(password_failure(user))),
    }
}

/// Asks the sources in order; the first that knows the user decides.
async fn decide(shared: &Shared, user: &str, password: &str, peer: Option<IpAddr>) -> Decision {
    let auth = &shared.config.auth;
    if password.is_empty() {
        // Never a credential (an empty LDAP bind is anonymous).
        decoy(shared, password);
        return Decision::Rejected(password_failure(user));
    }
    for kind in &auth.order {
        let decision = match kind {
            SourceKind::Policy => match shared.policies.users.get(user) {
                Some(u) => match &u.verifier {
                    Some(v) if password::scram_matches(v, password) => {
                        Decision::Accepted(Identity::new(user, "policy"))
                    }
                    Some(_) => Decision::Rejected(password_failure(user)),
                    None => {
                        decoy(shared, password);
                        Decision::Rejected(password_failure(user))
                    }
                },
                None => Decision::Unknown,
            },
            SourceKind::Jwt => match &shared.identity.jwt {
                Some(jwt) => match jwt.authenticate(user, password).await {
                    JwtOutcome::NotAToken => Decision::Unknown,
                    JwtOutcome::Rejected(e) => Decision::Rejected(e),
                    JwtOutcome::Accepted(identity) => Decision::Accepted(identity),
                },
                None => Decision::Unknown,
            },
            SourceKind::Introspection => match &shared.identity.introspection {
                Some(source) => match source.authenticate(user, password).await {
                    IntrospectionOutcome::Inactive => Decision::Unknown,
                    IntrospectionOutcome::Rejected(e) => Decision::Rejected(e),
                    IntrospectionOutcome::Accepted(identity) => Decision::Accepted(identity),
                },
                None => Decision::Unknown,
            },
            SourceKind::Table => match table_user(shared, user).await {
                Err(e) => Decision::Rejected(e),
                Ok(None) => Decision::Unknown,
                Ok(Some(row)) => match row.stored {
                    Some(stored) => {
                        password::remember(&stored);
                        if stored.verify(password) {
                            Decision::Accepted(row.identity)
                        } else {
                            Decision::Rejected(password_failure(user))
                        }
                    }
                    None => {
                        decoy(shared, password);
                        Decision::Rejected(password_failure(user))
                    }
                },
            },
            SourceKind::Ldap => match &auth.ldap {
                Some(settings) => {
                    match crate::auth::ldap::authenticate(settings, user, password).await {
                        Ok(LdapOutcome::Unknown) => Decision::Unknown,
                        Ok(LdapOutcome::Rejected) => Decision::Rejected(password_failure(user)),
                        Ok(LdapOutcome::Accepted(found)) => {
                            let mut identity = Identity::new(&found.login, "ldap");
                            identity.roles = found.roles;
                            identity.groups = found.groups;
                            Decision::Accepted(identity)
                        }
                        Err(e) => {
                            tracing::warn!(label = e.label(), "{e}");
                            Decision::Rejected(PgError::fatal(
                                code::INVALID_AUTHORIZATION,
                                "the password could not be checked: the directory is unavailable",
                            ))
                        }
                    }
                }
                None => Decision::Unknown,
            },
            SourceKind::Script => match &auth.script {
                Some(settings) => script_decision(shared, settings, user, password, peer).await,
                None => Decision::Unknown,
            },
        };
        if !matches!(decision, Decision::Unknown) {
            return decision;
        }
    }
    decoy(shared, password);
    Decision::Unknown
}

async fn script_decision(
    shared: &Shared,
    settings: &crate::auth::script::ScriptAuthSettings,
    user: &str,
    password: &str,
    peer: Option<IpAddr>,
) -> Decision {
    use crate::auth::script::ScriptAuthOutcome;
    let client = match shared.control.client().await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("control connection failed: {e}");
            return Decision::Rejected(unavailable());
        }
    };
    let addr = peer.map(|p| p.to_string());
    match crate::auth::script::authenticate(settings, user, password, addr.as_deref(), &client)
        .await
    {
        Ok(ScriptAuthOutcome::Unknown) => Decision::Unknown,
        Ok(ScriptAuthOutcome::Rejected) => Decision::Rejected(password_failure(user)),
        Ok(ScriptAuthOutcome::Accepted(found)) => {
            if found.login != user {
                tracing::warn!(user, "auth.script accepted another login {:?}", found.login);
                return Decision::Rejected(password_failure(user));
            }
            let mut identity = Identity::new(&found.login, "script");
            identity.user_id = found.user_id.map(|v| (v, "pg_catalog.text".to_string()));
            identity.roles = found.roles;
            identity.groups = found.groups;
            Decision::Accepted(identity)
        }
        Err(e) => {
            tracing::warn!("auth.script failed for {user:?}: {e}");
            Decision::Rejected(PgError::fatal(
                code::INVALID_AUTHORIZATION,
                "the password could not be checked: the authentication script failed",
            ))
        }
    }
}

/// The hashing a known user's check would have cost, for a name no source
/// knows (or one that cannot log in with a password): a hash check like a
/// table user's when the table holds hashes (most users are there), else a
/// SCRAM derivation like a policy-file user's.
fn decoy(shared: &Shared, password: &str) {
    let auth = &shared.config.auth;
    if auth
        .table
        .as_ref()
        .is_some_and(|t| t.verifiers == TableVerifiers::Hash)
    {
        password::decoy_hash_check(password);
    } else {
        let mock = ScramVerifier::mock(&auth.secret, "", auth.scram_iterations);
        let _ = password::scram_matches(&mock, password);
    }
}

/// Reads one PasswordMessage-type ('p') message; `None` when the client
/// closed the connection.
async fn read_password_message(stream: &mut Stream) -> std::io::Result<Option<BytesMut>> {
    let header = match read_header(stream, MAX_AUTH_LEN).await {
        Ok(Some(h)) => h,
        Ok(None) | Err(WireError::Eof) => return Ok(None),
        Err(WireError::Io(e)) => return Err(e),
        Err(_) => return Ok(Some(BytesMut::new())),
    };
    if header.tag != b'p' {
        // Anything else here is a protocol violation; an empty body makes
        // the caller refuse it as malformed.
        return Ok(Some(BytesMut::new()));
    }
    match read_body(stream, header.body_len).await {
        Ok(b) => Ok(Some(b)),
        Err(WireError::Io(e)) => Err(e),
        Err(_) => Ok(None),
    }
}

fn malformed() -> PgError {
    PgError::fatal(code::PROTOCOL_VIOLATION, "malformed SASL message")
}

fn password_failure(user: &str) -> PgError {
    PgError::fatal(
        code::INVALID_PASSWORD,
        format!("password authentication failed for user \"{user}\""),
    )
}

fn scram_error(e: ScramError, user: &str) -> PgError {
    match e.sqlstate() {
        "28P01" => password_failure(user),
        state => {
            let c = if state == code::PROTOCOL_VIOLATION {
                code::PROTOCOL_VIOLATION
            } else {
                code::INVALID_AUTHORIZATION
            };
            PgError::fatal(c, e.to_string())
        }
    }
}

/// How long until a session of this identity must end, if ever.
pub fn remaining(identity: &Identity) -> Option<Duration> {
    identity.expires.map(|at| {
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO)
    })
}

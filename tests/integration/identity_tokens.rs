//! Tokens sent as the password, end to end through tokio-postgres and psql:
//! JWTs (HS256 with a secret, RS256/PS256 with a PEM key, ES256 and EdDSA
//! from a JWKS file and a JWKS URL, keys rotated in both; every algorithm
//! of the contract, and unlisted ones refused as forgeries are; a JWKS URL
//! over https with an untrusted certificate), every way a token
//! is refused, sessions that end when their token expires, and OAuth2
//! introspection against a real local HTTP endpoint. The row filter of
//! `identity_core` shows which roles, groups, user id and claims a session
//! got.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::identity_core::{identity_db, options, refusal, sees, visible};
use crate::policy_reads::psql;

const SECRET: &str = "test-only-secret-0123456789abcdef";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/identity")
        .join(name)
}

/// Claims for `sub` that pass every configured check for a minute.
fn claims(sub: &str) -> Value {
    json!({
        "sub": sub, "iss": "https://issuer.test", "aud": "pgward",
        "exp": now() + 60, "iat": now(),
        "realm_access": {"roles": ["reader"]}, "tenant": "acme",
    })
}

fn with(mut claims: Value, key: &str, value: Value) -> Value {
    claims[key] = value;
    claims
}

fn hs256(claims: &Value) -> anyhow::Result<String> {
    Ok(encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )?)
}

fn signed(
    alg: Algorithm,
    kid: Option<&str>,
    key: &EncodingKey,
    claims: &Value,
) -> anyhow::Result<String> {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_string);
    Ok(encode(&header, claims, key)?)
}

fn jwt_toml(keys: &str, extra: &str) -> String {
    format!(
        "[auth]\norder = [\"jwt\"]\nallow_cleartext_on_loopback = true\n\
         [auth.jwt]\n{keys}\nissuer = \"https://issuer.test\"\naudience = \"pgward\"\n\
         leeway_s = 0\nroles_claim = \"realm_access.roles\"\ngroups_claim = \"groups\"\n\
         user_id_claim = \"uid\"\n{extra}\n\
         [auth.lockout]\nmax_failures = 0\n"
    )
}

/// An EC P-256, EC P-384 or Ed25519 key made for the test: its signing key
/// and its public JWK.
fn generated_key(alg: Algorithm, kid: &str) -> anyhow::Result<(EncodingKey, Value)> {
    match alg {
        Algorithm::ES256 | Algorithm::ES384 => {
            let (curve, crv, size) = if alg == Algorithm::ES256 {
                (&rcgen::PKCS_ECDSA_P256_SHA256, "P-256", 32)
            } else {
                (&rcgen::PKCS_ECDSA_P384_SHA384, "P-384", 48)
            };
            let pair = rcgen::KeyPair::generate_for(curve)?;
            let raw = pair.public_key_raw();
            anyhow::ensure!(
                raw.len() == 1 + 2 * size && raw[0] == 4,
                "not an uncompressed point"
            );
            Ok((
                EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes())?,
                json!({"kty": "EC", "crv": crv, "kid": kid, "use": "sig", "alg": format!("{alg:?}"),
                       "x": URL_SAFE_NO_PAD.encode(&raw[1..1 + size]),
                       "y": URL_SAFE_NO_PAD.encode(&raw[1 + size..])}),
            ))
        }
        Algorithm::EdDSA => {
            let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519)?;
            Ok((
                EncodingKey::from_ed_pem(pair.serialize_pem().as_bytes())?,
                json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "use": "sig", "alg": "EdDSA",
                       "x": URL_SAFE_NO_PAD.encode(pair.public_key_raw())}),
            ))
        }
        other => anyhow::bail!("no generated key for {other:?}"),
    }
}

fn jwks(keys: &[&Value]) -> String {
    json!({"keys": keys}).to_string()
}

/// The SQLSTATE and message of a refused login.
async fn refused(
    pgward: &crate::harness::Pgward,
    user: &str,
    token: &str,
) -> anyhow::Result<(String, String)> {
    let (code, message, _) = refusal(pgward, user, token).await?;
    Ok((code, message))
}

fn pair(code: &str, message: &str) -> (String, String) {
    (code.to_string(), message.to_string())
}

#[tokio::test]
async fn hs256_tokens_carry_roles_groups_user_id_and_claims() -> anyhow::Result<()> {
    let db = identity_db("identity_jwt_hs256").await?;
    let pgward = db
        .start_pgward(options(&jwt_toml(
            &format!("algorithms = [\"HS256\"]\nsecret = \"{SECRET}\""),
            "",
        )))
        .await?;
    // reader (row 1) and the tenant claim (row 5).
    assert_eq!(sees(&pgward, "ann", &hs256(&claims("ann"))?).await?, [1, 5]);
    // editor (closed over IN ROLE: 1, 2), group g1 (4), tenant (5), uid 7 (6).
    let rich = with(
        with(
            with(claims("ann"), "realm_access", json!({"roles": ["editor"]})),
            "groups",
            json!(["g1"]),
        ),
        "uid",
        json!(7),
    );
    assert_eq!(sees(&pgward, "ann", &hs256(&rich)?).await?, [1, 2, 4, 5, 6]);
    // A policy-file user signed in by a token holds its policy-file roles
    // (alice is IN ROLE reader) on top of the token's (none here).
    let alice = with(claims("alice"), "realm_access", json!({}));
    assert_eq!(sees(&pgward, "alice", &hs256(&alice)?).await?, [1, 5]);
    // A claim that is an array is a list: grp = ANY(@{claims.teams}) (row 4).
    let teams = with(claims("ann"), "teams", json!(["g1", "g9"]));
    assert_eq!(sees(&pgward, "ann", &hs256(&teams)?).await?, [1, 4, 5]);
    // A nested claim by its dotted path: grp = @{claims.org.unit} (row 4).
    let org = with(claims("ann"), "org", json!({"unit": "g1"}));
    assert_eq!(sees(&pgward, "ann", &hs256(&org)?).await?, [1, 4, 5]);
    // Without any role the token's user holds PUBLIC only: no grant on docs.
    let no_roles = with(claims("ann"), "realm_access", json!({}));
    let c = pgward.connect_as("ann", &hs256(&no_roles)?).await?;
    let e = visible(&c).await.unwrap_err();
    assert_eq!(
        e.downcast_ref::<tokio_postgres::Error>()
            .and_then(|e| e.code())
            .map(|c| c.code()),
        Some("42501")
    );
    // psql, with the token as the password.
    let (out, err) = psql(
        &pgward.conn_string("ann", &hs256(&rich)?, db.name()),
        "SELECT string_agg(id::text, ',' ORDER BY id) FROM docs",
    )
    .await?;
    assert_eq!(out.trim(), "1,2,4,5,6", "{err}");

    // Every way a token is refused.
    let cases = [
        (
            with(claims("ann"), "exp", json!(now() - 10)),
            pair("28000", "token expired"),
        ),
        (
            with(claims("ann"), "nbf", json!(now() + 600)),
            pair("28000", "token not yet valid"),
        ),
        (
            with(claims("ann"), "iss", json!("https://evil.test")),
            pair("28000", "invalid token"),
        ),
        (
            with(claims("ann"), "aud", json!("someone-else")),
            pair("28000", "invalid token"),
        ),
    ];
    for (claims, expected) in cases {
        assert_eq!(
            refused(&pgward, "ann", &hs256(&claims)?).await?,
            expected,
            "{claims}"
        );
    }
    let forged = encode(
        &Header::new(Algorithm::HS256),
        &claims("ann"),
        &EncodingKey::from_secret(b"another-secret-0123456789abcdef!"),
    )?;
    assert_eq!(
        refused(&pgward, "ann", &forged).await?,
        pair("28000", "invalid token")
    );
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims("ann").to_string())
    );
    assert_eq!(
        refused(&pgward, "ann", &unsigned).await?,
        pair("28000", "invalid token")
    );
    // A valid token for someone else.
    assert_eq!(
        refused(&pgward, "bob", &hs256(&claims("ann"))?).await?,
        pair("28000", "the token is not for user \"bob\"")
    );
    // A password that is no token: no source knows it.
    assert_eq!(
        refused(&pgward, "alice", "alice").await?,
        pair("28P01", "password authentication failed for user \"alice\"")
    );

    // With allow_user_mismatch the session runs as the token's user.
    let lax = db
        .start_pgward(options(&jwt_toml(
            &format!("algorithms = [\"HS256\"]\nsecret = \"{SECRET}\""),
            "allow_user_mismatch = true",
        )))
        .await?;
    let c = lax
        .connect_as(
            "whoever",
            &hs256(&with(
                claims("tina"),
                "realm_access",
                json!({"roles": ["editor"]}),
            ))?,
        )
        .await?;
    // owner = @{login_id} shows row 3: the login is tina.
    assert_eq!(visible(&c).await?, [1, 2, 3, 5]);
    Ok(())
}

#[tokio::test]
async fn pem_keys_and_a_jwks_file_with_a_rotated_key() -> anyhow::Result<()> {
    let db = identity_db("identity_jwt_keys").await?;
    let rsa = EncodingKey::from_rsa_pem(&std::fs::read(fixture("rsa_private.pem"))?)?;
    let pem = db
        .start_pgward(options(&jwt_toml(
            &format!(
                "algorithms = [\"RS256\", \"PS256\"]\npublic_key_file = \"{}\"",
                fixture("rsa_public.pem").display()
            ),
            "",
        )))
        .await?;
    for alg in [Algorithm::RS256, Algorithm::PS256] {
        assert_eq!(
            sees(&pem, "ann", &signed(alg, None, &rsa, &claims("ann"))?).await?,
            [1, 5],
            "{alg:?}"
        );
    }
    // RS512 is not configured, even with the right key.
    assert_eq!(
        refused(
            &pem,
            "ann",
            &signed(Algorithm::RS512, None, &rsa, &claims("ann"))?
        )
        .await?,
        pair("28000", "invalid token")
    );
    // An HMAC token "signed" with the public key is refused (no confusion).
    let confused = EncodingKey::from_secret(&std::fs::read(fixture("rsa_public.pem"))?);
    assert_eq!(
        refused(
            &pem,
            "ann",
            &signed(Algorithm::HS256, None, &confused, &claims("ann"))?
        )
        .await?,
        pair("28000", "invalid token")
    );

    // The committed RSA JWKS.
    let rsa_jwks = db
        .start_pgward(options(&jwt_toml(
            &format!(
                "algorithms = [\"RS256\"]\njwks_file = \"{}\"",
                fixture("rsa_public.jwks.json").display()
            ),
            "",
        )))
        .await?;
    assert_eq!(
        sees(
            &rsa_jwks,
            "ann",
            &signed(Algorithm::RS256, Some("rsa-1"), &rsa, &claims("ann"))?
        )
        .await?,
        [1, 5]
    );

    // ES256 and EdDSA keys in a JWKS file; then the file is rotated.
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("jwks.json");
    let (es1, es1_jwk) = generated_key(Algorithm::ES256, "es-1")?;
    let (ed1, ed1_jwk) = generated_key(Algorithm::EdDSA, "ed-1")?;
    let (es2, es2_jwk) = generated_key(Algorithm::ES256, "es-2")?;
    std::fs::write(&file, jwks(&[&es1_jwk, &ed1_jwk]))?;
    let pgward = db
        .start_pgward(options(&jwt_toml(
            &format!(
                "algorithms = [\"ES256\", \"EdDSA\"]\njwks_file = \"{}\"",
                file.display()
            ),
            "",
        )))
        .await?;
    assert_eq!(
        sees(
            &pgward,
            "ann",
            &signed(Algorithm::ES256, Some("es-1"), &es1, &claims("ann"))?
        )
        .await?,
        [1, 5]
    );
    assert_eq!(
        sees(
            &pgward,
            "ann",
            &signed(Algorithm::EdDSA, Some("ed-1"), &ed1, &claims("ann"))?
        )
        .await?,
        [1, 5]
    );
    let new_token = signed(Algorithm::ES256, Some("es-2"), &es2, &claims("ann"))?;
    assert_eq!(
        refused(&pgward, "ann", &new_token).await?,
        pair("28000", "invalid token")
    );
    // A token that names a known kid but is signed by another key.
    let impostor = signed(Algorithm::ES256, Some("es-1"), &es2, &claims("ann"))?;
    assert_eq!(
        refused(&pgward, "ann", &impostor).await?,
        pair("28000", "invalid token")
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    std::fs::write(&file, jwks(&[&es2_jwk]))?;
    assert_eq!(sees(&pgward, "ann", &new_token).await?, [1, 5]);
    // The retired key no longer works.
    assert_eq!(
        refused(
            &pgward,
            "ann",
            &signed(Algorithm::ES256, Some("es-1"), &es1, &claims("ann"))?
        )
        .await?,
        pair("28000", "invalid token")
    );
    Ok(())
}

const HMAC: [Algorithm; 3] = [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512];
const RSA: [Algorithm; 6] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];

/// `algorithms = [...]` for the TOML.
fn algorithms(algs: &[Algorithm]) -> String {
    let names: Vec<String> = algs.iter().map(|a| format!("\"{a:?}\"")).collect();
    format!("algorithms = [{}]", names.join(", "))
}

/// `token` with its payload swapped for another valid one under the same
/// signature: a bad signature. Were it accepted, the tenant row would not
/// show.
fn forged(token: &str) -> anyhow::Result<String> {
    let parts: Vec<&str> = token.split('.').collect();
    anyhow::ensure!(parts.len() == 3, "not a JWS: {token}");
    let other = with(claims("ann"), "tenant", json!("someone-else"));
    Ok(format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(other.to_string()),
        parts[2]
    ))
}

/// Everything the error of a refused login says: severity, SQLSTATE,
/// message, detail, hint.
async fn whole_refusal(
    pgward: &crate::harness::Pgward,
    token: &str,
) -> anyhow::Result<(String, String, String, Option<String>, Option<String>)> {
    match pgward.connect_as("ann", token).await {
        Ok(_) => anyhow::bail!("ann logged in with {token}"),
        Err(e) => {
            let db = e
                .chain()
                .find_map(|c| c.downcast_ref::<tokio_postgres::Error>())
                .and_then(|e| e.as_db_error())
                .with_context(|| format!("no server error: {e:#}"))?;
            Ok((
                db.severity().to_string(),
                db.code().code().to_string(),
                db.message().to_string(),
                db.detail().map(str::to_string),
                db.hint().map(str::to_string),
            ))
        }
    }
}

/// Every algorithm of the contract signs a login that shows the row
/// filter's rows (reader: 1, tenant acme: 5); per key family, a token
/// signed with the right key but an algorithm the configuration does not
/// list gets exactly the error of a bad signature.
#[tokio::test]
async fn every_algorithm_logs_in_and_unlisted_ones_are_refused_as_forgeries() -> anyhow::Result<()>
{
    let db = identity_db("identity_jwt_algorithms").await?;
    let start = |keys: String| db.start_pgward(options(&jwt_toml(&keys, "")));
    let invalid = (
        "FATAL".to_string(),
        "28000".to_string(),
        "invalid token".to_string(),
        None,
        None,
    );
    let mut logins = 0;

    // HMAC: one secret.
    let secret = EncodingKey::from_secret(SECRET.as_bytes());
    let secret_toml = |algs: &[Algorithm]| format!("{}\nsecret = \"{SECRET}\"", algorithms(algs));
    let all = start(secret_toml(&HMAC)).await?;
    for alg in HMAC {
        let token = signed(alg, None, &secret, &claims("ann"))?;
        assert_eq!(sees(&all, "ann", &token).await?, [1, 5], "{alg:?}");
        assert_eq!(
            whole_refusal(&all, &forged(&token)?).await?,
            invalid,
            "{alg:?}"
        );
        logins += 1;
    }
    let some = start(secret_toml(&[Algorithm::HS256, Algorithm::HS512])).await?;
    let bad_signature = whole_refusal(
        &some,
        &forged(&signed(Algorithm::HS256, None, &secret, &claims("ann"))?)?,
    )
    .await?;
    assert_eq!(bad_signature, invalid);
    let unlisted = signed(Algorithm::HS384, None, &secret, &claims("ann"))?;
    assert_eq!(whole_refusal(&some, &unlisted).await?, bad_signature);

    // RSA: the committed key, as a PEM public key.
    let rsa = EncodingKey::from_rsa_pem(&std::fs::read(fixture("rsa_private.pem"))?)?;
    let pem_toml = |algs: &[Algorithm]| {
        format!(
            "{}\npublic_key_file = \"{}\"",
            algorithms(algs),
            fixture("rsa_public.pem").display()
        )
    };
    let all = start(pem_toml(&RSA)).await?;
    for alg in RSA {
        let token = signed(alg, None, &rsa, &claims("ann"))?;
        assert_eq!(sees(&all, "ann", &token).await?, [1, 5], "{alg:?}");
        assert_eq!(
            whole_refusal(&all, &forged(&token)?).await?,
            invalid,
            "{alg:?}"
        );
        logins += 1;
    }
    let some = start(pem_toml(&[Algorithm::RS384, Algorithm::PS512])).await?;
    let bad_signature = whole_refusal(
        &some,
        &forged(&signed(Algorithm::RS384, None, &rsa, &claims("ann"))?)?,
    )
    .await?;
    assert_eq!(bad_signature, invalid);
    for alg in [
        Algorithm::RS256,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
    ] {
        let unlisted = signed(alg, None, &rsa, &claims("ann"))?;
        assert_eq!(
            whole_refusal(&some, &unlisted).await?,
            bad_signature,
            "{alg:?}"
        );
    }

    // EC P-256, EC P-384 and Ed25519 keys in one JWKS file; the P-384 key
    // names no `alg`, so its type and curve alone decide.
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("jwks.json");
    let (p256, p256_jwk) = generated_key(Algorithm::ES256, "p256")?;
    let (p384, mut p384_jwk) = generated_key(Algorithm::ES384, "p384")?;
    p384_jwk
        .as_object_mut()
        .context("a JWK is an object")?
        .remove("alg");
    let (ed, ed_jwk) = generated_key(Algorithm::EdDSA, "ed")?;
    std::fs::write(&file, jwks(&[&p256_jwk, &p384_jwk, &ed_jwk]))?;
    let jwks_toml =
        |algs: &[Algorithm]| format!("{}\njwks_file = \"{}\"", algorithms(algs), file.display());
    let others = [
        (Algorithm::ES256, "p256", &p256),
        (Algorithm::ES384, "p384", &p384),
        (Algorithm::EdDSA, "ed", &ed),
    ];
    let all = start(jwks_toml(&[
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
    ]))
    .await?;
    for (alg, kid, key) in others {
        for kid in [Some(kid), None] {
            let token = signed(alg, kid, key, &claims("ann"))?;
            assert_eq!(sees(&all, "ann", &token).await?, [1, 5], "{alg:?} {kid:?}");
            assert_eq!(
                whole_refusal(&all, &forged(&token)?).await?,
                invalid,
                "{alg:?}"
            );
        }
        logins += 1;
    }
    let some = start(jwks_toml(&[Algorithm::ES256])).await?;
    let bad_signature = whole_refusal(
        &some,
        &forged(&signed(
            Algorithm::ES256,
            Some("p256"),
            &p256,
            &claims("ann"),
        )?)?,
    )
    .await?;
    assert_eq!(bad_signature, invalid);
    for (alg, kid, key) in &others[1..] {
        let unlisted = signed(*alg, Some(kid), key, &claims("ann"))?;
        assert_eq!(
            whole_refusal(&some, &unlisted).await?,
            bad_signature,
            "{alg:?}"
        );
    }
    assert_eq!(
        logins, 12,
        "HS256/384/512, RS256/384/512, PS256/384/512, ES256/384, EdDSA"
    );
    Ok(())
}

/// A real HTTP/1.1 server on loopback: each request is answered by
/// `handler(method, path, headers, body) -> (status, JSON body)`.
pub(crate) struct HttpServer {
    pub port: u16,
    pub requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

type Handler = dyn Fn(&str, &str, &HashMap<String, String>, &[u8]) -> (u16, String) + Send + Sync;

impl HttpServer {
    pub(crate) async fn start(handler: Arc<Handler>) -> anyhow::Result<HttpServer> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let requests = Arc::new(AtomicUsize::new(0));
        let counted = requests.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let handler = handler.clone();
                let counted = counted.clone();
                tokio::spawn(async move {
                    let _ = serve_one(&mut socket, &*handler, &counted).await;
                });
            }
        });
        Ok(HttpServer {
            port,
            requests,
            task,
        })
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_one<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    socket: &mut S,
    handler: &Handler,
    counted: &AtomicUsize,
) -> anyhow::Result<()> {
    let mut buf = Vec::new();
    let head_end = loop {
        let mut chunk = [0u8; 4096];
        let n = socket.read(&mut chunk).await?;
        anyhow::ensure!(n > 0, "closed before the request ended");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        anyhow::ensure!(buf.len() < 65_536, "request head too large");
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().context("no request line")?.split(' ');
    let method = request_line.next().unwrap_or("").to_string();
    let path = request_line.next().unwrap_or("").to_string();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let mut chunk = [0u8; 4096];
        let n = socket.read(&mut chunk).await?;
        anyhow::ensure!(n > 0, "closed before the body ended");
        body.extend_from_slice(&chunk[..n]);
    }
    counted.fetch_add(1, Ordering::SeqCst);
    let (status, text) = handler(&method, &path, &headers, &body);
    let response = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{text}",
        text.len()
    );
    socket.write_all(response.as_bytes()).await?;
    socket.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn a_jwks_url_is_fetched_at_start_and_again_for_an_unknown_kid() -> anyhow::Result<()> {
    let db = identity_db("identity_jwt_url").await?;
    let (k1, k1_jwk) = generated_key(Algorithm::ES256, "k1")?;
    let (k2, k2_jwk) = generated_key(Algorithm::ES256, "k2")?;
    let served = Arc::new(Mutex::new(jwks(&[&k1_jwk])));
    let document = served.clone();
    let server = HttpServer::start(Arc::new(move |method, path, _, _| {
        if method == "GET" && path == "/jwks.json" {
            (200, document.lock().map(|d| d.clone()).unwrap_or_default())
        } else {
            (404, "{}".into())
        }
    }))
    .await?;
    let pgward = db
        .start_pgward(options(&jwt_toml(
            &format!(
                "algorithms = [\"ES256\"]\njwks_url = \"http://127.0.0.1:{}/jwks.json\"",
                server.port
            ),
            "jwks_refresh_interval_s = 2",
        )))
        .await?;
    assert_eq!(
        server.requests.load(Ordering::SeqCst),
        1,
        "fetched at start"
    );
    assert_eq!(
        sees(
            &pgward,
            "ann",
            &signed(Algorithm::ES256, Some("k1"), &k1, &claims("ann"))?
        )
        .await?,
        [1, 5]
    );
    assert_eq!(
        server.requests.load(Ordering::SeqCst),
        1,
        "known kid: no fetch"
    );

    // The provider rotates to k2. Within the refresh interval an unknown
    // kid fetches nothing; after it, the first one fetches once.
    *served.lock().map_err(|_| anyhow::anyhow!("poisoned"))? = jwks(&[&k2_jwk]);
    let t2 = signed(Algorithm::ES256, Some("k2"), &k2, &claims("ann"))?;
    assert_eq!(
        refused(&pgward, "ann", &t2).await?,
        pair("28000", "invalid token")
    );
    assert_eq!(server.requests.load(Ordering::SeqCst), 1, "rate-limited");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(sees(&pgward, "ann", &t2).await?, [1, 5]);
    assert_eq!(server.requests.load(Ordering::SeqCst), 2);
    // Unknown kids do not make pgward hammer the provider.
    let t3 = signed(Algorithm::ES256, Some("k3"), &k1, &claims("ann"))?;
    for _ in 0..3 {
        assert_eq!(
            refused(&pgward, "ann", &t3).await?,
            pair("28000", "invalid token")
        );
    }
    assert_eq!(server.requests.load(Ordering::SeqCst), 2);
    Ok(())
}

/// A JWKS served over https by a local rustls server whose certificate
/// comes from a test CA. `[auth.jwt]` has no key that trusts another CA
/// (the HTTP client trusts the public web roots only), so pgward does not
/// start: the test CA is refused at the handshake, and nothing is fetched.
/// A client that trusts the CA gets the document from the same server.
#[tokio::test]
async fn a_jwks_url_over_https_needs_a_trusted_certificate() -> anyhow::Result<()> {
    let db = identity_db("identity_jwt_https").await?;
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])?;
    let (signing, jwk) = generated_key(Algorithm::ES256, "k1")?;
    let document = jwks(&[&jwk]);
    let tls = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(
        vec![rustls::pki_types::CertificateDer::from(cert.der().to_vec())],
        rustls::pki_types::PrivateKeyDer::Pkcs8(signing_key.serialize_der().into()),
    )?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let requests = Arc::new(AtomicUsize::new(0));
    let failed_handshakes = Arc::new(AtomicUsize::new(0));
    let (counted, failed, served) = (
        requests.clone(),
        failed_handshakes.clone(),
        document.clone(),
    );
    let server = tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let (acceptor, counted, failed, served) = (
                acceptor.clone(),
                counted.clone(),
                failed.clone(),
                served.clone(),
            );
            tokio::spawn(async move {
                match acceptor.accept(socket).await {
                    Ok(mut tls) => {
                        let handler =
                            move |_: &str, path: &str, _: &HashMap<String, String>, _: &[u8]| {
                                if path == "/jwks.json" {
                                    (200, served.clone())
                                } else {
                                    (404, "{}".to_string())
                                }
                            };
                        let _ = serve_one(&mut tls, &handler, &counted).await;
                    }
                    Err(_) => {
                        failed.fetch_add(1, Ordering::SeqCst);
                    }
                }
            });
        }
    });
    let url = format!("https://127.0.0.1:{port}/jwks.json");

    // The server serves the JWKS over https to a client that trusts its CA.
    let trusting = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.pem().as_bytes())?)
        .no_proxy()
        .build()?;
    assert_eq!(trusting.get(&url).send().await?.text().await?, document);
    assert_eq!(requests.load(Ordering::SeqCst), 1);
    assert_eq!(failed_handshakes.load(Ordering::SeqCst), 0);

    let started = db
        .start_pgward(options(&jwt_toml(
            &format!("algorithms = [\"ES256\"]\njwks_url = \"{url}\""),
            "",
        )))
        .await;
    let error = match started {
        Ok(_) => anyhow::bail!("pgward started with a JWKS from an untrusted server"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        error.contains(&format!("cannot fetch the JWKS at {url}")),
        "{error}"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while failed_handshakes.load(Ordering::SeqCst) == 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        failed_handshakes.load(Ordering::SeqCst),
        1,
        "pgward's handshake"
    );
    assert_eq!(requests.load(Ordering::SeqCst), 1, "pgward fetched nothing");

    // With the certificate as auth.http_ca_file, pgward fetches the JWKS
    // and a token signed with its key logs in.
    let ca = std::env::temp_dir().join(format!("pgward-jwks-ca-{port}.pem"));
    std::fs::write(&ca, cert.pem())?;
    let toml = jwt_toml(
        &format!("algorithms = [\"ES256\"]\njwks_url = \"{url}\""),
        "",
    )
    .replacen(
        "[auth]\n",
        &format!("[auth]\nhttp_ca_file = \"{}\"\n", ca.display()),
        1,
    );
    let pgward = db.start_pgward(options(&toml)).await?;
    assert_eq!(
        requests.load(Ordering::SeqCst),
        2,
        "pgward fetched the JWKS"
    );
    let token = signed(Algorithm::ES256, Some("k1"), &signing, &claims("ann"))?;
    assert_eq!(sees(&pgward, "ann", &token).await?, [1, 5]);
    let _ = std::fs::remove_file(&ca);
    server.abort();
    Ok(())
}

#[tokio::test]
async fn a_session_ends_when_its_token_expires() -> anyhow::Result<()> {
    let db = identity_db("identity_jwt_expiry").await?;
    let pgward = db
        .start_pgward(options(&jwt_toml(
            &format!("algorithms = [\"HS256\"]\nsecret = \"{SECRET}\""),
            "",
        )))
        .await?;
    let exp = now() + 3;
    let token = hs256(&with(claims("ann"), "exp", json!(exp)))?;

    // A session that sends a statement after the expiry gets the FATAL
    // error, never an answer.
    let mut busy = crate::protocol::Raw::connect(pgward.port()).await?;
    busy.startup("ann", db.name()).await?;
    let asked = busy.recv().await?.context("closed")?;
    assert_eq!(asked.auth_code(), Some(3), "cleartext password");
    let mut password = token.as_bytes().to_vec();
    password.push(0);
    busy.send(&crate::protocol::message(b'p', &password))
        .await?;
    busy.until_ready().await?;
    let rows = busy.simple_query("SELECT id FROM docs").await?;
    assert_eq!(rows.iter().filter(|m| m.tag == b'D').count(), 2);

    // While idle: the server ends the session by itself.
    let (idle, connection) = tokio_postgres::connect(
        &pgward.conn_string("ann", &token, db.name()),
        tokio_postgres::NoTls,
    )
    .await?;
    let ended = tokio::spawn(connection);
    assert_eq!(visible(&idle).await?, [1, 5]);

    let wait = Duration::from_secs(exp + 1).saturating_sub(Duration::from_secs(now()));
    tokio::time::sleep(wait).await;
    busy.send(&crate::protocol::query("SELECT id FROM docs"))
        .await?;
    let after = busy.until_closed().await?;
    assert_eq!(after.len(), 1, "{after:?}");
    let error = after[0].error().context("an ErrorResponse")?;
    assert_eq!(
        (error.severity(), error.code(), error.message()),
        ("FATAL", "28000", "token expired")
    );

    let result = tokio::time::timeout(Duration::from_secs(5), ended).await??;
    let e = result.expect_err("the idle session ended with an error");
    let db_error = e.as_db_error().with_context(|| format!("{e:?}"))?;
    assert_eq!(
        (db_error.code().code(), db_error.message()),
        ("28000", "token expired")
    );
    assert!(now() >= exp, "ended before the token expired");
    Ok(())
}

#[tokio::test]
async fn introspection_of_opaque_tokens() -> anyhow::Result<()> {
    let db = identity_db("identity_introspection").await?;
    let exp = now() + 300;
    let expected_auth = format!("Basic {}", STANDARD.encode("pgward:client-secret"));
    let server = HttpServer::start(Arc::new(move |method, path, headers, body| {
        if method != "POST" || path != "/introspect" {
            return (404, "{}".into());
        }
        if headers.get("authorization") != Some(&expected_auth) {
            return (401, r#"{"error":"invalid_client"}"#.into());
        }
        let form = String::from_utf8_lossy(body);
        let token = form
            .split('&')
            .find_map(|kv| kv.strip_prefix("token="))
            .unwrap_or("");
        let answer = match token {
            "opaque-ann" => json!({"active": true, "username": "ann", "scope": "editor",
                                   "exp": exp, "tenant": "acme", "uid": 7}),
            "opaque-expired" => json!({"active": true, "username": "ann", "scope": "editor",
                                       "exp": now() - 5}),
            _ => json!({"active": false}),
        };
        (200, answer.to_string())
    }))
    .await?;
    let pgward = db
        .start_pgward(options(&format!(
            "[auth]\norder = [\"introspection\"]\nallow_cleartext_on_loopback = true\n\
             [auth.introspection]\nurl = \"http://127.0.0.1:{}/introspect\"\n\
             client_id = \"pgward\"\nclient_secret = \"client-secret\"\n\
             roles_claim = \"scope\"\nuser_id_claim = \"uid\"\n\
             [auth.lockout]\nmax_failures = 0\n",
            server.port
        )))
        .await?;
    // editor (1, 2), tenant (5), uid 7 (6).
    assert_eq!(sees(&pgward, "ann", "opaque-ann").await?, [1, 2, 5, 6]);
    assert_eq!(server.requests.load(Ordering::SeqCst), 1);
    // The active answer is cached: no second request.
    assert_eq!(sees(&pgward, "ann", "opaque-ann").await?, [1, 2, 5, 6]);
    assert_eq!(server.requests.load(Ordering::SeqCst), 1);
    let failed = pair("28P01", "password authentication failed for user \"ann\"");
    assert_eq!(refused(&pgward, "ann", "opaque-unknown").await?, failed);
    assert_eq!(refused(&pgward, "ann", "opaque-expired").await?, failed);
    assert_eq!(
        refused(&pgward, "bob", "opaque-ann").await?,
        pair("28000", "the token is not for user \"bob\"")
    );
    let (out, err) = psql(
        &pgward.conn_string("ann", "opaque-ann", db.name()),
        "SELECT count(*) FROM docs",
    )
    .await?;
    assert_eq!(out.trim(), "4", "{err}");
    Ok(())
}

#[tokio::test]
async fn tokens_need_tls_unless_loopback_is_allowed() -> anyhow::Result<()> {
    let db = identity_db("identity_jwt_tls").await?;
    let dir = tempfile::tempdir()?;
    let cert = crate::harness::self_signed_cert(dir.path())?;
    let mut opts = options(&format!(
        "[auth]\norder = [\"jwt\"]\n\
         [auth.jwt]\nalgorithms = [\"HS256\"]\nsecret = \"{SECRET}\"\nroles_claim = \"realm_access.roles\"\n\
         [auth.lockout]\nmax_failures = 0\n"
    ));
    opts.tls = "prefer".into();
    opts.cert = Some(cert);
    let pgward = db.start_pgward(opts).await?;
    let token = hs256(&claims("ann"))?;
    let c = pgward.connect_tls("ann", &token, db.name()).await?;
    assert_eq!(visible(&c).await?, [1, 5]);
    // Without TLS the password is never asked for, known user or not.
    for user in ["ann", "nobody"] {
        let (code, message, _) = refusal(&pgward, user, &token).await?;
        assert_eq!(
            (code.as_str(), message.as_str()),
            ("28000", "pgward accepts passwords only over TLS")
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_locked_out_name_is_not_checked_with_the_identity_provider() -> anyhow::Result<()> {
    let db = identity_db("identity_lockout_idp").await?;
    let server = HttpServer::start(Arc::new(move |_, _, _, body| {
        let active = String::from_utf8_lossy(body).contains("token=opaque-ann");
        let answer = if active {
            json!({"active": true, "username": "ann", "scope": "reader", "exp": now() + 60})
        } else {
            json!({"active": false})
        };
        (200, answer.to_string())
    }))
    .await?;
    let pgward = db
        .start_pgward(options(&format!(
            "[auth]\norder = [\"introspection\"]\nallow_cleartext_on_loopback = true\n\
             [auth.introspection]\nurl = \"http://127.0.0.1:{}/\"\n\
             client_id = \"pgward\"\nclient_secret = \"s\"\nroles_claim = \"scope\"\n\
             [auth.lockout]\nmax_failures = 2\ndelay_ms = 0\nduration_s = 60\n",
            server.port
        )))
        .await?;
    for guess in ["guess-1", "guess-2"] {
        refusal(&pgward, "ann", guess).await?;
    }
    assert_eq!(server.requests.load(Ordering::SeqCst), 2);
    // Locked out: even the valid token is refused, and never sent.
    let (code, _, hint) = refusal(&pgward, "ann", "opaque-ann").await?;
    assert_eq!(code, "28P01");
    assert!(hint.is_some_and(|h| h.contains("Too many failed logins")));
    assert_eq!(server.requests.load(Ordering::SeqCst), 2);
    Ok(())
}

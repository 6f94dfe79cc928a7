//! Server side of SCRAM-SHA-256 and SCRAM-SHA-256-PLUS (RFC 5802, RFC 7677), following what
//! PostgreSQL's `src/backend/libpq/auth-scram.c` accepts and rejects, so that every client that
//! logs in to PostgreSQL logs in to pgward the same way.
//!
//! This module owns: the verifier format PostgreSQL stores in `pg_authid.rolpassword`, the
//! mock verifier that stands in for unknown users, the tls-server-end-point channel-binding data
//! (RFC 5929) and the two-step exchange itself. It is pure logic: no I/O, no logging, no
//! knowledge of where verifiers come from.
//!
//! It must never: tell an unknown user apart from a wrong password (same steps, same error, the
//! same work done), accept a proof it did not check in constant time, echo client bytes into
//! error messages, or panic on any input.
//!
//! One exchange:
//! ```text
//! client-first  n,,n=,r=<client nonce>                  -> ScramServer::client_first
//! server-first  r=<client nonce><server nonce>,s=<salt>,i=<iterations>
//! client-final  c=<b64 gs2 header + cb data>,r=<nonce>,p=<proof> -> ScramServer::client_final
//! server-final  v=<server signature>
//! ```

use std::borrow::Cow;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use rand::Rng as _;
use sha2::{Digest, Sha224, Sha256, Sha384, Sha512};
use x509_parser::signature_algorithm::RsaSsaPssParams;
use x509_parser::x509::AlgorithmIdentifier;

pub const SCRAM_SHA_256: &str = "SCRAM-SHA-256";
pub const SCRAM_SHA_256_PLUS: &str = "SCRAM-SHA-256-PLUS";

/// Length of StoredKey, ServerKey and ClientProof for SHA-256.
const KEY_LEN: usize = 32;
/// PostgreSQL's SCRAM_DEFAULT_SALT_LEN; mock salts use it so they look like real ones.
const SALT_LEN: usize = 16;
/// PostgreSQL's SCRAM_RAW_NONCE_LEN: 18 random bytes, 24 base64 characters.
const RAW_NONCE_LEN: usize = 18;
/// The only channel-binding type PostgreSQL (and so every client) implements.
const CB_TLS_SERVER_END_POINT: &[u8] = b"tls-server-end-point";

type HmacSha256 = Hmac<Sha256>;

/// What went wrong in an exchange. Each kind maps to the SQLSTATE PostgreSQL would send.
#[derive(Debug, thiserror::Error)]
pub enum ScramError {
    /// Malformed message, wrong mechanism, channel-binding misuse, step out of order.
    #[error("{0}")]
    Protocol(String),
    /// The client asked for an optional SCRAM feature that PostgreSQL does not implement either
    /// (authorization identity, mandatory extensions).
    #[error("{0}")]
    Unsupported(String),
    /// The channel-binding data in client-final does not match this connection's certificate:
    /// someone may be relaying the connection.
    #[error("SCRAM channel binding check failed")]
    ChannelBindingMismatch,
    /// Wrong password or unknown user. Deliberately says nothing more.
    #[error("password authentication failed")]
    Failed,
    /// A stored verifier that cannot be parsed.
    #[error("invalid SCRAM verifier: {0}")]
    BadVerifier(String),
}

impl ScramError {
    /// SQLSTATE to send, as PostgreSQL does for the same failure.
    ///
    /// `BadVerifier` maps to 28P01: a user whose stored verifier is broken must look like any
    /// other failed login (PostgreSQL runs a doomed mock exchange for them and logs the cause).
    pub fn sqlstate(&self) -> &'static str {
        match self {
            ScramError::Protocol(_) => "08P01",
            ScramError::Unsupported(_) => "0A000",
            ScramError::ChannelBindingMismatch => "28000",
            ScramError::Failed | ScramError::BadVerifier(_) => "28P01",
        }
    }

    /// A stable label for logs and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            ScramError::Protocol(_) => "scram_protocol",
            ScramError::Unsupported(_) => "scram_unsupported",
            ScramError::ChannelBindingMismatch => "scram_channel_binding",
            ScramError::Failed => "auth_failed",
            ScramError::BadVerifier(_) => "scram_bad_verifier",
        }
    }
}

fn malformed(detail: &str) -> ScramError {
    ScramError::Protocol(format!("malformed SCRAM message: {detail}"))
}

fn bad_verifier(detail: &str) -> ScramError {
    ScramError::BadVerifier(detail.to_owned())
}

/// A SCRAM-SHA-256 secret as PostgreSQL stores it.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramVerifier {
    pub iterations: u32,
    pub salt: Vec<u8>,
    pub stored_key: [u8; 32],
    pub server_key: [u8; 32],
}

impl fmt::Debug for ScramVerifier {
    // The keys let whoever holds them pose as the server; keep them out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramVerifier")
            .field("iterations", &self.iterations)
            .field("salt", &STANDARD.encode(&self.salt))
            .finish_non_exhaustive()
    }
}

impl ScramVerifier {
    /// Parses PostgreSQL's "SCRAM-SHA-256$<iter>:<b64 salt>$<b64 StoredKey>:<b64 ServerKey>".
    pub fn parse(s: &str) -> Result<Self, ScramError> {
        let rest = s
            .strip_prefix("SCRAM-SHA-256$")
            .ok_or_else(|| bad_verifier("not a SCRAM-SHA-256 secret"))?;
        let (iterations, rest) = rest
            .split_once(':')
            .ok_or_else(|| bad_verifier("missing iteration count"))?;
        let (salt, keys) = rest
            .split_once('$')
            .ok_or_else(|| bad_verifier("missing salt"))?;
        let (stored_key, server_key) = keys
            .split_once(':')
            .ok_or_else(|| bad_verifier("missing keys"))?;

        // Digits only: u32::from_str would also take "+4096", which would not print back the same.
        if iterations.is_empty() || !iterations.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad_verifier("iteration count is not a number"));
        }
        let iterations: u32 = iterations
            .parse()
            .map_err(|_| bad_verifier("iteration count out of range"))?;
        if iterations == 0 {
            return Err(bad_verifier("iteration count is zero"));
        }
        let salt = STANDARD
            .decode(salt)
            .map_err(|_| bad_verifier("salt is not base64"))?;
        if salt.is_empty() {
            return Err(bad_verifier("salt is empty"));
        }
        Ok(ScramVerifier {
            iterations,
            salt,
            stored_key: decode_key(stored_key).ok_or_else(|| bad_verifier("bad StoredKey"))?,
            server_key: decode_key(server_key).ok_or_else(|| bad_verifier("bad ServerKey"))?,
        })
    }

    /// Derives a verifier from a password (SASLprep'd as PostgreSQL does: if SASLprep fails, the
    /// raw bytes are used). An iteration count of zero is treated as one, which is what Hi()
    /// computes for it anyway, so that the verifier still prints in a parseable form.
    pub fn from_password(password: &str, salt: &[u8], iterations: u32) -> Self {
        let iterations = iterations.max(1);
        let password = prepare_password(password);
        let mut salted_password = [0u8; KEY_LEN];
        pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, iterations, &mut salted_password);
        let client_key = hmac_sha256(&salted_password, &[b"Client Key"]);
        ScramVerifier {
            iterations,
            salt: salt.to_vec(),
            stored_key: sha256(&client_key),
            server_key: hmac_sha256(&salted_password, &[b"Server Key"]),
        }
    }

    /// Same with a random 16-byte salt.
    pub fn generate(password: &str, iterations: u32) -> Self {
        let mut salt = [0u8; SALT_LEN];
        rand::rng().fill_bytes(&mut salt);
        Self::from_password(password, &salt, iterations)
    }

    /// Stand-in for an unknown user: salt = HMAC-SHA-256(secret, user name) (first 16 bytes),
    /// the given iteration count, random keys, so the exchange looks like a real one and always
    /// fails.
    ///
    /// `secret` must be random and stay the same across restarts and replicas: a salt that
    /// changes between attempts, or one an outsider can compute, gives the unknown name away.
    pub fn mock(secret: &[u8], user: &str, iterations: u32) -> Self {
        let salt = keyed_salt(secret, user);
        let mut stored_key = [0u8; KEY_LEN];
        let mut server_key = [0u8; KEY_LEN];
        let mut rng = rand::rng();
        rng.fill_bytes(&mut stored_key);
        rng.fill_bytes(&mut server_key);
        ScramVerifier {
            iterations: iterations.max(1),
            salt,
            stored_key,
            server_key,
        }
    }
}

/// The salt an unknown user's mock exchange shows: HMAC-SHA-256(secret,
/// name), first 16 bytes. Plain-text passwords from policy files are hashed
/// with it too, so that a known user's salt is as stable across restarts as
/// an unknown one's.
pub fn keyed_salt(secret: &[u8], user: &str) -> Vec<u8> {
    hmac_sha256(secret, &[user.as_bytes()])[..SALT_LEN].to_vec()
}

impl fmt::Display for ScramVerifier {
    /// The PostgreSQL form; round-trips with [`ScramVerifier::parse`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SCRAM-SHA-256${}:{}${}:{}",
            self.iterations,
            STANDARD.encode(&self.salt),
            STANDARD.encode(self.stored_key),
            STANDARD.encode(self.server_key),
        )
    }
}

fn decode_key(b64: &str) -> Option<[u8; KEY_LEN]> {
    STANDARD.decode(b64).ok()?.try_into().ok()
}

/// PostgreSQL's pg_saslprep leaves pure-ASCII passwords alone (control characters included) and
/// uses the raw password when SASLprep rejects it; libpq and rust-postgres do the same, so the
/// verifier has to as well or some passwords would never match.
fn prepare_password(password: &str) -> Cow<'_, str> {
    if password.is_ascii() {
        return Cow::Borrowed(password);
    }
    stringprep::saslprep(password).unwrap_or(Cow::Borrowed(password))
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; KEY_LEN] {
    // HMAC is defined for keys of any length (RFC 2104 §2); the Result is an API artifact.
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

fn sha256(data: &[u8]) -> [u8; KEY_LEN] {
    Sha256::digest(data).into()
}

/// Equality whose running time depends only on the lengths, which the protocol fixes anyway.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // Keeps the optimizer from turning the fold into an early-exit comparison.
    std::hint::black_box(diff) == 0
}

/// Mechanisms to advertise in AuthenticationSASL: PLUS first when channel binding data is
/// available, as PostgreSQL orders them (clients take the first one they support).
pub fn mechanisms(channel_binding_available: bool) -> Vec<&'static str> {
    if channel_binding_available {
        vec![SCRAM_SHA_256_PLUS, SCRAM_SHA_256]
    } else {
        vec![SCRAM_SHA_256]
    }
}

/// tls-server-end-point channel-binding data (RFC 5929 §4.1) for a DER certificate: hash of the
/// cert with the hash of its signature algorithm, SHA-256 when that is MD5/SHA-1 (or unknown);
/// SHA-224/384/512 when the certificate is signed with those.
///
/// Where RFC 5929 leaves the binding undefined (Ed25519/Ed448 certificates, unparseable DER)
/// this still returns SHA-256, which no client will reproduce; use
/// [`tls_server_end_point_defined`] to decide whether to offer SCRAM-SHA-256-PLUS at all.
pub fn tls_server_end_point(cert_der: &[u8]) -> Vec<u8> {
    end_point_hash(cert_der)
        .unwrap_or(EndPointHash::Sha256)
        .digest(cert_der)
}

/// Like [`tls_server_end_point`], but `None` when RFC 5929 defines no binding for this
/// certificate. Offering PLUS without a binding clients can compute makes libpq fail the login
/// (it picks PLUS, then cannot hash the certificate), while offering only SCRAM-SHA-256 lets it in.
pub fn tls_server_end_point_defined(cert_der: &[u8]) -> Option<Vec<u8>> {
    end_point_hash(cert_der).map(|hash| hash.digest(cert_der))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EndPointHash {
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl EndPointHash {
    fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            EndPointHash::Sha224 => Sha224::digest(data).to_vec(),
            EndPointHash::Sha256 => Sha256::digest(data).to_vec(),
            EndPointHash::Sha384 => Sha384::digest(data).to_vec(),
            EndPointHash::Sha512 => Sha512::digest(data).to_vec(),
        }
    }
}

fn end_point_hash(cert_der: &[u8]) -> Option<EndPointHash> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der).ok()?;
    signature_hash(&cert.signature_algorithm)
}

/// The hash RFC 5929 prescribes for a signature algorithm, with MD5 and SHA-1 upgraded to
/// SHA-256. Mirrors OpenSSL's X509_get_signature_info as PostgreSQL uses it, RSASSA-PSS included.
fn signature_hash(alg: &AlgorithmIdentifier<'_>) -> Option<EndPointHash> {
    use EndPointHash::*;
    match alg.algorithm.to_id_string().as_str() {
        // md5WithRSA, sha1WithRSA (both OIDs), dsa-with-sha1, ecdsa-with-SHA1.
        "1.2.840.113549.1.1.4"
        | "1.2.840.113549.1.1.5"
        | "1.3.14.3.2.29"
        | "1.2.840.10040.4.3"
        | "1.2.840.10045.4.1" => Some(Sha256),
        // sha224WithRSA, ecdsa-with-SHA224, dsa-with-sha224.
        "1.2.840.113549.1.1.14" | "1.2.840.10045.4.3.1" | "2.16.840.1.101.3.4.3.1" => Some(Sha224),
        // sha256WithRSA, ecdsa-with-SHA256, dsa-with-sha256.
        "1.2.840.113549.1.1.11" | "1.2.840.10045.4.3.2" | "2.16.840.1.101.3.4.3.2" => Some(Sha256),
        // sha384WithRSA, ecdsa-with-SHA384, dsa-with-sha384.
        "1.2.840.113549.1.1.12" | "1.2.840.10045.4.3.3" | "2.16.840.1.101.3.4.3.3" => Some(Sha384),
        // sha512WithRSA, ecdsa-with-SHA512, dsa-with-sha512.
        "1.2.840.113549.1.1.13" | "1.2.840.10045.4.3.4" | "2.16.840.1.101.3.4.3.4" => Some(Sha512),
        // RSASSA-PSS names its hash in the parameters (SHA-1 when absent).
        "1.2.840.113549.1.1.10" => {
            let params = RsaSsaPssParams::try_from(alg.parameters.as_ref()?).ok()?;
            digest_hash(&params.hash_algorithm_oid().to_id_string())
        }
        // Ed25519, Ed448, SHA-3 based and unknown algorithms: no binding defined or computable.
        _ => None,
    }
}

fn digest_hash(oid: &str) -> Option<EndPointHash> {
    use EndPointHash::*;
    match oid {
        // md5, sha1, sha256.
        "1.2.840.113549.2.5" | "1.3.14.3.2.26" | "2.16.840.1.101.3.4.2.1" => Some(Sha256),
        "2.16.840.1.101.3.4.2.4" => Some(Sha224),
        "2.16.840.1.101.3.4.2.2" => Some(Sha384),
        "2.16.840.1.101.3.4.2.3" => Some(Sha512),
        _ => None,
    }
}

/// Server side of one SCRAM exchange. Create one per login attempt; after an error or success
/// every further call is a protocol error.
pub struct ScramServer {
    verifier: ScramVerifier,
    known: bool,
    /// tls-server-end-point data of this connection; `Some` means PLUS was offered.
    channel_binding: Option<Vec<u8>>,
    server_nonce: String,
    state: State,
}

impl fmt::Debug for ScramServer {
    // Only where the exchange stands: nonces and keys stay out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::AwaitingClientFirst => "awaiting client-first-message",
            State::AwaitingClientFinal(_) => "awaiting client-final-message",
            State::Finished => "finished",
        };
        f.debug_struct("ScramServer")
            .field("state", &state)
            .field("channel_binding", &self.channel_binding.is_some())
            .finish_non_exhaustive()
    }
}

enum State {
    AwaitingClientFirst,
    AwaitingClientFinal(Box<Pending>),
    Finished,
}

/// What client-first settled and client-final must match.
struct Pending {
    client_first_bare: Vec<u8>,
    server_first: Vec<u8>,
    /// Client nonce followed by server nonce.
    nonce: Vec<u8>,
    /// The exact "c=" value expected: base64 of the GS2 header (plus binding data with "p=").
    channel_binding_input: String,
    plus: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum CbFlag {
    /// "n": the client does not do channel binding.
    No,
    /// "y": the client does, but thinks the server does not.
    Yes,
    /// "p=tls-server-end-point".
    TlsServerEndPoint,
}

impl ScramServer {
    /// `verifier`: the user's verifier, or a mock one for an unknown user (then `known = false`
    /// and the exchange always ends in failure, at the same step and with the same error as a
    /// wrong password).
    /// `channel_binding`: Some(tls-server-end-point data) when the connection is TLS and PLUS is
    /// offered, else None. Empty data counts as None: nothing could match it.
    pub fn new(verifier: ScramVerifier, known: bool, channel_binding: Option<Vec<u8>>) -> Self {
        let mut raw = [0u8; RAW_NONCE_LEN];
        rand::rng().fill_bytes(&mut raw);
        Self::with_server_nonce(verifier, known, channel_binding, STANDARD.encode(raw))
    }

    fn with_server_nonce(
        verifier: ScramVerifier,
        known: bool,
        channel_binding: Option<Vec<u8>>,
        server_nonce: String,
    ) -> Self {
        ScramServer {
            verifier,
            known,
            channel_binding: channel_binding.filter(|data| !data.is_empty()),
            server_nonce,
            state: State::AwaitingClientFirst,
        }
    }

    /// SASLInitialResponse: mechanism name and client-first-message. Returns
    /// server-first-message bytes.
    pub fn client_first(&mut self, mechanism: &str, data: &[u8]) -> Result<Vec<u8>, ScramError> {
        // Any error ends the exchange, as it ends the login in PostgreSQL.
        let state = std::mem::replace(&mut self.state, State::Finished);
        if !matches!(state, State::AwaitingClientFirst) {
            return Err(ScramError::Protocol(
                "unexpected SASLInitialResponse: SCRAM exchange already started".into(),
            ));
        }
        let pending = self.read_client_first(mechanism, data)?;
        let server_first = pending.server_first.clone();
        self.state = State::AwaitingClientFinal(Box::new(pending));
        Ok(server_first)
    }

    /// SASLResponse: client-final-message. Returns server-final-message bytes (the "v=..."
    /// message) on success.
    pub fn client_final(&mut self, data: &[u8]) -> Result<Vec<u8>, ScramError> {
        let State::AwaitingClientFinal(pending) =
            std::mem::replace(&mut self.state, State::Finished)
        else {
            return Err(ScramError::Protocol(
                "unexpected SASLResponse: no SCRAM exchange awaiting client-final-message".into(),
            ));
        };
        self.read_client_final(&pending, data)
    }

    fn read_client_first(&self, mechanism: &str, data: &[u8]) -> Result<Pending, ScramError> {
        let plus = match mechanism {
            SCRAM_SHA_256_PLUS if self.channel_binding.is_some() => true,
            SCRAM_SHA_256 => false,
            _ => {
                return Err(ScramError::Protocol(
                    "client selected an invalid SASL authentication mechanism".into(),
                ));
            }
        };
        check_message(data)?;
        let mut r = Reader::new(data);

        // gs2-cbind-flag
        let flag = match r.peek() {
            Some(b'n') => {
                r.skip(1);
                r.expect_comma()?;
                CbFlag::No
            }
            Some(b'y') => {
                // The server offered PLUS on this connection, so a client that believes
                // otherwise had the mechanism list altered on the way: a downgrade attempt.
                if self.channel_binding.is_some() {
                    return Err(ScramError::Protocol(
                        "SCRAM channel binding negotiation error: the client supports SCRAM \
                         channel binding but thinks the server does not, yet this server does \
                         support channel binding"
                            .into(),
                    ));
                }
                r.skip(1);
                r.expect_comma()?;
                CbFlag::Yes
            }
            Some(b'p') => {
                if !plus {
                    return Err(malformed(
                        "the client selected SCRAM-SHA-256 without channel binding, but the \
                         SCRAM message includes channel binding data",
                    ));
                }
                if r.attr(b'p')? != CB_TLS_SERVER_END_POINT {
                    return Err(ScramError::Protocol(
                        "unsupported SCRAM channel-binding type".into(),
                    ));
                }
                CbFlag::TlsServerEndPoint
            }
            _ => return Err(malformed("unexpected channel-binding flag")),
        };
        if plus && flag != CbFlag::TlsServerEndPoint {
            return Err(ScramError::Protocol(
                "client selected SCRAM-SHA-256-PLUS, but the SCRAM message does not include \
                 channel binding data"
                    .into(),
            ));
        }

        // authzid: PostgreSQL takes the role from the startup packet only.
        match r.peek() {
            Some(b'a') => {
                return Err(ScramError::Unsupported(
                    "client uses authorization identity, but it is not supported".into(),
                ));
            }
            Some(b',') => r.skip(1),
            _ => return Err(malformed("unexpected attribute in client-first-message")),
        }
        let gs2_header = r.consumed();
        let client_first_bare = r.rest();

        // RFC 5802 lets the server fail a mandatory extension later with
        // e=extensions-not-supported; like PostgreSQL, fail now.
        if r.peek() == Some(b'm') {
            return Err(ScramError::Unsupported(
                "client requires an unsupported SCRAM extension".into(),
            ));
        }
        // The user name is ignored: the startup packet names the role, and libpq sends "n=".
        r.attr(b'n')?;
        let client_nonce = r.attr(b'r')?;
        if client_nonce.is_empty() || !is_printable(client_nonce) {
            return Err(ScramError::Protocol(
                "non-printable characters in SCRAM nonce".into(),
            ));
        }
        // Optional extensions may follow; none is supported, so they are checked for shape
        // and otherwise ignored, as PostgreSQL does.
        while !r.is_empty() {
            r.any_attr()?;
        }

        let mut nonce = client_nonce.to_vec();
        nonce.extend_from_slice(self.server_nonce.as_bytes());

        let mut server_first = b"r=".to_vec();
        server_first.extend_from_slice(&nonce);
        server_first.extend_from_slice(b",s=");
        server_first.extend_from_slice(STANDARD.encode(&self.verifier.salt).as_bytes());
        server_first.extend_from_slice(format!(",i={}", self.verifier.iterations).as_bytes());

        let mut cbind_input = gs2_header.to_vec();
        if flag == CbFlag::TlsServerEndPoint {
            cbind_input.extend_from_slice(self.channel_binding.as_deref().unwrap_or_default());
        }

        Ok(Pending {
            client_first_bare: client_first_bare.to_vec(),
            server_first,
            nonce,
            channel_binding_input: STANDARD.encode(cbind_input),
            plus,
        })
    }

    fn read_client_final(&self, pending: &Pending, data: &[u8]) -> Result<Vec<u8>, ScramError> {
        check_message(data)?;
        let mut r = Reader::new(data);

        let cbind = r.attr(b'c')?;
        if !ct_eq(cbind, pending.channel_binding_input.as_bytes()) {
            return Err(if pending.plus {
                ScramError::ChannelBindingMismatch
            } else {
                ScramError::Protocol(
                    "unexpected SCRAM channel-binding attribute in client-final-message".into(),
                )
            });
        }
        let nonce = r.attr(b'r')?;
        // Extensions before the proof are ignored, as PostgreSQL does.
        let (without_proof, proof) = loop {
            let before = r.consumed();
            let (name, value) = r.any_attr()?;
            if name == b'p' {
                break (before.strip_suffix(b",").unwrap_or(before), value);
            }
        };
        let proof: [u8; KEY_LEN] = STANDARD
            .decode(proof)
            .ok()
            .and_then(|p| p.try_into().ok())
            .ok_or_else(|| malformed("malformed proof in client-final-message"))?;
        if !r.is_empty() {
            return Err(malformed(
                "garbage found at the end of client-final-message",
            ));
        }
        if !ct_eq(nonce, &pending.nonce) {
            return Err(ScramError::Protocol(
                "invalid SCRAM response: nonce does not match".into(),
            ));
        }

        let auth_message: [&[u8]; 5] = [
            &pending.client_first_bare,
            b",",
            &pending.server_first,
            b",",
            without_proof,
        ];
        // ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage); H(ClientKey) must be
        // StoredKey. Computed for mock verifiers too, so unknown users cost the same time.
        let client_signature = hmac_sha256(&self.verifier.stored_key, &auth_message);
        let mut client_key = proof;
        for (k, s) in client_key.iter_mut().zip(client_signature) {
            *k ^= s;
        }
        let proof_ok = ct_eq(&sha256(&client_key), &self.verifier.stored_key);
        // Non-short-circuit: the known flag must not change what is computed.
        if !(proof_ok & self.known) {
            return Err(ScramError::Failed);
        }

        let server_signature = hmac_sha256(&self.verifier.server_key, &auth_message);
        Ok(format!("v={}", STANDARD.encode(server_signature)).into_bytes())
    }
}

/// PostgreSQL checks these before parsing: the messages are C strings on its side.
fn check_message(data: &[u8]) -> Result<(), ScramError> {
    if data.is_empty() {
        return Err(malformed("the message is empty"));
    }
    if data.contains(&0) {
        return Err(malformed("message length does not match input length"));
    }
    Ok(())
}

/// RFC 5802 "printable": %x21-2B / %x2D-7E, printable ASCII except ",".
fn is_printable(s: &[u8]) -> bool {
    s.iter().all(|&c| (0x21..=0x7e).contains(&c) && c != b',')
}

/// Reads `attr=value` fields separated by commas, the way auth-scram.c's read_attr_value and
/// read_any_attr do. Works on bytes: nothing in SCRAM requires the server to decode UTF-8.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8]) -> Self {
        Reader { data, pos: 0 }
    }

    fn peek(&self) -> Option<u8> {
        self.data.get(self.pos).copied()
    }

    fn skip(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.data.len());
    }

    fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    fn consumed(&self) -> &'a [u8] {
        self.data.get(..self.pos).unwrap_or(self.data)
    }

    fn rest(&self) -> &'a [u8] {
        self.data.get(self.pos..).unwrap_or_default()
    }

    fn expect_comma(&mut self) -> Result<(), ScramError> {
        if self.peek() != Some(b',') {
            return Err(malformed("comma expected"));
        }
        self.skip(1);
        Ok(())
    }

    /// The value up to the next comma, which is consumed, or to the end.
    fn value(&mut self) -> &'a [u8] {
        let rest = self.rest();
        match rest.iter().position(|&c| c == b',') {
            Some(end) => {
                self.skip(end + 1);
                &rest[..end]
            }
            None => {
                self.pos = self.data.len();
                rest
            }
        }
    }

    fn expect_equals(&mut self) -> Result<(), ScramError> {
        if self.peek() != Some(b'=') {
            return Err(malformed("expected character \"=\" after attribute name"));
        }
        self.skip(1);
        Ok(())
    }

    fn attr(&mut self, name: u8) -> Result<&'a [u8], ScramError> {
        if self.peek() != Some(name) {
            return Err(ScramError::Protocol(format!(
                "malformed SCRAM message: expected attribute \"{}\"",
                char::from(name)
            )));
        }
        self.skip(1);
        self.expect_equals()?;
        Ok(self.value())
    }

    fn any_attr(&mut self) -> Result<(u8, &'a [u8]), ScramError> {
        let name = match self.peek() {
            None => return Err(malformed("attribute expected, but found end of message")),
            Some(c) if c.is_ascii_alphabetic() => c,
            Some(_) => return Err(malformed("attribute expected, but found invalid character")),
        };
        self.skip(1);
        self.expect_equals()?;
        Ok((name, self.value()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};

    const ITERATIONS: u32 = 4096;

    fn verifier(password: &str) -> ScramVerifier {
        ScramVerifier::from_password(password, b"0123456789abcdef", ITERATIONS)
    }

    /// Drives a whole exchange with the client rust-postgres uses.
    fn exchange(
        client_password: &str,
        server: &mut ScramServer,
        mechanism: &str,
        client_cb: ChannelBinding,
    ) -> Result<(), ScramError> {
        let mut client = ScramSha256::new(client_password.as_bytes(), client_cb);
        let server_first = server.client_first(mechanism, client.message())?;
        client
            .update(&server_first)
            .expect("client accepts server-first-message");
        let server_final = server.client_final(client.message())?;
        client
            .finish(&server_final)
            .expect("client verifies the server signature");
        Ok(())
    }

    fn cert_der(alg: &'static rcgen::SignatureAlgorithm) -> Vec<u8> {
        let key = rcgen::KeyPair::generate_for(alg).expect("key");
        let params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).expect("params");
        params.self_signed(&key).expect("cert").der().to_vec()
    }

    #[test]
    fn exchange_without_channel_binding() {
        let mut server = ScramServer::new(verifier("secret"), true, None);
        exchange(
            "secret",
            &mut server,
            SCRAM_SHA_256,
            ChannelBinding::unsupported(),
        )
        .expect("login succeeds");
    }

    #[test]
    fn exchange_with_tls_server_end_point() {
        let cb = tls_server_end_point(&cert_der(&rcgen::PKCS_ECDSA_P256_SHA256));
        let mut server = ScramServer::new(verifier("secret"), true, Some(cb.clone()));
        exchange(
            "secret",
            &mut server,
            SCRAM_SHA_256_PLUS,
            ChannelBinding::tls_server_end_point(cb),
        )
        .expect("login succeeds");
    }

    #[test]
    fn client_without_binding_support_may_pick_plain_scram_over_tls() {
        // rust-postgres does this when it cannot hash the certificate: "n,," is honest.
        let mut server = ScramServer::new(verifier("secret"), true, Some(vec![7; 32]));
        exchange(
            "secret",
            &mut server,
            SCRAM_SHA_256,
            ChannelBinding::unsupported(),
        )
        .expect("login succeeds");
    }

    #[test]
    fn client_that_thinks_server_lacks_binding_is_fine_without_tls() {
        let mut server = ScramServer::new(verifier("secret"), true, None);
        exchange(
            "secret",
            &mut server,
            SCRAM_SHA_256,
            ChannelBinding::unrequested(),
        )
        .expect("login succeeds");
    }

    #[test]
    fn wrong_password_fails() {
        let mut server = ScramServer::new(verifier("secret"), true, None);
        let err = exchange(
            "wrong",
            &mut server,
            SCRAM_SHA_256,
            ChannelBinding::unsupported(),
        )
        .expect_err("login fails");
        assert!(matches!(err, ScramError::Failed), "{err:?}");
        assert_eq!(err.sqlstate(), "28P01");
    }

    #[test]
    fn unknown_user_fails_at_client_final_like_a_wrong_password() {
        let mock = ScramVerifier::mock(b"server secret", "mallory", ITERATIONS);
        let mut server = ScramServer::new(mock.clone(), false, None);
        let mut client = ScramSha256::new(b"anything", ChannelBinding::unsupported());
        let server_first = server
            .client_first(SCRAM_SHA_256, client.message())
            .expect("client-first accepted for an unknown user");
        let salt = format!(",s={},", STANDARD.encode(&mock.salt));
        assert!(String::from_utf8_lossy(&server_first).contains(&salt));
        client.update(&server_first).expect("looks like a real one");
        let err = server
            .client_final(client.message())
            .expect_err("must fail");
        assert!(matches!(err, ScramError::Failed), "{err:?}");
    }

    #[test]
    fn not_known_fails_even_with_the_right_password() {
        let mut server = ScramServer::new(verifier("secret"), false, None);
        let err = exchange(
            "secret",
            &mut server,
            SCRAM_SHA_256,
            ChannelBinding::unsupported(),
        )
        .expect_err("doomed exchange");
        assert!(matches!(err, ScramError::Failed), "{err:?}");
    }

    #[test]
    fn rfc7677_example() {
        let salt = STANDARD.decode("W22ZaJ0SNY7soEsUEjb6gQ==").expect("salt");
        let verifier = ScramVerifier::from_password("pencil", &salt, 4096);
        let mut server = ScramServer::with_server_nonce(
            verifier,
            true,
            None,
            "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0".into(),
        );
        let server_first = server
            .client_first(SCRAM_SHA_256, b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO")
            .expect("client-first");
        assert_eq!(
            server_first,
            b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
              s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        );
        let server_final = server
            .client_final(
                b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                  p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
            )
            .expect("proof accepted");
        assert_eq!(
            server_final,
            b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
    }

    #[test]
    fn verifier_round_trips_and_matches_rust_postgres() {
        let v = ScramVerifier::generate("pencil", ITERATIONS);
        assert_eq!(ScramVerifier::parse(&v.to_string()).expect("parse"), v);

        // An independent implementation of the same derivation, with its random salt.
        let theirs = postgres_protocol::password::scram_sha_256(b"pencil");
        let parsed = ScramVerifier::parse(&theirs).expect("parse");
        assert_eq!(parsed.to_string(), theirs);
        assert_eq!(
            ScramVerifier::from_password("pencil", &parsed.salt, parsed.iterations),
            parsed
        );
    }

    #[test]
    fn saslprep_matches_the_client() {
        // Non-ASCII space is mapped to ASCII space; a prohibited character falls back to the
        // raw bytes. Either way the client's own normalisation must agree with ours.
        for password in [
            "p\u{00A0}ss",
            "I\u{00AD}X",
            "a\u{0007}b\u{00E9}",
            "\u{FFFF}",
        ] {
            let mut server = ScramServer::new(verifier(password), true, None);
            exchange(
                password,
                &mut server,
                SCRAM_SHA_256,
                ChannelBinding::unsupported(),
            )
            .unwrap_or_else(|e| panic!("{password:?}: {e}"));
        }
        assert_eq!(verifier("p\u{00A0}ss"), verifier("p ss"));
    }

    #[test]
    fn bad_verifiers_are_rejected() {
        let good = verifier("x").to_string();
        let (_, keys) = good.rsplit_once('$').expect("keys");
        let cases = [
            String::new(),
            "md5abcdef".into(),
            "SCRAM-SHA-256$".into(),
            "SCRAM-SHA-256$4096".into(),
            "SCRAM-SHA-256$4096:c2FsdA==".into(),
            "SCRAM-SHA-256$4096:c2FsdA==$".into(),
            format!("SCRAM-SHA-256$0:c2FsdA==${keys}"),
            format!("SCRAM-SHA-256$+4096:c2FsdA==${keys}"),
            format!("SCRAM-SHA-256$-1:c2FsdA==${keys}"),
            format!("SCRAM-SHA-256$99999999999:c2FsdA==${keys}"),
            format!("SCRAM-SHA-256$4096:${keys}"),
            format!("SCRAM-SHA-256$4096:not base64!${keys}"),
            format!("SCRAM-SHA-1$4096:c2FsdA==${keys}"),
            "SCRAM-SHA-256$4096:c2FsdA==$c2hvcnQ=:c2hvcnQ=".into(),
            format!("SCRAM-SHA-256$4096:c2FsdA==${keys}:extra"),
        ];
        for case in cases {
            let err = ScramVerifier::parse(&case).expect_err(&case);
            assert!(matches!(err, ScramError::BadVerifier(_)), "{case}");
        }
    }

    #[test]
    fn mock_salts_are_stable_per_name_and_differ_across_names() {
        let a1 = ScramVerifier::mock(b"k", "alice", 4096);
        let a2 = ScramVerifier::mock(b"k", "alice", 4096);
        let b = ScramVerifier::mock(b"k", "bob", 4096);
        let other_secret = ScramVerifier::mock(b"k2", "alice", 4096);
        assert_eq!(a1.salt, a2.salt);
        assert_eq!(a1.salt.len(), SALT_LEN);
        assert_ne!(a1.salt, b.salt);
        assert_ne!(a1.salt, other_secret.salt);
        assert_ne!(a1.stored_key, a2.stored_key);
        assert_eq!(a1.iterations, 4096);
    }

    #[test]
    fn downgrade_is_refused_when_plus_was_offered() {
        let mut server = ScramServer::new(verifier("secret"), true, Some(vec![1; 32]));
        let err = server
            .client_first(SCRAM_SHA_256, b"y,,n=,r=abc")
            .expect_err("downgrade");
        assert!(matches!(err, ScramError::Protocol(_)), "{err:?}");
    }

    #[test]
    fn channel_binding_misuse_is_refused() {
        type Case = (Option<Vec<u8>>, &'static str, &'static [u8]);
        let cb = Some(vec![1; 32]);
        let cases: [Case; 6] = [
            // p= with the plain mechanism.
            (
                cb.clone(),
                SCRAM_SHA_256,
                b"p=tls-server-end-point,,n=,r=abc",
            ),
            // PLUS without p=.
            (cb.clone(), SCRAM_SHA_256_PLUS, b"n,,n=,r=abc"),
            // PLUS when no binding was offered.
            (
                None,
                SCRAM_SHA_256_PLUS,
                b"p=tls-server-end-point,,n=,r=abc",
            ),
            // Other binding types.
            (cb.clone(), SCRAM_SHA_256_PLUS, b"p=tls-unique,,n=,r=abc"),
            (cb.clone(), SCRAM_SHA_256_PLUS, b"p=tls-exporter,,n=,r=abc"),
            // Unknown mechanism.
            (cb, "SCRAM-SHA-1", b"n,,n=,r=abc"),
        ];
        for (cb, mechanism, message) in cases {
            let mut server = ScramServer::new(verifier("secret"), true, cb);
            let err = server
                .client_first(mechanism, message)
                .expect_err(mechanism);
            assert!(matches!(err, ScramError::Protocol(_)), "{err:?}");
            assert_eq!(err.sqlstate(), "08P01");
        }
    }

    #[test]
    fn binding_data_for_another_certificate_fails() {
        let mut server = ScramServer::new(verifier("secret"), true, Some(vec![1; 32]));
        let err = exchange(
            "secret",
            &mut server,
            SCRAM_SHA_256_PLUS,
            ChannelBinding::tls_server_end_point(vec![2; 32]),
        )
        .expect_err("relayed connection");
        assert!(matches!(err, ScramError::ChannelBindingMismatch), "{err:?}");
    }

    #[test]
    fn authzid_and_mandatory_extensions_are_unsupported() {
        for message in [&b"n,a=admin,n=,r=abc"[..], b"n,,m=ext,n=,r=abc"] {
            let mut server = ScramServer::new(verifier("secret"), true, None);
            let err = server
                .client_first(SCRAM_SHA_256, message)
                .expect_err("unsupported");
            assert!(matches!(err, ScramError::Unsupported(_)), "{err:?}");
        }
    }

    #[test]
    fn bad_nonces_are_refused() {
        for message in [
            &b"n,,n=,r="[..],
            b"n,,n=,r=a b",
            b"n,,n=,r=\x7f",
            b"n,,n=,r=caf\xc3\xa9",
        ] {
            let mut server = ScramServer::new(verifier("secret"), true, None);
            let err = server
                .client_first(SCRAM_SHA_256, message)
                .expect_err("bad nonce");
            assert!(matches!(err, ScramError::Protocol(_)), "{err:?}");
        }
    }

    #[test]
    fn garbage_client_first_is_refused() {
        let cases: [&[u8]; 16] = [
            b"",
            b"\0",
            b"\xff\xfe\xfd",
            b"n",
            b"n,",
            b"n,,",
            b"n,,n=",
            b"n,,n=,",
            b"n,,r=abc",
            b"x,,n=,r=abc",
            b"n;,n=,r=abc",
            b"n,,n=,r=abc\0",
            b"n,,n=,r=abc,1=x",
            b"n,,n=,r=abc,x",
            b"n,,n=,r=abc,,",
            b"n,x,n=,r=abc",
        ];
        for message in cases {
            let mut server = ScramServer::new(verifier("secret"), true, None);
            assert!(
                server.client_first(SCRAM_SHA_256, message).is_err(),
                "{:?}",
                String::from_utf8_lossy(message)
            );
        }
    }

    #[test]
    fn unknown_extensions_after_the_nonce_are_ignored() {
        let mut server = ScramServer::new(verifier("secret"), true, None);
        server
            .client_first(SCRAM_SHA_256, b"n,,n=\xff,r=abc,x=whatever")
            .expect("accepted as PostgreSQL does");
    }

    /// A client-first/client-final pair for password "secret" with a fixed server nonce.
    fn recorded_exchange() -> (ScramVerifier, Vec<u8>, Vec<u8>) {
        let verifier = verifier("secret");
        let mut server =
            ScramServer::with_server_nonce(verifier.clone(), true, None, "SERVERNONCE".into());
        let mut client = ScramSha256::new(b"secret", ChannelBinding::unsupported());
        let first = client.message().to_vec();
        let server_first = server
            .client_first(SCRAM_SHA_256, &first)
            .expect("client-first");
        client.update(&server_first).expect("server-first");
        let last = client.message().to_vec();
        (verifier, first, last)
    }

    fn replay(verifier: &ScramVerifier, first: &[u8], last: &[u8]) -> Result<Vec<u8>, ScramError> {
        let mut server =
            ScramServer::with_server_nonce(verifier.clone(), true, None, "SERVERNONCE".into());
        server.client_first(SCRAM_SHA_256, first)?;
        server.client_final(last)
    }

    #[test]
    fn every_truncation_of_client_final_is_refused() {
        let (verifier, first, last) = recorded_exchange();
        replay(&verifier, &first, &last).expect("the whole message works");
        for len in 0..last.len() {
            assert!(replay(&verifier, &first, &last[..len]).is_err(), "{len}");
        }
        for len in 0..first.len() {
            // A shorter nonce can still be a valid client-first; it must just not panic.
            let mut server = ScramServer::new(verifier.clone(), true, None);
            let _ = server.client_first(SCRAM_SHA_256, &first[..len]);
        }
    }

    #[test]
    fn tampered_client_final_is_refused() {
        let (verifier, first, last) = recorded_exchange();
        let last = String::from_utf8(last).expect("ascii");
        let (without_proof, proof) = last.rsplit_once(",p=").expect("proof");
        let cases = [
            format!("c=eSws,{}", &without_proof[7..]),
            without_proof.replace("SERVERNONCE", "SERVERNONCX"),
            format!("{without_proof},p={proof},x=1"),
            format!("{without_proof},p={proof}\0"),
            format!("{without_proof},p={}", &proof[..proof.len() - 4]),
            format!("{without_proof},p=not*base64"),
            format!("{without_proof},p=YQ=="),
            format!("{without_proof},p="),
            format!("{without_proof},x=1"),
            without_proof.to_string(),
            format!("r=x,{last}"),
            "garbage".into(),
        ];
        for case in cases {
            assert!(
                replay(&verifier, &first, case.as_bytes()).is_err(),
                "{case}"
            );
        }
        let err = replay(&verifier, &first, b"\xff\xfe").expect_err("non-UTF-8");
        assert!(matches!(err, ScramError::Protocol(_)), "{err:?}");
    }

    #[test]
    fn extensions_before_the_proof_are_ignored() {
        let verifier = verifier("secret");
        let mut server = ScramServer::with_server_nonce(verifier.clone(), true, None, "SRV".into());
        server
            .client_first(SCRAM_SHA_256, b"n,,n=,r=CLI")
            .expect("client-first");
        let without_proof = b"c=biws,r=CLISRV,x=ext";
        let auth_message: [&[u8]; 3] = [
            b"n=,r=CLI,",
            b"r=CLISRV,s=MDEyMzQ1Njc4OWFiY2RlZg==,i=4096,",
            without_proof,
        ];
        // Recomputes the client side from the password, independently of the verifier.
        let mut salted = [0u8; KEY_LEN];
        pbkdf2::pbkdf2_hmac::<Sha256>(b"secret", b"0123456789abcdef", 4096, &mut salted);
        let client_key = hmac_sha256(&salted, &[b"Client Key"]);
        let signature = hmac_sha256(&sha256(&client_key), &auth_message);
        let proof: Vec<u8> = client_key
            .iter()
            .zip(signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let mut last = without_proof.to_vec();
        last.extend_from_slice(format!(",p={}", STANDARD.encode(proof)).as_bytes());
        let expected = hmac_sha256(&verifier.server_key, &auth_message);
        assert_eq!(
            server.client_final(&last).expect("accepted"),
            format!("v={}", STANDARD.encode(expected)).into_bytes()
        );
    }

    #[test]
    fn random_bytes_never_panic() {
        let (verifier, first, _) = recorded_exchange();
        let mut rng = rand::rng();
        for round in 0..2000 {
            let mut buf = vec![0u8; round % 64];
            rng.fill_bytes(&mut buf);
            // Bias towards the alphabet of real messages so parsing goes deeper.
            for b in &mut buf {
                if *b < 128 {
                    *b = b"nyp=,arcsix"[usize::from(*b) % 11];
                }
            }
            let mut server = ScramServer::new(verifier.clone(), true, Some(vec![1; 32]));
            let _ = server.client_first(SCRAM_SHA_256_PLUS, &buf);
            let _ = replay(&verifier, &first, &buf);
        }
    }

    #[test]
    fn steps_out_of_order_are_protocol_errors() {
        let mut server = ScramServer::new(verifier("secret"), true, None);
        let err = server
            .client_final(b"c=biws,r=x,p=x")
            .expect_err("too early");
        assert!(matches!(err, ScramError::Protocol(_)));

        let mut server = ScramServer::new(verifier("secret"), true, None);
        server
            .client_first(SCRAM_SHA_256, b"n,,n=,r=abc")
            .expect("first");
        let err = server
            .client_first(SCRAM_SHA_256, b"n,,n=,r=abc")
            .expect_err("twice");
        assert!(matches!(err, ScramError::Protocol(_)));

        let mut server = ScramServer::new(verifier("secret"), true, None);
        exchange(
            "secret",
            &mut server,
            SCRAM_SHA_256,
            ChannelBinding::unsupported(),
        )
        .expect("login");
        let err = server
            .client_final(b"c=biws,r=x,p=x")
            .expect_err("after the end");
        assert!(matches!(err, ScramError::Protocol(_)));
    }

    #[test]
    fn an_error_ends_the_exchange() {
        let mut server = ScramServer::new(verifier("secret"), true, None);
        assert!(server.client_first(SCRAM_SHA_256, b"garbage").is_err());
        assert!(server.client_first(SCRAM_SHA_256, b"n,,n=,r=abc").is_err());
    }

    #[test]
    fn mechanisms_put_plus_first() {
        assert_eq!(mechanisms(true), [SCRAM_SHA_256_PLUS, SCRAM_SHA_256]);
        assert_eq!(mechanisms(false), [SCRAM_SHA_256]);
    }

    #[test]
    fn end_point_hash_follows_the_signature_algorithm() {
        let p256 = cert_der(&rcgen::PKCS_ECDSA_P256_SHA256);
        assert_eq!(tls_server_end_point(&p256), Sha256::digest(&p256).to_vec());
        let p384 = cert_der(&rcgen::PKCS_ECDSA_P384_SHA384);
        assert_eq!(tls_server_end_point(&p384), Sha384::digest(&p384).to_vec());
        assert_eq!(
            tls_server_end_point_defined(&p384),
            Some(Sha384::digest(&p384).to_vec())
        );

        // Ed25519 has no hash of its own: undefined, SHA-256 as the documented fallback.
        let ed = cert_der(&rcgen::PKCS_ED25519);
        assert_eq!(tls_server_end_point_defined(&ed), None);
        assert_eq!(tls_server_end_point(&ed), Sha256::digest(&ed).to_vec());

        for garbage in [&b""[..], b"\x30\x03\x02\x01", b"not a certificate"] {
            assert_eq!(tls_server_end_point_defined(garbage), None);
            assert_eq!(
                tls_server_end_point(garbage),
                Sha256::digest(garbage).to_vec()
            );
        }
    }

    #[test]
    fn signature_oids_map_to_rfc5929_hashes() {
        use x509_parser::prelude::FromDer;
        let alg = |der: &'static [u8]| AlgorithmIdentifier::from_der(der).expect("der").1;
        // sha1WithRSAEncryption, NULL parameters: upgraded to SHA-256.
        let sha1_rsa = alg(b"\x30\x0d\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x01\x05\x05\x00");
        assert_eq!(signature_hash(&sha1_rsa), Some(EndPointHash::Sha256));
        // sha512WithRSAEncryption.
        let sha512_rsa = alg(b"\x30\x0d\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x01\x0d\x05\x00");
        assert_eq!(signature_hash(&sha512_rsa), Some(EndPointHash::Sha512));
        // RSASSA-PSS with hashAlgorithm sha384.
        let pss = alg(b"\x30\x1e\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x01\x0a\
                        \x30\x11\xa0\x0f\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x02\x05\x00");
        assert_eq!(signature_hash(&pss), Some(EndPointHash::Sha384));
        // RSASSA-PSS with default parameters means SHA-1, upgraded to SHA-256.
        let pss_default = alg(b"\x30\x0d\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x01\x0a\x30\x00");
        assert_eq!(signature_hash(&pss_default), Some(EndPointHash::Sha256));
    }

    #[test]
    fn errors_map_to_postgres_sqlstates() {
        assert_eq!(ScramError::Protocol(String::new()).sqlstate(), "08P01");
        assert_eq!(ScramError::Unsupported(String::new()).sqlstate(), "0A000");
        assert_eq!(ScramError::ChannelBindingMismatch.sqlstate(), "28000");
        assert_eq!(ScramError::Failed.sqlstate(), "28P01");
        assert_eq!(ScramError::BadVerifier(String::new()).sqlstate(), "28P01");
    }

    #[test]
    fn debug_does_not_print_keys() {
        let v = verifier("secret");
        let printed = format!("{v:?}");
        assert!(!printed.contains(&STANDARD.encode(v.stored_key)));
        assert!(!printed.contains(&STANDARD.encode(v.server_key)));
    }
}

//! Bytes from a client → the startup packet's parameters and the server
//! side of a SCRAM-SHA-256 exchange against a fixed verifier.
//!
//! Input: one flag byte, then up to four parts separated by 0xFE (a byte no
//! UTF-8 text holds): the startup packet body, the SASL mechanism, the
//! client-first-message and the client-final-message.
//!
//! Flags: bit 0 — TLS channel binding is offered (PLUS); bit 1 — the user
//! is unknown (a mock verifier); bit 2 — the harness plays an honest client
//! and writes the client-final-message itself, with the right proof for the
//! password, and the fuzzer's fourth part as extensions before the proof;
//! bit 3 — that proof has one bit flipped.
//!
//! Never panic; never accept a proof that is not the password's, an
//! unknown user, or a tampered proof; and accept the honest client.
#![no_main]

use std::sync::LazyLock;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use libfuzzer_sys::fuzz_target;
use pgward::auth::scram::{ScramServer, ScramVerifier};
use pgward::session::startup::check_params;
use pgward::wire::frontend::{StartupPacket, decode_startup};
use sha2::{Digest, Sha256};

const PASSWORD: &str = "pencil";
const SALT: &[u8] = b"fuzz-salt-16byte";
/// Few iterations: the verifier is derived once, the honest client's key too.
const ITERATIONS: u32 = 16;
/// tls-server-end-point data of the pretend connection.
const CB_DATA: &[u8] = b"\x01\x02\x03 certificate hash \xfe\xff";

struct Keys {
    verifier: ScramVerifier,
    client_key: [u8; 32],
}

static KEYS: LazyLock<Keys> = LazyLock::new(|| {
    let verifier = ScramVerifier::from_password(PASSWORD, SALT, ITERATIONS);
    // The client's side, written from RFC 5802 independently of pgward.
    let mut salted = [0u8; 32];
    let mut u = hmac(PASSWORD.as_bytes(), &[SALT, &1u32.to_be_bytes()]);
    salted.copy_from_slice(&u);
    for _ in 1..ITERATIONS {
        u = hmac(PASSWORD.as_bytes(), &[&u]);
        for (s, x) in salted.iter_mut().zip(u) {
            *s ^= x;
        }
    }
    let client_key = hmac(&salted, &[b"Client Key"]);
    assert_eq!(
        <[u8; 32]>::from(Sha256::digest(client_key)),
        verifier.stored_key,
        "the harness's key derivation agrees with pgward's"
    );
    Keys {
        verifier,
        client_key,
    }
});

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

fn startup(body: &[u8]) {
    if let Ok(StartupPacket::Startup { params, .. }) = decode_startup(body) {
        let had_user = params.iter().any(|(n, v)| n == "user" && !v.is_empty());
        match check_params(params) {
            Ok((request, unrecognised)) => {
                assert!(had_user, "a login without a user name");
                assert!(!request.user.is_empty());
                assert!(!request.database.is_empty());
                assert!(unrecognised.iter().all(|n| n.starts_with("_pq_.")));
                assert!(
                    request
                        .settings
                        .iter()
                        .any(|(n, v)| n == "client_encoding" && v == "UTF8")
                );
            }
            Err(e) => assert_eq!(e.code.len(), 5, "a SQLSTATE"),
        }
    }
}

/// The gs2 header of a client-first-message the server accepted: everything
/// up to and including its second comma.
fn split_gs2(client_first: &[u8]) -> (&[u8], &[u8]) {
    let mut commas = client_first
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b',')
        .map(|(i, _)| i);
    commas
        .next()
        .expect("an accepted gs2 header has two commas");
    let second = commas
        .next()
        .expect("an accepted gs2 header has two commas");
    client_first.split_at(second + 1)
}

/// Whether `client_final` carries the password's proof for this exchange,
/// checked from the RFC, not through pgward; and the server signature.
fn proof_is_right(bare: &[u8], server_first: &[u8], client_final: &[u8]) -> Option<[u8; 32]> {
    let at = client_final.windows(3).rposition(|w| w == b",p=")?;
    let (without_proof, proof) = (&client_final[..at], &client_final[at + 3..]);
    let proof = STANDARD.decode(proof).ok()?;
    let keys = &*KEYS;
    let auth = [bare, b",", server_first, b",", without_proof];
    let signature = hmac(&keys.verifier.stored_key, &auth);
    let client_key: Vec<u8> = proof.iter().zip(signature).map(|(p, s)| p ^ s).collect();
    (proof.len() == 32 && Sha256::digest(&client_key)[..] == keys.verifier.stored_key)
        .then(|| hmac(&keys.verifier.server_key, &auth))
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let mut parts = rest.splitn(4, |b| *b == 0xfe);
    let startup_body = parts.next().unwrap_or_default();
    let mechanism = parts.next().unwrap_or_default();
    let client_first = parts.next().unwrap_or_default();
    let fourth = parts.next().unwrap_or_default();
    startup(startup_body);

    let binding = flags & 1 != 0;
    let unknown = flags & 2 != 0;
    let honest = flags & 4 != 0;
    let tampered = flags & 8 != 0;
    let keys = &*KEYS;
    let verifier = if unknown {
        ScramVerifier::mock(b"fuzz secret", "nobody", ITERATIONS)
    } else {
        keys.verifier.clone()
    };
    let mut server = ScramServer::new(verifier, !unknown, binding.then(|| CB_DATA.to_vec()));
    let mechanism = String::from_utf8_lossy(mechanism);
    let Ok(server_first) = server.client_first(&mechanism, client_first) else {
        // After an error the exchange is over.
        assert!(server.client_final(b"c=biws,r=x,p=AAAA").is_err());
        return;
    };
    let (gs2, bare) = split_gs2(client_first);
    assert!(server_first.starts_with(b"r="));
    let nonce_end = server_first
        .iter()
        .position(|b| *b == b',')
        .expect("server-first has attributes after the nonce");
    let nonce = &server_first[2..nonce_end];
    let client_nonce = bare
        .windows(3)
        .position(|w| w == b",r=")
        .map(|at| &bare[at + 3..])
        .map(|r| r.split(|b| *b == b',').next().unwrap_or_default())
        .expect("an accepted client-first-message has a nonce");
    assert!(
        nonce.starts_with(client_nonce) && nonce.len() > client_nonce.len(),
        "the combined nonce is the client's followed by the server's"
    );
    assert!(
        server_first.ends_with(format!(",i={ITERATIONS}").as_bytes()),
        "the verifier's iteration count is announced"
    );

    let client_final = if honest {
        let mut cbind = gs2.to_vec();
        if gs2.starts_with(b"p=") {
            cbind.extend_from_slice(CB_DATA);
        }
        let mut text = b"c=".to_vec();
        text.extend_from_slice(STANDARD.encode(&cbind).as_bytes());
        text.extend_from_slice(b",r=");
        text.extend_from_slice(nonce);
        // Extensions the fuzzer adds (kept only if shaped as ",x=...").
        let extensions = fourth.starts_with(b",")
            && fourth.len() > 3
            && fourth[1].is_ascii_alphabetic()
            && fourth[1] != b'p'
            && fourth[2] == b'='
            && !fourth.contains(&0)
            && !fourth[3..].contains(&b',');
        if extensions {
            text.extend_from_slice(fourth);
        }
        let auth = [bare, b",", &server_first, b",", &text];
        let signature = hmac(&keys.verifier.stored_key, &auth);
        let mut proof = keys.client_key;
        for (p, s) in proof.iter_mut().zip(signature) {
            *p ^= s;
        }
        if tampered {
            let i = usize::from(flags >> 4) % proof.len();
            proof[i] ^= 1;
        }
        text.extend_from_slice(b",p=");
        text.extend_from_slice(STANDARD.encode(proof).as_bytes());
        text
    } else {
        fourth.to_vec()
    };

    let result = server.client_final(&client_final);
    if let Ok(server_final) = &result {
        assert!(!unknown, "an unknown user was accepted");
        let Some(server_signature) = proof_is_right(bare, &server_first, &client_final) else {
            panic!(
                "accepted a client-final-message without the password's proof: {:?}",
                String::from_utf8_lossy(&client_final)
            );
        };
        let mut expected = b"v=".to_vec();
        expected.extend_from_slice(STANDARD.encode(server_signature).as_bytes());
        assert_eq!(server_final, &expected);
    }
    if honest && !unknown && !tampered {
        // The honest client answers the server it was given: refused only
        // if its gs2 header is one pgward cannot bind (checked above).
        assert!(
            result.is_ok(),
            "the honest client was refused: {:?} for {:?}",
            result.err(),
            String::from_utf8_lossy(&client_final)
        );
    }
    if tampered || unknown {
        assert!(result.is_err());
    }
    // The exchange is over either way.
    assert!(server.client_final(&client_final).is_err());
});

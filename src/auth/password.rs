//! Checking a cleartext password against what a source stores: a SCRAM
//! verifier (policy files, users tables), a bcrypt hash or an argon2 PHC
//! string (users tables). Comparisons of derived keys are constant-time.

use argon2::PasswordVerifier;

use crate::auth::scram::ScramVerifier;

/// A stored secret a cleartext password can be checked against.
#[derive(Debug, Clone)]
pub enum Stored {
    Scram(ScramVerifier),
    Bcrypt(String),
    Argon2(String),
}

impl Stored {
    /// Reads a stored secret by its prefix; `None` for anything else.
    pub fn parse(text: &str) -> Option<Stored> {
        if text.starts_with("SCRAM-SHA-256$") {
            return ScramVerifier::parse(text).ok().map(Stored::Scram);
        }
        if ["$2a$", "$2b$", "$2y$", "$2x$"]
            .iter()
            .any(|p| text.starts_with(p))
        {
            return Some(Stored::Bcrypt(text.to_string()));
        }
        if text.starts_with("$argon2") {
            return argon2::PasswordHash::new(text)
                .ok()
                .filter(|h| h.hash.is_some() && h.salt.is_some())
                .map(|_| Stored::Argon2(text.to_string()));
        }
        None
    }

    /// Whether `password` matches.
    pub fn verify(&self, password: &str) -> bool {
        match self {
            Stored::Scram(v) => scram_matches(v, password),
            Stored::Bcrypt(hash) => bcrypt::verify(password, hash).unwrap_or(false),
            Stored::Argon2(hash) => argon2::PasswordHash::new(hash).is_ok_and(|parsed| {
                argon2::Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            }),
        }
    }
}

/// Whether a password derives the verifier's StoredKey and ServerKey.
pub fn scram_matches(verifier: &ScramVerifier, password: &str) -> bool {
    let derived = ScramVerifier::from_password(password, &verifier.salt, verifier.iterations);
    let mut diff = 0u8;
    for (a, b) in derived
        .stored_key
        .iter()
        .chain(derived.server_key.iter())
        .zip(verifier.stored_key.iter().chain(verifier.server_key.iter()))
    {
        diff |= a ^ b;
    }
    diff == 0
}

/// The last bcrypt or argon2 hash a real check used: an unknown user's
/// password is checked against it (and the answer dropped), so that a
/// name no source knows costs what a known one does, at the cost the
/// table's hashes really have.
static LAST_HASH: std::sync::Mutex<Option<Stored>> = std::sync::Mutex::new(None);

/// Remembers a hash a real check is about to use.
pub fn remember(stored: &Stored) {
    if matches!(stored, Stored::Bcrypt(_) | Stored::Argon2(_)) {
        let mut last = LAST_HASH.lock().unwrap_or_else(|e| e.into_inner());
        *last = Some(stored.clone());
    }
}

/// Does the work of checking a hash, for a user no source knows. Before
/// any real hash was seen, a bcrypt hash of cost 10 stands in.
pub fn decoy_hash_check(password: &str) {
    let last = LAST_HASH.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let stored = last.unwrap_or_else(|| {
        static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        Stored::Bcrypt(
            DECOY
                .get_or_init(|| {
                    let random: [u8; 16] = rand::random();
                    bcrypt::hash(random, 10).unwrap_or_default()
                })
                .clone(),
        )
    });
    let _ = stored.verify(password);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_accepts_only_its_password() {
        let scram = ScramVerifier::generate("s3cret", 4096);
        let bc = bcrypt::hash("s3cret", 4).unwrap();
        let salt = argon2::password_hash::SaltString::from_b64("c29tZXNhbHRzb21lc2FsdA").unwrap();
        let ar =
            argon2::PasswordHasher::hash_password(&argon2::Argon2::default(), b"s3cret", &salt)
                .unwrap()
                .to_string();
        let texts = [
            format!(
                "SCRAM-SHA-256${}:{}${}:{}",
                scram.iterations,
                base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &scram.salt),
                base64::Engine::encode(
                    &base64::engine::general_purpose::STANDARD,
                    scram.stored_key
                ),
                base64::Engine::encode(
                    &base64::engine::general_purpose::STANDARD,
                    scram.server_key
                )
            ),
            bc,
            ar,
        ];
        for text in &texts {
            let stored = Stored::parse(text).unwrap_or_else(|| panic!("{text}"));
            assert!(stored.verify("s3cret"), "{text}");
            assert!(!stored.verify("s3cret "), "{text}");
            assert!(!stored.verify(""), "{text}");
        }
        assert!(Stored::parse("plain").is_none());
        assert!(Stored::parse("$argon2id$garbage").is_none());
    }
}

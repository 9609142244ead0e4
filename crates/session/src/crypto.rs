//! Auth tokens at rest: AES-256-GCM with a random nonce, tagged with the id of the key that
//! sealed them, so keys can be rotated (add a key, make it active, re-encrypt). The owning row
//! (`Owner`) is the associated data, so a ciphertext moved to another channel or bot does not
//! decrypt there: whoever can write the table cannot make one channel use another's token.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

/// The row a sealed secret belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// A channel's Twilio auth token.
    Channel(Uuid),
    /// A bot's signing secret.
    Bot(Uuid),
    /// A channel's webhook shared key (its `session.webhook_keys` row).
    WebhookKey(Uuid),
}

impl Owner {
    fn associated_data(self) -> String {
        match self {
            Self::Channel(id) => format!("switchboard/session.channels/{id}/auth_token"),
            Self::Bot(id) => format!("switchboard/session.bots/{id}/secret"),
            Self::WebhookKey(id) => format!("switchboard/session.webhook_keys/{id}/secret"),
        }
    }
}

const URL_KEY_LABEL: &[u8] = b"switchboard/session/file-urls/v1";

/// Seals and opens auth tokens, and signs the URLs uploaded files are served at (with keys
/// derived from the same key material, so rotating one rotates the other).
pub struct TokenCipher {
    keys: BTreeMap<String, LessSafeKey>,
    url_keys: BTreeMap<String, hmac::Key>,
    active: String,
    rng: SystemRandom,
}

impl std::fmt::Debug for TokenCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCipher")
            .field("active", &self.active)
            .field("key_ids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl TokenCipher {
    /// Builds the cipher from the configured keys (id → base64 of 32 bytes) and the id of the
    /// one new secrets are sealed with (empty: the only key).
    pub fn from_keys(token_keys: &BTreeMap<String, SecretString>, token_active_key: &str) -> Result<Self, String> {
        let mut keys = BTreeMap::new();
        let mut url_keys = BTreeMap::new();
        for (id, encoded) in token_keys {
            let bytes = STANDARD
                .decode(encoded.expose_secret().trim())
                .map_err(|_| format!("key {id} is not base64"))?;
            let unbound = UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| format!("key {id} must be exactly 32 bytes"))?;
            keys.insert(id.clone(), LessSafeKey::new(unbound));
            // A separate key for URL signatures: HMAC of a fixed label under the token key, so
            // a signature never reveals anything about the key that seals tokens.
            let derived = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &bytes), URL_KEY_LABEL);
            url_keys.insert(id.clone(), hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()));
        }
        let active = if token_active_key.is_empty() && keys.len() == 1 {
            keys.keys().next().cloned().unwrap_or_default()
        } else {
            token_active_key.to_owned()
        };
        if !keys.contains_key(&active) {
            return Err(format!("token_active_key {active:?} is not one of token_keys"));
        }
        Ok(Self {
            keys,
            url_keys,
            active,
            rng: SystemRandom::new(),
        })
    }

    /// Returns the id of the key new tokens are sealed with.
    pub fn active_key(&self) -> &str {
        &self.active
    }

    /// Seals `token` for `owner`; returns (key id, nonce ‖ ciphertext ‖ tag).
    pub fn seal(&self, token: &str, owner: Owner) -> Result<(String, Vec<u8>), String> {
        let key = self.keys.get(&self.active).ok_or("no active key")?;
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| "no randomness")?;
        let mut sealed = token.as_bytes().to_vec();
        let aad = owner.associated_data();
        key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad.as_bytes()), &mut sealed)
            .map_err(|_| "seal failed")?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok((self.active.clone(), out))
    }

    /// Signs `message` (a file id and an expiry) for a URL; returns (key id, base64url signature).
    pub fn sign_url(&self, message: &str) -> (String, String) {
        let signature = self
            .url_keys
            .get(&self.active)
            .map(|key| URL_SAFE_NO_PAD.encode(hmac::sign(key, message.as_bytes())))
            .unwrap_or_default();
        (self.active.clone(), signature)
    }

    /// Returns whether `signature` is key `key_id`'s signature of `message` (constant time).
    pub fn verify_url(&self, key_id: &str, message: &str, signature: &str) -> bool {
        let (Some(key), Ok(tag)) = (self.url_keys.get(key_id), URL_SAFE_NO_PAD.decode(signature)) else {
            return false;
        };
        hmac::verify(key, message.as_bytes(), &tag).is_ok()
    }

    /// Opens a token sealed with key `key_id` for `owner`; `bound` is false for a row sealed
    /// before secrets were bound to their row (opened without associated data).
    pub fn open(&self, key_id: &str, sealed: &[u8], owner: Owner, bound: bool) -> Result<SecretString, String> {
        let key = self
            .keys
            .get(key_id)
            .ok_or_else(|| format!("token sealed with unknown key {key_id}"))?;
        if sealed.len() < NONCE_LEN {
            return Err("sealed token too short".into());
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| "bad nonce")?;
        let mut buffer = ciphertext.to_vec();
        let aad = if bound { owner.associated_data() } else { String::new() };
        let plain = key
            .open_in_place(nonce, Aad::from(aad.as_bytes()), &mut buffer)
            .map_err(|_| "token does not decrypt (wrong key, another row's, or tampered)")?;
        let token = String::from_utf8(plain.to_vec()).map_err(|_| "token is not UTF-8")?;
        Ok(SecretString::from(token))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher(keys: &[(&str, [u8; 32])], active: &str) -> Result<TokenCipher, String> {
        let keys = keys
            .iter()
            .map(|(id, key)| ((*id).to_owned(), SecretString::from(STANDARD.encode(key))))
            .collect();
        TokenCipher::from_keys(&keys, active)
    }

    #[test]
    fn seals_opens_and_rotates() {
        let owner = Owner::Channel(Uuid::now_v7());
        let old = cipher(&[("k1", [1; 32])], "k1").unwrap();
        let (id, sealed) = old.seal("0123456789abcdef0123456789abcdef", owner).unwrap();
        assert_eq!(id, "k1");
        assert!(
            !sealed.windows(8).any(|w| w == b"01234567"),
            "ciphertext does not contain the token"
        );
        let rotated = cipher(&[("k1", [1; 32]), ("k2", [2; 32])], "k2").unwrap();
        assert_eq!(
            rotated.open(&id, &sealed, owner, true).unwrap().expose_secret(),
            "0123456789abcdef0123456789abcdef"
        );
        let (id2, resealed) = rotated.seal("0123456789abcdef0123456789abcdef", owner).unwrap();
        assert_eq!(id2, "k2");
        assert_ne!(resealed, sealed, "fresh nonce");
        let mut tampered = sealed.clone();
        tampered[20] ^= 1;
        assert!(rotated.open("k1", &tampered, owner, true).is_err());
        assert!(rotated.open("k9", &sealed, owner, true).is_err());
    }

    #[test]
    fn a_secret_opens_only_for_its_own_row() {
        let cipher = cipher(&[("k1", [1; 32])], "k1").unwrap();
        let id = Uuid::now_v7();
        let (key, sealed) = cipher.seal("secret", Owner::Channel(id)).unwrap();
        assert!(
            cipher.open(&key, &sealed, Owner::Channel(Uuid::now_v7()), true).is_err(),
            "another channel"
        );
        assert!(cipher.open(&key, &sealed, Owner::Bot(id), true).is_err(), "a bot with the same id");
        assert!(
            cipher.open(&key, &sealed, Owner::Channel(id), false).is_err(),
            "not as an unbound row"
        );
        assert_eq!(
            cipher.open(&key, &sealed, Owner::Channel(id), true).unwrap().expose_secret(),
            "secret"
        );
    }

    #[test]
    fn a_row_sealed_before_binding_still_opens() {
        let cipher = cipher(&[("k1", [1; 32])], "k1").unwrap();
        let key = cipher.keys.get("k1").unwrap();
        let nonce = [9u8; NONCE_LEN];
        let mut legacy = b"old-token".to_vec();
        key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut legacy)
            .unwrap();
        let sealed = [nonce.to_vec(), legacy].concat();
        let owner = Owner::Channel(Uuid::now_v7());
        assert_eq!(cipher.open("k1", &sealed, owner, false).unwrap().expose_secret(), "old-token");
        assert!(cipher.open("k1", &sealed, owner, true).is_err());
    }

    #[test]
    fn url_signatures_verify_under_their_key_only_and_survive_rotation() {
        let old = cipher(&[("k1", [1; 32])], "k1").unwrap();
        let (key, signature) = old.sign_url("file-1/1700000000");
        assert_eq!(key, "k1");
        assert!(old.verify_url("k1", "file-1/1700000000", &signature));
        assert!(!old.verify_url("k1", "file-1/1700000001", &signature), "another expiry");
        assert!(!old.verify_url("k1", "file-2/1700000000", &signature), "another file");
        assert!(!old.verify_url("k2", "file-1/1700000000", &signature), "unknown key");
        assert!(!old.verify_url("k1", "file-1/1700000000", "not base64!"));
        let rotated = cipher(&[("k1", [1; 32]), ("k2", [2; 32])], "k2").unwrap();
        assert!(
            rotated.verify_url("k1", "file-1/1700000000", &signature),
            "URLs signed before rotation"
        );
        let (key2, signature2) = rotated.sign_url("file-1/1700000000");
        assert_eq!(key2, "k2");
        assert_ne!(signature2, signature);
        let other = cipher(&[("k1", [3; 32])], "k1").unwrap();
        assert!(!other.verify_url("k1", "file-1/1700000000", &signature), "another deployment's key");
    }

    #[test]
    fn bad_keys_are_refused() {
        let short = BTreeMap::from([("k1".to_owned(), SecretString::from("c2hvcnQ=".to_owned()))]);
        assert!(TokenCipher::from_keys(&short, "k1").unwrap_err().contains("32 bytes"));
        assert!(cipher(&[("k1", [1; 32])], "k2").is_err());
    }
}

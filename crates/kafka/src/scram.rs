//! The client side of SCRAM (RFC 5802) with SHA-256 and SHA-512 (RFC 7677), as Kafka's
//! `SCRAM-SHA-256` / `SCRAM-SHA-512` SASL mechanisms use it: no channel binding (`n,,`), the
//! user name escaped (`=` → `=2C`... see [`escape`]), the password used as given.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

/// Iteration counts above this are refused: a hostile server could otherwise make the client
/// spin for minutes (Kafka's own maximum is 16384).
const MAX_ITERATIONS: u32 = 100_000;

/// The hash a SCRAM mechanism is built on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScramHash {
    Sha256,
    Sha512,
}

impl ScramHash {
    fn hmac(self, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        match self {
            ScramHash::Sha256 => {
                let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key size");
                for p in parts {
                    mac.update(p);
                }
                mac.finalize().into_bytes().to_vec()
            }
            ScramHash::Sha512 => {
                let mut mac = Hmac::<Sha512>::new_from_slice(key).expect("HMAC takes any key size");
                for p in parts {
                    mac.update(p);
                }
                mac.finalize().into_bytes().to_vec()
            }
        }
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            ScramHash::Sha256 => Sha256::digest(data).to_vec(),
            ScramHash::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    /// PBKDF2 with HMAC of this hash, one block (the output is one hash long): `Hi()` of RFC 5802.
    fn hi(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        let mut u = self.hmac(password, &[salt, &1u32.to_be_bytes()]);
        let mut out = u.clone();
        for _ in 1..iterations {
            u = self.hmac(password, &[&u]);
            for (o, x) in out.iter_mut().zip(&u) {
                *o ^= x;
            }
        }
        out
    }
}

/// A SCRAM exchange in progress: [`Scram::client_first`] → the server's first message into
/// [`Scram::client_final`] → the server's final message into [`Scram::verify_server`].
#[derive(Debug)]
pub struct Scram {
    hash: ScramHash,
    password: String,
    client_first_bare: String,
    nonce: String,
    /// After `client_final`: the AuthMessage and the salted password, to check the server.
    auth: Option<(String, Vec<u8>)>,
}

/// `=` and `,` written as `=3D` and `=2C`, as RFC 5802 requires in `n=`.
fn escape(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

impl Scram {
    /// A new exchange for `user` with `nonce` (printable ASCII without `,`; callers use
    /// [`random_nonce`]).
    pub fn new(hash: ScramHash, user: &str, password: &str, nonce: &str) -> Scram {
        Scram {
            hash,
            password: password.to_string(),
            client_first_bare: format!("n={},r={nonce}", escape(user)),
            nonce: nonce.to_string(),
            auth: None,
        }
    }

    /// The client's first message.
    pub fn client_first(&self) -> String {
        format!("n,,{}", self.client_first_bare)
    }

    /// The client's final message (with the proof), computed from the server's first message.
    pub fn client_final(&mut self, server_first: &[u8]) -> Result<String, String> {
        let server_first = std::str::from_utf8(server_first)
            .map_err(|_| "the server's first SCRAM message is not UTF-8".to_string())?;
        let (mut nonce, mut salt, mut iterations) = (None, None, None);
        for attr in server_first.split(',') {
            match attr.split_once('=') {
                Some(("r", v)) => nonce = Some(v),
                Some(("s", v)) => salt = Some(v),
                Some(("i", v)) => iterations = Some(v),
                Some(("e", v)) => return Err(format!("the server refused: {v}")),
                _ => {}
            }
        }
        let (Some(nonce), Some(salt), Some(iterations)) = (nonce, salt, iterations) else {
            return Err(format!("malformed SCRAM server message {server_first:?}"));
        };
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err("the server's SCRAM nonce does not extend the client's".into());
        }
        let salt = B64
            .decode(salt)
            .map_err(|_| "the server's SCRAM salt is not base64".to_string())?;
        let iterations: u32 = iterations
            .parse()
            .map_err(|_| format!("bad SCRAM iteration count {iterations:?}"))?;
        if iterations == 0 || iterations > MAX_ITERATIONS {
            return Err(format!(
                "SCRAM iteration count {iterations} is outside 1..={MAX_ITERATIONS}"
            ));
        }
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let salted = self.hash.hi(self.password.as_bytes(), &salt, iterations);
        let client_key = self.hash.hmac(&salted, &[b"Client Key"]);
        let stored_key = self.hash.hash(&client_key);
        let signature = self.hash.hmac(&stored_key, &[auth_message.as_bytes()]);
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(a, b)| a ^ b)
            .collect();
        self.auth = Some((auth_message, salted));
        Ok(format!("{without_proof},p={}", B64.encode(proof)))
    }

    /// Check the server's final message: it must prove that the server knows the password too.
    pub fn verify_server(&self, server_final: &[u8]) -> Result<(), String> {
        let Some((auth_message, salted)) = &self.auth else {
            return Err("SCRAM exchange out of order".into());
        };
        let text = String::from_utf8_lossy(server_final);
        if let Some(e) = text.strip_prefix("e=") {
            return Err(format!("the server refused: {e}"));
        }
        let Some(v) = text.split(',').find_map(|a| a.strip_prefix("v=")) else {
            return Err(format!("malformed SCRAM server final message {text:?}"));
        };
        let server_key = self.hash.hmac(salted, &[b"Server Key"]);
        let expected = self.hash.hmac(&server_key, &[auth_message.as_bytes()]);
        if B64.decode(v).ok().as_deref() == Some(expected.as_slice()) {
            Ok(())
        } else {
            Err("the server's SCRAM signature is wrong (it does not know the password)".into())
        }
    }
}

/// A fresh client nonce: 24 random bytes from the OS, base64 (no `,` in that alphabet).
pub fn random_nonce() -> Result<String, String> {
    let mut bytes = [0u8; 24];
    getrandom::getrandom(&mut bytes).map_err(|e| format!("no random numbers: {e}"))?;
    Ok(B64.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 section 3: the SCRAM-SHA-256 example exchange, byte for byte.
    #[test]
    fn rfc7677_sha256_vector() {
        let mut s = Scram::new(ScramHash::Sha256, "user", "pencil", "rOprNGfwEbeRWgbNEkqO");
        assert_eq!(s.client_first(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                            s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let client_final = s.client_final(server_first.as_bytes()).unwrap();
        assert_eq!(
            client_final,
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
             p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        s.verify_server(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
        let forged = s.verify_server(b"v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
        assert!(forged.unwrap_err().contains("signature is wrong"));
    }

    #[test]
    fn hostile_server_messages_are_errors() {
        let mut s = Scram::new(ScramHash::Sha512, "a=b,c", "pw", "abc");
        assert_eq!(s.client_first(), "n,,n=a=3Db=2Cc,r=abc");
        for bad in [
            &b"r=xyz,s=AAAA,i=1"[..],
            b"r=abc,s=AAAA,i=1",
            b"r=abcd,s=!!,i=1",
            b"r=abcd,s=AAAA,i=0",
            b"r=abcd,s=AAAA,i=99999999",
            b"e=invalid-proof",
            b"\xff\xfe",
            b"",
        ] {
            assert!(s.client_final(bad).is_err(), "{bad:?}");
        }
        assert!(s.verify_server(b"v=abc").is_err());
    }

    #[test]
    fn nonces_differ() {
        assert_ne!(random_nonce().unwrap(), random_nonce().unwrap());
    }
}

//! TC3-HMAC-SHA256: the request signature of Tencent Cloud API 3.0 (used by the Tencent SMS
//! channel and by Kafka lag read through the CKafka API). Pure functions, no I/O; checked
//! against the official examples.
//!
//! For a `POST` of a JSON body to `/` with no query string:
//!
//! 1. **CanonicalRequest** = `POST\n/\n\n` + the signed headers as `name:value\n` (names and
//!    values lower-cased and trimmed, sorted by name) + `\n` + SignedHeaders (the names joined
//!    by `;`) + `\n` + hex(SHA-256(body)).
//! 2. **StringToSign** = `TC3-HMAC-SHA256\n{timestamp}\n{date}/{service}/tc3_request\n` +
//!    hex(SHA-256(CanonicalRequest)), where `date` is the **UTC** date of the timestamp
//!    (`YYYY-MM-DD`; a local date is wrong between 00:00 and 08:00 in UTC+8).
//! 3. **SecretSigning** = HMAC(HMAC(HMAC("TC3" + SecretKey, date), service), "tc3_request").
//! 4. **Signature** = hex(HMAC(SecretSigning, StringToSign)), sent as
//!    `Authorization: TC3-HMAC-SHA256 Credential={SecretId}/{date}/{service}/tc3_request,
//!    SignedHeaders={names}, Signature={signature}`.
//!
//! The signed headers must be sent exactly as signed (the `Host` header in particular: for
//! a test server that is `127.0.0.1:PORT`). The server rejects a timestamp more than five
//! minutes away from its clock (`AuthFailure.SignatureExpire`).
//!
//! ```
//! use watchpost_net::tc3;
//! let body = br#"{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}"#;
//! let signed = tc3::sign(
//!     "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE",
//!     "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
//!     "cvm",
//!     1551113065,
//!     &[("Content-Type", "application/json; charset=utf-8"), ("Host", "cvm.tencentcloudapi.com")],
//!     body,
//! );
//! assert!(signed.authorization.ends_with(
//!     "Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
//! ));
//! ```

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The algorithm name, first word of the `Authorization` header.
pub const ALGORITHM: &str = "TC3-HMAC-SHA256";

/// A signed request: the intermediate values (for tests and debugging) and the header.
/// Holds no secret key; `authorization` names the SecretId.
#[derive(Clone, PartialEq, Eq)]
pub struct Signed {
    /// Step 1.
    pub canonical_request: String,
    /// hex(SHA-256(body)), the last line of the canonical request.
    pub hashed_payload: String,
    /// hex(SHA-256(canonical request)).
    pub hashed_canonical_request: String,
    /// Step 2.
    pub string_to_sign: String,
    /// `YYYY-MM-DD`, the UTC date of the timestamp.
    pub date: String,
    /// The header names, lower-case, sorted, joined by `;`.
    pub signed_headers: String,
    /// Step 4, lower-case hex.
    pub signature: String,
    /// The `Authorization` header value.
    pub authorization: String,
}

impl std::fmt::Debug for Signed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signed")
            .field("signed_headers", &self.signed_headers)
            .field("date", &self.date)
            .field("signature", &self.signature)
            .finish_non_exhaustive()
    }
}

/// Sign a `POST /` of `body` to `service` at `timestamp` (Unix seconds), covering `headers`
/// (name, value as sent; at least `content-type` and `host`).
pub fn sign(
    secret_id: &str,
    secret_key: &str,
    service: &str,
    timestamp: i64,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Signed {
    let mut canonical: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_lowercase()))
        .collect();
    canonical.sort();
    let signed_headers = canonical
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical_headers: String = canonical
        .iter()
        .map(|(k, v)| format!("{k}:{v}\n"))
        .collect();
    let hashed_payload = hex::encode(Sha256::digest(body));
    let canonical_request =
        format!("POST\n/\n\n{canonical_headers}\n{signed_headers}\n{hashed_payload}");
    let hashed_canonical_request = hex::encode(Sha256::digest(canonical_request.as_bytes()));

    let date = utc_date(timestamp);
    let scope = format!("{date}/{service}/tc3_request");
    let string_to_sign = format!("{ALGORITHM}\n{timestamp}\n{scope}\n{hashed_canonical_request}");
    let key = secret_signing(secret_key, &date, service);
    let signature = hex::encode(hmac(&key, string_to_sign.as_bytes()));
    let authorization = format!(
        "{ALGORITHM} Credential={secret_id}/{scope}, SignedHeaders={signed_headers}, \
         Signature={signature}"
    );
    Signed {
        canonical_request,
        hashed_payload,
        hashed_canonical_request,
        string_to_sign,
        date,
        signed_headers,
        signature,
        authorization,
    }
}

/// Step 3: the derived signing key for `date` (`YYYY-MM-DD`) and `service`. Secret: valid
/// for that day and service.
pub fn secret_signing(secret_key: &str, date: &str, service: &str) -> [u8; 32] {
    let k_date = hmac(format!("TC3{secret_key}").as_bytes(), date.as_bytes());
    let k_service = hmac(&k_date, service.as_bytes());
    hmac(&k_service, b"tc3_request")
}

/// `YYYY-MM-DD` in UTC for a Unix timestamp in seconds.
pub fn utc_date(timestamp: i64) -> String {
    chrono::DateTime::from_timestamp(timestamp, 0)
        .unwrap_or_default()
        .format("%Y-%m-%d")
        .to_string()
}

fn hmac(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The CVM DescribeInstances example of the official docs, byte-exact (ASCII-escaped).
    const CVM_BODY: &[u8] =
        br#"{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}"#;
    const TS: i64 = 1551113065;
    const CT: &str = "application/json; charset=utf-8";
    const CVM_HOST: &str = "cvm.tencentcloudapi.com";

    #[test]
    fn official_vector_en_doc() {
        let s = sign(
            "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE",
            "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
            "cvm",
            TS,
            &[("Content-Type", CT), ("Host", CVM_HOST)],
            CVM_BODY,
        );
        assert_eq!(
            s.hashed_payload,
            "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
        );
        assert_eq!(
            s.canonical_request,
            "POST\n/\n\ncontent-type:application/json; charset=utf-8\n\
             host:cvm.tencentcloudapi.com\n\ncontent-type;host\n\
             35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
        );
        assert_eq!(
            s.hashed_canonical_request,
            "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
        );
        assert_eq!(
            s.string_to_sign,
            "TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n\
             5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
        );
        assert_eq!(
            s.signature,
            "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
        );
        assert_eq!(
            s.authorization,
            "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/\
             tc3_request, SignedHeaders=content-type;host, \
             Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
        );
    }

    #[test]
    fn official_vector_older_cn_doc_with_literal_asterisks() {
        let s = sign(
            "AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******",
            "Gu5t9xGARNpq86cd98joQYCN3*******",
            "cvm",
            TS,
            &[("content-type", CT), ("host", CVM_HOST)],
            CVM_BODY,
        );
        assert_eq!(
            s.hashed_canonical_request,
            "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
        );
        assert_eq!(
            s.signature,
            "2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c"
        );
        assert!(s.authorization.starts_with(
            "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******/2019-02-25/cvm/"
        ));
    }

    #[test]
    fn official_vector_current_cn_doc_with_action_signed() {
        let secret_id = format!("AKID{}", "*".repeat(32));
        let secret_key = "*".repeat(32);
        // Headers in any order and case: the value of X-TC-Action is signed lower-cased.
        let s = sign(
            &secret_id,
            &secret_key,
            "cvm",
            TS,
            &[
                ("X-TC-Action", "DescribeInstances"),
                ("Host", CVM_HOST),
                ("Content-Type", CT),
            ],
            CVM_BODY,
        );
        assert!(
            s.canonical_request
                .contains("\nx-tc-action:describeinstances\n\ncontent-type;host;x-tc-action\n"),
            "{}",
            s.canonical_request
        );
        assert_eq!(
            s.hashed_canonical_request,
            "7019a55be8395899b900fb5564e4200d984910f34794a27cb3fb7d10ff6a1e84"
        );
        assert_eq!(
            hex::encode(secret_signing(&secret_key, "2019-02-25", "cvm")),
            "b596b923aad85185e2d1f6659d2a062e0a86731226e021e61bfe06f7ed05f5af"
        );
        assert_eq!(
            s.signature,
            "10b1a37a7301a02ca19a647ad722d5e43b4b3cff309d421d85b46093f6ab6c4f"
        );
        assert!(
            s.authorization
                .contains("SignedHeaders=content-type;host;x-tc-action, ")
        );
    }

    #[test]
    fn send_sms_vector() {
        let body = r#"{"PhoneNumberSet":["+8618511122233"],"SmsSdkAppId":"1400006666","SignName":"腾讯云","TemplateId":"1110","TemplateParamSet":["1234"]}"#;
        let s = sign(
            "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE",
            "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
            "sms",
            TS,
            &[("content-type", CT), ("host", "sms.tencentcloudapi.com")],
            body.as_bytes(),
        );
        assert!(
            s.hashed_payload.starts_with("8eaab3da"),
            "{}",
            s.hashed_payload
        );
        assert!(s.hashed_payload.ends_with("4bc5"), "{}", s.hashed_payload);
        assert_eq!(
            s.signature,
            "bb0fcf4d14b0c16ddc8ec1fb397a587d0a23e15ea45c543fa58b6a6e01d601ff"
        );
        assert!(
            s.authorization
                .contains("/2019-02-25/sms/tc3_request, SignedHeaders=content-type;host, ")
        );
    }

    #[test]
    fn the_date_is_utc() {
        // 2019-02-25 23:30 UTC is already 2019-02-26 in UTC+8: the scope keeps the UTC day.
        assert_eq!(utc_date(1551137400), "2019-02-25");
        assert_eq!(utc_date(1551139200), "2019-02-26");
        assert_eq!(utc_date(0), "1970-01-01");
    }

    #[test]
    fn debug_shows_no_intermediate_secrets() {
        let s = sign("AKIDx", "SECRETKEY", "sms", TS, &[("host", "h")], b"{}");
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("SECRETKEY") && !shown.contains("AKIDx"),
            "{shown}"
        );
    }
}

//! The STS XML documents: the `AssumeRoleWithWebIdentityResponse` and the `ErrorResponse`,
//! and the RFC 3339 timestamps in them.

use std::fmt::Write as _;

use rangecache_dataplane::auth::AmzDate;

use super::error::StsError;

/// The STS XML namespace.
pub const NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

/// Everything a successful response carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assumed {
    /// The token's `sub`.
    pub subject: String,
    /// The `aud` value that matched the role.
    pub audience: String,
    /// The role assumed.
    pub role: String,
    /// `RoleSessionName`.
    pub session_name: String,
    /// `AROA...`: the role's id.
    pub role_id: String,
    /// `ASIA...`.
    pub access_key_id: String,
    /// The temporary secret.
    pub secret_access_key: String,
    /// The sealed session token.
    pub session_token: String,
    /// When the credentials expire, Unix seconds.
    pub expires_at: u64,
    /// The token's issuer.
    pub provider: String,
}

/// `text` escaped for XML character data (the S3 error documents' escaper).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    rangecache_dataplane::s3::escape_xml(text, &mut out);
    out
}

/// The success document.
pub fn success(a: &Assumed, request_id: &str) -> String {
    let e = escape;
    let mut out = String::with_capacity(1024 + a.session_token.len());
    let _ = write!(
        out,
        "<AssumeRoleWithWebIdentityResponse xmlns=\"{NAMESPACE}\">\n\
         \x20 <AssumeRoleWithWebIdentityResult>\n\
         \x20   <SubjectFromWebIdentityToken>{}</SubjectFromWebIdentityToken>\n\
         \x20   <Audience>{}</Audience>\n\
         \x20   <AssumedRoleUser>\n\
         \x20     <Arn>arn:aws:sts::000000000000:assumed-role/{}/{}</Arn>\n\
         \x20     <AssumedRoleId>{}:{}</AssumedRoleId>\n\
         \x20   </AssumedRoleUser>\n\
         \x20   <Credentials>\n\
         \x20     <AccessKeyId>{}</AccessKeyId>\n\
         \x20     <SecretAccessKey>{}</SecretAccessKey>\n\
         \x20     <SessionToken>{}</SessionToken>\n\
         \x20     <Expiration>{}</Expiration>\n\
         \x20   </Credentials>\n\
         \x20   <Provider>{}</Provider>\n\
         \x20 </AssumeRoleWithWebIdentityResult>\n\
         \x20 <ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata>\n\
         </AssumeRoleWithWebIdentityResponse>\n",
        e(&a.subject),
        e(&a.audience),
        e(&a.role),
        e(&a.session_name),
        e(&a.role_id),
        e(&a.session_name),
        e(&a.access_key_id),
        e(&a.secret_access_key),
        e(&a.session_token),
        rfc3339(a.expires_at),
        e(&a.provider),
        e(request_id),
    );
    out
}

/// The error document.
pub fn error(err: &StsError, request_id: &str) -> String {
    format!(
        "<ErrorResponse xmlns=\"{NAMESPACE}\">\n\
         \x20 <Error>\n\
         \x20   <Type>{}</Type>\n\
         \x20   <Code>{}</Code>\n\
         \x20   <Message>{}</Message>\n\
         \x20 </Error>\n\
         \x20 <RequestId>{}</RequestId>\n\
         </ErrorResponse>\n",
        err.code.fault(),
        err.code.as_str(),
        escape(&err.message),
        escape(request_id)
    )
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ` (years up to 9999).
pub fn rfc3339(unix_secs: u64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix_secs);
    AmzDate::from_system_time(time)
        .map_or_else(|| "9999-12-31T23:59:59Z".to_owned(), |d| d.rfc3339())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sts::error::StsCode;

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_709_251_199), "2024-02-29T23:59:59Z");
        assert_eq!(rfc3339(1_795_435_200), "2026-11-23T12:00:00Z");
        assert_eq!(rfc3339(4_102_444_800), "2100-01-01T00:00:00Z");
        // Every day boundary for ~30 years agrees with a day-by-day walk.
        let (mut y, mut m, mut d) = (1970u64, 1u64, 1u64);
        for days in 0..11_000 {
            assert_eq!(
                rfc3339(days * 86_400),
                format!("{y:04}-{m:02}-{d:02}T00:00:00Z"),
                "day {days}"
            );
            let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
            let len = [
                31,
                if leap { 29 } else { 28 },
                31,
                30,
                31,
                30,
                31,
                31,
                30,
                31,
                30,
                31,
            ];
            d += 1;
            if d > len[(m - 1) as usize] {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
    }

    #[test]
    fn escapes_and_renders_errors() {
        assert_eq!(escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&apos;");
        let doc = error(&StsError::new(StsCode::AccessDenied, "no <way>"), "req-1");
        assert!(doc.contains("<Type>Sender</Type>"));
        assert!(doc.contains("<Code>AccessDenied</Code>"));
        assert!(doc.contains("<Message>no &lt;way&gt;</Message>"));
        assert!(doc.contains("<RequestId>req-1</RequestId>"));
    }
}

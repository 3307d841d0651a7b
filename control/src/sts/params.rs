//! The parameters of an `AssumeRoleWithWebIdentity` request, decoded from a form body or a
//! query string and checked as AWS checks them.

use super::error::{StsCode, StsError};
use crate::config::auth::valid_role_name;

/// The only action served.
pub const ACTION: &str = "AssumeRoleWithWebIdentity";

/// The only API version served.
pub const VERSION: &str = "2011-06-15";

/// Shortest `DurationSeconds` (15 minutes).
pub const MIN_DURATION_SECS: u64 = 900;

/// Longest `DurationSeconds` (12 hours).
pub const MAX_DURATION_SECS: u64 = 43_200;

/// Longest `WebIdentityToken` accepted, as AWS.
pub const MAX_TOKEN_CHARS: usize = 20_000;

/// A checked request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssumeRole {
    /// The role name: the last path segment of `RoleArn`.
    pub role: String,
    /// `RoleSessionName`.
    pub session_name: String,
    /// `WebIdentityToken`, not yet verified.
    pub token: String,
    /// `DurationSeconds`, if given (900 to 43200).
    pub duration_secs: Option<u64>,
}

/// Check `pairs` (decoded form or query parameters). Parameters AWS defines that rangecache
/// has no use for (`ProviderId`) and unknown ones are ignored; session policies (`Policy`,
/// `PolicyArns.member.N.arn`) are refused rather than silently widened.
pub fn parse(pairs: &[(String, String)]) -> Result<AssumeRole, StsError> {
    let get = |name: &str| -> Result<Option<&str>, StsError> {
        let mut found = pairs
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str());
        let first = found.next();
        if found.next().is_some() {
            return Err(StsError::validation(format!(
                "parameter {name} is given more than once"
            )));
        }
        Ok(first)
    };
    match get("Action")? {
        Some(ACTION) => {}
        Some(other) => {
            return Err(StsError::new(
                StsCode::InvalidAction,
                format!("Could not find operation {other} for version {VERSION}"),
            ))
        }
        None => return Err(StsError::validation("parameter Action is required")),
    }
    if let Some(v) = get("Version")?.filter(|v| *v != VERSION) {
        return Err(StsError::validation(format!(
            "unsupported Version {v:?}; use {VERSION}"
        )));
    }
    if pairs
        .iter()
        .any(|(n, _)| n == "Policy" || n.starts_with("PolicyArns."))
    {
        return Err(StsError::validation(
            "session policies (Policy, PolicyArns) are not supported",
        ));
    }
    let required = |name: &str| -> Result<&str, StsError> {
        get(name)?
            .filter(|v| !v.is_empty())
            .ok_or_else(|| StsError::validation(format!("parameter {name} is required")))
    };
    let role = role_name(required("RoleArn")?)?;
    let session_name = required("RoleSessionName")?;
    let session_ok = (2..=64).contains(&session_name.len())
        && session_name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b));
    if !session_ok {
        return Err(StsError::validation(
            "RoleSessionName must be 2 to 64 characters of [\\w+=,.@-]",
        ));
    }
    let token = required("WebIdentityToken")?;
    if token.len() < 4 || token.len() > MAX_TOKEN_CHARS {
        return Err(StsError::validation(format!(
            "WebIdentityToken must be 4 to {MAX_TOKEN_CHARS} characters"
        )));
    }
    let duration_secs = match get("DurationSeconds")? {
        None => None,
        Some(v) => match v.parse::<u64>() {
            Ok(d) if (MIN_DURATION_SECS..=MAX_DURATION_SECS).contains(&d) => Some(d),
            _ => {
                return Err(StsError::validation(format!(
                    "DurationSeconds must be an integer from {MIN_DURATION_SECS} to \
                     {MAX_DURATION_SECS}, got {v:?}"
                )))
            }
        },
    };
    Ok(AssumeRole {
        role,
        session_name: session_name.to_owned(),
        token: token.to_owned(),
        duration_secs,
    })
}

/// The role name of `arn:<partition>:iam::<account>:role/<path/>name`.
fn role_name(arn: &str) -> Result<String, StsError> {
    let bad = || StsError::validation(format!("RoleArn {arn:?} is not an IAM role ARN"));
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [prefix, partition, service, _region, _account, resource] = parts[..] else {
        return Err(bad());
    };
    if prefix != "arn" || partition.is_empty() || service != "iam" || arn.len() > 2048 {
        return Err(bad());
    }
    let name = resource
        .strip_prefix("role/")
        .and_then(|path| path.rsplit('/').next())
        .filter(|name| valid_role_name(name))
        .ok_or_else(bad)?;
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn good() -> Vec<(&'static str, &'static str)> {
        vec![
            ("Action", "AssumeRoleWithWebIdentity"),
            ("Version", "2011-06-15"),
            ("RoleArn", "arn:aws:iam::123456789012:role/team/analytics"),
            ("RoleSessionName", "job-1@x.y"),
            ("WebIdentityToken", "a.b.c"),
        ]
    }

    fn err(list: &[(&str, &str)]) -> StsError {
        parse(&pairs(list)).unwrap_err()
    }

    #[test]
    fn parses_a_good_request() {
        let r = parse(&pairs(&good())).unwrap();
        assert_eq!(r.role, "analytics");
        assert_eq!(r.session_name, "job-1@x.y");
        assert_eq!(r.token, "a.b.c");
        assert_eq!(r.duration_secs, None);
        let mut p = good();
        p.push(("DurationSeconds", "900"));
        p.push(("ProviderId", "ignored"));
        p.retain(|(n, _)| *n != "Version");
        assert_eq!(parse(&pairs(&p)).unwrap().duration_secs, Some(900));
    }

    #[test]
    fn rejects_bad_requests() {
        let with = |name: &'static str, value: &'static str| {
            let mut p = good();
            p.retain(|(n, _)| *n != name);
            p.push((name, value));
            err(&p)
        };
        let without = |name: &str| {
            let mut p = good();
            p.retain(|(n, _)| *n != name);
            err(&p)
        };
        assert_eq!(
            with("Action", "GetCallerIdentity").code,
            StsCode::InvalidAction
        );
        for e in [
            without("Action"),
            without("RoleArn"),
            without("RoleSessionName"),
            without("WebIdentityToken"),
            with("Version", "2012-01-01"),
            with("RoleArn", "analytics"),
            with("RoleArn", "arn:aws:iam::1:user/analytics"),
            with("RoleArn", "arn:aws:s3:::bucket"),
            with("RoleArn", "arn:aws:iam::1:role/"),
            with("RoleSessionName", "x"),
            with("RoleSessionName", "has space"),
            with("RoleSessionName", &*"a".repeat(65).leak()),
            with("WebIdentityToken", "abc"),
            with("DurationSeconds", "899"),
            with("DurationSeconds", "43201"),
            with("DurationSeconds", "1h"),
            with("Policy", "{}"),
            with("PolicyArns.member.1.arn", "arn:aws:iam::aws:policy/x"),
        ] {
            assert_eq!(e.code, StsCode::ValidationError, "{e}");
        }
        let mut twice = good();
        twice.push(("RoleArn", "arn:aws:iam::1:role/other"));
        assert!(err(&twice).message.contains("more than once"));
    }
}

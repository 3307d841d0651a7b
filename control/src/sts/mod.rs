//! STS `AssumeRoleWithWebIdentity` on the admin listener: a web identity token (a JWT from a
//! trusted issuer) is exchanged for temporary S3 credentials whose session token the data
//! plane opens itself (see `docs/auth-spec.md`).

pub mod jwks;
pub mod jwt;

#[cfg(test)]
pub(crate) mod testkeys;

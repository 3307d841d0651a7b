//! Random identifiers and secrets for temporary credentials, from the system's secure random
//! source (`ring::rand::SystemRandom`).

use ring::digest;
use ring::rand::{SecureRandom, SystemRandom};

const UPPER_ALNUM: &[u8; 36] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const SECRET_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Random bytes; `None` only if the system random source fails.
fn random<const N: usize>() -> Option<[u8; N]> {
    let mut out = [0u8; N];
    SystemRandom::new().fill(&mut out).ok()?;
    Some(out)
}

/// `n` characters drawn uniformly from `alphabet` (at most 256 symbols), by rejection.
fn random_string(alphabet: &[u8], n: usize) -> Option<String> {
    // The largest multiple of the alphabet's size that fits a byte: bytes above it are
    // redrawn so that every symbol is equally likely.
    let limit = 256 - 256 % alphabet.len();
    let mut out = String::with_capacity(n);
    while out.len() < n {
        for b in random::<64>()? {
            if usize::from(b) < limit && out.len() < n {
                out.push(char::from(alphabet[usize::from(b) % alphabet.len()]));
            }
        }
    }
    Some(out)
}

/// A temporary access key id: `ASIA` and 16 upper-case letters or digits.
pub fn access_key_id() -> Option<String> {
    Some(format!("ASIA{}", random_string(UPPER_ALNUM, 16)?))
}

/// A temporary secret access key: 40 characters of `[A-Za-z0-9+/]`.
pub fn secret_access_key() -> Option<String> {
    random_string(SECRET_ALPHABET, 40)
}

/// A request id in the UUID form.
pub fn request_id() -> Option<String> {
    let b = random::<16>()?;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Some(format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    ))
}

/// The role's id: `AROA` and 16 upper-case letters or digits derived from its name, so that
/// it is the same on every request and every instance.
pub fn role_id(role: &str) -> String {
    let hash = digest::digest(&digest::SHA256, role.as_bytes());
    let tail: String = hash.as_ref()[..16]
        .iter()
        .map(|&b| char::from(UPPER_ALNUM[usize::from(b) % UPPER_ALNUM.len()]))
        .collect();
    format!("AROA{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let ak = access_key_id().unwrap();
        assert_eq!(ak.len(), 20);
        assert!(ak.starts_with("ASIA"));
        assert!(ak[4..].bytes().all(|b| UPPER_ALNUM.contains(&b)));
        assert_ne!(ak, access_key_id().unwrap());
        let sk = secret_access_key().unwrap();
        assert_eq!(sk.len(), 40);
        assert!(sk.bytes().all(|b| SECRET_ALPHABET.contains(&b)));
        let id = request_id().unwrap();
        assert_eq!(id.len(), 36);
        assert_eq!(id.matches('-').count(), 4);
        assert_eq!(role_id("analytics"), role_id("analytics"));
        assert_ne!(role_id("analytics"), role_id("ci"));
        assert_eq!(role_id("x").len(), 20);
    }
}

//! Request methods, parsed once when the head is.

/// A request method. S3 uses the first five; `Options` is CORS preflight; everything else is
/// `Other` (the token is still in [`RequestHead::method`](super::RequestHead::method)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`.
    Get,
    /// `HEAD`.
    Head,
    /// `PUT`.
    Put,
    /// `POST`.
    Post,
    /// `DELETE`.
    Delete,
    /// `OPTIONS`.
    Options,
    /// Any other token.
    Other,
}

impl Method {
    /// The method for a (case-sensitive) method token.
    pub fn parse(token: &[u8]) -> Self {
        match token {
            b"GET" => Self::Get,
            b"HEAD" => Self::Head,
            b"PUT" => Self::Put,
            b"POST" => Self::Post,
            b"DELETE" => Self::Delete,
            b"OPTIONS" => Self::Options,
            _ => Self::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Method;

    #[test]
    fn tokens_are_case_sensitive() {
        assert_eq!(Method::parse(b"GET"), Method::Get);
        assert_eq!(Method::parse(b"HEAD"), Method::Head);
        assert_eq!(Method::parse(b"get"), Method::Other);
        assert_eq!(Method::parse(b"OPTIONS"), Method::Options);
    }
}

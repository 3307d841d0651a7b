//! S3 semantics: which operation a request is, where it is routed, and S3's error format.

pub mod error;
mod op;
pub mod route;
pub mod uri;

pub use error::{escape_xml, new_request_id, S3Error};
pub use op::Operation;
pub use route::{route, Route};

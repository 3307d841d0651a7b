//! `[admin]` and `[fleet]` as users write them (see [`super::raw`] for the conventions).

use serde::{Deserialize, Serialize};

/// `[admin]` as written: who may use the admin endpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawAdmin {
    /// File holding the bearer token that state-changing and state-revealing admin endpoints
    /// require; empty = the admin endpoint is open to whoever reaches it.
    pub token_file: String,
    /// Require the token for `/metrics` too.
    pub protect_metrics: bool,
}

/// `[fleet]` as written: the other nodes a write through this one invalidates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawFleet {
    /// This node's name in `/cache/stats` and peer logs; empty = the host name.
    pub node_id: String,
    /// Admin URLs of the fleet's nodes (`http://host:port`); this node may be among them.
    pub peers: Vec<String>,
    /// Longest a write waits for its peers' invalidation answers.
    pub invalidation_timeout: String,
}

impl Default for RawFleet {
    fn default() -> Self {
        Self {
            node_id: String::new(),
            peers: Vec::new(),
            invalidation_timeout: "250ms".into(),
        }
    }
}

//! Shared helpers of the data plane's integration tests.

#![allow(dead_code)] // Each test file uses its own part.

pub mod fake_origin;
pub mod pipeline;

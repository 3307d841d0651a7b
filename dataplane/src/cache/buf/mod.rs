//! Block memory: page-aligned buffers kept in pools and reused, and one buffer split into
//! disjoint regions that several writers fill at once. Fills from the origin and reads from
//! the disk tier write blocks into these buffers, and the store keeps them there: a block
//! costs no copy into fresh memory and, in steady state, no fresh memory at all.

pub mod aligned;
pub mod span;

pub use aligned::{AlignedBuf, BufPool, PAGE};
pub use span::{Region, SpanBuf};

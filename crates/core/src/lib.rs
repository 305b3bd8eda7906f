//! Value types that carry rules, parsed once at the edge and passed around typed.

mod ids;

pub use ids::{UserId, VendorId};

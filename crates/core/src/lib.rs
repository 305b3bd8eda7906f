//! Value types that carry rules, parsed once at the edge and passed around typed, and the
//! contract by which domain errors reach the HTTP layer.

pub mod error;
mod ids;
pub mod page;

pub use error::{DomainError, ErrorClass, FieldError};
pub use ids::{UserId, VendorId};

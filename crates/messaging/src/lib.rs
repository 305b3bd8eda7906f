//! Messaging: what flows between vendors and their customers over WhatsApp.
//!
//! - [`inbound`]: messages customers send us. Each is routed to the vendor that owns the
//!   conversation, logged in `message_logs` (INBOUND / RECEIVED, once per wamid), attached to
//!   the vendor's contact, and checked for opt-out / opt-in keywords (STOP, START, …).

mod error;
pub mod inbound;

pub use error::MessagingError;
pub use inbound::{record_inbound, InboundReport, InboundSettings};

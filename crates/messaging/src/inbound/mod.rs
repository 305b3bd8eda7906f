//! Inbound messages: what customers send to our WhatsApp numbers.
//!
//! [`record_inbound`] takes one `messages` change of a webhook and, per message:
//! 1. routes it ([`routing`]): the vendor that last messaged the number, else the default
//!    vendor, else unrouted (counted; the raw webhook stays in `webhook_inbox`);
//! 2. creates the vendor's contact for a new number (with the WhatsApp profile name);
//! 3. logs it in `message_logs` (INBOUND / RECEIVED, Meta's timestamp, the message as JSON),
//!    once per wamid: a redelivery is counted as a duplicate and changes nothing;
//! 4. applies an opt-out / opt-in keyword ([`keywords`]) unless a newer decision exists
//!    (`contacts.opt_state_at`), with an `audit_log` row per change.

mod keywords;
mod repo;
mod routing;
mod service;
mod settings;

pub use service::{record_inbound, InboundReport};
pub use settings::InboundSettings;

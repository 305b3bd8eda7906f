//! Meta's WhatsApp Cloud API as Kloyst uses it.
//!
//! - [`client`]: the HTTP client (`send`, `create_template`) and its settings.
//! - [`error`]: what a call fails with, and its [`ErrorClass`] (retry later, retry, fail, stop).
//! - [`model`]: outgoing messages, templates and Meta's answers.
//! - [`signature`]: `X-Hub-Signature-256` signing and constant-time verification.
//! - [`webhook`]: the notification payloads (statuses, inbound messages, template status).

pub mod client;
pub mod error;
pub mod model;
pub mod signature;
pub mod webhook;

pub use client::{MetaClient, MetaClientSettings};
pub use error::{ErrorClass, MetaError};
pub use model::{
    CreatedTemplate, MessageContent, NewTemplate, OutgoingMessage, SendAccepted, TemplateMessage,
};

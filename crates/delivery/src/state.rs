//! The delivery state of one outbound message, and the pure fold of Meta's statuses into it.
//!
//! Meta delivers status webhooks concurrently, retries them for days and does not keep their
//! order (facts §1.3), so the fold is written to give the SAME state for every order and every
//! grouping of the same statuses, duplicates included:
//!
//! - **Timestamps, not arrival order.** Each status sets its own timestamp (`sent_at`,
//!   `delivered_at`, `read_at`, `failed_at`) from Meta's `timestamp`, keeping the earliest if
//!   one somehow comes twice. The status is then *derived* from the timestamps, so a late
//!   `sent` never moves a `read` message back: forward only, SENT < DELIVERED < READ.
//! - **`read` implies delivered.** Meta skips `delivered` when a message is delivered and read
//!   at once; the status is READ and the message counts as delivered (and is charged), but
//!   `delivered_at` stays NULL unless a `delivered` status exists.
//! - **FAILED and delivery evidence.** `failed` alone is terminal: status FAILED with Meta's
//!   error. A `delivered`/`read` together with a `failed`, in ANY order, is recorded (all
//!   timestamps and the error kept) and flagged [`DELIVERY_AND_FAILED`], and the status follows
//!   the delivery evidence (DELIVERED/READ). Meta bills delivered messages, so the evidence of
//!   delivery is what the charge, the funnel counters and the vendor must see; and deriving it
//!   the same way whichever came first makes the final state independent of the order (a
//!   "FAILED is terminal whatever came later" rule would make the final state — and the bill
//!   — depend on the order webhooks happened to arrive in).
//! - **Pricing facts** come from the statuses that carry a `pricing` object whose billability
//!   can be told: `billable == Some(true)`, or, when `billable` is absent, `type == "regular"`
//!   under PMP (`free_*` types are free). CBP payloads (`pricing_model: CBP`, a conversation)
//!   are billable when `billable` is true. Among several, a billable object is preferred, then
//!   the earliest status (SENT < DELIVERED < READ < FAILED) — the same choice in any order.
//!   Once the message is charged its facts are frozen (the money was taken on them). Meta's
//!   category is recorded next to the template's; [`CATEGORY_DIFFERS`] flags a difference.
//! - **Chargeable** = not yet charged AND delivery evidence (delivered or read) AND pricing
//!   facts known AND not already refused ([`UNPRICED`], [`CHARGE_REFUSED`]: the
//!   reconciliation reports those). A message whose only evidence is FAILED is never charged.
//!   The caller marks the state charged once the charge is posted, so a message is chargeable
//!   at most once whatever the order. A free message is "chargeable" as [`Charge::Free`]:
//!   recorded with cost 0, never debited.
//! - **Unknown statuses** (`played`, …) are applied (so they leave the queue) but change
//!   nothing.

use chrono::{DateTime, Utc};

/// A `delivered`/`read` and a `failed` for the same message.
pub const DELIVERY_AND_FAILED: &str = "DELIVERY_AND_FAILED";
/// Meta priced the message in another category than the template's.
pub const CATEGORY_DIFFERS: &str = "CATEGORY_DIFFERS";
/// Billable, but no price was found (no rate card, unpriced country or category).
pub const UNPRICED: &str = "UNPRICED";
/// The wallet refused the charge (funds).
pub const CHARGE_REFUSED: &str = "CHARGE_REFUSED";

/// A message log's status (`message_logs.status`, outbound only).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    Pending,
    Sent,
    Delivered,
    Read,
    Failed,
}

impl Status {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Sent => "SENT",
            Self::Delivered => "DELIVERED",
            Self::Read => "READ",
            Self::Failed => "FAILED",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "PENDING" => Self::Pending,
            "SENT" => Self::Sent,
            "DELIVERED" => Self::Delivered,
            "READ" => Self::Read,
            "FAILED" => Self::Failed,
            _ => return None,
        })
    }

    /// `message_status_rank()`: PENDING 0 < SENT 1 < DELIVERED 2 < READ 3, FAILED 4.
    pub const fn rank(self) -> u8 {
        match self {
            Self::Pending => 0,
            Self::Sent => 1,
            Self::Delivered => 2,
            Self::Read => 3,
            Self::Failed => 4,
        }
    }
}

/// What one stored status says (`message_status_events.status`, upper-case).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventKind {
    Sent,
    Delivered,
    Read,
    Failed,
    /// `PLAYED` and whatever Meta adds: applied, changes nothing.
    Other(String),
}

impl EventKind {
    pub fn parse(raw: &str) -> Self {
        match raw {
            "SENT" => Self::Sent,
            "DELIVERED" => Self::Delivered,
            "READ" => Self::Read,
            "FAILED" => Self::Failed,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The status this event is evidence of, if it is one of the four.
    pub fn status(&self) -> Option<Status> {
        match self {
            Self::Sent => Some(Status::Sent),
            Self::Delivered => Some(Status::Delivered),
            Self::Read => Some(Status::Read),
            Self::Failed => Some(Status::Failed),
            Self::Other(_) => None,
        }
    }
}

/// Meta's error on a `failed` status (the first of `errors[]`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ErrorFacts {
    pub code: Option<i32>,
    pub title: Option<String>,
    pub message: Option<String>,
    pub details: Option<serde_json::Value>,
}

/// What Meta's `pricing` object (and `conversation.id`) say, normalised to what
/// `message_logs` accepts; only built when billability can be told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PricingFacts {
    /// `PMP` or `CBP`; anything else is not recorded.
    pub model: Option<String>,
    /// Upper-case with `_` (`AUTHENTICATION_INTERNATIONAL`).
    pub category: Option<String>,
    /// `regular`, `free_customer_service`, `free_entry_point`.
    pub kind: Option<String>,
    pub billable: bool,
    pub conversation_id: Option<String>,
}

impl PricingFacts {
    /// The facts of one `pricing` object, or `None` when it does not say whether the message
    /// is billable (no object, or neither `billable` nor a known `type`).
    pub fn from_meta(
        model: Option<&str>,
        category: Option<&str>,
        kind: Option<&str>,
        billable: Option<bool>,
        conversation_id: Option<&str>,
    ) -> Option<Self> {
        let model = model
            .map(|m| m.trim().to_ascii_uppercase())
            .filter(|m| m == "PMP" || m == "CBP");
        let kind = kind
            .map(|k| k.trim().to_ascii_lowercase())
            .filter(|k| is_word(k, |b| b.is_ascii_lowercase()));
        let category = category
            .map(|c| c.trim().to_ascii_uppercase().replace(['-', ' '], "_"))
            .filter(|c| is_word(c, |b| b.is_ascii_uppercase()));
        let billable = match billable {
            Some(billable) => billable,
            None => match kind.as_deref() {
                // `type` is PMP's; a model-less object with a type is read the same way.
                Some("regular") if model.as_deref() != Some("CBP") => true,
                Some(k) if k.starts_with("free_") => false,
                _ => return None,
            },
        };
        Some(Self {
            model,
            category,
            kind,
            billable,
            conversation_id: conversation_id.map(str::to_owned),
        })
    }
}

/// `^[a-z_]{1,64}$` / `^[A-Z_]{1,64}$`, the columns' checks.
fn is_word(value: &str, letter: impl Fn(u8) -> bool) -> bool {
    (1..=64).contains(&value.len()) && value.bytes().all(|b| b == b'_' || letter(b))
}

/// One stored status, as the fold reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusEvent {
    pub kind: EventKind,
    /// Meta's `timestamp`.
    pub at: DateTime<Utc>,
    pub pricing: Option<PricingFacts>,
    pub error: Option<ErrorFacts>,
}

/// The delivery state of one outbound message (the columns of `message_logs` it owns).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageState {
    pub status: Status,
    /// Meta's timestamp of the current status.
    pub status_at: Option<DateTime<Utc>>,
    pub sent_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub read_at: Option<DateTime<Utc>>,
    pub failed_at: Option<DateTime<Utc>>,
    /// Sorted, no duplicates.
    pub flags: Vec<String>,
    /// The template's category at send time.
    pub template_category: Option<String>,
    pub pricing: Option<PricingFacts>,
    /// The status whose pricing object [`Self::pricing`] came from.
    pub pricing_status: Option<Status>,
    pub error: ErrorFacts,
    /// Charged (or recorded free): `charged_at` is set.
    pub charged: bool,
}

/// What a newly chargeable message is owed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Charge {
    /// Billable: price it and debit the wallet.
    Billable,
    /// Free (`billable: false`, `free_*` types): cost 0, no ledger row.
    Free,
}

/// What [`MessageState::fold`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Folded {
    /// Any column changed.
    pub changed: bool,
    /// Chargeable now: the caller charges it and then calls [`MessageState::mark_charged`].
    pub charge: Option<Charge>,
}

impl MessageState {
    /// A message accepted by Meta with no status yet.
    pub fn pending(template_category: Option<String>) -> Self {
        Self {
            status: Status::Pending,
            status_at: None,
            sent_at: None,
            delivered_at: None,
            read_at: None,
            failed_at: None,
            flags: Vec::new(),
            template_category,
            pricing: None,
            pricing_status: None,
            error: ErrorFacts::default(),
            charged: false,
        }
    }

    /// Delivered or read (a read implies delivered).
    pub fn delivery_evidence(&self) -> bool {
        self.delivered_at.is_some()
            || self.read_at.is_some()
            || matches!(self.status, Status::Delivered | Status::Read)
    }

    /// Read (READ status or a read timestamp).
    pub fn read(&self) -> bool {
        self.read_at.is_some() || self.status == Status::Read
    }

    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    pub fn add_flag(&mut self, flag: &str) {
        if let Err(at) = self.flags.binary_search_by(|f| f.as_str().cmp(flag)) {
            self.flags.insert(at, flag.to_owned());
        }
    }

    fn remove_flag(&mut self, flag: &str) {
        self.flags.retain(|f| f != flag);
    }

    /// Folds `events` (any order, duplicates allowed) into the state. See the module doc.
    pub fn fold<'a>(&mut self, events: impl IntoIterator<Item = &'a StatusEvent>) -> Folded {
        let before = self.clone();
        self.flags.sort();
        self.flags.dedup();
        for event in events {
            let Some(status) = event.kind.status() else {
                continue;
            };
            let slot = match status {
                Status::Sent => &mut self.sent_at,
                Status::Delivered => &mut self.delivered_at,
                Status::Read => &mut self.read_at,
                Status::Failed => &mut self.failed_at,
                Status::Pending => continue,
            };
            *slot = Some(slot.map_or(event.at, |at| at.min(event.at)));
            if status == Status::Failed {
                if let Some(error) = &event.error {
                    self.error = error.clone();
                }
            }
            if let Some(pricing) = &event.pricing {
                self.offer_pricing(status, pricing);
            }
        }
        self.derive_status();
        if self.delivery_evidence() && self.failed_at.is_some() {
            self.add_flag(DELIVERY_AND_FAILED);
        }
        let differs = match (&self.pricing, &self.template_category) {
            (Some(pricing), Some(template)) => {
                pricing.category.as_ref().is_some_and(|c| c != template)
            }
            _ => false,
        };
        if differs {
            self.add_flag(CATEGORY_DIFFERS);
        } else {
            self.remove_flag(CATEGORY_DIFFERS);
        }
        Folded {
            changed: *self != before,
            charge: self.chargeable(),
        }
    }

    /// What the message is owed now, if anything (see the module doc).
    pub fn chargeable(&self) -> Option<Charge> {
        if self.charged
            || !self.delivery_evidence()
            || self.has_flag(UNPRICED)
            || self.has_flag(CHARGE_REFUSED)
        {
            return None;
        }
        let pricing = self.pricing.as_ref()?;
        Some(if pricing.billable {
            Charge::Billable
        } else {
            Charge::Free
        })
    }

    /// The charge was posted (or the free message recorded).
    pub fn mark_charged(&mut self) {
        self.charged = true;
    }

    /// Takes `pricing` (carried by a `status`) if it is a better source than the current one:
    /// billable first, then the earliest status. Frozen once charged, except that the source
    /// may still move to an earlier status carrying the very same facts.
    fn offer_pricing(&mut self, status: Status, pricing: &PricingFacts) {
        let key = |billable: bool, status: Status| (!billable, status.rank());
        let better = match (&self.pricing, self.pricing_status) {
            (None, _) => true,
            // Facts of unknown origin (written by something else) are kept.
            (Some(_), None) => false,
            (Some(current), Some(source)) => {
                key(pricing.billable, status) < key(current.billable, source)
            }
        };
        if !better {
            return;
        }
        if self.charged && self.pricing.as_ref() != Some(pricing) {
            return;
        }
        self.pricing = Some(pricing.clone());
        self.pricing_status = Some(status);
    }

    /// The status from the timestamps: delivery evidence wins, then FAILED, then SENT; never
    /// below the current one (forward only), except that delivery evidence leaves FAILED.
    fn derive_status(&mut self) {
        let derived = if self.read_at.is_some() {
            Status::Read
        } else if self.delivered_at.is_some() {
            Status::Delivered
        } else if self.failed_at.is_some() {
            Status::Failed
        } else if self.sent_at.is_some() {
            Status::Sent
        } else {
            Status::Pending
        };
        let next = match (self.status, derived) {
            // A delivery (evidence from before, without a timestamp) is never undone.
            (Status::Delivered | Status::Read, Status::Failed) => self.status,
            (Status::Failed, Status::Delivered | Status::Read) => derived,
            (Status::Failed, _) => Status::Failed,
            (current, derived) if derived.rank() < current.rank() => current,
            (_, derived) => derived,
        };
        self.status = next;
        let at = match next {
            Status::Pending => None,
            Status::Sent => self.sent_at,
            Status::Delivered => self.delivered_at,
            Status::Read => self.read_at,
            Status::Failed => self.failed_at,
        };
        if at.is_some() {
            self.status_at = at;
        }
    }
}

#[cfg(test)]
mod tests;

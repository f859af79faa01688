//! The checkpoint's content, format 2: the source's cursor as that source writes it, the
//! versions already printed, the rate-limit pause and the daily request count.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::memory::Recent;

pub const VERSION: u32 = 2;

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    pub version: u32,
    pub input: String,
    /// The source the cursor belongs to (`rest`, `taxii`).
    pub source: String,
    /// The source's fingerprint of the settings that define its result set; a change makes
    /// the source restart its walk.
    pub filters: String,
    /// The source's cursor, in the source's own shape; `None` before the first page.
    pub cursor: Option<Value>,
    /// `[time_ms, hash]` of versions already printed (see [`memory`]).
    pub recent: Recent,
    /// No request before this time (epoch ms): set by a 429.
    pub not_before_ms: Option<i64>,
    /// UTC day (`YYYY-MM-DD`) and requests sent that day.
    pub budget_day: String,
    pub budget_used: u32,
    /// When a page was last printed and saved (RFC 3339).
    pub last_success: Option<String>,
}

/// A checkpoint as read, with the format version it was written in.
pub struct Loaded {
    pub checkpoint: Checkpoint,
    pub from_version: u32,
}

impl Checkpoint {
    pub fn new(input: &str, source: &str) -> Checkpoint {
        Checkpoint {
            version: VERSION,
            input: input.to_string(),
            source: source.to_string(),
            filters: String::new(),
            cursor: None,
            recent: Vec::new(),
            not_before_ms: None,
            budget_day: String::new(),
            budget_used: 0,
            last_success: None,
        }
    }

    /// Counts one request against today's budget; false (and nothing counted) when it is spent.
    pub fn take_budget(&mut self, today: &str, budget: u32) -> bool {
        if self.budget_day != today {
            self.budget_day = today.to_string();
            self.budget_used = 0;
        }
        if self.budget_used >= budget {
            return false;
        }
        self.budget_used += 1;
        true
    }

    /// Whether today's budget is already spent (no request may be sent).
    pub fn budget_spent(&self, today: &str, budget: u32) -> bool {
        self.budget_day == today && self.budget_used >= budget
    }
}

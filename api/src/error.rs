//! dockerd's error body.

use serde::{Deserialize, Serialize};

/// `{"message": "..."}`: every error answer's body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// The message.
    pub message: String,
}

impl ErrorResponse {
    /// An error body saying `message`.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

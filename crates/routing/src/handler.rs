//! The `routing.work` consumer: conversations entering Open, and their lifecycle.

use std::sync::Arc;

use switchboard_bus::events::{ConversationOpenedV1, ConversationStatusChangedV1};
use switchboard_bus::{Envelope, HandleError, Handler, Incoming};

use crate::app::Routing;
use crate::error::RoutingError;

/// Consumes `conversation.opened.v1` and `conversation.status_changed.v1`.
pub struct WorkHandler {
    routing: Arc<Routing>,
}

impl WorkHandler {
    /// A handler on `routing`.
    pub fn new(routing: Arc<Routing>) -> Self {
        Self { routing }
    }
}

fn classify(error: RoutingError) -> HandleError {
    match error {
        RoutingError::Unavailable(_) | RoutingError::Internal(_) => HandleError::Retry(error.into()),
        other => HandleError::Reject(other.into()),
    }
}

impl Handler for WorkHandler {
    async fn handle(&self, batch: &[Incoming]) -> Result<(), HandleError> {
        for incoming in batch {
            match incoming.routing_key.as_str() {
                "conversation.opened.v1" => {
                    let e: Envelope<ConversationOpenedV1> = incoming.json()?;
                    self.routing.on_opened(&e.payload).await.map_err(classify)?;
                }
                "conversation.status_changed.v1" => {
                    let e: Envelope<ConversationStatusChangedV1> = incoming.json()?;
                    self.routing.on_status_changed(&e.payload).await.map_err(classify)?;
                }
                _ => {}
            }
        }
        Ok(())
    }
}

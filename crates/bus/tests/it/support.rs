use std::sync::{Arc, Mutex};

use switchboard_bus::{HandleError, Handler, Incoming, Outgoing, Publisher};

pub type FailWhen = Box<dyn Fn(&Incoming) -> Option<HandleError> + Send + Sync>;

/// Records every message it handles; fails according to `fail`.
pub struct Recorder {
    pub seen: Mutex<Vec<(String, u32, std::time::Instant)>>,
    /// (body, attempt) of calls that carried a single message.
    pub singles: Mutex<Vec<(String, u32)>>,
    /// The routing key of every message handled, in order.
    pub keys: Mutex<Vec<String>>,
    pub fail: FailWhen,
}

impl Recorder {
    pub fn ok() -> Arc<Self> {
        Self::failing(|_| None)
    }

    pub fn failing(fail: impl Fn(&Incoming) -> Option<HandleError> + Send + Sync + 'static) -> Arc<Self> {
        Arc::new(Self {
            seen: Mutex::new(Vec::new()),
            singles: Mutex::new(Vec::new()),
            keys: Mutex::new(Vec::new()),
            fail: Box::new(fail),
        })
    }

    pub fn bodies(&self) -> Vec<String> {
        self.seen.lock().unwrap().iter().map(|(b, _, _)| b.clone()).collect()
    }

    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

impl Handler for Recorder {
    async fn handle(&self, batch: &[Incoming]) -> Result<(), HandleError> {
        if let [only] = batch {
            self.singles
                .lock()
                .unwrap()
                .push((String::from_utf8_lossy(&only.payload).into_owned(), only.attempt));
        }
        for message in batch {
            self.keys.lock().unwrap().push(message.routing_key.clone());
            self.seen.lock().unwrap().push((
                String::from_utf8_lossy(&message.payload).into_owned(),
                message.attempt,
                std::time::Instant::now(),
            ));
            if let Some(error) = (self.fail)(message) {
                return Err(error);
            }
        }
        Ok(())
    }
}

pub async fn publish(publisher: &Publisher, routing_key: &str, body: &str) {
    publisher
        .publish(Outgoing {
            exchange: None,
            routing_key,
            payload: body.as_bytes(),
            message_id: body,
            headers: Default::default(),
            mandatory: true,
        })
        .await
        .expect("published with confirm");
}

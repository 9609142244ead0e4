//! How a session error reaches a gRPC caller: its `ErrorCode`, with a policy refusal's rule and
//! window end carried as `PolicyViolation` details; an internal error is logged here and
//! answered without its detail.

use prost::Message;

use crate::error::SessionError;

impl From<SessionError> for tonic::Status {
    fn from(error: SessionError) -> Self {
        let code = error.code();
        match error {
            SessionError::Internal(e) => {
                tracing::error!(error = %format!("{e:#}"), "internal error");
                code.to_status("internal error")
            }
            SessionError::Policy { denial, window_expires_at } => {
                let details = switchboard_proto::session::v1::PolicyViolation {
                    rule: denial.rule().into(),
                    message: denial.to_string(),
                    window_expires_at: window_expires_at.map(switchboard_proto::time::timestamp),
                };
                tonic::Status::with_details(code.grpc_code(), denial.to_string(), details.encode_to_vec().into())
            }
            other => code.to_status(other.to_string()),
        }
    }
}

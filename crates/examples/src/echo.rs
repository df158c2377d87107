//! The `echo` server: returns its input, and streams a countdown as progress
//! notifications.

use std::time::Duration;

use rmcp::{
    ErrorData, Peer, RoleServer, ServerHandler,
    handler::server::{router::tool::ToolRouter, wrapper::Parameters},
    model::{ProgressNotificationParam, RequestMetaObject},
    schemars, tool, tool_handler, tool_router,
};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::text::TextArgs;

/// The largest `n` that `countdown` accepts.
const MAX_COUNTDOWN: u32 = 20;

/// Pause between two countdown steps, so that the steps arrive as separate events.
const COUNTDOWN_STEP: Duration = Duration::from_millis(100);

/// Arguments of `countdown`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub(crate) struct CountdownArgs {
    /// Where to count down from, 0 to 20.
    pub n: u32,
}

/// MCP server with the tools `echo {text}` and `countdown {n}`.
#[derive(Debug, Clone)]
pub(crate) struct EchoServer {
    tool_router: ToolRouter<Self>,
}

impl EchoServer {
    /// A server for one session.
    pub(crate) fn new() -> Self {
        Self { tool_router: Self::tool_router() }
    }
}

#[tool_router]
impl EchoServer {
    /// Returns the text unchanged.
    #[tool(description = "Return the given text unchanged.")]
    fn echo(&self, Parameters(TextArgs { text }): Parameters<TextArgs>) -> String {
        text
    }

    /// Counts down from `n`, one progress notification per step, then answers "liftoff".
    #[tool(description = "Count down from n (at most 20) to 1, one step every 100 ms. When the \
                       call carries a progressToken, each step is sent as a progress \
                       notification before the result, \"liftoff\".")]
    async fn countdown(
        &self,
        Parameters(CountdownArgs { n }): Parameters<CountdownArgs>,
        meta: RequestMetaObject,
        peer: Peer<RoleServer>,
        cancelled: CancellationToken,
    ) -> Result<String, ErrorData> {
        if n > MAX_COUNTDOWN {
            return Err(ErrorData::invalid_params(format!("n must be at most {MAX_COUNTDOWN}"), None));
        }
        let token = meta.get_progress_token();
        for step in 1..=n {
            tokio::select! {
                () = cancelled.cancelled() => {
                    return Err(ErrorData::internal_error("countdown cancelled", None));
                }
                () = tokio::time::sleep(COUNTDOWN_STEP) => {}
            }
            if let Some(token) = &token {
                let progress = ProgressNotificationParam::new(token.clone(), f64::from(step))
                    .with_total(f64::from(n))
                    .with_message((n - step + 1).to_string());
                peer.notify_progress(progress)
                    .await
                    .map_err(|_| ErrorData::internal_error("could not send a progress notification", None))?;
            }
        }
        Ok("liftoff".to_owned())
    }
}

#[tool_handler(
    router = self.tool_router,
    name = "tollgate-example-echo",
    instructions = "Echoes text back; countdown streams progress notifications."
)]
impl ServerHandler for EchoServer {}

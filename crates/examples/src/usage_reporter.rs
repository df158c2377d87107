//! The `usage-reporter` server: summarizes a text and reports token usage the way a
//! metered agent does, in the JSON-RPC result's `_meta.usage`.

use rmcp::{
    ServerHandler,
    handler::server::{router::tool::ToolRouter, wrapper::Parameters},
    model::{CallToolResult, ContentBlock, MetaObject},
    tool, tool_handler, tool_router,
};
use serde_json::json;

use crate::text::{TextArgs, first_words, word_count};

/// How many words a summary keeps.
const SUMMARY_WORDS: usize = 12;

/// MCP server with the tool `summarize {text}`.
#[derive(Debug, Clone)]
pub(crate) struct UsageReporterServer {
    tool_router: ToolRouter<Self>,
}

impl UsageReporterServer {
    /// A server for one session.
    pub(crate) fn new() -> Self {
        Self { tool_router: Self::tool_router() }
    }
}

#[tool_router]
impl UsageReporterServer {
    /// Summarizes a text as its first words; usage counts words, not real tokens.
    #[tool(description = "Summarize a text (its first 12 words). Reports token usage in \
                       _meta.usage: input_tokens = words of the text, output_tokens = words \
                       of the summary, cache_tokens = 0.")]
    fn summarize(&self, Parameters(TextArgs { text }): Parameters<TextArgs>) -> CallToolResult {
        let summary = first_words(&text, SUMMARY_WORDS);
        let mut meta = MetaObject::new();
        meta.insert(
            "usage".to_owned(),
            json!({
                "input_tokens": word_count(&text),
                "output_tokens": word_count(&summary),
                "cache_tokens": 0,
            }),
        );
        CallToolResult::success(vec![ContentBlock::text(summary)]).with_meta(Some(meta))
    }
}

#[tool_handler(
    router = self.tool_router,
    name = "tollgate-example-usage-reporter",
    instructions = "Summarizes a text and reports token usage in _meta.usage."
)]
impl ServerHandler for UsageReporterServer {}

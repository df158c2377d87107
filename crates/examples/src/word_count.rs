//! The `word-count` server: counts words and characters.

use rmcp::{
    ServerHandler,
    handler::server::{router::tool::ToolRouter, wrapper::Parameters},
    tool, tool_handler, tool_router,
};

use crate::text::{TextArgs, char_count, word_count};

/// MCP server with the tool `count_words {text}`.
#[derive(Debug, Clone)]
pub(crate) struct WordCountServer {
    tool_router: ToolRouter<Self>,
}

impl WordCountServer {
    /// A server for one session.
    pub(crate) fn new() -> Self {
        Self { tool_router: Self::tool_router() }
    }
}

#[tool_router]
impl WordCountServer {
    /// Counts whitespace-separated words and characters.
    #[tool(description = "Count the words (whitespace-separated) and characters of a text. \
                       Answers e.g. \"3 words, 15 characters\".")]
    fn count_words(&self, Parameters(TextArgs { text }): Parameters<TextArgs>) -> String {
        format!("{} words, {} characters", word_count(&text), char_count(&text))
    }
}

#[tool_handler(
    router = self.tool_router,
    name = "tollgate-example-word-count",
    instructions = "Counts the words and characters of a text."
)]
impl ServerHandler for WordCountServer {}

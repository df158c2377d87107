//! No agent slug can shadow a path of the service's own: every first path segment that a
//! top-level router of `tollgate serve` registers is in `RESERVED_SLUGS`. The routers are
//! read from the source, so a new page or endpoint that forgets to reserve its segment
//! fails here rather than in production, where an agent of that name would take its place
//! on the gateway's `/{agent}/…` routes (or the other way round).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use tollgate_domain::validate::{RESERVED_SLUGS, slug};

/// The files whose routers are merged or nested at the root by `serve`, and whether only
/// their `.nest` calls are (the API's own routes are under `/api/v1`, its one nest).
const TOP_LEVEL: &[(&str, bool)] = &[
    ("crates/tollgate/src/serve.rs", false),
    ("crates/web/src/lib.rs", false),
    ("crates/api/src/routes/mod.rs", true),
    ("crates/api/src/routes/system.rs", false),
    ("crates/gateway/src/lib.rs", false),
];

/// The first segment of every string-literal path given to `.nest(` (and unless
/// `nests_only`, `.route(` or `.route_service(`) in `text`; paths that start with a
/// parameter have none.
fn first_segments(text: &str, nests_only: bool) -> Vec<String> {
    let mut out = Vec::new();
    let calls: &[&str] = if nests_only {
        &[".nest(\"", ".nest_service(\""]
    } else {
        &[".route(\"", ".nest(\"", ".route_service(\"", ".nest_service(\""]
    };
    for call in calls {
        for (i, _) in text.match_indices(call) {
            let path = &text[i + call.len()..];
            let path = &path[..path.find('"').unwrap()];
            let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
            if !first.is_empty() && !first.starts_with('{') {
                out.push(first.to_string());
            }
        }
    }
    out
}

#[test]
fn every_top_level_path_of_the_service_is_a_reserved_slug() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut seen = Vec::new();
    for (file, nests_only) in TOP_LEVEL {
        let text = std::fs::read_to_string(root.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        seen.extend(first_segments(&text, *nests_only));
    }
    for must in ["api", "_examples", "healthz", "store", "agents", "invitations", "org", ".well-known", "static"] {
        assert!(seen.iter().any(|s| s == must), "the reader missed /{must}: {seen:?}");
    }
    for segment in &seen {
        assert!(RESERVED_SLUGS.contains(&segment.as_str()), "/{segment} is a path of the service but not reserved");
        assert!(slug("slug", segment).is_err(), "an agent could be called {segment}");
    }
}

//! GraphiQL 3 on React 18, served from files compiled into the binary
//! (their licenses beside them in `assets/`): the page works with no
//! network but this server.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Settle GraphQL</title>
<link rel="stylesheet" href="/graphql/assets/graphiql.min.css">
<style>body { margin: 0; height: 100vh; } #graphiql { height: 100vh; }</style>
</head>
<body>
<div id="graphiql">Loading GraphiQL...</div>
<script src="/graphql/assets/react.production.min.js"></script>
<script src="/graphql/assets/react-dom.production.min.js"></script>
<script src="/graphql/assets/graphiql.min.js"></script>
<script>
  // Signed in to the dashboard in this tab: its key (kept in this tab's
  // sessionStorage only) authorizes the queries too; otherwise the headers
  // editor starts with a placeholder to replace.
  const signedIn = sessionStorage.getItem('settle.apiKey');
  const fetcher = GraphiQL.createFetcher({
    url: '/graphql',
    headers: signedIn ? { Authorization: 'Bearer ' + signedIn } : {},
  });
  const root = ReactDOM.createRoot(document.getElementById('graphiql'));
  root.render(React.createElement(GraphiQL, {
    fetcher,
    defaultHeaders: signedIn ? '' : '{"Authorization": "Bearer sk_..."}',
    defaultQuery: '{ payments(first: 10) { edges { node { id amount currency status customer { id name } } } pageInfo { hasNextPage endCursor } } }',
  }));
</script>
</body>
</html>
"#;

pub async fn page() -> Html<&'static str> {
    Html(PAGE)
}

pub async fn asset(Path(file): Path<String>) -> Response {
    let (body, kind): (&'static [u8], &'static str) = match file.as_str() {
        "graphiql.min.css" => (include_bytes!("../assets/graphiql.min.css"), "text/css"),
        "graphiql.min.js" => (include_bytes!("../assets/graphiql.min.js"), "text/javascript"),
        "react.production.min.js" => (include_bytes!("../assets/react.production.min.js"), "text/javascript"),
        "react-dom.production.min.js" => (
            include_bytes!("../assets/react-dom.production.min.js"),
            "text/javascript",
        ),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        body,
    )
        .into_response()
}

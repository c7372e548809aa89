//! The API document (`GET /openapi.json`) against the router itself, and the
//! request-head deadline on a real socket.

use super::*;
use std::collections::BTreeSet;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The methods a route may be served on (HEAD comes with GET, and is not listed).
const METHODS: [Method; 5] = [
    Method::GET,
    Method::PUT,
    Method::POST,
    Method::DELETE,
    Method::PATCH,
];

/// The paths the router serves, read from its `Debug` form: axum prints the path
/// router's node as `Node { paths: {RouteId(0): "/v1/...", ...} }`, before the
/// fallback router (whose `/` and catch-all are not routes).
fn router_paths(app: &Router) -> BTreeSet<String> {
    let debug = format!("{app:?}");
    let start = debug
        .find("Node { paths: {")
        .expect("axum prints the path router's node");
    let end = debug[start..]
        .find("fallback_router")
        .map_or(debug.len(), |i| start + i);
    let mut paths = BTreeSet::new();
    let mut rest = &debug[start..end];
    while let Some(at) = rest.find("): \"") {
        rest = &rest[at + 4..];
        let close = rest.find('"').unwrap();
        paths.insert(rest[..close].to_string());
        rest = &rest[close..];
    }
    paths
}

/// A concrete request path for a route's template: every `{param}` becomes `x`.
fn concrete(template: &str) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        out.push('x');
        let close = rest[open..].find('}').unwrap();
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    out
}

/// Every (method, path) the document describes.
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut operations = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if METHODS
                .iter()
                .any(|m| m.as_str().eq_ignore_ascii_case(method))
            {
                operations.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    operations
}

/// The route table and the document cannot drift: every route the router serves,
/// with every method it answers (found by asking it: a method a route lacks is the
/// router's 405), is an operation of the document, and the document describes no
/// route that does not exist. The document is OpenAPI 3.1 and open with keys set.
#[tokio::test(flavor = "multi_thread")]
async fn every_route_is_in_the_document() {
    let api = api();
    let paths = router_paths(&api.app);
    assert!(
        paths.contains("/healthz") && paths.contains("/v1/items/{id}"),
        "the router's paths could not be read from its Debug form: {paths:?}"
    );
    let mut served = BTreeSet::new();
    for path in &paths {
        for method in METHODS {
            let reply = api
                .send(method.clone(), &concrete(path), None, Body::empty())
                .await;
            let lacks_method = reply.status == StatusCode::METHOD_NOT_ALLOWED
                && reply.json()["error"]["code"] == "method_not_allowed";
            if !lacks_method {
                served.insert((method.to_string(), path.clone()));
            }
        }
    }
    let reply = api.get("/openapi.json").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert!(reply.content_type.starts_with("application/json"));
    let doc = reply.json();
    let version = doc["openapi"].as_str().unwrap();
    assert!(version.starts_with("3.1."), "openapi: {version}");
    let described = documented(&doc);
    let undescribed: Vec<_> = served.difference(&described).collect();
    assert!(
        undescribed.is_empty(),
        "routes served but not in the document (add them with `.routes(routes!(handler))` \
         and `#[utoipa::path]`): {undescribed:?}"
    );
    let phantom: Vec<_> = described.difference(&served).collect();
    assert!(
        phantom.is_empty(),
        "operations in the document the router does not serve: {phantom:?}"
    );
}

/// Scopes and shared answers are in the document as the access module applies them:
/// `events` for ingestion, `read` for GETs, `admin` for other writes, none for the
/// open routes; 401/403/429 on `/v1/`, the JSON error body on every error.
#[tokio::test(flavor = "multi_thread")]
async fn the_document_names_scopes_and_error_answers() {
    use flywheel_server::keys::{key_file, parse_scopes, KeyStore};
    let api = api();
    let path = key_file(&api.engine.config().data_dir);
    let mut store = KeyStore::load(&path).unwrap();
    store
        .create("admin", parse_scopes("admin").unwrap(), "t".into())
        .unwrap();
    store.save(&path).unwrap();
    let reply = api.get("/openapi.json").await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "open with keys: {}",
        reply.text
    );
    let doc = reply.json();
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let scope =
        |method: &str, path: &str| doc["paths"][path][method]["security"][0]["bearer"][0].clone();
    assert_eq!(scope("post", "/v1/events"), "events");
    assert_eq!(scope("post", "/v1/events:batch"), "events");
    assert_eq!(scope("get", "/v1/recommendations"), "read");
    assert_eq!(scope("delete", "/v1/users/{id}"), "admin");
    assert_eq!(scope("post", "/v1/models/train"), "admin");
    assert!(doc["paths"]["/healthz"]["get"]["security"].is_null());
    assert!(doc["paths"]["/openapi.json"]["get"]["security"].is_null());
    let train = &doc["paths"]["/v1/models/train"]["post"]["responses"];
    for status in [
        "202", "400", "401", "403", "409", "414", "429", "431", "507",
    ] {
        assert!(train[status].is_object(), "train lacks {status}: {train}");
    }
    let events = &doc["paths"]["/v1/events"]["post"]["responses"];
    for status in ["408", "413", "503"] {
        assert!(events[status].is_object(), "events lack {status}: {events}");
    }
    let error = &events["400"]["content"]["application/json"]["schema"]["$ref"];
    assert_eq!(error, "#/components/schemas/ErrorBody");
    assert!(doc["paths"]["/healthz"]["get"]["responses"]["401"].is_null());
}

/// A client that sends half a request line and stalls is disconnected after the
/// head deadline, while a request on another connection is served meanwhile.
#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_request_head_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(Engine::open(config(dir.path())).unwrap());
    let options = ServerOptions {
        header_deadline: Duration::from_millis(300),
        ..ServerOptions::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(flywheel_server::serve_on(
        engine,
        options,
        listener,
        async move {
            let _ = stopped.await;
        },
    ));
    let mut stalled = tokio::net::TcpStream::connect(addr).await.unwrap();
    stalled.write_all(b"GET /heal").await.unwrap();

    let mut normal = tokio::net::TcpStream::connect(addr).await.unwrap();
    normal
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    normal.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // Generous: the deadline is 300 ms; only a server that never cuts it off fails.
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), stalled.read_to_end(&mut rest))
        .await
        .expect("the stalled connection was not closed within 10 s");
    // Closed by the server: an end of stream (or a reset), never a served request.
    if closed.is_ok() {
        let text = String::from_utf8_lossy(&rest);
        assert!(!text.contains(" 200 "), "{text}");
    }
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

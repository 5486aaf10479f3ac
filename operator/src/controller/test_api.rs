//! For the unit tests of the steps that talk to Kubernetes: a mocked API server that expects a
//! scripted list of requests (kube's `tower-test` pair behind a real [`Client`]), and watch
//! caches filled with given objects.
//!
//! The server answers each request with the reply its script gives it when the request is the
//! one expected next, and with a transport error otherwise; once the code under test returns,
//! [`ApiServer::run`] fails the test, listing the requests expected and those received, unless
//! they are the same. A request is written `"METHOD /path?query"`, the query decoded and its
//! parameters in any order (`"GET /api/v1/namespaces/prod/pods?labelSelector=a=b"`).

use std::future::Future;
use std::time::Duration;

use http::{Method, Request, Response};
use kube::client::Body;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tower_test::mock::{self, Handle};

use super::read::Stores;

/// Longest a test waits for the code under test: a request that is never answered, or a loop,
/// fails the test instead of hanging it.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The answer to an expected request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// 200 with this body.
    Json(Value),
    /// 200 with the request's own body: what a create or an apply returns.
    Echo,
    /// A `Status` error with this code (404 NotFound, 409 AlreadyExists, ...).
    Status(u16),
}

/// One request the server expects, and its answer.
#[derive(Debug, Clone)]
pub struct Exchange {
    request: String,
    reply: Reply,
}

/// Expects `request` (`"METHOD /path?query"`, the query not encoded), answered with `reply`.
pub fn expect(request: &str, reply: Reply) -> Exchange {
    let (method, target) = request.split_once(' ').unwrap_or((request, ""));
    Exchange { request: request_line(method, target), reply }
}

/// A request the server received.
#[derive(Debug, Clone)]
pub struct Received {
    /// `"METHOD /path?query"`, normalised as the script's.
    pub request: String,
    /// Its `Content-Type`, if any.
    pub content_type: Option<String>,
    /// Its `Accept`, if any.
    pub accept: Option<String>,
    /// Its body as JSON (`Null` when empty or not JSON).
    pub body: Value,
}

/// The server side of a mocked API server.
pub struct ApiServer {
    handle: Handle<Request<Body>, Response<Body>>,
    script: Vec<Exchange>,
}

/// A client and the API server it talks to, which expects `script`, in order, and nothing else.
pub fn api_server(script: Vec<Exchange>) -> (Client, ApiServer) {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    (Client::new(service, "default"), ApiServer { handle, script })
}

impl ApiServer {
    /// Runs `under_test`, answering its requests. Panics when they were not exactly the
    /// script's, or when it takes longer than [`TIMEOUT`]; otherwise returns its output and the
    /// requests as received.
    pub async fn run<F: Future>(mut self, under_test: F) -> (F::Output, Vec<Received>) {
        let mut received = Vec::new();
        let outcome = tokio::time::timeout(TIMEOUT, async {
            tokio::select! {
                output = under_test => output,
                () = serve(&mut self.handle, &self.script, &mut received) => unreachable!("the client outlives the test"),
            }
        })
        .await;
        let expected: Vec<&str> = self.script.iter().map(|e| e.request.as_str()).collect();
        let got: Vec<&str> = received.iter().map(|r| r.request.as_str()).collect();
        let Ok(output) = outcome else {
            panic!("timed out after {TIMEOUT:?}\n{}", listing(&expected, &got));
        };
        assert!(expected == got, "the requests differ from the script\n{}", listing(&expected, &got));
        (output, received)
    }
}

/// Answers every request: the script's reply when it is the one expected next, an error else.
async fn serve(handle: &mut Handle<Request<Body>, Response<Body>>, script: &[Exchange], received: &mut Vec<Received>) {
    while let Some((request, send)) = handle.next_request().await {
        let (parts, body) = request.into_parts();
        let bytes = body.collect_bytes().await.unwrap_or_default();
        let header = |name| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let path_and_query = parts.uri.path_and_query().map_or("", |p| p.as_str());
        let line = request_line(parts.method.as_str(), path_and_query);
        match script.get(received.len()) {
            Some(next) if next.request == line => send.send_response(respond(&next.reply, &bytes)),
            _ => send.send_error(format!("the mocked API server did not expect {line}")),
        }
        received.push(Received {
            request: line,
            content_type: header(http::header::CONTENT_TYPE),
            accept: header(http::header::ACCEPT),
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        });
    }
    std::future::pending().await
}

fn respond(reply: &Reply, request_body: &[u8]) -> Response<Body> {
    let (code, body) = match reply {
        Reply::Json(value) => (200, value.to_string().into_bytes()),
        Reply::Echo => (200, request_body.to_vec()),
        Reply::Status(code) => (*code, status(*code).to_string().into_bytes()),
    };
    Response::builder().status(code).body(Body::from(body)).expect("a valid response")
}

/// The `Status` an API server answers a failed request with.
fn status(code: u16) -> Value {
    let reason = match code {
        403 => "Forbidden",
        404 => "NotFound",
        409 => "AlreadyExists",
        _ => "InternalError",
    };
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": format!("mocked {reason}"), "reason": reason, "code": code,
    })
}

/// `METHOD /path?query` with the query decoded and its parameters sorted.
fn request_line(method: &str, target: &str) -> String {
    let method = Method::from_bytes(method.as_bytes()).map_or_else(|_| method.to_owned(), |m| m.to_string());
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut pairs: Vec<String> = url::form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    pairs.sort();
    if pairs.is_empty() { format!("{method} {path}") } else { format!("{method} {path}?{}", pairs.join("&")) }
}

fn listing(expected: &[&str], received: &[&str]) -> String {
    let numbered = |lines: &[&str]| -> String {
        if lines.is_empty() {
            return "  (none)\n".to_owned();
        }
        lines.iter().enumerate().map(|(i, l)| format!("  {}. {l}\n", i + 1)).collect()
    };
    format!("expected:\n{}received:\n{}", numbered(expected), numbered(received))
}

/// A list response holding `items`.
pub fn list(items: impl IntoIterator<Item = Value>) -> Value {
    json!({"apiVersion": "v1", "kind": "List", "metadata": {}, "items": items.into_iter().collect::<Vec<_>>()})
}

/// A typed object from its JSON.
pub fn object<K: DeserializeOwned>(value: Value) -> K {
    serde_json::from_value(value).expect("a valid object")
}

/// A watch cache that listed `objects` (Init, InitApply each, InitDone: what a watch starts with).
pub fn cache<K, T>(objects: impl IntoIterator<Item = T>) -> Store<K>
where
    K: Resource<DynamicType = ()> + Clone + From<T> + 'static,
{
    let (store, mut writer) = reflector::store();
    writer.apply_watcher_event(&watcher::Event::Init);
    for object in objects {
        writer.apply_watcher_event(&watcher::Event::InitApply(K::from(object)));
    }
    writer.apply_watcher_event(&watcher::Event::InitDone);
    store
}

/// An empty cache, listed.
pub fn empty<K: Resource<DynamicType = ()> + Clone + 'static>() -> Store<K> {
    cache::<K, K>([])
}

/// Every cache empty: what the controller sees of a namespace with none of its children.
pub fn empty_caches() -> Stores {
    Stores {
        service_accounts: empty(),
        config_maps: empty(),
        secrets: empty(),
        stateful_sets: empty(),
        services: empty(),
        network_policies: empty(),
        deployments: empty(),
        hpas: empty(),
        pdbs: empty(),
        ingresses: empty(),
        role_bindings: empty(),
        cron_jobs: empty(),
        jobs: empty(),
        volume_claims: empty(),
        service_monitors: empty(),
        prometheus_rules: empty(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::Api;

    #[test]
    fn request_lines_ignore_encoding_and_parameter_order() {
        assert_eq!(
            request_line("GET", "/api/v1/pods?&labelSelector=a%3Db%2Cc%20in%20%28x%29&limit=5"),
            request_line("GET", "/api/v1/pods?limit=5&labelSelector=a=b,c in (x)"),
        );
        assert_eq!(request_line("DELETE", "/api/v1/x?"), "DELETE /api/v1/x");
    }

    #[tokio::test]
    async fn answers_the_script_and_returns_what_was_received() {
        let (client, server) = api_server(vec![expect("GET /api/v1/namespaces/ns/configmaps/a", Reply::Status(404))]);
        let api: Api<ConfigMap> = Api::namespaced(client, "ns");
        let (found, received) = server.run(api.get_opt("a")).await;
        assert!(found.expect("a 404 is absence").is_none());
        assert_eq!(received.len(), 1);
        assert_eq!(received[0].body, Value::Null);
    }

    #[tokio::test]
    #[should_panic(expected = "the requests differ from the script")]
    async fn fails_on_an_unexpected_request() {
        let (client, server) = api_server(vec![expect("GET /api/v1/namespaces/ns/configmaps/a", Reply::Status(404))]);
        let api: Api<ConfigMap> = Api::namespaced(client, "ns");
        let _ = server.run(api.get_opt("b")).await;
    }

    #[tokio::test]
    #[should_panic(expected = "the requests differ from the script")]
    async fn fails_on_a_missing_request() {
        let (_client, server) = api_server(vec![expect("GET /api/v1/namespaces/ns/configmaps/a", Reply::Status(404))]);
        let _ = server.run(async {}).await;
    }

    #[tokio::test(start_paused = true)]
    #[should_panic(expected = "timed out")]
    async fn fails_when_the_code_under_test_hangs() {
        let (_client, server) = api_server(Vec::new());
        server.run(std::future::pending::<()>()).await;
    }
}

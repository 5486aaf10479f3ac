//! Downloading one feed: a time limit on the whole download, and a size cap applied while the
//! body streams in (a feed larger than `maxBytes` is never held in memory whole).

use std::time::Duration;

/// Seconds to open the connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a download failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request failed (connection, TLS, time-out).
    #[error("downloading {url}: {source}")]
    Request {
        /// The feed's URL.
        url: String,
        /// What failed.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with an error status.
    #[error("downloading {url}: HTTP {status}")]
    Status {
        /// The feed's URL.
        url: String,
        /// The status.
        status: reqwest::StatusCode,
    },
    /// The feed is larger than allowed.
    #[error("{url} is larger than {max} bytes (maxBytes)")]
    TooLarge {
        /// The feed's URL.
        url: String,
        /// The limit.
        max: u64,
    },
    /// The feed is not UTF-8 text.
    #[error("{url} is not UTF-8 text")]
    NotText {
        /// The feed's URL.
        url: String,
    },
}

/// A client for the downloads (no cookies, redirects followed up to 5 times).
pub fn client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .redirect(reqwest::redirect::Policy::limited(5))
        .user_agent(concat!("securityguard-operator/", env!("CARGO_PKG_VERSION"), " threat-feed-sync"))
        .build()
}

/// Downloads `url` within `timeout`, refusing more than `max_bytes`.
pub async fn download(client: &reqwest::Client, url: &str, max_bytes: u64, timeout: Duration) -> Result<String, Error> {
    let request = |source| Error::Request { url: url.to_owned(), source };
    let mut response = client.get(url).timeout(timeout).send().await.map_err(request)?;
    if !response.status().is_success() {
        return Err(Error::Status { url: url.to_owned(), status: response.status() });
    }
    let too_large = || Error::TooLarge { url: url.to_owned(), max: max_bytes };
    if response.content_length().is_some_and(|len| len > max_bytes) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(request)? {
        if (body.len() + chunk.len()) as u64 > max_bytes {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).map_err(|_| Error::NotText { url: url.to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Serves one response per connection: a header block, then `body` in `chunks` pieces,
    /// without a Content-Length (chunked), so that only the streamed cap can stop it.
    async fn serve(status: &'static str, body: Vec<u8>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let body = body.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 2048];
                    let _ = socket.read(&mut buf).await;
                    let head = format!("HTTP/1.1 {status}\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n");
                    if socket.write_all(head.as_bytes()).await.is_err() {
                        return;
                    }
                    for piece in body.chunks(1024) {
                        let chunk = format!("{:x}\r\n", piece.len());
                        if socket.write_all(chunk.as_bytes()).await.is_err()
                            || socket.write_all(piece).await.is_err()
                            || socket.write_all(b"\r\n").await.is_err()
                        {
                            return;
                        }
                    }
                    let _ = socket.write_all(b"0\r\n\r\n").await;
                });
            }
        });
        format!("http://{addr}/feed.txt")
    }

    #[tokio::test]
    async fn downloads_within_the_cap_and_refuses_beyond_it_while_streaming() {
        let client = client().expect("client");
        let url = serve("200 OK", b"a.example\n".repeat(100)).await;
        let text = download(&client, &url, 1000, Duration::from_secs(5)).await.expect("within the cap");
        assert_eq!(text.lines().count(), 100);
        let err = download(&client, &url, 999, Duration::from_secs(5)).await.unwrap_err();
        assert!(matches!(err, Error::TooLarge { max: 999, .. }), "{err}");
        assert!(err.to_string().ends_with("is larger than 999 bytes (maxBytes)"), "{err}");
    }

    #[tokio::test]
    async fn error_statuses_and_binary_bodies_are_refused() {
        let client = client().expect("client");
        let url = serve("404 Not Found", b"gone".to_vec()).await;
        let err = download(&client, &url, 1000, Duration::from_secs(5)).await.unwrap_err();
        assert!(err.to_string().ends_with("HTTP 404 Not Found"), "{err}");
        let url = serve("200 OK", vec![0xff, 0xfe, 0x00]).await;
        let err = download(&client, &url, 1000, Duration::from_secs(5)).await.unwrap_err();
        assert!(matches!(err, Error::NotText { .. }), "{err}");
    }

    #[tokio::test]
    async fn a_server_that_never_answers_times_out() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/feed.txt", listener.local_addr().expect("addr"));
        let _hold = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let err = download(&client().expect("client"), &url, 1000, Duration::from_millis(300)).await.unwrap_err();
        assert!(matches!(err, Error::Request { .. }), "{err}");
    }
}

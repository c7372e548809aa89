//! A minimal HTTP/1.1 keep-alive client over a tokio TCP stream, for the
//! benchmarks (so they need no HTTP client dependency). It speaks only what our
//! server answers: `Content-Length` bodies.

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// One keep-alive connection.
pub struct Connection {
    stream: BufReader<TcpStream>,
    host: String,
}

impl Connection {
    /// Connects to `addr` (host:port).
    pub async fn open(addr: &str) -> Result<Self> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        Ok(Connection {
            stream: BufReader::new(stream),
            host: addr.to_string(),
        })
    }

    /// Sends a request and returns (status, body).
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<(u16, Vec<u8>)> {
        // `FLYWHEEL_API_KEY`, when set, is sent to servers that require keys.
        let authorization = std::env::var("FLYWHEEL_API_KEY")
            .ok()
            .filter(|k| !k.is_empty())
            .map(|k| format!("Authorization: Bearer {k}\r\n"))
            .unwrap_or_default();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\n{authorization}Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
            self.host,
            body.len()
        );
        let stream = self.stream.get_mut();
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body).await?;
        self.read_response().await
    }

    async fn read_response(&mut self) -> Result<(u16, Vec<u8>)> {
        let mut line = String::new();
        self.stream.read_line(&mut line).await?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("bad status line `{}`", line.trim()))?;
        let mut length = 0usize;
        loop {
            line.clear();
            if self.stream.read_line(&mut line).await? == 0 {
                bail!("connection closed in the headers");
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().context("bad content-length")?;
                }
            }
        }
        let mut body = vec![0; length];
        self.stream.read_exact(&mut body).await?;
        Ok((status, body))
    }
}

/// `host:port` from `http://host:port[/]` or `host:port`; HTTPS is not spoken here.
pub fn server_address(server: &str) -> Result<String> {
    if server.starts_with("https://") {
        bail!("--server {server}: only plain http:// is supported (put TLS in a proxy in front)");
    }
    let address = server.trim_start_matches("http://").trim_end_matches('/');
    if address.is_empty() || address.contains('/') {
        bail!("--server {server}: expected http://HOST:PORT");
    }
    Ok(address.to_string())
}

/// One blocking request to a flywheel server with a JSON body (or none): (status, body bytes).
fn call(server: &str, method: &str, path: &str, payload: &[u8]) -> Result<(u16, Vec<u8>)> {
    let address = server_address(server)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut connection = Connection::open(&address).await?;
        connection
            .request(method, path, "application/json", payload)
            .await
    })
}

/// One blocking request whose answer is not JSON (a CSV export): (status, body bytes).
pub fn call_raw(server: &str, method: &str, path: &str) -> Result<(u16, Vec<u8>)> {
    call(server, method, path, &[])
}

/// One blocking JSON request to a flywheel server: (status, parsed body).
pub fn call_json(
    server: &str,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
) -> Result<(u16, serde_json::Value)> {
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    let (status, bytes) = call(server, method, path, payload.as_bytes())?;
    let value = if bytes.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&bytes).with_context(|| {
            format!("{server}{path} answered {status} with a body that is not JSON")
        })?
    };
    Ok((status, value))
}

/// The `{"error": {"message"}}` of a failed call, or the whole body.
pub fn error_message(body: &serde_json::Value) -> String {
    body["error"]["message"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| body.to_string())
}

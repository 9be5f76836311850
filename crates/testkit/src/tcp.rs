use crate::Guard;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A TCP service that speaks like Redis's PING on `bind` (port 0: an ephemeral port): a read
/// starting with `PING` is answered `+PONG\r\n`, any other bytes `-ERR unknown\r\n`, and a
/// client that says nothing hears nothing. After its answer it holds the connection for `hold`
/// (zero: closes it at once). Returns the bound address; the guard stops the listener.
pub async fn pong_server(bind: SocketAddr, hold: Duration) -> (SocketAddr, Guard) {
    let listener = TcpListener::bind(bind).await.expect("bind TCP listener");
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 64];
                let Ok(n) = sock.read(&mut buf).await else {
                    return;
                };
                if n == 0 {
                    return;
                }
                let reply: &[u8] = if buf[..n].starts_with(b"PING") {
                    b"+PONG\r\n"
                } else {
                    b"-ERR unknown\r\n"
                };
                let _ = sock.write_all(reply).await;
                // The client decides when it has enough.
                tokio::time::sleep(hold).await;
            });
        }
    });
    (addr, Guard(task))
}

/// A TLS endpoint on `bind` (port 0: an ephemeral port) presenting `config`'s certificate: it
/// completes each handshake, waits up to 2 s for a few bytes, and closes. Returns the bound
/// address; the guard stops the listener.
pub async fn tls_endpoint(
    bind: SocketAddr,
    config: Arc<rustls::ServerConfig>,
) -> (SocketAddr, Guard) {
    let listener = TcpListener::bind(bind).await.expect("bind TLS listener");
    let addr = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let task = tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(sock).await {
                    let mut buf = [0u8; 16];
                    let _ = tokio::time::timeout(Duration::from_secs(2), tls.read(&mut buf)).await;
                }
            });
        }
    });
    (addr, Guard(task))
}

/// A TCP service on `bind` (port 0: an ephemeral port) that sends `greeting` to each client
/// and closes the connection right after, as an SMTP server's banner would be cut short.
pub async fn greeter(bind: SocketAddr, greeting: &'static [u8]) -> (SocketAddr, Guard) {
    let listener = TcpListener::bind(bind).await.expect("bind TCP listener");
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            if let Ok((mut sock, _)) = listener.accept().await {
                let _ = sock.write_all(greeting).await;
            }
        }
    });
    (addr, Guard(task))
}

/// A TLS terminator on `bind` (port 0: an ephemeral port): each connection's handshake is
/// completed with `config`, then its bytes are relayed to and from `target` in plaintext (TLS
/// in front of a server that has none). Returns the bound address; the guard stops it.
pub async fn tls_forwarder(
    bind: SocketAddr,
    config: Arc<rustls::ServerConfig>,
    target: SocketAddr,
) -> (SocketAddr, Guard) {
    let listener = TcpListener::bind(bind).await.expect("bind TLS forwarder");
    let addr = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let task = tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(sock).await else {
                    return;
                };
                let Ok(mut upstream) = tokio::net::TcpStream::connect(target).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
            });
        }
    });
    (addr, Guard(task))
}

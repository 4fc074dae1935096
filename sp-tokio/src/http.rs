//! SP over WebSocket on the application's own HTTP server (axum, hyper): one port for the
//! page, its assets, its REST routes and the SP socket.
//!
//! A route hands its upgrade request to [`upgrade`], which checks it as a `ws://` listener
//! would (a WebSocket upgrade, an `Origin` the socket's
//! [`OriginPolicy`](sp_transport::OriginPolicy) admits, the socket's
//! `<protocol>.sp.nanomsg.org` subprotocol), answers it, and once hyper has switched the
//! connection attaches it to the socket as a pipe:
//!
//! ```no_run
//! # async fn demo() -> sp_tokio::Result<()> {
//! use axum::{extract::{Request, State}, routing::get, Router};
//! let rep = sp_tokio::Rep::new();
//! let app: Router = Router::new()
//!     .route("/sp", get(|State(rep): State<sp_tokio::Rep>, req: Request| async move {
//!         sp_tokio::http::upgrade(&rep, req)
//!     }))
//!     .with_state(rep.clone());
//! # let _ = app; Ok(())
//! # }
//! ```

use hyper_util::rt::TokioIo;
use sp_transport::websocket::async_tungstenite::tungstenite::http;
use sp_transport::websocket::async_tungstenite::tungstenite::protocol::Role;
use sp_transport::websocket::async_tungstenite::WebSocketStream;
use sp_transport::{Address, SocketCore};
use tokio_util::compat::TokioAsyncReadCompatExt;

use crate::Socket;

/// Answers a WebSocket upgrade request for `socket` and, once the server has switched
/// protocols, adopts the connection as one of its pipes
/// ([`Socket::adopt_ws`](sp_transport::Socket::adopt_ws)). Returns the response to send:
/// `101 Switching Protocols`, or the refusal (`400` not an upgrade or the wrong SP protocol,
/// `403` an origin the socket does not admit) with its reason as the body, which a browser
/// shows in its network panel.
///
/// The request must come from hyper (axum's `Request` does): the upgraded connection is
/// taken from its extensions. A failure after the answer (the client went away, the pipe
/// hook refused the pipe) is logged.
pub fn upgrade<P: SocketCore, B>(
    socket: &Socket<P>,
    mut req: http::Request<B>,
) -> http::Response<String>
where
    B: Send + 'static,
{
    let answer = match socket.answer_ws_upgrade(req.headers()) {
        Ok(answer) => answer,
        Err(refusal) => {
            let mut response = http::Response::new(format!("{}\n", refusal.reason()));
            *response.status_mut() = refusal.status();
            return response;
        }
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    let path = req.uri().path().to_owned();
    let remote = req
        .extensions()
        .get::<std::net::SocketAddr>()
        .map(|a| Address::Tcp {
            host: a.ip().to_string(),
            port: a.port(),
        });
    let socket = socket.clone();
    let config = sp_transport::websocket::stream_config(socket.recv_max_size());
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(e) => {
                tracing::debug!(error = %e, "websocket upgrade did not complete");
                return;
            }
        };
        let io = TokioIo::new(upgraded).compat();
        let ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
        let info = sp_transport::rt::ConnInfo {
            remote,
            ..Default::default()
        };
        if let Err(e) = socket.adopt_ws(ws, path, info) {
            tracing::info!(error = %e, "upgraded websocket connection not adopted");
        }
    });
    answer.map(|()| String::new())
}

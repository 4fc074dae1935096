//! REQ/REP over TLS (`tls+tcp://`). The server's certificate is self-signed and generated at
//! run time with `rcgen`; the client trusts exactly that certificate. A second client, which
//! trusts a different certificate, is refused during the TLS handshake.
//!
//! ```sh
//! cargo run -p sp-tokio --example tls
//! ```

use std::error::Error;
use std::time::Duration;

use rcgen::{CertificateParams, DnType, KeyPair};
use sp_tokio::{Rep, Req, TlsConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    // A throwaway self-signed certificate for the loopback address.
    let (cert_pem, key_pem) = self_signed("sp-tokio tls example")?;
    let server_tls = TlsConfig::builder()
        .cert_key_pem(cert_pem.clone(), key_pem)
        .build()?;
    // The client trusts the server's own certificate as its root.
    let client_tls = TlsConfig::builder().ca_pem(cert_pem).build()?;

    let server = Rep::new();
    server.set_tls(server_tls);
    let listener = server.listen("tls+tcp://127.0.0.1:0").await?;
    println!("server listening on {listener}");
    let serving = tokio::spawn({
        let server = server.clone();
        async move {
            loop {
                let request = match server.recv().await {
                    Ok(request) => request,
                    Err(e) if e.is_closed() => return Ok::<(), sp_tokio::Error>(()),
                    Err(e) => return Err(e),
                };
                let text = String::from_utf8_lossy(&request.body).to_uppercase();
                println!(
                    "server <- {:?} (decrypted)",
                    String::from_utf8_lossy(&request.body)
                );
                server.send(text).await?;
            }
        }
    });

    let client = Req::new();
    client.set_tls(client_tls);
    client.set_recv_timeout(Some(Duration::from_secs(5)));
    client.dial(&listener).await?;
    println!("client connected; the server's certificate checked out");
    for text in ["attack at dawn", "bring snacks"] {
        let reply = client.request(text).await?;
        println!("client <- {:?}", String::from_utf8_lossy(&reply.body));
    }

    // A client that trusts some other certificate does not get in.
    let (other_cert_pem, _) = self_signed("somebody else")?;
    let stranger = Req::new();
    stranger.set_tls(TlsConfig::builder().ca_pem(other_cert_pem).build()?);
    match stranger.dial(&listener).await {
        Ok(_) => return Err("a client with the wrong root got in".into()),
        Err(e) => println!("stranger refused, as expected: {e}"),
    }

    server.close().await;
    serving.await??;
    println!("tls done");
    Ok(())
}

/// A self-signed certificate for 127.0.0.1 and localhost named `common_name`, and its private
/// key, both PEM.
fn self_signed(common_name: &str) -> Result<(String, String), rcgen::Error> {
    let names = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
    let mut params = CertificateParams::new(names)?;
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

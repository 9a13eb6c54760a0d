//! TLS client settings for native-tls, the non-blocking handshake, and classification of
//! its failures. (Builds without the `tls` feature use `tls_off.rs` instead.)

use crate::config::TlsOptions;
use crate::error::{Error, ErrorCode, Result};
use mio::net::TcpStream;
use native_tls::{Certificate, HandshakeError, Identity, MidHandshakeTlsStream};

pub use native_tls::TlsConnector;

/// An established TLS stream.
pub type TlsStream = native_tls::TlsStream<TcpStream>;

/// A TLS handshake waiting for the socket.
pub struct Handshake(MidHandshakeTlsStream<TcpStream>);

/// Where a handshake stands.
pub enum HandshakeStep {
    /// Done: the stream (pins already checked).
    Done(Box<TlsStream>),
    /// Waiting for readiness.
    Pending(Box<Handshake>),
}

fn step(
    result: std::result::Result<TlsStream, HandshakeError<TcpStream>>,
    pins: &[Vec<u8>],
    host: &str,
) -> Result<HandshakeStep> {
    match result {
        Ok(s) => {
            check_pins(&s, pins, host)?;
            Ok(HandshakeStep::Done(Box::new(s)))
        }
        Err(HandshakeError::WouldBlock(mid)) => {
            Ok(HandshakeStep::Pending(Box::new(Handshake(mid))))
        }
        Err(HandshakeError::Failure(e)) => Err(handshake_error(&e)),
    }
}

impl Handshake {
    /// Starts the handshake for `host` over `sock`.
    pub fn start(
        connector: &TlsConnector,
        host: &str,
        sock: TcpStream,
        pins: &[Vec<u8>],
    ) -> Result<HandshakeStep> {
        step(connector.connect(host, sock), pins, host)
    }

    /// Goes on after readiness.
    pub fn resume(self, pins: &[Vec<u8>], host: &str) -> Result<HandshakeStep> {
        step(self.0.handshake(), pins, host)
    }

    /// The socket underneath.
    pub fn tcp_mut(&mut self) -> &mut TcpStream {
        self.0.get_mut()
    }
}
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

/// Connectors in use, by settings: sessions with the same TLS settings share one, so the
/// system trust store is loaded once, not once per session.
static SHARED: Mutex<Option<HashMap<TlsOptions, Weak<TlsConnector>>>> = Mutex::new(None);

/// A connector for `opts`, shared with every live session that has the same settings.
pub fn shared_connector(opts: &TlsOptions) -> Result<Arc<TlsConnector>> {
    let mut cache = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    let map = cache.get_or_insert_with(HashMap::new);
    if let Some(c) = map.get(opts).and_then(Weak::upgrade) {
        return Ok(c);
    }
    let c = Arc::new(connector(opts)?);
    map.retain(|_, w| w.strong_count() > 0);
    map.insert(opts.clone(), Arc::downgrade(&c));
    Ok(c)
}

/// Builds a connector: system trust store plus any extra CAs, optional client identity.
pub fn connector(opts: &TlsOptions) -> Result<TlsConnector> {
    let config_err =
        |what: &str, e: native_tls::Error| Error::new(ErrorCode::TlsConfig, format!("{what}: {e}"));
    let mut b = TlsConnector::builder();
    for pem in &opts.extra_ca_pem {
        let mut found = 0;
        for block in pem_blocks(pem, "CERTIFICATE") {
            let cert =
                Certificate::from_pem(&block).map_err(|e| config_err("bad CA certificate", e))?;
            b.add_root_certificate(cert);
            found += 1;
        }
        if found == 0 {
            return Err(Error::new(ErrorCode::TlsConfig, "no PEM certificate in the CA data"));
        }
    }
    if let Some((cert, key)) = &opts.client_identity {
        let id =
            Identity::from_pkcs8(cert, key).map_err(|e| config_err("bad client identity", e))?;
        b.identity(id);
    }
    // With pins, the handshake accepts any chain and name; `check_pins` then demands
    // the exact certificate, which is stricter than both.
    if opts.insecure || !opts.pinned_der.is_empty() {
        b.danger_accept_invalid_certs(true).danger_accept_invalid_hostnames(true);
    }
    b.build().map_err(|e| config_err("cannot build TLS context", e))
}

/// Checks the certificates and key without building a TLS context (which loads the
/// system trust store): for configurations whose first connection is not TLS.
pub fn check(opts: &TlsOptions) -> Result<()> {
    for pem in &opts.extra_ca_pem {
        let blocks = pem_blocks(pem, "CERTIFICATE");
        if blocks.is_empty() {
            return Err(Error::new(ErrorCode::TlsConfig, "no PEM certificate in the CA data"));
        }
        for block in blocks {
            Certificate::from_pem(&block).map_err(|e| {
                Error::new(ErrorCode::TlsConfig, format!("bad CA certificate: {e}"))
            })?;
        }
    }
    if let Some((cert, key)) = &opts.client_identity {
        Identity::from_pkcs8(cert, key)
            .map_err(|e| Error::new(ErrorCode::TlsConfig, format!("bad client identity: {e}")))?;
    }
    Ok(())
}

/// The DER form of the first certificate in `pem`, for pinning.
pub fn pin_from_pem(pem: &[u8]) -> Result<Vec<u8>> {
    let block = pem_blocks(pem, "CERTIFICATE")
        .into_iter()
        .next()
        .ok_or_else(|| Error::new(ErrorCode::TlsConfig, "no PEM certificate to pin"))?;
    Certificate::from_pem(&block)
        .and_then(|c| c.to_der())
        .map_err(|e| Error::new(ErrorCode::TlsConfig, format!("bad certificate to pin: {e}")))
}

/// After the handshake: the server's certificate must be one of the pinned ones.
fn check_pins(stream: &TlsStream, pins: &[Vec<u8>], host: &str) -> Result<()> {
    if pins.is_empty() {
        return Ok(());
    }
    let presented =
        stream.peer_certificate().ok().flatten().and_then(|c| c.to_der().ok()).ok_or_else(
            || Error::new(ErrorCode::TlsCertificate, "the server sent no certificate"),
        )?;
    if pins.contains(&presented) {
        return Ok(());
    }
    Err(Error::new(
        ErrorCode::TlsCertificate,
        format!("{host} presented a certificate that is not the pinned one"),
    ))
}

/// Splits PEM data into the blocks with the given label (native-tls takes one certificate at a time).
fn pem_blocks(pem: &[u8], label: &str) -> Vec<Vec<u8>> {
    let text = String::from_utf8_lossy(pem);
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let mut out = Vec::new();
    let mut rest = text.as_ref();
    while let Some(start) = rest.find(&begin) {
        let Some(stop) = rest[start..].find(&end) else { break };
        let stop = start + stop + end.len();
        out.push(rest.as_bytes()[start..stop].to_vec());
        rest = &rest[stop..];
    }
    out
}

/// Maps a handshake failure to a code: certificate problems apart from the rest.
fn handshake_error(e: &native_tls::Error) -> Error {
    let text = e.to_string();
    let lower = text.to_ascii_lowercase();
    let cert = ["certificate", "verify failed", "hostname mismatch", "self signed", "self-signed"];
    let code = if cert.iter().any(|k| lower.contains(k)) {
        ErrorCode::TlsCertificate
    } else {
        ErrorCode::Tls
    };
    Error::new(code, format!("TLS handshake failed: {text}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_pem_bundles() {
        let pem = b"junk\n-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n\
                    -----BEGIN CERTIFICATE-----\nBBB\n-----END CERTIFICATE-----\n";
        let blocks = pem_blocks(pem, "CERTIFICATE");
        assert_eq!(blocks.len(), 2);
        assert!(blocks[1].windows(3).any(|w| w == b"BBB"));
    }

    #[test]
    fn sessions_with_the_same_settings_share_a_connector() {
        let a = shared_connector(&TlsOptions::default()).unwrap();
        let b = shared_connector(&TlsOptions::default()).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        let insecure = TlsOptions { insecure: true, ..Default::default() };
        assert!(!Arc::ptr_eq(&a, &shared_connector(&insecure).unwrap()));
    }

    #[test]
    fn garbage_ca_is_a_config_error() {
        let opts = TlsOptions { extra_ca_pem: vec![b"not pem".to_vec()], ..Default::default() };
        assert_eq!(connector(&opts).unwrap_err().code, ErrorCode::TlsConfig);
    }
}

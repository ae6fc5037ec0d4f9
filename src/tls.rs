//! TLS for connections to servers pgshadow does not own — a live source it samples (`--sample`), a shadow server
//! (`--shadow-url`) — as libpq's `sslmode` asks (in the URL, or `PGSSLMODE`):
//! - `disable`: never (`allow` is taken as `prefer`);
//! - `prefer` (libpq's default, and ours) and `require`: encrypted when the server offers it (`prefer`) or always
//!   (`require`), the certificate not checked, as libpq does not check it either;
//! - `verify-ca` and `verify-full`: always, the certificate checked against `sslrootcert` (a PEM file, in the URL or
//!   `PGSSLROOTCERT`) or else this machine's trusted roots; `verify-full` also checks the host name.
//!
//! A client certificate is sent when `sslcert` and `sslkey` (or `PGSSLCERT`, `PGSSLKEY`) name one; libpq's default
//! files in `~/.postgresql/` are not looked for.
//!
//! Shadows pgshadow starts itself are reached without TLS: through a private socket directory, or 127.0.0.1.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::error::{Error, Result};

/// What a connection string asks of TLS beyond what tokio-postgres reads itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TlsRequest {
    /// `verify-ca` or `verify-full`, which tokio-postgres does not know: the string's `sslmode` then says `require`.
    pub(crate) verify: Verify,
    /// `sslrootcert`: the certificates to trust instead of the machine's.
    pub(crate) root_cert: Option<PathBuf>,
    /// `sslcert` and `sslkey`: a client certificate (PEM) and its key, for servers that ask for one.
    pub(crate) client_cert: Option<PathBuf>,
    pub(crate) client_key: Option<PathBuf>,
}

/// How much of the server's certificate is checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Verify {
    /// Nothing (`prefer`, `require`).
    #[default]
    Nothing,
    /// That a trusted root signed it (`verify-ca`).
    Ca,
    /// That too, and that it names the host (`verify-full`).
    Full,
}

impl TlsRequest {
    /// The libpq environment for client programs (`pg_restore`) to connect as this request says.
    pub(crate) fn libpq_env(&self, mode: SslMode) -> Vec<(&'static str, String)> {
        let mode = match (self.verify, mode) {
            (Verify::Full, _) => "verify-full",
            (Verify::Ca, _) => "verify-ca",
            (_, SslMode::Disable) => "disable",
            (_, SslMode::Require) => "require",
            _ => "prefer",
        };
        let mut env = vec![("PGSSLMODE", mode.to_owned())];
        for (name, path) in
            [("PGSSLROOTCERT", &self.root_cert), ("PGSSLCERT", &self.client_cert), ("PGSSLKEY", &self.client_key)]
        {
            if let Some(path) = path {
                env.push((name, path.display().to_string()));
            }
        }
        env
    }
}

/// Takes what tokio-postgres refuses out of a URL or `key=value` string: `sslmode=verify-ca|verify-full` (the string
/// that is left asks for `require`), `sslmode=allow` (left as `prefer`), `sslrootcert`, `sslcert` and `sslkey`; with
/// `PGSSLMODE`, `PGSSLROOTCERT`, `PGSSLCERT` and `PGSSLKEY` for what it leaves out.
pub(crate) fn split(url: &str) -> (String, TlsRequest) {
    let mut request = TlsRequest::default();
    let mode_given = std::cell::Cell::new(false);
    // What becomes of a parameter: `None`, kept as written; `Some(None)`, taken out; `Some(Some(p))`, written as p.
    let mut take = |key: &str, value: &str| -> Option<Option<String>> {
        match key {
            "sslmode" => {
                mode_given.set(true);
                match value {
                    "verify-ca" => request.verify = Verify::Ca,
                    "verify-full" => request.verify = Verify::Full,
                    // libpq's `allow` tries without TLS first; `prefer` tries with it first, which tokio-postgres knows.
                    "allow" => return Some(Some("sslmode=prefer".to_owned())),
                    _ => return None,
                }
                Some(Some("sslmode=require".to_owned()))
            }
            "sslrootcert" | "sslcert" | "sslkey" => {
                let slot = match key {
                    "sslrootcert" => &mut request.root_cert,
                    "sslcert" => &mut request.client_cert,
                    _ => &mut request.client_key,
                };
                *slot = Some(PathBuf::from(value));
                Some(None)
            }
            _ => None,
        }
    };
    let rest = if let Some((base, query)) = url.split_once('?').filter(|_| url.contains("://")) {
        let params: Vec<String> = query
            .split('&')
            .filter_map(|param| {
                let (key, value) = param.split_once('=').unwrap_or((param, ""));
                let value = percent_encoding::percent_decode_str(value).decode_utf8_lossy();
                take(key, &value).unwrap_or_else(|| Some(param.to_owned()))
            })
            .collect();
        if params.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", params.join("&"))
        }
    } else if url.contains("://") {
        url.to_owned()
    } else {
        let words: Vec<String> = url
            .split_whitespace()
            .filter_map(|word| {
                let (key, value) = word.split_once('=').unwrap_or((word, ""));
                take(key.trim(), value.trim_matches('\'')).unwrap_or_else(|| Some(word.to_owned()))
            })
            .collect();
        words.join(" ")
    };
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let mut rest = rest;
    if !mode_given.get() {
        if let Some(mode) = env("PGSSLMODE") {
            let joiner = match (url.contains("://"), rest.contains('?')) {
                (true, true) => "&",
                (true, false) => "?",
                (false, _) => " ",
            };
            let replaced = take("sslmode", &mode).flatten().unwrap_or_else(|| format!("sslmode={mode}"));
            rest = format!("{rest}{joiner}{replaced}");
        }
    }
    for (slot, name) in [
        (&mut request.root_cert, "PGSSLROOTCERT"),
        (&mut request.client_cert, "PGSSLCERT"),
        (&mut request.client_key, "PGSSLKEY"),
    ] {
        if slot.is_none() {
            *slot = env(name).map(PathBuf::from);
        }
    }
    (rest, request)
}

/// A TLS connector for tokio-postgres.
#[derive(Clone)]
pub(crate) struct Connector(pub(crate) MakeRustlsConnect);

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Connector(rustls)")
    }
}

/// Connects as `config` says, through `tls` when given (else without TLS), and drives the connection on a task of
/// its own that ends with it (`what` names the connection in the debug log then).
pub(crate) async fn connect(
    config: &tokio_postgres::Config,
    tls: Option<&Connector>,
    what: &'static str,
) -> std::result::Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>), tokio_postgres::Error> {
    let ended = move |result: std::result::Result<(), tokio_postgres::Error>| {
        if let Err(e) = result {
            tracing::debug!(error = %e, "{what} connection ended");
        }
    };
    Ok(match tls {
        None => {
            let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
            (client, tokio::spawn(async move { ended(connection.await) }))
        }
        Some(tls) => {
            let (client, connection) = config.connect(tls.0.clone()).await?;
            (client, tokio::spawn(async move { ended(connection.await) }))
        }
    })
}

/// The connector for `mode` and `request`, `None` when no TLS is wanted (`sslmode=disable`). `shown` names the
/// connection in errors.
pub(crate) fn connector(mode: SslMode, request: &TlsRequest, shown: &str) -> Result<Option<Connector>> {
    if mode == SslMode::Disable {
        return Ok(None);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let fail = |message: String| Error::Source { path: shown.into(), message, detail: String::new() };
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| fail(format!("TLS: {e}")))?;
    let roots = match request.verify {
        Verify::Nothing => None,
        Verify::Ca | Verify::Full => Some(
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots(request, &fail)?), Arc::clone(&provider))
                .build()
                .map_err(|e| fail(format!("TLS: {e}")))?,
        ),
    };
    let verifier = Verifier {
        roots,
        algorithms: provider.signature_verification_algorithms,
        host_name: request.verify == Verify::Full,
    };
    let builder = builder.dangerous().with_custom_certificate_verifier(Arc::new(verifier));
    let config = match (&request.client_cert, &request.client_key) {
        (None, None) => builder.with_no_client_auth(),
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(|certs| certs.collect::<std::result::Result<Vec<_>, _>>())
                .map_err(|e| fail(format!("sslcert {}: {e}", cert.display())))?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| fail(format!("sslkey {}: {e}", key.display())))?;
            builder.with_client_auth_cert(chain, key).map_err(|e| fail(format!("sslcert and sslkey: {e}")))?
        }
        _ => return Err(fail("sslcert and sslkey go together: give both (a client certificate and its key)".into())),
    };
    Ok(Some(Connector(MakeRustlsConnect::new(config))))
}

/// The certificates to trust: `sslrootcert`'s, else the machine's.
fn roots(request: &TlsRequest, fail: &dyn Fn(String) -> Error) -> Result<rustls::RootCertStore> {
    let mut store = rustls::RootCertStore::empty();
    let certificates: Vec<CertificateDer<'static>> = match &request.root_cert {
        Some(path) => CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<std::result::Result<Vec<_>, _>>())
            .map_err(|e| fail(format!("sslrootcert {}: {e}", path.display())))?,
        None => rustls_native_certs::load_native_certs().certs,
    };
    let (added, _) = store.add_parsable_certificates(certificates);
    if added == 0 {
        let whose =
            request.root_cert.as_ref().map_or("this machine's trusted roots".to_owned(), |p| p.display().to_string());
        return Err(fail(format!("no certificate to check the server's against in {whose}")));
    }
    Ok(store)
}

/// The server's certificate check. Without roots (`prefer`, `require`) the certificate is not checked, as libpq's
/// `require` does not check it either, but the handshake's signatures are. With roots (`verify-ca`, `verify-full`)
/// it must chain to one of them; for `verify-ca` a certificate for another name passes.
#[derive(Debug)]
struct Verifier {
    roots: Option<Arc<WebPkiServerVerifier>>,
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
    host_name: bool,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let Some(roots) = &self.roots else { return Ok(ServerCertVerified::assertion()) };
        match roots.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.host_name => Ok(ServerCertVerified::assertion()),
            outcome => outcome,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verification_modes_and_root_certs_are_taken_out_of_urls_and_keyword_strings() {
        let (rest, request) = split("postgres://u@db/app?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&x=1");
        assert_eq!(rest, "postgres://u@db/app?sslmode=require&x=1");
        assert_eq!(request.verify, Verify::Full);
        assert_eq!(request.root_cert, Some(PathBuf::from("/etc/ca.pem")));
        let (rest, request) = split("host=db sslmode=verify-ca sslrootcert=/ca.pem user=u");
        assert_eq!(rest, "host=db sslmode=require user=u");
        assert_eq!(request.verify, Verify::Ca);
        let (rest, request) = split("postgres://u@db/app?sslmode=require");
        assert_eq!((rest.as_str(), request.verify), ("postgres://u@db/app?sslmode=require", Verify::Nothing));
        assert_eq!(split("host=db sslmode=allow").0, "host=db sslmode=prefer");
        let (rest, _) = split("postgres://u@db/app?sslrootcert=/ca.pem");
        assert_eq!(rest, "postgres://u@db/app");
        assert_eq!(
            TlsRequest { verify: Verify::Full, root_cert: Some("/ca.pem".into()), ..TlsRequest::default() }
                .libpq_env(SslMode::Require),
            vec![("PGSSLMODE", "verify-full".to_owned()), ("PGSSLROOTCERT", "/ca.pem".to_owned())]
        );
    }
}

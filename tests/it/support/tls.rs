//! A throw-away CA for TLS tests and the pool bench: server certificates for
//! `localhost`, client certificates, and HTTPS servers on 127.0.0.1.

use std::sync::Arc;

use etlpool::mock::server::{Answer, ConnContext, HttpServer, Request, Response, ServerOptions};

/// A CA and a server certificate for `localhost` signed by it.
pub struct TestCa {
    pub ca_pem: String,
    pub server: Arc<rustls::ServerConfig>,
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
    leaf: (rustls::pki_types::CertificateDer<'static>, Vec<u8>),
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl TestCa {
    pub fn new() -> TestCa {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let issuer = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();
        let leaf = (cert.der().clone(), key.serialize_der());
        let server = Self::server_config(
            &leaf,
            rustls::ServerConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth(),
        );
        TestCa {
            ca_pem: issuer.pem(),
            server,
            issuer,
            leaf,
        }
    }

    fn server_config(
        leaf: &(rustls::pki_types::CertificateDer<'static>, Vec<u8>),
        builder: rustls::ConfigBuilder<rustls::ServerConfig, rustls::server::WantsServerCert>,
    ) -> Arc<rustls::ServerConfig> {
        let key = rustls::pki_types::PrivateKeyDer::try_from(leaf.1.clone()).unwrap();
        Arc::new(builder.with_single_cert(vec![leaf.0.clone()], key).unwrap())
    }

    /// A client certificate and its key, as PEM, signed by this CA.
    pub fn client_pem(&self) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["etlpool-client".to_string()]).unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// A server config that requires a client certificate from this CA.
    pub fn mtls_server(&self) -> Arc<rustls::ServerConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.issuer.der().clone()).unwrap();
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider(),
        )
        .build()
        .unwrap();
        let builder = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier);
        Self::server_config(&self.leaf, builder)
    }

    /// An HTTPS server with this CA's certificate, answering 200 "ok".
    pub fn ok_server(&self) -> HttpServer {
        Self::serve(self.server.clone())
    }

    /// An HTTPS server with `config`, answering 200 "ok".
    pub fn serve(config: Arc<rustls::ServerConfig>) -> HttpServer {
        let opts = ServerOptions {
            tls: Some(config),
            ..ServerOptions::default()
        };
        HttpServer::start(
            opts,
            Arc::new(|_: Request, _: &ConnContext| {
                Answer::Response(Response::bytes(200, "text/plain", b"ok".to_vec()))
            }),
        )
        .expect("start tls server")
    }
}

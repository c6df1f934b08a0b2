//! The seed scenario, end to end with real components: a local
//! docker-registry behind htpasswd whose user is `_dcgcloud_token` and whose
//! password is an access token; the real docker-credential-gcloud, offline,
//! reading that token from a file; skopeo inspect and copy run through
//! `docker-credential-incus exec --helper gcloud`. Meanwhile every process's
//! argv is sampled from /proc to prove the token never appears there.

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

const MAKE_IMAGE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/make-oci-image");
const USER: &str = "_dcgcloud_token";

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// True when every program is installed; otherwise fails under CI and skips elsewhere.
fn require(programs: &[&str]) -> bool {
    let missing: Vec<&&str> = programs.iter().filter(|p| !have(p)).collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var("CI").is_err(),
        "the seed scenario needs {missing:?} (apt-get install docker-registry apache2-utils skopeo; google-cloud-cli)"
    );
    eprintln!("skipped: {missing:?} not installed");
    false
}

/// A docker-registry on 127.0.0.1 with one htpasswd user; killed on drop.
struct Registry {
    child: Child,
    port: u16,
}

impl Registry {
    fn start(dir: &Path, password: &str) -> Registry {
        let htpasswd = dir.join("htpasswd");
        // -i: the password comes on stdin, never in argv.
        let mut h = Command::new("htpasswd")
            .args(["-B", "-i", "-c"])
            .arg(&htpasswd)
            .arg(USER)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        h.stdin
            .take()
            .unwrap()
            .write_all(password.as_bytes())
            .unwrap();
        assert!(h.wait().unwrap().success(), "htpasswd failed");
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let config = dir.join("config.yml");
            fs::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: tooling-seed-test\nauth:\n  htpasswd:\n    realm: tooling-seed\n    path: {}\n",
                    dir.join("data").display(),
                    htpasswd.display()
                ),
            )
            .unwrap();
            let log = fs::File::create(dir.join("registry.log")).unwrap();
            let child = Command::new("docker-registry")
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap();
            let mut registry = Registry { child, port };
            if registry.wait_ready() {
                return registry;
            }
        }
        panic!(
            "docker-registry did not come up: {}",
            fs::read_to_string(dir.join("registry.log")).unwrap_or_default()
        );
    }

    /// Waits until `/v2/` answers 401, or the process dies.
    fn wait_ready(&mut self) -> bool {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(15) {
            if self.child.try_wait().ok().flatten().is_some() {
                return false;
            }
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let _ = s.write_all(b"GET /v2/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
                let mut head = [0u8; 12];
                if s.read_exact(&mut head).is_ok() && head.ends_with(b"401") {
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A throwaway gcloud configuration that hands out the token in `token_file`
/// for any registry, with no network use (no GCE metadata probe, no update
/// check, no usage reporting).
fn gcloud_config(dir: &Path, token_file: &Path) -> PathBuf {
    let config = dir.join("gcloud");
    fs::create_dir_all(config.join("configurations")).unwrap();
    fs::write(config.join("active_config"), "default").unwrap();
    fs::write(
        config.join("configurations/config_default"),
        format!(
            "[auth]\naccess_token_file = {}\n\n[artifacts]\nallow_unrecognized_registry = true\n\n[core]\ncheck_gce_metadata = false\ndisable_usage_reporting = true\n\n[component_manager]\ndisable_update_check = true\n",
            token_file.display()
        ),
    )
    .unwrap();
    // The cached answer to "is this a GCE VM?", so gcloud never asks the metadata server.
    fs::write(config.join("gce"), "False").unwrap();
    config
}

/// Samples every process's argv until stopped: where the token showed up,
/// how many samples caught skopeo, and how many caught a control marker
/// (which proves the sampler can see what it looks for).
struct ArgvSampler {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<(Vec<String>, usize, usize)>>,
}

impl ArgvSampler {
    fn start(token: &str, control: &str) -> ArgvSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let needle = token.as_bytes().to_vec();
        let control = control.as_bytes().to_vec();
        let thread = std::thread::spawn(move || {
            let mut leaks = Vec::new();
            let mut skopeo = 0;
            let mut controls = 0;
            while !flag.load(Ordering::Relaxed) {
                let Ok(entries) = fs::read_dir("/proc") else {
                    break;
                };
                for entry in entries.flatten() {
                    let name = entry.file_name();
                    if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
                        continue;
                    }
                    let Ok(cmdline) = fs::read(entry.path().join("cmdline")) else {
                        continue;
                    };
                    if cmdline
                        .windows(needle.len())
                        .any(|w| w == needle.as_slice())
                    {
                        leaks.push(format!("pid {}", name.to_string_lossy()));
                    }
                    if cmdline
                        .windows(control.len())
                        .any(|w| w == control.as_slice())
                    {
                        controls += 1;
                    }
                    let argv0 = cmdline.split(|b| *b == 0).next().unwrap_or_default();
                    if argv0 == b"skopeo" || argv0.ends_with(b"/skopeo") {
                        skopeo += 1;
                    }
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            (leaks, skopeo, controls)
        });
        ArgvSampler {
            stop,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> (Vec<String>, usize, usize) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

fn random_hex() -> String {
    let mut bytes = [0u8; 16];
    fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut bytes)
        .unwrap();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn private_dir(path: &Path) -> PathBuf {
    fs::create_dir_all(path).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o700)).unwrap();
    path.to_path_buf()
}

#[test]
fn seed_scenario_skopeo_reaches_a_gcloud_token_registry_through_exec() {
    if !require(&[
        "docker-registry",
        "htpasswd",
        "skopeo",
        "docker-credential-gcloud",
        "tar",
        "gzip",
        "sha256sum",
    ]) {
        return;
    }
    let tmp = tempfile::Builder::new()
        .prefix("dci-seed.")
        .tempdir()
        .unwrap();
    let dir = tmp.path();
    // Characters that basic auth, JSON and URLs treat specially.
    let token = format!("ya29.dci-{}+/=", random_hex());
    let token_file = dir.join("token");
    fs::write(&token_file, &token).unwrap();
    fs::set_permissions(&token_file, fs::Permissions::from_mode(0o600)).unwrap();
    let registry = Registry::start(&private_dir(&dir.join("registry")), &token);
    let host = registry.host();
    let image = format!("docker://{host}/dcih/hello:v1");

    // Seed the image, with credentials from a 0600 file rather than --dest-creds.
    let push_auth = dir.join("push-auth.json");
    fs::write(
        &push_auth,
        format!(
            "{{\"auths\":{{\"{host}\":{{\"auth\":\"{}\"}}}}}}",
            STANDARD.encode(format!("{USER}:{token}"))
        ),
    )
    .unwrap();
    fs::set_permissions(&push_auth, fs::Permissions::from_mode(0o600)).unwrap();
    let layout = dir.join("oci");
    assert!(
        Command::new(MAKE_IMAGE)
            .arg(&layout)
            .arg("v1")
            .status()
            .unwrap()
            .success()
    );
    let push = Command::new("skopeo")
        .args(["copy", "-q", "--dest-tls-verify=false", "--dest-authfile"])
        .arg(&push_auth)
        .arg(format!("oci:{}:v1", layout.display()))
        .arg(&image)
        .output()
        .unwrap();
    assert!(
        push.status.success(),
        "push: {}",
        String::from_utf8_lossy(&push.stderr)
    );
    fs::remove_file(&push_auth).unwrap();

    let home = private_dir(&dir.join("home"));
    let runtime = private_dir(&dir.join("run"));
    let gcloud = gcloud_config(dir, &token_file);
    let env = |cmd: &mut Command| {
        cmd.env("HOME", &home)
            .env("XDG_RUNTIME_DIR", &runtime)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("CLOUDSDK_CONFIG", &gcloud)
            .env("CLOUDSDK_CORE_CHECK_GCE_METADATA", "false")
            .env("CLOUDSDK_CORE_DISABLE_PROMPTS", "1")
            .env_remove("DOCKER_CONFIG")
            .env_remove("REGISTRY_AUTH_FILE")
            .env_remove("DOCKER_AUTH_CONFIG");
    };

    // Without credentials the registry refuses both operations.
    let empty = dir.join("empty-auth.json");
    fs::write(&empty, "{}").unwrap();
    for args in [
        vec![
            "inspect".to_string(),
            "--tls-verify=false".to_string(),
            image.clone(),
        ],
        vec![
            "copy".to_string(),
            "--src-tls-verify=false".to_string(),
            image.clone(),
            format!("oci:{}:v1", dir.join("anon").display()),
        ],
    ] {
        let mut cmd = Command::new("skopeo");
        env(&mut cmd);
        let out = cmd
            .env("REGISTRY_AUTH_FILE", &empty)
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded anonymously");
        assert!(
            stderr.contains("unauthorized") || stderr.contains("401"),
            "{args:?}: {stderr}"
        );
    }

    let control = format!("dci-argv-control-{}", random_hex());
    let sampler = ArgvSampler::start(&token, &control);
    let status = Command::new("sh")
        .args(["-c", "sleep 0.3", &control])
        .status()
        .unwrap();
    assert!(status.success());
    let bin = assert_cmd::cargo::cargo_bin("docker-credential-incus");
    // inspect finds the file through REGISTRY_AUTH_FILE.
    let mut inspect = Command::new(&bin);
    env(&mut inspect);
    let inspect = inspect
        .args([
            "exec",
            "--helper",
            "gcloud",
            "--timeout",
            "120",
            "--registry",
            &host,
            "--",
        ])
        .args(["skopeo", "inspect", "--tls-verify=false", &image])
        .output()
        .unwrap();
    // copy is given the file through the {authfile} placeholder.
    let copied = dir.join("copied");
    let mut copy = Command::new(&bin);
    env(&mut copy);
    let copy = copy
        .args([
            "exec",
            "--helper",
            "gcloud",
            "--timeout",
            "120",
            "--registry",
            &host,
            "--",
        ])
        .args([
            "skopeo",
            "copy",
            "--authfile",
            "{authfile}",
            "--src-tls-verify=false",
            &image,
        ])
        .arg(format!("oci:{}:v1", copied.display()))
        .output()
        .unwrap();
    let (leaks, skopeo_samples, control_samples) = sampler.finish();

    assert!(
        inspect.status.success(),
        "exec skopeo inspect: {}",
        String::from_utf8_lossy(&inspect.stderr)
    );
    let stdout = String::from_utf8_lossy(&inspect.stdout);
    assert!(
        stdout.contains(&format!("\"Name\": \"{host}/dcih/hello\"")),
        "{stdout}"
    );
    assert!(
        copy.status.success(),
        "exec skopeo copy: {}",
        String::from_utf8_lossy(&copy.stderr)
    );
    assert!(copied.join("index.json").exists());
    assert_eq!(
        fs::read_dir(&runtime).unwrap().count(),
        0,
        "an auth file was left behind"
    );
    assert!(
        leaks.is_empty(),
        "the token appeared in the argv of {leaks:?}"
    );
    assert!(
        control_samples > 0,
        "the sampler never saw a planted argv, so it proves nothing"
    );
    assert!(
        skopeo_samples > 0,
        "the sampler never saw skopeo, so it proved nothing"
    );
    for out in [&inspect, &copy] {
        assert!(!String::from_utf8_lossy(&out.stderr).contains(&token));
        assert!(!String::from_utf8_lossy(&out.stdout).contains(&token));
    }
    drop(registry);
}

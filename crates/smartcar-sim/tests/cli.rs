//! The `smartcar-sim` binary as a test suite in another language starts it: a config file,
//! `--print-env json` read from its first line of stdout, the control API, and a clean exit on
//! SIGTERM.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Kills the child if the test fails before it stops it.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const CONFIG: &str = r#"
port = 0
seed = 3
vehicles = 2
users = 1

[application]
client-id = "cli-client"
client-secret = "cli-secret"
redirect-uris = ["https://example.com/auth"]
management-token = "cli-amt"

[[webhooks]]
id = "cli-webhook"
url = "http://127.0.0.1:9/hook"
"#;

/// Starts the binary with `args` and returns it with the JSON object it printed first.
fn start(args: &[&str]) -> (Running, serde_json::Value) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_smartcar-sim"))
        .args(args)
        .env_remove("SMARTCAR_SIM_PORT")
        .env_remove("SMARTCAR_SIM_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start smartcar-sim");
    let stdout = child.stdout.take().expect("stdout");
    let running = Running(child);
    let mut line = String::new();
    // The first line arrives once the port is bound (a few ms; bounded by the test's timeout).
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read the first line");
    let env: serde_json::Value = serde_json::from_str(&line).expect("--print-env json line");
    (running, env)
}

#[tokio::test]
async fn config_file_print_env_control_api_and_sigterm() {
    let dir = std::env::temp_dir().join(format!("smartcar-sim-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("sim.toml");
    std::fs::write(&config, CONFIG).unwrap();

    let (mut sim, env) = start(&["--config", config.to_str().unwrap(), "--print-env", "json"]);
    let base = env["SMARTCAR_SIM_BASE_URL"].as_str().unwrap().to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    assert_eq!(env["SMARTCAR_API_ORIGIN"], base.as_str());
    assert_eq!(
        env["SMARTCAR_AUTH_ORIGIN"],
        format!("{base}/oauth/token").as_str()
    );
    assert_eq!(env["E2E_SMARTCAR_CLIENT_ID"], "cli-client");
    assert_eq!(env["E2E_SMARTCAR_CLIENT_SECRET"], "cli-secret");
    assert_eq!(env["E2E_SMARTCAR_AMT"], "cli-amt");
    assert_eq!(env["SMARTCAR_MANAGEMENT_TOKEN"], "cli-amt");
    assert_eq!(env["E2E_SMARTCAR_REDIRECT_URI"], "https://example.com/auth");
    assert_eq!(env["E2E_SMARTCAR_WEBHOOK_ID"], "cli-webhook");
    assert_eq!(
        env["SMARTCAR_SIM_CONTROL_URL"],
        format!("{base}/_sim").as_str()
    );

    let http = reqwest::Client::new();
    let overview: serde_json::Value = http
        .get(format!("{base}/_sim"))
        .bearer_auth("cli-amt")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(overview["seed"], 3);
    assert_eq!(overview["application"]["client_id"], "cli-client");
    assert_eq!(
        overview["application"]["redirect_uris"],
        serde_json::json!(["https://example.com/auth"])
    );
    let wrong = http
        .get(format!("{base}/_sim"))
        .bearer_auth("cli-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);

    // The application is the file's: its credentials get an application token.
    let token = http
        .post(format!("{base}/oauth2/token"))
        .basic_auth("cli-client", Some("cli-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), 200);

    // SIGTERM: a clean, prompt exit with status 0.
    let pid = sim.0.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = sim.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "smartcar-sim did not exit within 10 s of SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "{status:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn invalid_settings_exit_with_status_2_and_say_why() {
    let output = Command::new(env!("CARGO_BIN_EXE_smartcar-sim"))
        .args(["--port", "0", "--webhook", "dup=http://127.0.0.1:9/a"])
        .args(["--webhook", "dup=http://127.0.0.1:9/b"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("webhook id `dup` is given twice"),
        "{stderr}"
    );
}

/// The help text is the CLI's documentation: a change to it shows up in review.
#[test]
fn help_text() {
    let output = Command::new(env!("CARGO_BIN_EXE_smartcar-sim"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(output.status.success());
    insta::assert_snapshot!(String::from_utf8_lossy(&output.stdout));
}

//! The `smartcar` binary driven as a process against a simulator started by each test (on
//! 127.0.0.1, stopped when the test ends). Every command is run at least once; `doctor` meets
//! each classic configuration mistake. The child processes get a clean environment
//! (`env_clear`): only the settings a test gives them.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use smartcar_sim::model::{Powertrain, WebhookVersion};
use smartcar_sim::{ApplicationSettings, ApproveOptions, Simulator};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::Command;

const SECRET: &str = "cli-test-secret-0b6f2f7e";
const AMT: &str = "cli-test-amt-93c4d1aa";
/// How long any single run of the binary may take.
const RUN_LIMIT: Duration = Duration::from_secs(60);

/// A simulator with its own redirect URIs (a free port each, so tests run in parallel), a
/// config directory of its own, and the environment pointing the binary at both.
struct Env {
    sim: Simulator,
    dir: PathBuf,
    vars: HashMap<String, String>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

async fn env(name: &str) -> Env {
    let port = free_port();
    let callback = format!("http://127.0.0.1:{port}/callback");
    let exchange = format!("http://127.0.0.1:{port}/exchange");
    let sim = Simulator::builder()
        .application(ApplicationSettings {
            client_secret: Some(SECRET.into()),
            management_token: Some(AMT.into()),
            redirect_uris: vec![callback.clone()],
            user_id_redirect_uris: vec![exchange.clone()],
            ..ApplicationSettings::default()
        })
        .start()
        .await
        .expect("simulator");
    let dir = std::env::temp_dir().join(format!("smartcar-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let vars = HashMap::from([
        ("SMARTCAR_CONFIG_DIR".to_owned(), dir.display().to_string()),
        ("SMARTCAR_CLIENT_ID".to_owned(), sim.app().client_id.clone()),
        ("SMARTCAR_CLIENT_SECRET".to_owned(), SECRET.to_owned()),
        ("SMARTCAR_REDIRECT_URI".to_owned(), callback),
        ("SMARTCAR_V3_REDIRECT_URI".to_owned(), exchange),
        ("SMARTCAR_MANAGEMENT_TOKEN".to_owned(), AMT.to_owned()),
        ("SMARTCAR_ORIGIN".to_owned(), sim.base_url()),
    ]);
    Env { sim, dir, vars }
}

/// What a run printed and how it ended.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// stdout as one JSON object per line.
    fn lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}\n{self:?}")))
            .collect()
    }

    fn ok(self) -> Run {
        assert_eq!(self.code, 0, "{self:?}");
        self
    }
}

fn binary() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_smartcar"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    cmd
}

impl Env {
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = binary();
        cmd.envs(&self.vars).args(args);
        cmd
    }

    async fn run(&self, args: &[&str]) -> Run {
        run(self.command(args)).await
    }

    /// `smartcar connect … --json`, approved as `email` through the simulator; the redirect is
    /// followed over HTTP to the binary's own callback server.
    async fn connect(&self, extra: &[&str], email: &str) -> Value {
        let mut args = vec!["connect", "--json", "--no-browser", "--timeout", "30"];
        args.extend_from_slice(extra);
        let (mut child, mut stdout, first) = spawn_json(self.command(&args)).await;
        let url = first["connect_url"].as_str().expect("connect_url");
        let redirect = self
            .sim
            .approve(url, ApproveOptions::new().user(email))
            .expect("approved");
        let page = reqwest::get(redirect.as_str()).await.expect("callback");
        assert_eq!(page.status(), 200);
        let result = next_json(&mut stdout).await;
        let status = tokio::time::timeout(RUN_LIMIT, child.wait())
            .await
            .expect("exit in time")
            .expect("wait");
        assert!(status.success(), "connect failed: {result}");
        result
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn run(mut cmd: Command) -> Run {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let out = tokio::time::timeout(RUN_LIMIT, cmd.output())
        .await
        .expect("the binary finished in time")
        .expect("the binary ran");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn vehicle_state(sim: &Simulator, id: &str) -> smartcar_sim::model::Vehicle {
    sim.vehicles()
        .into_iter()
        .find(|v| v.id == id)
        .expect("a simulated vehicle")
}

fn check<'a>(report: &'a [Value], name: &str) -> &'a Value {
    report
        .iter()
        .find(|c| c["check"] == name)
        .unwrap_or_else(|| panic!("no check `{name}` in {report:#?}"))
}

#[tokio::test]
async fn help_is_stable_and_every_command_has_help() {
    let top = run({
        let mut c = binary();
        c.arg("--help");
        c
    })
    .await
    .ok();
    insta::assert_snapshot!("help", top.stdout);
    for sub in [
        "connect",
        "vehicles",
        "read",
        "lock",
        "unlock",
        "charge",
        "destination",
        "connections",
        "compatibility",
        "webhooks",
        "doctor",
        "fleet",
        "pipeline",
        "completions",
    ] {
        let r = run({
            let mut c = binary();
            c.args([sub, "--help"]);
            c
        })
        .await
        .ok();
        assert!(r.stdout.contains("Usage: smartcar"), "{sub}: {r:?}");
    }
    // `smartcar sim --help` is the simulator's own help.
    let sim = run({
        let mut c = binary();
        c.args(["sim", "--help"]);
        c
    })
    .await
    .ok();
    assert!(
        sim.stdout.contains("Usage: smartcar sim [OPTIONS]"),
        "{sim:?}"
    );
    assert!(sim.stdout.contains("--platform-limits"), "{sim:?}");
    // A usage error is exit code 2.
    let bad = run({
        let mut c = binary();
        c.args(["lock"]);
        c
    })
    .await;
    assert_eq!(bad.code, 2, "{bad:?}");
}

#[tokio::test]
async fn completions_are_printed_for_each_shell() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let r = run({
            let mut c = binary();
            c.args(["completions", shell]);
            c
        })
        .await
        .ok();
        assert!(r.stdout.contains("smartcar"), "{shell}");
        assert!(r.stdout.contains("webhooks"), "{shell}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_flow_connect_vehicles_read_and_commands_over_v2() {
    let env = env("v2").await;
    let user = env.sim.users()[0].clone();
    let connected = env.connect(&["--mode", "live"], &user.email).await;
    assert_eq!(connected["api"], "v2");
    assert_eq!(connected["user_id"], user.id.as_str());
    assert_eq!(
        connected["vehicles"].as_array().map(Vec::len),
        Some(user.vehicle_ids.len())
    );
    let vehicle = user.vehicle_ids[0].clone();

    // The tokens are in the state file, never in the output.
    assert!(env.dir.join("state.sqlite").exists());

    let listed = env.run(&["vehicles", "--json", "--details"]).await.ok();
    let rows = listed.lines();
    let v2: Vec<&Value> = rows.iter().filter(|r| r["api"] == "v2").collect();
    assert_eq!(v2.len(), user.vehicle_ids.len(), "{rows:#?}");
    assert!(v2.iter().all(|r| r["make"].is_string()), "{rows:#?}");

    // A table for people.
    let table = env.run(&["vehicles"]).await.ok();
    assert!(table.stdout.starts_with("VEHICLE"), "{table:?}");
    assert!(table.stdout.contains(&vehicle), "{table:?}");

    // v2.0 reads: one batch.
    let read = env
        .run(&[
            "read",
            &vehicle,
            "--api",
            "v2",
            "odometer",
            "lock-status",
            "--json",
        ])
        .await
        .ok();
    let items = read.lines();
    assert_eq!(items.len(), 2, "{items:#?}");
    let odometer = items.iter().find(|i| i["endpoint"] == "odometer").unwrap();
    assert_eq!(odometer["code"], 200);
    assert!(odometer["value"]["distance"].is_number(), "{odometer}");
    let unknown = env
        .run(&["read", &vehicle, "--api", "v2", "horsepower"])
        .await;
    assert_eq!(unknown.code, 5, "{unknown:?}");
    assert!(
        unknown.stderr.contains("odometer"),
        "lists the reads: {unknown:?}"
    );

    // Commands over v2.0.
    env.sim.edit_vehicle(&vehicle, |v| {
        v.in_motion = false;
        v.locked = false;
    });
    let lock = env
        .run(&["lock", &vehicle, "--api", "v2", "--json"])
        .await
        .ok();
    assert_eq!(lock.lines()[0]["status"], "success", "{lock:?}");
    assert!(vehicle_state(&env.sim, &vehicle).locked);
    let unlock = env
        .run(&["unlock", &vehicle, "--api", "v2", "--json"])
        .await
        .ok();
    assert_eq!(unlock.lines()[0]["api"], "v2");
    assert!(!vehicle_state(&env.sim, &vehicle).locked);
    let limit = env
        .run(&["charge", "limit", &vehicle, "80", "--api", "v2", "--json"])
        .await
        .ok();
    assert_eq!(limit.lines()[0]["command"], "charge limit");
    let to = env
        .run(&[
            "destination",
            &vehicle,
            "48.8584,2.2945",
            "--api",
            "v2",
            "--json",
        ])
        .await
        .ok();
    assert_eq!(to.lines()[0]["status"], "success", "{to:?}");
    // A bad coordinate is refused before anything is sent.
    let bad = env
        .run(&["destination", &vehicle, "north", "--api", "v2"])
        .await;
    assert_eq!(bad.code, 5, "{bad:?}");
    assert!(bad.stderr.contains("LAT,LNG"), "{bad:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn machine_to_machine_connect_then_v3_signals_and_commands() {
    let env = env("v3").await;
    // A user with an electric car (commands include charging).
    let user = env
        .sim
        .users()
        .into_iter()
        .find(|u| {
            u.vehicle_ids
                .iter()
                .any(|v| vehicle_state(&env.sim, v).powertrain == Powertrain::Bev)
        })
        .expect("a user with a BEV");
    let connected = env.connect(&["--v3"], &user.email).await;
    assert_eq!(connected["api"], "v3");
    assert_eq!(connected["user_id"], user.id.as_str());
    let vehicle = user
        .vehicle_ids
        .iter()
        .find(|v| vehicle_state(&env.sim, v).powertrain == Powertrain::Bev)
        .unwrap()
        .clone();
    env.sim.edit_vehicle(&vehicle, |v| {
        v.in_motion = false;
        v.locked = false;
        if let Some(b) = v.battery.as_mut() {
            b.plugged_in = true;
        }
    });

    let signals = env.run(&["read", &vehicle, "--json"]).await.ok();
    let rows = signals.lines();
    assert!(rows.len() > 5, "{rows:#?}");
    let odometer = env
        .run(&["read", &vehicle, "odometer-traveleddistance", "--json"])
        .await
        .ok()
        .lines();
    assert_eq!(odometer.len(), 1);
    assert!(odometer[0]["value"].is_number(), "{odometer:#?}");
    let missing = env.run(&["read", &vehicle, "no-such-signal"]).await;
    assert_eq!(missing.code, 5, "{missing:?}");

    for (args, command) in [
        (vec!["lock"], "lock"),
        (vec!["unlock"], "unlock"),
        (vec!["charge", "start"], "charge start"),
        (vec!["charge", "stop"], "charge stop"),
    ] {
        let mut full = args.clone();
        full.extend([vehicle.as_str(), "--json"]);
        let r = env.run(&full).await.ok();
        let out = &r.lines()[0];
        assert_eq!(out["command"], command, "{r:?}");
        assert_eq!(out["api"], "v3");
        assert!(out["execution_id"].is_string(), "{r:?}");
    }
    let limit = env
        .run(&["charge", "limit", &vehicle, "85", "--json"])
        .await
        .ok();
    assert_eq!(limit.lines()[0]["api"], "v3");
    let to = env
        .run(&["destination", &vehicle, "37.7749,-122.4194", "--json"])
        .await
        .ok();
    assert_eq!(to.lines()[0]["command"], "destination");

    // Charge schedules: set a daily one, see it, delete it.
    let set = env
        .run(&[
            "charge",
            "schedule",
            &vehicle,
            "--daily",
            "23:00-06:00",
            "--at",
            "37.7749,-122.4194",
            "--json",
        ])
        .await
        .ok();
    assert!(!set.lines().is_empty(), "{set:?}");
    let listed = env
        .run(&["charge", "schedule", &vehicle, "--json"])
        .await
        .ok()
        .lines();
    assert_eq!(listed.len(), 1, "{listed:#?}");
    let id = listed[0]["scheduleId"]
        .as_str()
        .expect("a schedule id")
        .to_owned();
    env.run(&["charge", "schedule", &vehicle, "--delete", &id, "--json"])
        .await
        .ok();
    let after = env
        .run(&["charge", "schedule", &vehicle, "--json"])
        .await
        .ok()
        .lines();
    assert!(after.is_empty(), "{after:#?}");

    // An unknown vehicle: exit 5 and what to do.
    let unknown = env.run(&["lock", "not-a-vehicle-of-ours"]).await;
    assert_eq!(unknown.code, 5, "{unknown:?}");
    assert!(unknown.stderr.contains("smartcar vehicles"), "{unknown:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_compatibility_and_webhook_subscriptions() {
    let env = env("manage").await;
    let user = env.sim.users()[0].clone();
    env.connect(&["--v3"], &user.email).await;
    let vehicle = user.vehicle_ids[0].clone();

    let connections = env
        .run(&["connections", "list", "--json", "--user", &user.id])
        .await
        .ok()
        .lines();
    assert_eq!(
        connections.len(),
        user.vehicle_ids.len(),
        "{connections:#?}"
    );

    // Webhooks: one made in the "Dashboard", verified, then a subscription through the CLI.
    let hook = env.sim.add_webhook(
        "http://127.0.0.1:9/hook",
        WebhookVersion::V3,
        "CLI test",
        &["odometer-traveleddistance"],
    );
    let listed = env.run(&["webhooks", "list", "--json"]).await.ok().lines();
    assert!(
        listed.iter().any(|w| w["webhook_id"] == hook.as_str()),
        "{listed:#?}"
    );
    let sub = env
        .run(&["webhooks", "subscribe", &hook, &vehicle, "--json"])
        .await
        .ok();
    assert_eq!(
        sub.lines()[0]["user_id"],
        user.id.as_str(),
        "the user was looked up"
    );
    let subs = env
        .run(&["webhooks", "subscriptions", "--webhook", &hook, "--json"])
        .await
        .ok()
        .lines();
    assert_eq!(subs.len(), 1, "{subs:#?}");
    assert_eq!(subs[0]["vehicle_id"], vehicle.as_str());
    let sub_id = subs[0]["subscription_id"].as_str().unwrap().to_owned();
    env.run(&["webhooks", "unsubscribe", &sub_id, "--json"])
        .await
        .ok();
    let none = env
        .run(&["webhooks", "subscriptions", "--webhook", &hook, "--json"])
        .await
        .ok()
        .lines();
    assert!(none.is_empty(), "{none:#?}");

    // Compatibility of one of the simulator's VINs.
    let vin = vehicle_state(&env.sim, &vehicle).vin.clone();
    let compat = env
        .run(&[
            "compatibility",
            &vin,
            "--scope",
            "read_odometer,read_battery",
            "--json",
        ])
        .await
        .ok()
        .lines();
    assert_eq!(compat[0]["vin"], vin.as_str());
    assert!(compat[0]["compatible"].is_boolean(), "{compat:#?}");
    let bad_scope = env
        .run(&["compatibility", &vin, "--scope", "read_everything"])
        .await;
    assert_eq!(bad_scope.code, 5, "{bad_scope:?}");

    // Deleting a connection ends it.
    let connection = connections[0]["connection_id"].as_str().unwrap().to_owned();
    env.run(&["connections", "delete", &connection, "--json"])
        .await
        .ok();
    let left = env
        .run(&["connections", "list", "--json", "--user", &user.id])
        .await
        .ok()
        .lines();
    assert_eq!(left.len(), connections.len() - 1);
}

/// The lines a spawned binary prints on stdout.
type Lines = tokio::io::Lines<BufReader<tokio::process::ChildStdout>>;

/// Spawns `cmd` (stdout piped, stderr dropped) and reads its first line as JSON.
async fn spawn_json(mut cmd: Command) -> (tokio::process::Child, Lines, Value) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = next_json(&mut lines).await;
    (child, lines, first)
}

/// Starts `smartcar webhooks listen --json --port 0 …` and returns it with the URL it printed.
async fn listener(env: &Env, extra: &[&str]) -> (tokio::process::Child, Lines, String) {
    let mut args = vec!["webhooks", "listen", "--json", "--port", "0"];
    args.extend_from_slice(extra);
    let (child, lines, first) = spawn_json(env.command(&args)).await;
    let url = first["listening"].as_str().expect("listening").to_owned();
    (child, lines, url)
}

async fn next_json(lines: &mut Lines) -> Value {
    let line = tokio::time::timeout(RUN_LIMIT, lines.next_line())
        .await
        .expect("a line in time")
        .unwrap()
        .expect("a line");
    serde_json::from_str(&line).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_listen_verifies_answers_and_forwards() {
    let env = env("listen").await;
    let user = env.sim.users()[0].clone();
    let vehicle = user.vehicle_ids[0].clone();
    // 1. The listener answers VERIFY itself and prints a signed delivery; a forged one is
    //    refused (401) and printed as rejected.
    let (mut child, mut lines, url) = listener(&env, &[]).await;
    let hook = env.sim.add_webhook(
        &url,
        WebhookVersion::V3,
        "listen",
        &["odometer-traveleddistance"],
    );
    assert!(
        env.sim.verify_webhook(&hook).await.expect("verify"),
        "VERIFY answered"
    );
    assert_eq!(next_json(&mut lines).await["event_type"], "VERIFY");
    let forged = reqwest::Client::new()
        .post(&url)
        .header("sc-signature", "00")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
    let rejected = next_json(&mut lines).await;
    assert_eq!(rejected["verified"], false, "{rejected}");
    assert!(
        rejected["hint"]
            .as_str()
            .unwrap()
            .contains("management token"),
        "{rejected}"
    );
    env.connect(&["--v3"], &user.email).await;
    let user_id = user.id.clone();
    env.run(&["webhooks", "subscribe", &hook, &vehicle, "--user", &user_id])
        .await
        .ok();
    let outcome = env
        .sim
        .trigger_vehicle_state(&hook, &vehicle, &["odometer-traveleddistance"])
        .await
        .expect("trigger");
    assert!(outcome.delivered, "{outcome:?}");
    // The subscription's first delivery may come first: read until the triggered one.
    let mut state = next_json(&mut lines).await;
    while state["event_type"] != "VEHICLE_STATE" {
        state = next_json(&mut lines).await;
    }
    assert_eq!(state["verified"], true);
    assert_eq!(state["vehicle_id"], vehicle.as_str());
    assert!(state["signals"].is_array(), "{state}");
    child.kill().await.unwrap();

    // 2. --forward: the raw body and signature reach the application unchanged, and its
    //    answer goes back to the platform.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(Option<String>, Vec<u8>)>(8);
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let tx = tx.clone();
                async move {
                    let sig = headers
                        .get("sc-signature")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    let _ = tx.send((sig, body.to_vec())).await;
                    axum::http::StatusCode::ACCEPTED
                }
            },
        ),
    );
    let app_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app_url = format!("http://{}/hook", app_listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let _ = axum::serve(app_listener, app).await;
    });
    let (mut child, mut lines, url) =
        listener(&env, &["--count", "1", "--forward", &app_url]).await;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let body = format!(
        r#"{{"eventId":"e-1","eventType":"VEHICLE_STATE","data":{{"vehicle":{{"id":"v-1"}},"signals":[],"triggers":[]}},"meta":{{"deliveryId":"d-1","deliveredAt":{now_ms},"webhookId":"w-1","version":"4.0","mode":"TEST"}}}}"#
    );
    let body = body.as_bytes();
    let signature = smartcar::webhooks::sign(AMT, body);
    let answer = reqwest::Client::new()
        .post(&url)
        .header("sc-signature", &signature)
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 202, "the application's answer is relayed");
    let (sig, got) = rx.recv().await.expect("forwarded");
    assert_eq!(sig.as_deref(), Some(signature.as_str()));
    assert_eq!(got, body.to_vec(), "the raw body, byte for byte");
    let printed = next_json(&mut lines).await;
    assert_eq!(printed["forwarded"], 202);
    let status = tokio::time::timeout(RUN_LIMIT, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
    server.abort();

    // 3. Without a management token: exit 3 and what to set.
    let mut cmd = env.command(&["webhooks", "listen", "--port", "0"]);
    cmd.env_remove("SMARTCAR_MANAGEMENT_TOKEN");
    let missing = run(cmd).await;
    assert_eq!(missing.code, 3, "{missing:?}");
    assert!(
        missing.stderr.contains("SMARTCAR_MANAGEMENT_TOKEN"),
        "{missing:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_passes_a_good_configuration() {
    let env = env("doctor-ok").await;
    let r = env.run(&["doctor", "--json"]).await;
    assert_eq!(r.code, 0, "{r:?}");
    let report: Vec<Value> = r
        .lines()
        .into_iter()
        .filter(|l| l.get("check").is_some())
        .collect();
    for name in [
        "token host accepts the client",
        "Connect accepts the redirect URI",
        "Connect accepts the v3 redirect URI",
        "webhook callbacks",
        "management token accepted",
        "clock",
    ] {
        assert_eq!(check(&report, name)["status"], "ok", "{name}: {report:#?}");
    }
    // Human output: the secrets are described, not shown.
    let human = env.run(&["doctor"]).await.ok();
    assert!(human.stdout.contains("SMARTCAR_CLIENT_SECRET"), "{human:?}");
    assert!(human.stdout.contains("nothing billed"), "{human:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_names_each_classic_mistake() {
    let env = env("doctor-mistakes").await;
    let doctor = |overrides: Vec<(&'static str, String)>| {
        let mut cmd = env.command(&["doctor", "--json"]);
        for (k, v) in overrides {
            cmd.env(k, v);
        }
        cmd
    };
    let report = |r: &Run| -> Vec<Value> {
        r.lines()
            .into_iter()
            .filter(|l| l.get("check").is_some())
            .collect()
    };

    // A wrong client secret: the token host refuses, and the fix names the candidates.
    let r = run(doctor(vec![(
        "SMARTCAR_CLIENT_SECRET",
        "not-the-secret".into(),
    )]))
    .await;
    assert_eq!(r.code, 8, "{r:?}");
    let token = check(&report(&r), "token host accepts the client").clone();
    assert_eq!(token["status"], "fail", "{token}");
    assert!(
        token["fix"].as_str().unwrap().contains("management token"),
        "{token}"
    );

    // The management token pasted as the client secret.
    let r = run(doctor(vec![("SMARTCAR_CLIENT_SECRET", AMT.into())])).await;
    assert_eq!(r.code, 8);
    let rep = report(&r);
    assert_eq!(check(&rep, "client secret")["status"], "fail");
    assert!(
        check(&rep, "client secret")["detail"]
            .as_str()
            .unwrap()
            .contains("management token")
    );

    // A redirect URI the application did not register.
    let r = run(doctor(vec![(
        "SMARTCAR_REDIRECT_URI",
        "http://localhost:3999/oauth/callback".into(),
    )]))
    .await;
    assert_eq!(r.code, 8);
    let connect = check(&report(&r), "Connect accepts the redirect URI").clone();
    assert_eq!(connect["status"], "fail", "{connect}");
    assert!(
        connect["detail"].as_str().unwrap().contains("redirect_uri"),
        "{connect}"
    );

    // A webhook delivering to the redirect URI.
    let redirect = env.vars["SMARTCAR_REDIRECT_URI"].clone();
    let hook = env.sim.add_webhook(
        &redirect,
        WebhookVersion::V3,
        "confused",
        &["odometer-traveleddistance"],
    );
    let r = run(doctor(vec![])).await;
    assert_eq!(r.code, 8, "{r:?}");
    let callbacks = check(&report(&r), "webhook callbacks").clone();
    assert_eq!(callbacks["status"], "fail", "{callbacks}");
    assert!(
        callbacks["detail"].as_str().unwrap().contains(&hook),
        "{callbacks}"
    );
    assert!(env.sim.remove_webhook(&hook));

    // A management token that is not the application's.
    let r = run(doctor(vec![(
        "SMARTCAR_MANAGEMENT_TOKEN",
        "wrong-amt".into(),
    )]))
    .await;
    assert_eq!(r.code, 8);
    assert_eq!(
        check(&report(&r), "management token accepted")["status"],
        "fail"
    );

    // An unreachable host (a closed port).
    let closed = format!("http://127.0.0.1:{}", free_port());
    let r = run(doctor(vec![("SMARTCAR_API_ORIGIN", closed.clone())])).await;
    assert_eq!(r.code, 8);
    let rep = report(&r);
    assert!(
        rep.iter().any(|c| c["check"] == "host reachable"
            && c["status"] == "fail"
            && c["detail"].as_str().unwrap().contains(&closed)),
        "{rep:#?}"
    );

    // A clock an hour off (the platform's Date is the simulated clock's).
    env.sim.advance(Duration::from_secs(3600));
    let r = run(doctor(vec![])).await;
    assert_eq!(r.code, 8);
    let clock = check(&report(&r), "clock").clone();
    assert_eq!(clock["status"], "fail", "{clock}");
    assert!(
        clock["detail"].as_str().unwrap().contains("behind"),
        "{clock}"
    );

    // Nothing configured, offline: exit 8, no request sent.
    let mut cmd = binary();
    cmd.env("SMARTCAR_CONFIG_DIR", env.dir.display().to_string())
        .args(["doctor", "--offline", "--json"]);
    let r = run(cmd).await;
    assert_eq!(r.code, 8);
    assert_eq!(check(&report(&r), "client secret")["status"], "fail");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profiles_come_from_the_config_file_and_exit_codes_are_stable() {
    let env = env("profiles").await;
    std::fs::create_dir_all(&env.dir).unwrap();
    let file = env.dir.join("config.toml");
    std::fs::write(
        &file,
        format!(
            "[staging]\nclient_id = \"{}\"\nclient_secret = \"{SECRET}\"\norigin = \"{}\"\n\n[broken]\nclient_idd = \"x\"\n",
            env.sim.app().client_id,
            env.sim.base_url()
        ),
    )
    .unwrap();
    let only_dir = || {
        let mut cmd = binary();
        cmd.env("SMARTCAR_CONFIG_DIR", env.dir.display().to_string());
        cmd
    };
    // The profile's settings reach the platform (connections, through the application token).
    let mut cmd = only_dir();
    cmd.args(["--profile", "staging", "connections", "list", "--json"]);
    let r = run(cmd).await.ok();
    assert!(r.stderr.is_empty(), "{r:?}");
    // SMARTCAR_PROFILE picks it too.
    let mut cmd = only_dir();
    cmd.env("SMARTCAR_PROFILE", "staging")
        .args(["webhooks", "list", "--json"]);
    run(cmd).await.ok();
    // An unknown key: exit 3, naming the key and the known ones.
    let mut cmd = only_dir();
    cmd.args(["--profile", "broken", "vehicles"]);
    let r = run(cmd).await;
    assert_eq!(r.code, 3, "{r:?}");
    assert!(
        r.stderr.contains("client_idd") && r.stderr.contains("client_id,"),
        "{r:?}"
    );
    // Nothing configured: exit 3, naming the variable. With --json the error is JSON.
    let mut cmd = only_dir();
    cmd.args(["--profile", "none", "--json", "vehicles"]);
    let r = run(cmd).await;
    assert_eq!(r.code, 3, "{r:?}");
    let error: Value = serde_json::from_str(r.stderr.trim()).expect("a JSON error");
    assert_eq!(error["error"]["kind"], "configuration");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("SMARTCAR_CLIENT_ID")
    );
    // A wrong secret: exit 4.
    let mut cmd = env.command(&["connections", "list"]);
    cmd.env("SMARTCAR_CLIENT_SECRET", "wrong");
    let r = run(cmd).await;
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stderr.contains("what to do"), "{r:?}");
    // The platform unreachable: exit 7.
    let mut cmd = env.command(&["connections", "list"]);
    cmd.env(
        "SMARTCAR_ORIGIN",
        format!("http://127.0.0.1:{}", free_port()),
    );
    let r = run(cmd).await;
    assert_eq!(r.code, 7, "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_the_output_even_verbose() {
    let env = env("secrets").await;
    // Simulated mode: a new account holding the brand's simulated vehicle.
    let connected = env
        .connect(&["--mode", "simulated"], "someone-new@example.com")
        .await;
    let user_id = connected["user_id"].as_str().unwrap().to_owned();
    let vehicle = connected["vehicles"][0]
        .as_str()
        .expect("a vehicle")
        .to_owned();
    let mut outputs = Vec::new();
    for args in [
        vec!["-vvv", "vehicles", "--json"],
        vec!["-vvv", "read", vehicle.as_str(), "--api", "v2"],
        vec!["-vvv", "doctor"],
        vec!["-vvv", "doctor", "--json"],
        vec!["-vv", "connections", "list"],
    ] {
        let r = env.run(&args).await;
        outputs.push(format!("{}\n{}", r.stdout, r.stderr));
    }
    // A wrong secret's error, verbose.
    let mut cmd = env.command(&["-vvv", "--json", "connections", "list"]);
    cmd.env("SMARTCAR_CLIENT_SECRET", "wrong-secret-value-xyz");
    let r = run(cmd).await;
    outputs.push(format!("{}\n{}", r.stdout, r.stderr));
    // The user's tokens, as stored.
    let store = smartcar::store::SqliteTokenStore::open(env.dir.join("state.sqlite"))
        .await
        .unwrap();
    let stored = smartcar::store::TokenStore::load(&store, &format!("default/{user_id}"))
        .await
        .unwrap()
        .expect("the user's tokens are stored");
    let tokens = [
        stored.access_token.secret().to_owned(),
        stored.refresh_token.secret().to_owned(),
    ];
    for out in &outputs {
        assert!(!out.contains(SECRET), "client secret leaked:\n{out}");
        assert!(!out.contains(AMT), "management token leaked:\n{out}");
        assert!(!out.contains("wrong-secret-value-xyz"), "leaked:\n{out}");
        for token in &tokens {
            assert!(!out.contains(token.as_str()), "a token leaked:\n{out}");
        }
    }
    // The verbose runs did log (so the check above is not vacuous).
    assert!(
        outputs[0].contains("DEBUG") || outputs[0].contains("INFO"),
        "{}",
        outputs[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_runs_the_simulator_with_its_flags() {
    let mut sim = binary();
    sim.args([
        "sim",
        "--port",
        "0",
        "--vehicles",
        "2",
        "--print-env",
        "json",
    ]);
    let (mut child, _lines, vars) = spawn_json(sim).await;
    let base = vars["SMARTCAR_SIM_BASE_URL"].as_str().unwrap().to_owned();
    assert!(vars["SMARTCAR_MANAGEMENT_TOKEN"].is_string(), "{vars}");
    let health = reqwest::get(format!("{base}/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
    // SIGTERM stops it with exit 0.
    let pid = child.id().expect("pid").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(RUN_LIMIT, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status:?}");

    // Secrets given to the simulator (perhaps a real application's) are not echoed in its
    // banner; the ones it makes up are (a client needs them).
    let mut child = binary()
        .args([
            "sim",
            "--port",
            "0",
            "--client-secret",
            "given-secret-4f1c",
            "--management-token",
            "given-amt-77aa",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut banner = String::new();
    while let Ok(Ok(Some(line))) =
        tokio::time::timeout(Duration::from_secs(10), lines.next_line()).await
    {
        banner.push_str(&line);
        banner.push('\n');
        if line.contains("Connect in test mode") {
            break;
        }
    }
    assert!(banner.contains("client id"), "{banner}");
    assert!(banner.contains("(as given; not shown)"), "{banner}");
    assert!(!banner.contains("given-secret-4f1c"), "{banner}");
    assert!(!banner.contains("given-amt-77aa"), "{banner}");
    child.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_read_streams_one_line_per_vehicle_failures_included() {
    let env = env("fleet").await;
    let users = env.sim.users();
    for user in &users {
        env.connect(&["--v3"], &user.email).await;
    }
    let total: usize = users.iter().map(|u| u.vehicle_ids.len()).sum();
    // One vehicle fails (asleep); the others are read.
    let asleep = users[0].vehicle_ids[0].clone();
    env.sim.edit_vehicle(&asleep, |v| {
        v.forced_error = Some(("VEHICLE_STATE".into(), "ASLEEP".into()));
    });
    let r = env
        .run(&[
            "fleet",
            "read",
            "odometer-traveleddistance",
            "--concurrency",
            "3",
            "--json",
        ])
        .await
        .ok();
    let rows = r.lines();
    assert_eq!(rows.len(), total, "{rows:#?}");
    let failed: Vec<&Value> = rows.iter().filter(|r| r["status"] != "ok").collect();
    assert_eq!(failed.len(), 1, "{rows:#?}");
    assert_eq!(failed[0]["vehicle_id"], asleep.as_str());
    assert!(
        failed[0]["error"].as_str().unwrap().contains("ASLEEP"),
        "{failed:#?}"
    );
    assert!(
        rows.iter()
            .filter(|r| r["status"] == "ok")
            .all(|r| r["odometer-traveleddistance"].is_number()),
        "{rows:#?}"
    );
    // One user only, as a table.
    let one = env
        .run(&["fleet", "read", "--user", &users[1].id])
        .await
        .ok();
    assert!(one.stdout.starts_with("VEHICLE"), "{one:?}");
    assert_eq!(
        one.stdout.lines().count(),
        1 + users[1].vehicle_ids.len(),
        "{one:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_operator_commands_show_and_mend_dead_letters() {
    let env = env("pipeline").await;
    std::fs::create_dir_all(&env.dir).unwrap();
    let db = env.dir.join("webhooks.sqlite");
    let pipeline = smartcar::pipeline::WebhookPipeline::sqlite(
        &db,
        smartcar::webhooks::WebhookVerifier::new(AMT).unwrap(),
    )
    .await
    .unwrap();
    // A correctly signed body that is not a webhook envelope: kept as a dead letter.
    let poison = br#"{"not":"an envelope"}"#;
    pipeline
        .accept(Some(&smartcar::webhooks::sign(AMT, poison)), poison)
        .await
        .unwrap();
    let db = db.display().to_string();
    let stats = env
        .run(&["pipeline", "--db", &db, "stats", "--json"])
        .await
        .ok()
        .lines();
    assert_eq!(stats[0]["dead_letters"], 1, "{stats:#?}");
    let dead = env
        .run(&["pipeline", "--db", &db, "dead-letters", "--json"])
        .await
        .ok()
        .lines();
    assert_eq!(dead.len(), 1);
    assert!(
        dead[0]["reason"].as_str().unwrap().contains("envelope"),
        "{dead:#?}"
    );
    assert!(dead[0].get("body").is_none(), "bodies only when asked");
    let id = dead[0]["id"].as_i64().unwrap().to_string();
    let with_bodies = env
        .run(&[
            "pipeline",
            "--db",
            &db,
            "dead-letters",
            "--bodies",
            "--json",
        ])
        .await
        .ok()
        .lines();
    assert_eq!(with_bodies[0]["body"], r#"{"not":"an envelope"}"#);
    // Requeue puts it back in the queue; delete of an unknown id is exit 5.
    env.run(&["pipeline", "--db", &db, "requeue", &id])
        .await
        .ok();
    let stats = env
        .run(&["pipeline", "--db", &db, "stats", "--json"])
        .await
        .ok()
        .lines();
    assert_eq!(stats[0]["dead_letters"], 0, "{stats:#?}");
    assert_eq!(stats[0]["queued"], 1, "{stats:#?}");
    let gone = env.run(&["pipeline", "--db", &db, "delete", &id]).await;
    assert_eq!(gone.code, 5, "{gone:?}");
    // Another poison body, deleted for good.
    let other = br#"{"still":"not an envelope"}"#;
    pipeline
        .accept(Some(&smartcar::webhooks::sign(AMT, other)), other)
        .await
        .unwrap();
    let dead = env
        .run(&["pipeline", "--db", &db, "dead-letters", "--json"])
        .await
        .ok()
        .lines();
    let other_id = dead[0]["id"].as_i64().unwrap().to_string();
    env.run(&["pipeline", "--db", &db, "delete", &other_id, "--json"])
        .await
        .ok();
    let stats = env
        .run(&["pipeline", "--db", &db, "stats", "--json"])
        .await
        .ok()
        .lines();
    assert_eq!(stats[0]["dead_letters"], 0, "{stats:#?}");
    // A missing file is a configuration error, not a new empty queue.
    let missing = env
        .run(&["pipeline", "--db", "/nonexistent/queue.sqlite", "stats"])
        .await;
    assert_eq!(missing.code, 3, "{missing:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_check_finds_a_receiver_that_re_serializes_the_body() {
    let env = env("check").await;
    // `smartcar webhooks listen` verifies the raw body: every check passes, and the test
    // deliveries are real envelopes it decodes.
    let (mut child, mut lines, url) = listener(&env, &["--count", "4"]).await;
    let r = env.run(&["webhooks", "check", &url, "--json"]).await;
    assert_eq!(r.code, 0, "{r:?}");
    let report = r.lines();
    assert_eq!(report.len(), 4, "{report:#?}");
    assert!(report.iter().all(|c| c["status"] == "ok"), "{report:#?}");
    let mut seen = Vec::new();
    for _ in 0..4 {
        let d = next_json(&mut lines).await;
        seen.push((d["verified"].clone(), d["event_type"].clone()));
    }
    assert_eq!(
        seen,
        vec![
            (Value::Bool(true), Value::from("VERIFY")),
            (Value::Bool(true), Value::from("VEHICLE_STATE")),
            (Value::Bool(true), Value::from("VEHICLE_STATE")),
            (Value::Bool(false), Value::Null),
        ]
    );
    let _ = tokio::time::timeout(RUN_LIMIT, child.wait()).await;

    // A receiver that checks the signature over a re-serialized body (as JSON.stringify(body)
    // does) passes VERIFY and the compact event, and fails the same event pretty-printed.
    let verifier = smartcar::webhooks::WebhookVerifier::new(AMT).unwrap();
    let app = axum::Router::new().fallback(
        move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let verifier = verifier.clone();
            async move {
                let reserialized = serde_json::from_slice::<Value>(&body)
                    .map(|v| serde_json::to_vec(&v).unwrap())
                    .unwrap_or_default();
                let sig = headers.get("sc-signature").and_then(|v| v.to_str().ok());
                match verifier.verify(sig, &reserialized) {
                    Ok(d) => match d.event {
                        smartcar::webhooks::WebhookEvent::Verify { challenge } => (
                            axum::http::StatusCode::OK,
                            axum::Json(verifier.challenge_response(&challenge)),
                        ),
                        _ => (
                            axum::http::StatusCode::OK,
                            axum::Json(serde_json::json!({})),
                        ),
                    },
                    Err(_) => (
                        axum::http::StatusCode::UNAUTHORIZED,
                        axum::Json(serde_json::json!({})),
                    ),
                }
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhooks", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let r = env.run(&["webhooks", "check", &url, "--json"]).await;
    assert_eq!(r.code, 8, "{r:?}");
    let report = r.lines();
    assert_eq!(check(&report, "VERIFY answered")["status"], "ok");
    assert_eq!(check(&report, "signed event accepted")["status"], "ok");
    let other = check(&report, "signed event accepted, other formatting");
    assert_eq!(other["status"], "fail", "{other}");
    assert!(
        other["fix"].as_str().unwrap().contains("raw bytes"),
        "{other}"
    );
    assert_eq!(check(&report, "forged event refused")["status"], "ok");
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_mode_connections_are_found_in_their_mode() {
    let env = env("simulated-v3").await;
    // Connect's simulated mode, machine-to-machine flow: a new account with a simulated
    // vehicle, whose connection the platform lists only when asked for that mode.
    let connected = env
        .connect(&["--v3", "--mode", "simulated"], "sim.driver@example.com")
        .await;
    assert_eq!(connected["api"], "v3");
    let vehicle = connected["vehicles"][0]
        .as_str()
        .expect("the simulated vehicle")
        .to_owned();
    let listed = env.run(&["vehicles", "--json"]).await.ok().lines();
    let row = listed
        .iter()
        .find(|r| r["vehicle_id"] == vehicle.as_str())
        .expect("listed");
    assert_eq!(row["mode"], "simulated", "{row}");
    let live_only = env
        .run(&["connections", "list", "--mode", "live", "--json"])
        .await
        .ok()
        .lines();
    assert!(
        live_only
            .iter()
            .all(|c| c["vehicle_id"] != vehicle.as_str())
    );
    // Reading it finds its user through the simulated mode.
    let read = env
        .run(&["read", &vehicle, "odometer-traveleddistance", "--json"])
        .await
        .ok()
        .lines();
    assert!(read[0]["value"].is_number(), "{read:#?}");
}

//! Security regressions of the simulator (issue 15), over real HTTP: the request log's memory
//! bound, Connect pages without side effects, connections created on approval, slow clients,
//! secrets echoed in error descriptions.

use std::time::{Duration, Instant};

use smartcar_sim::observe::BODY_CAPTURE_LIMIT;
use smartcar_sim::testing::{authorize_url, client, location, param, request_id};
use smartcar_sim::{ApproveOptions, Fault, Simulator};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// This process's resident memory in KiB (Linux), for the measurements the tests print.
fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::test]
async fn the_request_log_keeps_bounded_copies_of_big_bodies() {
    const BOUND: usize = 8 * 1024 * 1024;
    let sim = Simulator::builder()
        .log_max_bytes(BOUND)
        .start()
        .await
        .unwrap();
    let http = client();
    let before = rss_kib();
    // Twenty unauthenticated 8 MiB uploads.
    let upload = vec![b'x'; 8 * 1024 * 1024];
    for _ in 0..20 {
        let r = http
            .post(format!("{}/oauth/token", sim.base_url()))
            .header("content-type", "application/octet-stream")
            .body(upload.clone())
            .send()
            .await
            .unwrap();
        // Larger than the token endpoint takes (2 MiB).
        assert_eq!(r.status(), 413);
        assert!(
            sim.request_log_bytes() <= BOUND,
            "{}",
            sim.request_log_bytes()
        );
    }
    // A 3 MiB response (an injected huge body) is cut at the capture limit too.
    sim.faults()
        .inject(Fault::HugeBody(3 * 1024 * 1024))
        .on("/healthz")
        .once();
    let r = http
        .get(format!("{}/healthz", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().len(), 3 * 1024 * 1024);
    let after = rss_kib();
    eprintln!(
        "VmRSS before {before:?} KiB, after twenty 8 MiB uploads {after:?} KiB; log retains {} bytes",
        sim.request_log_bytes()
    );

    let log = sim.requests();
    let retained: usize = log.iter().map(|e| e.retained_bytes()).sum();
    assert_eq!(retained, sim.request_log_bytes());
    assert!(retained <= BOUND);
    // The oldest uploads were dropped, the newest kept (cut at the capture limit).
    assert!(log.len() < 21, "{} entries", log.len());
    let last = log.last().unwrap();
    assert_eq!(last.path, "/healthz");
    assert_eq!(last.response_body.len(), BODY_CAPTURE_LIMIT);
    let uploads: Vec<_> = log.iter().filter(|e| e.path == "/oauth/token").collect();
    assert!(!uploads.is_empty());
    for entry in &uploads {
        assert_eq!(entry.body.len(), BODY_CAPTURE_LIMIT);
    }
    assert_eq!(uploads.last().unwrap().seq, 20);
    // Clearing frees the count.
    sim.clear_requests();
    assert_eq!(sim.request_log_bytes(), 0);
}

#[tokio::test]
async fn the_default_byte_bound_and_a_lowered_bound() {
    let sim = Simulator::start().await.unwrap();
    let state = sim.state();
    assert_eq!(
        state.observer.log_max_bytes(),
        smartcar_sim::observe::DEFAULT_LOG_MAX_BYTES
    );
    for _ in 0..10 {
        client()
            .get(format!("{}/healthz", sim.base_url()))
            .send()
            .await
            .unwrap();
    }
    assert_eq!(sim.requests().len(), 10);
    let one = sim.requests()[0].retained_bytes();
    // Lowering the bound drops the oldest at once.
    state.observer.set_log_max_bytes(3 * one + one / 2);
    let log = sim.requests();
    assert_eq!(log.len(), 3);
    assert_eq!(log[0].seq, 8);
    assert!(sim.request_log_bytes() <= 3 * one + one / 2);
}

/// A valid VIN (correct check digit) for serial `n`.
fn vin(n: u32) -> String {
    let mut vin: Vec<char> = format!("1HGCM8264HA{n:06}").chars().collect();
    let check = smartcar_sim::fleet::vin_check_digit(&vin.iter().collect::<String>()).unwrap();
    vin[8] = check;
    let vin: String = vin.into_iter().collect();
    assert!(smartcar_sim::fleet::vin_is_valid(&vin), "{vin}");
    vin
}

#[tokio::test]
async fn viewing_connect_pages_changes_nothing_and_approval_adds_one_vehicle() {
    let sim = Simulator::builder()
        .log_requests(false)
        .start()
        .await
        .unwrap();
    let user = sim.users()[0].clone();
    let fleet = sim.vehicles().len();
    let connections = sim.state().world().connections.len();
    let http = client();
    for n in 0..2_000 {
        let url = authorize_url(
            &sim,
            &format!("single_select=true&single_select_vin={}", vin(n)),
        );
        let r = http.get(url).send().await.unwrap();
        assert_eq!(r.status(), 200, "page {n}");
    }
    assert_eq!(sim.users()[0].vehicle_ids, user.vehicle_ids);
    assert_eq!(sim.vehicles().len(), fleet);
    assert_eq!(sim.state().world().connections.len(), connections);

    // Approving one page adds exactly its vehicle.
    let chosen = vin(123_456);
    let html = http
        .get(authorize_url(
            &sim,
            &format!("single_select=true&single_select_vin={chosen}"),
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains(&format!("VIN {chosen}")));
    let marker = "name=\"vehicle\" value=\"";
    let start = html.find(marker).unwrap() + marker.len();
    let offered = &html[start..start + html[start..].find('"').unwrap()];
    let r = http
        .post(format!("{}/oauth/authorize", sim.base_url()))
        .form(&[
            ("request", request_id(&html).as_str()),
            ("vehicle", offered),
            ("action", "approve"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert!(param(&location(&r), "code").is_some());
    let vehicles = sim.vehicles();
    assert_eq!(vehicles.len(), fleet + 1);
    let added = vehicles.iter().find(|v| v.vin == chosen).unwrap();
    assert_eq!(added.id, offered, "the page offered that vehicle");
    let now = sim.users()[0].vehicle_ids.clone();
    assert_eq!(now.len(), user.vehicle_ids.len() + 1);
    assert_eq!(now.last(), Some(&added.id));
    assert!(
        sim.state()
            .world()
            .connection(&user.id, &added.id)
            .is_some()
    );
}

#[tokio::test]
async fn vehicles_created_by_single_select_vin_are_bounded() {
    let sim = Simulator::builder()
        .log_requests(false)
        .start()
        .await
        .unwrap();
    let fleet = sim.vehicles().len();
    let approve = |n: u32| {
        sim.approve(
            &authorize_url(
                &sim,
                &format!("single_select=true&single_select_vin={}", vin(n)),
            ),
            ApproveOptions::new(),
        )
    };
    for n in 0..1_000 {
        approve(n).unwrap_or_else(|e| panic!("approval {n}: {e}"));
    }
    assert_eq!(sim.vehicles().len(), fleet + 1_000);
    let refused = approve(1_000).unwrap_err();
    assert_eq!(refused.status, 400);
    assert!(refused.message.contains("1000 vehicles"), "{refused}");
    assert_eq!(sim.vehicles().len(), fleet + 1_000);
    // A VIN the simulator already has still connects.
    approve(7).unwrap();
    let existing = sim.vehicles()[0].vin.clone();
    sim.approve(
        &authorize_url(
            &sim,
            &format!("single_select=true&single_select_vin={existing}"),
        ),
        ApproveOptions::new(),
    )
    .unwrap();
    assert_eq!(sim.vehicles().len(), fleet + 1_000);
}

/// The user's connections (v3, a fresh application token): (id, createdAt, updatedAt).
async fn connections_of(sim: &Simulator, user_id: &str) -> Vec<[String; 3]> {
    let app_token = sim.mint_app_token();
    let r = client()
        .get(format!(
            "{}/v3/connections?filter[userId]={user_id}&page[size]=100",
            sim.base_url()
        ))
        .bearer_auth(&app_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            [
                c["id"].as_str().unwrap().to_owned(),
                c["meta"]["createdAt"].as_str().unwrap().to_owned(),
                c["meta"]["updatedAt"].as_str().unwrap().to_owned(),
            ]
        })
        .collect()
}

fn parse_time(text: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&chrono::Utc)
}

#[tokio::test]
async fn connections_are_created_by_the_approval_at_simulated_time() {
    let epoch = smartcar_sim::fleet::default_epoch();
    let sim = Simulator::builder().epoch(epoch).start().await.unwrap();
    let user = sim.users()[1].clone();
    let v3_login = |extra: &str| {
        authorize_url(&sim, &format!("sim_user=driver2%40example.com{extra}"))
            .replace("callback", "exchange")
    };
    // The fleet starts without connections; showing the page creates none.
    assert!(connections_of(&sim, &user.id).await.is_empty());
    sim.advance(Duration::from_secs(3600));
    let page = client().get(v3_login("")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(connections_of(&sim, &user.id).await.is_empty());

    // Approval: one connection per vehicle, created now (simulated time).
    let approved_at = sim.now();
    let r = client()
        .get(v3_login("&sim_auto_approve=true"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(
        param(&location(&r), "user_id").as_deref(),
        Some(user.id.as_str())
    );
    let first = connections_of(&sim, &user.id).await;
    assert_eq!(first.len(), user.vehicle_ids.len());
    for [_, created, updated] in &first {
        assert_eq!(parse_time(created), approved_at);
        assert_eq!(parse_time(updated), approved_at);
    }
    // Another user's connections are not this approval's.
    let other = sim.users()[0].id.clone();
    assert!(connections_of(&sim, &other).await.is_empty());

    // Approving again later renews the connections: same ids, both times moved.
    sim.advance(Duration::from_secs(3600));
    let again_at = sim.now();
    let r = client()
        .get(v3_login("&sim_auto_approve=true"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let second = connections_of(&sim, &user.id).await;
    let ids = |list: &[[String; 3]]| {
        let mut ids: Vec<String> = list.iter().map(|c| c[0].clone()).collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(&second), ids(&first));
    for [_, created, updated] in &second {
        assert_eq!(parse_time(created), again_at);
        assert_eq!(parse_time(updated), again_at);
    }
}

/// Reads until the server closes the connection (or `limit` passes); returns what was read
/// and how long it took.
async fn read_until_closed(
    stream: &mut tokio::net::TcpStream,
    limit: Duration,
) -> (String, Duration) {
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = limit.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => panic!(
                "the server kept the connection open for {limit:?}; received {:?}",
                String::from_utf8_lossy(&received)
            ),
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
        }
    }
    (
        String::from_utf8_lossy(&received).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test]
async fn slow_clients_are_disconnected() {
    let sim = Simulator::builder()
        .header_read_timeout(Duration::from_secs(1))
        .body_timeout(Duration::from_secs(1))
        .start()
        .await
        .unwrap();

    // Half a request line, then nothing: closed without an answer.
    let mut stream = tokio::net::TcpStream::connect(sim.addr()).await.unwrap();
    stream.write_all(b"GET /healthz HT").await.unwrap();
    let (received, took) = read_until_closed(&mut stream, Duration::from_secs(10)).await;
    assert!(took >= Duration::from_millis(900), "{took:?}");
    assert!(
        received.is_empty() || received.starts_with("HTTP/1.1 408"),
        "{received}"
    );

    // Connected and silent: the same.
    let mut stream = tokio::net::TcpStream::connect(sim.addr()).await.unwrap();
    let (_, took) = read_until_closed(&mut stream, Duration::from_secs(10)).await;
    assert!(took >= Duration::from_millis(900), "{took:?}");

    // A kept-alive connection left idle after an answer: closed too.
    let mut stream = tokio::net::TcpStream::connect(sim.addr()).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: sim\r\n\r\n")
        .await
        .unwrap();
    let (received, took) = read_until_closed(&mut stream, Duration::from_secs(10)).await;
    assert!(received.starts_with("HTTP/1.1 200"), "{received}");
    assert!(took >= Duration::from_millis(900), "{took:?}");

    // Headers, then a body that never completes: 408, then closed, logging on or off.
    for logging in [true, false] {
        sim.set_request_logging(logging);
        let mut stream = tokio::net::TcpStream::connect(sim.addr()).await.unwrap();
        stream
            .write_all(
                b"POST /oauth/token HTTP/1.1\r\nhost: sim\r\n\
                  content-type: application/x-www-form-urlencoded\r\ncontent-length: 100\r\n\r\n\
                  grant_type=",
            )
            .await
            .unwrap();
        let (received, took) = read_until_closed(&mut stream, Duration::from_secs(10)).await;
        assert!(received.starts_with("HTTP/1.1 408"), "{received}");
        assert!(
            received.contains("did not arrive within 1 seconds"),
            "{received}"
        );
        assert!(took >= Duration::from_millis(900), "{took:?}");
    }

    // Prompt clients are served as before.
    let r = client()
        .get(format!("{}/healthz", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    sim.shutdown().await;
}

#[tokio::test]
async fn secrets_echoed_in_error_descriptions_are_masked_in_the_log() {
    let sim = Simulator::start().await.unwrap();
    let app = sim.app();
    let code = "stolen-authorization-code-0123456789";
    let refresh = "stolen-refresh-token-9876543210";
    let http = client();
    let (status, wire) = smartcar_sim::testing::exchange(&sim, code).await;
    assert_eq!(status, 400);
    // The wire answers as the platform does (it echoes the code) …
    assert_eq!(
        wire["error_description"],
        format!("Invalid code: {code}.").as_str()
    );
    let (status, _) = smartcar_sim::testing::refresh(&sim, refresh).await;
    assert_eq!(status, 400);
    // … a secret in a query string …
    let r = http
        .get(format!(
            "{}/healthz?access_token=query-token-abcdef&x=1",
            sim.base_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // … but the log does not keep them.
    let log = sim.requests();
    assert_eq!(log.len(), 3);
    assert_eq!(
        log[0].response_json().unwrap()["error_description"],
        "Invalid code: ***."
    );
    assert_eq!(
        log[1].response_json().unwrap()["error_description"],
        "Invalid refresh_token: ***."
    );
    assert_eq!(log[2].query.as_deref(), Some("access_token=***&x=1"));
    let everything = format!("{log:?}");
    for secret in [
        code,
        refresh,
        "query-token-abcdef",
        app.client_secret.as_str(),
    ] {
        assert!(!everything.contains(secret), "{secret} reached the log");
    }
}

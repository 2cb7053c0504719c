//! Connect over real HTTP: validation, the page, the form, the redirects, test identities.

use smartcar_sim::testing::{authorize_url, client, location, param, request_id};
use smartcar_sim::{ApproveOptions, Simulator};

async fn get(url: &str) -> reqwest::Response {
    client().get(url).send().await.unwrap()
}

#[tokio::test]
async fn unknown_client_or_redirect_gets_an_html_error_page_without_redirect() {
    let sim = Simulator::start().await.unwrap();
    let app = sim.app();
    let base = sim.base_url();
    for (query, text) in [
        (
            format!(
                "response_type=code&client_id=nope&redirect_uri={}",
                app.redirect_uris[0]
            ),
            "Invalid client_id",
        ),
        (
            format!(
                "response_type=code&client_id={}&redirect_uri=https://evil.example/cb",
                app.client_id
            ),
            "Invalid redirect_uri",
        ),
        (
            // Exact match only: a trailing slash is another URI.
            format!(
                "response_type=code&client_id={}&redirect_uri={}/",
                app.client_id, app.redirect_uris[0]
            ),
            "Invalid redirect_uri",
        ),
        ("response_type=code".to_owned(), "missing the client_id"),
    ] {
        let response = get(&format!("{base}/oauth/authorize?{query}")).await;
        assert_eq!(response.status(), 400, "{query}");
        assert!(response.headers().get("location").is_none());
        assert_eq!(
            response.headers()["content-type"],
            "text/html; charset=utf-8"
        );
        let html = response.text().await.unwrap();
        assert!(html.contains(text), "{query}: {html}");
    }
}

#[tokio::test]
async fn configuration_errors_redirect_with_the_real_parameters() {
    let sim = Simulator::start().await.unwrap();
    let cases = [
        (
            "scope=read_everything",
            "Invalid permission: read_everything.",
        ),
        (
            "mode=production",
            "Invalid mode: production. Use live, simulated or test.",
        ),
        (
            "single_select=true&single_select_vin=1HGCM82643A004352",
            "Invalid single_select_vin: 1HGCM82643A004352.",
        ),
        (
            "single_select_vin=1HGCM82633A004352",
            "single_select_vin=1HGCM82633A004352 requires single_select=true.",
        ),
        (
            "single_select=maybe",
            "Invalid single_select: maybe. Use true or false.",
        ),
        (
            "approval_prompt=always",
            "Invalid approval_prompt: always. Use auto or force.",
        ),
    ];
    for (extra, message) in cases {
        // `scope` given twice: the first wins, so put the bad one first.
        let url = if let Some(scope) = extra.strip_prefix("scope=") {
            authorize_url(&sim, "").replace(
                "scope=read_odometer+required%3Aread_vehicle_info",
                &format!("scope={scope}"),
            )
        } else {
            authorize_url(&sim, extra)
        };
        let response = get(&url).await;
        assert_eq!(response.status(), 302, "{extra}");
        let to = location(&response);
        assert_eq!(
            to.as_str().split('?').next(),
            Some("http://localhost:8000/callback")
        );
        assert_eq!(param(&to, "error").as_deref(), Some("configuration_error"));
        assert_eq!(
            param(&to, "error_description").as_deref(),
            Some("There has been an error in the configuration of your application.")
        );
        assert_eq!(param(&to, "status_code").as_deref(), Some("400"));
        assert_eq!(param(&to, "error_message").as_deref(), Some(message));
        assert_eq!(param(&to, "state").as_deref(), Some("st-1"));
    }
    let bad_type = authorize_url(&sim, "").replace("response_type=code", "response_type=token");
    let to = location(&get(&bad_type).await);
    assert_eq!(param(&to, "error").as_deref(), Some("configuration_error"));
}

#[tokio::test]
async fn the_page_lists_permissions_and_the_users_vehicles() {
    let sim = Simulator::start().await.unwrap();
    let user = &sim.users()[0];
    let response = get(&authorize_url(&sim, "")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/html; charset=utf-8"
    );
    let html = response.text().await.unwrap();
    assert!(html.contains("Simulated App wants to connect to your vehicle"));
    assert!(html.contains("Retrieve total distance traveled"));
    assert!(
        html.contains("Know the make, model and year of your vehicle <strong>(required)</strong>")
    );
    assert!(html.contains(&format!("value=\"{}\"", user.email)));
    for id in &user.vehicle_ids {
        assert!(
            html.contains(&format!(
                "type=\"checkbox\" name=\"vehicle\" value=\"{id}\" checked"
            )),
            "{id}"
        );
    }
    let other = &sim.users()[1].vehicle_ids[0];
    assert!(!html.contains(other.as_str()));
    assert!(!request_id(&html).is_empty());
}

#[tokio::test]
async fn make_bypass_single_select_and_single_select_vin() {
    let sim = Simulator::start().await.unwrap();
    let user = sim.users()[0].clone();
    let vehicles = sim.vehicles();
    let first = vehicles
        .iter()
        .find(|v| v.id == user.vehicle_ids[0])
        .unwrap();
    let html = get(&authorize_url(
        &sim,
        &format!("make={}", first.make.to_lowercase()),
    ))
    .await
    .text()
    .await
    .unwrap();
    for id in &user.vehicle_ids {
        let v = vehicles.iter().find(|v| &v.id == id).unwrap();
        assert_eq!(
            html.contains(id.as_str()),
            v.make == first.make,
            "{}",
            v.make
        );
    }

    let html = get(&authorize_url(&sim, "single_select=true"))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(
        html.matches("type=\"radio\"").count(),
        user.vehicle_ids.len()
    );
    assert_eq!(html.matches(" checked>").count(), 1);

    // A Smartcar test VIN offers a vehicle that fails with its error; showing the page does
    // not create it, approving does.
    let html = get(&authorize_url(
        &sim,
        "single_select=true&single_select_vin=0SCLR0002E8896323",
    ))
    .await
    .text()
    .await
    .unwrap();
    assert!(html.contains("VIN 0SCLR0002E8896323"));
    assert!(
        !sim.vehicles().iter().any(|v| v.vin == "0SCLR0002E8896323"),
        "showing the page created the vehicle"
    );
    assert_eq!(html.matches("name=\"vehicle\"").count(), 1);
    let redirect = sim
        .approve(
            &authorize_url(
                &sim,
                "single_select=true&single_select_vin=0SCLR0002E8896323",
            ),
            ApproveOptions::new(),
        )
        .unwrap();
    let code = param(&redirect, "code").unwrap();
    let test_vehicle = sim
        .vehicles()
        .into_iter()
        .find(|v| v.vin == "0SCLR0002E8896323")
        .expect("test vehicle created on approval");
    assert_eq!(
        test_vehicle.forced_error,
        Some(("VEHICLE_STATE".into(), "ASLEEP".into()))
    );
    // The page offered the vehicle approval created (same id).
    assert!(html.contains(test_vehicle.id.as_str()));
    assert!(sim.users()[0].vehicle_ids.contains(&test_vehicle.id));
    let world = sim.state().world();
    assert_eq!(
        world.codes[&code].vehicle_ids,
        vec![test_vehicle.id.clone()]
    );
}

#[tokio::test]
async fn approving_the_form_redirects_with_a_code_for_the_chosen_vehicles() {
    let sim = Simulator::start().await.unwrap();
    let user = sim.users()[0].clone();
    let html = get(&authorize_url(&sim, "")).await.text().await.unwrap();
    let id = request_id(&html);
    let response = client()
        .post(format!("{}/oauth/authorize", sim.base_url()))
        .form(&[
            ("request", id.as_str()),
            ("email", user.email.as_str()),
            ("password", "whatever"),
            ("vehicle", user.vehicle_ids[1].as_str()),
            ("action", "approve"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    let to = location(&response);
    assert!(
        to.as_str()
            .starts_with("http://localhost:8000/callback?code=")
    );
    assert_eq!(param(&to, "state").as_deref(), Some("st-1"));
    let code = param(&to, "code").unwrap();
    {
        let world = sim.state().world();
        let stored = &world.codes[&code];
        assert_eq!(stored.vehicle_ids, vec![user.vehicle_ids[1].clone()]);
        assert_eq!(stored.user_id, user.id);
        assert!(stored.scopes.contains("read_odometer"));
        assert!(stored.scopes.contains("read_vehicle_info"));
        assert!(world.connection(&user.id, &user.vehicle_ids[1]).is_some());
        assert!(world.connection(&user.id, &user.vehicle_ids[0]).is_none());
    }
    // The pending request is used up.
    let again = client()
        .post(format!("{}/oauth/authorize", sim.base_url()))
        .form(&[("request", id.as_str()), ("action", "approve")])
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 400);
    assert!(
        again
            .text()
            .await
            .unwrap()
            .contains("unknown or has expired")
    );
}

#[tokio::test]
async fn deny_redirects_with_access_denied() {
    let sim = Simulator::start().await.unwrap();
    let html = get(&authorize_url(&sim, "")).await.text().await.unwrap();
    let response = client()
        .post(format!("{}/oauth/authorize", sim.base_url()))
        .form(&[("request", request_id(&html).as_str()), ("action", "deny")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    assert_eq!(
        response.headers()["location"],
        "http://localhost:8000/callback?error=access_denied&error_description=User+denied+access+to+application.&state=st-1"
    );
}

#[tokio::test]
async fn switching_account_and_unknown_emails_rerender_the_page_escaped() {
    let sim = Simulator::start().await.unwrap();
    let second = sim.users()[1].clone();
    let html = get(&authorize_url(&sim, "")).await.text().await.unwrap();
    let id = request_id(&html);
    let post = |form: Vec<(&'static str, String)>| {
        let url = format!("{}/oauth/authorize", sim.base_url());
        async move { client().post(url).form(&form).send().await.unwrap() }
    };
    let response = post(vec![
        ("request", id.clone()),
        ("email", "<script>alert(1)</script>@example.com".into()),
        ("action", "approve".into()),
    ])
    .await;
    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;@example.com"));
    assert!(!html.contains("<script>alert"));
    assert_eq!(request_id(&html), id);

    let response = post(vec![
        ("request", id.clone()),
        ("email", second.email.clone()),
        ("action", "login".into()),
    ])
    .await;
    let html = response.text().await.unwrap();
    for v in &second.vehicle_ids {
        assert!(html.contains(v.as_str()));
    }
    let response = post(vec![
        ("request", id.clone()),
        ("email", second.email.clone()),
        ("vehicle", second.vehicle_ids[0].clone()),
        ("action", "approve".into()),
    ])
    .await;
    assert_eq!(response.status(), 302);
    let code = param(&location(&response), "code").unwrap();
    assert_eq!(sim.state().world().codes[&code].user_id, second.id);
}

#[tokio::test]
async fn user_id_flow_for_v3_redirect_uris() {
    let sim = Simulator::start().await.unwrap();
    let app = sim.app();
    assert_eq!(
        app.user_id_redirect_uris,
        ["http://localhost:8000/exchange"]
    );
    let url = authorize_url(&sim, "sim_auto_approve=true&sim_user=driver2%40example.com")
        .replace("callback", "exchange");
    let response = get(&url).await;
    assert_eq!(response.status(), 302);
    let user = &sim.users()[1];
    assert_eq!(
        response.headers()["location"],
        format!(
            "http://localhost:8000/exchange?state=st-1&user_id={}",
            user.id
        )
        .as_str()
    );
    let world = sim.state().world();
    for v in &user.vehicle_ids {
        assert!(world.connection(&user.id, v).is_some());
    }
}

#[tokio::test]
async fn test_identities_produce_connect_errors_and_failing_vehicles() {
    let sim = Simulator::start().await.unwrap();
    let url = authorize_url(&sim, "");
    let to = sim
        .approve(
            &url,
            ApproveOptions::new().user("smartcar@vehicle-incompatible.com"),
        )
        .unwrap();
    assert_eq!(
        to.as_str(),
        "http://localhost:8000/callback?error=vehicle_incompatible&error_description=The+user%27s+vehicle+is+not+compatible.&make=AUDI&model=A4&state=st-1&vin=0SCAUDI012FE3B132&year=2015"
    );
    let to = sim
        .approve(
            &url,
            ApproveOptions::new().user("smartcar@invalid-subscription.com"),
        )
        .unwrap();
    assert_eq!(param(&to, "error").as_deref(), Some("invalid_subscription"));

    let to = sim
        .approve(
            &url,
            ApproveOptions::new().user("VEHICLE_STATE.ASLEEP@smartcar.com"),
        )
        .unwrap();
    let code = param(&to, "code").unwrap();
    let world = sim.state().world();
    let vehicle_ids = &world.codes[&code].vehicle_ids;
    assert_eq!(vehicle_ids.len(), 1);
    assert_eq!(
        world.vehicles[&vehicle_ids[0]].forced_error,
        Some(("VEHICLE_STATE".into(), "ASLEEP".into()))
    );
    drop(world);

    let err = sim
        .approve(&url, ApproveOptions::new().user("nobody@example.com"))
        .unwrap_err();
    assert_eq!(err.status, 200);
    assert_eq!(
        err.message,
        "No connected-services account uses the e-mail nobody@example.com."
    );
    let err = sim
        .approve(
            &url.replace("client_id=", "client_id=x"),
            ApproveOptions::new(),
        )
        .unwrap_err();
    assert_eq!(err.status, 400);
}

#[tokio::test]
async fn auto_approve_flags_and_no_vehicles() {
    let sim = Simulator::start().await.unwrap();
    let deny = get(&authorize_url(&sim, "sim_auto_approve=deny")).await;
    assert_eq!(
        param(&location(&deny), "error").as_deref(),
        Some("access_denied")
    );
    let user = sim.users()[0].clone();
    let one = get(&authorize_url(
        &sim,
        &format!("sim_auto_approve=true&sim_vehicles={}", user.vehicle_ids[0]),
    ))
    .await;
    let code = param(&location(&one), "code").unwrap();
    assert_eq!(
        sim.state().world().codes[&code].vehicle_ids,
        vec![user.vehicle_ids[0].clone()]
    );
    let none = get(&authorize_url(
        &sim,
        "sim_auto_approve=true&make=NOSUCHMAKE",
    ))
    .await;
    let to = location(&none);
    assert_eq!(param(&to, "error").as_deref(), Some("no_vehicles"));
    assert_eq!(
        param(&to, "error_description").as_deref(),
        Some("No vehicles found. Please add vehicles to your account and try again.")
    );
}

#[tokio::test]
async fn reauthenticate_redirects_with_the_vehicle_id() {
    let sim = Simulator::start().await.unwrap();
    let app = sim.app();
    let vehicle = sim.users()[0].vehicle_ids[0].clone();
    let base = format!(
        "{}/oauth/reauthenticate?response_type=vehicle_id&client_id={}&vehicle_id={}&redirect_uri={}&state=r",
        sim.base_url(),
        app.client_id,
        vehicle,
        app.redirect_uris[0]
    );
    let page = get(&base).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("Log in again to keep Simulated App connected"));
    let response = client()
        .post(format!("{}/oauth/authorize", sim.base_url()))
        .form(&[
            ("request", request_id(&html).as_str()),
            ("action", "approve"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["location"],
        format!("http://localhost:8000/callback?state=r&vehicle_id={vehicle}").as_str()
    );
    let unknown = get(&base.replace(&vehicle, "no-such-vehicle")).await;
    assert_eq!(unknown.status(), 400);
    let no_redirect = get(&base.replace("&redirect_uri=http://localhost:8000/callback", "")).await;
    assert_eq!(no_redirect.status(), 400);
}
